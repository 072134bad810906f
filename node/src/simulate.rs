//! `flowlens simulate`: a deterministic synthetic network and the exporter that sends its flows as NetFlow v5, v9, IPFIX or sFlow.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use proto::encode::{self, IpfixMessage, V9Packet, Writer};
use proto::FlowRecord;
use tokio::net::UdpSocket;

/// Which wire format to export.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SimProto {
    /// NetFlow v5 (IPv4 only, 28 records per datagram).
    V5,
    /// NetFlow v9 with the standard IPv4 template (template 256).
    V9,
    /// IPFIX with the standard IPv4 template (template 256, millisecond timestamps).
    Ipfix,
    /// sFlow v5: one raw-header flow sample per flow record.
    Sflow,
}

/// `flowlens simulate` arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct SimulateArgs {
    /// Collector address to send to.
    #[arg(long, default_value = "127.0.0.1:2055")]
    pub to: SocketAddr,
    /// Wire format to export.
    #[arg(long, value_enum, default_value = "ipfix")]
    pub proto: SimProto,
    /// Flow records per second (0 = as fast as possible).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Number of hosts in the simulated network.
    #[arg(long, default_value_t = 50)]
    pub hosts: u32,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Stop after this many flow records.
    #[arg(long)]
    pub flows: Option<u64>,
    /// Include a port scan from one client.
    #[arg(long)]
    pub scan: bool,
    /// PRNG seed (same seed → same network and flows).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Grow the network to at least this many dependencies with extra client → web calls
    /// (HTTPS 443, HTTP 80, 8443); by default a network has about three per client.
    #[arg(long)]
    pub dependencies: Option<u32>,
    /// Something to happen during the run, for demos: a port scan starts, the database tier
    /// fails (its dependencies go quiet: traffic-drop advisories, removal alerts), or a new
    /// service appears (new-dependency alerts).
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,
    /// When the scenario happens, in seconds from the start.
    #[arg(long, default_value_t = 30.0)]
    pub scenario_at: f64,
}

/// A demo scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// One client starts scanning a web server's ports.
    Scan,
    /// Every database server stops answering.
    Outage,
    /// A search service (10.8.0.1:9200) appears, called by every application server.
    NewService,
}

/// The address of the service the `new-service` scenario adds.
pub const NEW_SERVICE: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 8, 0, 1), 9200);

/// What a run sent.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SimulateReport {
    /// Flow records sent.
    pub flows: u64,
    /// Datagrams sent.
    pub packets: u64,
    /// UDP payload bytes sent.
    pub bytes: u64,
    /// Wall-clock seconds the run took.
    pub elapsed_s: f64,
}

/// Largest `--hosts` value: every client fits in 10.1.0.0/16.
pub const MAX_HOSTS: u32 = 65_000;

/// A tiny xorshift64* PRNG seeded through splitmix64 (deterministic, never zero).
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, (lo, hi): (u64, u64)) -> u64 {
        lo + self.below(hi.saturating_sub(lo).saturating_add(1))
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick(&mut self, from: &[Ipv4Addr]) -> Ipv4Addr {
        let i = self.below(from.len() as u64) as usize;
        from.get(i).copied().unwrap_or(Ipv4Addr::UNSPECIFIED)
    }
}

/// The kinds of dependency edge, in the order of [`KIND_WEIGHTS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Web,
    Dns,
    Ntp,
    External,
    App,
    Db,
    Cache,
    Queue,
}

/// Every kind with the percentage of (non-scan) flows it gets.
const KIND_WEIGHTS: [(Kind, u64); 8] = [
    (Kind::Web, 38),
    (Kind::Dns, 14),
    (Kind::Ntp, 3),
    (Kind::External, 6),
    (Kind::App, 18),
    (Kind::Db, 11),
    (Kind::Cache, 7),
    (Kind::Queue, 3),
];

/// Percentage of flows that are port-scan probes when the scan is on.
const SCAN_PERCENT: u64 = 8;

/// How flows of one kind look: packet counts and mean packet sizes (IP bytes) of the request
/// and response, longest duration, and how often a response flow is emitted.
struct Profile {
    req_pkts: (u64, u64),
    req_size: (u64, u64),
    resp_pkts: (u64, u64),
    resp_size: (u64, u64),
    max_ms: u64,
    resp_percent: u64,
}

