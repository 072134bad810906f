//! The other pages in the browser: dependencies (sorted and filtered by the server) leading to an
//! asset's page, the flows explorer, the history diff and its events, the rules editors (the
//! page's own checks and the node's refusals shown by field, rules created and deleted through
//! the API), and the cluster page with the configuration's secrets hidden.

use flowlens_tests::browser::Browser;
use flowlens_tests::{free_tcp_port, free_udp_port, ipfix_packets, tcp_flow, NodeProcess};

use crate::{assert_no_console_errors_but, open_signed_in, save_screenshot};

#[test]
fn every_other_page_loads_filters_and_edits_through_the_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("flowlens.toml");
    std::fs::write(
        &config,
        "[[notifiers]]\nid = \"hook\"\nkind = \"webhook\"\n\
         url = \"http://127.0.0.1:9/services/T0/B0/top-secret-path\"\nsecret = \"s3cret\"\n",
    )
    .expect("config");
    let config_arg = config.to_string_lossy().into_owned();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let node = NodeProcess::start(
        bin,
        &dir.path().join("data"),
        free_tcp_port(),
        free_udp_port(),
        &["--config", &config_arg],
        &[],
    );
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    let mut flows: Vec<_> = (1..=3)
        .map(|c| tcp_flow(&format!("10.2.0.{c}"), "10.1.0.10", 443, 5_000 * c))
        .collect();
    flows.push(tcp_flow("10.1.0.10", "10.1.0.30", 5432, 20_000));
    let [template, data] = ipfix_packets(&flows);
    node.send(&[&template, &data]);
    node.wait_until(|n| n.dependencies().len() == 4, "mapped");
    let browser = Browser::start();
    open_signed_in(&browser, &node, "/");
    let page = |path: &str| browser.open(&format!("http://{}{path}", node.api));

    // Dependencies: sorted by client on the server, narrowed by port, linking to the asset.
    page("/dependencies");
    browser.wait_until(
        |b| b.text("#deps-range").as_deref() == Some("1–4 of 4"),
        "four dependencies",
    );
    browser.click("#deps-sort option[value='client']");
    browser.wait_until(
        |b| b.text("#deps tbody tr td").as_deref() == Some("10.1.0.10"),
        "sorted by client",
    );
    browser.type_into("#deps-port", "443");
    browser.wait_until(
        |b| b.text("#deps-range").as_deref() == Some("1–3 of 3"),
        "the port filter",
    );
    save_screenshot(&browser, "dependencies.png");
    browser.click("#deps tbody tr td:nth-child(2) a");
    browser.wait_until(
        |b| b.text("#asset-ip").as_deref() == Some("10.1.0.10"),
        "the asset page",
    );
    assert_eq!(browser.count("#asset-services tbody tr"), 1);
    assert_eq!(browser.count("#asset-calls tbody tr"), 1);
    assert_eq!(browser.count("#asset-called-by tbody tr"), 3);
    save_screenshot(&browser, "asset.png");

    // Flows: the explorer takes its first filters from the address, like an advisory's link.
    page("/flows?port=5432");
    browser.wait_until(|b| b.count("#flows tbody tr") == 1, "the one database flow");
    assert!(browser
        .text("#flows tbody tr")
        .is_some_and(|t| t.contains("10.1.0.10:45000") && t.contains("10.1.0.30:5432")));
    browser.type_into("#flows-src", "10.2.0.0/24");
    browser.wait_until(
        |b| {
            b.text("#flows-range")
                .is_some_and(|t| t.starts_with("0–0 of 0"))
        },
        "no flows from the clients to the database",
    );
    save_screenshot(&browser, "flows.png");

    // History: the last hour's diff has everything added, and its events filter by kind.
    page("/history");
    browser.wait_until(|b| b.count("#assets-added li") == 5, "five assets added");
    assert_eq!(browser.count("#deps-added li"), 4);
    browser.type_into("#history-kind", "dependency.discovered");
    browser.wait_until(
        |b| b.count("#history-events tbody tr") == 4,
        "the four discoveries",
    );
    save_screenshot(&browser, "history.png");

    // Rules: the page's own check, then the node's refusal naming the field, then a rule.
    page("/rules");
    browser.wait_until(|b| b.count("#class-form") == 1, "the rules page");
    // Typed without Enter (which submits the form), then submitted with the button.
    browser.keys("#class-name", "web tier");
    browser.keys("#class-cidr", "10.1.0.0/33");
    browser.click("#class-add");
    browser.wait_until(
        |b| {
            b.text("#class-problem")
                .is_some_and(|t| t.contains("cidr: `10.1.0.0/33` is not a network"))
        },
        "the page's CIDR check",
    );
    let rules = |n: &NodeProcess| n.get("/api/v1/classification-rules").1;
    assert_eq!(rules(&node), serde_json::json!([]));
    browser.keys("#class-cidr", "\u{E003}\u{E003}16");
    browser.keys("#class-env", "production");
    browser.click("#class-add");
    browser.wait_until(
        |b| {
            b.text("#class-problem")
                .is_some_and(|t| t.starts_with("environment:") && t.contains("(HTTP 400"))
        },
        "the node's refusal, by field",
    );
    browser.keys("#class-env", &"\u{E003}".repeat(6));
    browser.click("#class-add");
    browser.wait_until(|b| b.count("#class-rules tbody tr") == 1, "the new rule");
    assert_eq!(browser.count("#class-problem"), 0);
    let created = rules(&node);
    assert_eq!(created[0]["cidr"], "10.1.0.0/16", "{created}");
    assert_eq!(created[0]["environment"], "prod");
    assert_eq!(
        node.get("/api/v1/assets/10.1.0.30").1["classification"]["environment"],
        "prod"
    );
    // An alert rule: a traffic rule needs its threshold; a new-dependency rule notifies `hook`.
    browser.keys("#alert-name", "database clients");
    browser.click("#alert-condition option[value='traffic']");
    browser.click("#alert-add");
    browser.wait_until(
        |b| {
            b.text("#alert-problem")
                .is_some_and(|t| t.starts_with("threshold:"))
        },
        "the threshold check",
    );
    browser.click("#alert-condition option[value='new_dependency']");
    browser.keys("#alert-port", "5432");
    browser.keys("#alert-notify", "hook");
    browser.click("#alert-add");
    browser.wait_until(|b| b.count("#alert-rules tbody tr") == 1, "the alert rule");
    let alert_rules = node.get("/api/v1/alert-rules").1;
    assert_eq!(
        alert_rules[0]["condition"]["on"], "new_dependency",
        "{alert_rules}"
    );
    assert_eq!(alert_rules[0]["scope"]["port"], 5432);
    assert_eq!(alert_rules[0]["notify"], serde_json::json!(["hook"]));
    save_screenshot(&browser, "rules.png");
    browser.click("#class-rules button.delete");
    browser.wait_until(
        |b| b.count("#class-rules tbody tr") == 0,
        "the rule deleted",
    );
    assert_eq!(rules(&node), serde_json::json!([]));

    // Cluster: this node leads; the configuration shows, its secrets do not.
    page("/about");
    browser.wait_until(
        |b| b.text("#about-node").as_deref() == Some("1"),
        "the about page",
    );
    assert!(browser
        .text("#about-role")
        .is_some_and(|t| t.starts_with("Leader")));
    assert_eq!(browser.count("#members tbody tr"), 1);
    assert_eq!(
        browser.text("#members tbody tr td.role").as_deref(),
        Some("Leader")
    );
    let config = browser.text("#config").expect("config");
    assert!(config.contains("\"hook\""), "{config}");
    assert!(config.contains("http://127.0.0.1:9/(hidden)"), "{config}");
    assert!(
        !config.contains("s3cret") && !config.contains("top-secret-path"),
        "{config}"
    );
    browser.wait_until(
        |b| {
            b.text("#about-flow-rate")
                .is_some_and(|t| t.ends_with("flows/s"))
        },
        "a flow rate from two samples",
    );
    save_screenshot(&browser, "about.png");
    // The one refused request above is the node's answer to the bad environment.
    assert_no_console_errors_but(
        &browser,
        &["classification-rules - Failed to load resource"],
    );
}
