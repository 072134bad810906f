//! The encoding of one Raft log entry and of a log id, shared by the segment files and the
//! state machine's last-applied id.
//!
//! Entry encoding: format version (1 byte), term, leader node id, index (8 bytes big-endian
//! each), payload kind (1 byte: 0 blank, 1 normal, 2 membership), then the payload: the
//! rkyv-encoded event batch for normal entries, JSON for membership entries, nothing for blank.

use openraft::{CommittedLeaderId, EntryPayload, LogId, Membership};

use crate::raft::{LogEntry, LogPayload};

const FORMAT: u8 = 1;
const HEADER: usize = 1 + 8 + 8 + 8 + 1;
const BLANK: u8 = 0;
const NORMAL: u8 = 1;
const MEMBERSHIP: u8 = 2;

/// Why a stored log entry or log id could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum EntryDecodeError {
    /// Shorter than its fixed header.
    #[error("log entry of {0} bytes is shorter than its {HEADER}-byte header")]
    Truncated(usize),
    /// Written by an unknown format.
    #[error("log entry format {0} is unknown (this build reads {FORMAT})")]
    Format(u8),
    /// Unknown payload kind.
    #[error("log entry payload kind {0} is unknown")]
    Kind(u8),
    /// A blank entry with payload bytes.
    #[error("blank log entry carries {0} payload bytes")]
    BlankWithPayload(usize),
    /// The membership payload is not valid JSON.
    #[error("membership payload: {0}")]
    Membership(#[from] serde_json::Error),
    /// A stored log id has the wrong length.
    #[error("log id of {0} bytes (expected 24)")]
    LogId(usize),
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// Encodes a log id as term, leader node id and index, 8 bytes big-endian each.
pub(crate) fn encode_log_id(log_id: &LogId<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&log_id.leader_id.term.to_be_bytes());
    out.extend_from_slice(&log_id.leader_id.node_id.to_be_bytes());
    out.extend_from_slice(&log_id.index.to_be_bytes());
    out
}

/// Decodes a log id written by [`encode_log_id`].
pub(crate) fn decode_log_id(bytes: &[u8]) -> Result<LogId<u64>, EntryDecodeError> {
    if bytes.len() != 24 {
        return Err(EntryDecodeError::LogId(bytes.len()));
    }
    Ok(LogId::new(
        CommittedLeaderId::new(read_u64(bytes, 0), read_u64(bytes, 8)),
        read_u64(bytes, 16),
    ))
}

/// Encodes an entry (the bytes a segment record carries).
pub(crate) fn encode_entry(entry: &LogEntry) -> Result<Vec<u8>, serde_json::Error> {
    let (kind, payload) = match &entry.payload {
        EntryPayload::Blank => (BLANK, Vec::new()),
        EntryPayload::Normal(data) => (NORMAL, data.as_bytes().to_vec()),
        EntryPayload::Membership(m) => (MEMBERSHIP, serde_json::to_vec(m)?),
    };
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.push(FORMAT);
    out.extend_from_slice(&encode_log_id(&entry.log_id));
    out.push(kind);
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Decodes the log id of an encoded entry without decoding its payload.
pub(super) fn decode_entry_log_id(bytes: &[u8]) -> Result<LogId<u64>, EntryDecodeError> {
    if bytes.len() < HEADER {
        return Err(EntryDecodeError::Truncated(bytes.len()));
    }
    if bytes[0] != FORMAT {
        return Err(EntryDecodeError::Format(bytes[0]));
    }
    decode_log_id(&bytes[1..25])
}

/// Decodes an entry written by [`encode_entry`]. A normal entry's event batch is carried as
/// bytes and checked when it is applied ([`LogPayload::decode`]).
pub(crate) fn decode_entry(bytes: &[u8]) -> Result<LogEntry, EntryDecodeError> {
    let log_id = decode_entry_log_id(bytes)?;
    let payload = &bytes[HEADER..];
    let payload = match bytes[HEADER - 1] {
        BLANK if payload.is_empty() => EntryPayload::Blank,
        BLANK => return Err(EntryDecodeError::BlankWithPayload(payload.len())),
        NORMAL => EntryPayload::Normal(LogPayload::from_bytes(payload.to_vec())),
        MEMBERSHIP => {
            let membership: Membership<u64, openraft::BasicNode> = serde_json::from_slice(payload)?;
            EntryPayload::Membership(membership)
        }
        kind => return Err(EntryDecodeError::Kind(kind)),
    };
    Ok(LogEntry { log_id, payload })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::TypeConfig;

    fn entry(payload: EntryPayload<TypeConfig>) -> LogEntry {
        LogEntry {
            log_id: LogId::new(CommittedLeaderId::new(3, 7), 42),
            payload,
        }
    }

    #[test]
    fn entries_round_trip_through_the_log_encoding() {
        let batch = proto::event::EventBatch::new(Vec::new());
        let members = Membership::new(
            vec![[1u64].into_iter().collect()],
            [(1u64, openraft::BasicNode::new("127.0.0.1:1"))]
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>(),
        );
        for payload in [
            EntryPayload::Blank,
            EntryPayload::Normal(LogPayload::encode(&batch)),
            EntryPayload::Membership(members),
        ] {
            let e = entry(payload);
            let bytes = encode_entry(&e).unwrap();
            assert_eq!(&bytes[1..9], &3u64.to_be_bytes(), "term");
            assert_eq!(decode_entry(&bytes).unwrap(), e);
        }
    }

    #[test]
    fn damaged_entries_are_errors_not_panics() {
        let e = entry(EntryPayload::Membership(Membership::new(
            vec![[1u64].into_iter().collect()],
            (),
        )));
        let bytes = encode_entry(&e).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode_entry(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(matches!(
            decode_entry(&bad),
            Err(EntryDecodeError::Format(9))
        ));
        let mut bad = bytes.clone();
        bad[HEADER - 1] = 77;
        assert!(matches!(
            decode_entry(&bad),
            Err(EntryDecodeError::Kind(77))
        ));
        assert!(decode_log_id(&[0; 23]).is_err());
    }
}
