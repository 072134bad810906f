//! How the pages write numbers, sizes, rates, times and query strings.

/// Bytes for people: `1.2 MB`.
pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1} GB", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1} kB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

/// A rate for people: `12.5 k/s`, with `unit` (`bit/s`, `flows/s`, …).
pub fn rate(per_s: f64, unit: &str) -> String {
    match per_s {
        r if r >= 1e9 => format!("{:.1} G{unit}", r / 1e9),
        r if r >= 1e6 => format!("{:.1} M{unit}", r / 1e6),
        r if r >= 1e3 => format!("{:.1} k{unit}", r / 1e3),
        r => format!("{r:.1} {unit}"),
    }
}

/// A UTC time for people: `2026-12-06 12:39:28`.
pub fn when(ms: u64) -> String {
    let iso: String = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64))
        .to_iso_string()
        .into();
    iso.get(..19).unwrap_or(&iso).replace('T', " ")
}

/// A duration for people: `3 d 4 h`, `12 min 5 s`.
pub fn duration(s: u64) -> String {
    match s {
        s if s >= 86_400 => format!("{} d {} h", s / 86_400, s % 86_400 / 3_600),
        s if s >= 3_600 => format!("{} h {} min", s / 3_600, s % 3_600 / 60),
        s if s >= 60 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{s} s"),
    }
}

/// `path` with the non-empty `pairs` as its query string, each value percent-encoded.
pub fn query(path: &str, pairs: &[(&str, String)]) -> String {
    let mut out = path.to_string();
    let mut sep = if path.contains('?') { '&' } else { '?' };
    for (key, value) in pairs {
        let value = value.trim();
        if !value.is_empty() {
            let encoded: String = js_sys::encode_uri_component(value).into();
            out.push_str(&format!("{sep}{key}={encoded}"));
            sep = '&';
        }
    }
    out
}

/// An asset's environment for people: its classification's, else internal or external.
pub fn environment(a: &proto::api::Asset) -> &'static str {
    a.classification
        .as_ref()
        .and_then(|c| c.environment)
        .map_or(if a.internal { "internal" } else { "external" }, |e| {
            e.name()
        })
}
