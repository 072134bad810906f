//! The Raft state machine: applies committed event batches to the sled [`Projection`], each entry
//! in one transaction together with the last applied log id (and the membership, when it
//! changes). Snapshots are the projection's export, kept in tree `raft_snapshot`.

// openraft's traits fix the error type of the state machine to `StorageError` (224 bytes); the helpers
// share it rather than box and unbox at every trait method.
#![allow(clippy::result_large_err)]

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};

use super::history::History;
use super::log_store::{decode_log_id, encode_log_id};
use super::{Applied, LogEntry, Origin, TypeConfig};
use crate::store::{Projection, StoreError};
use proto::event::EventBatch;

/// Runs blocking file work where it is, telling a multi-threaded runtime to move its other
/// tasks off this thread meanwhile (a current-thread runtime has no other thread to use).
fn in_place<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Applied batches a slow receiver may fall behind by before it loses the oldest.
const APPLIED_BATCHES: usize = 1024;

/// Projection metadata key: the last applied log id.
const LAST_APPLIED: &[u8] = b"raft_last_applied";
/// Projection metadata key: the last applied membership (JSON).
const MEMBERSHIP: &[u8] = b"raft_membership";
/// Projection metadata key prefix: the last batch applied from one origin node (then its id,
/// big-endian); the value is that batch's boot and seq (little-endian u64s).
const ORIGIN_PREFIX: &[u8] = b"raft_origin/";

const SNAPSHOT_TREE: &str = "raft_snapshot";
const SNAPSHOT_META: &[u8] = b"meta";
const SNAPSHOT_DATA: &[u8] = b"data";

type Result<T> = std::result::Result<T, StorageError<u64>>;
type Membership = StoredMembership<u64, openraft::BasicNode>;
type Meta = SnapshotMeta<u64, openraft::BasicNode>;

fn sm_read_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::read_state_machine(AnyError::new(&e)).into()
}

fn sm_write_err(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::write_state_machine(AnyError::new(&e)).into()
}

fn snapshot_err(
    meta: Option<&Meta>,
    e: impl std::error::Error + 'static,
    write: bool,
) -> StorageError<u64> {
    let signature = meta.map(Meta::signature);
    let source = AnyError::new(&e);
    if write {
        StorageIOError::write_snapshot(signature, source).into()
    } else {
        StorageIOError::read_snapshot(signature, source).into()
    }
}

/// The last applied log id, as stored in the projection's metadata.
pub(crate) fn last_applied(
    projection: &Projection,
) -> std::result::Result<Option<LogId<u64>>, StorageError<u64>> {
    Ok(applied_state(projection)?.0)
}

/// The last applied log id and membership, as stored in the projection's metadata.
fn applied_state(projection: &Projection) -> Result<(Option<LogId<u64>>, Membership)> {
    let last_applied = projection
        .meta(LAST_APPLIED)
        .map_err(sm_read_err)?
        .map(|v| decode_log_id(&v).map_err(sm_read_err))
        .transpose()?;
    let membership = projection
        .meta(MEMBERSHIP)
        .map_err(sm_read_err)?
        .map(|v| serde_json::from_slice(&v).map_err(sm_read_err))
        .transpose()?
        .unwrap_or_default();
    Ok((last_applied, membership))
}

/// The [`RaftStateMachine`] over the projection.
pub(crate) struct StateMachine {
    projection: Projection,
    history: History,
    applied_batches: tokio::sync::broadcast::Sender<AppliedBatch>,
    snapshots: sled::Tree,
    applied: Arc<AtomicU64>,
    /// Held while Raft's tasks own the state machine (see [`super::EventLog::shutdown`]).
    _in_use: Arc<()>,
}

impl StateMachine {
    /// Opens the state machine over `projection`, its snapshot tree in `db`.
    pub(crate) fn open(
        db: &sled::Db,
        projection: Projection,
        history: History,
        in_use: Arc<()>,
    ) -> std::result::Result<StateMachine, super::LogError> {
        let (last_applied, _) = applied_state(&projection)?;
        Ok(StateMachine {
            history,
            applied_batches: tokio::sync::broadcast::channel(APPLIED_BATCHES).0,
            snapshots: db.open_tree(SNAPSHOT_TREE)?,
            projection,
            applied: Arc::new(AtomicU64::new(last_applied.map_or(0, |id| id.index))),
            _in_use: in_use,
        })
    }

    /// The batches applied from now on (a receiver that falls 1024 behind loses the oldest).
    pub(crate) fn applied_batches(&self) -> tokio::sync::broadcast::Sender<AppliedBatch> {
        self.applied_batches.clone()
    }

    /// The last applied log index, updated as entries are applied.
    pub(crate) fn applied_counter(&self) -> Arc<AtomicU64> {
        self.applied.clone()
    }

