//! sFlow v5: a datagram header naming the agent, then samples. Flow samples (compact and
//! expanded) carry a sampled packet — a raw header (read in [`header`]), or pre-parsed
//! IPv4/IPv6 data — plus extended switch/router/gateway data; they become one [`FlowRecord`] each,
//! scaled by the sampling rate. Counter samples' generic interface counters become
//! [`InterfaceCounters`]. Everything is walked by declared lengths, bounded by the datagram.

use std::net::IpAddr;

use super::reader::Reader;
use super::{DecodeContext, DecodeError, FlowSink, PacketReport, SkipReason};
use crate::record::{FlowRecord, FlowSource, InterfaceCounters};

/// Flow sample (enterprise 0, format 1).
pub const FLOW_SAMPLE: u32 = 1;
/// Counter sample (enterprise 0, format 2).
pub const COUNTER_SAMPLE: u32 = 2;
/// Expanded flow sample (enterprise 0, format 3).
pub const EXPANDED_FLOW_SAMPLE: u32 = 3;
/// Expanded counter sample (enterprise 0, format 4).
pub const EXPANDED_COUNTER_SAMPLE: u32 = 4;

/// Flow record formats FlowLens reads.
mod flow_format {
    pub const RAW_HEADER: u32 = 1;
    pub const SAMPLED_IPV4: u32 = 3;
    pub const SAMPLED_IPV6: u32 = 4;
    pub const EXTENDED_SWITCH: u32 = 1001;
    pub const EXTENDED_ROUTER: u32 = 1002;
    pub const EXTENDED_GATEWAY: u32 = 1003;
}

/// Generic interface counters record (enterprise 0, format 1).
const GENERIC_INTERFACE_COUNTERS: u32 = 1;

/// Decodes one sFlow v5 datagram. Flow records are stamped with `ctx.received_ms` (sFlow has
/// no wall clock) and carry the agent address as their exporter.
pub fn decode<S: FlowSink>(
    packet: &[u8],
    ctx: &DecodeContext,
    sink: &mut S,
) -> Result<PacketReport, DecodeError> {
    let mut r = Reader::new(packet);
    let version = r.u32("version")?;
    if version != 5 {
        return Err(DecodeError::UnsupportedVersion { version });
    }
    let agent = address(&mut r, "agent address")?;
    let sub_agent = r.u32("sub agent id")?;
    let sequence = r.u32("sequence number")?;
    let _uptime = r.u32("uptime")?;
    let n_samples = r.u32("number of samples")?;
    let mut report = PacketReport {
        source: FlowSource::Sflow,
        sequence,
        observation_domain: sub_agent,
        header_count: n_samples,
        ..PacketReport::default()
    };
    let origin = Origin {
        agent,
        sub_agent,
        received_ms: ctx.received_ms,
    };
    // The claimed count is only an upper bound: each sample takes at least 8 bytes, so the loop
    // ends with the datagram however large the count.
    for _ in 0..n_samples {
        if r.remaining() < 8 {
            report.skipped.add(SkipReason::MalformedSample);
            break;
        }
        let format = r.u32("sample format")?;
        let len = r.u32("sample length")? as usize;
        if len > r.remaining() {
            report.skipped.add(SkipReason::MalformedSample);
            break;
        }
        let body = r.sub(len, "sample")?;
        let (enterprise, fmt) = (format >> 12, format & 0xfff);
        let result = match (enterprise, fmt) {
            (0, FLOW_SAMPLE) => flow_sample(body, false, &origin, sink, &mut report),
            (0, EXPANDED_FLOW_SAMPLE) => flow_sample(body, true, &origin, sink, &mut report),
            (0, COUNTER_SAMPLE) => counter_sample(body, false, &origin, sink, &mut report),
            (0, EXPANDED_COUNTER_SAMPLE) => counter_sample(body, true, &origin, sink, &mut report),
            _ => {
                report.skipped.add(SkipReason::UnknownFormat);
                Ok(())
            }
        };
        if result.is_err() {
            report.skipped.add(SkipReason::MalformedSample);
        }
    }
    Ok(report)
}

/// The datagram-level facts every sample's records carry.
struct Origin {
    agent: IpAddr,
    sub_agent: u32,
    received_ms: u64,
}

