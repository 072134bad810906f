//! The web UI in a real headless Chromium against a real node fed real IPFIX packets: the
//! embedded app loads with no console errors and its dashboard shows the node's numbers, top
//! talkers and advisories; the assets page filters and sorts on the server; acknowledging an
//! alert on the alerts page changes it through the API; the map (`map.rs`) and the other pages
//! (`pages.rs`) in their own modules.
//! Screenshots are kept under the target directory (`tmp/ui-artifacts/`).

mod access;
mod map;
mod pages;

use flowlens_tests::browser::Browser;
use flowlens_tests::{
    free_tcp_port, free_udp_port, http_get, ipfix_packets, tcp_flow, NodeProcess,
};

#[test]
fn the_dashboard_loads_without_console_errors_and_shows_the_map() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let env = [("FLOWLENS_ADVISORIES__WINDOW", "1s")];
    let node = NodeProcess::start(bin, dir.path(), free_tcp_port(), free_udp_port(), &[], &env);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    let (status, page) = http_get(node.api, "/").expect("index");
    assert_eq!(status, 200);
    assert!(
        page.contains("/boot.js"),
        "this node binary was built without the UI: run `cargo xtask web` first; / answered {page}"
    );

    let mut flows: Vec<_> = (1..=3)
        .map(|c| tcp_flow(&format!("10.2.0.{c}"), "10.1.0.10", 443, 5_000 * c))
        .collect();
    flows.push(tcp_flow("10.5.0.8", "10.5.0.9", 23, 900));
    let [template, data] = ipfix_packets(&flows);
    node.send(&[&template, &data]);
    node.wait_until(|n| n.dependencies().len() == 4, "mapped");

    let browser = Browser::start();
    open_signed_in(&browser, &node, "/");
    browser.wait_until(
        |b| b.text("#assets-total").as_deref() == Some("6"),
        "6 assets",
    );
    assert_eq!(browser.text("#dependencies-total").as_deref(), Some("4"));
    assert_eq!(browser.text("#node-id").as_deref(), Some("1"));
    browser.wait_until(
        |b| {
            b.text("#advisories")
                .is_some_and(|t| t.contains("Telnet in use on 10.5.0.9:23/6"))
        },
        "the Telnet advisory",
    );
    browser.wait_until(|b| b.count("#top-sources tbody tr") >= 1, "top talkers");
    assert_eq!(
        browser.text("#top-sources tbody tr td").as_deref(),
        Some("10.2.0.3")
    );
    assert_eq!(
        browser.text("#top-destinations tbody tr td").as_deref(),
        Some("10.1.0.10")
    );
    assert!(browser
        .text("#protocols tbody")
        .is_some_and(|t| t.contains("tcp")));
    assert_eq!(browser.count("#throughput-chart polyline"), 2);
    assert!(browser
        .text("#throughput-now")
        .is_some_and(|t| t.contains("bit/s")));
    assert_eq!(browser.count("#exporters tbody tr"), 1);
    assert_eq!(
        browser.text("#exporters tbody tr td.health").as_deref(),
        Some("ok")
    );
    assert_eq!(browser.text("#alerts-total").as_deref(), Some("0"));
    assert_eq!(
        browser.text("#advisories-by-severity").as_deref(),
        Some("0 critical · 1 warning · 0 info")
    );

    assert_no_console_errors(&browser);
    save_screenshot(&browser, "dashboard.png");

    // The assets page: paged by the server, narrowed by a network filter, sorted by address.
    browser.click("nav a[href='/assets']");
    browser.wait_until(
        |b| b.text("#assets-range").as_deref() == Some("1–6 of 6"),
        "six assets listed",
    );
    assert_eq!(browser.count("#assets tbody tr"), 6);
    assert_eq!(browser.text("#next").as_deref(), Some("Next"));
    browser.type_into("#filter-subnet", "10.2.0.0/24");
    browser.wait_until(
        |b| b.text("#assets-range").as_deref() == Some("1–3 of 3"),
        "the filter narrowing to three",
    );
    browser.click("#sort-ip");
    browser.wait_until(
        |b| b.text("#assets tbody tr td").as_deref() == Some("10.2.0.1"),
        "sorted by address",
    );
    save_screenshot(&browser, "assets.png");

    // The advisories page: the Telnet finding with its action and a link to its flows.
    browser.click("nav a[href='/advisories']");
    browser.wait_until(|b| b.count("#advisory-list li") == 1, "one advisory");
    assert!(browser
        .text("#advisory-list li")
        .is_some_and(|t| t.contains("Replace Telnet with SSH") && t.contains("(active)")));
    save_screenshot(&browser, "advisories.png");
    assert_no_console_errors(&browser);
}

