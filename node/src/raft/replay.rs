//! Projections rebuilt from the history into a temporary sled database: as of a moment (for
//! `topology?at` and `topology/diff`), or whole up to a log index (for `admin rebuild`, which
//! checks the result against the live projection).

use std::time::{Duration, Instant};

use proto::event::EventBatch;

use super::history::History;
use super::{state_machine, EventLog, LogError};
use crate::store::Projection;

/// Entries read from the history at a time.
const CHUNK: u64 = 1024;

/// A projection in a temporary database, dropped with it.
pub struct Replayed {
    /// The rebuilt projection.
    pub projection: Projection,
    _db: sled::Db,
    /// Entries read.
    pub entries: u64,
}

fn temporary() -> Result<(sled::Db, Projection), LogError> {
    let db = sled::Config::new().temporary(true).open()?;
    let projection = Projection::open(&db)?;
    Ok((db, projection))
}

/// A temporary projection holding the history's base (or, with `at_ms`, the newest checkpoint
/// taken by then), if there is one, when it was taken, and the index after it.
fn start(
    history: &History,
    at_ms: Option<u64>,
) -> Result<(sled::Db, Projection, Option<u64>, u64), LogError> {
    let (db, projection) = temporary()?;
    let base = match at_ms {
        Some(at) => history.start_for(at)?,
        None => history.base()?,
    };
    if let Some(base) = &base {
        projection.import(&base.data)?;
    }
    let taken = base.as_ref().map(|b| b.taken_ms);
    Ok((db, projection, taken, base.map_or(0, |b| b.index + 1)))
}

/// Calls `f` on every history entry with an index from `first` up to `last`, in order, a chunk
/// at a time.
fn each_entry(
    history: &History,
    first: u64,
    last: u64,
    mut f: impl FnMut(super::LogEntry) -> Result<(), LogError>,
) -> Result<u64, LogError> {
    let mut next = first;
    let mut read = 0u64;
    while next <= last {
        let end = last.min(next.saturating_add(CHUNK - 1));
        let entries = history.raw_in(next..=end)?;
        for entry in entries {
            read += 1;
            f(entry)?;
        }
        next = end + 1;
    }
    Ok(read)
}

/// The projection as it was at `at_ms`: every event of the history stamped at or before it,
/// applied in log order (after the history's base, which must be older than `at_ms`).
pub fn as_of(history: &History, at_ms: u64) -> Result<Replayed, LogError> {
    let (db, projection, taken, first) = start(history, Some(at_ms))?;
    if let Some(starts_ms) = taken.filter(|t| *t > at_ms) {
        return Err(LogError::BeforeHistory { at_ms, starts_ms });
    }
    let last = history.last_index().unwrap_or(0);
    let entries = each_entry(history, first, last, |entry| {
        let openraft::EntryPayload::Normal(payload) = &entry.payload else {
            return Ok(());
        };
        let index = entry.log_id.index;
        let batch = payload
            .decode()
            .map_err(|source| LogError::Decode { index, source })?;
        let events: Vec<_> = batch
            .events
            .into_iter()
            .filter(|e| e.at_ms <= at_ms)
            .collect();
        if !events.is_empty() {
            projection.apply(index, Some(&EventBatch::new(events)), &[])?;
        }
        Ok(())
    })?;
    Ok(Replayed {
        projection,
        _db: db,
        entries,
    })
}

/// What `admin rebuild` found.
#[derive(Debug)]
pub struct Rebuilt {
    /// Entries replayed.
    pub entries: u64,
    /// The log index both projections were compared at.
    pub index: u64,
    /// Whether the rebuilt projection equals the live one.
    pub equal: bool,
    /// Trees that differ, with their sizes (rebuilt, live).
    pub differences: Vec<(String, usize, usize)>,
    /// How long it took.
    pub took: Duration,
}

/// Rebuilds the projection from the history, entry by entry as the state machine applies them,
/// and compares it with the live one at the same log index (blocking). The live projection is
/// read while no entry is being applied (the applied index is the same before and after).
pub fn rebuild_and_compare(log: &EventLog) -> Result<Rebuilt, LogError> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let (index, live) = loop {
        let before = log.applied_index();
        let live = log.projection().contents()?;
        if log.applied_index() == before {
            break (before, live);
        }
        std::thread::sleep(Duration::from_millis(10));
        if Instant::now() > deadline {
            return Err(LogError::Shutdown(
                "the live projection kept changing for 60 s; rebuild when it is quieter".into(),
            ));
        }
    };
    let (_db, rebuilt, _, first) = start(log.history(), None)?;
    // Below the base, the live index may have been pruned by retention and the base's copy
    // not: only the entries the history holds are compared.
    let held = |item: &(Vec<u8>, Vec<u8>)| {
        crate::store::keys::history_log_index(&item.0).is_none_or(|i| i >= first)
    };
    let entries = each_entry(log.history(), first, index, |entry| {
        state_machine::apply_entry(&rebuilt, &entry)
            .map(|_| ())
            .map_err(LogError::from)
    })?;
    let rebuilt = rebuilt.contents()?;
    let mut differences = Vec::new();
    for (tree, items) in &live {
        let other = rebuilt.get(tree).map_or(&[][..], Vec::as_slice);
        let (other, items): (Vec<_>, Vec<_>) = if *tree == "history" {
            (
                other.iter().filter(|i| held(i)).collect(),
                items.iter().filter(|i| held(i)).collect(),
            )
        } else {
            (other.iter().collect(), items.iter().collect())
        };
        if other != items {
            differences.push((tree.to_string(), other.len(), items.len()));
        }
    }
    Ok(Rebuilt {
        entries,
        index,
        equal: differences.is_empty(),
        differences,
        took: started.elapsed(),
    })
}
