//! The detectors, pure: one window of dependency traffic (what the aggregator handed the graph
//! during it, accumulated per dependency by the graph) in, findings out. Scans and sweeps count
//! distinct ports per (source, target) and distinct targets per (source, port); insecure
//! protocols are known ports; DNS volume is request packets to port 53 per second; the top
//! talker is a host's share of the window's bytes; spikes and drops compare each network's
//! traffic with its learned baseline for the hour of day ([`Baselines`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use proto::advisory::{Advisory, AdvisoryKind, Severity};
use proto::event::{DependencyKey, EdgeStats, ServiceKey, TrafficDelta};

use crate::aggregator::{Asymmetry, PathPoint};

use crate::graph::is_internal;
use crate::ports::{describe_service, plural};
use crate::FastMap;

/// Detector thresholds.
#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Length of one detection window.
    pub window: Duration,
    /// Distinct ports one source tries on one host in a window to count as a port scan.
    pub scan_ports: usize,
    /// Distinct hosts one source tries on one port in a window to count as a host sweep.
    pub sweep_hosts: usize,
    /// DNS request packets per second from one client to count as unusual volume.
    pub dns_queries_per_s: f64,
    /// Share of the window's bytes one host must carry to be reported as top talker.
    pub top_talker_share: f64,
    /// Least bytes in the window for a top talker to be reported.
    pub top_talker_min_bytes: u64,
    /// Windows a network's baseline needs before spikes and drops are reported.
    pub baseline_windows: u32,
    /// A window this many times the baseline is a spike.
    pub spike_factor: f64,
    /// A window this fraction below the baseline is a drop (0.9: down 90 % or more).
    pub drop_ratio: f64,
    /// Least bytes per window (baseline or current) for spikes and drops to be reported.
    pub anomaly_min_bytes: u64,
    /// Networks counted as internal besides RFC 1918 / RFC 4193.
    pub internal_networks: Vec<IpNet>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            window: Duration::from_secs(60),
            scan_ports: 100,
            sweep_hosts: 50,
            dns_queries_per_s: 50.0,
            top_talker_share: 0.5,
            top_talker_min_bytes: 10_000_000,
            baseline_windows: 30,
            spike_factor: 5.0,
            drop_ratio: 0.9,
            anomaly_min_bytes: 1_000_000,
            internal_networks: Vec::new(),
        }
    }
}

/// Clear-text or risky protocols: (port, protocol, name, severity, why, what to do).
const INSECURE: &[(u16, u8, &str, Severity, &str, &str)] = &[
    (
        23,
        6,
        "Telnet",
        Severity::Warning,
        "sends logins and sessions in clear text",
        "Replace Telnet with SSH and close 23/tcp.",
    ),
    (
        21,
        6,
        "FTP",
        Severity::Warning,
        "sends passwords and files in clear text",
        "Move transfers to SFTP or FTPS and close 21/tcp.",
    ),
    (
        512,
        6,
        "rexec",
        Severity::Warning,
        "runs commands with clear-text passwords",
        "Replace the r-commands with SSH.",
    ),
    (
        513,
        6,
        "rlogin",
        Severity::Warning,
        "trusts host addresses and sends sessions in clear text",
        "Replace rlogin with SSH.",
    ),
    (
        514,
        6,
        "rsh",
        Severity::Warning,
        "trusts host addresses and sends sessions in clear text",
        "Replace rsh with SSH.",
    ),
    (
        69,
        17,
        "TFTP",
        Severity::Info,
        "has no authentication at all",
        "Limit TFTP to the provisioning network or use HTTPS.",
    ),
    (
        161,
        17,
        "SNMP",
        Severity::Info,
        "v1/v2c send community strings in clear text",
        "Use SNMPv3 with authentication and privacy.",
    ),
];