impl Kind {
    /// Interface indexes (1 + tier) on the caller's and the callee's side.
    fn interfaces(self) -> (u32, u32) {
        // Tiers: 1 clients, 2 web, 3 app, 4 db, 5 cache, 6 queue, 7 infra, 8 internet.
        match self {
            Kind::Web => (1, 2),
            Kind::Dns | Kind::Ntp => (1, 7),
            Kind::External => (1, 8),
            Kind::App => (2, 3),
            Kind::Db => (3, 4),
            Kind::Cache => (3, 5),
            Kind::Queue => (3, 6),
        }
    }
    fn profile(self) -> Profile {
        let p = |req_pkts, req_size, resp_pkts, resp_size, max_ms, resp_percent| Profile {
            req_pkts,
            req_size,
            resp_pkts,
            resp_size,
            max_ms,
            resp_percent,
        };
        match self {
            Kind::Web | Kind::External => p((4, 20), (90, 500), (4, 60), (800, 1400), 4000, 80),
            Kind::Dns => p((1, 1), (60, 80), (1, 1), (90, 300), 50, 90),
            Kind::Ntp => p((1, 1), (76, 76), (1, 1), (76, 76), 20, 90),
            Kind::App => p((3, 12), (200, 900), (3, 24), (300, 1400), 2000, 75),
            Kind::Db => p((2, 10), (100, 400), (2, 40), (500, 1400), 1500, 75),
            Kind::Cache => p((1, 6), (60, 200), (1, 6), (80, 600), 200, 70),
            Kind::Queue => p((2, 10), (300, 1200), (1, 4), (52, 120), 3000, 60),
        }
    }
}

/// One directed dependency: `src` calls `dst` on `port` over `proto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Edge {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    port: u16,
    proto: u8,
}

/// The `i`-th host of a tier whose addresses are 10.`second`.0.0/16 (`i` < 65 024).
fn tier_addr(second: u8, i: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, second, (i / 254) as u8, (i % 254 + 1) as u8)
}

const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 53);
const NTP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 123);
const PUBLIC_DNS: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);
/// External HTTPS services (documentation ranges: data in packets, never contacted).
const EXTERNAL: [Ipv4Addr; 4] = [
    Ipv4Addr::new(203, 0, 113, 10),
    Ipv4Addr::new(203, 0, 113, 25),
    Ipv4Addr::new(198, 51, 100, 7),
    Ipv4Addr::new(198, 51, 100, 80),
];
const TCP: u8 = 6;
const UDP: u8 = 17;

/// A deterministic synthetic network: clients, web/app/db/cache/queue tiers, external services.
///
/// Clients are 10.1.0.0/16; web servers 10.2/16 (TCP 443, some 80); app servers 10.3/16 (TCP
/// 8080); databases 10.4/16 (PostgreSQL 5432 or MySQL 3306); caches 10.5/16 (Redis 6379); queues
/// 10.6/16 (AMQP 5672 or Kafka 9092); DNS 10.0.0.53 and NTP 10.0.0.123 (UDP). Every eighth
/// client also calls HTTPS services in 203.0.113.0/24 and 198.51.100.0/24, every sixteenth
/// 8.8.8.8 for DNS. Servers are about one host in eight, at least one per tier, so a small
/// network may have a few more hosts than asked for; `hosts` is clamped to 1..=[`MAX_HOSTS`].
#[derive(Clone, Debug)]
pub struct Network {
    rng: Rng,
    /// Edges grouped by kind, in [`KIND_WEIGHTS`] order.
    edges: [Vec<Edge>; 8],
    scan: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Who would scan whom (the scan scenario starts it).
    scanner: (Ipv4Addr, Ipv4Addr),
    scan_step: u64,
    pending: Option<FlowRecord>,
}

impl Network {
    /// Builds the network of about `hosts` hosts from `seed`; `scan` adds a port-scanning client.
    pub fn new(hosts: u32, scan: bool, seed: u64) -> Network {
        let h = hosts.clamp(1, MAX_HOSTS);
        let tier = |second: u8, div: u32| -> Vec<Ipv4Addr> {
            (0..(h / div).max(1))
                .map(|i| tier_addr(second, i))
                .collect()
        };
        let (web, app, db) = (tier(2, 20), tier(3, 25), tier(4, 50));
        let (cache, queue) = (tier(5, 200), tier(6, 250));
        let servers = web.len() + app.len() + db.len() + cache.len() + queue.len();
        let clients = h.saturating_sub(servers as u32).max(1);
        let mut rng = Rng::new(seed);
        let mut edges: [Vec<Edge>; 8] = Default::default();
        let mut add = |kind: Kind, src, dst, port, proto| {
            edges[kind as usize].push(Edge {
                src,
                dst,
                port,
                proto,
            });
        };
        for c in 0..clients {
            let me = tier_addr(1, c);
            let w = rng.pick(&web);
            add(Kind::Web, me, w, 443, TCP);
            if rng.chance(30) {
                add(Kind::Web, me, w, 80, TCP);
            }
            let second = rng.pick(&web);
            if second != w && rng.chance(25) {
                add(Kind::Web, me, second, 443, TCP);
            }
            add(Kind::Dns, me, DNS, 53, UDP);
            if c.is_multiple_of(3) {
                add(Kind::Ntp, me, NTP, 123, UDP);
            }
            if c.is_multiple_of(8) {
                add(Kind::External, me, rng.pick(&EXTERNAL), 443, TCP);
            }
            if c.is_multiple_of(16) {
                add(Kind::External, me, PUBLIC_DNS, 53, UDP);
            }
        }
        let nth = |v: &[Ipv4Addr], i: usize| v.get(i % v.len().max(1)).copied();
        for (i, &w) in web.iter().enumerate() {
            let (first, second) = (nth(&app, i), rng.pick(&app));
            if let Some(a) = first {
                add(Kind::App, w, a, 8080, TCP);
            }
            if first != Some(second) {
                add(Kind::App, w, second, 8080, TCP);
            }
        }
        for (j, &a) in app.iter().enumerate() {
            let k = j % db.len().max(1);
            let port = if k.is_multiple_of(2) { 5432 } else { 3306 };
            if let Some(&d) = db.get(k) {
                add(Kind::Db, a, d, port, TCP);
            }
            if let Some(c) = nth(&cache, j) {
                add(Kind::Cache, a, c, 6379, TCP);
            }
            let k = j % queue.len().max(1);
            let port = if k.is_multiple_of(2) { 5672 } else { 9092 };
            if let Some(&q) = queue.get(k) {
                add(Kind::Queue, a, q, port, TCP);
            }
        }
        let scanner = tier_addr(1, rng.below(u64::from(clients)) as u32);
        let target = web.first().copied().unwrap_or(Ipv4Addr::new(10, 2, 0, 1));
        Network {
            rng,
            edges,
            scan: scan.then_some((scanner, target)),
            scanner: (scanner, target),
            scan_step: 0,
            pending: None,
        }
    }

