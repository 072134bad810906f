use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::decode::fields::{FieldSpec, REVERSE_PEN, VARIABLE_LENGTH};
use crate::encode::{self, IpfixMessage, Writer};
use crate::record::{BiflowDirection, FlowRecord};

const EXPORTER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
const EXPORT_SECS: u32 = 1_793_527_200;
const EXPORT_MS: u64 = EXPORT_SECS as u64 * 1000;
const NTP_OFFSET: u64 = 2_208_988_800;

fn ctx() -> DecodeContext {
    DecodeContext {
        exporter: EXPORTER,
        received_ms: EXPORT_MS,
    }
}

fn ie(id: u16, len: u16) -> FieldSpec {
    FieldSpec {
        id,
        enterprise: 0,
        len,
    }
}

fn rev(id: u16, len: u16) -> FieldSpec {
    FieldSpec {
        id,
        enterprise: REVERSE_PEN,
        len,
    }
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn run(msgs: Vec<Vec<u8>>, cache: &mut TemplateCache) -> (Vec<FlowRecord>, Vec<PacketReport>) {
    let mut out = Vec::new();
    let reports = msgs
        .iter()
        .map(|m| decode(m, &ctx(), cache, &mut out).unwrap())
        .collect();
    (out, reports)
}

fn sample_flow() -> FlowRecord {
    FlowRecord {
        src_addr: v4([10, 0, 0, 1]),
        dst_addr: v4([10, 0, 0, 2]),
        src_port: 40000,
        dst_port: 443,
        protocol: 6,
        tcp_flags: 0x12,
        tos: 0xb8,
        bytes: 5000,
        packets: 5,
        in_if: 1,
        out_if: 2,
        src_as: 65001,
        dst_as: 65002,
        next_hop: Some(v4([10, 0, 0, 254])),
        first_ms: EXPORT_MS - 4000,
        last_ms: EXPORT_MS - 100,
        ..FlowRecord::default()
    }
}

#[test]
fn decodes_ipfix_template_and_data() {
    let mut m = IpfixMessage::new(EXPORT_SECS, 10, 42);
    m.set(TEMPLATE_SET)
        .template(256, 0, &encode::standard_ipv4_template());
    m.set(256);
    encode::standard_ipv4_record(m.writer(), &sample_flow());
    let mut cache = TemplateCache::new();
    let (out, reports) = run(vec![m.finish()], &mut cache);
    assert_eq!(reports[0].templates, 1);
    assert_eq!(reports[0].data_records, 1);
    assert_eq!(reports[0].sequence, 10);
    let want = FlowRecord {
        exporter: EXPORTER,
        observation_domain: 42,
        source: FlowSource::Ipfix,
        ..sample_flow()
    };
    assert_eq!(out, vec![want]);
}

#[test]
fn ipfix_reduced_size_encoding_reads_short_counters() {
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    m.set(TEMPLATE_SET)
        .template(300, 0, &[ie(8, 4), ie(12, 4), ie(1, 4), ie(2, 2), ie(6, 2)]);
    m.set(300);
    m.writer()
        .bytes(&[10, 0, 0, 1, 10, 0, 0, 2])
        .u32(70_000)
        .u16(9)
        .u16(0x0112);
    let (out, _) = run(vec![m.finish()], &mut TemplateCache::new());
    assert_eq!(
        (out[0].bytes, out[0].packets, out[0].tcp_flags),
        (70_000, 9, 0x12)
    );
}

#[test]
fn ipfix_variable_length_fields_short_and_long_form() {
    // interfaceName (82) variable-length between the addresses and the counters.
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    m.set(TEMPLATE_SET).template(
        300,
        0,
        &[ie(8, 4), ie(82, VARIABLE_LENGTH), ie(12, 4), ie(1, 8)],
    );
    m.set(300);
    let w = m.writer();
    w.bytes(&[10, 0, 0, 1])
        .u8(4)
        .bytes(b"eth0")
        .bytes(&[10, 0, 0, 2])
        .u64(111);
    w.bytes(&[10, 0, 0, 3])
        .u8(255)
        .u16(300)
        .bytes(&[b'x'; 300])
        .bytes(&[10, 0, 0, 4])
        .u64(222);
    w.bytes(&[10, 0, 0, 5]).u8(0).bytes(&[10, 0, 0, 6]).u64(333);
    let (out, reports) = run(vec![m.finish()], &mut TemplateCache::new());
    assert_eq!(
        out.iter().map(|r| r.bytes).collect::<Vec<_>>(),
        vec![111, 222, 333]
    );
    assert_eq!(out[1].dst_addr, v4([10, 0, 0, 4]));
    assert_eq!(reports[0].skipped.total(), 0);
}

#[test]
fn ipfix_unknown_enterprise_elements_are_skipped_safely() {
    let vendor = FieldSpec {
        id: 123,
        enterprise: 9,
        len: 6,
    };
    let vendor_var = FieldSpec {
        id: 7,
        enterprise: 3054,
        len: VARIABLE_LENGTH,
    };
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    m.set(TEMPLATE_SET)
        .template(300, 0, &[vendor, ie(8, 4), vendor_var, ie(12, 4), ie(2, 4)]);
    m.set(300);
    m.writer()
        .bytes(&[0xee; 6])
        .bytes(&[10, 0, 0, 1])
        .u8(3)
        .bytes(&[1, 2, 3])
        .bytes(&[10, 0, 0, 2])
        .u32(4);
    let (out, _) = run(vec![m.finish()], &mut TemplateCache::new());
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].src_addr, out[0].dst_addr, out[0].packets),
        (v4([10, 0, 0, 1]), v4([10, 0, 0, 2]), 4)
    );
}