/// The subnet an address is counted in for baselines: /24 for IPv4, /64 for IPv6.
fn subnet(ip: IpAddr) -> IpNet {
    let prefix = if ip.is_ipv4() { 24 } else { 64 };
    IpNet::new(ip, prefix)
        .map(|n| n.trunc())
        .unwrap_or(IpNet::from(ip))
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// The (peer, port, protocol) `host` exchanged the most bytes with in `window` (ties: the
/// greatest), looked up for the top talker alone.
fn top_peer(window: &Window, host: IpAddr) -> Option<(IpAddr, u16, u8)> {
    let mut peers: BTreeMap<(IpAddr, u16, u8), u64> = BTreeMap::new();
    for ((client, svc), totals) in window.edges() {
        for (end, peer) in [(client, svc.ip), (svc.ip, client)] {
            if end == host {
                *peers.entry((peer, svc.port, svc.protocol)).or_default() += totals.bytes;
            }
        }
    }
    peers.into_iter().max_by_key(|(_, b)| *b).map(|(k, _)| k)
}

/// One window's traffic: each dependency seen in it once, with its totals.
#[derive(Default)]
pub struct Window {
    /// When the window started, UTC ms.
    pub start_ms: u64,
    /// Edges between IPv4 addresses, packed: 32 bytes an entry rather than 56 (a window of a
    /// large network holds hundreds of thousands).
    v4: Vec<(V4Edge, EdgeTotals)>,
    /// Every other edge (IPv6 at either end).
    other: Vec<((IpAddr, ServiceKey), EdgeTotals)>,
    /// Per (request path, reply path): the dependencies that took them (a few kept as examples).
    asymmetric: BTreeMap<(PathPoint, PathPoint), (usize, Vec<DependencyKey>)>,
}

/// One dependency's traffic in a window: what the detectors read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EdgeTotals {
    /// Bytes both ways.
    pub bytes: u64,
    /// Packets from client to server (requests, for DNS volume).
    pub request_packets: u64,
}

impl EdgeTotals {
    /// Adds one flush's traffic of the dependency.
    pub fn add(&mut self, t: &TrafficDelta) {
        self.bytes = self
            .bytes
            .saturating_add(t.bytes_to_server.saturating_add(t.bytes_to_client));
        self.request_packets = self.request_packets.saturating_add(t.packets_to_server);
    }

    fn merge(&mut self, other: &EdgeTotals) {
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.request_packets = self.request_packets.saturating_add(other.request_packets);
    }
}

/// An edge between IPv4 addresses: client, server, port, protocol.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct V4Edge(u32, u32, u16, u8);

impl V4Edge {
    fn key(&self) -> (IpAddr, ServiceKey) {
        let service = ServiceKey {
            ip: IpAddr::from(self.1.to_be_bytes()),
            port: self.2,
            protocol: self.3,
        };
        (IpAddr::from(self.0.to_be_bytes()), service)
    }
}

/// One edge of a window, as a reference into its tables (16 bytes, for sorting many).
#[derive(Clone, Copy)]
enum EdgeRef<'a> {
    V4(&'a V4Edge),
    Other(&'a (IpAddr, ServiceKey)),
}

impl EdgeRef<'_> {
    fn key(self) -> (IpAddr, ServiceKey) {
        match self {
            EdgeRef::V4(e) => e.key(),
            EdgeRef::Other(k) => *k,
        }
    }
}

impl Window {
    /// A window starting at `start_ms`.
    pub fn new(start_ms: u64) -> Window {
        Window {
            start_ms,
            v4: Vec::new(),
            other: Vec::new(),
            asymmetric: BTreeMap::new(),
        }
    }

    /// Empties it for a window starting at `start_ms`. The edge tables go back to the heap:
    /// they fill once a window, from the graph, and are not needed in between.
    pub fn reset(&mut self, start_ms: u64) {
        self.start_ms = start_ms;
        self.v4 = Vec::new();
        self.other = Vec::new();
        self.asymmetric.clear();
    }

    /// Adds dependencies whose directions took different paths.
    pub fn add_asymmetric(&mut self, found: &[Asymmetry]) {
        for a in found {
            let entry = self
                .asymmetric
                .entry((a.to_server, a.to_client))
                .or_default();
            entry.0 += 1;
            if entry.1.len() < 3 && !entry.1.contains(&a.dependency) {
                entry.1.push(a.dependency);
            }
        }
    }

    /// Adds a dependency's totals, which must not be in the window yet (the graph hands over
    /// each dependency once, already summed); [`Window::add`] merges instead.
    pub fn push_unique(&mut self, key: &DependencyKey, totals: EdgeTotals) {
        let (client, svc) = (key.client, key.service);
        match (client, svc.ip) {
            (IpAddr::V4(c), IpAddr::V4(s)) => self
                .v4
                .push((V4Edge(c.into(), s.into(), svc.port, svc.protocol), totals)),
            _ => self.other.push(((client, svc), totals)),
        }
    }

