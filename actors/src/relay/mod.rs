//! The flow relay: every datagram the collector receives is offered, unchanged, to each
//! configured target whose filters it passes (exporter network, wire format, and for datagrams
//! that carry flows, a flow's source or destination network). Each target has its own bounded
//! queue and sending task: a slow or dead target loses datagrams (counted), never slows the
//! collector. Datagrams without flows (templates, options) pass the flow filters, so that a
//! target can decode what follows. A target with `keep_source` receives each datagram from the
//! exporter's own address and port ([`raw`]).

pub mod raw;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ipnet::IpNet;
use proto::record::FlowSource;
use proto::FlowRecord;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// One relay target and its filters (each empty filter passes everything).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayTarget {
    /// A name for counters and logs.
    pub name: String,
    /// Where datagrams go.
    pub to: SocketAddr,
    /// Only datagrams from exporters in these networks.
    #[serde(default)]
    pub exporters: Vec<IpNet>,
    /// Only these formats: `netflow_v5`, `netflow_v9`, `ipfix`, `sflow`.
    #[serde(default)]
    pub protocols: Vec<FlowSource>,
    /// Only datagrams with a flow from these networks.
    #[serde(default)]
    pub src: Vec<IpNet>,
    /// Only datagrams with a flow to these networks.
    #[serde(default)]
    pub dst: Vec<IpNet>,
    /// Datagrams waiting to be sent, at most (default 4096); beyond that they are dropped.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Send each datagram from the exporter's address and port rather than this host's (an
    /// IPv4 target; needs `CAP_NET_RAW`). Datagrams from IPv6 exporters go from this host.
    #[serde(default)]
    pub keep_source: bool,
}

/// Checks a list of targets: names unique and not empty, a host and port to send to, a queue
/// of 1 to 1,000,000, `keep_source` only towards IPv4. The error names the target.
pub fn validate(targets: &[RelayTarget]) -> Result<(), String> {
    for (i, t) in targets.iter().enumerate() {
        if t.name.trim().is_empty() || targets[..i].iter().any(|o| o.name == t.name) {
            return Err("each target needs its own name".into());
        }
        if t.to.port() == 0 || t.to.ip().is_unspecified() {
            return Err(format!("{}: `to` must be a host and port", t.name));
        }
        if t.queue == 0 || t.queue > 1_000_000 {
            return Err(format!("{}: queue must be 1 to 1000000", t.name));
        }
        if t.keep_source && !t.to.is_ipv4() {
            return Err(format!(
                "{}: keep_source sends IPv4 packets: `to` must be an IPv4 address",
                t.name
            ));
        }
    }
    Ok(())
}

fn default_queue() -> usize {
    4096
}

/// A target's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayStats {
    /// The target's name.
    pub name: String,
    /// Where it sends.
    pub to: String,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams its filters passed over.
    pub filtered: u64,
    /// Datagrams dropped because its queue was full (the target is slower than the traffic).
    pub dropped: u64,
    /// Datagrams the OS refused to send.
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    filtered: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
}

struct Target {
    config: RelayTarget,
    queue: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    counters: Arc<Counters>,
}

/// How a target's task sends: from its own UDP socket, and for `keep_source` from the
/// exporter's address through a raw socket.
struct Sending {
    udp: tokio::net::UdpSocket,
    raw: Option<raw::RawSender>,
}

impl Sending {
    async fn send(
        &mut self,
        exporter: SocketAddr,
        datagram: &[u8],
        to: SocketAddr,
    ) -> std::io::Result<()> {
        match (&mut self.raw, exporter, to) {
            (Some(raw), SocketAddr::V4(from), SocketAddr::V4(to)) => {
                raw.send(from, to, datagram).await
            }
            _ => self.udp.send_to(datagram, to).await.map(|_| ()),
        }
    }
}

/// The relay: shared by every listener (cheap to clone).
#[derive(Clone, Default)]
pub struct Relay {
    targets: Arc<Vec<Target>>,
}

