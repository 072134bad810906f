//! Access control: users and their roles (viewer < operator < editor < admin, optionally scoped
//! to networks), credentials (browser sessions and API tokens, each expiring and revocable), and
//! the audit trail of who changed what from where. These travel as events like everything else.
//! Secrets never do: a password is kept only as its argon2 hash, which is left out of JSON
//! (events published on NATS, API answers); a credential only as the SHA-256 of its value.

use serde::{Deserialize, Serialize};

// rkyv derives a resolver type for enums whose fields cannot carry docs; the allow is for that.
#[allow(missing_docs)]
mod role {
    use super::*;

    /// What a user may do; each role may do everything the ones before it may.
    #[derive(
        Clone,
        Copy,
        Debug,
        PartialEq,
        Eq,
        PartialOrd,
        Ord,
        Hash,
        Serialize,
        Deserialize,
        rkyv::Archive,
        rkyv::Serialize,
        rkyv::Deserialize,
    )]
    #[serde(rename_all = "snake_case")]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum AccessRole {
        /// Reads everything.
        Viewer,
        /// Also acknowledges and resolves alerts.
        Operator,
        /// Also edits classification and alert rules and asset roles.
        Editor,
        /// Also manages users, every token, and the cluster.
        Admin,
    }

    /// Which kind of credential.
    #[derive(
        Clone,
        Copy,
        Debug,
        PartialEq,
        Eq,
        Serialize,
        Deserialize,
        rkyv::Archive,
        rkyv::Serialize,
        rkyv::Deserialize,
    )]
    #[serde(rename_all = "snake_case")]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub enum CredentialKind {
        /// A browser session (cookie), from signing in.
        Session,
        /// An API token for programs (`Authorization: Bearer`).
        Token,
    }
}

pub use role::{AccessRole, CredentialKind};

impl AccessRole {
    /// Every role, least first.
    pub const ALL: [AccessRole; 4] = [
        AccessRole::Viewer,
        AccessRole::Operator,
        AccessRole::Editor,
        AccessRole::Admin,
    ];

    /// Its name: `viewer`, `operator`, `editor`, `admin`.
    pub fn name(self) -> &'static str {
        match self {
            AccessRole::Viewer => "viewer",
            AccessRole::Operator => "operator",
            AccessRole::Editor => "editor",
            AccessRole::Admin => "admin",
        }
    }

    /// The role named `name` (any case).
    pub fn parse(name: &str) -> Option<AccessRole> {
        AccessRole::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// A user, as the API shows it (no password hash).
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// Sign-in name: letters, digits, `.`, `_`, `-`, `@`.
    pub name: String,
    /// What the user may do.
    pub role: AccessRole,
    /// Networks the user's role is limited to (CIDRs); empty: everything.
    pub scope: Vec<String>,
    /// Signed out and refused.
    pub disabled: bool,
    /// Must choose a new password before anything else (after a one-time password).
    pub must_change_password: bool,
    /// Created, UTC ms.
    pub created_ms: u64,
    /// Last changed, UTC ms.
    pub updated_ms: u64,
}

/// What creates or changes a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInput {
    /// Sign-in name (required to create; a change keeps the path's name).
    #[serde(default)]
    pub name: String,
    /// A new password (at least 12 characters); required to create.
    #[serde(default)]
    pub password: Option<String>,
    /// `viewer`, `operator`, `editor` or `admin`.
    pub role: String,
    /// Networks the role is limited to.
    #[serde(default)]
    pub scope: Vec<String>,
    /// Disable (or enable) the user.
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// A session or API token. Its secret value is shown once, when issued; only its SHA-256 is kept.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Credential {
    /// Its id (not secret: used to list and revoke it).
    pub id: String,
    /// Session or API token.
    pub kind: CredentialKind,
    /// What it is for.
    pub name: String,
    /// Whose it is.
    pub user: String,
    /// Most it may do (never more than its user's role).
    pub role: AccessRole,
    /// SHA-256 of the secret, hex.
    pub hash: String,
    /// Issued, UTC ms.
    pub created_ms: u64,
    /// Expires, UTC ms.
    pub expires_ms: u64,
    /// Revoked (signed out).
    pub revoked: bool,
    /// Address it was issued to.
    pub from: String,
}

/// What asks for a new API token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInput {
    /// What it is for.
    pub name: String,
    /// Its role, at most the caller's (default: the caller's).
    #[serde(default)]
    pub role: Option<String>,
    /// How long it lives: `30d`, `12h` (default 90 days, at most 2 years).
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// A token just issued: the only time its secret is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuedToken {
    /// The secret: send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// The token's record.
    pub credential: Credential,
}

/// Signing in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginInput {
    /// Sign-in name.
    pub user: String,
    /// Password.
    pub password: String,
}

/// Changing one's own password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordInput {
    /// The current password.
    pub current: String,
    /// The new one (at least 12 characters).
    pub new: String,
}

/// Who is asking: the answer to signing in and to `GET /api/v1/auth/me`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Principal {
    /// The user.
    pub user: User,
    /// What this credential may do (its role, capped by the user's).
    pub role: AccessRole,
    /// The credential's id.
    pub credential: String,
    /// Session or API token.
    pub kind: CredentialKind,
    /// When the credential expires, UTC ms.
    pub expires_ms: u64,
    /// For sessions: the value to send as `X-CSRF-Token` with every change.
    pub csrf: Option<String>,
}

/// One audited action: who did what, when, from where, and how it ended.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// The user (or `-` for a sign-in with an unknown name).
    pub who: String,
    /// The role the action was done with.
    pub role: Option<AccessRole>,
    /// The credential used.
    pub credential: Option<String>,
    /// Client address.
    pub from: String,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// What happened, in words.
    pub summary: String,
}

/// An audit entry with when it was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    /// Recorded, UTC ms.
    pub at_ms: u64,
    /// Log index of the record.
    pub index: u64,
    /// The entry.
    pub entry: AuditEntry,
}
