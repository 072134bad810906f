//! The collector: UDP listeners that read datagrams in batches, each on its own thread, decode
//! them with one template cache per listener (keyed inside by exporter and domain), keep
//! per-exporter counters and sequence accounting, and hand flow batches to the aggregator through
//! a bounded lane. Templates are saved to the state directory when they change and reloaded at
//! start.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::relay::Relay;
use proto::api::Exporter;
use proto::decode::{decode_datagram, DecodeContext, DecodeError, FlowSink, TemplateCache};
use proto::record::{FlowSource, InterfaceCounters};
use proto::FlowRecord;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::aggregator::{AggregatorMsg, FlowBatch};
use crate::lane::Lane;
use crate::now_ms;
use crate::sequence::{SequenceTracker, Verdict};

/// How long the reader waits after draining its socket before reading again: at high rates
/// the datagrams then come in full batches instead of one wake-up each (costly in both the
/// sender's and this process's time, most of all on virtual machines); at low rates it adds at
/// most this much delay. Far below what the socket buffer holds at any rate.
const COALESCE: Duration = Duration::from_millis(1);
/// Least room a batch's flow vector starts with.
const MIN_BATCH_FLOWS: usize = 256;
/// Most room a batch's flow vector starts with (a batch of 64 full v5 datagrams holds 1,920).
const MAX_BATCH_FLOWS: usize = 4096;

/// The collector's settings.
#[derive(Clone, Debug)]
pub struct CollectorConfig {
    /// Addresses to listen on (IPv4 or IPv6).
    pub listeners: Vec<SocketAddr>,
    /// Requested SO_RCVBUF, bytes (the kernel may cap it at `net.core.rmem_max`).
    pub recv_buffer_bytes: usize,
    /// Datagrams read and decoded per batch before the batch goes to the aggregator.
    pub batch_datagrams: usize,
    /// Where template caches are saved (`templates-<port>.json`); `None` keeps them in memory.
    pub state_dir: Option<PathBuf>,
}

/// Counters of one exporter, as the collector keeps them.
#[derive(Clone, Debug, Default)]
struct ExporterCounters {
    formats: Vec<FlowSource>,
    packets: u64,
    records: u64,
    counter_records: u64,
    templates: u64,
    errors: BTreeMap<String, u64>,
    sequence_lost: u64,
    sequence_resets: u64,
    last_seen_ms: u64,
    streams: HashMap<(u32, u8), SequenceTracker>,
}

/// What one listener owns: its template cache and its exporters' counters.
#[derive(Default)]
struct ListenerState {
    cache: TemplateCache,
    exporters: HashMap<IpAddr, ExporterCounters>,
}

/// A listener: its socket's address, state, and the means to stop its reader thread.
struct Listener {
    addr: SocketAddr,
    state: Arc<Mutex<ListenerState>>,
    dirty: Arc<AtomicBool>,
    /// Set to stop the reader.
    stop: watch::Sender<bool>,
    /// Resolves (or is dropped) when the reader thread has ended; taken when awaited.
    done: Option<oneshot::Receiver<()>>,
}

/// Messages the collector answers.
pub enum CollectorMsg {
    /// Every exporter with its counters, merged over listeners.
    Exporters(RpcReplyPort<Vec<Exporter>>),
    /// The bound addresses (useful when a port was 0).
    LocalAddrs(RpcReplyPort<Vec<SocketAddr>>),
    /// Saves changed template caches now (also runs every second).
    SaveTemplates,
    /// Stops reading: the reader threads end, templates are saved; replies when done.
    StopReading(RpcReplyPort<()>),
}

/// The collector actor.
pub struct Collector;

/// What the collector starts with.
pub struct CollectorArgs {
    /// Settings.
    pub config: CollectorConfig,
    /// The bounded lane in front of the aggregator.
    pub lane: Lane,
    /// The aggregator.
    pub aggregator: ActorRef<AggregatorMsg>,
    /// Where received datagrams are also sent, unchanged.
    pub relay: Relay,
}

/// The collector's state.
pub struct CollectorState {
    config: CollectorConfig,
    listeners: Vec<Listener>,
    saver: Option<JoinHandle<()>>,
}

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    /// Binding or configuring a socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens a UDP socket with a large receive buffer, registered with the current Tokio runtime;
/// IPv6 sockets are IPv6-only so an IPv4 and an IPv6 listener can share a port.
pub fn bind_udp(addr: SocketAddr, recv_buffer_bytes: usize) -> io::Result<UdpSocket> {
    UdpSocket::from_std(bind_udp_std(addr, recv_buffer_bytes)?)
}