    /// Plays `scenario` on the network from now on; what happened, in words.
    pub fn play(&mut self, scenario: Scenario) -> String {
        match scenario {
            Scenario::Scan => {
                self.scan = Some(self.scanner);
                format!("{} starts scanning {}", self.scanner.0, self.scanner.1)
            }
            Scenario::Outage => {
                let mut gone: Vec<Ipv4Addr> = self.edges[Kind::Db as usize]
                    .iter()
                    .map(|e| e.dst)
                    .collect();
                gone.sort();
                gone.dedup();
                self.edges[Kind::Db as usize].clear();
                format!("{} database servers stop answering", gone.len())
            }
            Scenario::NewService => {
                let mut apps: Vec<Ipv4Addr> = self.edges[Kind::Cache as usize]
                    .iter()
                    .map(|e| e.src)
                    .collect();
                apps.sort();
                apps.dedup();
                let (ip, port) = NEW_SERVICE;
                for &a in &apps {
                    self.edges[Kind::Db as usize].push(Edge {
                        src: a,
                        dst: ip,
                        port,
                        proto: TCP,
                    });
                }
                format!(
                    "{ip}:{port} appears, called by {} application servers",
                    apps.len()
                )
            }
        }
    }

    /// Adds client → web-server calls (TCP 443, 80 or 8443, each pair and port once) until the
    /// network has at least `target` dependencies or no new pair is left to add.
    pub fn widen(&mut self, target: usize) {
        let web = &self.edges[Kind::Web as usize];
        let mut have: std::collections::HashSet<Edge> = web.iter().copied().collect();
        let mut clients: Vec<Ipv4Addr> = web.iter().map(|e| e.src).collect();
        let mut servers: Vec<Ipv4Addr> = web.iter().map(|e| e.dst).collect();
        for v in [&mut clients, &mut servers] {
            v.sort_unstable();
            v.dedup();
        }
        let room = clients.len() * servers.len() * 3;
        let mut total: usize = self.edges.iter().map(Vec::len).sum();
        let mut tries = 0;
        while total < target && have.len() < room && tries < 8 * target {
            tries += 1;
            let port = [443, 80, 8443][self.rng.below(3) as usize];
            let edge = Edge {
                src: self.rng.pick(&clients),
                dst: self.rng.pick(&servers),
                port,
                proto: TCP,
            };
            if have.insert(edge) {
                self.edges[Kind::Web as usize].push(edge);
                total += 1;
            }
        }
    }

    /// Fills `out` with the next `n` flows, stamped around `now_ms` (UTC ms).
    ///
    /// Flows are appended (clear `out` first to reuse it). Each is one direction: a request
    /// (ephemeral port 32768–60999 → service port, TCP flags with SYN) or a response (service
    /// port → ephemeral port, ACK without SYN), ending within 2 s before `now_ms` and lasting
    /// at most 4 s. Byte counts are whole multiples of packet counts. A response that does not
    /// fit in `n` is emitted first by the next call.
    pub fn next_flows(&mut self, n: usize, now_ms: u64, out: &mut Vec<FlowRecord>) {
        out.reserve(n);
        let mut made = 0;
        while made < n {
            let flow = match self.pending.take() {
                Some(f) => f,
                None => self.next_flow(now_ms),
            };
            out.push(flow);
            made += 1;
        }
    }

    /// One new flow; a response that goes with it is left in `pending`.
    fn next_flow(&mut self, now_ms: u64) -> FlowRecord {
        if let Some((scanner, target)) = self.scan {
            if self.rng.chance(SCAN_PERCENT) {
                return self.scan_flow(scanner, target, now_ms);
            }
        }
        let mut roll = self.rng.below(100);
        let mut kind = Kind::Web;
        for (k, weight) in KIND_WEIGHTS {
            if roll < weight {
                kind = k;
                break;
            }
            roll -= weight;
        }
        let group = match &self.edges[kind as usize] {
            g if g.is_empty() => &self.edges[Kind::Web as usize],
            g => g,
        };
        let Some(&edge) = group.get(self.rng.below(group.len() as u64) as usize) else {
            return FlowRecord::default();
        };
        self.request_response(kind, edge, now_ms)
    }

