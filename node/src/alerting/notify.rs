//! Notifiers: telling people and programs about an alert. A webhook gets the alert as JSON with
//! an HMAC-SHA256 signature header (`X-FlowLens-Signature: sha256=<hex>` of the body, keyed with
//! the notifier's secret); Slack and Microsoft Teams incoming webhooks get their own message
//! formats; email goes over SMTP (plain, STARTTLS or TLS, with AUTH PLAIN if configured). HTTP and HTTPS are spoken by hand
//! over tokio (HTTPS with rustls and the system's root certificates): one POST, `Connection:
//! close`, any 2xx is delivered.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use proto::alert::Alert;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Kinds of notifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifierKind {
    /// JSON POST with an HMAC signature.
    Webhook,
    /// Slack incoming webhook.
    Slack,
    /// Microsoft Teams incoming webhook.
    Teams,
    /// Email over SMTP.
    Email,
}

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain text (a relay on this host or a trusted network).
    #[default]
    None,
    /// Plain, then upgraded with STARTTLS (port 587 or 25).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// One notifier, from the node's config (`[[notifiers]]`); secrets stay in the config, out of
/// the event log and the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierConfig {
    /// What rules call it by.
    pub id: String,
    /// What it is.
    pub kind: NotifierKind,
    /// `http://` or `https://` URL (webhook, slack, teams).
    #[serde(default)]
    pub url: Option<String>,
    /// Key of the webhook's HMAC-SHA256 signature.
    #[serde(default)]
    pub secret: Option<String>,
    /// SMTP relay, `host:port` (email).
    #[serde(default)]
    pub smtp: Option<String>,
    /// Sender address (email).
    #[serde(default)]
    pub from: Option<String>,
    /// Recipients (email).
    #[serde(default)]
    pub to: Vec<String>,
    /// `none` (default), `starttls` or `tls` (email).
    #[serde(default)]
    pub smtp_security: SmtpSecurity,
    /// SMTP user for AUTH PLAIN (email).
    #[serde(default)]
    pub username: Option<String>,
    /// SMTP password (email).
    #[serde(default)]
    pub password: Option<String>,
}

