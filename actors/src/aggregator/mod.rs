//! The aggregator: takes flow batches from the collector, decides for each flow which side is the
//! client and which the server, accumulates per-dependency traffic for the graph (flushed every
//! period), and keeps what the dashboard and flow explorer read: per-second throughput for the
//! last ten minutes, top talkers and protocol mix over a window, and a bounded ring of recent
//! flows. Nothing here goes through Raft.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use proto::api::{
    Page, ProtocolMix, ProtocolShare, Throughput, ThroughputPoint, TopTalker, TopTalkers,
};
use proto::event::{DependencyKey, EdgeStats, ServiceKey, TrafficDelta};
use proto::record::BiflowDirection;
use proto::FlowRecord;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};

use crate::advisor::AdvisorMsg;
use crate::graph::GraphMsg;
use crate::lane::Slot;
use crate::ports::{has_ports, is_service_port, protocol_name};
use crate::{now_ms, FastMap, FastSet, HostMap, RawSink};

/// Seconds of per-second throughput kept.
const THROUGHPUT_SECONDS: u64 = 600;
/// Known server endpoints remembered for "stable server side" inference.
const MAX_KNOWN_SERVERS: usize = 500_000;
/// Dependencies accumulated before the period is flushed early: bounds the pending map and the
/// message to the graph however many distinct dependencies one period sees.
const MAX_PENDING: usize = 16_384;
/// Traffic messages the graph may have waiting (its mailbox is unbounded); while it is behind,
/// traffic keeps merging per dependency here, bounded by the number of dependencies.
const MAX_OBSERVE_IN_FLIGHT: usize = 4;

/// A batch of decoded flows holding its slot in the lane.
pub struct FlowBatch {
    /// The flows.
    pub flows: Vec<FlowRecord>,
    /// The lane slot, freed when the batch has been handled.
    pub slot: Slot,
}

/// The aggregator's settings.
#[derive(Clone, Debug)]
pub struct AggregatorConfig {
    /// Recent flows kept for the flow explorer.
    pub recent_flows: usize,
    /// How often accumulated dependency traffic goes to the graph (sooner when many distinct
    /// dependencies are pending).
    pub flush_interval: Duration,
    /// Window of top talkers and protocol mix.
    pub window: Duration,
}

/// A flow-explorer query.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FlowQuery {
    /// Source address or network.
    pub src: Option<IpNet>,
    /// Destination address or network.
    pub dst: Option<IpNet>,
    /// Either address (or network).
    pub host: Option<IpNet>,
    /// Source or destination port.
    pub port: Option<u16>,
    /// IP protocol number.
    pub protocol: Option<u8>,
    /// Flows ending at or after this time, UTC ms.
    pub from_ms: Option<u64>,
    /// Flows ending at or before this time, UTC ms.
    pub to_ms: Option<u64>,
    /// Matches to skip (newest first).
    pub offset: usize,
    /// Page size.
    pub limit: usize,
    /// Only flows with either address in one of these networks (a scoped role's); None: any.
    #[serde(default)]
    pub within: Option<Vec<IpNet>>,
}

impl FlowQuery {
    /// Whether a flow matches the query's filters and time range (paging aside).
    pub fn matches(&self, f: &FlowRecord) -> bool {
        self.src.is_none_or(|n| n.contains(&f.src_addr))
            && self.dst.is_none_or(|n| n.contains(&f.dst_addr))
            && self
                .host
                .is_none_or(|n| n.contains(&f.src_addr) || n.contains(&f.dst_addr))
            && self.port.is_none_or(|p| f.src_port == p || f.dst_port == p)
            && self.protocol.is_none_or(|p| f.protocol == p)
            && self.from_ms.is_none_or(|t| f.last_ms >= t)
            && self.to_ms.is_none_or(|t| f.last_ms <= t)
            && self.within.as_ref().is_none_or(|nets| {
                nets.iter()
                    .any(|n| n.contains(&f.src_addr) || n.contains(&f.dst_addr))
            })
    }
}

/// Totals since start, for metrics.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct AggregatorTotals {
    /// Flow records aggregated.
    pub flows: u64,
    /// Bytes in them.
    pub bytes: u64,
    /// Batches handled.
    pub batches: u64,
    /// Dependencies with traffic waiting for the next flush.
    pub pending_edges: u64,
    /// Asymmetric-path findings the advisor missed because it was behind.
    pub advisor_skipped: u64,
}

