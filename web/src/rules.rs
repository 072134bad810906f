//! The rules page: classification rules (CIDR → environment, data centre, location) and alert
//! rules (condition, scope, severity, notifiers), each listed with a delete button and created
//! from a form. The form checks what it can before sending (a name, a valid CIDR, a number) and
//! shows the node's own refusal, naming the field, for everything else.

use leptos::prelude::*;
use proto::alert::AlertRule;
use proto::classify::ClassificationRule;
use serde_json::{json, Value};

use crate::api::{delete, get, post};

/// Checks the fields the page can check itself; the first problem, if any.
fn check_cidr(field: &str, cidr: &str, required: bool) -> Option<String> {
    let cidr = cidr.trim();
    if cidr.is_empty() {
        return required.then(|| format!("{field}: a network is needed, like 10.1.0.0/16"));
    }
    let parses = cidr.parse::<ipnet::IpNet>().is_ok() || cidr.parse::<std::net::IpAddr>().is_ok();
    (!parses).then(|| format!("{field}: `{cidr}` is not a network like 10.1.0.0/16"))
}

fn text(v: &str) -> Value {
    let v = v.trim();
    if v.is_empty() {
        Value::Null
    } else {
        Value::String(v.to_string())
    }
}

/// The rules page.
#[component]
pub fn Rules() -> impl IntoView {
    let version = RwSignal::new(0u32);
    view! {
        <h2>"Rules"</h2>
        {classification(version)}
        {alerting(version)}
    }
}

/// A labelled text input bound to `value`.
fn field(
    id: &'static str,
    label: &'static str,
    hint: &'static str,
    value: RwSignal<String>,
) -> impl IntoView {
    view! {
        <label>{label}" "<input id=id placeholder=hint size="12"
            on:input=move |ev| value.set(event_target_value(&ev)) /></label>
    }
}

/// Runs `call` and shows its refusal in `problem`, or clears it and reloads the lists.
pub(crate) fn submit<F>(problem: RwSignal<Option<String>>, version: RwSignal<u32>, call: F)
where
    F: std::future::Future<Output = Result<(), String>> + 'static,
{
    leptos::task::spawn_local(async move {
        match call.await {
            Ok(()) => {
                problem.set(None);
                version.update(|v| *v = v.wrapping_add(1));
            }
            Err(e) => problem.set(Some(e)),
        }
    });
}

