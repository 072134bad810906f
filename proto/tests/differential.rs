//! Differential tests: FlowLens's decoders against the `netflow_parser` crate as an oracle.
//!
//! The same datagrams — built with `proto::encode`, or taken from real exporters' captures in
//! `tests/data/*.pcap` — go through both parsers, each keeping its own template state, and every
//! flow record must agree on addresses, ports, protocol, counters, TCP flags, ToS, interfaces and
//! absolute first/last times.
//!
//! `netflow_parser` hands out raw field values, so this file turns them into flows by the rules
//! the RFCs give (and that `FlowRecord` documents): v5/v9 uptime times are placed against the
//! header's clock with signed 32-bit arithmetic; IPFIX sysUpTime times against the exporter's
//! systemInitTimeMilliseconds options record; ICMP type/code stands in for a missing destination
//! port; an RFC 5103 biflow yields a forward record and, when it carried reverse traffic, a
//! reverse record with the endpoints turned around.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use flowlens_tests::{data_dir, read_pcap};
use netflow_parser::variable_versions::field_value::DurationValue;
use netflow_parser::variable_versions::ipfix::lookup::{
    IANAIPFixField, IPFixField, ReverseInformationElement,
};
use netflow_parser::variable_versions::ipfix::FlowSetBody as IpfixBody;
use netflow_parser::variable_versions::v9::FlowSetBody as V9Body;
use netflow_parser::{DataNumber, FieldValue, NetflowPacket, NetflowParser};
use proto::decode::fields::FieldSpec;
use proto::decode::{ipfix, netflow_v5, netflow_v9, DecodeContext, TemplateCache};
use proto::encode::{self, IpfixMessage, V9Packet, Writer};
use proto::FlowRecord;

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// 2026-11-01T10:00:00Z in Unix ms: the export time of the synthetic packets.
const EXPORT_MS: u64 = 1_793_527_200_000;

/// The fields both parsers are compared on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flow {
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    protocol: u8,
    bytes: u64,
    packets: u64,
    tcp_flags: u8,
    tos: u8,
    in_if: u32,
    out_if: u32,
    first_ms: u64,
    last_ms: u64,
}

