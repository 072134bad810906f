//! Signing in: the sign-in form, the new-password form a one-time password leads to, and the
//! signed-in user's name, role and sign-out button in the header. The session is an HttpOnly
//! cookie; the page keeps only its CSRF value, for the header every change sends.

use leptos::prelude::*;
use proto::auth::{CredentialKind, Principal};
use serde_json::json;

use crate::api::{get, post, post_unit, set_csrf};

/// `None` while asking; `Some(None)` when signed out.
pub type Session = RwSignal<Option<Option<Principal>>>;

/// Asks the node who this browser is signed in as, and records it in `session`.
pub fn refresh(session: Session) {
    leptos::task::spawn_local(async move {
        match get::<Option<Principal>>("/api/v1/auth/state").await {
            Ok(p) => {
                set_csrf(p.as_ref().and_then(|p| p.csrf.clone()));
                session.set(Some(p));
            }
            Err(_) => session.set(Some(None)),
        }
    });
}

/// Whether `p` must choose a new password before anything else.
pub fn must_change(p: &Principal) -> bool {
    p.user.must_change_password && p.kind == CredentialKind::Session
}

/// The sign-in form.
#[component]
pub fn SignIn(session: Session) -> impl IntoView {
    let user = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = json!({"user": user.get_untracked(), "password": password.get_untracked()});
        leptos::task::spawn_local(async move {
            match post::<Principal>("/api/v1/auth/login", &body).await {
                Ok(p) => {
                    set_csrf(p.csrf.clone());
                    problem.set(None);
                    session.set(Some(Some(p)));
                }
                Err(e) => problem.set(Some(e)),
            }
        });
    };
    view! {
        <main class="sign-in">
            <h1>"FlowLens"</h1>
            <form id="login" on:submit=submit>
                <label>"User " <input id="login-user" autocomplete="username" required
                    on:input=move |ev| user.set(event_target_value(&ev)) /></label>
                <label>"Password " <input id="login-password" type="password" autocomplete="current-password" required
                    on:input=move |ev| password.set(event_target_value(&ev)) /></label>
                <button type="submit" id="login-submit">"Sign in"</button>
            </form>
            {move || problem.get().map(|p| view! { <p class="error" role="alert" id="login-problem">{p}</p> })}
            <p class="muted">"A new node prints its first admin's one-time password, and writes it to "
                <code>"<data_dir>/initial-admin-password"</code>"."</p>
        </main>
    }
}

/// The new-password form (after a one-time password).
#[component]
pub fn ChangePassword(session: Session) -> impl IntoView {
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let again = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if new.get_untracked() != again.get_untracked() {
            problem.set(Some("new: the two new passwords differ".into()));
            return;
        }
        let body = json!({"current": current.get_untracked(), "new": new.get_untracked()});
        leptos::task::spawn_local(async move {
            match post_unit("/api/v1/auth/password", &body).await {
                Ok(()) => refresh(session),
                Err(e) => problem.set(Some(e)),
            }
        });
    };
    view! {
        <main class="sign-in">
            <h1>"Choose a new password"</h1>
            <p>"You signed in with a one-time password. Choose your own (at least 12 characters)."</p>
            <form id="new-password" on:submit=submit>
                <label>"Current " <input id="pw-current" type="password" autocomplete="current-password" required
                    on:input=move |ev| current.set(event_target_value(&ev)) /></label>
                <label>"New " <input id="pw-new" type="password" autocomplete="new-password" required
                    on:input=move |ev| new.set(event_target_value(&ev)) /></label>
                <label>"Again " <input id="pw-again" type="password" autocomplete="new-password" required
                    on:input=move |ev| again.set(event_target_value(&ev)) /></label>
                <button type="submit" id="pw-submit">"Set password"</button>
            </form>
            {move || problem.get().map(|p| view! { <p class="error" role="alert" id="pw-problem">{p}</p> })}
        </main>
    }
}

/// The signed-in user in the header, and the sign-out button.
pub fn badge(session: Session, p: &Principal) -> impl IntoView {
    let who = format!("{} ({})", p.user.name, p.role.name());
    let sign_out = move |_| {
        leptos::task::spawn_local(async move {
            let _ = post_unit("/api/v1/auth/logout", &json!({})).await;
            set_csrf(None);
            session.set(Some(None));
        });
    };
    view! {
        <span class="who" id="signed-in">{who}</span>
        <button type="button" id="sign-out" on:click=sign_out>"Sign out"</button>
    }
}