/// Reads an sFlow address: a type (1 IPv4, 2 IPv6) then the address.
fn address(r: &mut Reader<'_>, what: &'static str) -> Result<IpAddr, DecodeError> {
    match r.u32(what)? {
        1 => Ok(IpAddr::V4(r.ipv4(what)?)),
        2 => Ok(IpAddr::V6(r.ipv6(what)?)),
        other => Err(DecodeError::BadHeader {
            field: what,
            value: u64::from(other),
        }),
    }
}

/// Reads a compact (format in the top 2 bits) or expanded (format, value) interface; returns
/// the ifIndex, or 0 when the sample names a discard or multiple interfaces.
fn interface(r: &mut Reader<'_>, expanded: bool) -> Result<u32, DecodeError> {
    let (format, value) = if expanded {
        (r.u32("interface format")?, r.u32("interface value")?)
    } else {
        let v = r.u32("interface")?;
        (v >> 30, v & 0x3fff_ffff)
    };
    Ok(if format == 0 { value } else { 0 })
}

/// Decodes one flow sample into at most one flow record.
fn flow_sample<S: FlowSink>(
    mut r: Reader<'_>,
    expanded: bool,
    origin: &Origin,
    sink: &mut S,
    report: &mut PacketReport,
) -> Result<(), DecodeError> {
    let _seq = r.u32("flow sample sequence")?;
    r.skip(if expanded { 8 } else { 4 }, "source id")?;
    let rate = r.u32("sampling rate")?.max(1);
    let _pool = r.u32("sample pool")?;
    let _drops = r.u32("drops")?;
    let in_if = interface(&mut r, expanded)?;
    let out_if = interface(&mut r, expanded)?;
    let n_records = r.u32("number of flow records")?;
    let mut flow = FlowRecord {
        in_if,
        out_if,
        first_ms: origin.received_ms,
        last_ms: origin.received_ms,
        exporter: origin.agent,
        observation_domain: origin.sub_agent,
        sampling_rate: rate,
        source: FlowSource::Sflow,
        ..FlowRecord::default()
    };
    let mut frame_len: Option<u64> = None;
    let mut has_addresses = false;
    let mut non_ip = false;
    for _ in 0..n_records {
        if r.remaining() < 8 {
            return Err(DecodeError::Truncated {
                offset: r.offset(),
                needed: 8,
                what: "flow record",
            });
        }
        let format = r.u32("flow record format")?;
        let len = r.u32("flow record length")? as usize;
        let mut rec = r.sub(len, "flow record")?;
        if format >> 12 != 0 {
            continue;
        }
        match format & 0xfff {
            flow_format::RAW_HEADER => {
                let protocol = rec.u32("header protocol")?;
                let frame_length = rec.u32("frame length")?;
                let _stripped = rec.u32("stripped")?;
                let header_len = rec.u32("header length")? as usize;
                let header = rec.bytes(header_len, "sampled header")?;
                if header::parse(protocol, header, &mut flow) {
                    has_addresses = true;
                    frame_len = Some(u64::from(frame_length));
                } else {
                    non_ip = true;
                }
            }
            flow_format::SAMPLED_IPV4 | flow_format::SAMPLED_IPV6 if !has_addresses => {
                let v6 = format & 0xfff == flow_format::SAMPLED_IPV6;
                let length = rec.u32("sampled ip length")?;
                flow.protocol = rec.u32("protocol")? as u8;
                if v6 {
                    flow.src_addr = IpAddr::V6(rec.ipv6("src ip")?);
                    flow.dst_addr = IpAddr::V6(rec.ipv6("dst ip")?);
                } else {
                    flow.src_addr = IpAddr::V4(rec.ipv4("src ip")?);
                    flow.dst_addr = IpAddr::V4(rec.ipv4("dst ip")?);
                }
                flow.src_port = rec.u32("src port")? as u16;
                flow.dst_port = rec.u32("dst port")? as u16;
                flow.tcp_flags = rec.u32("tcp flags")? as u8;
                flow.tos = rec.u32("tos")? as u8;
                has_addresses = true;
                frame_len = Some(u64::from(length));
            }
            flow_format::EXTENDED_SWITCH => {
                let src_vlan = rec.u32("src vlan")?;
                let _src_priority = rec.u32("src priority")?;
                let dst_vlan = rec.u32("dst vlan")?;
                let vlan = if src_vlan != 0 { src_vlan } else { dst_vlan };
                if (1..4095).contains(&vlan) {
                    flow.vlan = Some(vlan as u16);
                }
            }
            flow_format::EXTENDED_ROUTER => {
                let hop = address(&mut rec, "next hop")?;
                flow.next_hop = (!hop.is_unspecified()).then_some(hop);
            }
            flow_format::EXTENDED_GATEWAY => gateway(&mut rec, &mut flow)?,
            _ => {}
        }
    }
    match frame_len {
        Some(len) if has_addresses => {
            flow.bytes = len.saturating_mul(u64::from(rate));
            flow.packets = u64::from(rate);
            sink.flow(flow);
            report.flows += 1;
        }
        _ if non_ip => report.skipped.add(SkipReason::NonIpHeader),
        _ => report.skipped.add(SkipReason::RecordWithoutAddresses),
    }
    Ok(())
}