fn any_in(nets: &[IpNet], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&ip))
}

impl Relay {
    /// Starts a sending task per target (inside a Tokio runtime).
    ///
    /// # Errors
    /// When a target's sending socket cannot be bound, or (`keep_source`) the raw socket
    /// cannot be opened: the error says which capability is missing.
    pub fn start(targets: &[RelayTarget]) -> std::io::Result<Relay> {
        let mut started = Vec::new();
        for config in targets {
            let (tx, mut rx) = mpsc::channel::<(SocketAddr, Vec<u8>)>(config.queue.max(1));
            let counters = Arc::new(Counters::default());
            let local: SocketAddr = if config.to.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let std_socket = std::net::UdpSocket::bind(local)?;
            std_socket.set_nonblocking(true)?;
            let raw = match config.keep_source {
                true => Some(raw::RawSender::open().map_err(|e| {
                    std::io::Error::new(e.kind(), format!("relay target {}: {e}", config.name))
                })?),
                false => None,
            };
            let mut sending = Sending {
                udp: tokio::net::UdpSocket::from_std(std_socket)?,
                raw,
            };
            let (to, name, c) = (config.to, config.name.clone(), counters.clone());
            tokio::spawn(async move {
                let mut logged = false;
                while let Some((exporter, datagram)) = rx.recv().await {
                    match sending.send(exporter, &datagram, to).await {
                        Ok(()) => {
                            c.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            c.errors.fetch_add(1, Ordering::Relaxed);
                            if !logged {
                                tracing::warn!(target_name = %name, %to, error = %e, "relay send failed");
                                logged = true;
                            }
                        }
                    }
                }
            });
            started.push(Target {
                config: config.clone(),
                queue: tx,
                counters,
            });
        }
        Ok(Relay {
            targets: Arc::new(started),
        })
    }

