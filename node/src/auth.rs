//! Access control for the REST API: who is asking (an API token in `Authorization: Bearer`, or a
//! browser session cookie with its CSRF header on every change), what their role lets them do
//! (one table, [`needs`]), per-client rate limits, security headers, the audit record of every
//! change and refusal, and the first admin of a new cluster.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use proto::auth::{AccessRole, AuditEntry, Credential, CredentialKind, Principal, User};
use proto::event::EventKind;
use sha2::{Digest, Sha256};

use crate::api::params::Failure;
use crate::api::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "flowlens_session";
/// The header a session must send with every change.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 12;

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Anyone (health, signing in, the UI's files, the API description).
    Public,
    /// Any signed-in user, whatever its role or password state (who am I, sign out, change
    /// password).
    SignedIn,
    /// At least this role.
    Role(AccessRole),
}

/// The one table of who may do what: reads need a viewer; acknowledging and resolving alerts
/// an operator; rules and asset roles an editor; users, every token, the cluster and its
/// configuration an admin. A user's own tokens are any signed-in user's.
pub fn needs(method: &Method, path: &str) -> Need {
    let Some(api) = path.strip_prefix("/api/v1") else {
        return if path == "/metrics" {
            Need::Role(AccessRole::Viewer)
        } else {
            Need::Public
        };
    };
    let read = matches!(*method, Method::GET | Method::HEAD);
    match api {
        "/health/live" | "/health/ready" | "/openapi.json" | "/auth/login" | "/auth/state" => {
            Need::Public
        }
        "/auth/me" | "/auth/logout" | "/auth/password" => Need::SignedIn,
        p if p == "/tokens" || p.starts_with("/tokens/") => Need::Role(AccessRole::Viewer),
        p if p.starts_with("/users") || p.starts_with("/audit") || p.starts_with("/admin") => {
            Need::Role(AccessRole::Admin)
        }
        "/about" => Need::Role(AccessRole::Admin),
        _ if read => Need::Role(AccessRole::Viewer),
        p if p.starts_with("/alerts/") => Need::Role(AccessRole::Operator),
        _ => Need::Role(AccessRole::Editor),
    }
}

/// Whether a role scoped to networks may use a route: those that answer within the scope
/// ([`crate::api::scope::Scope`]) and the caller's own tokens. Everything else (statistics over
/// every network, history, analysis, rules, cluster) is refused to scoped roles.
pub fn scoped_route(method: &Method, path: &str) -> bool {
    let Some(api) = path.strip_prefix("/api/v1") else {
        return false;
    };
    let read = matches!(*method, Method::GET | Method::HEAD);
    let under = |p: &str| api == p || api.strip_prefix(p).is_some_and(|r| r.starts_with('/'));
    if under("/tokens") {
        return true;
    }
    if read {
        return under("/assets")
            || under("/dependencies")
            || under("/alerts")
            || [
                "/services",
                "/topology",
                "/flows",
                "/stats/top-talkers",
                "/advisories",
            ]
            .contains(&api);
    }
    match *method {
        Method::PUT => api.starts_with("/assets/") && api.ends_with("/role"),
        Method::POST => {
            api.starts_with("/alerts/")
                && (api.ends_with("/acknowledge") || api.ends_with("/resolve"))
        }
        _ => false,
    }
}

/// A new secret: `fl_` and 43 URL-safe characters (256 random bits).
pub fn new_secret() -> Result<String, Failure> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| Failure::Internal(format!("no randomness: {e}")))?;
    Ok(format!(
        "fl_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// A new id for a credential (not secret).
pub fn new_id() -> Result<String, Failure> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| Failure::Internal(format!("no randomness: {e}")))?;
    Ok(hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a secret, hex: what is kept of it.
pub fn digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// The CSRF value that goes with a session secret (derived, so nothing more is stored).
pub fn csrf_for(secret: &str) -> String {
    digest(&format!("csrf:{secret}"))
}

/// The argon2id hash (PHC string) of `password`.
pub fn hash_password(password: &str) -> Result<String, Failure> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt)
        .map_err(|e| Failure::Internal(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Failure::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Failure::Internal(format!("hashing a password: {e}")))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A password good enough to set, or why not.
pub fn check_password(password: &str) -> Result<(), Failure> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(crate::api::params::bad(
            "password",
            format!("must be at least {MIN_PASSWORD} characters"),
        ));
    }
    Ok(())
}

