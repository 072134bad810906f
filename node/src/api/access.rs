//! Signing in and out, one's own password and tokens, users (admin), and the audit trail
//! (`/api/v1/auth/*`, `/api/v1/tokens`, `/api/v1/users`, `/api/v1/audit`). Every change is an
//! event; secrets are shown once (a token when issued) and kept only as hashes.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use proto::api::Page;
use proto::auth::{
    AccessRole, AuditEntry, AuditRecord, Credential, CredentialKind, IssuedToken, LoginInput,
    PasswordInput, Principal, TokenInput, User, UserInput,
};
use proto::event::EventKind;

use super::params::{bad, json_body, Failure};
use super::rules::commit;
use super::AppState;
use crate::auth::{self, Caller};

type Pairs = Query<Vec<(String, String)>>;

/// Longest an API token may live.
const MAX_TOKEN_LIFE: std::time::Duration = std::time::Duration::from_secs(2 * 365 * 86_400);
/// An API token's life when none is asked for.
const DEFAULT_TOKEN_LIFE: std::time::Duration = std::time::Duration::from_secs(90 * 86_400);
/// Most users.
const MAX_USERS: usize = 10_000;

fn caller(c: Option<Extension<Caller>>) -> Result<Caller, Failure> {
    c.map(|Extension(c)| c)
        .ok_or_else(|| Failure::Unauthorized("sign in first".into()))
}

fn sign_in_entry(who: &str, from: &SocketAddr, status: u16, summary: &str) -> AuditEntry {
    AuditEntry {
        who: who.to_owned(),
        role: None,
        credential: None,
        from: from.ip().to_string(),
        method: "POST".into(),
        path: "/api/v1/auth/login".into(),
        status,
        summary: summary.to_owned(),
    }
}

/// Signs in: a session cookie (`HttpOnly`, `SameSite=Strict`) and the CSRF value to send as
/// `X-CSRF-Token` with every change.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginInput,
    responses((status = 200, body = Principal), (status = 401, body = proto::api::ApiError),
        (status = 429, body = proto::api::ApiError)))]
pub async fn login(
    State(s): State<AppState>,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    input: Result<Json<LoginInput>, JsonRejection>,
) -> Result<Response, Failure> {
    let input = json_body(input)?;
    if !s
        .limits
        .may_sign_in(from.ip(), s.auth.login_attempts_per_minute)
    {
        return Err(Failure::TooMany(format!(
            "too many failed sign-ins from {}; wait a minute",
            from.ip()
        )));
    }
    let user = s.projection.user(&input.user)?.filter(|u| !u.disabled);
    let hash = s.projection.password_hash(&input.user)?;
    let password = input.password.clone();
    let ok = match (&user, hash) {
        (Some(_), Some(hash)) => {
            tokio::task::spawn_blocking(move || auth::verify_password(&hash, &password))
                .await
                .unwrap_or(false)
        }
        _ => false,
    };
    let Some(user) = user.filter(|_| ok) else {
        s.limits.failed_sign_in(from.ip());
        auth::audit(
            &s,
            sign_in_entry(
                &input.user,
                &from,
                401,
                "sign-in refused: wrong name or password",
            ),
        )
        .await;
        return Err(Failure::Unauthorized("wrong user name or password".into()));
    };
    let secret = auth::new_secret()?;
    let now = actors::now_ms();
    let ttl = s.auth.session_ttl;
    let credential = Credential {
        id: auth::new_id()?,
        kind: CredentialKind::Session,
        name: "browser session".into(),
        user: user.name.clone(),
        role: user.role,
        hash: auth::digest(&secret),
        created_ms: now,
        expires_ms: now + ttl.as_millis() as u64,
        revoked: false,
        from: from.ip().to_string(),
    };
    commit(
        &s,
        EventKind::CredentialIssued {
            credential: Box::new(credential.clone()),
        },
    )
    .await?;
    auth::audit(&s, sign_in_entry(&user.name, &from, 200, "signed in")).await;
    let principal = Principal {
        role: user.role,
        credential: credential.id,
        kind: CredentialKind::Session,
        expires_ms: credential.expires_ms,
        csrf: Some(auth::csrf_for(&secret)),
        user,
    };
    let cookie = format!(
        "{}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        auth::SESSION_COOKIE,
        ttl.as_secs(),
        if s.tls { "; Secure" } else { "" }
    );
    let mut response = Json(principal).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// Signs out: the credential used is revoked (and the session cookie cleared).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = proto::api::ApiError)))]
pub async fn logout(
    State(s): State<AppState>,
    c: Option<Extension<Caller>>,
) -> Result<Response, Failure> {
    let c = caller(c)?;
    commit(
        &s,
        EventKind::CredentialRevoked {
            id: c.principal.credential.into(),
        },
    )
    .await?;
    let clear = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        auth::SESSION_COOKIE
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// Who is asking, with what role, until when.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = Principal), (status = 401, body = proto::api::ApiError)))]
pub async fn me(c: Option<Extension<Caller>>) -> Result<Json<Principal>, Failure> {
    Ok(Json(caller(c)?.principal))
}

/// Whether the request is signed in, and as whom: `null` when not (never a 401, so that a
/// page can ask before showing its sign-in form).
#[utoipa::path(get, path = "/api/v1/auth/state", tag = "auth",
    responses((status = 200, body = Option<Principal>)))]