#[test]
fn ipfix_ipv6_flows() {
    let src = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10);
    let dst = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x20);
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    m.set(TEMPLATE_SET).template(
        300,
        0,
        &[
            ie(27, 16),
            ie(28, 16),
            ie(7, 2),
            ie(11, 2),
            ie(4, 1),
            ie(62, 16),
        ],
    );
    m.set(300);
    m.writer()
        .bytes(&src.octets())
        .bytes(&dst.octets())
        .u16(5353)
        .u16(53)
        .u8(17)
        .bytes(&[0; 16]);
    let (out, _) = run(vec![m.finish()], &mut TemplateCache::new());
    assert_eq!(
        (out[0].src_addr, out[0].dst_addr),
        (IpAddr::V6(src), IpAddr::V6(dst))
    );
    assert_eq!(
        (out[0].src_port, out[0].dst_port, out[0].protocol),
        (5353, 53, 17)
    );
    assert_eq!(out[0].next_hop, None);
}

fn time_template(m: &mut IpfixMessage, start: FieldSpec, end: FieldSpec) {
    m.set(TEMPLATE_SET)
        .template(300, 0, &[ie(8, 4), ie(12, 4), start, end]);
    m.set(300);
    m.writer().bytes(&[10, 0, 0, 1, 10, 0, 0, 2]);
}

#[test]
fn ipfix_sysuptime_times_use_system_init_time_from_options() {
    let init_ms = EXPORT_MS - 86_400_000;
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    // Options template: scope observationDomainId (149), option systemInitTimeMilliseconds.
    m.set(OPTIONS_TEMPLATE_SET)
        .template(400, 1, &[ie(149, 4), ie(160, 8)]);
    m.set(400);
    m.writer().u32(1).u64(init_ms);
    time_template(&mut m, ie(22, 4), ie(21, 4));
    m.writer().u32(1_000).u32(2_500);
    let (out, _) = run(vec![m.finish()], &mut TemplateCache::new());
    assert_eq!(
        (out[0].first_ms, out[0].last_ms),
        (init_ms + 1_000, init_ms + 2_500)
    );
}

