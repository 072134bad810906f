//! The graph: the live dependency map as a petgraph of assets (nodes) and dependencies (edges
//! from client to server), with the services each asset answers on. It turns the aggregator's
//! per-period traffic into change events — discovered (new dependencies at a pace, see
//! `announce`), traffic (one compact batch per stats period), expired after the idle time — and
//! commits them to the event log; committed traffic then goes on to the rollups. At start it is
//! seeded from the projection, so a restart does not rediscover what is already known.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use ipnet::IpNet;
use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};
use proto::api::{Asset, Dependency, Service, Status};
use proto::event::{
    DependencyKey, EdgeStats, Event, EventBatch, EventKind, ServiceKey, TrafficDelta,
};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;

use crate::advisor::detect::{EdgeTotals, Window};
use crate::committer::Committer;
use crate::ports::service_name;
use crate::{now_ms, EventSink, FastMap, RollupSink};

/// Batches kept waiting while the event log is slow or refusing; beyond this the oldest go.
const MAX_PENDING_BATCHES: usize = 1024;
/// How often a sweep under way hands on what has come due.
const SWEEP_STEP: Duration = Duration::from_millis(250);
/// Most work in one committed batch (one per event, one per edge of a traffic event): the
/// projection applies a batch in one transaction, and huge transactions cost memory.
const MAX_BATCH_WEIGHT: usize = 2000;

fn weight(e: &Event) -> usize {
    match &e.kind {
        EventKind::DependencyTraffic { edges } => edges.len().max(1),
        _ => 1,
    }
}

/// The graph's settings.
#[derive(Clone, Debug)]
pub struct GraphConfig {
    /// Networks counted as internal besides RFC 1918 and RFC 4193.
    pub internal_networks: Vec<IpNet>,
    /// Idle time after which assets, services and dependencies expire.
    pub idle_expiry: Duration,
    /// How often traffic batches are committed (and expiry checked).
    pub stats_interval: Duration,
    /// Most dependencies in one traffic event (bigger periods are split).
    pub max_edges_per_event: usize,
    /// Most new dependencies announced to the event log per second; more wait in the map and
    /// go out at this pace (see [`GraphState::announce`]).
    pub discovery_rate: u32,
}

/// What the projection already knows, to seed the graph at start.
#[derive(Clone, Debug, Default)]
pub struct KnownState {
    /// Assets.
    pub assets: Vec<Asset>,
    /// Services.
    pub services: Vec<Service>,
    /// Dependencies.
    pub dependencies: Vec<Dependency>,
}

/// Sizes of the live map.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct GraphCounts {
    /// Active assets.
    pub assets: usize,
    /// Active services.
    pub services: usize,
    /// Active dependencies (edges in the graph).
    pub dependencies: usize,
    /// Events committed since start.
    pub events_committed: u64,
    /// Batches waiting for the event log.
    pub pending_batches: usize,
    /// New dependencies found but not announced yet: the discovery pace's backlog (at most; one
    /// that expired meanwhile counts until its turn).
    pub unannounced: usize,
}

/// Messages the graph handles.
pub enum GraphMsg {
    /// One period's traffic per dependency, observed at the given time (UTC ms). The token is
    /// the sender's count of messages not yet handled: dropping it after handling counts down.
    Observe(Vec<EdgeStats>, u64, Arc<()>),
    /// Commit traffic and check expiry (timer).
    Tick,
    /// Commit everything pending now; replies when committed.
    Flush(RpcReplyPort<()>),
    /// Sizes of the live map.
    Counts(RpcReplyPort<GraphCounts>),
    /// The traffic observed since the last time this was asked, per dependency, for the
    /// advisor's window ([`GraphState::take_window`]).
    TakeWindow(RpcReplyPort<Window>),
    /// The committer has room again, or a sweep has more due: hand on waiting batches.
    Drain,
    /// A batch another node (or a federated site) committed: see [`GraphState::follow`].
    Follow(Arc<EventBatch>),
}

/// What an edge carries: the called port (the client is the edge's source asset, the server its
/// target). Three bytes rather than the whole key: the graph holds one per dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServicePort {
    /// Port on the server.
    pub port: u16,
    /// IP protocol number.
    pub protocol: u8,
}

impl DepState {
    /// A dependency not seen yet.
    fn unseen() -> DepState {
        DepState {
            edge: None,
            last_ms: 0,
            active: false,
            announced: false,
            in_window: false,
            traffic: TrafficDelta::default(),
            window: EdgeTotals::default(),
        }
    }

    /// Takes a flush's traffic of this dependency, observed here.
    fn take(&mut self, traffic: &TrafficDelta) {
        self.traffic.merge(traffic);
        self.window.add(traffic);
        self.in_window = true;
    }
}