pub async fn state(c: Option<Extension<Caller>>) -> Json<Option<Principal>> {
    Json(c.map(|Extension(c)| c.principal))
}

/// Changes one's own password (which ends a one-time password's restriction).
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordInput,
    responses((status = 204), (status = 400, body = proto::api::ApiError), (status = 401, body = proto::api::ApiError)))]
pub async fn password(
    State(s): State<AppState>,
    c: Option<Extension<Caller>>,
    input: Result<Json<PasswordInput>, JsonRejection>,
) -> Result<StatusCode, Failure> {
    let c = caller(c)?;
    let input = json_body(input)?;
    auth::check_password(&input.new).map_err(|_| {
        bad(
            "new",
            format!("must be at least {} characters", auth::MIN_PASSWORD),
        )
    })?;
    if input.new == input.current {
        return Err(bad("new", "must differ from the current password"));
    }
    let name = c.principal.user.name.clone();
    let hash = s.projection.password_hash(&name)?.unwrap_or_default();
    let (current, new) = (input.current, input.new);
    let hashed = tokio::task::spawn_blocking(move || {
        if auth::verify_password(&hash, &current) {
            auth::hash_password(&new).map(Some)
        } else {
            Ok(None)
        }
    })
    .await
    .map_err(|e| Failure::Internal(e.to_string()))??;
    let Some(hashed) = hashed else {
        return Err(bad("current", "is not the current password"));
    };
    let mut user = s
        .projection
        .user(&name)?
        .ok_or_else(|| Failure::NotFound(format!("no user {name}")))?;
    user.must_change_password = false;
    user.updated_ms = actors::now_ms();
    commit(
        &s,
        EventKind::UserSet {
            user: Box::new(user),
            password_hash: Some(hashed.into()),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Credentials: one's own, or everyone's for an admin (`?all=true`); revoked and expired ones
/// are left out unless `?all=true`.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "auth",
    params(("all" = Option<bool>, Query, description = "Everyone's (admin), revoked and expired included")),
    responses((status = 200, body = Vec<Credential>)))]
pub async fn tokens(
    State(s): State<AppState>,
    c: Option<Extension<Caller>>,
    Query(q): Pairs,
) -> Result<Json<Vec<Credential>>, Failure> {
    let c = caller(c)?;
    let mut p = super::params::Params::new(q)?;
    let all = p.parse::<bool>("all", "true or false")?.unwrap_or(false);
    p.finish()?;
    if all && c.principal.role < AccessRole::Admin {
        return Err(Failure::Forbidden(
            "only an admin sees everyone's credentials".into(),
        ));
    }
    let now = actors::now_ms();
    let mut list: Vec<Credential> = s
        .projection
        .credentials()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|k| all || (k.user == c.principal.user.name && !k.revoked && k.expires_ms > now))
        .collect();
    list.sort_by_key(|k| std::cmp::Reverse(k.created_ms));
    Ok(Json(list))
}

/// Issues an API token for the caller: its secret is in this answer and nowhere else.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "auth", request_body = TokenInput,
    responses((status = 201, body = IssuedToken), (status = 400, body = proto::api::ApiError)))]
