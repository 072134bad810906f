//! Map bench: a release `flowlens node` fed a simulated network of about 2,000 assets and 5,000
//! dependencies (the map's cap), its map page opened in headless Chromium, and what a user would
//! feel measured: time to the first drawing and to a settled layout, the cost of a busy frame
//! while the layout runs (layout steps and drawing), and the cost of a redraw while panning and
//! zooming a settled map. Results go to `benches/results/map.md` and `map.json`.
//!
//! `map --flowlens <binary> [--hosts N] [--dependencies N]`
//!
//! Headless Chromium draws on the CPU (no GPU here), so these are upper bounds for a laptop.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use flowlens_tests::browser::Browser;
use flowlens_tests::http_get_auth;
use node::simulate::{Exporter, Network, SimProto};

struct Args {
    flowlens: PathBuf,
    hosts: u32,
    dependencies: u32,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        flowlens: PathBuf::new(),
        hosts: 2_000,
        dependencies: 5_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--flowlens" => args.flowlens = PathBuf::from(value),
            "--hosts" => args.hosts = value.parse().map_err(|_| "--hosts: a number")?,
            "--dependencies" => {
                args.dependencies = value.parse().map_err(|_| "--dependencies: a number")?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.flowlens.as_os_str().is_empty() {
        return Err("--flowlens <path to the flowlens binary> is required".into());
    }
    Ok(args)
}

fn total(api: SocketAddr, path: &str) -> u64 {
    http_get_auth(api, path)
        .ok()
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
        .and_then(|v| v["total"].as_u64())
        .unwrap_or(0)
}

fn number(browser: &Browser, name: &str) -> Option<f64> {
    browser.attribute("#map-canvas", name)?.parse().ok()
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    let dir = std::env::temp_dir().join(format!("flowlens-map-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let node = flowlens_benches::start_node(&args.flowlens, &dir)?;
    let (api, udp) = (node.api, node.udp);

    // Every dependency of the simulated network, a few times over, at a gentle pace.
    let mut network = Network::new(args.hosts, false, 7);
    network.widen(args.dependencies as usize);
    let mut exporter = Exporter::new(SimProto::Ipfix, 1);
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let now = actors::now_ms();
    let mut flows = Vec::new();
    for _ in 0..(8 * args.dependencies / 1000).max(8) {
        flows.clear();
        network.next_flows(1000, now, &mut flows);
        let mut out = Vec::new();
        exporter.encode(&flows, now, &mut out);
        for d in out {
            let _ = socket.send_to(&d, udp);
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let want = network.dependencies().len() as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut deps = 0;
    while Instant::now() < deadline {
        deps = total(api, "/api/v1/dependencies?limit=1");
        if deps * 100 >= want * 95 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let assets = total(api, "/api/v1/assets?limit=1");
    println!("map: {assets} assets, {deps} dependencies (network has {want})");

    // A user for the browser, signed in through the app's forms.
    let user = r#"{"name": "bench", "password": "bench-password-1", "role": "viewer"}"#;
    let created = flowlens_tests::http_send_auth(api, "POST", "/api/v1/users", Some(user))
        .map_err(|e| e.to_string())?;
    if created.0 != 201 {
        return Err(format!("creating the bench user: {}", created.1));
    }
    let browser = Browser::start();
    browser.sign_in(
        &format!("http://{api}"),
        "bench",
        "bench-password-1",
        Some("bench-password-2"),
    );
    let opened = Instant::now();
    browser.open(&format!("http://{api}/map"));
    let mut first_draw = None;
    let mut busy = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let settled = loop {
        if Instant::now() > deadline {
            return Err("the map did not settle in 120 s".into());
        }
        let nodes = browser
            .attribute("#map-canvas", "data-nodes")
            .unwrap_or_default();
        if first_draw.is_none() && browser.attribute("#map-canvas", "data-settled").is_some() {
            first_draw = Some(opened.elapsed());
        }
        if let Some(ms) = number(&browser, "data-frame-ms") {
            busy.push(ms);
        }
        if nodes != "0"
            && browser.attribute("#map-canvas", "data-settled").as_deref() == Some("true")
        {
            break opened.elapsed();
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let drawn_nodes = browser
        .attribute("#map-canvas", "data-nodes")
        .unwrap_or_default();
    let drawn_edges = browser
        .attribute("#map-canvas", "data-edges")
        .unwrap_or_default();
    let steps = number(&browser, "data-steps").unwrap_or_default();
    // Redraws of the settled map: pan and zoom from the keyboard for a few seconds.
    let mut redraw = Vec::new();
    for i in 0..40 {
        let key = ["\u{E012}", "\u{E014}", "+", "-"][i % 4];
        browser.keys("#map-canvas", key);
        std::thread::sleep(Duration::from_millis(150));
        if let Some(ms) = number(&browser, "data-draw-ms") {
            redraw.push(ms);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let first = first_draw.unwrap_or_default().as_secs_f64();
    let md = format!(
        "# Map bench\n\n`cargo xtask bench map` — headless Chromium (software rendering), map page \
         of a simulated network.\n\n\
         | measure | value |\n|---|---:|\n\
         | assets / dependencies in the node | {assets} / {deps} |\n\
         | nodes / edges drawn (the map's cap) | {drawn_nodes} / {drawn_edges} |\n\
         | page open → first drawing | {first:.2} s |\n\
         | page open → layout settled | {:.2} s ({steps} steps) |\n\
         | busy frame while the layout runs (steps + draw), mean / max | {:.1} / {:.1} ms |\n\
         | redraw of the settled map while panning and zooming, mean / max | {:.1} / {:.1} ms |\n",
        settled.as_secs_f64(),
        mean(&busy),
        max(&busy),
        mean(&redraw),
        max(&redraw),
    );
    let json = serde_json::json!({
        "assets": assets, "dependencies": deps, "nodes_drawn": drawn_nodes, "edges_drawn": drawn_edges,
        "first_draw_s": first, "settled_s": settled.as_secs_f64(), "layout_steps": steps,
        "busy_frame_ms_mean": mean(&busy), "busy_frame_ms_max": max(&busy),
        "redraw_ms_mean": mean(&redraw), "redraw_ms_max": max(&redraw),
    });
    print!("{md}");
    let results = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results");
    let _ = std::fs::create_dir_all(&results);
    std::fs::write(results.join("map.md"), md).map_err(|e| e.to_string())?;
    std::fs::write(
        results.join("map.json"),
        serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