impl NotifierConfig {
    /// What is missing or wrong, if anything.
    pub fn check(&self) -> Result<(), String> {
        if self.id.is_empty() || self.id.len() > 64 {
            return Err("id must be 1 to 64 characters".into());
        }
        match self.kind {
            NotifierKind::Webhook | NotifierKind::Slack | NotifierKind::Teams => {
                let url = self.url.as_deref().ok_or("url is required")?;
                Url::parse(url)?;
            }
            NotifierKind::Email => {
                self.smtp.as_deref().ok_or("smtp (host:port) is required")?;
                let from = self.from.as_deref().ok_or("from is required")?;
                if self.to.is_empty() {
                    return Err("to needs at least one address".into());
                }
                let relay = self.smtp.as_deref().unwrap_or_default();
                if self.username.is_some() != self.password.is_some() {
                    return Err("username and password go together".into());
                }
                let loopback = relay
                    .parse::<std::net::SocketAddr>()
                    .is_ok_and(|a| a.ip().is_loopback())
                    || relay.starts_with("localhost:");
                if self.username.is_some() && self.smtp_security == SmtpSecurity::None && !loopback
                {
                    return Err(
                        "a password would cross the network in clear: set smtp_security to starttls or tls"
                            .into(),
                    );
                }
                for a in std::iter::once(from).chain(self.to.iter().map(String::as_str)) {
                    if !a.contains('@') || a.contains(['\r', '\n', '<', '>']) {
                        return Err(format!("`{a}` is not an email address"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| -> [u8; 64] { block.map(|b| b ^ byte) };
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The webhook body: the alert, versioned.
pub fn webhook_body(alert: &Alert) -> String {
    serde_json::json!({ "schema": 1, "event": "alert.raised", "alert": alert }).to_string()
}

fn slack_body(alert: &Alert) -> String {
    serde_json::json!({
        "text": format!("*[{}]* {}: {}", alert.severity.name(), alert.rule_name, alert.summary)
    })
    .to_string()
}

fn teams_body(alert: &Alert) -> String {
    let colour = match alert.severity {
        proto::advisory::Severity::Critical => "D70000",
        proto::advisory::Severity::Warning => "FFA500",
        proto::advisory::Severity::Info => "0078D7",
    };
    serde_json::json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": alert.summary,
        "themeColor": colour,
        "title": format!("[{}] {}", alert.severity.name(), alert.rule_name),
        "text": alert.summary,
    })
    .to_string()
}

/// Tells one notifier about `alert` (one attempt, bounded by `timeout`).
pub async fn deliver(n: &NotifierConfig, alert: &Alert, timeout: Duration) -> Result<(), String> {
    let attempt = async {
        match n.kind {
            NotifierKind::Email => send_mail(n, alert).await,
            kind => {
                let url = Url::parse(n.url.as_deref().unwrap_or_default())?;
                let body = match kind {
                    NotifierKind::Slack => slack_body(alert),
                    NotifierKind::Teams => teams_body(alert),
                    _ => webhook_body(alert),
                };
                let mut headers =
                    vec![("X-FlowLens-Event".to_string(), "alert.raised".to_string())];
                if let (NotifierKind::Webhook, Some(secret)) = (kind, &n.secret) {
                    let mac = hmac_sha256(secret.as_bytes(), body.as_bytes());
                    headers.push((
                        "X-FlowLens-Signature".into(),
                        format!("sha256={}", hex(&mac)),
                    ));
                }
                post(&url, &headers, &body).await
            }
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| format!("no answer within {}", humantime::format_duration(timeout)))?
}

/// An `http(s)://host[:port]/path` URL.
#[derive(Debug, PartialEq, Eq)]
pub struct Url {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

impl Url {
    /// Parses a URL, or says what is wrong with it.
    pub fn parse(url: &str) -> Result<Url, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("`{url}` is not an http:// or https:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("`{url}`: unclosed [ in the host"))?;
            (host.to_string(), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse()
                .map_err(|_| format!("`{url}`: `{p}` is not a port"))?,
            None if tls => 443,
            None => 80,
        };
        if host.is_empty() || path.contains(['\r', '\n', ' ']) {
            return Err(format!("`{url}` has no host or a bad path"));
        }
        Ok(Url {
            tls,
            host,
            port,
            path: path.to_string(),
        })
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .unwrap_or_else(|_| {
                    rustls::ClientConfig::builder_with_provider(Arc::new(
                        rustls::crypto::ring::default_provider(),
                    ))
                    .with_protocol_versions(&[&rustls::version::TLS13])
                    .map(|b| {
                        b.with_root_certificates(rustls::RootCertStore::empty())
                            .with_no_client_auth()
                    })
                    .unwrap_or_else(|_| unreachable_config())
                });
            Arc::new(config)
        })
        .clone()
}

/// Only reached if ring offers no TLS version at all, which it always does.
fn unreachable_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth()
}

async fn post(url: &Url, headers: &[(String, String)], body: &str) -> Result<(), String> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("cannot connect to {}:{}: {e}", url.host, url.port))?;
    if url.tls {
        let name = rustls::pki_types::ServerName::try_from(url.host.clone())
            .map_err(|e| format!("`{}` is not a TLS server name: {e}", url.host))?;
        let stream = tokio_rustls::TlsConnector::from(tls_config())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {}: {e}", url.host))?;
        exchange(stream, url, headers, body).await
    } else {
        exchange(tcp, url, headers, body).await
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    url: &Url,
    headers: &[(String, String)],
    body: &str,
) -> Result<(), String> {
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: flowlens/{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        url.path,
        url.port,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending to {}: {e}", url.host))?;
    let mut answer = Vec::new();
    // A server may close without a TLS close_notify; what was read still counts.
    let _ = stream.take(64 * 1024).read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{} sent no HTTP status", url.host))?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let snippet: String = body.chars().take(200).collect();
        Err(format!("HTTP {status} from {}: {snippet}", url.host))
    }
}

async fn send_mail(n: &NotifierConfig, alert: &Alert) -> Result<(), String> {
    let relay = n.smtp.as_deref().unwrap_or_default();
    let host = relay.rsplit_once(':').map_or(relay, |(h, _)| h);
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let tcp = TcpStream::connect(relay)
        .await
        .map_err(|e| format!("cannot connect to SMTP relay {relay}: {e}"))?;
    match n.smtp_security {
        SmtpSecurity::None => {
            let mut smtp = BufReader::new(tcp);
            expect(&mut smtp, 220, "greeting").await?;
            command(&mut smtp, "EHLO flowlens\r\n", 250, "EHLO").await?;
            transaction(&mut smtp, n, alert).await
        }
        SmtpSecurity::Starttls => {
            let mut smtp = BufReader::new(tcp);
            expect(&mut smtp, 220, "greeting").await?;
            command(&mut smtp, "EHLO flowlens\r\n", 250, "EHLO").await?;
            command(&mut smtp, "STARTTLS\r\n", 220, "STARTTLS").await?;
            let mut smtp = BufReader::new(tls(&host, smtp.into_inner()).await?);
            command(&mut smtp, "EHLO flowlens\r\n", 250, "EHLO").await?;
            transaction(&mut smtp, n, alert).await
        }
        SmtpSecurity::Tls => {
            let mut smtp = BufReader::new(tls(&host, tcp).await?);
            expect(&mut smtp, 220, "greeting").await?;
            command(&mut smtp, "EHLO flowlens\r\n", 250, "EHLO").await?;
            transaction(&mut smtp, n, alert).await
        }
    }
}

async fn tls(
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("`{host}` is not a TLS server name: {e}"))?;
    tokio_rustls::TlsConnector::from(tls_config())
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {host}: {e}"))
}

/// AUTH (if configured), then one message.
async fn transaction<S: AsyncRead + AsyncWrite + Unpin>(
    smtp: &mut BufReader<S>,
    n: &NotifierConfig,
    alert: &Alert,
) -> Result<(), String> {
    use base64::Engine as _;
    if let (Some(user), Some(password)) = (&n.username, &n.password) {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        command(smtp, &format!("AUTH PLAIN {token}\r\n"), 235, "AUTH").await?;
    }
    let from = n.from.as_deref().unwrap_or_default();
    command(smtp, &format!("MAIL FROM:<{from}>\r\n"), 250, "MAIL FROM").await?;
    for to in &n.to {
        command(smtp, &format!("RCPT TO:<{to}>\r\n"), 250, "RCPT TO").await?;
    }
    command(smtp, "DATA\r\n", 354, "DATA").await?;
    let subject: String = format!(
        "[FlowLens {}] {}: {}",
        alert.severity.name(),
        alert.rule_name,
        alert.summary
    )
    .chars()
    .filter(|c| !c.is_control())
    .take(200)
    .collect();
    let mut text = format!(
        "From: {from}\r\nTo: {}\r\nSubject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n\r\nRule: {}\r\nSeverity: {}\r\nSubject: {}\r\nCause: {}\r\nAlert id: {}\r\n",
        n.to.join(", "),
        alert.summary,
        alert.rule_name,
        alert.severity.name(),
        alert.subject,
        alert.cause,
        alert.id
    );
    // Dot-stuffing: a line starting with '.' gets another.
    text = text.replace("\r\n.", "\r\n..");
    command(smtp, &format!("{text}.\r\n"), 250, "message").await?;
    let _ = smtp.get_mut().write_all(b"QUIT\r\n").await;
    Ok(())
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    smtp: &mut BufReader<S>,
    line: &str,
    want: u16,
    what: &str,
) -> Result<(), String> {
    smtp.get_mut()
        .write_all(line.as_bytes())
        .await
        .map_err(|e| format!("SMTP {what}: {e}"))?;
    expect(smtp, want, what).await
}

/// Reads one (possibly multi-line) SMTP reply and checks its code.
async fn expect<S: AsyncRead + AsyncWrite + Unpin>(
    smtp: &mut BufReader<S>,
    want: u16,
    what: &str,
) -> Result<(), String> {
    loop {
        let mut line = String::new();
        let n = smtp
            .read_line(&mut line)
            .await
            .map_err(|e| format!("SMTP {what}: {e}"))?;
        if n == 0 {
            return Err(format!("SMTP {what}: the relay closed the connection"));
        }
        let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        if line.as_bytes().get(3) == Some(&b'-') {
            continue;
        }
        return if code == want {
            Ok(())
        } else {
            Err(format!("SMTP {what}: relay answered {}", line.trim_end()))
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    fn alert() -> Alert {
        Alert {
            id: "a1".into(),
            rule_id: "r1".into(),
            rule_name: "new database client".into(),
            severity: proto::advisory::Severity::Critical,
            subject: "10.0.0.1>10.0.0.2:5432/6".into(),
            summary: "new dependency: 10.0.0.1 calls 10.0.0.2:5432/6".into(),
            cause: "dependency.discovered".into(),
            at_ms: 1,
        }
    }

    #[test]
    fn slack_and_teams_get_their_own_message_formats() {
        let slack: serde_json::Value =
            serde_json::from_str(&slack_body(&alert())).unwrap_or_default();
        assert_eq!(
            slack["text"],
            "*[CRITICAL]* new database client: new dependency: 10.0.0.1 calls 10.0.0.2:5432/6"
        );
        let teams: serde_json::Value =
            serde_json::from_str(&teams_body(&alert())).unwrap_or_default();
        assert_eq!(teams["@type"], "MessageCard");
        assert_eq!(teams["themeColor"], "D70000");
        assert_eq!(teams["title"], "[CRITICAL] new database client");
        let hook: serde_json::Value =
            serde_json::from_str(&webhook_body(&alert())).unwrap_or_default();
        assert_eq!(
            (&hook["schema"], &hook["alert"]["id"]),
            (&serde_json::json!(1), &serde_json::json!("a1"))
        );
    }

    #[test]
    fn notifiers_missing_what_they_need_are_refused() {
        let base = NotifierConfig {
            id: "x".into(),
            kind: NotifierKind::Email,
            url: None,
            secret: None,
            smtp: Some("127.0.0.1:25".into()),
            from: Some("a@b".into()),
            to: vec!["c@d".into()],
            smtp_security: SmtpSecurity::None,
            username: None,
            password: None,
        };
        assert_eq!(base.check(), Ok(()));
        let remote_clear = NotifierConfig {
            smtp: Some("192.0.2.1:25".into()),
            username: Some("u".into()),
            password: Some("p".into()),
            ..base.clone()
        };
        assert!(remote_clear.check().is_err_and(|e| e.contains("in clear")));
        let remote_tls = NotifierConfig {
            smtp_security: SmtpSecurity::Starttls,
            ..remote_clear
        };
        assert_eq!(remote_tls.check(), Ok(()));
        let no_to = NotifierConfig {
            to: vec![],
            ..base.clone()
        };
        assert!(no_to.check().is_err());
        let bad_from = NotifierConfig {
            from: Some("a@b>\r\nRCPT".into()),
            ..base.clone()
        };
        assert!(bad_from.check().is_err());
        let hook = NotifierConfig {
            kind: NotifierKind::Slack,
            url: Some("gopher://x".into()),
            ..base
        };
        assert!(hook.check().is_err());
    }

    #[test]
    fn urls_are_parsed_or_refused_clearly() {
        assert_eq!(
            Url::parse("https://hooks.example.com/services/x"),
            Ok(Url {
                tls: true,
                host: "hooks.example.com".into(),
                port: 443,
                path: "/services/x".into()
            })
        );
        assert_eq!(
            Url::parse("http://[::1]:9000").map(|u| (u.host, u.port, u.path)),
            Ok(("::1".into(), 9000, "/".into()))
        );
        assert!(Url::parse("ftp://x").is_err());
        assert!(Url::parse("http://host:99999/").is_err());
    }
}