    /// Moves `other`'s edges into this window (merged with any it holds already).
    pub fn absorb_edges(&mut self, other: Window) {
        if self.is_empty() {
            self.v4 = other.v4;
            self.other = other.other;
        } else {
            self.v4.extend(other.v4);
            self.other.extend(other.other);
            self.coalesce();
        }
    }

    /// Adds flushes of dependency traffic, merged per dependency.
    pub fn add(&mut self, edges: &[EdgeStats]) {
        for e in edges {
            let mut totals = EdgeTotals::default();
            totals.add(&e.traffic);
            self.push_unique(&e.dependency, totals);
        }
        self.coalesce();
    }

    /// Sorts the edges and merges repeats, so that each dependency is in the window once.
    fn coalesce(&mut self) {
        fn merge_runs<K: Ord + Copy>(edges: &mut Vec<(K, EdgeTotals)>) {
            edges.sort_unstable_by_key(|(k, _)| *k);
            edges.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    kept.1.merge(&later.1);
                }
                same
            });
        }
        merge_runs(&mut self.v4);
        merge_runs(&mut self.other);
    }

    /// Distinct dependencies in it.
    pub fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }

    /// Whether it saw no traffic.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every edge with its totals.
    pub(crate) fn edges(&self) -> impl Iterator<Item = ((IpAddr, ServiceKey), &EdgeTotals)> {
        let v4 = self.v4.iter().map(|(e, t)| (e.key(), t));
        v4.chain(self.other.iter().map(|(k, t)| (*k, t)))
    }

    /// Every edge, as references.
    fn edge_refs(&self) -> Vec<EdgeRef<'_>> {
        let mut refs = Vec::with_capacity(self.len());
        refs.extend(self.v4.iter().map(|(e, _)| EdgeRef::V4(e)));
        refs.extend(self.other.iter().map(|(k, _)| EdgeRef::Other(k)));
        refs
    }
}

/// A network's usual traffic per window: one running mean per hour of day, and one overall.
#[derive(Clone, Copy, Default)]
struct Baseline {
    hours: [(f64, u32); 24],
    overall: (f64, u32),
}

/// Learned traffic per network ([`Thresholds::baseline_windows`] windows before it speaks).
#[derive(Default)]
pub struct Baselines {
    networks: BTreeMap<IpNet, Baseline>,
}

/// Most networks with a baseline.
const MAX_BASELINES: usize = 50_000;

impl Baselines {
    /// Networks with a baseline.
    pub fn len(&self) -> usize {
        self.networks.len()
    }

    /// Whether no network has one.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }
}