    /// Stores `snapshot` as the current one (replacing any other) and flushes.
    async fn save_snapshot(&self, meta: &Meta, data: &[u8]) -> Result<()> {
        let meta_json = serde_json::to_vec(meta).map_err(|e| snapshot_err(Some(meta), e, true))?;
        // The data goes to a file first (blocking, in place: no copy of the export), then the
        // meta that points at it to sled.
        in_place(|| self.history.save_snapshot_data(data))
            .map_err(|e| snapshot_err(Some(meta), e, true))?;
        let mut batch = sled::Batch::default();
        batch.insert(SNAPSHOT_META, meta_json);
        batch.remove(SNAPSHOT_DATA);
        self.snapshots
            .apply_batch(batch)
            .map_err(|e| snapshot_err(Some(meta), e, true))?;
        self.snapshots
            .flush_async()
            .await
            .map_err(|e| snapshot_err(Some(meta), e, true))?;
        Ok(())
    }
}

/// Projection metadata key of the last batch applied from origin node `node`.
fn origin_key(node: u64) -> Vec<u8> {
    let mut key = ORIGIN_PREFIX.to_vec();
    key.extend_from_slice(&node.to_be_bytes());
    key
}

/// The run and number of the last batch applied from origin node `node`, if any.
pub(crate) fn last_from_origin(
    projection: &Projection,
    node: u64,
) -> std::result::Result<Option<(u64, u64)>, StoreError> {
    let last = projection.meta(&origin_key(node))?;
    Ok(last
        .as_deref()
        .and_then(|v| v.split_first_chunk::<8>())
        .and_then(|(boot, rest)| Some((boot, rest.first_chunk::<8>()?)))
        .map(|(boot, seq)| (u64::from_le_bytes(*boot), u64::from_le_bytes(*seq))))
}

/// Whether `origin`'s batch was applied already: the last one applied from its node came from
/// the same run with a number at least as high.
fn already_applied(projection: &Projection, origin: Origin) -> Result<bool> {
    let last = last_from_origin(projection, origin.node).map_err(sm_read_err)?;
    Ok(last.is_some_and(|(boot, seq)| boot == origin.boot && seq >= origin.seq))
}

