//! NetFlow v5: a 24-byte header and up to 30 fixed 48-byte records. Times in records are
//! milliseconds of the exporter's uptime; the header ties uptime to wall-clock time.

use std::net::IpAddr;

use super::reader::Reader;
use super::{DecodeContext, DecodeError, FlowSink, PacketReport, SkipReason};
use crate::record::{FlowRecord, FlowSource};

/// Size of the v5 header.
pub const HEADER_LEN: usize = 24;
/// Size of one v5 record.
pub const RECORD_LEN: usize = 48;

/// Converts a time in exporter uptime ms to absolute UTC ms, given the header's uptime and
/// wall-clock time. The difference is taken as a signed 32-bit value so uptime wrap-around and
/// exporters that stamp flows slightly after the header's uptime (pmacct) both come out right.
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
    let present = r.remaining() / RECORD_LEN;
    let n = usize::from(count).min(present);
    for _ in n..usize::from(count) {
        report.skipped.add(SkipReason::TruncatedRecord);
    }
    for _ in 0..n {
        let mut rec = r.sub(RECORD_LEN, "v5 record")?;
        let src = rec.ipv4("srcaddr")?;
        let dst = rec.ipv4("dstaddr")?;
        let next_hop = rec.ipv4("nexthop")?;
        let in_if = rec.u16("input")?;
        let out_if = rec.u16("output")?;
        let packets = rec.u32("dPkts")?;
        let bytes = rec.u32("dOctets")?;
        let first = rec.u32("First")?;
        let last = rec.u32("Last")?;
        let src_port = rec.u16("srcport")?;
        let dst_port = rec.u16("dstport")?;
        rec.skip(1, "pad1")?;
        let tcp_flags = rec.u8("tcp_flags")?;
        let protocol = rec.u8("prot")?;
        let tos = rec.u8("tos")?;
        let src_as = rec.u16("src_as")?;
        let dst_as = rec.u16("dst_as")?;
        sink.flow(FlowRecord {
            src_addr: IpAddr::V4(src),
            dst_addr: IpAddr::V4(dst),
            src_port,
            dst_port,
            protocol,
            tcp_flags,
            tos,
            bytes: u64::from(bytes) * u64::from(rate),
            packets: u64::from(packets) * u64::from(rate),
            in_if: u32::from(in_if),
            out_if: u32::from(out_if),
            src_as: u32::from(src_as),
            dst_as: u32::from(dst_as),
            next_hop: (!next_hop.is_unspecified()).then_some(IpAddr::V4(next_hop)),
            vlan: None,
            first_ms: uptime_to_utc_ms(export_ms, sys_uptime, first),
            last_ms: uptime_to_utc_ms(export_ms, sys_uptime, last),
            exporter: ctx.exporter,
            observation_domain: domain,
            sampling_rate: rate,
            direction: Default::default(),
            source: FlowSource::NetflowV5,
        });
        report.flows += 1;
    }
    report.data_records = report.flows;
    Ok(report)
}

#[cfg(test)]
mod tests;
