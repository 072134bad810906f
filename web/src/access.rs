//! The access page: API tokens (one's own, everyone's for an admin) issued with their secret
//! shown once and revoked; for admins also users (created with a one-time password, their
//! role and network scope changed, disabled, deleted) and the latest audit entries.

use leptos::prelude::*;
use proto::api::Page;
use proto::auth::{AccessRole, AuditRecord, Credential, IssuedToken, Principal, User};
use serde_json::json;

use crate::api::{delete, get, post, put};
use crate::fmt;
use crate::rules::submit;

/// Audit entries shown, newest first.
const AUDIT_SHOWN: u64 = 50;

/// The access page for the signed-in `principal`.
#[component]
pub fn Access(principal: Principal) -> impl IntoView {
    let version = RwSignal::new(0u32);
    let admin = principal.role == AccessRole::Admin;
    view! {
        <h2>"Access"</h2>
        {tokens(version, principal.role)}
        {admin.then(|| users(version))}
        {admin.then(|| audit(version))}
    }
}

/// A role picker offering the roles up to `most`.
fn role_select(id: &'static str, most: AccessRole, value: RwSignal<String>) -> impl IntoView {
    view! {
        <label>"Role "<select id=id on:change=move |ev| value.set(event_target_value(&ev))>
            {AccessRole::ALL
                .into_iter()
                .filter(|r| *r <= most)
                .map(|r| view! { <option value=r.name() selected=move || value.get() == r.name()>{r.name()}</option> })
                .collect_view()}
        </select></label>
    }
}

fn error_line(problem: RwSignal<Option<String>>, id: &'static str) -> impl IntoView {
    move || {
        problem
            .get()
            .map(|p| view! { <p class="error" role="alert" id=id>{p}</p> })
    }
}

fn tokens(version: RwSignal<u32>, most: AccessRole) -> impl IntoView {
    let everyone = RwSignal::new(false);
    let list = LocalResource::new(move || {
        version.get();
        let path = if everyone.get() {
            "/api/v1/tokens?all=true"
        } else {
            "/api/v1/tokens"
        };
        get::<Vec<Credential>>(path)
    });
    let problem = RwSignal::new(None::<String>);
    let issued = RwSignal::new(None::<String>);
    let (name, role, expires) = (
        RwSignal::new(String::new()),
        RwSignal::new("viewer".to_string()),
        RwSignal::new("90d".to_string()),
    );
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if name.get_untracked().trim().is_empty() {
            problem.set(Some("name: say what the token is for".into()));
            return;
        }
        let body = json!({"name": name.get_untracked().trim(), "role": role.get_untracked(),
            "expires_in": expires.get_untracked().trim()});
        submit(problem, version, async move {
            let token = post::<IssuedToken>("/api/v1/tokens", &body).await?;
            issued.set(Some(token.token));
            Ok(())
        });
    };
    let revoke = move |id: String| {
        submit(problem, version, async move {
            delete(&format!("/api/v1/tokens/{id}")).await
        });
    };
    view! {
        <section aria-labelledby="tokens-h">
            <h3 id="tokens-h">"API tokens"</h3>
            {(most == AccessRole::Admin).then(|| view! {
                <label><input type="checkbox" id="tokens-all"
                    on:change=move |ev| everyone.set(event_target_checked(&ev)) />
                    " everyone's, revoked and expired too"</label>
            })}
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || list.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                    Ok(list) => view! {
                        <table id="tokens">
                            <thead><tr><th>"Name"</th><th>"User"</th><th>"Kind"</th><th>"Role"</th>
                                <th>"Created"</th><th>"Expires"</th><th>"From"</th><th></th></tr></thead>
                            <tbody>{list.into_iter().map(|c| {
                                let id = c.id.clone();
                                let state = if c.revoked { "revoked" } else { "" };
                                view! { <tr>
                                    <td>{c.name}</td><td>{c.user}</td>
                                    <td>{format!("{:?}", c.kind).to_lowercase()}</td><td>{c.role.name()}</td>
                                    <td>{fmt::when(c.created_ms)}</td><td>{fmt::when(c.expires_ms)}</td>
                                    <td>{c.from}</td>
                                    <td>{if c.revoked {
                                        view! { <span>{state}</span> }.into_any()
                                    } else {
                                        view! { <button type="button" class="revoke"
                                            on:click=move |_| revoke(id.clone())>"Revoke"</button> }.into_any()
                                    }}</td>
                                </tr> }
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                })}
            </Suspense>
            <form id="token-form" on:submit=create>
                <label>"Name "<input id="token-name" size="14" placeholder="grafana"
                    on:input=move |ev| name.set(event_target_value(&ev)) /></label>
                {role_select("token-role", most, role)}
                <label>"Expires in "<input id="token-expires" size="6" prop:value=move || expires.get()
                    on:input=move |ev| expires.set(event_target_value(&ev)) /></label>
                <button type="submit">"Issue token"</button>
            </form>
            {move || issued.get().map(|t| view! {
                <p class="issued">"The token (shown this once): "<code id="new-token">{t}</code></p>
            })}
            {error_line(problem, "tokens-problem")}
        </section>
    }
}

