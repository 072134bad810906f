//! `flowlens forward`: the flow relay on its own. It listens for flow datagrams and re-sends each,
//! unchanged, to every `[[relay]]` target whose filters pass (it decodes only to apply the flow
//! filters, keeping templates per listener), without mapping or storing anything. Counters are
//! served at `--metrics-listen`'s `/metrics` and logged when it stops.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actors::relay::{Relay, RelayTarget};
use anyhow::{bail, Context as _};
use proto::decode::{decode_datagram, DecodeContext, TemplateCache};
use proto::FlowRecord;
use serde::Deserialize;

/// `flowlens forward` flags.
#[derive(clap::Args, Debug)]
pub struct ForwardArgs {
    /// TOML file with `listen = ["0.0.0.0:2055", …]` and `[[relay]]` targets, as in a node's
    /// configuration (`name`, `to`, `exporters`, `protocols`, `src`, `dst`, `queue`,
    /// `keep_source`).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// UDP listener, repeatable (default 0.0.0.0:2055 when neither this nor the file names one).
    #[arg(long = "listen")]
    pub listen: Vec<SocketAddr>,
    /// A target without filters, repeatable: `NAME=HOST:PORT`.
    #[arg(long = "to")]
    pub to: Vec<String>,
    /// Send to the `--to` targets from each exporter's own address and port (IPv4; needs
    /// CAP_NET_RAW).
    #[arg(long)]
    pub keep_source: bool,
    /// Serve Prometheus metrics at this address (`GET /metrics`).
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Receive buffer per listener, bytes.
    #[arg(long, default_value_t = 8 << 20)]
    pub recv_buffer_bytes: usize,
}

/// The file `--config` names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForwardFile {
    #[serde(default)]
    listen: Vec<SocketAddr>,
    #[serde(default)]
    relay: Vec<RelayTarget>,
}

/// The listeners and targets `args` (and its file) ask for, validated.
///
/// # Errors
/// An unreadable or invalid file, a bad `--to`, no target at all, or a target the relay
/// refuses (named).
pub fn plan(args: &ForwardArgs) -> anyhow::Result<(Vec<SocketAddr>, Vec<RelayTarget>)> {
    let file = match &args.config {
        Some(path) => {
            use figment::providers::{Format as _, Toml};
            figment::Figment::from(Toml::file_exact(path))
                .extract::<ForwardFile>()
                .with_context(|| format!("{} is not a forward configuration", path.display()))?
        }
        None => ForwardFile::default(),
    };
    let mut listen = args.listen.clone();
    if listen.is_empty() {
        listen = file.listen;
    }
    if listen.is_empty() {
        listen.push(SocketAddr::from(([0, 0, 0, 0], 2055)));
    }
    let mut targets = file.relay;
    for spec in &args.to {
        let Some((name, to)) = spec.split_once('=') else {
            bail!("--to {spec}: expected NAME=HOST:PORT");
        };
        let to: SocketAddr = to
            .parse()
            .with_context(|| format!("--to {spec}: `{to}` is not HOST:PORT"))?;
        targets.push(RelayTarget {
            name: name.to_owned(),
            to,
            exporters: Vec::new(),
            protocols: Vec::new(),
            src: Vec::new(),
            dst: Vec::new(),
            queue: 4096,
            keep_source: args.keep_source,
        });
    }
    if targets.is_empty() {
        bail!("nothing to forward to: give --to NAME=HOST:PORT or [[relay]] targets in --config");
    }
    actors::relay::validate(&targets).map_err(|why| anyhow::anyhow!("relay target {why}"))?;
    Ok((listen, targets))
}

/// What the listeners counted.
#[derive(Debug, Default)]
struct Received {
    datagrams: AtomicU64,
    undecodable: AtomicU64,
}

/// Runs until SIGINT or SIGTERM.
///
/// # Errors
/// A bad plan, a listener that cannot bind, or a relay target that cannot start.
pub async fn run(args: &ForwardArgs) -> anyhow::Result<()> {
    let (listen, targets) = plan(args)?;
    let relay = Relay::start(&targets).context("cannot start the relay")?;
    let received = Arc::new(Received::default());
    let mut tasks = Vec::new();
    for addr in &listen {
        let socket = actors::collector::bind_udp(*addr, args.recv_buffer_bytes)
            .with_context(|| format!("cannot listen on {addr}"))?;
        let bound = socket.local_addr()?;
        tracing::info!(listen = %bound, "forwarding");
        tasks.push(tokio::spawn(forward_loop(
            socket,
            relay.clone(),
            received.clone(),
        )));
    }
    if let Some(addr) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on --metrics-listen {addr}"))?;
        let (relay, received) = (relay.clone(), received.clone());
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let text = metrics(&relay, &received);
                async move { text }
            }),
        );
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "metrics server stopped");
            }
        }));
    }
    eprintln!(
        "flowlens forward: {} listener(s) → {}",
        listen.len(),
        targets
            .iter()
            .map(|t| format!(
                "{} ({}{})",
                t.name,
                t.to,
                if t.keep_source {
                    ", keeping sources"
                } else {
                    ""
                }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    crate::run::shutdown_signal().await;
    for t in tasks {
        t.abort();
    }
    eprint!("{}", metrics(&relay, &received));
    Ok(())
}

/// Receives datagrams and offers each to the relay, decoded only for the filters.
async fn forward_loop(socket: tokio::net::UdpSocket, relay: Relay, received: Arc<Received>) {
    let mut buf = vec![0u8; 65_536];
    let mut cache = TemplateCache::default();
    let mut flows: Vec<FlowRecord> = Vec::with_capacity(256);
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(e) => {
                tracing::warn!(error = %e, "udp receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let datagram = buf.get(..n).unwrap_or_default();
        received.datagrams.fetch_add(1, Ordering::Relaxed);
        flows.clear();
        let ctx = DecodeContext {
            exporter: from.ip(),
            received_ms: actors::now_ms(),
        };
        let source = match decode_datagram(datagram, &ctx, &mut cache, &mut flows) {
            Ok(report) => Some(report.source),
            Err(_) => {
                received.undecodable.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        relay.offer(datagram, from, source, &flows);
    }
}

/// The counters in Prometheus text format.
fn metrics(relay: &Relay, received: &Received) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP flowlens_forward_datagrams_total Datagrams received.\n\
         # TYPE flowlens_forward_datagrams_total counter\n\
         flowlens_forward_datagrams_total {}\n\
         # HELP flowlens_forward_undecodable_total Datagrams that did not decode (relayed \
         only to targets without format or flow filters).\n\
         # TYPE flowlens_forward_undecodable_total counter\n\
         flowlens_forward_undecodable_total {}",
        received.datagrams.load(Ordering::Relaxed),
        received.undecodable.load(Ordering::Relaxed)
    );
    actors::relay::write_metrics(&relay.stats(), &mut out);
    out
}
