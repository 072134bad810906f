//! The event log: openraft over a segment-file log store ([`log_store`]) and a state machine
//! applying batches to the sled projection.

pub mod cluster;
pub mod history;
mod log_store;
pub mod nats;
mod network;
pub mod replay;
pub mod state_machine;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use openraft::error::{ClientWriteError, Fatal, InitializeError, RaftError};
use openraft::{BasicNode, Config, RaftMetrics, ServerState, SnapshotPolicy, StorageError};
use proto::event::{EventBatch, EventDecodeError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::store::{Projection, StoreError};
use cluster::{ForwardError, Forwarder};
use history::History;
pub use log_store::{EntryDecodeError, LogFileError, RecordError};
use log_store::{FileLog, LogStore, SEGMENT_BYTES};
pub use network::{SoloNetwork, SoloPeer};
use state_machine::StateMachine;

openraft::declare_raft_types!(
    /// The openraft type configuration of the FlowLens event log.
    pub TypeConfig:
        D = LogPayload,
        R = Applied,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A log entry of the event log.
pub type LogEntry = openraft::Entry<TypeConfig>;

/// How long [`EventLog::open`] waits for this node to become leader.
const LEADER_WAIT: Duration = Duration::from_secs(10);

/// How long [`EventLog::append`] keeps trying to reach a leader before it reports failure (the
/// caller retries: see `actors::committer`).
const LEADER_SEARCH: Duration = Duration::from_secs(10);

/// How long [`EventLog::shutdown`] waits for Raft's tasks to release the storage.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Who committed a batch: a node, one run of that node (`boot`, random per start) and the
/// batch's number in that run. A batch retried after an ambiguous failure (the leader died or
/// stepped down before answering) keeps its origin, and the state machine applies a batch of an
/// origin it has already applied only once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The node whose actors produced the batch.
    pub node: u64,
    /// That node's run.
    pub boot: u64,
    /// The batch's number in the run, from 1.
    pub seq: u64,
}

/// The first bytes of a payload that carries its [`Origin`].
const ORIGIN_MAGIC: &[u8; 4] = b"FLO1";
/// Magic and the origin's three numbers.
const ORIGIN_LEN: usize = 4 + 3 * 8;

/// The application data of one log entry: an [`EventBatch`] encoded with rkyv, after its
/// [`Origin`] when it has one (`FLO1`, node, boot, seq as little-endian u64s). It is carried
/// as bytes (serde `bytes`, compact in binary formats) and decoded only when applied or read
/// back.
#[derive(Clone, PartialEq, Eq)]
pub struct LogPayload(Vec<u8>);

impl LogPayload {
    /// Encodes a batch with rkyv, without an origin.
    pub fn encode(batch: &EventBatch) -> LogPayload {
        LogPayload(batch.to_rkyv())
    }

    /// A batch already encoded with rkyv (`body`), after its origin.
    pub fn with_origin(origin: Origin, body: &[u8]) -> LogPayload {
        let mut bytes = Vec::with_capacity(ORIGIN_LEN + body.len());
        bytes.extend_from_slice(ORIGIN_MAGIC);
        for n in [origin.node, origin.boot, origin.seq] {
            bytes.extend_from_slice(&n.to_le_bytes());
        }
        bytes.extend_from_slice(body);
        LogPayload(bytes)
    }

    /// The batch's origin, when it carries one.
    pub fn origin(&self) -> Option<Origin> {
        let (magic, rest) = self.0.split_first_chunk::<4>()?;
        if magic != ORIGIN_MAGIC {
            return None;
        }
        let (node, rest) = rest.split_first_chunk::<8>()?;
        let (boot, rest) = rest.split_first_chunk::<8>()?;
        let (seq, _) = rest.split_first_chunk::<8>()?;
        Some(Origin {
            node: u64::from_le_bytes(*node),
            boot: u64::from_le_bytes(*boot),
            seq: u64::from_le_bytes(*seq),
        })
    }

    /// Wraps bytes that should hold an rkyv-encoded batch (checked by [`LogPayload::decode`]).
    pub fn from_bytes(bytes: Vec<u8>) -> LogPayload {
        LogPayload(bytes)
    }

    /// The encoded batch.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Decodes and validates the batch; bad bytes are an error, never a panic.
    pub fn decode(&self) -> Result<EventBatch, EventDecodeError> {
        match self.0.get(ORIGIN_LEN..) {
            Some(body) if self.origin().is_some() => EventBatch::from_rkyv(body)
                // A batch without origin whose rkyv bytes happen to start with the magic.
                .or_else(|e| EventBatch::from_rkyv(&self.0).map_err(|_| e)),
            _ => EventBatch::from_rkyv(&self.0),
        }
    }
}

impl fmt::Debug for LogPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogPayload({} bytes)", self.0.len())
    }
}