/// [`bind_udp`]'s socket, non-blocking but not registered with any runtime yet.
fn bind_udp_std(addr: SocketAddr, recv_buffer_bytes: usize) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    // Best effort: the kernel caps it at rmem_max; the effective size is logged.
    let _ = socket.set_recv_buffer_size(recv_buffer_bytes);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    tracing::info!(
        %addr,
        recv_buffer = socket.recv_buffer_size().unwrap_or(0),
        "collector listening"
    );
    Ok(socket.into())
}

fn template_file(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("templates-{port}.json"))
}

fn load_templates(dir: Option<&Path>, port: u16) -> TemplateCache {
    let Some(dir) = dir else {
        return TemplateCache::default();
    };
    let path = template_file(dir, port);
    match std::fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice::<TemplateCache>(&bytes) {
            Ok(cache) => {
                tracing::info!(path = %path.display(), templates = cache.template_count(), "templates reloaded");
                cache
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable template file");
                TemplateCache::default()
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => TemplateCache::default(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read template file");
            TemplateCache::default()
        }
    }
}

/// What saving one listener's templates needs: its port, state and changed flag.
type ToSave = (u16, Arc<Mutex<ListenerState>>, Arc<AtomicBool>);

fn save_templates(dir: &Path, (port, state, dirty): &ToSave) -> io::Result<()> {
    if !dirty.swap(false, Ordering::AcqRel) {
        return Ok(());
    }
    let json = {
        let state = lock(state);
        serde_json::to_vec(&state.cache).map_err(io::Error::other)?
    };
    std::fs::create_dir_all(dir)?;
    let path = template_file(dir, *port);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)
}

/// The sink the reader decodes into: flows into a vector, interface counters only counted.
#[derive(Default)]
struct BatchSink {
    flows: Vec<FlowRecord>,
    counters: u64,
}

impl FlowSink for BatchSink {
    #[inline]
    fn flow(&mut self, record: FlowRecord) {
        self.flows.push(record);
    }
    #[inline]
    fn flows<I: ExactSizeIterator<Item = FlowRecord>>(&mut self, flows: I) {
        self.flows.extend(flows);
    }
    fn counters(&mut self, _counters: InterfaceCounters) {
        self.counters += 1;
    }
}

fn error_name(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::Truncated { .. } => "truncated",
        DecodeError::UnsupportedVersion { .. } => "unsupported_version",
        DecodeError::BadHeader { .. } => "bad_header",
    }
}

/// Decodes one datagram, received at `received_ms`, into `sink` and updates the exporter's
/// counters; returns whether the template cache changed (so is to be saved) and the format.
fn decode_one(
    state: &mut ListenerState,
    from: SocketAddr,
    bytes: &[u8],
    received_ms: u64,
    sink: &mut BatchSink,
) -> (bool, Option<FlowSource>) {
    let ctx = DecodeContext {
        exporter: from.ip(),
        received_ms,
    };
    let flows_before = sink.flows.len();
    let counters_before = sink.counters;
    let changes_before = state.cache.changes();
    let result = decode_datagram(bytes, &ctx, &mut state.cache, sink);
    // Saved (with an fsync) when it changed: not every time an exporter repeats its templates.
    let changed = state.cache.changes() != changes_before;
    let exporter = state.exporters.entry(from.ip()).or_default();
    exporter.packets += 1;
    exporter.last_seen_ms = received_ms;
    exporter.records += (sink.flows.len() - flows_before) as u64;
    exporter.counter_records += sink.counters - counters_before;
    match result {
        Ok(report) => {
            if !exporter.formats.contains(&report.source) {
                exporter.formats.push(report.source);
            }
            exporter.templates += u64::from(report.templates);
            for (reason, n) in report.skipped.iter() {
                *exporter
                    .errors
                    .entry(reason.name().to_string())
                    .or_default() += u64::from(n);
            }
            let count = match report.source {
                FlowSource::NetflowV5 => report.header_count,
                FlowSource::Ipfix => report.data_records,
                FlowSource::NetflowV9 | FlowSource::Sflow => 1,
            };
            let stream = (report.observation_domain, report.source as u8);
            match exporter
                .streams
                .entry(stream)
                .or_default()
                .observe(report.sequence, count)
            {
                Verdict::Lost(n) => exporter.sequence_lost += u64::from(n),
                Verdict::Reset => exporter.sequence_resets += 1,
                Verdict::Start | Verdict::InOrder => {}
            }
            (changed, Some(report.source))
        }
        Err(e) => {
            *exporter
                .errors
                .entry(error_name(&e).to_string())
                .or_default() += 1;
            (changed, None)
        }
    }
}