pub async fn create_token(
    State(s): State<AppState>,
    c: Option<Extension<Caller>>,
    input: Result<Json<TokenInput>, JsonRejection>,
) -> Result<(StatusCode, Json<IssuedToken>), Failure> {
    let c = caller(c)?;
    let input = json_body(input)?;
    let name = input.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(bad("name", "1 to 100 characters"));
    }
    let role = match input.role.as_deref() {
        None => c.principal.role,
        Some(r) => AccessRole::parse(r).ok_or_else(|| {
            bad(
                "role",
                format!("`{r}` is not viewer, operator, editor or admin"),
            )
        })?,
    };
    if role > c.principal.role {
        return Err(bad(
            "role",
            format!("may not exceed your own ({})", c.principal.role.name()),
        ));
    }
    let life = match input.expires_in.as_deref() {
        None => DEFAULT_TOKEN_LIFE,
        Some(d) => humantime::parse_duration(d)
            .map_err(|_| bad("expires_in", format!("`{d}` is not a duration like 30d")))?,
    };
    if life.is_zero() || life > MAX_TOKEN_LIFE {
        return Err(bad("expires_in", "between 1s and 730d"));
    }
    let secret = auth::new_secret()?;
    let now = actors::now_ms();
    let credential = Credential {
        id: auth::new_id()?,
        kind: CredentialKind::Token,
        name: name.to_owned(),
        user: c.principal.user.name.clone(),
        role,
        hash: auth::digest(&secret),
        created_ms: now,
        expires_ms: now + life.as_millis() as u64,
        revoked: false,
        from: c.from.to_string(),
    };
    commit(
        &s,
        EventKind::CredentialIssued {
            credential: Box::new(credential.clone()),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            token: secret,
            credential,
        }),
    ))
}

/// Revokes a credential: one's own, or anyone's for an admin.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "auth", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = proto::api::ApiError)))]
pub async fn revoke_token(
    State(s): State<AppState>,
    c: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    let c = caller(c)?;
    let found = s
        .projection
        .credential(&id)?
        .filter(|k| k.user == c.principal.user.name || c.principal.role == AccessRole::Admin)
        .ok_or_else(|| Failure::NotFound(format!("no credential {id} of yours")))?;
    if !found.revoked {
        commit(&s, EventKind::CredentialRevoked { id: id.into() }).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Every user.
#[utoipa::path(get, path = "/api/v1/users", tag = "auth", responses((status = 200, body = Vec<User>)))]
pub async fn users(State(s): State<AppState>) -> Result<Json<Vec<User>>, Failure> {
    Ok(Json(s.projection.users().collect::<Result<_, _>>()?))
}

fn valid_name(name: &str) -> Result<(), Failure> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(bad("name", "1 to 64 letters, digits, `.`, `_`, `-` or `@`"))
    }
}

fn parse_role(role: &str) -> Result<AccessRole, Failure> {
    AccessRole::parse(role).ok_or_else(|| {
        bad(
            "role",
            format!("`{role}` is not viewer, operator, editor or admin"),
        )
    })
}

/// A user's scope: networks (`10.1.0.0/16`) and sites (`site:NAME`, a federation's site by
/// its `federation.networks`).
fn parse_scope(scope: &[String]) -> Result<Vec<String>, Failure> {
    scope
        .iter()
        .map(|n| {
            if let Some(site) = n.trim().strip_prefix("site:") {
                let ok = !site.is_empty()
                    && site
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                return if ok {
                    Ok(format!("site:{site}"))
                } else {
                    Err(bad(
                        "scope",
                        format!("`{n}`: a site name is letters, digits, - _ ."),
                    ))
                };
            }
            proto::classify::parse_cidr(n)
                .map(|net| net.to_string())
                .ok_or_else(|| {
                    bad(
                        "scope",
                        format!(
                            "`{n}` is not a network like 10.1.0.0/16 or a site like site:paris"
                        ),
                    )
                })
        })
        .collect()
}

async fn hashed(password: String) -> Result<String, Failure> {
    auth::check_password(&password)?;
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| Failure::Internal(e.to_string()))?
}

/// Creates a user; it must choose a new password at its first sign-in.
#[utoipa::path(post, path = "/api/v1/users", tag = "auth", request_body = UserInput,
    responses((status = 201, body = User), (status = 400, body = proto::api::ApiError)))]