    /// The request flow of one call on `edge`, leaving its response (if any) in `pending`.
    fn request_response(&mut self, kind: Kind, edge: Edge, now_ms: u64) -> FlowRecord {
        let p = kind.profile();
        let (near_if, far_if) = kind.interfaces();
        let rng = &mut self.rng;
        let ephemeral = rng.range((32_768, 60_999)) as u16;
        let last_ms = now_ms.saturating_sub(rng.below(2_000));
        let first_ms = last_ms.saturating_sub(rng.below(p.max_ms + 1));
        let tcp = edge.proto == TCP;
        let req_pkts = rng.range(p.req_pkts);
        let request = FlowRecord {
            src_addr: IpAddr::V4(edge.src),
            dst_addr: IpAddr::V4(edge.dst),
            src_port: ephemeral,
            dst_port: edge.port,
            protocol: edge.proto,
            // SYN|ACK|PSH, plus FIN when the connection closed within the flow.
            tcp_flags: match (tcp, rng.chance(85)) {
                (false, _) => 0,
                (true, true) => 0x1b,
                (true, false) => 0x1a,
            },
            bytes: req_pkts * rng.range(p.req_size),
            packets: req_pkts,
            in_if: near_if,
            out_if: far_if,
            first_ms,
            last_ms,
            ..FlowRecord::default()
        };
        if rng.chance(p.resp_percent) {
            let resp_pkts = rng.range(p.resp_pkts);
            self.pending = Some(FlowRecord {
                src_addr: request.dst_addr,
                dst_addr: request.src_addr,
                src_port: edge.port,
                dst_port: ephemeral,
                tcp_flags: if tcp {
                    (request.tcp_flags & 0x01) | 0x18
                } else {
                    0
                },
                bytes: resp_pkts * rng.range(p.resp_size),
                packets: resp_pkts,
                in_if: far_if,
                out_if: near_if,
                first_ms: (first_ms + rng.below(20)).min(last_ms),
                ..request
            });
        }
        request
    }

    /// One scan probe: a lone SYN, alternately to the next port of `target` and to the next
    /// host of 10.2.0.0/24.
    fn scan_flow(&mut self, scanner: Ipv4Addr, target: Ipv4Addr, now_ms: u64) -> FlowRecord {
        let k = self.scan_step;
        self.scan_step += 1;
        let (dst, port) = if k.is_multiple_of(2) {
            (target, (1 + (k / 2) % 1024) as u16)
        } else {
            let h = k / 2;
            let host = Ipv4Addr::new(10, 2, 0, (1 + h % 254) as u8);
            (host, [22, 445, 3389][((h / 254) % 3) as usize])
        };
        let at = now_ms.saturating_sub(self.rng.below(2_000));
        FlowRecord {
            src_addr: IpAddr::V4(scanner),
            dst_addr: IpAddr::V4(dst),
            src_port: self.rng.range((32_768, 60_999)) as u16,
            dst_port: port,
            protocol: TCP,
            tcp_flags: 0x02,
            bytes: if k % 4 < 2 { 44 } else { 40 },
            packets: 1,
            in_if: 1,
            out_if: 2,
            first_ms: at,
            last_ms: at,
            ..FlowRecord::default()
        }
    }

    /// The directed dependencies (client ip, server ip, server port, protocol) the network
    /// contains (so tests can check a collector found them). Scan probes are not dependencies.
    pub fn dependencies(&self) -> Vec<(IpAddr, IpAddr, u16, u8)> {
        self.edges
            .iter()
            .flatten()
            .map(|e| (IpAddr::V4(e.src), IpAddr::V4(e.dst), e.port, e.proto))
            .collect()
    }
}

/// Largest datagram the exporter builds (a 1500-byte MTU less headers and slack).
pub const MAX_DATAGRAM: usize = 1_400;
/// Templates are (re)sent in the first datagram and every this many datagrams after (v9, IPFIX).
pub const TEMPLATE_EVERY: u32 = 20;
/// The sFlow agent address: the simulated core switch.
pub const SFLOW_AGENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const TEMPLATE_ID: u16 = 256;
/// How long the simulated exporter claims to have been up at its first datagram.
const BOOT_UPTIME_MS: u64 = 3_600_000;
const V5_MAX_RECORDS: usize = (MAX_DATAGRAM - 24) / 48;
const SFLOW_HEADER_LEN: usize = 28;

/// Turns flows into datagrams of one format (keeps sequence numbers, sends templates first and
/// then every [`TEMPLATE_EVERY`] packets for v9 & IPFIX).
///
/// Only IPv4 flows are exported (the standard templates are IPv4); others are skipped. sFlow:
/// each flow becomes one raw-header sample (Ethernet/IPv4/TCP or UDP headers carrying the
/// flow's addresses, ports, protocol, ToS and TCP flags) whose sampling rate is the flow's
/// packet count and whose frame length is its mean packet size, so a decoder's `packets ×
/// frame length` gives back the flow's packets and bytes (bytes rounded down to a multiple of
/// packets; [`Network`] flows are exact). sFlow carries no flow times: decoders stamp receipt.
#[derive(Clone, Debug)]
pub struct Exporter {
    proto: SimProto,
    domain: u32,
    packets: u32,
    records: u32,
    boot_ms: Option<u64>,
}