impl Serialize for LogPayload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for LogPayload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_byte_buf(BytesVisitor)
            .map(LogPayload)
    }
}

/// Accepts bytes, or a sequence of numbers (formats without a bytes type, such as JSON).
struct BytesVisitor;

impl<'de> serde::de::Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the bytes of an rkyv-encoded event batch")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(byte) = seq.next_element::<u8>()? {
            out.push(byte);
        }
        Ok(out)
    }
}

/// The state machine's answer to one applied entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The log index of the applied entry.
    pub index: u64,
}

/// Why the event log failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The projection could not be read or written.
    #[error("event log: projection: {0}")]
    Store(#[from] StoreError),
    /// sled failed under the state machine.
    #[error("event log: sled: {0}")]
    Sled(#[from] sled::Error),
    /// The log's segment or meta files could not be opened, read or written.
    #[error("event log: {0}")]
    LogFile(#[from] LogFileError),
    /// The Raft configuration is invalid.
    #[error("event log: invalid raft configuration: {0}")]
    Config(Box<openraft::ConfigError>),
    /// The log store or state machine reported an error.
    #[error("event log: raft storage: {0}")]
    Storage(Box<StorageError<u64>>),
    /// Raft stopped (shut down, or a storage error made it stop).
    #[error("event log: raft stopped: {0}")]
    Fatal(Box<Fatal<u64>>),
    /// Initialising the single-member cluster failed.
    #[error("event log: initialising the single-member cluster failed: {0}")]
    Initialize(Box<RaftError<u64, InitializeError<u64, BasicNode>>>),
    /// A batch could not be committed.
    #[error("event log: commit failed: {0}")]
    Write(Box<RaftError<u64, ClientWriteError<u64, BasicNode>>>),
    /// A follower could not hand a batch to the leader.
    #[error(
        "event log: node {node_id} is not the leader and could not forward the batch: {source}"
    )]
    Forward {
        /// This node.
        node_id: u64,
        /// What failed last.
        source: ForwardError,
    },
    /// No leader was known for the whole time a batch waited for one.
    #[error("event log: node {node_id} found no leader within {waited:?}")]
    NoLeader {
        /// This node.
        node_id: u64,
        /// How long it looked.
        waited: Duration,
    },
    /// This node did not become leader in time.
    #[error(
        "event log: node {node_id} did not become leader within {waited:?} (state {state:?}, \
         leader {leader:?}): {why}; a log initialised under another node id never elects this one"
    )]
    NotLeader {
        /// This node.
        node_id: u64,
        /// How long it waited.
        waited: Duration,
        /// Its Raft state when it gave up.
        state: ServerState,
        /// The leader it knew of, if any.
        leader: Option<u64>,
        /// What the wait reported.
        why: String,
    },
    /// A committed entry's events could not be decoded.
    #[error("event log: entry {index} holds an undecodable event batch: {source}")]
    Decode {
        /// The entry's log index.
        index: u64,
        /// What was wrong.
        source: EventDecodeError,
    },
    /// A replay asked for a moment before this node's history starts (pruned by retention, or
    /// it caught up from a snapshot taken later).
    #[error(
        "this node's history starts at {starts_ms} (retention.events pruned what came before, \
         or it caught up from a snapshot taken then); {at_ms} is earlier"
    )]
    BeforeHistory {
        /// The moment asked for, UTC ms.
        at_ms: u64,
        /// When the snapshot the history starts from was taken, UTC ms.
        starts_ms: u64,
    },
    /// Raft did not stop cleanly.
    #[error("event log: shutdown: {0}")]
    Shutdown(String),
}

impl From<StorageError<u64>> for LogError {
    fn from(e: StorageError<u64>) -> Self {
        LogError::Storage(Box::new(e))
    }
}

impl From<Fatal<u64>> for LogError {
    fn from(e: Fatal<u64>) -> Self {
        LogError::Fatal(Box::new(e))
    }
}