fn users(version: RwSignal<u32>) -> impl IntoView {
    let list = LocalResource::new(move || {
        version.get();
        get::<Vec<User>>("/api/v1/users")
    });
    let problem = RwSignal::new(None::<String>);
    let (name, password, scope, role) = (
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new(String::new()),
        RwSignal::new("viewer".to_string()),
    );
    let networks = |text: &str| -> Vec<String> {
        text.split([',', ' '])
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if name.get_untracked().trim().is_empty() {
            problem.set(Some("name: a user needs a name".into()));
            return;
        }
        let scope = networks(&scope.get_untracked());
        let usable = |n: &&String| n.starts_with("site:") || n.parse::<ipnet::IpNet>().is_ok();
        if let Some(bad) = scope.iter().find(|n| !usable(n)) {
            problem.set(Some(format!(
                "scope: `{bad}` is not a network like 10.1.0.0/16 or a site like site:paris"
            )));
            return;
        }
        let body = json!({"name": name.get_untracked().trim(), "password": password.get_untracked(),
            "role": role.get_untracked(), "scope": scope});
        submit(problem, version, async move {
            post::<User>("/api/v1/users", &body).await.map(|_| ())
        });
    };
    let change = move |u: User, disabled: bool| {
        let body = json!({"role": u.role.name(), "scope": u.scope, "disabled": disabled});
        submit(problem, version, async move {
            put::<User>(&format!("/api/v1/users/{}", u.name), &body)
                .await
                .map(|_| ())
        });
    };
    let remove = move |name: String| {
        submit(problem, version, async move {
            delete(&format!("/api/v1/users/{name}")).await
        });
    };
    view! {
        <section aria-labelledby="users-h">
            <h3 id="users-h">"Users"</h3>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || list.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                    Ok(list) => view! {
                        <table id="users">
                            <thead><tr><th>"Name"</th><th>"Role"</th><th>"Scope"</th><th>"State"</th>
                                <th>"Created"</th><th></th></tr></thead>
                            <tbody>{list.into_iter().map(|u| {
                                let state = match (u.disabled, u.must_change_password) {
                                    (true, _) => "disabled",
                                    (false, true) => "one-time password",
                                    (false, false) => "active",
                                };
                                let scope = if u.scope.is_empty() { "everything".to_string() } else { u.scope.join(", ") };
                                let (toggle, name) = (u.clone(), u.name.clone());
                                let label = if u.disabled { "Enable" } else { "Disable" };
                                view! { <tr data-user=u.name.clone()>
                                    <td>{u.name.clone()}</td><td>{u.role.name()}</td><td>{scope}</td>
                                    <td>{state}</td><td>{fmt::when(u.created_ms)}</td>
                                    <td>
                                        <button type="button" class="toggle"
                                            on:click=move |_| change(toggle.clone(), !toggle.disabled)>{label}</button>
                                        " "
                                        <button type="button" class="delete"
                                            on:click=move |_| remove(name.clone())>"Delete"</button>
                                    </td>
                                </tr> }
                            }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                })}
            </Suspense>
            <form id="user-form" on:submit=create>
                <label>"Name "<input id="user-name" size="12"
                    on:input=move |ev| name.set(event_target_value(&ev)) /></label>
                <label>"One-time password "<input id="user-password" type="password" size="14"
                    on:input=move |ev| password.set(event_target_value(&ev)) /></label>
                {role_select("user-role", AccessRole::Admin, role)}
                <label>"Scope "<input id="user-scope" size="16" placeholder="all networks"
                    on:input=move |ev| scope.set(event_target_value(&ev)) /></label>
                <button type="submit">"Create user"</button>
            </form>
            <p class="muted">"A new user chooses its own password at its first sign-in. A scope \
                (networks or federated sites like site:paris, comma-separated) limits what the \
                user sees to those networks."</p>
            {error_line(problem, "users-problem")}
        </section>
    }
}

fn audit(version: RwSignal<u32>) -> impl IntoView {
    let latest = LocalResource::new(move || {
        version.get();
        async move {
            let total = get::<Page<AuditRecord>>("/api/v1/audit?limit=1")
                .await?
                .total;
            let offset = total.saturating_sub(AUDIT_SHOWN);
            let mut page = get::<Page<AuditRecord>>(&format!(
                "/api/v1/audit?offset={offset}&limit={AUDIT_SHOWN}"
            ))
            .await?;
            page.items.reverse();
            Ok::<_, String>((page.items, total))
        }
    });
    view! {
        <section aria-labelledby="audit-h">
            <h3 id="audit-h">"Audit trail"</h3>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || latest.get().map(|r| match r {
                    Err(e) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                    Ok((items, total)) => view! {
                        <p class="muted" id="audit-count">{format!("The latest {} of {total}, newest first.", items.len())}</p>
                        <table id="audit">
                            <thead><tr><th>"When"</th><th>"Who"</th><th>"From"</th><th>"Request"</th>
                                <th>"Status"</th><th>"What"</th></tr></thead>
                            <tbody>{items.into_iter().map(|a| view! { <tr>
                                <td>{fmt::when(a.at_ms)}</td><td>{a.entry.who}</td><td>{a.entry.from}</td>
                                <td>{format!("{} {}", a.entry.method, a.entry.path)}</td>
                                <td>{a.entry.status}</td><td>{a.entry.summary}</td>
                            </tr> }).collect_view()}</tbody>
                        </table>
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}