impl Exporter {
    /// An exporter of `proto` with source id / observation domain / sFlow sub-agent `domain`.
    pub fn new(proto: SimProto, domain: u32) -> Exporter {
        Exporter {
            proto,
            domain,
            packets: 0,
            records: 0,
            boot_ms: None,
        }
    }

    /// Encodes flows into datagrams (each ≤ [`MAX_DATAGRAM`] bytes), appending them to `out`.
    /// `now_ms` is the export time; flow times after it are clamped to it (v5, v9).
    pub fn encode(&mut self, flows: &[FlowRecord], now_ms: u64, out: &mut Vec<Vec<u8>>) {
        let boot = *self
            .boot_ms
            .get_or_insert(now_ms.saturating_sub(BOOT_UPTIME_MS));
        let uptime = now_ms.saturating_sub(boot) as u32;
        let v4: Vec<FlowRecord> = flows
            .iter()
            .filter(|f| f.src_addr.is_ipv4() && f.dst_addr.is_ipv4())
            .copied()
            .collect();
        let mut rest = v4.as_slice();
        while !rest.is_empty() {
            let template = self.packets.is_multiple_of(TEMPLATE_EVERY);
            let (datagram, n) = match self.proto {
                SimProto::V5 => {
                    let n = rest.len().min(V5_MAX_RECORDS);
                    let chunk = rest.get(..n).unwrap_or_default();
                    (encode::netflow_v5(now_ms, uptime, self.records, chunk), n)
                }
                SimProto::V9 => self.v9(rest, template, now_ms, boot),
                SimProto::Ipfix => self.ipfix(rest, template, (now_ms / 1000) as u32),
                SimProto::Sflow => self.sflow(rest, uptime),
            };
            rest = rest.get(n..).unwrap_or_default();
            self.packets = self.packets.wrapping_add(1);
            self.records = self.records.wrapping_add(n as u32);
            out.push(datagram);
        }
    }

    fn v9(
        &self,
        flows: &[FlowRecord],
        template: bool,
        now_ms: u64,
        boot_ms: u64,
    ) -> (Vec<u8>, usize) {
        let template_len = if template {
            8 + 4 * encode::STANDARD_V9_TEMPLATE.len()
        } else {
            0
        };
        let room = MAX_DATAGRAM - 20 - 4 - template_len;
        let n = flows.len().min(room / encode::STANDARD_V9_RECORD_LEN);
        let count = (n + usize::from(template)) as u16;
        let mut p = V9Packet::new(
            count,
            // The header ties uptime to whole seconds; records are uptime since boot either way.
            (now_ms / 1000 * 1000).saturating_sub(boot_ms) as u32,
            (now_ms / 1000) as u32,
            self.packets,
            self.domain,
        );
        if template {
            p.set(0)
                .template(TEMPLATE_ID, &encode::STANDARD_V9_TEMPLATE);
        }
        p.set(TEMPLATE_ID);
        for r in flows.iter().take(n) {
            encode::standard_v9_record(
                p.writer(),
                r,
                now_ms,
                now_ms.saturating_sub(boot_ms) as u32,
            );
        }
        (p.finish(), n)
    }

    fn ipfix(&self, flows: &[FlowRecord], template: bool, secs: u32) -> (Vec<u8>, usize) {
        let fields = encode::standard_ipv4_template();
        let record_len: usize = fields.iter().map(|f| usize::from(f.len)).sum();
        let template_len = if template { 8 + 4 * fields.len() } else { 0 };
        let n = flows
            .len()
            .min((MAX_DATAGRAM - 16 - 4 - template_len) / record_len.max(1));
        let mut m = IpfixMessage::new(secs, self.records, self.domain);
        if template {
            m.set(2).template(TEMPLATE_ID, 0, &fields);
        }
        m.set(TEMPLATE_ID);
        for r in flows.iter().take(n) {
            encode::standard_ipv4_record(m.writer(), r);
        }
        (m.finish(), n)
    }

    fn sflow(&self, flows: &[FlowRecord], uptime: u32) -> (Vec<u8>, usize) {
        let mut n = 0;
        let mut size = SFLOW_HEADER_LEN;
        for f in flows {
            let sample = 64 + sampled_header_len(f.protocol).div_ceil(4) * 4;
            if n > 0 && size + sample > MAX_DATAGRAM {
                break;
            }
            size += sample;
            n += 1;
        }
        let mut w = Writer::new();
        let agent = IpAddr::V4(SFLOW_AGENT);
        encode::sflow_header(&mut w, agent, self.domain, self.packets, uptime, n as u32);
        for f in flows.iter().take(n) {
            let rate = f.packets.clamp(1, u64::from(u32::MAX));
            let frame_len = (f.bytes / rate).min(u64::from(u32::MAX)) as u32;
            let header = sampled_header(f, frame_len);
            encode::sflow_raw_header_sample(
                &mut w,
                rate as u32,
                f.in_if,
                f.out_if,
                frame_len,
                &header,
            );
        }
        (w.into_bytes(), n)
    }
}

