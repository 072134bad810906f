//! The meta file `meta.json`: the vote, the committed log id and the last purged log id, always
//! replaced whole and atomically (write `meta.json.tmp`, sync it, rename it over, sync the
//! directory), so a crash leaves either the old or the new file.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use openraft::{LogId, Vote};
use serde::{Deserialize, Serialize};

use super::error::LogFileError;
use super::lock;
use super::segments::sync_dir;

/// The meta file's name in the log directory.
const META_FILE: &str = "meta.json";
/// The name it is written under before the rename.
const META_TMP: &str = "meta.json.tmp";

/// What the meta file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct MetaState {
    /// The last saved vote.
    pub(super) vote: Option<Vote<u64>>,
    /// The last saved committed log id.
    pub(super) committed: Option<LogId<u64>>,
    /// Entries up to this one are purged.
    pub(super) last_purged: Option<LogId<u64>>,
}

/// Reads the meta file in `dir`; `None` if there is none yet.
pub(super) fn load(dir: &Path) -> Result<Option<MetaState>, LogFileError> {
    let path = dir.join(META_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| LogFileError::Meta { path, source }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogFileError::Io { path, source: e }),
    }
}

/// Replaces the meta file in `dir` with `state`, durably.
pub(super) fn store(dir: &Path, state: &MetaState) -> Result<(), LogFileError> {
    let tmp = dir.join(META_TMP);
    let bytes = serde_json::to_vec(state).map_err(|source| LogFileError::Meta {
        path: tmp.clone(),
        source,
    })?;
    File::create(&tmp)
        .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
        .map_err(LogFileError::io(&tmp))?;
    let path = dir.join(META_FILE);
    fs::rename(&tmp, &path).map_err(LogFileError::io(path))?;
    sync_dir(dir)
}

/// The meta state in memory and its file.
pub(super) struct Meta {
    dir: PathBuf,
    state: Mutex<Pending>,
    /// Held while the file is written, so writes land in the order they read the state.
    writing: Mutex<()>,
}

/// The state, whether a delayed write is already scheduled, and whether the log was closed
/// (delayed writes are then dropped, so they cannot land over a newer opening's file).
struct Pending {
    state: MetaState,
    scheduled: bool,
    closed: bool,
}

impl Meta {
    /// The meta of the log in `dir`, as loaded.
    pub(super) fn new(dir: PathBuf, state: MetaState) -> Meta {
        Meta {
            dir,
            state: Mutex::new(Pending {
                state,
                scheduled: false,
                closed: false,
            }),
            writing: Mutex::new(()),
        }
    }

    /// The current state (saved or not yet written).
    pub(super) fn get(&self) -> MetaState {
        lock(&self.state).state.clone()
    }

    /// Changes the state in memory.
    pub(super) fn update(&self, change: impl FnOnce(&mut MetaState)) {
        change(&mut lock(&self.state).state);
    }

    /// Sets the committed log id in memory; true if the caller must schedule a delayed
    /// [`Meta::write`] (none is scheduled yet).
    pub(super) fn set_committed(&self, committed: Option<LogId<u64>>) -> bool {
        let mut pending = lock(&self.state);
        pending.state.committed = committed;
        !std::mem::replace(&mut pending.scheduled, true)
    }

    /// Writes the current state to the file, durably (blocking). Clears the scheduled flag
    /// first, so a change made while the file is written schedules a write of its own.
    pub(super) fn write(&self) -> Result<(), LogFileError> {
        self.write_if(|_| true)
    }

    /// The delayed write [`Meta::set_committed`] asked for; nothing once the log is closed.
    pub(super) fn write_scheduled(&self) -> Result<(), LogFileError> {
        self.write_if(|pending| !pending.closed)
    }

    /// Writes the state a last time; later delayed writes are dropped.
    pub(super) fn close(&self) -> Result<(), LogFileError> {
        self.write_if(|pending| {
            pending.closed = true;
            true
        })
    }

    fn write_if(&self, go: impl FnOnce(&mut Pending) -> bool) -> Result<(), LogFileError> {
        let _writing = lock(&self.writing);
        let state = {
            let mut pending = lock(&self.state);
            if !go(&mut pending) {
                return Ok(());
            }
            pending.scheduled = false;
            pending.state.clone()
        };
        store(&self.dir, &state)
    }
}
