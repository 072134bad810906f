//! The about answer (`/api/v1/about`): this node's version, uptime, memory, Raft role and
//! counters, every cluster member as it reports itself, and the configuration with its secrets
//! hidden.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use proto::api::{About, ClusterMember, Health};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::live::{ask, health, rss_bytes};
use super::params::Failure;
use super::AppState;
use actors::aggregator::AggregatorMsg;
use actors::graph::GraphMsg;

/// What replaces a secret.
const HIDDEN: &str = "(hidden)";
/// How long a member may take to answer.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(1);

/// This node and its cluster.
#[utoipa::path(get, path = "/api/v1/about", tag = "health",
    responses((status = 200, body = About)))]
pub async fn about(State(s): State<AppState>) -> Result<Json<About>, Failure> {
    let totals = ask(&s.aggregator, AggregatorMsg::Totals).await?;
    let graph = ask(&s.graph, GraphMsg::Counts).await?;
    let (assets, _, dependencies) = s
        .projection
        .counts()
        .map_err(|e| Failure::Internal(format!("projection counts: {e}")))?;
    let node = health(&s, "ok");
    let raft = s.log.metrics();
    let membership = raft.membership_config.membership();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let asks = membership.nodes().map(|(&id, n)| {
        let addr = n.addr.clone();
        let tls = s.member_tls.clone();
        let voter = voters.contains(&id);
        let own = (id == node.node_id).then(|| node.clone());
        async move {
            let (health, error) = match own {
                Some(h) => (Some(h), None),
                None => match member_health(&addr, tls).await {
                    Ok(h) => (Some(h), None),
                    Err(e) => (None, Some(e)),
                },
            };
            ClusterMember {
                id,
                addr,
                voter,
                health,
                error,
            }
        }
    });
    let members = futures_util::future::join_all(asks).await;
    let (rss, peak) = rss_bytes();
    Ok(Json(About {
        node,
        cluster: s.cluster_name.to_string(),
        members,
        rss_bytes: rss,
        rss_peak_bytes: peak,
        flows_total: totals.flows,
        bytes_total: totals.bytes,
        events_committed_total: graph.events_committed,
        assets,
        dependencies,
        config: (*s.config).clone(),
    }))
}

/// Another member's `/api/v1/health/live` with a short timeout: over HTTPS checked against
/// `tls` when this node serves TLS (members share the API's settings), else plain HTTP.
async fn member_health(
    addr: &str,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> Result<Health, String> {
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let Some(tls) = tls else {
            return ask_health(addr, tcp).await;
        };
        let host = addr
            .rsplit_once(':')
            .map_or(addr, |(host, _)| host)
            .trim_matches(['[', ']']);
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| format!("{addr}: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("{addr}: TLS: {e}"))?;
        ask_health(addr, stream).await
    };
    tokio::time::timeout(MEMBER_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("{addr} did not answer in {MEMBER_TIMEOUT:?}"))?
}

/// One `GET /api/v1/health/live` on `stream`.
async fn ask_health<S>(addr: &str, mut stream: S) -> Result<Health, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let request =
        format!("GET /api/v1/health/live HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut answer = Vec::new();
    // A TLS peer may close without close_notify: what arrived is the answer.
    let read = (&mut stream).take(1 << 20).read_to_end(&mut answer).await;
    if answer.is_empty() {
        read.map_err(|e| format!("{addr}: {e}"))?;
    }
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{addr}: no HTTP answer"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "{addr}: {}",
            head.lines().next().unwrap_or_default()
        ));
    }
    serde_json::from_str::<Health>(body).map_err(|e| format!("{addr}: {e}"))
}

/// `config` as JSON with every secret hidden: values of keys naming a password, secret, token,
/// credentials, nkey or private key; the path and query of URLs (webhook URLs carry their
/// token in the path); and credentials inside URLs.
pub fn redacted(config: &crate::config::Config) -> Value {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    redact(&mut value, "");
    value
}

fn secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token", "creds", "nkey", "private"]
        .iter()
        .any(|s| key.contains(s))
}

fn redact(value: &mut Value, key: &str) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                redact(v, k);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact(v, key)),
        Value::String(s) if secret_key(key) => *s = HIDDEN.to_string(),
        Value::String(s) => {
            if let Some((scheme, rest)) = s.split_once("://") {
                // Credentials before the host, then anything after it.
                let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
                let (host, tail) = rest.split_once('/').unwrap_or((rest, ""));
                let had_userinfo = s.contains('@');
                let mut out = format!("{scheme}://");
                if had_userinfo {
                    out.push_str(HIDDEN);
                    out.push('@');
                }
                out.push_str(host);
                if !tail.is_empty() {
                    out.push('/');
                    out.push_str(HIDDEN);
                }
                *s = out;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_urls_and_credentials_are_hidden_and_the_rest_is_kept() {
        let mut v = serde_json::json!({
            "cluster": {"nats": "nats://alice:s3cret@127.0.0.1:4222", "name": "dc1"},
            "notifiers": [{"id": "chat", "url": "https://hooks.slack.com/services/T0/B0/XYZ",
                           "secret": "k", "password": null, "smtp": "127.0.0.1:25"}],
            "tls": {"private_key": "/etc/key.pem", "nkey_seed": "SU..."},
            "api": {"listen": "127.0.0.1:8080"}
        });
        redact(&mut v, "");
        assert_eq!(v["cluster"]["nats"], "nats://(hidden)@127.0.0.1:4222");
        assert_eq!(v["cluster"]["name"], "dc1");
        assert_eq!(v["notifiers"][0]["url"], "https://hooks.slack.com/(hidden)");
        assert_eq!(v["notifiers"][0]["secret"], "(hidden)");
        assert_eq!(v["notifiers"][0]["password"], Value::Null);
        assert_eq!(v["notifiers"][0]["smtp"], "127.0.0.1:25");
        assert_eq!(v["tls"]["private_key"], "(hidden)");
        assert_eq!(v["tls"]["nkey_seed"], "(hidden)");
        assert_eq!(v["api"]["listen"], "127.0.0.1:8080");
        let whole = redacted(&crate::config::Config::default());
        assert_eq!(whole["node_id"], 1);
    }
}
