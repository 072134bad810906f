//! The node's local storage: on sled, the projection of the event log (replicated state, rebuilt
//! from the log) and collector state; in files, the raw flows and the traffic rollups. Rollups,
//! collector state and raw flows are local, never replicated.

mod access;
mod facts;
pub mod keys;
pub mod projection;
pub mod raw;
pub mod rollups;
mod snapshot;

pub use projection::Projection;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled reported an I/O or corruption error.
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value could not be decoded (corruption or an incompatible version).
    #[error("store: bad value in tree {tree}: {why}")]
    BadValue {
        /// The tree holding the value.
        tree: &'static str,
        /// What was wrong.
        why: String,
    },
    /// A committed event batch could not be decoded.
    #[error("store: {0}")]
    Event(#[from] proto::event::EventDecodeError),
    /// The raw flow tier's directory could not be used.
    #[error("raw flows at {path}: {why}")]
    Raw {
        /// The segment directory.
        path: std::path::PathBuf,
        /// What failed.
        why: String,
    },
    /// The rollup files could not be used.
    #[error("rollups at {path}: {why}")]
    Rollups {
        /// The rollup directory or file.
        path: std::path::PathBuf,
        /// What failed.
        why: String,
    },
    /// A snapshot could not be read.
    #[error("store: bad snapshot: {0}")]
    BadSnapshot(String),
}

/// Encodes a value with rkyv for storage.
pub use proto::codec::to_rkyv as to_value;

/// Decodes a value stored by [`to_value`], checking it first; errors name the tree.
pub fn from_value<T>(tree: &'static str, bytes: &[u8]) -> Result<T, StoreError>
where
    T: rkyv::Archive,
    T::Archived: for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rkyv::rancor::Error>>
        + rkyv::Deserialize<T, rkyv::api::high::HighDeserializer<rkyv::rancor::Error>>,
{
    proto::codec::from_rkyv(bytes).map_err(|why| StoreError::BadValue { tree, why })
}

/// A fresh id for a rule or an alert: 16 hex digits from a randomly seeded hash of the time.
pub fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(actors::now_ms());
    format!("{:016x}", h.finish())
}