/// Runs every detector over `window` (ending at `end_ms`), learning the baselines as it goes.
pub fn detect(
    window: &Window,
    baselines: &mut Baselines,
    t: &Thresholds,
    end_ms: u64,
) -> Vec<Advisory> {
    let mut found = Vec::new();
    let secs = t.window.as_secs_f64().max(0.001);
    let window_text = humantime_secs(t.window);
    let advisory = |kind: AdvisoryKind,
                    severity: Severity,
                    subject: String,
                    summary: String,
                    action: &str,
                    evidence: String| Advisory {
        id: format!("{}:{subject}", kind.name()),
        kind,
        severity,
        subject,
        summary,
        action: action.to_string(),
        evidence,
        first_ms: end_ms,
    };

    // One pass for the per-host, per-network and per-protocol totals.
    let mut dns: BTreeMap<IpAddr, (u64, BTreeSet<IpAddr>)> = BTreeMap::new();
    let mut by_host: FastMap<IpAddr, u64> = FastMap::default();
    let mut insecure: BTreeMap<(ServiceKey, usize), BTreeSet<IpAddr>> = BTreeMap::new();
    let mut to_network: BTreeMap<IpNet, u64> = BTreeMap::new();
    let mut total_bytes = 0u64;
    for ((client, svc), totals) in window.edges() {
        if svc.port == 53 {
            let d = dns.entry(client).or_default();
            d.0 = d.0.saturating_add(totals.request_packets);
            d.1.insert(svc.ip);
        }
        for host in [client, svc.ip] {
            let h = by_host.entry(host).or_default();
            *h = h.saturating_add(totals.bytes);
        }
        total_bytes = total_bytes.saturating_add(totals.bytes);
        if let Some(i) = INSECURE
            .iter()
            .position(|(p, proto, ..)| *p == svc.port && *proto == svc.protocol)
        {
            insecure.entry((svc, i)).or_default().insert(client);
        }
        if matches!(svc.port, 445 | 139)
            && svc.protocol == 6
            && is_internal(client, &t.internal_networks)
            && !is_internal(svc.ip, &t.internal_networks)
        {
            insecure
                .entry((svc, usize::MAX))
                .or_default()
                .insert(client);
        }
        *to_network.entry(subnet(svc.ip)).or_default() += totals.bytes;
    }
    // Scans and sweeps. Each edge of the window is a distinct (source, target, port,
    // protocol), so the distinct ports a source tried on a target, and the distinct targets it
    // tried on a port, are runs of edges once sorted: one vector of references sorted twice,
    // not a set per source (a window of a large network holds hundreds of thousands of edges).
    let mut keys = window.edge_refs();
    keys.sort_unstable_by_key(|e| {
        let (c, s) = e.key();
        (c, s.ip, s.port, s.protocol)
    });
    let pair = |e: &EdgeRef| {
        let (c, s) = e.key();
        (c, s.ip)
    };
    for run in keys.chunk_by(|a, b| pair(a) == pair(b)) {
        let (src, dst) = pair(&run[0]);
        if run.len() >= t.scan_ports {
            found.push(advisory(
                AdvisoryKind::PortScan,
                Severity::Warning,
                format!("{src}>{dst}"),
                format!("{src} probed {} ports on {dst} in {window_text}: a port scan", run.len()),
                "Check whether this source is an authorised scanner; otherwise isolate it and look for what else it reached.",
                format!("/api/v1/flows?src={src}&dst={dst}"),
            ));
        }
    }
    keys.sort_unstable_by_key(|e| {
        let (c, s) = e.key();
        (c, s.port, s.protocol, s.ip)
    });
    let tried = |e: &EdgeRef| {
        let (c, s) = e.key();
        (c, s.port, s.protocol)
    };
    for run in keys.chunk_by(|a, b| tried(a) == tried(b)) {
        let (src, port, protocol) = tried(&run[0]);
        if run.len() >= t.sweep_hosts {
            found.push(advisory(
                AdvisoryKind::HostSweep,
                Severity::Warning,
                format!("{src}:{port}/{protocol}"),
                format!(
                    "{src} contacted {} hosts on {} in {window_text}: a host sweep",
                    run.len(),
                    describe_service(port, protocol)
                ),
                "Check whether this source should discover hosts; otherwise isolate it.",
                format!("/api/v1/flows?src={src}&port={port}"),
            ));
        }
    }
    drop(keys);
    for ((svc, i), clients) in &insecure {
        let endpoint = svc.id();
        let (summary, severity, action) = match INSECURE.get(*i) {
            Some((_, _, name, severity, why, action)) => (
                format!(
                    "{name} in use on {endpoint} ({}): {name} {why}",
                    plural(clients.len(), "client")
                ),
                *severity,
                *action,
            ),
            None => (
                format!(
                    "SMB to the internet: {endpoint} on {} is reached from {}",
                    describe_service(svc.port, svc.protocol),
                    plural(clients.len(), "internal host")
                ),
                Severity::Critical,
                "Block SMB (139, 445) at the edge; it leaks credentials and spreads malware.",
            ),
        };
        found.push(advisory(
            AdvisoryKind::InsecureProtocol,
            severity,
            endpoint,
            summary,
            action,
            format!("/api/v1/flows?host={}&port={}", svc.ip, svc.port),
        ));
    }
    for (client, (packets, servers)) in &dns {
        let rate = *packets as f64 / secs;
        if rate >= t.dns_queries_per_s {
            found.push(advisory(
                AdvisoryKind::DnsVolume,
                Severity::Warning,
                client.to_string(),
                format!(
                    "{client} sent {rate:.0} DNS queries/s to {}: far more than a host needs",
                    plural(servers.len(), "server")
                ),
                "Look for DNS tunnelling, malware or a misconfigured resolver on this host.",
                format!("/api/v1/flows?src={client}&port=53"),
            ));
        }
    }
    if total_bytes >= t.top_talker_min_bytes {
        if let Some((&host, &bytes)) = by_host
            .iter()
            .max_by_key(|(ip, b)| (**b, std::cmp::Reverse(**ip)))
        {
            let share = bytes as f64 / total_bytes as f64;
            if share >= t.top_talker_share {
                let mostly = top_peer(window, host)
                    .map(|(peer, port, protocol)| {
                        format!(", mostly {} with {peer}", describe_service(port, protocol))
                    })
                    .unwrap_or_default();
                found.push(advisory(
                    AdvisoryKind::TopTalker,
                    Severity::Info,
                    host.to_string(),
                    format!(
                        "{host} is using {:.0}% of the bandwidth ({} in {window_text}){mostly}",
                        share * 100.0,
                        mb(bytes)
                    ),
                    "Check that this volume is expected (backups, replication); otherwise find the process behind it.",
                    format!("/api/v1/flows?host={host}"),
                ));
            }
        }
    }
    for ((request, reply), (count, examples)) in &window.asymmetric {
        let point = |(exporter, input, output): &PathPoint| {
            if *input == 0 && *output == 0 {
                exporter.to_string()
            } else {
                format!("{exporter} (interface {input} → {output})")
            }
        };
        let example = examples
            .first()
            .map(|d| format!(", e.g. {} → {}", d.client, d.service.id()))
            .unwrap_or_default();
        found.push(advisory(
            AdvisoryKind::FlowAsymmetry,
            Severity::Info,
            format!(
                "{}/{}/{}>{}/{}/{}",
                request.0, request.1, request.2, reply.0, reply.1, reply.2
            ),
            format!(
                "asymmetric routing: {} had requests seen at {} and replies at {}{example}",
                if *count == 1 {
                    "1 dependency".to_string()
                } else {
                    format!("{count} dependencies")
                },
                point(request),
                point(reply)
            ),
            "Fine for plain routing, but a stateful firewall or NAT on one path only will break these sessions: check route metrics and ECMP.",
            format!("/api/v1/flows?host={}", examples.first().map_or(String::new(), |d| d.client.to_string())),
        ));
    }
    // Baselines: every network with a baseline is checked, including those silent now.
    let hour = ((end_ms / 3_600_000) % 24) as usize;
    for net in to_network.keys() {
        if !baselines.networks.contains_key(net) && baselines.networks.len() < MAX_BASELINES {
            baselines.networks.insert(*net, Baseline::default());
        }
    }
    for (net, base) in baselines.networks.iter_mut() {
        let now = *to_network.get(net).unwrap_or(&0) as f64;
        let (slot_mean, slot_n) = base.hours[hour];
        let expected = if slot_n >= t.baseline_windows {
            Some(slot_mean)
        } else if base.overall.1 >= t.baseline_windows {
            Some(base.overall.0)
        } else {
            None
        };
        if let Some(expected) = expected {
            let min = t.anomaly_min_bytes as f64;
            if now >= expected * t.spike_factor && now >= min {
                found.push(advisory(
                    AdvisoryKind::TrafficSpike,
                    Severity::Warning,
                    net.to_string(),
                    format!(
                        "traffic to {net} rose to {:.1}× its usual level for this hour ({} against {})",
                        now / expected.max(1.0),
                        mb(now as u64),
                        mb(expected as u64)
                    ),
                    "Check for a backup, a deployment or an attack towards this network.",
                    format!("/api/v1/flows?dst={net}"),
                ));
            } else if now <= expected * (1.0 - t.drop_ratio) && expected >= min {
                found.push(advisory(
                    AdvisoryKind::TrafficDrop,
                    Severity::Critical,
                    net.to_string(),
                    format!(
                        "traffic to {net} dropped {:.0}% below its usual level for this hour ({} against {}): possible link or service failure",
                        (1.0 - now / expected) * 100.0,
                        mb(now as u64),
                        mb(expected as u64)
                    ),
                    "Check the link, the switch and the services of this network.",
                    format!("/api/v1/flows?dst={net}"),
                ));
            }
        }
        learn(&mut base.hours[hour], now);
        learn(&mut base.overall, now);
    }
    found
}

/// A running mean that settles into an exponential one after 100 samples.
fn learn(slot: &mut (f64, u32), value: f64) {
    slot.1 = slot.1.saturating_add(1);
    let weight = 1.0 / f64::from(slot.1.min(100));
    slot.0 += (value - slot.0) * weight;
}

fn humantime_secs(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else if s > 0 {
        format!("{s} s")
    } else {
        format!("{} ms", d.as_millis())
    }
}