impl From<RaftError<u64, ClientWriteError<u64, BasicNode>>> for LogError {
    fn from(e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> Self {
        LogError::Write(Box::new(e))
    }
}

/// The last log index applied to `projection`, if any.
fn projection_applied(projection: &Projection) -> Result<Option<u64>, LogError> {
    Ok(state_machine::last_applied(projection)?.map(|id| id.index))
}

/// Opens the history in `dir` and appends what the projection applied but the history lacks
/// (a crash between the two, or a store that predates the history), from the Raft log.
fn open_history(dir: &Path, log: &FileLog, applied: Option<u64>) -> Result<History, LogError> {
    let history = History::open(dir)?;
    let next = history.last_index().map_or(0, |i| i + 1);
    if let Some(applied) = applied.filter(|a| *a >= next) {
        let missing = log.read(next..=applied)?;
        if missing.first().map(|e| e.log_id.index) != Some(next) {
            tracing::warn!(
                from = next,
                to = applied,
                "the history lacks entries the Raft log no longer holds"
            );
        }
        history.record(&missing)?;
        tracing::info!(
            from = next,
            to = applied,
            "history caught up from the Raft log"
        );
    }
    Ok(history)
}

/// Decodes entries read from the log: (index, batch for normal entries / None for blank and
/// membership entries).
fn decode_entries(entries: Vec<LogEntry>) -> Result<Vec<(u64, Option<EventBatch>)>, LogError> {
    entries
        .into_iter()
        .map(|entry| {
            let index = entry.log_id.index;
            match &entry.payload {
                openraft::EntryPayload::Normal(payload) => payload
                    .decode()
                    .map(|batch| (index, Some(batch)))
                    .map_err(|source| LogError::Decode { index, source }),
                _ => Ok((index, None)),
            }
        })
        .collect()
}

/// A number for this run of node `node_id`: the clock's nanoseconds mixed with the process id.
fn boot_id(node_id: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 40) ^ node_id.rotate_left(20)
}

/// The Raft configuration of the event log.
fn config(snapshots: Snapshots) -> Result<Config, LogError> {
    let config = Config {
        cluster_name: "flowlens".into(),
        // The history keeps every entry: the log is only what lagging nodes catch up from.
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshots.every.max(1)),
        max_in_snapshot_log_to_keep: snapshots.keep,
        // Entries are event batches; keep AppendEntries well under NATS's 1 MiB message limit.
        max_payload_entries: 64,
        // MessagePack writes snapshot bytes as numbers (up to two bytes each): a chunk stays
        // under NATS's 1 MiB message limit.
        snapshot_max_chunk_size: 256 * 1024,
        ..Config::default()
    };
    config.validate().map_err(|e| LogError::Config(Box::new(e)))
}

/// When the projection is snapshotted and the Raft log purged behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshots {
    /// A snapshot every this many entries.
    pub every: u64,
    /// Entries kept in the log behind the last snapshot (a follower less far behind catches up
    /// from the log, one further behind installs the snapshot).
    pub keep: u64,
}

impl Default for Snapshots {
    fn default() -> Self {
        Snapshots {
            every: 50_000,
            keep: 10_000,
        }
    }
}

/// How a node's event log starts.
#[derive(Clone, Debug)]
pub enum Start {
    /// Alone: a single-member cluster of this node (at address `addr`) is initialised if the
    /// log never was, and [`EventLog::open`] waits until this node leads it.
    Solo {
        /// This node's address in the membership.
        addr: String,
    },
    /// In a cluster: membership is managed with `flowlens admin`, and batches this node cannot
    /// commit itself (it does not lead) are forwarded to the leader.
    Cluster {
        /// Sends batches to the leader.
        forward: Forwarder,
    },
}

/// The replicated event log of one node and the projection it applies to.
pub struct EventLog {
    raft: openraft::Raft<TypeConfig>,
    history: History,
    applied_batches: tokio::sync::broadcast::Sender<state_machine::AppliedBatch>,
    node_id: u64,
    forward: Option<Forwarder>,
    /// This run of the node, in the origin of every batch it commits.
    boot: u64,
    /// The last batch number given out.
    seq: AtomicU64,
    /// The last batch whose commit failed, and its number: the same batch offered again (the
    /// committer retries) keeps that number, so it is applied once even if it did commit.
    failed: std::sync::Mutex<Option<(Vec<u8>, u64)>>,
    projection: Projection,
    log: FileLog,
    applied: Arc<AtomicU64>,
    /// Dropped to zero once Raft's tasks have released the log store and state machine.
    storage_in_use: Weak<()>,
    db: sled::Db,
}