/// Opens `path` signed in as a new admin user `tester`, created through the API, through the
/// sign-in and new-password forms.
fn open_signed_in(browser: &Browser, node: &NodeProcess, path: &str) {
    let (status, body) = node.send_json(
        "POST",
        "/api/v1/users",
        &serde_json::json!({"name": "tester", "password": "first-password-1", "role": "admin"}),
    );
    assert_eq!(status, 201, "{body}");
    let base = format!("http://{}", node.api);
    browser.sign_in(
        &base,
        "tester",
        "first-password-1",
        Some("second-password-2"),
    );
    browser.open(&format!("{base}{path}"));
}

fn assert_no_console_errors(browser: &Browser) {
    assert_no_console_errors_but(browser, &[]);
}

/// No SEVERE console entries except ones containing one of `expected` (the browser logs every
/// refused request, such as a form the node rejects on purpose).
fn assert_no_console_errors_but(browser: &Browser, expected: &[&str]) {
    let errors: Vec<_> = browser
        .console()
        .into_iter()
        .filter(|(level, message)| {
            level == "SEVERE" && !expected.iter().any(|e| message.contains(e))
        })
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

fn save_screenshot(browser: &Browser, name: &str) {
    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG screenshot");
    std::fs::write(artifacts.join(name), png).expect("screenshot written");
}

#[test]
fn acknowledging_an_alert_in_the_page_changes_it_through_the_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let node = NodeProcess::start(bin, dir.path(), free_tcp_port(), free_udp_port(), &[], &[]);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    let (status, rule) = node.send_json(
        "POST",
        "/api/v1/alert-rules",
        &serde_json::json!({"name": "new database client", "condition": {"on": "new_dependency"},
                            "scope": {"port": 5432}}),
    );
    assert_eq!(status, 201, "{rule}");
    let [template, data] = ipfix_packets(&[tcp_flow("10.2.0.1", "10.1.0.30", 5432, 700)]);
    node.send(&[&template, &data]);
    let alerts = |n: &NodeProcess| n.get("/api/v1/alerts?status=all").1;
    node.wait_until(|n| alerts(n)["total"] == 1, "the alert");

    let browser = Browser::start();
    open_signed_in(&browser, &node, "/alerts");
    browser.wait_until(|b| b.count("#alerts tbody tr") == 1, "one alert row");
    assert!(browser
        .text("#alerts tbody tr")
        .is_some_and(|t| t.contains("new dependency: 10.2.0.1 calls 10.1.0.30:5432/6")));
    assert_eq!(browser.text("#alerts td.state").as_deref(), Some("open"));
    browser.click("#alerts button.ack");
    node.wait_until(
        |n| alerts(n)["items"][0]["status"] == "acknowledged",
        "acknowledged through the API",
    );
    browser.wait_until(
        |b| b.text("#alerts td.state").as_deref() == Some("acknowledged"),
        "the page showing it acknowledged",
    );
    assert_eq!(alerts(&node)["items"][0]["acknowledged"]["by"], "web");
    assert_eq!(browser.count("#alerts button.ack"), 0);
    // A new alert shows up live, without a reload.
    let [template, data] = ipfix_packets(&[tcp_flow("10.2.0.2", "10.1.0.30", 5432, 700)]);
    node.send(&[&template, &data]);
    browser.wait_until(
        |b| b.count("#alerts tbody tr") == 2,
        "the second alert, live",
    );
    save_screenshot(&browser, "alerts.png");
    // The app's own navigation reaches the dashboard.
    browser.click("nav a[href='/']");
    browser.wait_until(
        |b| b.text("#assets-total").as_deref() == Some("3"),
        "the dashboard",
    );
    assert_no_console_errors(&browser);
}