#[test]
fn ipfix_seconds_milliseconds_and_delta_time_forms() {
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    time_template(&mut m, ie(150, 4), ie(151, 4));
    m.writer().u32(EXPORT_SECS - 60).u32(EXPORT_SECS - 1);
    let (out, _) = run(vec![m.finish()], &mut TemplateCache::new());
    assert_eq!(
        (out[0].first_ms, out[0].last_ms),
        (EXPORT_MS - 60_000, EXPORT_MS - 1_000)
    );

    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    time_template(&mut m, ie(158, 4), ie(159, 4));
    m.writer().u32(2_500_000).u32(500_000);
    let (out, _) = run(vec![m.finish()], &mut TemplateCache::new());
    assert_eq!(
        (out[0].first_ms, out[0].last_ms),
        (EXPORT_MS - 2_500, EXPORT_MS - 500)
    );
}

#[test]
fn ipfix_microsecond_ntp_timestamps() {
    let ntp = |ms: u64| ((ms / 1000 + NTP_OFFSET) << 32) | (((ms % 1000) << 32) / 1000 + 1);
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    time_template(&mut m, ie(154, 8), ie(155, 8));
    m.writer()
        .u64(ntp(EXPORT_MS - 1_234))
        .u64(ntp(EXPORT_MS - 5));
    let (out, _) = run(vec![m.finish()], &mut TemplateCache::new());
    assert_eq!(
        (out[0].first_ms, out[0].last_ms),
        (EXPORT_MS - 1_234, EXPORT_MS - 5)
    );
}

#[test]
fn ipfix_sixteen_byte_microsecond_timestamps_from_pmacct() {
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    time_template(&mut m, ie(154, 16), ie(155, 16));
    let w = m.writer();
    w.u64(u64::from(EXPORT_SECS) - 3)
        .u64(250_000)
        .u64(u64::from(EXPORT_SECS) - 1)
        .u64(999_999);
    let (out, _) = run(vec![m.finish()], &mut TemplateCache::new());
    assert_eq!(
        (out[0].first_ms, out[0].last_ms),
        (EXPORT_MS - 2_750, EXPORT_MS - 1)
    );
}

#[test]
fn ipfix_duration_fills_a_missing_end() {
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    time_template(&mut m, ie(152, 8), ie(161, 4));
    m.writer().u64(EXPORT_MS - 10_000).u32(4_000);
    let (out, _) = run(vec![m.finish()], &mut TemplateCache::new());
    assert_eq!(
        (out[0].first_ms, out[0].last_ms),
        (EXPORT_MS - 10_000, EXPORT_MS - 6_000)
    );
}