/// Who made the request: the principal the middleware found, in the request's extensions.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The user, role and credential.
    pub principal: Principal,
    /// The client's address.
    pub from: IpAddr,
}

/// A token bucket per client address, and failed sign-ins per client per minute.
#[derive(Clone, Default)]
pub struct Limits {
    buckets: Arc<Mutex<HashMap<IpAddr, (f64, Instant)>>>,
    failures: Arc<Mutex<HashMap<IpAddr, (u32, Instant)>>>,
}

/// Most clients tracked before the oldest are forgotten.
const MAX_TRACKED: usize = 100_000;

impl Limits {
    /// Takes one request from `ip`'s bucket (`rate` per second, bursts of twice that).
    fn allow(&self, ip: IpAddr, rate: u32) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        let now = Instant::now();
        if buckets.len() > MAX_TRACKED {
            buckets.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(10));
        }
        let burst = f64::from(rate) * 2.0;
        let (tokens, at) = buckets.entry(ip).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * f64::from(rate)).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether `ip` may try to sign in again (fewer than `per_minute` failures this minute).
    pub fn may_sign_in(&self, ip: IpAddr, per_minute: u32) -> bool {
        let Ok(mut failures) = self.failures.lock() else {
            return true;
        };
        match failures.get(&ip) {
            Some((n, since)) if since.elapsed() < Duration::from_secs(60) => *n < per_minute,
            Some(_) => {
                failures.remove(&ip);
                true
            }
            None => true,
        }
    }

    /// Counts a failed sign-in from `ip`.
    pub fn failed_sign_in(&self, ip: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            if failures.len() > MAX_TRACKED {
                failures.retain(|_, (_, since)| since.elapsed() < Duration::from_secs(60));
            }
            let entry = failures.entry(ip).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= Duration::from_secs(60) {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        }
    }
}

/// The secret a request carries: its bearer token, else its session cookie (and which).
fn presented(headers: &HeaderMap) -> Option<(String, CredentialKind)> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some((bearer.trim().to_owned(), CredentialKind::Token));
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| (value.to_owned(), CredentialKind::Session))
}

/// The principal of a live credential, or why there is none.
pub fn principal_of(
    s: &AppState,
    secret: &str,
    now_ms: u64,
) -> Result<(Credential, User, AccessRole), Failure> {
    let credential = s
        .projection
        .credential_by_hash(&digest(secret))?
        .ok_or_else(|| Failure::Unauthorized("unknown or revoked credential".into()))?;
    if credential.expires_ms <= now_ms {
        return Err(Failure::Unauthorized(format!(
            "the {} expired; sign in again",
            kind_name(credential.kind)
        )));
    }
    let user = s
        .projection
        .user(&credential.user)?
        .filter(|u| !u.disabled)
        .ok_or_else(|| Failure::Unauthorized(format!("user `{}` is disabled", credential.user)))?;
    let role = credential.role.min(user.role);
    Ok((credential, user, role))
}

/// Who a live credential speaks for, with the CSRF value a session must send.
fn principal(credential: Credential, user: User, role: AccessRole, secret: &str) -> Principal {
    Principal {
        role,
        csrf: (credential.kind == CredentialKind::Session).then(|| csrf_for(secret)),
        credential: credential.id,
        kind: credential.kind,
        expires_ms: credential.expires_ms,
        user,
    }
}

fn kind_name(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::Session => "session",
        CredentialKind::Token => "token",
    }
}

/// Commits an audit entry (logged, not failed, when the log cannot take it).
pub async fn audit(s: &AppState, entry: AuditEntry) {
    let summary = entry.summary.clone();
    if let Err(e) = crate::api::rules::commit(
        s,
        EventKind::AuditRecorded {
            entry: Box::new(entry),
        },
    )
    .await
    {
        tracing::warn!(error = ?e, summary, "could not record an audit entry");
    }
}