impl EventLog {
    /// Opens the log store in `log_dir` (segment files; a log still in `db`'s old sled trees is
    /// moved there once) and the state machine in `db` (trees prefixed `raft_`) and starts Raft
    /// with `node_id` and `network`. [`Start::Solo`] initialises a single-member cluster if the
    /// log was never initialised and waits until this node is leader (at most 10 s) and has
    /// applied the entries already in its log; [`Start::Cluster`] returns at once.
    pub async fn open<N: openraft::RaftNetworkFactory<TypeConfig>>(
        db: &sled::Db,
        log_dir: &Path,
        projection: Projection,
        node_id: u64,
        start: Start,
        snapshots: Snapshots,
        network: N,
    ) -> Result<EventLog, LogError> {
        let config = Arc::new(config(snapshots)?);
        let in_use = Arc::new(());
        let log_store = {
            let (db, dir, in_use) = (db.clone(), log_dir.to_path_buf(), in_use.clone());
            // Opening reads every segment: not on a tokio worker.
            tokio::task::spawn_blocking(move || LogStore::open(&db, &dir, SEGMENT_BYTES, in_use))
                .await
                .map_err(LogFileError::from)??
        };
        let log = log_store.log().clone();
        let history = {
            let (dir, log, applied) = (
                log_dir.with_file_name("history"),
                log.clone(),
                projection_applied(&projection)?,
            );
            tokio::task::spawn_blocking(move || open_history(&dir, &log, applied))
                .await
                .map_err(LogFileError::from)??
        };
        let state_machine =
            StateMachine::open(db, projection.clone(), history.clone(), in_use.clone())?;
        let applied = state_machine.applied_counter();
        let applied_batches = state_machine.applied_batches();
        let storage_in_use = Arc::downgrade(&in_use);
        drop(in_use);

        let raft = openraft::Raft::new(node_id, config, network, log_store, state_machine).await?;
        let forward = match start {
            Start::Solo { addr } => {
                if !raft.is_initialized().await? {
                    let members = BTreeMap::from([(node_id, BasicNode::new(addr))]);
                    match raft.initialize(members).await {
                        Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                        Err(e) => return Err(LogError::Initialize(Box::new(e))),
                    }
                }
                None
            }
            Start::Cluster { forward } => Some(forward),
        };
        let clustered = forward.is_some();
        let log = EventLog {
            raft,
            history,
            applied_batches,
            node_id,
            forward,
            boot: boot_id(node_id),
            seq: AtomicU64::new(0),
            failed: std::sync::Mutex::new(None),
            projection,
            log,
            applied,
            storage_in_use,
            db: db.clone(),
        };
        if !clustered {
            log.wait_until_leader(node_id).await?;
        }
        Ok(log)
    }

    async fn wait_until_leader(&self, node_id: u64) -> Result<(), LogError> {
        let started = tokio::time::Instant::now();
        let leading = self
            .raft
            .wait(Some(LEADER_WAIT))
            .metrics(
                |m| m.state == ServerState::Leader && m.current_leader == Some(node_id),
                "this node leads its single-member cluster",
            )
            .await;
        let caught_up = match leading {
            Ok(m) => {
                let left = LEADER_WAIT.saturating_sub(started.elapsed());
                self.raft
                    .wait(Some(left))
                    .applied_index_at_least(m.last_log_index, "the log is applied")
                    .await
            }
            Err(e) => Err(e),
        };
        caught_up.map(|_| ()).map_err(|e| {
            let m = self.metrics();
            LogError::NotLeader {
                node_id,
                waited: started.elapsed(),
                state: m.state,
                leader: m.current_leader,
                why: e.to_string(),
            }
        })
    }

    /// Commits a batch (rkyv-encode, client_write) and returns its log index once applied to
    /// the projection. In a cluster, a follower forwards the batch to the leader (its index is
    /// the leader's, and this node applies it when replicated); while no leader is known or
    /// reachable (an election, NATS down) it keeps trying for up to 10 s. Every attempt carries
    /// the same [`Origin`], so a batch is applied once however often it was sent.
    pub async fn append(&self, batch: &EventBatch) -> Result<u64, LogError> {
        let body = batch.to_rkyv();
        let seq = {
            let failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
            match &*failed {
                Some((last, seq)) if *last == body => *seq,
                _ => self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            }
        };
        let origin = Origin {
            node: self.node_id,
            boot: self.boot,
            seq,
        };
        let payload = LogPayload::with_origin(origin, &body);
        let result = self.commit(&payload).await;
        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        *failed = match result {
            Ok(_) => None,
            Err(_) => Some((body, seq)),
        };
        result
    }

