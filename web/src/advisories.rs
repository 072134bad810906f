//! The advisories page: what the advisor found, most severe first, with the suggested action and
//! a link to the flows that show it; active ones by default, or all of them.

use leptos::prelude::*;
use proto::advisory::AdvisoryRecord;
use proto::api::Page;

use crate::api::get;

/// The advisories page.
#[component]
pub fn Advisories() -> impl IntoView {
    let (status, set_status) = signal("active".to_string());
    let (severity, set_severity) = signal(String::new());
    let live = use_context::<crate::live::Live>();
    let page = LocalResource::new(move || {
        // Reloaded whenever the event stream reports an advisory raised or resolved.
        if let Some(l) = live {
            l.advisories.get();
        }
        let mut q = format!("/api/v1/advisories?limit=500&status={}", status.get());
        let min = severity.get();
        if !min.is_empty() {
            q.push_str(&format!("&severity={min}"));
        }
        async move { get::<Page<AdvisoryRecord>>(&q).await }
    });
    view! {
        <h2>"Advisories"</h2>
        <form class="filters" on:submit=|ev| ev.prevent_default()>
            <label>"Show "
                <select id="advisory-status" on:change=move |ev| set_status.set(event_target_value(&ev))>
                    <option value="active">"active"</option>
                    <option value="resolved">"resolved"</option>
                    <option value="all">"all"</option>
                </select>
            </label>
            <label>"At least "
                <select id="advisory-severity" on:change=move |ev| set_severity.set(event_target_value(&ev))>
                    <option value="">"any severity"</option>
                    <option value="CRITICAL">"CRITICAL"</option>
                    <option value="WARNING">"WARNING"</option>
                    <option value="INFO">"INFO"</option>
                </select>
            </label>
        </form>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || page.get().map(|result| match result {
                Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                Ok(p) if p.items.is_empty() => view! { <p id="no-advisories">"Nothing found."</p> }.into_any(),
                Ok(p) => view! {
                    <ul id="advisory-list">
                        {p.items.into_iter().map(|a| {
                            let severity = a.advisory.severity.name();
                            view! {
                                <li class=format!("advisory {}", severity.to_lowercase())>
                                    <strong>{severity}</strong>" "{a.advisory.summary}
                                    <span class="state">{format!(" ({})", a.status)}</span>
                                    <p class="action">{a.advisory.action}" "
                                        <a class="evidence" href=a.advisory.evidence.replacen("/api/v1/flows", "/flows", 1)>"flows"</a></p>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any(),
            })}
        </Suspense>
    }
}