fn client(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

/// The middleware: rate limit, authenticate, authorise, audit, and add security headers.
pub async fn guard(State(s): State<AppState>, request: Request, next: Next) -> Response {
    let from = client(&request);
    let mut response = if s.limits.allow(from, s.auth.requests_per_second) {
        check(&s, from, request, next)
            .await
            .unwrap_or_else(IntoResponse::into_response)
    } else {
        Failure::TooMany(format!(
            "more than {} requests per second from {from}; slow down",
            s.auth.requests_per_second
        ))
        .into_response()
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'",
        ),
        ("cache-control", "no-store"),
    ] {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

async fn check(
    s: &AppState,
    from: IpAddr,
    mut request: Request,
    next: Next,
) -> Result<Response, Failure> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let need = needs(&method, &path);
    if need == Need::Public {
        // A public route still learns who is asking, when a valid credential comes with it.
        if let Some((secret, _)) = presented(request.headers()) {
            if let Ok((credential, user, role)) = principal_of(s, &secret, actors::now_ms()) {
                let principal = principal(credential, user, role, &secret);
                request.extensions_mut().insert(Caller { principal, from });
            }
        }
        return Ok(next.run(request).await);
    }
    let Some((secret, kind)) = presented(request.headers()) else {
        return Err(Failure::Unauthorized(
            "sign in first: send `Authorization: Bearer <token>`, or sign in at POST /api/v1/auth/login".into(),
        ));
    };
    let (credential, user, role) = principal_of(s, &secret, actors::now_ms())?;
    let changes = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if kind == CredentialKind::Session && changes {
        let sent = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok());
        if sent != Some(csrf_for(&secret).as_str()) {
            return Err(Failure::Forbidden(format!(
                "a change from a browser session needs the `{CSRF_HEADER}` header it was given at sign-in"
            )));
        }
    }
    let principal = principal(credential, user, role, &secret);
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or(path.clone(), |p| p.to_string());
    let entry = |status: u16, summary: String| AuditEntry {
        who: principal.user.name.clone(),
        role: Some(role),
        credential: Some(principal.credential.clone()),
        from: from.to_string(),
        method: method.to_string(),
        path: path_and_query.clone(),
        status,
        summary,
    };
    if let Need::Role(needed) = need {
        if principal.user.must_change_password && kind == CredentialKind::Session {
            return Err(Failure::Forbidden(
                "choose a new password first: POST /api/v1/auth/password".into(),
            ));
        }
        if role < needed {
            let why = format!(
                "`{}` ({}) may not {method} {path}: that needs {}",
                principal.user.name,
                role.name(),
                needed.name()
            );
            audit(s, entry(403, format!("refused: {why}"))).await;
            return Err(Failure::Forbidden(why));
        }
        if !principal.user.scope.is_empty() && !scoped_route(&method, &path) {
            let why = format!(
                "`{}` is scoped to {}: {method} {path} is not limited to networks. A scoped \
                 role reaches assets, services, dependencies, the topology, flows, top talkers, \
                 advisories, alerts and its own tokens",
                principal.user.name,
                principal.user.scope.join(", ")
            );
            audit(s, entry(403, format!("refused: {why}"))).await;
            return Err(Failure::Forbidden(why));
        }
    }
    request.extensions_mut().insert(Caller {
        principal: principal.clone(),
        from,
    });
    let response = next.run(request).await;
    // Every change is recorded, whatever its outcome (sign-ins record themselves).
    if changes && path != "/api/v1/auth/login" {
        let status = response.status();
        let summary = if status.is_success() {
            format!("{method} {path}")
        } else {
            format!("{method} {path} failed ({status})")
        };
        audit(s, entry(status.as_u16(), summary)).await;
    }
    Ok(response)
}