/// Extended gateway data: BGP next hop, source AS and the destination AS (last on the path).
fn gateway(rec: &mut Reader<'_>, flow: &mut FlowRecord) -> Result<(), DecodeError> {
    let hop = address(rec, "bgp next hop")?;
    if flow.next_hop.is_none() && !hop.is_unspecified() {
        flow.next_hop = Some(hop);
    }
    let _router_as = rec.u32("router as")?;
    flow.src_as = rec.u32("src as")?;
    let _peer_as = rec.u32("src peer as")?;
    let segments = rec.u32("as path segments")?;
    for _ in 0..segments {
        let _kind = rec.u32("as path segment type")?;
        let n = rec.u32("as path segment length")? as usize;
        let path = rec.bytes(n.saturating_mul(4), "as path")?;
        if let Some(last) = path.rchunks_exact(4).next() {
            flow.dst_as = u32::from_be_bytes(<[u8; 4]>::try_from(last).unwrap_or([0; 4]));
        }
    }
    Ok(())
}

/// Decodes one counter sample, handing generic interface counters to the sink.
fn counter_sample<S: FlowSink>(
    mut r: Reader<'_>,
    expanded: bool,
    origin: &Origin,
    sink: &mut S,
    report: &mut PacketReport,
) -> Result<(), DecodeError> {
    let sequence = r.u32("counter sample sequence")?;
    r.skip(if expanded { 8 } else { 4 }, "source id")?;
    let n_records = r.u32("number of counter records")?;
    for _ in 0..n_records {
        if r.remaining() < 8 {
            return Err(DecodeError::Truncated {
                offset: r.offset(),
                needed: 8,
                what: "counter record",
            });
        }
        let format = r.u32("counter record format")?;
        let len = r.u32("counter record length")? as usize;
        let mut c = r.sub(len, "counter record")?;
        if format != GENERIC_INTERFACE_COUNTERS {
            continue;
        }
        sink.counters(InterfaceCounters {
            exporter: origin.agent,
            observation_domain: origin.sub_agent,
            received_ms: origin.received_ms,
            sequence,
            if_index: c.u32("ifIndex")?,
            if_type: c.u32("ifType")?,
            if_speed: c.u64("ifSpeed")?,
            if_direction: c.u32("ifDirection")?,
            if_status: c.u32("ifStatus")?,
            in_octets: c.u64("ifInOctets")?,
            in_ucast_pkts: c.u32("ifInUcastPkts")?,
            in_multicast_pkts: c.u32("ifInMulticastPkts")?,
            in_broadcast_pkts: c.u32("ifInBroadcastPkts")?,
            in_discards: c.u32("ifInDiscards")?,
            in_errors: c.u32("ifInErrors")?,
            in_unknown_protos: c.u32("ifInUnknownProtos")?,
            out_octets: c.u64("ifOutOctets")?,
            out_ucast_pkts: c.u32("ifOutUcastPkts")?,
            out_multicast_pkts: c.u32("ifOutMulticastPkts")?,
            out_broadcast_pkts: c.u32("ifOutBroadcastPkts")?,
            out_discards: c.u32("ifOutDiscards")?,
            out_errors: c.u32("ifOutErrors")?,
            promiscuous_mode: c.u32("ifPromiscuousMode")?,
        });
        report.counters += 1;
    }
    Ok(())
}

mod header;
#[cfg(test)]
mod tests;