    /// Commits a batch under an origin of the caller's (a federated site and its stream
    /// sequence): applied once per origin sequence, like [`EventLog::append`]'s own.
    pub async fn append_with_origin(
        &self,
        batch: &EventBatch,
        origin: Origin,
    ) -> Result<u64, LogError> {
        self.commit(&LogPayload::with_origin(origin, &batch.to_rkyv()))
            .await
    }

    async fn commit(&self, payload: &LogPayload) -> Result<u64, LogError> {
        let started = tokio::time::Instant::now();
        loop {
            let leader = match self.raft.client_write(payload.clone()).await {
                Ok(response) => return Ok(response.data.index),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))
                    if self.forward.is_some() =>
                {
                    f.leader_id
                }
                Err(e) => return Err(e.into()),
            };
            let retry = match (leader, &self.forward) {
                (Some(leader), Some(forward)) if leader != self.node_id => {
                    // Whatever failed, the batch goes again with the same origin: if the failed
                    // attempt did commit (a timeout after the leader committed), the retry is
                    // applied as a no-op.
                    // A leader that hangs (frozen, partitioned) answers nothing until the
                    // request times out; once this node learns of another leader the batch
                    // goes there at once.
                    tokio::select! {
                        answer = forward.write(leader, payload) => match answer {
                            Ok(index) => return Ok(index),
                            Err(e) => Some(e),
                        },
                        () = self.leader_moves_from(leader) => Some(ForwardError::Failed {
                            leader,
                            why: "another node became leader while it was asked".into(),
                        }),
                    }
                }
                _ => None,
            };
            if started.elapsed() >= LEADER_SEARCH {
                return Err(match retry {
                    Some(source) => LogError::Forward {
                        node_id: self.node_id,
                        source,
                    },
                    None => LogError::NoLeader {
                        node_id: self.node_id,
                        waited: started.elapsed(),
                    },
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Returns once this node knows of a leader other than `leader`.
    async fn leader_moves_from(&self, leader: u64) {
        let mut metrics = self.raft.metrics();
        loop {
            let known = metrics.borrow_and_update().current_leader;
            if known.is_some_and(|l| l != leader) {
                return;
            }
            if metrics.changed().await.is_err() {
                // Raft stopped: the forward's own outcome decides.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The batches applied from now on, with their origins.
    pub fn subscribe_applied(
        &self,
    ) -> tokio::sync::broadcast::Receiver<state_machine::AppliedBatch> {
        self.applied_batches.subscribe()
    }

    /// Every applied entry, kept after the Raft log is purged.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// This node's Raft, for the RPC and admin services.
    pub fn raft(&self) -> &openraft::Raft<TypeConfig> {
        &self.raft
    }

    /// Last log index applied to the projection.
    pub fn applied_index(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// The projection this log applies to.
    pub fn projection(&self) -> &Projection {
        &self.projection
    }

    /// Every entry still in the log, in order, decoded: (index, batch for normal entries / None
    /// for blank & membership).
    pub fn entries(&self) -> Result<Vec<(u64, Option<EventBatch>)>, LogError> {
        decode_entries(self.log.read(..)?)
    }

    /// Raft metrics (role, term, last log, applied) for the API/metrics.
    pub fn metrics(&self) -> RaftMetrics<u64, BasicNode> {
        self.raft.metrics().borrow().clone()
    }

    /// Shuts Raft down, waits until its tasks have released the storage, writes the log's meta
    /// file (the committed log id may not be written yet) and flushes sled.
    pub async fn shutdown(&self) -> Result<(), LogError> {
        self.raft
            .shutdown()
            .await
            .map_err(|e| LogError::Shutdown(e.to_string()))?;
        let started = tokio::time::Instant::now();
        while self.storage_in_use.strong_count() > 0 {
            if started.elapsed() > RELEASE_WAIT {
                return Err(LogError::Shutdown(format!(
                    "raft tasks still hold the log store or state machine after {RELEASE_WAIT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (log, history) = (self.log.clone(), self.history.clone());
        tokio::task::spawn_blocking(move || {
            log.close()?;
            history.close()
        })
        .await
        .map_err(LogFileError::from)??;
        self.projection.flush().await?;
        self.db.flush_async().await?;
        Ok(())
    }
}