impl ServicePort {
    fn of(key: &DependencyKey) -> Self {
        ServicePort {
            port: key.service.port,
            protocol: key.service.protocol,
        }
    }
}

struct Seen {
    last_ms: u64,
    active: bool,
}

impl Seen {
    /// Not seen yet.
    const NEVER: Seen = Seen {
        last_ms: 0,
        active: false,
    };
}

/// One dependency: its edge while active, when it was last seen, the traffic not yet
/// committed and the traffic of the advisor's window. One map holds all of it: at 200 k
/// dependencies every extra map costs megabytes, and every extra lookup per flushed edge costs
/// a cache miss.
struct DepState {
    edge: Option<EdgeIndex>,
    last_ms: u64,
    active: bool,
    /// Whether its discovery (this time it became active) is in the event log: until then its
    /// traffic is not committed and it does not expire.
    announced: bool,
    /// Whether it was observed in the advisor's current window.
    in_window: bool,
    traffic: TrafficDelta,
    window: EdgeTotals,
}

/// The graph's state.
pub struct GraphState {
    config: GraphConfig,
    committer: Committer,
    graph: StableDiGraph<IpAddr, ServicePort>,
    assets: FastMap<IpAddr, (NodeIndex, Seen)>,
    services: FastMap<ServiceKey, Seen>,
    /// Looked up for every edge the aggregator sends, so hashed; never removed from, so a
    /// position stays valid. Sweeps visit it in key order, the projection's storage order, so
    /// that a sweep's batches each touch a narrow run of its pages.
    dependencies: IndexMap<DependencyKey, DepState, foldhash::fast::RandomState>,
    pending: VecDeque<EventBatch>,
    sweep: Option<sweep::Sweep>,
    /// Dependencies found and not announced yet, in the order found: map position and when.
    to_announce: VecDeque<(u32, u64)>,
    /// The discovery pace.
    pace: announce::Pace,
}

/// The graph actor.
pub struct Graph;

/// What the graph starts with.
pub struct GraphArgs {
    /// Settings.
    pub config: GraphConfig,
    /// The event log.
    pub sink: Arc<dyn EventSink>,
    /// What the projection already knows.
    pub known: KnownState,
    /// Where committed traffic goes for the rollups (none: no rollups).
    pub rollups: Option<Arc<dyn RollupSink>>,
}

/// Whether an address is internal: RFC 1918, RFC 4193, or one of the configured networks.
pub fn is_internal(ip: IpAddr, extra: &[IpNet]) -> bool {
    let private = match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    };
    private || extra.iter().any(|n| n.contains(&ip))
}

impl GraphState {
    /// An empty map that commits through `committer`.
    fn new(config: GraphConfig, committer: Committer) -> GraphState {
        let pace = announce::Pace::new(config.discovery_rate);
        GraphState {
            config,
            committer,
            graph: StableDiGraph::new(),
            assets: FastMap::default(),
            services: FastMap::default(),
            dependencies: IndexMap::default(),
            pending: VecDeque::new(),
            sweep: None,
            to_announce: VecDeque::new(),
            pace,
        }
    }

    fn node(&mut self, ip: IpAddr) -> NodeIndex {
        if let Some((idx, _)) = self.assets.get(&ip) {
            return *idx;
        }
        let idx = self.graph.add_node(ip);
        self.assets.insert(ip, (idx, Seen::NEVER));
        idx
    }

    fn touch_asset(&mut self, ip: IpAddr, at: u64, events: &mut Vec<Event>) {
        self.node(ip);
        let internal = is_internal(ip, &self.config.internal_networks);
        if let Some((_, seen)) = self.assets.get_mut(&ip) {
            seen.last_ms = seen.last_ms.max(at);
            if !seen.active {
                seen.active = true;
                events.push(Event {
                    at_ms: at,
                    kind: EventKind::AssetDiscovered { ip, internal },
                });
            }
        }
    }