#[test]
fn ipfix_rfc5103_biflow_becomes_forward_and_reverse_records() {
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    let fields = [
        ie(8, 4),
        ie(12, 4),
        ie(7, 2),
        ie(11, 2),
        ie(4, 1),
        ie(10, 4),
        ie(14, 4),
        ie(1, 8),
        ie(2, 8),
        ie(6, 1),
        ie(152, 8),
        ie(153, 8),
        rev(1, 8),
        rev(2, 8),
        rev(6, 1),
        rev(152, 8),
        rev(153, 8),
    ];
    m.set(TEMPLATE_SET).template(300, 0, &fields);
    m.set(300);
    let w: &mut Writer = m.writer();
    w.bytes(&[192, 168, 1, 10, 93, 184, 216, 34])
        .u16(50123)
        .u16(443)
        .u8(6)
        .u32(3)
        .u32(9);
    w.u64(1_200)
        .u64(10)
        .u8(0x1b)
        .u64(EXPORT_MS - 9_000)
        .u64(EXPORT_MS - 1_000);
    w.u64(48_000)
        .u64(36)
        .u8(0x1a)
        .u64(EXPORT_MS - 8_990)
        .u64(EXPORT_MS - 1_010);
    // A second biflow with no reverse traffic: only the forward record.
    w.bytes(&[192, 168, 1, 10, 10, 9, 9, 9])
        .u16(50124)
        .u16(80)
        .u8(6)
        .u32(3)
        .u32(9);
    w.u64(60)
        .u64(1)
        .u8(0x02)
        .u64(EXPORT_MS - 5_000)
        .u64(EXPORT_MS - 5_000);
    w.u64(0).u64(0).u8(0).u64(0).u64(0);
    let (out, reports) = run(vec![m.finish()], &mut TemplateCache::new());
    assert_eq!(reports[0].data_records, 2);
    assert_eq!(out.len(), 3);
    let (fwd, back) = (out[0], out[1]);
    assert_eq!(fwd.direction, BiflowDirection::Forward);
    assert_eq!(
        (fwd.src_addr, fwd.src_port, fwd.bytes, fwd.packets),
        (v4([192, 168, 1, 10]), 50123, 1_200, 10)
    );
    assert_eq!(back.direction, BiflowDirection::Reverse);
    assert_eq!(
        (back.src_addr, back.dst_addr),
        (v4([93, 184, 216, 34]), v4([192, 168, 1, 10]))
    );
    assert_eq!(
        (back.src_port, back.dst_port, back.protocol),
        (443, 50123, 6)
    );
    assert_eq!((back.in_if, back.out_if), (9, 3));
    assert_eq!(
        (back.bytes, back.packets, back.tcp_flags),
        (48_000, 36, 0x1a)
    );
    assert_eq!(
        (back.first_ms, back.last_ms),
        (EXPORT_MS - 8_990, EXPORT_MS - 1_010)
    );
    assert_eq!(
        (out[2].direction, out[2].dst_port),
        (BiflowDirection::Forward, 80)
    );
}

#[test]
fn ipfix_sampling_from_options_with_selector_id() {
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    // Scope selectorId (302); samplingPacketInterval (305), samplingPacketSpace (306).
    m.set(OPTIONS_TEMPLATE_SET)
        .template(400, 1, &[ie(302, 2), ie(305, 4), ie(306, 4)]);
    m.set(400);
    m.writer().u16(5).u32(1).u32(511);
    m.set(TEMPLATE_SET).template(
        300,
        0,
        &[ie(8, 4), ie(12, 4), ie(1, 4), ie(2, 4), ie(302, 2)],
    );
    m.set(300);
    m.writer()
        .bytes(&[10, 0, 0, 1, 10, 0, 0, 2])
        .u32(100)
        .u32(1)
        .u16(5);
    m.writer()
        .bytes(&[10, 0, 0, 1, 10, 0, 0, 2])
        .u32(100)
        .u32(1)
        .u16(6);
    let (out, _) = run(vec![m.finish()], &mut TemplateCache::new());
    assert_eq!(
        (out[0].sampling_rate, out[0].bytes, out[0].packets),
        (512, 51_200, 512)
    );
    assert_eq!((out[1].sampling_rate, out[1].bytes), (1, 100));
}

#[test]
fn ipfix_template_withdrawal_single_and_all() {
    let mut cache = TemplateCache::new();
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    m.set(TEMPLATE_SET)
        .template(300, 0, &[ie(8, 4), ie(12, 4)])
        .template(301, 0, &[ie(8, 4), ie(12, 4)]);
    m.template(302, 0, &[ie(8, 4), ie(12, 4)]);
    m.set(OPTIONS_TEMPLATE_SET)
        .template(400, 1, &[ie(149, 4), ie(160, 8)]);
    let (_, r) = run(vec![m.finish()], &mut cache);
    assert_eq!(r[0].templates, 4);

    let mut m = IpfixMessage::new(EXPORT_SECS, 1, 1);
    m.set(TEMPLATE_SET).template(300, 0, &[]);
    m.set(300);
    m.writer().bytes(&[10, 0, 0, 1, 10, 0, 0, 2]);
    let (out, r) = run(vec![m.finish()], &mut cache);
    assert_eq!((r[0].withdrawals, r[0].buffered, out.len()), (1, 1, 0));

    // Withdrawing id 2 in a template set withdraws every data template, not options ones.
    let mut m = IpfixMessage::new(EXPORT_SECS, 2, 1);
    m.set(TEMPLATE_SET).template(TEMPLATE_SET, 0, &[]);
    let (_, r) = run(vec![m.finish()], &mut cache);
    assert_eq!(r[0].withdrawals, 2);
    assert_eq!(cache.template_count(), 1);
}