/// Creates the first admin when this node leads a cluster with no users: a one-time password
/// (printed, and written to `<data_dir>/initial-admin-password`, readable by the owner only),
/// and the configured bootstrap token if there is one. Runs until it has done so or another
/// node has.
pub async fn bootstrap(s: AppState, data_dir: std::path::PathBuf, token: Option<String>) {
    loop {
        if s.projection.user_count() > 0 {
            return;
        }
        if s.log.metrics().current_leader == Some(s.log.metrics().id) {
            match create_first_admin(&s, &data_dir, token.as_deref()).await {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = ?e, "creating the first admin"),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn create_first_admin(
    s: &AppState,
    data_dir: &std::path::Path,
    token: Option<&str>,
) -> Result<(), Failure> {
    let password = new_secret()?;
    let hash = hash_password(&password)?;
    let now = actors::now_ms();
    let user = User {
        name: "admin".into(),
        role: AccessRole::Admin,
        scope: Vec::new(),
        disabled: false,
        must_change_password: true,
        created_ms: now,
        updated_ms: now,
    };
    let mut events = vec![EventKind::UserSet {
        user: Box::new(user),
        password_hash: Some(hash.into()),
    }];
    if let Some(token) = token {
        events.push(EventKind::CredentialIssued {
            credential: Box::new(Credential {
                id: new_id()?,
                kind: CredentialKind::Token,
                name: "bootstrap (auth.bootstrap_token)".into(),
                user: "admin".into(),
                role: AccessRole::Admin,
                hash: digest(token.trim()),
                created_ms: now,
                // The configured token lives as long as the config says so (100 years).
                expires_ms: now + 100 * 365 * 86_400_000,
                revoked: false,
                from: "config".into(),
            }),
        });
    }
    // One entry: the user and its bootstrap token appear together, so a node that is ready
    // (it has a user) also knows the token.
    crate::api::rules::commit_all(s, events).await?;
    let file = data_dir.join("initial-admin-password");
    if let Err(e) = write_private(&file, &format!("{password}\n")) {
        tracing::warn!(error = %e, file = %file.display(), "could not write the initial admin password");
    }
    eprintln!(
        "FlowLens: created user `admin` with the one-time password {password}\n  \
         (also in {}); sign in at the UI and choose a new one.",
        file.display()
    );
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_gives_each_route_its_role() {
        let (get, post, put, delete) = (Method::GET, Method::POST, Method::PUT, Method::DELETE);
        let role = Need::Role;
        assert_eq!(needs(&get, "/api/v1/health/ready"), Need::Public);
        assert_eq!(needs(&post, "/api/v1/auth/login"), Need::Public);
        assert_eq!(needs(&get, "/"), Need::Public);
        assert_eq!(needs(&get, "/pkg/web.js"), Need::Public);
        assert_eq!(needs(&get, "/metrics"), role(AccessRole::Viewer));
        assert_eq!(needs(&get, "/api/v1/assets"), role(AccessRole::Viewer));
        assert_eq!(
            needs(&get, "/api/v1/analysis/spof"),
            role(AccessRole::Viewer)
        );
        assert_eq!(
            needs(&post, "/api/v1/alerts/x/acknowledge"),
            role(AccessRole::Operator)
        );
        assert_eq!(
            needs(&post, "/api/v1/alert-rules"),
            role(AccessRole::Editor)
        );
        assert_eq!(
            needs(&put, "/api/v1/assets/10.0.0.1/role"),
            role(AccessRole::Editor)
        );
        assert_eq!(needs(&get, "/api/v1/users"), role(AccessRole::Admin));
        assert_eq!(needs(&get, "/api/v1/audit"), role(AccessRole::Admin));
        assert_eq!(
            needs(&post, "/api/v1/admin/rebuild"),
            role(AccessRole::Admin)
        );
        assert_eq!(needs(&delete, "/api/v1/tokens/1"), role(AccessRole::Viewer));
        assert_eq!(needs(&post, "/api/v1/auth/password"), Need::SignedIn);
    }

    #[test]
    fn secrets_hash_and_passwords_verify() {
        let a = new_secret().ok().unwrap_or_default();
        let b = new_secret().ok().unwrap_or_default();
        assert!(a.starts_with("fl_") && a.len() == 46 && a != b, "{a} {b}");
        assert_eq!(digest(&a).len(), 64);
        assert_ne!(csrf_for(&a), digest(&a));
        let hash = hash_password("correct horse battery")
            .ok()
            .unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse battery!"));
        assert!(!verify_password("not a hash", "x"));
        assert!(check_password("short").is_err());
    }

    #[test]
    fn a_client_over_its_rate_is_held_back_and_others_are_not() {
        let limits = Limits::default();
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let allowed = (0..50).filter(|_| limits.allow(a, 10)).count();
        assert_eq!(allowed, 20, "a burst of twice the rate");
        assert!(limits.allow(b, 10));
        for _ in 0..3 {
            limits.failed_sign_in(a);
        }
        assert!(!limits.may_sign_in(a, 3));
        assert!(limits.may_sign_in(b, 3));
    }
}