/// Transport header bytes the sampled header carries for `protocol`.
fn transport_len(protocol: u8) -> usize {
    match protocol {
        TCP => 20,
        UDP | 1 => 8,
        _ => 0,
    }
}

/// Bytes of the sampled Ethernet + IPv4 + transport header for `protocol`.
fn sampled_header_len(protocol: u8) -> usize {
    14 + 20 + transport_len(protocol)
}

/// An Ethernet/IPv4/transport header for `f` whose IP total length is `ip_len` (raised to the
/// headers' own size).
fn sampled_header(f: &FlowRecord, ip_len: u32) -> Vec<u8> {
    let v4 = |a: IpAddr| match a {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(_) => 0,
    };
    let (src, dst) = (v4(f.src_addr), v4(f.dst_addr));
    let l4 = transport_len(f.protocol);
    let total = ip_len.clamp(20 + l4 as u32, 65_535) as u16;
    let words = [
        0x4500 | u32::from(f.tos),
        u32::from(total),
        0x4000,
        0x4000 | u32::from(f.protocol),
        src >> 16,
        src & 0xffff,
        dst >> 16,
        dst & 0xffff,
    ];
    let mut sum: u32 = words.iter().sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let mut w = Writer::new();
    w.bytes(&[2, 0, 0, 0, 0, 2])
        .bytes(&[2, 0, 0, 0, 0, 1])
        .u16(0x0800);
    w.u16(0x4500 | u16::from(f.tos))
        .u16(total)
        .u16(0)
        .u16(0x4000);
    w.u8(64).u8(f.protocol).u16(!(sum as u16)).u32(src).u32(dst);
    match f.protocol {
        TCP => {
            w.u16(f.src_port)
                .u16(f.dst_port)
                .u32(0x1000_0000)
                .u32(0x2000_0000);
            w.u8(0x50).u8(f.tcp_flags).u16(64_240).u16(0).u16(0);
        }
        UDP => {
            w.u16(f.src_port).u16(f.dst_port).u16(total - 20).u16(0);
        }
        1 => {
            w.u16(f.dst_port).u16(0).u32(0);
        }
        _ => {}
    }
    w.into_bytes()
}

/// Now as UTC milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Pacing slice.
const SLICE: Duration = Duration::from_millis(10);
/// Flows generated per loop turn when running flat out.
const FLAT_OUT_BATCH: u64 = 400;
/// Most flows generated in one pacing slice (caps huge rates at 1 M flows/s).
const MAX_SLICE_BATCH: u64 = 10_000;