/// Messages the aggregator handles.
pub enum AggregatorMsg {
    /// Flows from the collector.
    Ingest(FlowBatch),
    /// Send accumulated traffic to the graph (timer).
    Tick,
    /// Send accumulated traffic to the graph and have the graph commit it; replies when done.
    Flush(RpcReplyPort<()>),
    /// Recent flows, newest first.
    RecentFlows(FlowQuery, RpcReplyPort<Page<FlowRecord>>),
    /// Per-second throughput over the last ten minutes.
    Throughput(RpcReplyPort<Throughput>),
    /// Top talkers.
    TopTalkers(usize, RpcReplyPort<TopTalkers>),
    /// Protocol mix.
    Protocols(RpcReplyPort<ProtocolMix>),
    /// Totals.
    Totals(RpcReplyPort<AggregatorTotals>),
}

/// Which way a flow goes in terms of its dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Orientation {
    /// The dependency the flow belongs to.
    pub key: DependencyKey,
    /// Whether the flow's source is the client (request direction).
    pub to_server: bool,
    /// Whether the server side was a known server endpoint already (false when not looked up).
    pub server_known: bool,
}

/// Decides client and server for a flow: biflow direction when the exporter says it, then a
/// known server endpoint, then one side on a service port, then a client SYN, then the lower port.
pub fn orient(f: &FlowRecord, known_servers: &FastSet<ServiceKey>) -> Orientation {
    let forward = |to_server: bool, server_known: bool| {
        let (client, server, port) = if to_server {
            (f.src_addr, f.dst_addr, f.dst_port)
        } else {
            (f.dst_addr, f.src_addr, f.src_port)
        };
        let port = if has_ports(f.protocol) { port } else { 0 };
        Orientation {
            key: DependencyKey {
                client,
                service: ServiceKey {
                    ip: server,
                    port,
                    protocol: f.protocol,
                },
            },
            to_server,
            server_known,
        }
    };
    if !has_ports(f.protocol) {
        // ICMP echo: exporters put type * 256 + code in the destination port.
        let server = ServiceKey {
            ip: f.dst_addr,
            port: 0,
            protocol: f.protocol,
        };
        let client = ServiceKey {
            ip: f.src_addr,
            ..server
        };
        let (server_known, client_known) = (
            known_servers.contains(&server),
            known_servers.contains(&client),
        );
        if server_known != client_known {
            return forward(server_known, true);
        }
        let icmp_type = (f.dst_port >> 8) as u8;
        let reply = matches!((f.protocol, icmp_type), (1, 0) | (58, 129));
        return forward(!reply, server_known);
    }
    match f.direction {
        BiflowDirection::Forward => return forward(true, false),
        BiflowDirection::Reverse => return forward(false, false),
        BiflowDirection::Unidirectional => {}
    }
    let dst = ServiceKey {
        ip: f.dst_addr,
        port: f.dst_port,
        protocol: f.protocol,
    };
    let src = ServiceKey {
        ip: f.src_addr,
        port: f.src_port,
        protocol: f.protocol,
    };
    let dst_known = known_servers.contains(&dst);
    let src_known = known_servers.contains(&src);
    if dst_known != src_known {
        return forward(dst_known, true);
    }
    // Both known or neither: the same for either side.
    let dst_service = is_service_port(f.dst_port, f.protocol);
    let src_service = is_service_port(f.src_port, f.protocol);
    if dst_service != src_service {
        return forward(dst_service, dst_known);
    }
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    if f.protocol == 6 && f.tcp_flags & SYN != 0 && f.tcp_flags & ACK == 0 {
        return forward(true, dst_known);
    }
    forward(f.dst_port <= f.src_port, dst_known)
}

/// Where one direction of a dependency's flows was seen: exporter, input and output interface.
pub type PathPoint = (IpAddr, u32, u32);

/// The way each direction of a dependency's flows went during a flush period.
#[derive(Clone, Copy, Debug, Default)]
pub struct Paths {
    to_server: Option<PathPoint>,
    to_client: Option<PathPoint>,
    /// A direction was seen at more than one point (several exporters on the way).
    mixed: bool,
}

impl Paths {
    fn see(&mut self, to_server: bool, f: &FlowRecord) {
        let point = (f.exporter, f.in_if, f.out_if);
        let slot = if to_server {
            &mut self.to_server
        } else {
            &mut self.to_client
        };
        match slot {
            None => *slot = Some(point),
            Some(seen) if *seen != point => self.mixed = true,
            Some(_) => {}
        }
    }

