//! The map page in the browser: it draws the expected assets and edges, narrows with a filter,
//! opens a node's details on a click, replays an earlier time from the history controls, updates
//! live from the event stream and exports SVG and PNG.

use flowlens_tests::browser::Browser;
use flowlens_tests::{free_tcp_port, free_udp_port, ipfix_packets, now_ms, tcp_flow, NodeProcess};

use crate::{assert_no_console_errors_but, open_signed_in, save_screenshot};

/// The map's nodes as the page placed them: address → (x, y) on the canvas, once settled.
fn map_layout(browser: &Browser) -> Option<serde_json::Map<String, serde_json::Value>> {
    if browser.attribute("#map-canvas", "data-settled").as_deref() != Some("true") {
        return None;
    }
    let layout = browser.attribute("#map-canvas", "data-layout")?;
    serde_json::from_str::<serde_json::Value>(&layout)
        .ok()?
        .as_object()
        .cloned()
}

fn map_size(browser: &Browser) -> (String, String) {
    (
        browser
            .attribute("#map-canvas", "data-nodes")
            .unwrap_or_default(),
        browser
            .attribute("#map-canvas", "data-edges")
            .unwrap_or_default(),
    )
}

fn is_map(browser: &Browser, nodes: &str, edges: &str) -> bool {
    map_size(browser) == (nodes.to_owned(), edges.to_owned())
}

#[test]
fn the_map_draws_filters_selects_replays_updates_live_and_exports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let node = NodeProcess::start(bin, dir.path(), free_tcp_port(), free_udp_port(), &[], &[]);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    // Three clients call a web server, which calls its database.
    let mut flows: Vec<_> = (1..=3)
        .map(|c| tcp_flow(&format!("10.2.0.{c}"), "10.1.0.10", 443, 5_000 * c))
        .collect();
    flows.push(tcp_flow("10.1.0.10", "10.1.0.30", 5432, 20_000));
    let [template, data] = ipfix_packets(&flows);
    node.send(&[&template, &data]);
    node.wait_until(
        |n| n.dependencies().len() == 4,
        "the first four dependencies",
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let before_second = now_ms();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let [template, data] = ipfix_packets(&[tcp_flow("10.3.0.7", "10.3.0.8", 8080, 3_000)]);
    node.send(&[&template, &data]);
    node.wait_until(|n| n.dependencies().len() == 5, "the fifth dependency");

    let browser = Browser::start();
    open_signed_in(&browser, &node, "/map");
    browser.wait_until(|b| is_map(b, "7", "5"), "7 assets and 5 dependencies");
    browser.wait_until(|b| map_layout(b).is_some(), "the layout settling");
    let layout = map_layout(&browser).expect("layout");
    let mut drawn: Vec<&String> = layout.keys().collect();
    drawn.sort();
    assert_eq!(
        drawn,
        [
            "10.1.0.10",
            "10.1.0.30",
            "10.2.0.1",
            "10.2.0.2",
            "10.2.0.3",
            "10.3.0.7",
            "10.3.0.8"
        ]
    );
    assert_eq!(
        browser.text("#map-summary").as_deref(),
        Some("7 assets, 5 dependencies")
    );
    save_screenshot(&browser, "map.png");

    // A click on the web server opens its details and lights its neighbours.
    let at = |layout: &serde_json::Map<String, serde_json::Value>, ip: &str| {
        let p = &layout[ip];
        (p[0].as_f64().expect("x"), p[1].as_f64().expect("y"))
    };
    let (x, y) = at(&layout, "10.1.0.10");
    browser.click_at("#map-canvas", x, y);
    browser.wait_until(
        |b| b.text("#details-ip").as_deref() == Some("10.1.0.10"),
        "the web server's details",
    );
    assert_eq!(browser.text("#upstream-total").as_deref(), Some("3"));
    assert_eq!(browser.text("#downstream-total").as_deref(), Some("1"));
    assert_eq!(browser.text("#broken-total").as_deref(), Some("3"));
    browser.click("#mode-blast");
    save_screenshot(&browser, "map-details.png");
    // Escape on the focused map clears the selection.
    browser.keys("#map-canvas", "\u{E00C}");
    browser.wait_until(|b| b.count("#details-ip") == 0, "the selection cleared");

    // Exports: the SVG holds every node and edge; the PNG is a PNG.
    browser.click("#map-svg");
    let svg = String::from_utf8(browser.downloaded("flowlens-map.svg")).expect("utf-8 svg");
    assert!(svg.starts_with("<svg"), "{svg}");
    assert_eq!(svg.matches("<circle").count(), 7, "{svg}");
    assert_eq!(svg.matches("<line").count(), 5, "{svg}");
    assert!(svg.contains(">10.1.0.30</text>"));
    browser.click("#map-png");
    assert!(browser
        .downloaded("flowlens-map.png")
        .starts_with(b"\x89PNG"));

    // History: the map as it was before the fifth dependency, then live again.
    browser.type_into("#map-at", &before_second.to_string());
    browser.wait_until(
        |b| is_map(b, "5", "4"),
        "the earlier map (5 assets, 4 edges)",
    );
    assert_ne!(browser.text("#map-at-label").as_deref(), Some("live"));
    browser.click("#map-live");
    browser.wait_until(|b| is_map(b, "7", "5"), "the live map again");
    // The slider: Home goes back to the first asset's time, before the later ones existed.
    browser.keys("#map-history", "\u{E011}");
    browser.wait_until(
        |b| {
            let (nodes, _) = map_size(b);
            nodes.parse::<u32>().is_ok_and(|n| n < 7)
        },
        "the slider's earliest map",
    );
    browser.keys("#map-history", "\u{E010}");
    browser.wait_until(|b| is_map(b, "7", "5"), "the slider back at live");

    // A filter narrows the map to the clients' network.
    browser.type_into("#map-subnet", "10.2.0.0/24");
    browser.wait_until(|b| is_map(b, "4", "3"), "the filtered map");

    // Live: a new dependency appears without a reload.
    browser.open(&format!("http://{}/map", node.api));
    browser.wait_until(|b| is_map(b, "7", "5"), "the whole map");
    browser.wait_until(
        |b| b.text("#live-state").as_deref() == Some("● live"),
        "the event stream connected",
    );
    let [template, data] = ipfix_packets(&[tcp_flow("10.3.0.9", "10.3.0.8", 8080, 3_000)]);
    node.send(&[&template, &data]);
    browser.wait_until(|b| is_map(b, "8", "6"), "the new dependency, live");

    // The keyboard's way in: the list of assets under the map selects one.
    browser.click(".node-list summary");
    browser.keys("#map-nodes li:nth-child(1) button", "\u{E007}");
    browser.wait_until(|b| b.count("#details-ip") == 1, "details from the keyboard");

    // Grouping: one legend entry per subnet; a node that does not federate says so for sites.
    browser.click("#map-group option[value='subnet']");
    browser.wait_until(|b| b.count(".legend .dot") == 3, "three subnets");
    let legend = browser.text(".legend").unwrap_or_default();
    for subnet in ["10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24"] {
        assert!(legend.contains(subnet), "{legend}");
    }
    browser.click("#map-group option[value='site']");
    browser.wait_until(
        |b| {
            b.text("p.error")
                .is_some_and(|t| t.contains("does not federate sites"))
        },
        "the federation refusal",
    );
    assert_eq!(
        browser.text(".legend li:last-child").as_deref(),
        Some("this node")
    );
    assert_no_console_errors_but(&browser, &["/api/v1/federation - Failed to load resource"]);
}
