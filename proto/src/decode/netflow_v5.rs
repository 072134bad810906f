//! NetFlow v5: a 24-byte header and up to 30 fixed 48-byte records. Times in records are
//! milliseconds of the exporter's uptime; the header ties uptime to wall-clock time.

use std::net::{IpAddr, Ipv4Addr};

use super::reader::Reader;
use super::{DecodeContext, DecodeError, FlowSink, PacketReport, SkipReason};
use crate::record::{BiflowDirection, FlowRecord, FlowSource};

/// Size of the v5 header.
pub const HEADER_LEN: usize = 24;
/// Size of one v5 record.
pub const RECORD_LEN: usize = 48;

/// Converts a time in exporter uptime ms to absolute UTC ms, given the header's uptime and
/// wall-clock time. The difference is taken as a signed 32-bit value so uptime wrap-around and
/// exporters that stamp flows slightly after the header's uptime (pmacct) both come out right.
#[inline]
pub fn uptime_to_utc_ms(export_ms: u64, sys_uptime: u32, t: u32) -> u64 {
    let ago = i64::from(sys_uptime.wrapping_sub(t) as i32);
    (export_ms as i64).saturating_sub(ago).max(0) as u64
}

/// Decodes one NetFlow v5 datagram into `sink`.
///
/// The header's count is trusted only as far as the datagram holds whole records: records the
/// count claims but the datagram lacks are counted as [`SkipReason::TruncatedRecord`].
pub fn decode<S: FlowSink>(
    packet: &[u8],
    ctx: &DecodeContext,
    sink: &mut S,
) -> Result<PacketReport, DecodeError> {
    let mut r = Reader::new(packet);
    let version = r.u16("version")?;
    if version != 5 {
        return Err(DecodeError::UnsupportedVersion {
            version: u32::from(version),
        });
    }
    let count = r.u16("count")?;
    let sys_uptime = r.u32("sys_uptime")?;
    let unix_secs = r.u32("unix_secs")?;
    let unix_nsecs = r.u32("unix_nsecs")?;
    let sequence = r.u32("flow_sequence")?;
    let engine_type = r.u8("engine_type")?;
    let engine_id = r.u8("engine_id")?;
    let sampling = r.u16("sampling_interval")?;
    let export_ms = u64::from(unix_secs) * 1000 + u64::from(unix_nsecs / 1_000_000);
    let rate = u32::from(sampling & 0x3fff).max(1);
    let domain = u32::from(engine_type) << 8 | u32::from(engine_id);

    let mut report = PacketReport {
        source: FlowSource::NetflowV5,
        sequence,
        observation_domain: domain,
        export_ms,
        header_count: u32::from(count),
        ..PacketReport::default()
    };
    let (records, _) = r.rest().as_chunks::<RECORD_LEN>();
    let n = usize::from(count).min(records.len());
    for _ in n..usize::from(count) {
        report.skipped.add(SkipReason::TruncatedRecord);
    }
    let header = V5Header {
        export_ms,
        sys_uptime,
        rate,
        domain,
        exporter: ctx.exporter,
    };
    let records = records.get(..n).unwrap_or_default();
    sink.flows(records.iter().map(|rec| header.record(rec)));
    report.flows = n as u32;
    report.data_records = report.flows;
    Ok(report)
}

/// The header values every record of one datagram shares.
struct V5Header {
    export_ms: u64,
    sys_uptime: u32,
    rate: u32,
    domain: u32,
    exporter: IpAddr,
}

impl V5Header {
    /// Decodes one fixed-size record (layout: Cisco's NetFlow v5 export format).
    #[inline]
    fn record(&self, rec: &[u8; RECORD_LEN]) -> FlowRecord {
        // Offsets are constants inside a fixed-size array: the optimiser removes every check.
        let u8_at = |i: usize| rec.get(i).copied().unwrap_or(0);
        let u16_at = |i: usize| {
            rec.get(i..)
                .and_then(<[u8]>::first_chunk)
                .map_or(0, |b| u16::from_be_bytes(*b))
        };
        let u32_at = |i: usize| {
            rec.get(i..)
                .and_then(<[u8]>::first_chunk)
                .map_or(0, |b| u32::from_be_bytes(*b))
        };
        let ip_at = |i: usize| Ipv4Addr::from(u32_at(i));
        let next_hop = ip_at(8);
        let rate = u64::from(self.rate);
        FlowRecord {
            src_addr: IpAddr::V4(ip_at(0)),
            dst_addr: IpAddr::V4(ip_at(4)),
            src_port: u16_at(32),
            dst_port: u16_at(34),
            protocol: u8_at(38),
            tcp_flags: u8_at(37),
            tos: u8_at(39),
            bytes: u64::from(u32_at(20)) * rate,
            packets: u64::from(u32_at(16)) * rate,
            in_if: u32::from(u16_at(12)),
            out_if: u32::from(u16_at(14)),
            src_as: u32::from(u16_at(40)),
            dst_as: u32::from(u16_at(42)),
            next_hop: (!next_hop.is_unspecified()).then_some(IpAddr::V4(next_hop)),
            vlan: None,
            first_ms: uptime_to_utc_ms(self.export_ms, self.sys_uptime, u32_at(24)),
            last_ms: uptime_to_utc_ms(self.export_ms, self.sys_uptime, u32_at(28)),
            exporter: self.exporter,
            observation_domain: self.domain,
            sampling_rate: self.rate,
            direction: BiflowDirection::Unidirectional,
            source: FlowSource::NetflowV5,
        }
    }
}

#[cfg(test)]
mod tests;
