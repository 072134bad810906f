//! The access page in the browser: an API token issued (its secret shown once and working
//! against the API) and revoked; a user created with a role and a network scope (a bad scope
//! refused by the page), disabled and deleted, each change reaching the API; the audit trail
//! showing the latest change first.

use flowlens_tests::browser::Browser;
use flowlens_tests::{free_tcp_port, free_udp_port, http_exchange, NodeProcess};

use crate::{assert_no_console_errors_but, open_signed_in, save_screenshot};

/// GET `path` with `token`: the status.
fn status_with(node: &NodeProcess, token: &str, path: &str) -> u16 {
    http_exchange(
        node.api,
        "GET",
        path,
        None,
        &format!("Authorization: Bearer {token}\r\n"),
    )
    .map_or(0, |(status, _)| status)
}

#[test]
fn tokens_users_and_the_audit_trail_are_managed_from_the_access_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let node = NodeProcess::start(bin, dir.path(), free_tcp_port(), free_udp_port(), &[], &[]);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    let browser = Browser::start();
    open_signed_in(&browser, &node, "/access");

    // A token: issued, shown once, working; then revoked from its row.
    browser.wait_until(|b| b.count("#token-form") == 1, "the token form");
    browser.keys("#token-name", "grafana");
    browser.click("#token-role option[value='viewer']");
    browser.click("#token-form button[type='submit']");
    browser.wait_until(
        |b| b.text("#new-token").is_some_and(|t| t.starts_with("fl_")),
        "the new token's secret",
    );
    let token = browser.text("#new-token").expect("token");
    assert_eq!(status_with(&node, &token, "/api/v1/assets"), 200);
    browser.wait_until(
        |b| {
            b.text("#tokens tbody tr:first-child")
                .is_some_and(|t| t.contains("grafana") && t.contains("viewer"))
        },
        "the token listed first",
    );
    browser.click("#tokens tbody tr:first-child .revoke");
    browser.wait_until(
        |_| status_with(&node, &token, "/api/v1/assets") == 401,
        "the token revoked",
    );

    // A user with a scope: the page refuses a bad network itself.
    browser.keys("#user-name", "netops");
    browser.keys("#user-password", "netops-first-password");
    browser.click("#user-role option[value='operator']");
    browser.keys("#user-scope", "10.1.0.0/33");
    browser.click("#user-form button[type='submit']");
    browser.wait_until(
        |b| {
            b.text("#users-problem")
                .is_some_and(|t| t.contains("scope: `10.1.0.0/33`"))
        },
        "the page's own refusal",
    );
    browser.keys("#user-scope", "\u{E003}\u{E003}16");
    browser.click("#user-form button[type='submit']");
    browser.wait_until(
        |b| {
            b.text("tr[data-user='netops']").is_some_and(|t| {
                t.contains("operator")
                    && t.contains("10.1.0.0/16")
                    && t.contains("one-time password")
            })
        },
        "the new user listed",
    );
    let user = |n: &NodeProcess| -> serde_json::Value {
        n.get("/api/v1/users")
            .1
            .as_array()
            .and_then(|a| a.iter().find(|u| u["name"] == "netops").cloned())
            .unwrap_or_default()
    };
    assert_eq!(user(&node)["role"], "operator");
    assert_eq!(user(&node)["scope"], serde_json::json!(["10.1.0.0/16"]));

    // Disabled, then deleted, through the API.
    browser.click("tr[data-user='netops'] .toggle");
    browser.wait_until(|_| user(&node)["disabled"] == true, "the user disabled");
    browser.wait_until(
        |b| {
            b.text("tr[data-user='netops']")
                .is_some_and(|t| t.contains("disabled"))
        },
        "the row says disabled",
    );
    browser.wait_until(
        |b| {
            b.text("#audit tbody tr:first-child")
                .is_some_and(|t| t.contains("PUT /api/v1/users/netops") && t.contains("tester"))
        },
        "the latest audit entry first",
    );
    save_screenshot(&browser, "access.png");
    browser.click("tr[data-user='netops'] .delete");
    browser.wait_until(|_| user(&node).is_null(), "the user deleted");
    browser.wait_until(|b| b.count("tr[data-user='netops']") == 0, "the row gone");
    assert_no_console_errors_but(&browser, &[]);
}