/// When a snapshot was taken, from its id (`…-<ms>`, see [`SnapshotBuilder`]); now if the id
/// does not say.
fn snapshot_taken_ms(snapshot_id: &str) -> u64 {
    snapshot_id
        .rsplit('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        })
}

/// A batch the state machine applied, as [`super::EventLog::subscribe_applied`] hands it out.
#[derive(Clone, Debug)]
pub struct AppliedBatch {
    /// Who committed it.
    pub origin: Option<Origin>,
    /// Its events.
    pub batch: Arc<EventBatch>,
}

/// Applies one entry to the projection, its metadata in the same transaction; the batch it
/// applied, if any. A batch whose origin was applied already (a retry of a batch that did
/// commit) changes nothing but the applied log id.
pub(crate) fn apply_entry(
    projection: &Projection,
    entry: &LogEntry,
) -> Result<Option<AppliedBatch>> {
    let log_id = entry.log_id;
    let apply_err = |e: &(dyn std::error::Error + 'static)| -> StorageError<u64> {
        StorageIOError::apply(log_id, AnyError::from_dyn(e, None)).into()
    };
    let origin = match &entry.payload {
        EntryPayload::Normal(payload) => payload.origin(),
        _ => None,
    };
    let origin_key = origin.map(|o| origin_key(o.node)).unwrap_or_default();
    let mut tags = std::collections::BTreeSet::new();
    let mut meta: Vec<(&[u8], Vec<u8>)> = vec![(LAST_APPLIED, encode_log_id(&log_id))];
    let batch = match &entry.payload {
        EntryPayload::Blank => None,
        EntryPayload::Normal(payload) => match origin {
            Some(o) if already_applied(projection, o)? => {
                tracing::info!(
                    index = log_id.index,
                    node = o.node,
                    seq = o.seq,
                    "a batch committed twice (retried after an ambiguous failure) is applied once"
                );
                None
            }
            Some(o) => {
                let mut value = o.boot.to_le_bytes().to_vec();
                value.extend_from_slice(&o.seq.to_le_bytes());
                meta.push((&origin_key, value));
                let batch = payload.decode().map_err(|e| apply_err(&e))?;
                if o.node & crate::federation::SITE_ORIGIN != 0 {
                    tags = crate::federation::site_tags(o.node, &batch);
                }
                Some(batch)
            }
            None => Some(payload.decode().map_err(|e| apply_err(&e))?),
        },
        EntryPayload::Membership(m) => {
            let stored = Membership::new(Some(log_id), m.clone());
            let json = serde_json::to_vec(&stored).map_err(|e| apply_err(&e))?;
            meta.push((MEMBERSHIP, json));
            None
        }
    };
    for tag in &tags {
        meta.push((tag, Vec::new()));
    }
    projection
        .apply(log_id.index, batch.as_ref(), &meta)
        .map_err(|e| apply_err(&e))?;
    Ok(batch.map(|batch| AppliedBatch {
        origin,
        batch: Arc::new(batch),
    }))
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId<u64>>, Membership)> {
        applied_state(&self.projection)
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>>
    where
        I: IntoIterator<Item = LogEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<LogEntry> = entries.into_iter().collect();
        let projection = self.projection.clone();
        let history = self.history.clone();
        let applied = self.applied.clone();
        let batches = self.applied_batches.clone();
        // sled work blocks (page reads, long transactions): it runs off the async workers, so
        // that receiving and aggregating flows never waits behind it.
        let work = tokio::task::spawn_blocking(move || {
            let mut replies = Vec::with_capacity(entries.len());
            for entry in &entries {
                let batch = apply_entry(&projection, entry)?;
                if let Some(batch) = batch.filter(|_| batches.receiver_count() > 0) {
                    // Nobody listening, or a receiver far behind: neither holds up applying.
                    let _ = batches.send(batch);
                }
                applied.store(entry.log_id.index, Ordering::Release);
                replies.push(Applied {
                    index: entry.log_id.index,
                });
            }
            // Applied first, then kept: a crash in between is caught up from the Raft log when
            // the log opens. A failure here must not stop Raft: it is reported.
            if let Err(e) = history.record(&entries) {
                tracing::error!(error = %e, "the history did not take applied entries");
            }
            Ok(replies)
        });
        work.await.map_err(sm_write_err)?
    }

    // The copy is taken here, serialized with `apply`, because the builder runs concurrently.
    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        let copy = applied_state(&self.projection).and_then(|(last_applied, membership)| {
            let data = self.projection.export().map_err(sm_read_err)?;
            Ok((last_applied, membership, data))
        });
        SnapshotBuilder {
            state_machine: StateMachine {
                history: self.history.clone(),
                applied_batches: self.applied_batches.clone(),
                projection: self.projection.clone(),
                snapshots: self.snapshots.clone(),
                applied: self.applied.clone(),
                _in_use: self._in_use.clone(),
            },
            copy: Some(copy),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let data = snapshot.into_inner();
        let import_err = |e: StoreError| snapshot_err(Some(meta), e, true);
        self.projection.import(&data).map_err(import_err)?;
        let mut sm_meta: Vec<(&[u8], Vec<u8>)> = Vec::new();
        if let Some(last) = &meta.last_log_id {
            sm_meta.push((LAST_APPLIED, encode_log_id(last)));
        }
        let membership = serde_json::to_vec(&meta.last_membership)
            .map_err(|e| snapshot_err(Some(meta), e, true))?;
        sm_meta.push((MEMBERSHIP, membership));
        let index = meta.last_log_id.map_or(0, |id| id.index);
        self.projection
            .apply(index, None, &sm_meta)
            .map_err(import_err)?;
        self.save_snapshot(meta, &data).await?;
        if let Some(last) = meta.last_log_id {
            // This node's history now starts from the snapshot.
            let taken_ms = snapshot_taken_ms(&meta.snapshot_id);
            let history = self.history.clone();
            let installed =
                tokio::task::spawn_blocking(move || history.install_base(last, taken_ms, &data))
                    .await;
            match installed {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "the history did not take the snapshot"),
                Err(e) => tracing::error!(error = %e, "the history did not take the snapshot"),
            }
        }
        self.applied.store(index, Ordering::Release);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        let Some(meta) = self
            .snapshots
            .get(SNAPSHOT_META)
            .map_err(|e| snapshot_err(None, e, false))?
        else {
            return Ok(None);
        };
        let meta: Meta = serde_json::from_slice(&meta).map_err(|e| snapshot_err(None, e, false))?;
        let in_file = in_place(|| self.history.snapshot_data())
            .map_err(|e| snapshot_err(Some(&meta), e, false))?;
        let data = match in_file {
            Some(data) => data,
            // Stored in sled by older versions.
            None => self
                .snapshots
                .get(SNAPSHOT_DATA)
                .map_err(|e| snapshot_err(Some(&meta), e, false))?
                .map(|d| d.to_vec())
                .unwrap_or_default(),
        };
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// The last applied log id, the membership and the exported projection, taken together.
type ProjectionCopy = (Option<LogId<u64>>, Membership, Vec<u8>);

/// Builds a snapshot from the copy of the projection taken by `get_snapshot_builder`.
pub(crate) struct SnapshotBuilder {
    state_machine: StateMachine,
    copy: Option<Result<ProjectionCopy>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>> {
        let (last_log_id, last_membership, data) = self.copy.take().unwrap_or_else(|| {
            Err(sm_write_err(std::io::Error::other(
                "a snapshot builder builds one snapshot",
            )))
        })?;
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let snapshot_id = match &last_log_id {
            Some(id) => format!(
                "{}-{}-{}-{millis}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => format!("empty-{millis}"),
        };
        let meta = Meta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        self.state_machine.save_snapshot(&meta, &data).await?;
        if let Some(last) = last_log_id {
            // Also a history checkpoint: replays as of a later moment start from it. Written in
            // place (blocking): a copy of the export would cost its size in memory.
            let history = &self.state_machine.history;
            let kept = in_place(|| history.checkpoint(last.index, millis as u64, &data));
            if let Err(e) = kept {
                tracing::warn!(error = %e, "a snapshot could not be kept as a history checkpoint");
            }
        }
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}