#[test]
fn ipfix_template_with_only_zero_length_fields_is_refused() {
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    m.set(TEMPLATE_SET).template(300, 0, &[ie(8, 0), ie(12, 0)]);
    m.set(300);
    m.writer().bytes(&[0; 32]);
    let mut cache = TemplateCache::new();
    let (out, r) = run(vec![m.finish()], &mut cache);
    assert!(out.is_empty());
    assert_eq!(r[0].skipped.get(SkipReason::MalformedTemplate), 1);
    assert_eq!(cache.template_count(), 0);
}

#[test]
fn ipfix_options_template_without_scope_is_refused() {
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    m.set(OPTIONS_TEMPLATE_SET);
    m.writer().u16(400).u16(1).u16(0).u16(160).u16(8);
    let (_, r) = run(vec![m.finish()], &mut TemplateCache::new());
    assert_eq!(r[0].skipped.get(SkipReason::MalformedTemplate), 1);
}

#[test]
fn ipfix_huge_field_count_is_rejected_without_allocating_for_it() {
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    m.set(TEMPLATE_SET);
    m.writer().u16(300).u16(65_535).u16(8).u16(4);
    let mut cache = TemplateCache::new();
    let (_, r) = run(vec![m.finish()], &mut cache);
    assert_eq!(r[0].skipped.get(SkipReason::MalformedTemplate), 1);
    assert_eq!(cache.template_count(), 0);
}

#[test]
fn ipfix_message_length_must_fit_the_datagram() {
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1).finish();
    m[2..4].copy_from_slice(&100u16.to_be_bytes());
    let err = decode(&m, &ctx(), &mut TemplateCache::new(), &mut Vec::new()).unwrap_err();
    assert_eq!(
        err,
        DecodeError::BadHeader {
            field: "message length",
            value: 100
        }
    );
    m[2..4].copy_from_slice(&8u16.to_be_bytes());
    assert!(decode(&m, &ctx(), &mut TemplateCache::new(), &mut Vec::new()).is_err());
}

#[test]
fn ipfix_zero_length_set_and_overlong_set_are_counted() {
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    m.set(TEMPLATE_SET).template(300, 0, &[ie(8, 4), ie(12, 4)]);
    let mut bytes = m.finish();
    bytes.extend_from_slice(&[1, 44, 0, 0]);
    let len = bytes.len() as u16;
    bytes[2..4].copy_from_slice(&len.to_be_bytes());
    let (_, r) = run(vec![bytes], &mut TemplateCache::new());
    assert_eq!(
        (r[0].templates, r[0].skipped.get(SkipReason::MalformedSet)),
        (1, 1)
    );
}

#[test]
fn ipfix_records_without_addresses_are_counted_not_emitted() {
    let mut m = IpfixMessage::new(EXPORT_SECS, 0, 1);
    m.set(TEMPLATE_SET).template(300, 0, &[ie(1, 8), ie(2, 8)]);
    m.set(300);
    m.writer().u64(1).u64(1);
    let (out, r) = run(vec![m.finish()], &mut TemplateCache::new());
    assert!(out.is_empty());
    assert_eq!(r[0].skipped.get(SkipReason::RecordWithoutAddresses), 1);
}