fn classification(version: RwSignal<u32>) -> impl IntoView {
    let rules = LocalResource::new(move || {
        version.get();
        get::<Vec<ClassificationRule>>("/api/v1/classification-rules")
    });
    let problem = RwSignal::new(None::<String>);
    let [name, cidr, env, datacenter, location, priority] =
        std::array::from_fn(|_| RwSignal::new(String::new()));
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if name.get_untracked().trim().is_empty() {
            problem.set(Some("name: give the rule a name".into()));
            return;
        }
        if let Some(p) = check_cidr("cidr", &cidr.get_untracked(), true) {
            problem.set(Some(p));
            return;
        }
        let priority = priority.get_untracked();
        let priority = match priority.trim() {
            "" => Value::Null,
            p => match p.parse::<u32>() {
                Ok(n) => json!(n),
                Err(_) => {
                    problem.set(Some(format!("priority: `{p}` is not a whole number")));
                    return;
                }
            },
        };
        let body = json!({
            "name": name.get_untracked().trim(), "cidr": cidr.get_untracked().trim(),
            "environment": text(&env.get_untracked()), "datacenter": text(&datacenter.get_untracked()),
            "location": text(&location.get_untracked()), "priority": priority,
        });
        submit(problem, version, async move {
            post::<ClassificationRule>("/api/v1/classification-rules", &body)
                .await
                .map(|_| ())
        });
    };
    view! {
        <section aria-labelledby="class-h">
            <h3 id="class-h">"Classification rules"</h3>
            <p class="muted">"The longest matching prefix wins, then the lower priority, then the older rule."</p>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || rules.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                    Ok(rules) => view! {
                        <table id="class-rules">
                            <thead><tr><th>"Name"</th><th>"Network"</th><th>"Environment"</th>
                                <th>"Data centre"</th><th>"Location"</th><th>"Priority"</th><th></th></tr></thead>
                            <tbody>
                                {rules.into_iter().map(|r| {
                                    let id = r.id.clone();
                                    view! {
                                        <tr><td>{r.name}</td><td>{r.cidr}</td>
                                            <td>{r.environment.map(|e| e.name()).unwrap_or_default()}</td>
                                            <td>{r.datacenter.unwrap_or_default()}</td><td>{r.location.unwrap_or_default()}</td>
                                            <td>{r.priority}</td>
                                            <td><button type="button" class="delete" on:click=move |_| {
                                                let path = format!("/api/v1/classification-rules/{id}");
                                                submit(problem, version, async move { delete(&path).await });
                                            }>"Delete"</button></td></tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Suspense>
            <form id="class-form" class="filters map-filters" on:submit=create>
                {field("class-name", "Name", "web tier", name)}
                {field("class-cidr", "Network", "10.1.0.0/16", cidr)}
                {field("class-env", "Environment", "prod", env)}
                {field("class-dc", "Data centre", "fra1", datacenter)}
                {field("class-location", "Location", "Frankfurt", location)}
                {field("class-priority", "Priority", "100", priority)}
                <button type="submit" id="class-add">"Add rule"</button>
            </form>
            {move || problem.get().map(|p| view! { <p class="error" role="alert" id="class-problem">{p}</p> })}
        </section>
    }
}

fn alerting(version: RwSignal<u32>) -> impl IntoView {
    let rules = LocalResource::new(move || {
        version.get();
        get::<Vec<AlertRule>>("/api/v1/alert-rules")
    });
    let problem = RwSignal::new(None::<String>);
    let [name, condition, threshold, cidr, env, port, severity, notify] =
        std::array::from_fn(|_| RwSignal::new(String::new()));
    condition.set("new_dependency".into());
    severity.set("warning".into());
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if name.get_untracked().trim().is_empty() {
            problem.set(Some("name: give the rule a name".into()));
            return;
        }
        if let Some(p) = check_cidr("scope.cidr", &cidr.get_untracked(), false) {
            problem.set(Some(p));
            return;
        }
        let on = condition.get_untracked();
        let mut cond = json!({ "on": on });
        let threshold = threshold.get_untracked().trim().to_string();
        match on.as_str() {
            "advisory" => {
                cond["min_severity"] = json!(if threshold.is_empty() {
                    "WARNING".to_string()
                } else {
                    threshold.to_uppercase()
                })
            }
            "traffic" => match threshold.parse::<u64>() {
                Ok(n) if n > 0 => cond["min_bytes_per_s"] = json!(n),
                _ => {
                    problem.set(Some(
                        "threshold: a traffic rule needs bytes per second, like 1000000".into(),
                    ));
                    return;
                }
            },
            _ => {}
        }
        let port = port.get_untracked();
        let port = match port.trim() {
            "" => Value::Null,
            p => match p.parse::<u16>() {
                Ok(n) => json!(n),
                Err(_) => {
                    problem.set(Some(format!("scope.port: `{p}` is not a port (0–65535)")));
                    return;
                }
            },
        };
        let notify: Vec<String> = notify
            .get_untracked()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let body = json!({
            "name": name.get_untracked().trim(), "condition": cond,
            "scope": {"cidr": text(&cidr.get_untracked()), "environment": text(&env.get_untracked()), "port": port},
            "severity": severity.get_untracked(), "notify": notify,
        });
        submit(problem, version, async move {
            post::<AlertRule>("/api/v1/alert-rules", &body)
                .await
                .map(|_| ())
        });
    };
    view! {
        <section aria-labelledby="alert-rules-h">
            <h3 id="alert-rules-h">"Alert rules"</h3>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || rules.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                    Ok(rules) => view! {
                        <table id="alert-rules">
                            <thead><tr><th>"Name"</th><th>"When"</th><th>"Scope"</th><th>"Severity"</th>
                                <th>"Notifies"</th><th>"Enabled"</th><th></th></tr></thead>
                            <tbody>
                                {rules.into_iter().map(|r| {
                                    let id = r.id.clone();
                                    let scope = [r.scope.cidr.clone(), r.scope.environment.map(|e| e.name().to_string()),
                                        r.scope.port.map(|p| format!("port {p}"))].into_iter().flatten().collect::<Vec<_>>().join(", ");
                                    view! {
                                        <tr><td>{r.name}</td><td>{r.condition.name()}</td><td>{scope}</td>
                                            <td>{r.severity.name()}</td><td>{r.notify.join(", ")}</td>
                                            <td>{if r.enabled { "yes" } else { "no" }}</td>
                                            <td><button type="button" class="delete" on:click=move |_| {
                                                let path = format!("/api/v1/alert-rules/{id}");
                                                submit(problem, version, async move { delete(&path).await });
                                            }>"Delete"</button></td></tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Suspense>
            <form id="alert-form" class="filters map-filters" on:submit=create>
                {field("alert-name", "Name", "new DB client", name)}
                <label>"When "
                    <select id="alert-condition" on:change=move |ev| condition.set(event_target_value(&ev))>
                        <option value="new_dependency">"new dependency"</option>
                        <option value="new_asset">"new asset"</option>
                        <option value="asset_removed">"asset removed"</option>
                        <option value="dependency_removed">"dependency removed"</option>
                        <option value="new_external_destination">"new external destination"</option>
                        <option value="advisory">"advisory at least (severity)"</option>
                        <option value="traffic">"traffic at least (bytes/s)"</option>
                    </select>
                </label>
                {field("alert-threshold", "Threshold", "WARNING or 1000000", threshold)}
                {field("alert-cidr", "Network", "10.1.0.0/16", cidr)}
                {field("alert-env", "Environment", "prod", env)}
                {field("alert-port", "Port", "5432", port)}
                <label>"Severity "
                    <select id="alert-severity" on:change=move |ev| severity.set(event_target_value(&ev))>
                        <option value="warning">"warning"</option><option value="critical">"critical"</option>
                        <option value="info">"info"</option>
                    </select>
                </label>
                {field("alert-notify", "Notifiers", "ops-webhook, mail", notify)}
                <button type="submit" id="alert-add">"Add rule"</button>
            </form>
            {move || problem.get().map(|p| view! { <p class="error" role="alert" id="alert-problem">{p}</p> })}
        </section>
    }
}