    /// Both directions seen, each at one point, and not the reverse of each other: a different
    /// exporter, or the same one with the reply not coming back over the request's interfaces.
    fn asymmetric(&self) -> Option<(PathPoint, PathPoint)> {
        let (a, b) = (self.to_server?, self.to_client?);
        if self.mixed {
            return None;
        }
        let interfaces_known = a.1 != 0 && a.2 != 0 && b.1 != 0 && b.2 != 0;
        let differ = a.0 != b.0 || (interfaces_known && (a.1 != b.2 || a.2 != b.1));
        differ.then_some((a, b))
    }
}

/// A dependency whose request and reply took different paths in one flush period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asymmetry {
    /// The dependency.
    pub dependency: DependencyKey,
    /// Where the requests were seen.
    pub to_server: PathPoint,
    /// Where the replies were seen.
    pub to_client: PathPoint,
}

#[derive(Clone, Copy, Default)]
struct Counter {
    bytes: u64,
    packets: u64,
    flows: u64,
}

impl Counter {
    fn add(&mut self, f: &FlowRecord) {
        self.bytes = self.bytes.saturating_add(f.bytes);
        self.packets = self.packets.saturating_add(f.packets);
        self.flows += 1;
    }
    fn merge(&mut self, o: &Counter) {
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.packets = self.packets.saturating_add(o.packets);
        self.flows += o.flows;
    }
}

/// One window of top-talker and protocol counters.
#[derive(Default)]
struct Window {
    start_ms: u64,
    sources: HostMap<Counter>,
    destinations: HostMap<Counter>,
    /// Indexed by protocol number (empty until the window's first flow).
    protocols: Vec<Counter>,
}

impl Window {
    fn protocols(&self) -> impl Iterator<Item = (u8, &Counter)> {
        (0..=u8::MAX)
            .zip(&self.protocols)
            .filter(|(_, c)| c.flows > 0)
    }
}

/// The aggregator's state.
pub struct AggregatorState {
    config: AggregatorConfig,
    graph: ActorRef<GraphMsg>,
    raw: Option<Arc<dyn RawSink>>,
    advisor: Option<ActorRef<AdvisorMsg>>,
    /// One clone travels with each hand-off to the advisor.
    advising: Arc<()>,
    known_servers: FastSet<ServiceKey>,
    pending: FastMap<DependencyKey, (TrafficDelta, Paths)>,
    /// One clone travels with each traffic message to the graph; the others are in flight.
    observing: Arc<()>,
    recent: VecDeque<FlowRecord>,
    seconds: Vec<(u64, Counter)>,
    current: Window,
    previous: Window,
    totals: AggregatorTotals,
}

/// The aggregator actor.
pub struct Aggregator;

/// What the aggregator starts with.
pub struct AggregatorArgs {
    /// Settings.
    pub config: AggregatorConfig,
    /// The graph actor traffic goes to.
    pub graph: ActorRef<GraphMsg>,
    /// Where flow records go once aggregated, to be kept raw (none: not kept).
    pub raw: Option<Arc<dyn RawSink>>,
    /// The advisor, which gets each flush's asymmetric paths (none: no advisories).
    pub advisor: Option<ActorRef<AdvisorMsg>>,
}