impl From<&FlowRecord> for Flow {
    fn from(r: &FlowRecord) -> Self {
        Flow {
            src: r.src_addr,
            dst: r.dst_addr,
            src_port: r.src_port,
            dst_port: r.dst_port,
            protocol: r.protocol,
            bytes: r.bytes,
            packets: r.packets,
            tcp_flags: r.tcp_flags,
            tos: r.tos,
            in_if: r.in_if,
            out_if: r.out_if,
            first_ms: r.first_ms,
            last_ms: r.last_ms,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The oracle: netflow_parser's output turned into flows.
// ---------------------------------------------------------------------------------------------

/// A time as a record carried it, before a clock is applied.
#[derive(Clone, Copy, Debug)]
enum RawTime {
    /// Milliseconds of exporter uptime.
    Uptime(u64),
    /// Unix milliseconds.
    Absolute(u64),
}

/// One data record's fields as read from netflow_parser's values.
#[derive(Clone, Copy, Debug, Default)]
struct OracleFields {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    src_port: u16,
    dst_port: Option<u16>,
    icmp_type_code: Option<u16>,
    protocol: u8,
    tos: u8,
    tcp_flags: u8,
    bytes: u64,
    packets: u64,
    in_if: u32,
    out_if: u32,
    start: Option<RawTime>,
    end: Option<RawTime>,
    system_init_ms: Option<u64>,
    is_biflow: bool,
    rev_bytes: u64,
    rev_packets: u64,
    rev_tcp_flags: u8,
    rev_tos: Option<u8>,
}

/// An information element, by IANA number or RFC 5103 reverse number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ie {
    Iana(u16),
    Reverse(u16),
    Other,
}

/// The IANA numbers of the IPFIX elements the comparison reads.
fn ipfix_ie(field: &IPFixField) -> Ie {
    use IANAIPFixField as F;
    use ReverseInformationElement as R;
    match field {
        IPFixField::IANA(f) => Ie::Iana(match f {
            F::OctetDeltaCount => 1,
            F::PacketDeltaCount => 2,
            F::ProtocolIdentifier => 4,
            F::IpClassOfService => 5,
            F::TcpControlBits => 6,
            F::SourceTransportPort => 7,
            F::SourceIpv4address => 8,
            F::IngressInterface => 10,
            F::DestinationTransportPort => 11,
            F::DestinationIpv4address => 12,
            F::EgressInterface => 14,
            F::FlowEndSysUpTime => 21,
            F::FlowStartSysUpTime => 22,
            F::SourceIpv6address => 27,
            F::DestinationIpv6address => 28,
            F::IcmpTypeCodeIpv4 => 32,
            F::IcmpTypeCodeIpv6 => 139,
            F::FlowStartSeconds => 150,
            F::FlowEndSeconds => 151,
            F::FlowStartMilliseconds => 152,
            F::FlowEndMilliseconds => 153,
            F::FlowStartMicroseconds => 154,
            F::FlowEndMicroseconds => 155,
            F::SystemInitTimeMilliseconds => 160,
            _ => return Ie::Other,
        }),
        IPFixField::ReverseInformationElement(r) => Ie::Reverse(match r {
            R::ReverseOctetDeltaCount => 1,
            R::ReversePacketDeltaCount => 2,
            R::ReverseIpClassOfService => 5,
            R::ReverseTcpControlBits => 6,
            _ => return Ie::Other,
        }),
        _ => Ie::Other,
    }
}

/// A value as an unsigned integer, whatever netflow_parser made of it.
fn as_uint(v: &FieldValue) -> Option<u64> {
    match v {
        FieldValue::DataNumber(DataNumber::Vec(bytes)) | FieldValue::Vec(bytes)
            if bytes.len() <= 8 =>
        {
            Some(bytes.iter().fold(0u64, |a, b| a << 8 | u64::from(*b)))
        }
        FieldValue::DataNumber(d) => d.as_u64(),
        FieldValue::ProtocolType(p) => Some(u64::from(u8::from(*p))),
        FieldValue::TcpControlBits(bits, _) => Some(u64::from(u16::from(*bits))),
        FieldValue::Duration(DurationValue::Millis { value, .. }) => Some(*value),
        FieldValue::Duration(DurationValue::Seconds { value, .. }) => Some(value * 1000),
        _ => None,
    }
}

/// A time element's value as Unix ms. RFC 7011 NTP timestamps (8 bytes) count from 1900;
/// pmacct's 16-byte form is a u64 of Unix seconds and a u64 of microseconds.
fn as_unix_ms(v: &FieldValue) -> Option<u64> {
    match v {
        FieldValue::Duration(
            DurationValue::MicrosNtp { seconds, fraction }
            | DurationValue::NanosNtp { seconds, fraction },
        ) => {
            let unix = u64::from(*seconds) - NTP_UNIX_OFFSET_SECS;
            Some(unix * 1000 + ((u64::from(*fraction) * 1000) >> 32))
        }
        FieldValue::Vec(b) if b.len() == 16 => {
            let secs = b[..8].iter().fold(0u64, |a, x| a << 8 | u64::from(*x));
            let micros = b[8..].iter().fold(0u64, |a, x| a << 8 | u64::from(*x));
            Some(secs * 1000 + micros / 1000)
        }
        other => as_uint(other),
    }
}

impl OracleFields {
    /// Applies one element's value.
    fn apply(&mut self, ie: Ie, v: &FieldValue) {
        let uint = || as_uint(v).unwrap_or_else(|| panic!("{ie:?}: not an integer: {v:?}"));
        let addr = || IpAddr::try_from(v).ok();
        match ie {
            Ie::Iana(1) => self.bytes = uint(),
            Ie::Iana(2) => self.packets = uint(),
            Ie::Iana(4) => self.protocol = uint() as u8,
            Ie::Iana(5) => self.tos = uint() as u8,
            Ie::Iana(6) => self.tcp_flags = uint() as u8,
            Ie::Iana(7) => self.src_port = uint() as u16,
            Ie::Iana(8) | Ie::Iana(27) => self.src = addr(),
            Ie::Iana(10) => self.in_if = uint() as u32,
            Ie::Iana(11) => self.dst_port = Some(uint() as u16),
            Ie::Iana(12) | Ie::Iana(28) => self.dst = addr(),
            Ie::Iana(14) => self.out_if = uint() as u32,
            Ie::Iana(21) => self.end = Some(RawTime::Uptime(uint())),
            Ie::Iana(22) => self.start = Some(RawTime::Uptime(uint())),
            Ie::Iana(32) | Ie::Iana(139) => self.icmp_type_code = Some(uint() as u16),
            Ie::Iana(150) | Ie::Iana(152) | Ie::Iana(154) => {
                self.start = as_unix_ms(v).map(RawTime::Absolute)
            }
            Ie::Iana(151) | Ie::Iana(153) | Ie::Iana(155) => {
                self.end = as_unix_ms(v).map(RawTime::Absolute)
            }
            Ie::Iana(160) => self.system_init_ms = Some(uint()),
            Ie::Reverse(1) => {
                self.rev_bytes = uint();
                self.is_biflow = true;
            }
            Ie::Reverse(2) => {
                self.rev_packets = uint();
                self.is_biflow = true;
            }
            Ie::Reverse(5) => {
                self.rev_tos = Some(uint() as u8);
                self.is_biflow = true;
            }
            Ie::Reverse(6) => {
                self.rev_tcp_flags = uint() as u8;
                self.is_biflow = true;
            }
            _ => {}
        }
    }

    /// The flows this record stands for: none without addresses, two for a biflow with
    /// reverse traffic. `clock` places a raw time on the Unix timeline.
    fn flows(&self, clock: impl Fn(RawTime) -> u64, export_ms: u64, out: &mut Vec<Flow>) {
        let (Some(src), Some(dst)) = (self.src, self.dst) else {
            return;
        };
        let (first_ms, last_ms) = match (self.start.map(&clock), self.end.map(&clock)) {
            (Some(s), Some(e)) => (s, e),
            (Some(s), None) => (s, s),
            (None, Some(e)) => (e, e),
            (None, None) => (export_ms, export_ms),
        };
        let forward = Flow {
            src,
            dst,
            src_port: self.src_port,
            dst_port: self.dst_port.or(self.icmp_type_code).unwrap_or(0),
            protocol: self.protocol,
            bytes: self.bytes,
            packets: self.packets,
            tcp_flags: self.tcp_flags,
            tos: self.tos,
            in_if: self.in_if,
            out_if: self.out_if,
            first_ms,
            last_ms,
        };
        out.push(forward);
        if self.is_biflow && (self.rev_packets > 0 || self.rev_bytes > 0) {
            out.push(Flow {
                src: forward.dst,
                dst: forward.src,
                src_port: forward.dst_port,
                dst_port: forward.src_port,
                in_if: forward.out_if,
                out_if: forward.in_if,
                bytes: self.rev_bytes,
                packets: self.rev_packets,
                tcp_flags: self.rev_tcp_flags,
                tos: self.rev_tos.unwrap_or(forward.tos),
                ..forward
            });
        }
    }
}

/// Absolute ms of an uptime `t`, given the header's uptime and wall clock: the difference is a
/// signed 32-bit quantity (uptime wraps; some exporters stamp flows after the header).
fn v5_v9_clock(export_ms: u64, sys_uptime: u32, t: u64) -> u64 {
    let ago = i64::from(sys_uptime.wrapping_sub(t as u32) as i32);
    (export_ms as i64 - ago) as u64
}

/// netflow_parser, with what a collector must remember between datagrams.
struct Oracle {
    parser: NetflowParser,
    /// IPFIX systemInitTimeMilliseconds from the last options record.
    system_init_ms: Option<u64>,
}

impl Oracle {
    fn new() -> Self {
        Oracle {
            parser: NetflowParser::default(),
            system_init_ms: None,
        }
    }

    /// Decodes one datagram into flows.
    fn decode(&mut self, datagram: &[u8]) -> Vec<Flow> {
        let result = self.parser.parse_bytes(datagram);
        assert!(
            result.error.is_none(),
            "netflow_parser failed: {:?}",
            result.error
        );
        let mut out = Vec::new();
        for packet in &result.packets {
            match packet {
                NetflowPacket::V5(p) => {
                    let h = &p.header;
                    let export_ms =
                        u64::from(h.unix_secs) * 1000 + u64::from(h.unix_nsecs / 1_000_000);
                    let rate = u64::from(h.sampling_interval & 0x3fff).max(1);
                    for r in &p.flowsets {
                        let clock = |t: u32| v5_v9_clock(export_ms, h.sys_up_time, u64::from(t));
                        out.push(Flow {
                            src: IpAddr::V4(r.src_addr),
                            dst: IpAddr::V4(r.dst_addr),
                            src_port: r.src_port,
                            dst_port: r.dst_port,
                            protocol: r.protocol_number,
                            bytes: u64::from(r.d_octets) * rate,
                            packets: u64::from(r.d_pkts) * rate,
                            tcp_flags: r.tcp_flags,
                            tos: r.tos,
                            in_if: u32::from(r.input),
                            out_if: u32::from(r.output),
                            first_ms: clock(r.first),
                            last_ms: clock(r.last),
                        });
                    }
                }
                NetflowPacket::V9(p) => {
                    let h = p.header;
                    let export_ms = u64::from(h.unix_secs) * 1000;
                    let clock = |t: RawTime| match t {
                        RawTime::Uptime(t) => v5_v9_clock(export_ms, h.sys_up_time, t),
                        RawTime::Absolute(ms) => ms,
                    };
                    for set in &p.flowsets {
                        if let V9Body::Data(data) = &set.body {
                            for record in &data.fields {
                                let mut f = OracleFields::default();
                                for (field, value) in record {
                                    f.apply(Ie::Iana(u16::from(*field)), value);
                                }
                                f.flows(clock, export_ms, &mut out);
                            }
                        }
                    }
                }
                NetflowPacket::IPFix(p) => {
                    let export_ms = u64::from(p.header.export_time) * 1000;
                    for set in &p.flowsets {
                        match &set.body {
                            IpfixBody::OptionsData(options) => {
                                for record in &options.fields {
                                    let mut f = OracleFields::default();
                                    for (field, value) in record {
                                        f.apply(ipfix_ie(field), value);
                                    }
                                    if f.system_init_ms.is_some() {
                                        self.system_init_ms = f.system_init_ms;
                                    }
                                }
                            }
                            IpfixBody::Data(data) => {
                                for record in &data.fields {
                                    let mut f = OracleFields::default();
                                    for (field, value) in record {
                                        f.apply(ipfix_ie(field), value);
                                    }
                                    let init = f.system_init_ms.or(self.system_init_ms);
                                    let clock = |t: RawTime| match t {
                                        RawTime::Uptime(t) => init
                                            .map(|i| i + t)
                                            .expect("sysUpTime time without systemInitTime"),
                                        RawTime::Absolute(ms) => ms,
                                    };
                                    f.flows(clock, export_ms, &mut out);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                other => panic!("unexpected packet kind {other:?}"),
            }
        }
        out
    }
}

/// FlowLens, with its template cache.
struct FlowLens {
    cache: TemplateCache,
    ctx: DecodeContext,
    records: Vec<FlowRecord>,
}

impl FlowLens {
    fn new() -> Self {
        FlowLens {
            cache: TemplateCache::new(),
            ctx: DecodeContext {
                exporter: IpAddr::V4(Ipv4Addr::LOCALHOST),
                received_ms: EXPORT_MS,
            },
            records: Vec::new(),
        }
    }

    /// Decodes one datagram (v5, v9 or IPFIX) into flows.
    fn decode(&mut self, datagram: &[u8]) -> Vec<Flow> {
        self.records.clear();
        let version = u16::from_be_bytes([datagram[0], datagram[1]]);
        let report = match version {
            5 => netflow_v5::decode(datagram, &self.ctx, &mut self.records),
            9 => netflow_v9::decode(datagram, &self.ctx, &mut self.cache, &mut self.records),
            10 => ipfix::decode(datagram, &self.ctx, &mut self.cache, &mut self.records),
            v => panic!("not a NetFlow/IPFIX datagram: version {v}"),
        }
        .expect("FlowLens failed to decode");
        assert_eq!(
            report.skipped.total(),
            0,
            "FlowLens skipped parts: {report:?}"
        );
        self.records.iter().map(Flow::from).collect()
    }
}

/// Decodes `datagrams` in order with both parsers and asserts they produce the same flows;
/// returns how many flows were compared.
fn assert_parsers_agree(what: &str, datagrams: &[Vec<u8>]) -> usize {
    let mut flowlens = FlowLens::new();
    let mut oracle = Oracle::new();
    let mut compared = 0;
    for (i, datagram) in datagrams.iter().enumerate() {
        let ours = flowlens.decode(datagram);
        let theirs = oracle.decode(datagram);
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{what}: datagram {i}: FlowLens gave {} flows, netflow_parser {}",
            ours.len(),
            theirs.len()
        );
        for (j, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(
                a, b,
                "{what}: datagram {i}, flow {j}: FlowLens (left) vs netflow_parser (right)"
            );
        }
        compared += ours.len();
    }
    compared
}

// ---------------------------------------------------------------------------------------------
// Synthetic datagrams.
// ---------------------------------------------------------------------------------------------

/// `n` varied IPv4 flows ending shortly before [`EXPORT_MS`].
fn ipv4_flows(n: usize) -> Vec<FlowRecord> {
    (0..n)
        .map(|i| {
            let i32_ = i as u32;
            let first_ms = EXPORT_MS - 60_000 + u64::from(i32_) * 731;
            FlowRecord {
                src_addr: IpAddr::V4(Ipv4Addr::from(0x0a00_0001 + i32_ * 7)),
                dst_addr: IpAddr::V4(Ipv4Addr::from(0xc0a8_0100 + i32_ * 13)),
                src_port: 40_000 + i as u16,
                dst_port: [80, 443, 53, 22, 5432][i % 5],
                protocol: [6, 6, 17, 6, 6][i % 5],
                tcp_flags: [0x1b, 0x12, 0, 0x02, 0x19][i % 5],
                tos: (i as u8).wrapping_mul(4),
                bytes: 40 + u64::from(i32_) * 1_337,
                packets: 1 + u64::from(i32_) * 3,
                in_if: 1 + i32_ % 4,
                out_if: 10 + i32_ % 3,
                first_ms,
                last_ms: first_ms + u64::from(i32_) * 97,
                ..FlowRecord::default()
            }
        })
        .collect()
}

/// The same flows between IPv6 hosts.
fn ipv6_flows(n: usize) -> Vec<FlowRecord> {
    ipv4_flows(n)
        .into_iter()
        .enumerate()
        .map(|(i, r)| FlowRecord {
            src_addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, i as u16 + 1)),
            dst_addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0xab, i as u16)),
            ..r
        })
        .collect()
}

fn spec(id: u16, len: u16) -> FieldSpec {
    FieldSpec {
        id,
        enterprise: 0,
        len,
    }
}

/// An IPFIX message with one template set and, if `records` is non-empty, one data set.
fn ipfix_message(
    sequence: u32,
    template: &[FieldSpec],
    records: &[FlowRecord],
    write: impl Fn(&mut Writer, &FlowRecord),
) -> Vec<u8> {
    let mut m = IpfixMessage::new((EXPORT_MS / 1000) as u32, sequence, 7);
    m.set(2).template(256, 0, template);
    if !records.is_empty() {
        m.set(256);
        for r in records {
            write(m.writer(), r);
        }
    }
    m.finish()
}

#[test]
fn netflow_v5_records_match_netflow_parser() {
    let flows = ipv4_flows(30);
    let sys_uptime = 3_600_000;
    let datagrams = vec![
        encode::netflow_v5(EXPORT_MS + 250, sys_uptime, 1, &flows),
        encode::netflow_v5(EXPORT_MS + 999, sys_uptime + 5_000, 31, &flows[..7]),
    ];
    assert_eq!(assert_parsers_agree("v5", &datagrams), 37);
}

#[test]
fn netflow_v5_times_after_the_header_uptime_match_netflow_parser() {
    // pmacct stamps flows after the header's SysUptime: First/Last exceed it, modulo 2^32.
    let mut flows = ipv4_flows(3);
    flows[0].first_ms = EXPORT_MS + 1_500;
    flows[0].last_ms = EXPORT_MS + 2_500;
    let datagrams = vec![encode::netflow_v5(EXPORT_MS, 4_010, 0, &flows)];
    assert_eq!(assert_parsers_agree("v5 late times", &datagrams), 3);
}

#[test]
fn netflow_v9_template_then_data_match_netflow_parser() {
    let flows = ipv4_flows(25);
    let export_ms = EXPORT_MS; // v9 headers carry whole seconds
    let sys_uptime = 7_200_123;
    let unix_secs = (export_ms / 1000) as u32;

    let mut template = V9Packet::new(1, sys_uptime, unix_secs, 0, 3);
    template.set(0).template(256, &encode::STANDARD_V9_TEMPLATE);
    let mut data = V9Packet::new(25, sys_uptime, unix_secs, 1, 3);
    data.set(256);
    for r in &flows {
        encode::standard_v9_record(data.writer(), r, export_ms, sys_uptime);
    }
    let mut both = V9Packet::new(6, sys_uptime, unix_secs, 2, 3);
    both.set(0).template(256, &encode::STANDARD_V9_TEMPLATE);
    both.set(256);
    for r in &flows[..5] {
        encode::standard_v9_record(both.writer(), r, export_ms, sys_uptime);
    }
    let datagrams = vec![template.finish(), data.finish(), both.finish()];
    assert_eq!(assert_parsers_agree("v9", &datagrams), 30);
}

#[test]
fn ipfix_standard_ipv4_template_and_data_match_netflow_parser() {
    let flows = ipv4_flows(20);
    let template = encode::standard_ipv4_template();
    let datagrams = vec![
        ipfix_message(0, &template, &[], encode::standard_ipv4_record),
        ipfix_message(0, &template, &flows, encode::standard_ipv4_record),
        {
            let mut m = IpfixMessage::new((EXPORT_MS / 1000) as u32, 20, 7);
            m.set(256);
            for r in &flows[..9] {
                encode::standard_ipv4_record(m.writer(), r);
            }
            m.finish()
        },
    ];
    assert_eq!(assert_parsers_agree("ipfix ipv4", &datagrams), 29);
}

#[test]
fn ipfix_ipv6_addresses_match_netflow_parser() {
    let flows = ipv6_flows(12);
    let template = [
        spec(27, 16),
        spec(28, 16),
        spec(7, 2),
        spec(11, 2),
        spec(4, 1),
        spec(6, 1),
        spec(5, 1),
        spec(1, 8),
        spec(2, 8),
        spec(10, 4),
        spec(14, 4),
        spec(152, 8),
        spec(153, 8),
    ];
    let write = |w: &mut Writer, r: &FlowRecord| {
        w.ip(r.src_addr)
            .ip(r.dst_addr)
            .u16(r.src_port)
            .u16(r.dst_port);
        w.u8(r.protocol).u8(r.tcp_flags).u8(r.tos);
        w.u64(r.bytes).u64(r.packets).u32(r.in_if).u32(r.out_if);
        w.u64(r.first_ms).u64(r.last_ms);
    };
    let datagrams = vec![ipfix_message(0, &template, &flows, write)];
    assert_eq!(assert_parsers_agree("ipfix ipv6", &datagrams), 12);
}

#[test]
fn ipfix_reduced_size_counters_and_second_times_match_netflow_parser() {
    // RFC 7011 §6.2 reduced-size encoding: counters in 4 and 2 bytes, interfaces in 2 and 1,
    // times as whole seconds (IE 150/151, 4 bytes).
    let flows: Vec<FlowRecord> = ipv4_flows(16)
        .into_iter()
        .map(|r| FlowRecord {
            first_ms: r.first_ms / 1000 * 1000,
            last_ms: r.last_ms / 1000 * 1000,
            ..r
        })
        .collect();
    let template = [
        spec(8, 4),
        spec(12, 4),
        spec(7, 2),
        spec(11, 2),
        spec(4, 1),
        spec(6, 2),
        spec(5, 1),
        spec(1, 4),
        spec(2, 2),
        spec(10, 2),
        spec(14, 1),
        spec(150, 4),
        spec(151, 4),
    ];
    let write = |w: &mut Writer, r: &FlowRecord| {
        w.ip(r.src_addr)
            .ip(r.dst_addr)
            .u16(r.src_port)
            .u16(r.dst_port);
        w.u8(r.protocol).u16(u16::from(r.tcp_flags)).u8(r.tos);
        w.u32(r.bytes as u32).u16(r.packets as u16);
        w.u16(r.in_if as u16).u8(r.out_if as u8);
        w.u32((r.first_ms / 1000) as u32)
            .u32((r.last_ms / 1000) as u32);
    };
    let datagrams = vec![ipfix_message(0, &template, &flows, write)];
    assert_eq!(assert_parsers_agree("ipfix reduced-size", &datagrams), 16);
}

#[test]
fn ipfix_sysuptime_times_resolve_through_system_init_time_like_netflow_parser() {
    // IE 22/21 are ms of exporter uptime; an options record's IE 160 says when uptime was zero.
    let flows = ipv4_flows(8);
    let init_ms = EXPORT_MS - 86_400_000;
    let mut m = IpfixMessage::new((EXPORT_MS / 1000) as u32, 0, 7);
    m.set(2).template(
        256,
        0,
        &[
            spec(8, 4),
            spec(12, 4),
            spec(7, 2),
            spec(11, 2),
            spec(4, 1),
            spec(1, 4),
            spec(2, 4),
            spec(22, 4),
            spec(21, 4),
        ],
    );
    m.set(3).template(257, 1, &[spec(149, 4), spec(160, 8)]);
    m.set(257);
    m.writer().u32(7).u64(init_ms);
    m.set(256);
    for r in &flows {
        let w = m.writer();
        w.ip(r.src_addr)
            .ip(r.dst_addr)
            .u16(r.src_port)
            .u16(r.dst_port);
        w.u8(r.protocol).u32(r.bytes as u32).u32(r.packets as u32);
        w.u32((r.first_ms - init_ms) as u32)
            .u32((r.last_ms - init_ms) as u32);
    }
    assert_eq!(assert_parsers_agree("ipfix uptime", &[m.finish()]), 8);
}

/// An RFC 5103 biflow message: forward fields plus reverse octets, packets, ToS and TCP flags
/// (PEN 29305 IEs 1, 2, 5, 6); the reverse ToS is `reverse_tos(forward ToS)`.
fn biflow_message(flows: &[FlowRecord], reverse_tos: impl Fn(u8) -> u8) -> Vec<u8> {
    let rev = |id| FieldSpec {
        id,
        enterprise: 29305,
        len: if id <= 2 { 8 } else { 1 },
    };
    let template = [
        spec(8, 4),
        spec(12, 4),
        spec(7, 2),
        spec(11, 2),
        spec(4, 1),
        spec(6, 1),
        spec(5, 1),
        spec(1, 8),
        spec(2, 8),
        spec(152, 8),
        spec(153, 8),
        rev(1),
        rev(2),
        rev(5),
        rev(6),
    ];
    let write = |w: &mut Writer, r: &FlowRecord| {
        w.ip(r.src_addr)
            .ip(r.dst_addr)
            .u16(r.src_port)
            .u16(r.dst_port);
        w.u8(r.protocol).u8(r.tcp_flags).u8(r.tos);
        w.u64(r.bytes).u64(r.packets).u64(r.first_ms).u64(r.last_ms);
        // Every other flow had no reverse traffic: it stays a single forward record.
        let answered = r.src_port.is_multiple_of(2);
        w.u64(if answered { r.bytes * 3 } else { 0 });
        w.u64(if answered { r.packets + 1 } else { 0 });
        w.u8(reverse_tos(r.tos)).u8(r.tcp_flags ^ 0x10);
    };
    ipfix_message(0, &template, flows, write)
}

#[test]
fn ipfix_biflows_split_into_forward_and_reverse_records_like_netflow_parser() {
    let datagrams = vec![biflow_message(&ipv4_flows(10), |tos| tos)];
    assert_eq!(assert_parsers_agree("ipfix biflow", &datagrams), 15);
}

#[test]
fn ipfix_biflow_reverse_records_carry_the_reverse_class_of_service() {
    let datagrams = vec![biflow_message(&ipv4_flows(10), |tos| tos ^ 0xb8)];
    assert_eq!(
        assert_parsers_agree("ipfix biflow reverse ToS", &datagrams),
        15
    );
}

// ---------------------------------------------------------------------------------------------
// Real exporters' captures.
// ---------------------------------------------------------------------------------------------

/// The UDP payloads of a capture in `tests/data`, in capture order.
fn udp_payloads(path: &Path) -> Vec<Vec<u8>> {
    read_pcap(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .map(|d| d.payload)
        .collect()
}

/// The NetFlow v5/v9 and IPFIX captures in `tests/data` (sFlow is beyond netflow_parser).
fn netflow_captures() -> Vec<PathBuf> {
    let entries = std::fs::read_dir(data_dir()).expect("tests/data is committed");
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .filter(|p| p.file_name().is_some_and(|n| n != "traffic.pcap"))
        .filter(|p| {
            udp_payloads(p)
                .first()
                .is_some_and(|d| matches!(d.get(..2), Some([0, 5 | 9 | 10])))
        })
        .collect();
    paths.sort();
    paths
}

#[test]
fn pcap_reader_finds_every_udp_payload_of_a_capture() {
    let payloads = udp_payloads(&data_dir().join("softflowd_v5.pcap"));
    assert_eq!(payloads.len(), 3);
    let records: usize = payloads
        .iter()
        .map(|p| usize::from(u16::from_be_bytes([p[2], p[3]])))
        .sum();
    assert_eq!(records, 68);
}

#[test]
fn real_exporter_captures_decode_the_same_with_netflow_parser() {
    let captures = netflow_captures();
    assert!(captures.len() >= 10, "captures found: {captures:?}");
    for path in &captures {
        let datagrams = udp_payloads(path);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        let n = assert_parsers_agree(&name, &datagrams);
        assert!(n > 0, "{name}: no flows compared");
        eprintln!("{name}: {} datagrams, {n} flows agree", datagrams.len());
    }
}