    /// Whether there is any target.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Offers one received datagram from `exporter`, decoded as `source` (unknown when it did
    /// not decode) into `flows`, to every target. Never waits.
    pub fn offer(
        &self,
        datagram: &[u8],
        from: SocketAddr,
        source: Option<FlowSource>,
        flows: &[FlowRecord],
    ) {
        let exporter = from.ip();
        for t in self.targets.iter() {
            let c = &t.config;
            let passes = (c.exporters.is_empty() || any_in(&c.exporters, exporter))
                && (c.protocols.is_empty() || source.is_some_and(|s| c.protocols.contains(&s)))
                && (flows.is_empty()
                    || ((c.src.is_empty() || flows.iter().any(|f| any_in(&c.src, f.src_addr)))
                        && (c.dst.is_empty() || flows.iter().any(|f| any_in(&c.dst, f.dst_addr)))));
            if !passes {
                t.counters.filtered.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if t.queue.try_send((from, datagram.to_vec())).is_err() {
                t.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Every target's counters.
    pub fn stats(&self) -> Vec<RelayStats> {
        self.targets
            .iter()
            .map(|t| RelayStats {
                name: t.config.name.clone(),
                to: t.config.to.to_string(),
                sent: t.counters.sent.load(Ordering::Relaxed),
                filtered: t.counters.filtered.load(Ordering::Relaxed),
                dropped: t.counters.dropped.load(Ordering::Relaxed),
                errors: t.counters.errors.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// A per-target counter: name, help text, and how to read it.
type TargetMetric = (&'static str, &'static str, fn(&RelayStats) -> u64);

/// Writes each target's counters in Prometheus text format
/// (`flowlens_relay_{sent,filtered,dropped,errors}_total{target}`).
pub fn write_metrics(stats: &[RelayStats], out: &mut String) {
    use std::fmt::Write as _;
    let per_target: [TargetMetric; 4] = [
        (
            "flowlens_relay_sent_total",
            "Datagrams relayed, per target.",
            |t| t.sent,
        ),
        (
            "flowlens_relay_filtered_total",
            "Datagrams a target's filters passed over.",
            |t| t.filtered,
        ),
        (
            "flowlens_relay_dropped_total",
            "Datagrams dropped for a full target queue.",
            |t| t.dropped,
        ),
        (
            "flowlens_relay_errors_total",
            "Datagrams the OS refused to relay.",
            |t| t.errors,
        ),
    ];
    for (name, help, read) in per_target {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for t in stats {
            let _ = writeln!(out, "{name}{{target=\"{}\"}} {}", t.name, read(t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, to: SocketAddr, queue: usize) -> RelayTarget {
        RelayTarget {
            name: name.into(),
            to,
            exporters: Vec::new(),
            protocols: Vec::new(),
            src: Vec::new(),
            dst: Vec::new(),
            queue,
            keep_source: false,
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_instead_of_waiting() {
        // Nothing is ever polled on this runtime while we offer: the queue of 2 fills up.
        let sink = std::net::UdpSocket::bind("127.0.0.1:0").expect("sink");
        let to = sink.local_addr().expect("addr");
        let relay = Relay::start(&[target("slow", to, 2)]).expect("start");
        let exporter = SocketAddr::from(([127, 0, 0, 1], 9995));
        for _ in 0..10 {
            relay.offer(b"datagram", exporter, Some(FlowSource::Ipfix), &[]);
        }
        let s = &relay.stats()[0];
        assert_eq!(s.dropped, 8, "{s:?}");
    }

    // The sender task runs on another worker while this one blocks on the sink.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn filters_pass_templates_and_matching_flows_only() {
        let sink = std::net::UdpSocket::bind("127.0.0.1:0").expect("sink");
        let mut t = target("lab", sink.local_addr().expect("addr"), 16);
        t.protocols = vec![FlowSource::Ipfix];
        t.src = vec!["10.2.0.0/24".parse().expect("net")];
        let relay = Relay::start(&[t]).expect("start");
        let exporter = SocketAddr::from(([127, 0, 0, 1], 9995));
        let flow = |src: [u8; 4]| FlowRecord {
            src_addr: IpAddr::from(src),
            ..FlowRecord::default()
        };
        relay.offer(b"template", exporter, Some(FlowSource::Ipfix), &[]);
        relay.offer(
            b"lab flow",
            exporter,
            Some(FlowSource::Ipfix),
            &[flow([10, 2, 0, 9])],
        );
        relay.offer(
            b"other",
            exporter,
            Some(FlowSource::Ipfix),
            &[flow([10, 9, 0, 1])],
        );
        relay.offer(
            b"v5 lab",
            exporter,
            Some(FlowSource::NetflowV5),
            &[flow([10, 2, 0, 9])],
        );
        relay.offer(b"garbage", exporter, None, &[]);
        sink.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        for _ in 0..2 {
            let n = sink.recv(&mut buf).expect("datagram");
            got.push(buf[..n].to_vec());
        }
        assert_eq!(got, [b"template".to_vec(), b"lab flow".to_vec()]);
        assert_eq!(relay.stats()[0].filtered, 3);
    }

    // A raw socket needs CAP_NET_RAW: the tests run as root on the project's machines.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keep_source_sends_from_the_exporters_address_and_port() {
        let sink = std::net::UdpSocket::bind("127.0.0.1:0").expect("sink");
        let mut t = target("keep", sink.local_addr().expect("addr"), 16);
        t.keep_source = true;
        let relay = match Relay::start(&[t]) {
            Ok(r) => r,
            Err(e) => panic!("keep_source needs CAP_NET_RAW to be tested: {e}"),
        };
        let exporter = SocketAddr::from(([127, 0, 0, 7], 40_123));
        relay.offer(b"from the router", exporter, Some(FlowSource::Ipfix), &[]);
        sink.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        let (n, from) = sink.recv_from(&mut buf).expect("datagram");
        assert_eq!(&buf[..n], b"from the router");
        assert_eq!(from, exporter);
        // Counted once the send returns, which can be just after the datagram is delivered.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while relay.stats()[0].sent == 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(relay.stats()[0].sent, 1);
    }
}
