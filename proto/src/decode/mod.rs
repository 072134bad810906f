//! Flow decoders: one module per wire format, plus what they share — the bounds-checked reader,
//! the sink records go to, the per-packet report and the error type.
//!
//! Every decoder works over a borrowed `&[u8]` and hands each record to a [`FlowSink`] by value:
//! nothing is allocated per record. NetFlow v9 and IPFIX need templates, kept in a
//! [`TemplateCache`] that the caller owns (one per collector, keyed inside by exporter address and
//! source id / observation domain) and can serialise to persist across restarts.

pub mod dataset;
pub mod fast;
pub mod fields;
pub mod ipfix;
pub mod netflow_v5;
pub mod netflow_v9;
pub mod reader;
pub mod sflow;
pub mod template;

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use template::TemplateCache;

use crate::record::{FlowRecord, InterfaceCounters};

/// What the caller knows about a datagram that the datagram does not say itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeContext {
    /// The UDP source address of the datagram: the exporter.
    pub exporter: IpAddr,
    /// When the datagram was received, UTC ms since the Unix epoch. sFlow carries no wall clock,
    /// so its records are stamped with this.
    pub received_ms: u64,
}

/// Where decoded records go. Implemented for `Vec<FlowRecord>` (reuse the vector across packets
/// and decoding allocates nothing once it has grown) and for any closure over `FlowRecord`.
pub trait FlowSink {
    /// Takes one decoded flow record.
    fn flow(&mut self, record: FlowRecord);
    /// Takes a run of decoded flows (all the records of one fixed-layout set). The default
    /// hands them to [`FlowSink::flow`] one at a time; sinks that store records in bulk
    /// override it so the records are written in place.
    #[inline]
    fn flows<I: ExactSizeIterator<Item = FlowRecord>>(&mut self, flows: I)
    where
        Self: Sized,
    {
        for f in flows {
            self.flow(f);
        }
    }
    /// Takes one sFlow interface counter record; ignored unless the sink wants counters.
    fn counters(&mut self, _counters: InterfaceCounters) {}
}

impl FlowSink for Vec<FlowRecord> {
    #[inline]
    fn flow(&mut self, record: FlowRecord) {
        self.push(record);
    }
    #[inline]
    fn flows<I: ExactSizeIterator<Item = FlowRecord>>(&mut self, flows: I) {
        self.extend(flows);
    }
}

impl<F: FnMut(FlowRecord)> FlowSink for F {
    #[inline]
    fn flow(&mut self, record: FlowRecord) {
        self(record)
    }
}

/// A sink that keeps flows and interface counters in two vectors.
#[derive(Clone, Debug, Default)]
pub struct CollectingSink {
    /// Decoded flow records, in packet order.
    pub flows: Vec<FlowRecord>,
    /// Decoded sFlow interface counters, in packet order.
    pub counters: Vec<InterfaceCounters>,
}

impl FlowSink for CollectingSink {
    #[inline]
    fn flow(&mut self, record: FlowRecord) {
        self.flows.push(record);
    }
    fn counters(&mut self, counters: InterfaceCounters) {
        self.counters.push(counters);
    }
}

/// Why part of a packet was skipped while the rest of it was still decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum SkipReason {
    /// A data set arrived before its template; it was buffered (see `buffered`) or dropped.
    MissingTemplate = 0,
    /// A template or options template record was malformed (bad counts, zero record length…).
    MalformedTemplate,
    /// A set header was invalid: length below the header size, or past the end of the packet.
    MalformedSet,
    /// A set id in the reserved range.
    ReservedSetId,
    /// A data record ended before its template said it would.
    TruncatedRecord,
    /// A data record lacked the addresses a flow needs.
    RecordWithoutAddresses,
    /// A buffered data set was dropped to keep the pending buffer within its bound.
    PendingOverflow,
    /// An sFlow sample or record whose declared length runs past its container.
    MalformedSample,
    /// An sFlow sample or record format this decoder does not read (skipped by its length).
    UnknownFormat,
    /// An sFlow raw packet header that held no IP packet.
    NonIpHeader,
}

impl SkipReason {
    /// Number of reasons, for counter arrays.
    pub const COUNT: usize = 10;
    /// Every reason, in discriminant order.
    pub const ALL: [SkipReason; Self::COUNT] = [
        SkipReason::MissingTemplate,
        SkipReason::MalformedTemplate,
        SkipReason::MalformedSet,
        SkipReason::ReservedSetId,
        SkipReason::TruncatedRecord,
        SkipReason::RecordWithoutAddresses,
        SkipReason::PendingOverflow,
        SkipReason::MalformedSample,
        SkipReason::UnknownFormat,
        SkipReason::NonIpHeader,
    ];

