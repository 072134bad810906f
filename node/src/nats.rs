//! How the node and the command-line tools connect to NATS securely: a credentials file (JWT
//! and nkey, as `nsc` writes), an nkey seed, a user and password, TLS with a private CA and an
//! optional client certificate (mutual TLS), or TLS required for a URL that does not say so.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// NATS connection security (every field optional; none: plain, unauthenticated).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct NatsSecurity {
    /// Credentials file (JWT and nkey seed).
    #[arg(long = "nats-creds")]
    pub creds_file: Option<PathBuf>,
    /// File holding an nkey seed (`SU…`).
    #[arg(long = "nats-nkey-seed")]
    pub nkey_seed_file: Option<PathBuf>,
    /// User name (with `password`).
    #[arg(long = "nats-user")]
    pub user: Option<String>,
    /// Password of `user`.
    #[arg(long = "nats-password")]
    pub password: Option<String>,
    /// PEM CA certificate(s) to trust for the server's certificate.
    #[arg(long = "nats-tls-ca")]
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate, for servers that verify clients (with `tls_key`).
    #[arg(long = "nats-tls-cert")]
    pub tls_cert: Option<PathBuf>,
    /// PEM key of `tls_cert`.
    #[arg(long = "nats-tls-key")]
    pub tls_key: Option<PathBuf>,
    /// Refuse a connection that is not TLS.
    #[arg(long = "nats-require-tls")]
    pub require_tls: bool,
}

impl NatsSecurity {
    /// What is wrong with these settings, if anything (for config validation).
    pub fn problem(&self) -> Option<&'static str> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Some("tls_cert and tls_key go together");
        }
        if self.user.is_some() != self.password.is_some() {
            return Some("user and password go together");
        }
        let ways = [
            self.creds_file.is_some(),
            self.nkey_seed_file.is_some(),
            self.user.is_some(),
        ];
        if ways.into_iter().filter(|w| *w).count() > 1 {
            return Some("use one of creds_file, nkey_seed_file or user/password");
        }
        None
    }

    /// `options` with these settings applied; errors name the file that could not be used.
    pub async fn apply(
        &self,
        mut options: async_nats::ConnectOptions,
    ) -> anyhow::Result<async_nats::ConnectOptions> {
        if let Some(why) = self.problem() {
            anyhow::bail!("NATS security: {why}");
        }
        if let Some(path) = &self.creds_file {
            options = options
                .credentials_file(path)
                .await
                .with_context(|| format!("NATS credentials file {}", path.display()))?;
        }
        if let Some(path) = &self.nkey_seed_file {
            let seed = std::fs::read_to_string(path)
                .with_context(|| format!("NATS nkey seed file {}", path.display()))?;
            options = options.nkey(seed.trim().to_owned());
        }
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(ca) = &self.tls_ca {
            if !ca.is_file() {
                anyhow::bail!("NATS TLS CA file {} does not exist", ca.display());
            }
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if self.require_tls {
            options = options.require_tls(true);
        }
        Ok(options)
    }
}