impl AggregatorState {
    fn ingest(&mut self, flows: &[FlowRecord]) {
        let now = now_ms();
        let sec = now / 1000;
        let window_ms = self.config.window.as_millis().max(1) as u64;
        if now.saturating_sub(self.current.start_ms) >= window_ms {
            self.previous = std::mem::take(&mut self.current);
            self.current.start_ms = now;
        }
        if self.current.protocols.is_empty() {
            self.current.protocols = vec![Counter::default(); 256];
        }
        let slot = (sec % THROUGHPUT_SECONDS) as usize;
        if let Some(s) = self.seconds.get_mut(slot) {
            if s.0 != sec {
                *s = (sec, Counter::default());
            }
        }
        for f in flows {
            let o = orient(f, &self.known_servers);
            if !o.server_known {
                if self.known_servers.len() >= MAX_KNOWN_SERVERS {
                    self.known_servers.clear();
                }
                self.known_servers.insert(o.key.service);
            }
            // The map keeps the node's clock: an exporter whose clock runs ahead (or jumped)
            // must not make a dependency look seen in the future, and so active for that long
            // after its traffic stopped. Raw flows keep the exporter's times.
            let last_ms = f.last_ms.max(f.first_ms).min(now);
            let mut delta = TrafficDelta {
                flows: 1,
                first_ms: f.first_ms.min(last_ms),
                last_ms,
                ..TrafficDelta::default()
            };
            if o.to_server {
                delta.bytes_to_server = f.bytes;
                delta.packets_to_server = f.packets;
            } else {
                delta.bytes_to_client = f.bytes;
                delta.packets_to_client = f.packets;
            }
            let (pending, paths) = self.pending.entry(o.key).or_default();
            pending.merge(&delta);
            paths.see(o.to_server, f);
            if self.pending.len() >= MAX_PENDING {
                self.flush(false);
            }
            if let Some(s) = self.seconds.get_mut(slot) {
                s.1.add(f);
            }
            self.current.sources.entry(f.src_addr).add(f);
            self.current.destinations.entry(f.dst_addr).add(f);
            if let Some(c) = self.current.protocols.get_mut(usize::from(f.protocol)) {
                c.add(f);
            }
            self.totals.flows += 1;
            self.totals.bytes = self.totals.bytes.saturating_add(f.bytes);
        }
        self.totals.batches += 1;
        let cap = self.config.recent_flows;
        if cap > 0 {
            let keep = flows.len().min(cap);
            while self.recent.len() + keep > cap {
                self.recent.pop_front();
            }
            self.recent
                .extend(flows.iter().skip(flows.len() - keep).copied());
        }
    }

    /// Hands pending traffic to the graph, unless it is behind (more than
    /// [`MAX_OBSERVE_IN_FLIGHT`] messages not handled yet) and the hand-off is not `forced`.
    fn flush(&mut self, forced: bool) {
        if self.pending.is_empty() {
            return;
        }
        if !forced && Arc::strong_count(&self.observing) > MAX_OBSERVE_IN_FLIGHT {
            return;
        }
        let mut asymmetric = Vec::new();
        let edges: Vec<EdgeStats> = self
            .pending
            .drain()
            .map(|(dependency, (traffic, paths))| {
                if let Some((to_server, to_client)) = paths.asymmetric() {
                    asymmetric.push(Asymmetry {
                        dependency,
                        to_server,
                        to_client,
                    });
                }
                EdgeStats {
                    dependency,
                    traffic,
                }
            })
            .collect();
        let now = now_ms();
        // The graph sums each dependency's traffic for the advisor's window too; only what
        // the graph cannot know goes to the advisor directly.
        if let (Some(advisor), false) = (&self.advisor, asymmetric.is_empty()) {
            // The advisor is best effort: while it is behind, it misses these (counted).
            if Arc::strong_count(&self.advising) <= crate::advisor::MAX_OBSERVE_IN_FLIGHT {
                let token = self.advising.clone();
                if advisor
                    .send_message(AdvisorMsg::Asymmetric(asymmetric, token))
                    .is_err()
                {
                    self.totals.advisor_skipped += 1;
                }
            } else {
                self.totals.advisor_skipped += 1;
            }
        }
        let token = self.observing.clone();
        if let Err(e) = self
            .graph
            .send_message(GraphMsg::Observe(edges, now, token))
        {
            tracing::error!(error = %e, "graph actor gone; traffic dropped");
        }
    }

    fn recent_flows(&self, q: &FlowQuery) -> Page<FlowRecord> {
        let limit = q.limit.clamp(1, 10_000);
        let mut total = 0u64;
        let mut items = Vec::new();
        for f in self.recent.iter().rev().filter(|f| q.matches(f)) {
            if total as usize >= q.offset && items.len() < limit {
                items.push(*f);
            }
            total += 1;
        }
        Page {
            items,
            total,
            offset: q.offset as u64,
            limit: limit as u64,
        }
    }

    fn throughput(&self) -> Throughput {
        let now = now_ms() / 1000;
        let from = now.saturating_sub(THROUGHPUT_SECONDS - 1);
        let points = (from..=now)
            .map(|sec| {
                let c = self
                    .seconds
                    .get((sec % THROUGHPUT_SECONDS) as usize)
                    .filter(|(s, _)| *s == sec)
                    .map(|(_, c)| *c)
                    .unwrap_or_default();
                ThroughputPoint {
                    at_ms: sec * 1000,
                    bps: c.bytes as f64 * 8.0,
                    pps: c.packets as f64,
                    fps: c.flows as f64,
                }
            })
            .collect();
        Throughput {
            interval_s: 1,
            points,
        }
    }