    /// A stable snake_case name for metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::MissingTemplate => "missing_template",
            SkipReason::MalformedTemplate => "malformed_template",
            SkipReason::MalformedSet => "malformed_set",
            SkipReason::ReservedSetId => "reserved_set_id",
            SkipReason::TruncatedRecord => "truncated_record",
            SkipReason::RecordWithoutAddresses => "record_without_addresses",
            SkipReason::PendingOverflow => "pending_overflow",
            SkipReason::MalformedSample => "malformed_sample",
            SkipReason::UnknownFormat => "unknown_format",
            SkipReason::NonIpHeader => "non_ip_header",
        }
    }
}

/// Counts of skipped parts of one packet, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipCounts([u32; SkipReason::COUNT]);

impl SkipCounts {
    /// Counts one more skip for `reason`.
    pub fn add(&mut self, reason: SkipReason) {
        if let Some(slot) = self.0.get_mut(reason as usize) {
            *slot = slot.saturating_add(1);
        }
    }
    /// How many skips were counted for `reason`.
    pub fn get(&self, reason: SkipReason) -> u32 {
        self.0.get(reason as usize).copied().unwrap_or(0)
    }
    /// Total skips over all reasons.
    pub fn total(&self) -> u32 {
        self.0.iter().fold(0u32, |a, b| a.saturating_add(*b))
    }
    /// Non-zero counts with their reasons.
    pub fn iter(&self) -> impl Iterator<Item = (SkipReason, u32)> + '_ {
        SkipReason::ALL
            .iter()
            .map(|r| (*r, self.get(*r)))
            .filter(|(_, n)| *n > 0)
    }
}

/// What one decoded packet said about itself and what became of its contents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketReport {
    /// Which format the packet was.
    pub source: FlowSourceTag,
    /// Header sequence number (v5: flows seen; v9: packets; IPFIX: data records; sFlow: datagrams).
    pub sequence: u32,
    /// Source id / observation domain / sFlow sub-agent id.
    pub observation_domain: u32,
    /// Export time from the header, UTC ms (0 for sFlow, which has none).
    pub export_ms: u64,
    /// Record count the header claims (v5 count, v9 count, sFlow sample count; 0 for IPFIX).
    pub header_count: u32,
    /// Flow records handed to the sink (including any released from the pending buffer).
    pub flows: u32,
    /// Interface counter records handed to the sink.
    pub counters: u32,
    /// Template and options template records learned.
    pub templates: u32,
    /// Template withdrawals applied.
    pub withdrawals: u32,
    /// Data sets buffered because their template has not arrived yet.
    pub buffered: u32,
    /// Data records (IPFIX) or flow records (v9) in this packet, for sequence accounting.
    pub data_records: u32,
    /// Parts skipped, by reason.
    pub skipped: SkipCounts,
}

/// Alias kept so the report's `source` reads naturally.
pub type FlowSourceTag = crate::record::FlowSource;

/// Why a whole packet could not be decoded. Parts of a packet that are bad are skipped and
/// counted in [`PacketReport::skipped`] instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The packet ended before a field the format requires.
    #[error("packet truncated at offset {offset}: needed {needed} more bytes for {what}")]
    Truncated {
        /// Byte offset where the read started.
        offset: usize,
        /// Bytes that were missing.
        needed: usize,
        /// What was being read.
        what: &'static str,
    },
    /// The version field names a format this decoder does not handle.
    #[error("unsupported version {version}")]
    UnsupportedVersion {
        /// The version number found.
        version: u32,
    },
    /// A header field is out of range (e.g. IPFIX message length not matching the datagram).
    #[error("bad header field {field}: {value}")]
    BadHeader {
        /// The field's name.
        field: &'static str,
        /// The value found.
        value: u64,
    },
}

/// Decodes any supported datagram, choosing the decoder from the version field: NetFlow v5,
/// v9, IPFIX (10) or sFlow v5.
pub fn decode_datagram<S: FlowSink>(
    packet: &[u8],
    ctx: &DecodeContext,
    cache: &mut TemplateCache,
    sink: &mut S,
) -> Result<PacketReport, DecodeError> {
    let head = reader::Reader::new(packet);
    let version16 = head.peek_u16(0, "version")?;
    match version16 {
        5 => netflow_v5::decode(packet, ctx, sink),
        9 => netflow_v9::decode(packet, ctx, cache, sink),
        10 => ipfix::decode(packet, ctx, cache, sink),
        0 => {
            let version = head.peek_u32(0, "version")?;
            if version == 5 {
                sflow::decode(packet, ctx, sink)
            } else {
                Err(DecodeError::UnsupportedVersion { version })
            }
        }
        other => Err(DecodeError::UnsupportedVersion {
            version: u32::from(other),
        }),
    }
}
