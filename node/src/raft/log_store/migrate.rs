//! The one-time move of the log out of sled: tree `raft_log` (big-endian index → encoded entry)
//! and tree `raft_meta` (vote as JSON, committed and last purged as encoded log ids) are copied
//! into the file log, then both trees are dropped. The meta file is written last, so a copy cut
//! short by a crash (segments but no meta file) is started over on the next open.

use std::path::Path;

use openraft::Vote;

use super::entry::{decode_entry_log_id, decode_log_id};
use super::error::LogFileError;
use super::meta::{self, MetaState};
use super::scan;
use super::segments::{Records, RECORD_HEADER};

/// The old tree of entries.
const LOG_TREE: &str = "raft_log";
/// The old tree of the vote, committed and last purged log ids.
const META_TREE: &str = "raft_meta";
/// The most bytes framed per write while copying.
const COPY_BYTES: usize = 8 << 20;

/// Copies the sled trees into the file log in `dir` if they hold anything and the file log has
/// no meta file yet, then drops them. Returns the entries copied.
pub(super) fn from_sled(
    db: &sled::Db,
    dir: &Path,
    segment_bytes: u64,
) -> Result<usize, LogFileError> {
    let names = db.tree_names();
    let has = |tree: &str| names.iter().any(|n| n.as_ref() == tree.as_bytes());
    if !has(LOG_TREE) && !has(META_TREE) {
        return Ok(0);
    }
    let log = db.open_tree(LOG_TREE)?;
    let old_meta = db.open_tree(META_TREE)?;
    let mut copied = 0;
    std::fs::create_dir_all(dir).map_err(LogFileError::io(dir))?;
    if meta::load(dir)?.is_none() && !(log.is_empty() && old_meta.is_empty()) {
        // A previous copy cut short left segments without the meta file: start over.
        for (_, path) in scan::list(dir)? {
            std::fs::remove_file(&path).map_err(LogFileError::io(path))?;
        }
        let mut segments = scan::open(dir, segment_bytes, None)?;
        // Copied in writes of at most a segment (or COPY_BYTES), so segments fill as usual.
        let chunk = usize::try_from(segment_bytes)
            .unwrap_or(usize::MAX)
            .min(COPY_BYTES);
        let mut records = Records::default();
        for item in log.iter() {
            let (key, bytes) = item?;
            let log_id = decode_entry_log_id(&bytes).map_err(|e| LogFileError::SledValue {
                key: key_name(&key),
                why: e.to_string(),
            })?;
            if records.framed() > 0 && records.framed() + RECORD_HEADER + bytes.len() > chunk {
                segments.write(&records)?.sync(dir)?;
                records = Records::default();
            }
            records.push(log_id, &bytes)?;
            copied += 1;
        }
        segments.write(&records)?.sync(dir)?;
        let log_id = |key: &str| -> Result<_, LogFileError> {
            old_meta
                .get(key)?
                .map(|v| decode_log_id(&v))
                .transpose()
                .map_err(|e| LogFileError::SledValue {
                    key: key.into(),
                    why: e.to_string(),
                })
        };
        let vote = old_meta
            .get("vote")?
            .map(|v| serde_json::from_slice::<Vote<u64>>(&v))
            .transpose()
            .map_err(|e| LogFileError::SledValue {
                key: "vote".into(),
                why: e.to_string(),
            })?;
        let state = MetaState {
            vote,
            committed: log_id("committed")?,
            last_purged: log_id("last_purged")?,
        };
        meta::store(dir, &state)?;
        tracing::info!(
            entries = copied,
            dir = %dir.display(),
            "raft log moved from sled into segment files"
        );
    }
    db.drop_tree(LOG_TREE)?;
    db.drop_tree(META_TREE)?;
    db.flush()?;
    Ok(copied)
}

/// An old `raft_log` key as the index it stands for (or its bytes, if it is not 8 long).
fn key_name(key: &[u8]) -> String {
    match <[u8; 8]>::try_from(key) {
        Ok(index) => u64::from_be_bytes(index).to_string(),
        Err(_) => format!("{key:?}"),
    }
}