    fn window_s(&self) -> u64 {
        (now_ms().saturating_sub(if self.previous.start_ms > 0 {
            self.previous.start_ms
        } else {
            self.current.start_ms
        })) / 1000
    }

    fn top(&self, limit: usize) -> TopTalkers {
        let rank = |pick: fn(&Window) -> &HostMap<Counter>| {
            let (previous, current) = (pick(&self.previous), pick(&self.current));
            let mut v: Vec<TopTalker> = merged(previous.iter(), current.iter())
                .map(|(ip, c, share)| TopTalker {
                    ip,
                    bytes: c.bytes,
                    packets: c.packets,
                    flows: c.flows,
                    share,
                })
                .collect();
            v.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.ip.cmp(&b.ip)));
            v.truncate(limit);
            v
        };
        TopTalkers {
            window_s: self.window_s(),
            sources: rank(|w| &w.sources),
            destinations: rank(|w| &w.destinations),
        }
    }

    fn protocols(&self) -> ProtocolMix {
        let mut protocols: Vec<ProtocolShare> =
            merged(self.previous.protocols(), self.current.protocols())
                .map(|(protocol, c, share)| ProtocolShare {
                    protocol,
                    name: protocol_name(protocol),
                    bytes: c.bytes,
                    packets: c.packets,
                    flows: c.flows,
                    share,
                })
                .collect();
        protocols.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.protocol.cmp(&b.protocol)));
        ProtocolMix {
            window_s: self.window_s(),
            protocols,
        }
    }
}

/// The counters of two windows summed per key, each with its share of all bytes (0..=1).
fn merged<'a, K: Copy + Eq + std::hash::Hash>(
    previous: impl Iterator<Item = (K, &'a Counter)>,
    current: impl Iterator<Item = (K, &'a Counter)>,
) -> impl Iterator<Item = (K, Counter, f64)> {
    let mut all: FastMap<K, Counter> = FastMap::default();
    for (k, c) in previous.chain(current) {
        all.entry(k).or_default().merge(c);
    }
    let total: u64 = all.values().map(|c| c.bytes).sum();
    all.into_iter().map(move |(k, c)| {
        let share = if total > 0 {
            c.bytes as f64 / total as f64
        } else {
            0.0
        };
        (k, c, share)
    })
}

impl Actor for Aggregator {
    type Msg = AggregatorMsg;
    type State = AggregatorState;
    type Arguments = AggregatorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: AggregatorArgs,
    ) -> Result<AggregatorState, ActorProcessingErr> {
        let every = args.config.flush_interval.max(Duration::from_millis(50));
        crate::send_every(myself, every, || AggregatorMsg::Tick);
        let recent_capacity = args.config.recent_flows;
        Ok(AggregatorState {
            config: args.config,
            graph: args.graph,
            raw: args.raw,
            advisor: args.advisor,
            advising: Arc::new(()),
            known_servers: FastSet::default(),
            pending: FastMap::default(),
            observing: Arc::new(()),
            recent: VecDeque::with_capacity(recent_capacity),
            seconds: vec![(0, Counter::default()); THROUGHPUT_SECONDS as usize],
            current: Window {
                start_ms: now_ms(),
                ..Window::default()
            },
            previous: Window::default(),
            totals: AggregatorTotals::default(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: AggregatorMsg,
        state: &mut AggregatorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AggregatorMsg::Ingest(batch) => {
                let FlowBatch { flows, slot } = batch;
                state.ingest(&flows);
                if let Some(raw) = &state.raw {
                    raw.record(flows);
                }
                drop(slot);
            }
            AggregatorMsg::Tick => state.flush(false),
            AggregatorMsg::Flush(reply) => {
                state.flush(true);
                let done = state
                    .graph
                    .call(GraphMsg::Flush, Some(Duration::from_secs(30)))
                    .await;
                if let Err(e) = done {
                    tracing::error!(error = %e, "graph flush failed");
                }
                let _ = reply.send(());
            }
            AggregatorMsg::RecentFlows(q, reply) => {
                let _ = reply.send(state.recent_flows(&q));
            }
            AggregatorMsg::Throughput(reply) => {
                let _ = reply.send(state.throughput());
            }
            AggregatorMsg::TopTalkers(limit, reply) => {
                let _ = reply.send(state.top(limit));
            }
            AggregatorMsg::Protocols(reply) => {
                let _ = reply.send(state.protocols());
            }
            AggregatorMsg::Totals(reply) => {
                let mut totals = state.totals;
                totals.pending_edges = state.pending.len() as u64;
                let _ = reply.send(totals);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