pub async fn create_user(
    State(s): State<AppState>,
    input: Result<Json<UserInput>, JsonRejection>,
) -> Result<(StatusCode, Json<User>), Failure> {
    let input = json_body(input)?;
    valid_name(&input.name)?;
    if s.projection.user(&input.name)?.is_some() {
        return Err(bad("name", format!("user `{}` exists", input.name)));
    }
    if s.projection.user_count() >= MAX_USERS {
        return Err(bad("name", format!("at most {MAX_USERS} users")));
    }
    let role = parse_role(&input.role)?;
    let scope = parse_scope(&input.scope)?;
    let password = input
        .password
        .ok_or_else(|| bad("password", "a new user needs a password"))?;
    let hash = hashed(password).await?;
    let now = actors::now_ms();
    let user = User {
        name: input.name,
        role,
        scope,
        disabled: input.disabled.unwrap_or(false),
        must_change_password: true,
        created_ms: now,
        updated_ms: now,
    };
    commit(
        &s,
        EventKind::UserSet {
            user: Box::new(user.clone()),
            password_hash: Some(hash.into()),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// The admins left if `name` became `role` (or went away, with `None`).
fn admins_after(s: &AppState, name: &str, role: Option<AccessRole>) -> Result<usize, Failure> {
    let mut n = 0;
    for u in s.projection.users() {
        let u = u?;
        let r = if u.name == name {
            role
        } else {
            (!u.disabled).then_some(u.role)
        };
        n += usize::from(r == Some(AccessRole::Admin));
    }
    Ok(n)
}

/// Changes a user's role, scope, state or password (a new password is one-time again).
#[utoipa::path(put, path = "/api/v1/users/{name}", tag = "auth", params(("name" = String, Path)),
    request_body = UserInput,
    responses((status = 200, body = User), (status = 400, body = proto::api::ApiError), (status = 404, body = proto::api::ApiError)))]
pub async fn update_user(
    State(s): State<AppState>,
    Path(name): Path<String>,
    input: Result<Json<UserInput>, JsonRejection>,
) -> Result<Json<User>, Failure> {
    let input = json_body(input)?;
    let mut user = s
        .projection
        .user(&name)?
        .ok_or_else(|| Failure::NotFound(format!("no user {name}")))?;
    user.role = parse_role(&input.role)?;
    user.scope = parse_scope(&input.scope)?;
    if let Some(d) = input.disabled {
        user.disabled = d;
    }
    let effective = (!user.disabled).then_some(user.role);
    if admins_after(&s, &name, effective)? == 0 {
        return Err(bad("role", "the last admin must stay an enabled admin"));
    }
    let hash = match input.password {
        Some(p) => {
            user.must_change_password = true;
            Some(hashed(p).await?.into())
        }
        None => None,
    };
    user.updated_ms = actors::now_ms();
    commit(
        &s,
        EventKind::UserSet {
            user: Box::new(user.clone()),
            password_hash: hash,
        },
    )
    .await?;
    Ok(Json(user))
}

/// Deletes a user and revokes its credentials.
#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "auth", params(("name" = String, Path)),
    responses((status = 204), (status = 400, body = proto::api::ApiError), (status = 404, body = proto::api::ApiError)))]
pub async fn delete_user(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, Failure> {
    if s.projection.user(&name)?.is_none() {
        return Err(Failure::NotFound(format!("no user {name}")));
    }
    if admins_after(&s, &name, None)? == 0 {
        return Err(bad("name", "the last admin cannot be deleted"));
    }
    commit(&s, EventKind::UserDeleted { name: name.into() }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The audit trail: every change and refusal, oldest first (`from`, `to`, `offset`, `limit`
/// as for `/api/v1/history/events`).
#[utoipa::path(get, path = "/api/v1/audit", tag = "auth",
    params(("from" = Option<String>, Query), ("to" = Option<String>, Query),
        ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query)),
    responses((status = 200, body = Page<AuditRecord>), (status = 400, body = proto::api::ApiError)))]
pub async fn audit(
    State(s): State<AppState>,
    Query(mut q): Pairs,
) -> Result<Json<Page<AuditRecord>>, Failure> {
    if q.iter().any(|(k, _)| k == "kind") {
        return Err(bad("kind", "the audit trail has one kind"));
    }
    q.push(("kind".into(), "audit.recorded".into()));
    let Json(page) = super::history::events(State(s), Query(q)).await?;
    Ok(Json(Page {
        items: page
            .items
            .into_iter()
            .filter_map(|e| match e.event.kind {
                EventKind::AuditRecorded { entry } => Some(AuditRecord {
                    at_ms: e.event.at_ms,
                    index: e.index,
                    entry: *entry,
                }),
                _ => None,
            })
            .collect(),
        total: page.total,
        offset: page.offset,
        limit: page.limit,
    }))
}
