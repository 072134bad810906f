//! The alerts page: every alert, most severe and newest first, with its state, what raised it
//! and how its notifications went; open alerts can be acknowledged and any unresolved one
//! resolved, through the API.

use leptos::prelude::*;
use proto::alert::AlertRecord;
use proto::api::Page;

use crate::api::{get, post};

/// The alerts page.
#[component]
pub fn Alerts() -> impl IntoView {
    let (version, set_version) = signal(0u32);
    let live = use_context::<crate::live::Live>();
    let alerts = LocalResource::new(move || {
        version.get();
        // Reloaded whenever the event stream reports an alert change.
        if let Some(l) = live {
            l.alerts.get();
        }
        get::<Page<AlertRecord>>("/api/v1/alerts?status=all&limit=200")
    });
    let (failure, set_failure) = signal(None::<String>);
    let act = move |id: String, verb: &'static str| {
        leptos::task::spawn_local(async move {
            let path = format!("/api/v1/alerts/{id}/{verb}");
            match post::<AlertRecord>(&path, &serde_json::json!({"by": "web"})).await {
                Ok(_) => set_failure.set(None),
                Err(e) => set_failure.set(Some(e)),
            }
            set_version.update(|v| *v = v.wrapping_add(1));
        });
    };
    view! {
        <h2>"Alerts"</h2>
        {move || failure.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || alerts.get().map(|result| match result {
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(page) if page.items.is_empty() => {
                    view! { <p id="no-alerts">"No alerts."</p> }.into_any()
                }
                Ok(page) => view! {
                    <table id="alerts">
                        <thead><tr><th>"Severity"</th><th>"Rule"</th><th>"What happened"</th>
                            <th>"State"</th><th>"Notified"</th><th>"Actions"</th></tr></thead>
                        <tbody>
                            {page.items.into_iter().map(|a| {
                                let id = a.alert.id.clone();
                                let (ack_id, resolve_id) = (id.clone(), id.clone());
                                let open = a.status == "open";
                                let unresolved = a.status != "resolved";
                                let notified = a.deliveries.iter().map(|d| format!(
                                    "{}: {}", d.notifier,
                                    if d.ok { "sent".to_string() } else if d.done { format!("failed ({})", d.error.clone().unwrap_or_default()) } else { "retrying".to_string() }
                                )).collect::<Vec<_>>().join(", ");
                                view! {
                                    <tr data-alert=id.clone()>
                                        <td class=format!("severity {}", a.alert.severity.name().to_lowercase())>{a.alert.severity.name()}</td>
                                        <td>{a.alert.rule_name.clone()}</td>
                                        <td>{a.alert.summary.clone()}</td>
                                        <td class="state">{a.status.clone()}</td>
                                        <td>{notified}</td>
                                        <td>
                                            <Show when=move || open>
                                                <button class="ack" on:click={
                                                    let id = ack_id.clone();
                                                    move |_| act(id.clone(), "acknowledge")
                                                }>"Acknowledge"</button>
                                            </Show>
                                            <Show when=move || unresolved>
                                                <button class="resolve" on:click={
                                                    let id = resolve_id.clone();
                                                    move |_| act(id.clone(), "resolve")
                                                }>"Resolve"</button>
                                            </Show>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any(),
            })}
        </Suspense>
    }
}