/// What one reader thread owns.
struct Reader {
    socket: UdpSocket,
    state: Arc<Mutex<ListenerState>>,
    dirty: Arc<AtomicBool>,
    batch_datagrams: usize,
    lane: Lane,
    aggregator: ActorRef<AggregatorMsg>,
    relay: Relay,
    stop: watch::Receiver<bool>,
}

/// Reads datagrams until told to stop: waits for one, then takes what else is queued up to the
/// batch size without waiting, decodes them under one lock, and sends the flows on.
async fn read_loop(reader: Reader) {
    let Reader {
        socket,
        state,
        dirty,
        batch_datagrams,
        lane,
        aggregator,
        relay,
        mut stop,
    } = reader;
    let mut buf = vec![0u8; 65536];
    // Each batch's vector starts at about the last one's size: grown from small, its copies
    // were about 1 % of the collector's time under load.
    let mut expected = MIN_BATCH_FLOWS;
    loop {
        let received = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => return,
            received = socket.recv_from(&mut buf) => received,
        };
        let first = match received {
            Ok(got) => got,
            Err(e) => {
                tracing::warn!(error = %e, "udp receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let mut sink = BatchSink {
            flows: Vec::with_capacity(expected),
            counters: 0,
        };
        let mut learned = false;
        let mut taken = 0;
        {
            // Everything in a batch was already queued when the first datagram woke us.
            let received_ms = now_ms();
            let mut st = lock(&state);
            let mut next = Some(first);
            while let Some((n, from)) = next {
                let bytes = buf.get(..n).unwrap_or_default();
                let before = sink.flows.len();
                let (changed, source) = decode_one(&mut st, from, bytes, received_ms, &mut sink);
                learned |= changed;
                if !relay.is_empty() {
                    let flows = sink.flows.get(before..).unwrap_or_default();
                    relay.offer(bytes, from, source, flows);
                }
                taken += 1;
                next = if taken < batch_datagrams {
                    socket.try_recv_from(&mut buf).ok()
                } else {
                    None
                };
            }
            let flows = sink.flows.len();
            expected = (flows + flows / 8).clamp(MIN_BATCH_FLOWS, MAX_BATCH_FLOWS);
            // Handed on before the lock is released: whoever reads these datagrams in the
            // exporter counters and then asks the aggregator anything is answered after it has
            // had their flows.
            if flows > 0 {
                if let Some(slot) = lane.reserve(flows) {
                    let batch = FlowBatch {
                        flows: sink.flows,
                        slot,
                    };
                    if aggregator
                        .send_message(AggregatorMsg::Ingest(batch))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        if learned {
            dirty.store(true, Ordering::Release);
        }
        if taken < batch_datagrams {
            // The socket is drained: let datagrams gather for a moment rather than wake for
            // each one as it comes.
            tokio::time::sleep(COALESCE).await;
        }
    }
}

fn merge(into: &mut Exporter, addr: IpAddr, c: &ExporterCounters) {
    into.addr = Some(addr);
    for f in &c.formats {
        if !into.formats.contains(f) {
            into.formats.push(*f);
        }
    }
    into.packets += c.packets;
    into.records += c.records;
    into.counter_records += c.counter_records;
    into.templates += c.templates;
    for (k, v) in &c.errors {
        *into.errors.entry(k.clone()).or_default() += v;
    }
    into.sequence_lost += c.sequence_lost;
    into.sequence_resets += c.sequence_resets;
    into.last_seen_ms = into.last_seen_ms.max(c.last_seen_ms);
}

impl CollectorState {
    fn exporters(&self) -> Vec<Exporter> {
        let mut merged: BTreeMap<IpAddr, Exporter> = BTreeMap::new();
        for l in &self.listeners {
            let st = lock(&l.state);
            for (addr, c) in &st.exporters {
                merge(merged.entry(*addr).or_default(), *addr, c);
            }
        }
        merged.into_values().collect()
    }

    /// Saves the listeners' templates that changed, on a blocking thread (each save ends in an
    /// fsync, which must not hold up a runtime thread).
    async fn save(&self) {
        let Some(dir) = self.config.state_dir.clone() else {
            return;
        };
        let changed: Vec<ToSave> = self
            .listeners
            .iter()
            .filter(|l| l.dirty.load(Ordering::Acquire))
            .map(|l| (l.addr.port(), l.state.clone(), l.dirty.clone()))
            .collect();
        if changed.is_empty() {
            return;
        }
        let saved = tokio::task::spawn_blocking(move || {
            for listener in &changed {
                if let Err(e) = save_templates(&dir, listener) {
                    listener.2.store(true, Ordering::Release);
                    tracing::warn!(error = %e, dir = %dir.display(), "cannot save templates");
                }
            }
        })
        .await;
        if let Err(e) = saved {
            tracing::warn!(error = %e, "template save failed");
        }
    }

    /// Stops the reader threads and waits for them to end (no flow is sent on after this), then
    /// saves the templates.
    async fn stop_reading(&mut self) {
        for l in &self.listeners {
            let _ = l.stop.send(true);
        }
        for l in &mut self.listeners {
            if let Some(done) = l.done.take() {
                // An error only says the thread ended without saying so (a panic).
                let _ = done.await;
            }
        }
        if let Some(saver) = self.saver.take() {
            saver.abort();
        }
        self.save().await;
    }
}

impl Actor for Collector {
    type Msg = CollectorMsg;
    type State = CollectorState;
    type Arguments = CollectorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: CollectorArgs,
    ) -> Result<CollectorState, ActorProcessingErr> {
        let mut listeners = Vec::new();
        for addr in &args.config.listeners {
            let bind_error = |source| CollectorError::Bind {
                addr: *addr,
                source,
            };
            let socket = bind_udp_std(*addr, args.config.recv_buffer_bytes).map_err(bind_error)?;
            let local = socket.local_addr()?;
            let state = Arc::new(Mutex::new(ListenerState {
                cache: load_templates(args.config.state_dir.as_deref(), local.port()),
                exporters: HashMap::new(),
            }));
            let dirty = Arc::new(AtomicBool::new(false));
            // Each listener reads on a thread of its own, with a runtime of its own: on the
            // shared runtime a busy actor delayed the reader's wake-ups (tasks are not
            // preempted), and at high rates the socket buffer overflowed meanwhile.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let socket = {
                let _in = runtime.enter();
                UdpSocket::from_std(socket).map_err(bind_error)?
            };
            let (stop, stop_rx) = watch::channel(false);
            let (done_tx, done) = oneshot::channel();
            let reader = Reader {
                socket,
                state: state.clone(),
                dirty: dirty.clone(),
                batch_datagrams: args.config.batch_datagrams.max(1),
                lane: args.lane.clone(),
                aggregator: args.aggregator.clone(),
                relay: args.relay.clone(),
                stop: stop_rx,
            };
            std::thread::Builder::new()
                .name(format!("flowlens-rx-{}", local.port()))
                .spawn(move || {
                    runtime.block_on(read_loop(reader));
                    let _ = done_tx.send(());
                })?;
            listeners.push(Listener {
                addr: local,
                state,
                dirty,
                stop,
                done: Some(done),
            });
        }
        let saver = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if myself.send_message(CollectorMsg::SaveTemplates).is_err() {
                    return;
                }
            }
        });
        Ok(CollectorState {
            config: args.config,
            listeners,
            saver: Some(saver),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: CollectorMsg,
        state: &mut CollectorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CollectorMsg::Exporters(reply) => {
                let _ = reply.send(state.exporters());
            }
            CollectorMsg::LocalAddrs(reply) => {
                let _ = reply.send(state.listeners.iter().map(|l| l.addr).collect());
            }
            CollectorMsg::SaveTemplates => state.save().await,
            CollectorMsg::StopReading(reply) => {
                state.stop_reading().await;
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut CollectorState,
    ) -> Result<(), ActorProcessingErr> {
        state.stop_reading().await;
        Ok(())
    }
}