    fn observe(&mut self, edges: Vec<EdgeStats>, at: u64) -> Vec<Event> {
        let mut events = Vec::new();
        let mut fresh = Vec::new();
        for edge in edges {
            // Hot path, one lookup: an active dependency's assets and service are active too,
            // and their last-seen times are brought up to its own before expiry is decided.
            if let Some(dep) = self.dependencies.get_mut(&edge.dependency) {
                if dep.active {
                    dep.last_ms = dep.last_ms.max(at);
                    dep.take(&edge.traffic);
                    continue;
                }
            }
            fresh.push(edge);
        }
        // What is new (or back) goes to the log in the projection's key order, as sweeps do: the
        // batches then visit its pages in one pass instead of at random. At a cold start with
        // 187 k dependencies to discover, random order had the projection reading and
        // decoding a page from disk for most of them (its cache holds a fraction of the tree).
        fresh.sort_unstable_by_key(|e| sweep::order_key(&e.dependency));
        for edge in fresh {
            let key = edge.dependency;
            self.touch_asset(key.client, at, &mut events);
            self.touch_asset(key.service.ip, at, &mut events);
            let service = self.services.entry(key.service).or_insert(Seen::NEVER);
            service.last_ms = service.last_ms.max(at);
            if !service.active {
                service.active = true;
                events.push(Event {
                    at_ms: at,
                    kind: EventKind::ServiceDiscovered {
                        service: key.service,
                        name: service_name(key.service.port, key.service.protocol)
                            .map(str::to_string),
                    },
                });
            }
            // New (or back): announced at the discovery pace, not here.
            let (position, fresh) = self.activate(key, at);
            if let Some((_, dep)) = self.dependencies.get_index_mut(position) {
                dep.take(&edge.traffic);
                if fresh {
                    dep.announced = false;
                    self.to_announce.push_back((position as u32, at));
                }
            }
        }
        events
    }

    /// Marks a dependency seen at `at` and active, with its edge in the graph; its position in
    /// the map, and whether it was not active before.
    fn activate(&mut self, key: DependencyKey, at: u64) -> (usize, bool) {
        let from = self.node(key.client);
        let to = self.node(key.service.ip);
        let entry = self.dependencies.entry(key);
        let position = entry.index();
        let dep = entry.or_insert_with(DepState::unseen);
        dep.last_ms = dep.last_ms.max(at);
        let was_active = std::mem::replace(&mut dep.active, true);
        if dep.edge.is_none() {
            dep.edge = Some(self.graph.add_edge(from, to, ServicePort::of(&key)));
        }
        (position, !was_active)
    }

    fn expiry_events(&mut self, now: u64) -> Vec<Event> {
        let idle = self.config.idle_expiry.as_millis() as u64;
        let cutoff = now.saturating_sub(idle);
        let mut events = Vec::new();
        let mut gone_edges = Vec::new();
        for (key, dep) in &self.dependencies {
            if !dep.active {
                continue;
            }
            for ip in [key.client, key.service.ip] {
                if let Some((_, seen)) = self.assets.get_mut(&ip) {
                    seen.last_ms = seen.last_ms.max(dep.last_ms);
                }
            }
            if let Some(seen) = self.services.get_mut(&key.service) {
                seen.last_ms = seen.last_ms.max(dep.last_ms);
            }
        }
        for (key, dep) in &mut self.dependencies {
            if dep.active && dep.announced && dep.last_ms < cutoff && dep.traffic.flows == 0 {
                dep.active = false;
                if let Some(e) = dep.edge.take() {
                    gone_edges.push(e);
                }
                events.push(Event {
                    at_ms: now,
                    kind: EventKind::DependencyExpired { dependency: *key },
                });
            }
        }
        for e in gone_edges {
            self.graph.remove_edge(e);
        }
        for (key, seen) in &mut self.services {
            if seen.active && seen.last_ms < cutoff {
                seen.active = false;
                events.push(Event {
                    at_ms: now,
                    kind: EventKind::ServiceExpired { service: *key },
                });
            }
        }
        for (ip, (_, seen)) in &mut self.assets {
            if seen.active && seen.last_ms < cutoff {
                seen.active = false;
                events.push(Event {
                    at_ms: now,
                    kind: EventKind::AssetExpired { ip: *ip },
                });
            }
        }
        events
    }

    /// Splits `events` into batches of bounded weight, queued behind those already waiting,
    /// then hands the committer what it has room for. Never waits on the log.
    fn commit(&mut self, events: Vec<Event>) {
        let mut batch = Vec::new();
        let mut batch_weight = 0;
        for e in events {
            let w = weight(&e);
            if batch_weight + w > MAX_BATCH_WEIGHT && !batch.is_empty() {
                self.wait(EventBatch::new(std::mem::take(&mut batch)));
                batch_weight = 0;
            }
            batch_weight += w;
            batch.push(e);
        }
        if !batch.is_empty() {
            self.wait(EventBatch::new(batch));
        }
        self.drain();
    }

    fn wait(&mut self, batch: EventBatch) {
        if self.pending.len() >= MAX_PENDING_BATCHES {
            tracing::error!("event log unavailable; dropping the oldest waiting batch");
            self.pending.pop_front();
        }
        self.pending.push_back(batch);
    }

    /// Hands waiting batches to the committer, in order, while it has room.
    fn drain(&mut self) {
        while let Some(batch) = self.pending.pop_front() {
            if let Err(batch) = self.committer.try_queue(batch) {
                self.pending.push_front(batch);
                return;
            }
        }
    }

