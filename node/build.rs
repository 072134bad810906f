//! Embeds the web UI bundle (`web/dist`, made by `cargo xtask web`) into the binary when it is
//! there: writes `$OUT_DIR/ui.rs` with every file's path, content type and bytes. Without a
//! bundle the list is empty and the node says how to build one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dist = manifest.join("../web/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut found = Vec::new();
    if dist.join("index.html").is_file() {
        files(&dist, &mut found);
    }
    let mut code = String::from("/// The embedded UI: (URL path, content type, bytes).\npub static FILES: &[(&str, &str, &[u8])] = &[\n");
    for path in &found {
        let rel = path.strip_prefix(&dist).unwrap_or(path);
        let url = format!("/{}", rel.to_string_lossy().replace('\\', "/"));
        let _ = writeln!(
            code,
            "    ({url:?}, {:?}, include_bytes!({:?})),",
            content_type(path),
            path.canonicalize().unwrap_or(path.clone())
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("ui.rs");
    if let Err(e) = std::fs::write(&out, code) {
        println!("cargo:warning=cannot write {}: {e}", out.display());
    }
}