/// Sends the simulated network to `args.to` until duration/flows is reached or Ctrl-C
/// (tokio::signal::ctrl_c), pacing to `args.rate` flows/s (pace in ~10 ms slices; rate 0 = flat
/// out). Uses a tokio UdpSocket bound to 0.0.0.0:0 or [::]:0 to match the target family.
pub async fn run(args: &SimulateArgs) -> anyhow::Result<SimulateReport> {
    let hosts = args.hosts;
    if hosts == 0 || hosts > MAX_HOSTS {
        bail!("--hosts must be between 1 and {MAX_HOSTS}, got {hosts}");
    }
    if let Some(d) = args.duration {
        if !(d.is_finite() && d >= 0.0) {
            bail!("--duration must be a non-negative number of seconds, got {d}");
        }
    }
    let bind: SocketAddr = match args.to {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(bind)
        .await
        .with_context(|| format!("binding a UDP socket on {bind}"))?;
    let mut network = Network::new(args.hosts, args.scan, args.seed);
    if let Some(target) = args.dependencies {
        network.widen(target as usize);
    }
    let mut exporter = Exporter::new(args.proto, 1);
    tracing::info!(to = %args.to, proto = ?args.proto, rate = args.rate, hosts = args.hosts,
        dependencies = network.dependencies().len(), "simulating");
    let start = Instant::now();
    // Should the handler fail to install, run on without it (to duration/flows or a kill).
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(ctrl_c);
    let mut report = SimulateReport::default();
    let (mut flows, mut datagrams) = (Vec::new(), Vec::new());
    let mut scenario = args.scenario;
    loop {
        let elapsed = start.elapsed().as_secs_f64();
        if let Some(s) = scenario.filter(|_| elapsed >= args.scenario_at) {
            let what = network.play(s);
            tracing::info!(scenario = ?s, "{what}");
            eprintln!("scenario {s:?} at {elapsed:.1} s: {what}");
            scenario = None;
        }
        let remaining = args
            .flows
            .map_or(u64::MAX, |f| f.saturating_sub(report.flows));
        if remaining == 0 || args.duration.is_some_and(|d| elapsed >= d) {
            break;
        }
        let due = match args.rate {
            0 => FLAT_OUT_BATCH,
            rate => ((rate as f64 * elapsed) as u64)
                .saturating_sub(report.flows)
                .min(MAX_SLICE_BATCH),
        };
        let batch = due.min(remaining);
        if batch > 0 {
            let now = now_ms();
            flows.clear();
            datagrams.clear();
            network.next_flows(batch as usize, now, &mut flows);
            exporter.encode(&flows, now, &mut datagrams);
            for d in &datagrams {
                if socket.send_to(d, args.to).await.is_err() {
                    // Kernel buffers full (ENOBUFS): give them a moment, then try once more.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    socket
                        .send_to(d, args.to)
                        .await
                        .with_context(|| format!("sending to {}", args.to))?;
                }
                report.packets += 1;
                report.bytes += d.len() as u64;
            }
            report.flows += batch;
        }
        if args.rate == 0 {
            tokio::select! {
                biased;
                _ = &mut ctrl_c => break,
                _ = tokio::task::yield_now() => {}
            }
        } else {
            tokio::select! {
                biased;
                _ = &mut ctrl_c => break,
                _ = tokio::time::sleep(SLICE) => {}
            }
        }
    }
    report.elapsed_s = start.elapsed().as_secs_f64();
    tracing::info!(
        flows = report.flows,
        packets = report.packets,
        bytes = report.bytes,
        elapsed_s = report.elapsed_s,
        "simulation finished"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::decode::{decode_datagram, DecodeContext, TemplateCache};

    const NOW: u64 = 1_793_527_200_123;

    fn flows_of(network: &mut Network, n: usize) -> Vec<FlowRecord> {
        let mut out = Vec::new();
        network.next_flows(n, NOW, &mut out);
        out
    }

    #[test]
    fn scenarios_change_the_traffic_from_the_moment_they_play() {
        let mut net = Network::new(200, false, 3);
        let db_ports = [5432u16, 3306];
        let to_db = |f: &FlowRecord| db_ports.contains(&f.dst_port);
        let before = flows_of(&mut net, 20_000);
        assert!(before.iter().any(to_db));
        assert!(!before.iter().any(|f| f.dst_port == NEW_SERVICE.1));
        assert!(net
            .play(Scenario::Outage)
            .contains("database servers stop answering"));
        assert!(!flows_of(&mut net, 20_000).iter().any(to_db));
        let said = net.play(Scenario::NewService);
        assert!(said.starts_with("10.8.0.1:9200 appears"), "{said}");
        let after = flows_of(&mut net, 20_000);
        assert!(after
            .iter()
            .any(|f| f.dst_addr == IpAddr::V4(NEW_SERVICE.0) && f.dst_port == NEW_SERVICE.1));
        let said = net.play(Scenario::Scan);
        let scanner = net.scanner.0;
        assert!(said.contains("starts scanning"), "{said}");
        let scans = flows_of(&mut net, 20_000)
            .iter()
            .filter(|f| f.src_addr == IpAddr::V4(scanner) && f.tcp_flags == 0x02 && f.packets == 1)
            .count();
        assert!(scans > 100, "{scans} probes");
    }

    fn decode_all(datagrams: &[Vec<u8>], now: u64) -> Vec<FlowRecord> {
        let ctx = DecodeContext {
            exporter: IpAddr::V4(Ipv4Addr::LOCALHOST),
            received_ms: now,
        };
        let mut cache = TemplateCache::new();
        let mut out = Vec::new();
        for d in datagrams {
            assert!(d.len() <= MAX_DATAGRAM, "datagram of {} bytes", d.len());
            let report = decode_datagram(d, &ctx, &mut cache, &mut out).expect("decodes");
            assert_eq!(report.skipped.total(), 0, "{report:?}");
        }
        out
    }

    #[test]
    fn every_datagram_decodes_to_the_generated_flows() {
        for proto in [SimProto::V5, SimProto::V9, SimProto::Ipfix, SimProto::Sflow] {
            let mut net = Network::new(300, true, 7);
            let mut exporter = Exporter::new(proto, 3);
            let (mut flows, mut datagrams) = (Vec::new(), Vec::new());
            for i in 0..5 {
                let mut batch = Vec::new();
                net.next_flows(997, NOW + i * 1000, &mut batch);
                exporter.encode(&batch, NOW + i * 1000, &mut datagrams);
                flows.extend(batch);
            }
            let decoded = decode_all(&datagrams, NOW);
            assert_eq!(decoded.len(), flows.len(), "{proto:?}");
            for (d, f) in decoded.iter().zip(&flows) {
                let key = |r: &FlowRecord| {
                    (
                        r.src_addr,
                        r.dst_addr,
                        r.src_port,
                        r.dst_port,
                        r.protocol,
                        r.tcp_flags,
                    )
                };
                assert_eq!(key(d), key(f), "{proto:?}");
                assert_eq!(
                    (d.bytes, d.packets),
                    (f.bytes, f.packets),
                    "{proto:?} {f:?}"
                );
                if proto != SimProto::Sflow {
                    assert_eq!(
                        (d.first_ms, d.last_ms),
                        (f.first_ms, f.last_ms),
                        "{proto:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn flows_are_plausible() {
        let mut net = Network::new(50, true, 1);
        let mut flows = Vec::new();
        net.next_flows(5_000, NOW, &mut flows);
        for f in &flows {
            assert!(f.first_ms <= f.last_ms && f.last_ms <= NOW && NOW - f.first_ms <= 6_000);
            assert!(matches!(f.protocol, TCP | UDP) && f.packets > 0 && f.bytes % f.packets == 0);
            let request = (32_768..=60_999).contains(&f.src_port);
            if f.protocol == TCP {
                assert_eq!(f.tcp_flags & 0x02 != 0, request, "{f:?}");
            }
        }
        assert!(flows.iter().any(|f| f.tcp_flags == 0x02 && f.bytes <= 44));
        assert!(flows.iter().any(|f| f.dst_port == 53 && f.protocol == UDP));
        assert!(flows
            .iter()
            .any(|f| f.src_port == 443 && f.tcp_flags & 0x10 != 0));
    }

    #[test]
    fn same_seed_same_flows() {
        let run = |seed| {
            let mut net = Network::new(500, true, seed);
            let mut flows = Vec::new();
            net.next_flows(2_000, NOW, &mut flows);
            (net.dependencies(), flows)
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42).1, run(43).1);
    }

    #[test]
    fn network_has_each_tier_and_scales() {
        for hosts in [0, 1, 5, 50, 50_000, u32::MAX] {
            let deps = Network::new(hosts, false, 1).dependencies();
            let has = |prefix: u8, port: &[u16]| {
                deps.iter().any(|(c, s, p, _)| {
                    matches!((c, s), (IpAddr::V4(c), IpAddr::V4(s))
                        if c.octets()[1] == prefix && s.octets()[1] == prefix + 1)
                        && port.contains(p)
                })
            };
            assert!(
                has(1, &[443]) && has(2, &[8080]) && has(3, &[5432, 3306]),
                "{hosts}"
            );
            assert!(deps.iter().any(|d| d.2 == 6379) && deps.iter().any(|d| d.2 == 5672));
            assert!(deps.iter().any(|d| d.1 == IpAddr::V4(DNS) && d.3 == UDP));
        }
        let big = Network::new(50_000, false, 1).dependencies();
        let servers: std::collections::HashSet<_> = big.iter().map(|d| d.1).collect();
        assert!(servers.len() > 3_000, "{}", servers.len());
    }

    #[test]
    fn widening_adds_distinct_web_calls_up_to_the_target_or_what_fits() {
        let mut net = Network::new(50_000, false, 1);
        let before = net.dependencies();
        net.widen(200_000);
        let after = net.dependencies();
        assert!(
            after.len() >= 200_000 && after.len() < 200_010,
            "{}",
            after.len()
        );
        let distinct: std::collections::HashSet<_> = after.iter().collect();
        assert_eq!(distinct.len(), after.len());
        assert!(before.iter().all(|d| distinct.contains(d)));
        // A tiny network runs out of pairs: it stops, with every pair used once.
        let mut tiny = Network::new(1, false, 1);
        tiny.widen(1_000);
        let deps = tiny.dependencies();
        assert!(deps.len() < 1_000);
        assert_eq!(
            deps.iter().collect::<std::collections::HashSet<_>>().len(),
            deps.len()
        );
        // Same seed, same widened network.
        let mut again = Network::new(50_000, false, 1);
        again.widen(200_000);
        assert_eq!(again.dependencies(), after);
    }

    #[tokio::test]
    async fn run_delivers_every_flow_over_loopback() {
        // Current-thread runtime: the sender yields after each batch and the receiver drains.
        let rx = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let to = rx.local_addr().expect("addr");
        let receiver = tokio::spawn(async move {
            let (mut got, mut buf) = (Vec::new(), [0u8; 2048]);
            let wait = Duration::from_millis(500);
            while let Ok(Ok(n)) = tokio::time::timeout(wait, rx.recv(&mut buf)).await {
                got.push(buf[..n].to_vec());
            }
            got
        });
        let args = SimulateArgs {
            to,
            proto: SimProto::Ipfix,
            rate: 0,
            hosts: 50,
            duration: None,
            flows: Some(5_000),
            scan: true,
            seed: 1,
            dependencies: Some(400),
            scenario: Some(Scenario::NewService),
            scenario_at: 0.0,
        };
        let report = run(&args).await.expect("run");
        assert_eq!(report.flows, 5_000);
        let got = receiver.await.expect("receiver");
        assert_eq!(got.len() as u64, report.packets);
        assert_eq!(decode_all(&got, now_ms()).len(), 5_000);
        let bad = SimulateArgs {
            hosts: 0,
            ..args.clone()
        };
        assert!(run(&bad).await.is_err());
        let bad = SimulateArgs {
            duration: Some(f64::NAN),
            ..args.clone()
        };
        assert!(run(&bad).await.is_err());
        // Paced: 2000 flows/s for half a second, unbounded flow count.
        let paced = SimulateArgs {
            rate: 2_000,
            duration: Some(0.5),
            flows: None,
            ..args
        };
        let report = run(&paced).await.expect("paced run");
        assert!((700..=1_100).contains(&report.flows), "{report:?}");
    }
}