    /// Commits everything observed so far and resolves once it is in the log.
    async fn flush(&mut self) {
        // Everything found is announced first, whatever the pace, so that its traffic goes too.
        loop {
            while let Some(batch) = self.pending.pop_front() {
                self.committer.queue(batch).await;
            }
            let events = self.announcements(MAX_BATCH_WEIGHT);
            if events.is_empty() {
                break;
            }
            self.commit(events);
        }
        // The sweep under way passed dependencies that have seen traffic since: a second one.
        // Batch by batch, waiting for the committer, so that memory stays bounded here too.
        for fresh in [false, true] {
            if fresh {
                self.start_sweep(now_ms());
            }
            loop {
                while let Some(batch) = self.pending.pop_front() {
                    self.committer.queue(batch).await;
                }
                if self.sweep.is_none() {
                    break;
                }
                let events = self.sweep_events(MAX_BATCH_WEIGHT, usize::MAX);
                self.commit(events);
            }
        }
        self.committer.barrier().await;
    }

    fn counts(&self) -> GraphCounts {
        GraphCounts {
            assets: self.assets.values().filter(|(_, s)| s.active).count(),
            services: self.services.values().filter(|s| s.active).count(),
            dependencies: self.graph.edge_count(),
            events_committed: self.committer.committed(),
            pending_batches: self.pending.len(),
            unannounced: self.to_announce.len(),
        }
    }

    /// The live graph (assets as nodes, active dependencies as edges).
    pub fn graph(&self) -> &StableDiGraph<IpAddr, ServicePort> {
        &self.graph
    }
}

impl Actor for Graph {
    type Msg = GraphMsg;
    type State = GraphState;
    type Arguments = GraphArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: GraphArgs,
    ) -> Result<GraphState, ActorProcessingErr> {
        let wake = myself.clone();
        let committer = Committer::start(args.sink, args.rollups, move || {
            let _ = wake.send_message(GraphMsg::Drain);
        });
        let mut state = GraphState::new(args.config, committer);
        let now = now_ms();
        // Known things count as seen now: the node was down, not the network.
        for a in args.known.assets {
            let idx = state.node(a.ip);
            state.assets.insert(
                a.ip,
                (
                    idx,
                    Seen {
                        last_ms: now,
                        active: a.status == Status::Active,
                    },
                ),
            );
        }
        for s in args.known.services {
            state.services.insert(
                s.key,
                Seen {
                    last_ms: now,
                    active: s.status == Status::Active,
                },
            );
        }
        for d in args.known.dependencies {
            let active = d.status == Status::Active;
            let edge = if active {
                let from = state.node(d.key.client);
                let to = state.node(d.key.service.ip);
                Some(state.graph.add_edge(from, to, ServicePort::of(&d.key)))
            } else {
                None
            };
            state.dependencies.insert(
                d.key,
                DepState {
                    last_ms: now,
                    active,
                    announced: true,
                    edge,
                    ..DepState::unseen()
                },
            );
        }
        let every = state.config.stats_interval.max(Duration::from_millis(50));
        crate::send_every(myself.clone(), every, || GraphMsg::Tick);
        // A paced sweep goes on between ticks (see `GraphState::sweep`).
        crate::send_every(myself, SWEEP_STEP, || GraphMsg::Drain);
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: GraphMsg,
        state: &mut GraphState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            GraphMsg::Observe(edges, at, _in_flight) => {
                // What is new goes in one batch with its announcements when the pace allows.
                let mut events = state.observe(edges, at);
                state.announce_into(&mut events);
                state.commit(events);
            }
            GraphMsg::Tick => {
                let now = now_ms();
                state.drain();
                state.announce();
                // While the log is behind, traffic keeps merging per dependency instead of
                // piling up as batches: a sweep starts with the first tick that finds the queue
                // clear, and goes on batch by batch as the committer makes room.
                if state.pending.is_empty() && state.committer.has_room() {
                    state.start_sweep(now);
                }
                state.sweep();
                let events = state.expiry_events(now);
                state.commit(events);
            }
            GraphMsg::Drain => {
                state.drain();
                state.announce();
                state.sweep();
            }
            GraphMsg::Follow(batch) => state.follow(&batch),
            GraphMsg::Flush(reply) => {
                state.flush().await;
                let _ = reply.send(());
            }
            GraphMsg::Counts(reply) => {
                let _ = reply.send(state.counts());
            }
            GraphMsg::TakeWindow(reply) => {
                let _ = reply.send(state.take_window());
            }
        }
        Ok(())
    }
}

mod announce;
mod follow;
mod sweep;
#[cfg(test)]
mod tests;
mod window;
