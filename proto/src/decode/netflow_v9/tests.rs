use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::decode::template::CacheLimits;
use crate::encode::{V9Packet, Writer};
use crate::record::FlowRecord;

const EXPORTER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
const UNIX_SECS: u32 = 1_793_527_200;
const UPTIME: u32 = 7_200_000;

fn ctx() -> DecodeContext {
    DecodeContext {
        exporter: EXPORTER,
        received_ms: u64::from(UNIX_SECS) * 1000,
    }
}

/// src, dst, sport, dport, proto, bytes, packets, first, last (uptime).
const FIELDS: [(u16, u16); 9] = [
    (8, 4),
    (12, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (1, 4),
    (2, 4),
    (22, 4),
    (21, 4),
];

fn record(w: &mut Writer, src: [u8; 4], dst: [u8; 4], bytes: u32, first: u32, last: u32) {
    w.bytes(&src)
        .bytes(&dst)
        .u16(40000)
        .u16(5432)
        .u8(6)
        .u32(bytes)
        .u32(3)
        .u32(first)
        .u32(last);
}

fn template_packet(seq: u32) -> V9Packet {
    let mut p = V9Packet::new(1, UPTIME, UNIX_SECS, seq, 7);
    p.set(0).template(300, &FIELDS);
    p
}

fn decode_all(pkts: &[Vec<u8>], cache: &mut TemplateCache) -> (Vec<FlowRecord>, Vec<PacketReport>) {
    let mut out = Vec::new();
    let reports = pkts
        .iter()
        .map(|p| decode(p, &ctx(), cache, &mut out).unwrap())
        .collect();
    (out, reports)
}

#[test]
fn decodes_v9_template_and_data_in_one_packet() {
    let mut p = template_packet(1);
    p.set(300);
    record(
        p.writer(),
        [10, 1, 0, 1],
        [10, 2, 0, 1],
        900,
        UPTIME - 30_000,
        UPTIME - 2_000,
    );
    record(
        p.writer(),
        [10, 1, 0, 2],
        [10, 2, 0, 1],
        100,
        UPTIME - 1_000,
        UPTIME,
    );
    let mut cache = TemplateCache::new();
    let (out, reports) = decode_all(&[p.finish()], &mut cache);
    assert_eq!(reports[0].templates, 1);
    assert_eq!(out.len(), 2);
    let base = u64::from(UNIX_SECS) * 1000;
    assert_eq!(out[0].src_addr, IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)));
    assert_eq!(out[0].dst_port, 5432);
    assert_eq!(out[0].bytes, 900);
    assert_eq!(out[0].packets, 3);
    assert_eq!(out[0].first_ms, base - 30_000);
    assert_eq!(out[0].last_ms, base - 2_000);
    assert_eq!(out[0].observation_domain, 7);
    assert_eq!(out[0].source, FlowSource::NetflowV9);
    assert_eq!(out[1].last_ms, base);
}

#[test]
fn decodes_v9_data_that_arrives_before_its_template() {
    let mut data = V9Packet::new(1, UPTIME, UNIX_SECS, 1, 7);
    data.set(300);
    record(
        data.writer(),
        [10, 1, 0, 1],
        [10, 2, 0, 1],
        900,
        UPTIME - 30_000,
        UPTIME - 2_000,
    );
    // The template arrives 10 s later, under a later header clock.
    let later = V9Packet::new(1, UPTIME + 10_000, UNIX_SECS + 10, 2, 7);
    let mut later = later;
    later.set(0).template(300, &FIELDS);
    let mut cache = TemplateCache::new();
    let (out, reports) = decode_all(&[data.finish(), later.finish()], &mut cache);
    assert_eq!(reports[0].flows, 0);
    assert_eq!(reports[0].buffered, 1);
    assert_eq!(reports[1].flows, 1);
    assert_eq!(out.len(), 1);
    // Times come from the header the data arrived with, not the template's.
    assert_eq!(out[0].first_ms, u64::from(UNIX_SECS) * 1000 - 30_000);
    assert_eq!(cache.pending_sets(), 0);
}

#[test]
fn v9_pending_buffer_is_bounded() {
    let limits = CacheLimits {
        max_pending_sets: 4,
        ..CacheLimits::default()
    };
    let mut cache = TemplateCache::with_limits(limits);
    let mut reports = Vec::new();
    for i in 0..10u32 {
        let mut p = V9Packet::new(1, UPTIME, UNIX_SECS, i, 7);
        p.set(400 + i as u16);
        record(p.writer(), [10, 0, 0, 1], [10, 0, 0, 2], 1, 0, 0);
        reports.push(decode(&p.finish(), &ctx(), &mut cache, &mut Vec::new()).unwrap());
    }
    assert_eq!(cache.pending_sets(), 4);
    let dropped: u32 = reports
        .iter()
        .map(|r| r.skipped.get(SkipReason::PendingOverflow))
        .sum();
    assert_eq!(dropped, 6);
}

#[test]
fn v9_template_refresh_changes_the_layout() {
    let mut cache = TemplateCache::new();
    decode(
        &template_packet(1).finish(),
        &ctx(),
        &mut cache,
        &mut Vec::new(),
    )
    .unwrap();
    // Same id, now IPv6 addresses first.
    let mut p = V9Packet::new(1, UPTIME, UNIX_SECS, 2, 7);
    p.set(0)
        .template(300, &[(27, 16), (28, 16), (4, 1), (1, 4), (2, 4)]);
    p.set(300);
    let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let dst = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    p.writer()
        .bytes(&src.octets())
        .bytes(&dst.octets())
        .u8(17)
        .u32(64)
        .u32(1);
    let mut out = Vec::new();
    decode(&p.finish(), &ctx(), &mut cache, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].src_addr, IpAddr::V6(src));
    assert_eq!(out[0].protocol, 17);
    // No times in the template: the export time stands for both.
    assert_eq!(out[0].first_ms, u64::from(UNIX_SECS) * 1000);
}

#[test]
fn v9_withdrawn_template_stops_decoding_its_data() {
    let mut cache = TemplateCache::new();
    decode(
        &template_packet(1).finish(),
        &ctx(),
        &mut cache,
        &mut Vec::new(),
    )
    .unwrap();
    let mut p = V9Packet::new(1, UPTIME, UNIX_SECS, 2, 7);
    p.set(0).template(300, &[]);
    p.set(300);
    record(p.writer(), [10, 0, 0, 1], [10, 0, 0, 2], 1, 0, 0);
    let mut out = Vec::new();
    let report = decode(&p.finish(), &ctx(), &mut cache, &mut out).unwrap();
    assert_eq!(report.withdrawals, 1);
    assert!(out.is_empty());
    assert_eq!(report.buffered, 1);
}

#[test]
fn v9_options_data_sets_the_sampling_rate() {
    let mut cache = TemplateCache::new();
    let mut p = V9Packet::new(3, UPTIME, UNIX_SECS, 1, 7);
    // Scope: system (type 1, length 4); options: SAMPLING_INTERVAL (34), SAMPLING_ALGORITHM (35).
    p.set(1)
        .options_template(257, &[(1, 4)], &[(34, 4), (35, 1)]);
    p.set(257);
    p.writer().u32(0).u32(100).u8(2).bytes(&[0, 0, 0]);
    p.set(0).template(300, &FIELDS);
    p.set(300);
    record(
        p.writer(),
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        1500,
        UPTIME,
        UPTIME,
    );
    let mut out = Vec::new();
    decode(&p.finish(), &ctx(), &mut cache, &mut out).unwrap();
    assert_eq!(out[0].sampling_rate, 100);
    assert_eq!(out[0].bytes, 150_000);
    assert_eq!(out[0].packets, 300);
}

#[test]
fn v9_sampler_ids_pick_their_own_rate() {
    let mut cache = TemplateCache::new();
    let mut p = V9Packet::new(4, UPTIME, UNIX_SECS, 1, 7);
    // Scope: FLOW_SAMPLER_ID as the option; FLOW_SAMPLER_RANDOM_INTERVAL (50).
    p.set(1)
        .options_template(258, &[(1, 4)], &[(48, 1), (50, 4)]);
    p.set(258);
    p.writer().u32(0).u8(1).u32(10).u32(0).u8(2).u32(1000);
    let mut fields = FIELDS.to_vec();
    fields.push((48, 1));
    p.set(0).template(301, &fields);
    p.set(301);
    record(p.writer(), [10, 0, 0, 1], [10, 0, 0, 2], 10, UPTIME, UPTIME);
    p.writer().u8(2);
    record(p.writer(), [10, 0, 0, 1], [10, 0, 0, 2], 10, UPTIME, UPTIME);
    p.writer().u8(1);
    let mut out = Vec::new();
    decode(&p.finish(), &ctx(), &mut cache, &mut out).unwrap();
    assert_eq!(
        out.iter().map(|r| r.sampling_rate).collect::<Vec<_>>(),
        vec![1000, 10]
    );
}

#[test]
fn v9_templates_are_scoped_by_exporter_and_source_id() {
    let mut cache = TemplateCache::new();
    decode(
        &template_packet(1).finish(),
        &ctx(),
        &mut cache,
        &mut Vec::new(),
    )
    .unwrap();
    // Same template id from another source id of the same exporter: unknown there.
    let mut p = V9Packet::new(1, UPTIME, UNIX_SECS, 1, 8);
    p.set(300);
    record(p.writer(), [10, 0, 0, 1], [10, 0, 0, 2], 1, 0, 0);
    let pkt = p.finish();
    let report = decode(&pkt, &ctx(), &mut cache, &mut Vec::new()).unwrap();
    assert_eq!(report.buffered, 1);
    // And from another exporter address with the same source id.
    let other = DecodeContext {
        exporter: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        ..ctx()
    };
    let mut p = V9Packet::new(1, UPTIME, UNIX_SECS, 1, 7);
    p.set(300);
    record(p.writer(), [10, 0, 0, 1], [10, 0, 0, 2], 1, 0, 0);
    let report = decode(&p.finish(), &other, &mut cache, &mut Vec::new()).unwrap();
    assert_eq!(report.flows, 0);
}

#[test]
fn v9_template_cache_survives_serialisation() {
    let mut cache = TemplateCache::new();
    decode(
        &template_packet(1).finish(),
        &ctx(),
        &mut cache,
        &mut Vec::new(),
    )
    .unwrap();
    let json = serde_json::to_string(&cache).unwrap();
    let mut restored: TemplateCache = serde_json::from_str(&json).unwrap();
    assert_eq!(restored.template_count(), 1);
    let mut p = V9Packet::new(1, UPTIME, UNIX_SECS, 2, 7);
    p.set(300);
    record(p.writer(), [10, 0, 0, 1], [10, 0, 0, 2], 77, UPTIME, UPTIME);
    let mut out = Vec::new();
    decode(&p.finish(), &ctx(), &mut restored, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].bytes, 77);
}

#[test]
fn v9_template_with_all_zero_length_fields_is_refused() {
    let mut cache = TemplateCache::new();
    let mut p = V9Packet::new(1, UPTIME, UNIX_SECS, 1, 7);
    p.set(0).template(300, &[(8, 0), (12, 0), (1, 0)]);
    p.set(300);
    p.writer().bytes(&[0; 64]);
    let mut out = Vec::new();
    let report = decode(&p.finish(), &ctx(), &mut cache, &mut out).unwrap();
    assert_eq!(report.skipped.get(SkipReason::MalformedTemplate), 1);
    assert_eq!(cache.template_count(), 0);
    assert!(out.is_empty());
}

#[test]
fn v9_zero_length_set_stops_the_packet_without_looping() {
    let mut pkt = template_packet(1).finish();
    pkt.extend_from_slice(&[1, 44, 0, 0, 1, 2, 3, 4]); // set 300, length 0
    let mut cache = TemplateCache::new();
    let report = decode(&pkt, &ctx(), &mut cache, &mut Vec::new()).unwrap();
    assert_eq!(report.templates, 1);
    assert_eq!(report.skipped.get(SkipReason::MalformedSet), 1);
}

#[test]
fn v9_set_length_past_the_packet_end_is_counted() {
    let mut pkt = template_packet(1).finish();
    pkt.extend_from_slice(&[1, 44, 0xff, 0xf0, 1, 2, 3, 4]);
    let report = decode(&pkt, &ctx(), &mut TemplateCache::new(), &mut Vec::new()).unwrap();
    assert_eq!(report.skipped.get(SkipReason::MalformedSet), 1);
}

#[test]
fn v9_header_count_is_not_trusted() {
    let mut p = V9Packet::new(60_000, UPTIME, UNIX_SECS, 1, 7);
    p.set(0).template(300, &FIELDS);
    p.set(300);
    record(p.writer(), [10, 0, 0, 1], [10, 0, 0, 2], 1, 0, 0);
    let (out, reports) = decode_all(&[p.finish()], &mut TemplateCache::new());
    assert_eq!(out.len(), 1);
    assert_eq!(reports[0].header_count, 60_000);
}

#[test]
fn v9_padding_after_records_is_not_a_record() {
    let mut p = template_packet(1);
    p.set(300);
    record(p.writer(), [10, 0, 0, 1], [10, 0, 0, 2], 1, 0, 0);
    p.writer().bytes(&[0, 0, 0]);
    let (out, reports) = decode_all(&[p.finish()], &mut TemplateCache::new());
    assert_eq!(out.len(), 1);
    assert_eq!(reports[0].skipped.total(), 0);
}

#[test]
fn v9_reserved_set_ids_are_counted_and_skipped() {
    let mut p = template_packet(1);
    p.set(77).writer().u32(0);
    p.set(300);
    record(p.writer(), [10, 0, 0, 1], [10, 0, 0, 2], 1, 0, 0);
    let (out, reports) = decode_all(&[p.finish()], &mut TemplateCache::new());
    assert_eq!(out.len(), 1);
    assert_eq!(reports[0].skipped.get(SkipReason::ReservedSetId), 1);
}

#[test]
fn v9_cache_changes_count_new_and_changed_state_not_repeats() {
    let mut cache = TemplateCache::new();
    let run = |p: V9Packet, cache: &mut TemplateCache| {
        decode(&p.finish(), &ctx(), cache, &mut Vec::new()).unwrap();
        cache.changes()
    };
    assert_eq!(run(template_packet(1), &mut cache), 1, "a new template");
    // Exporters repeat their templates every few packets: nothing to save again.
    assert_eq!(
        run(template_packet(2), &mut cache),
        1,
        "the same template again"
    );
    let mut changed = V9Packet::new(1, UPTIME, UNIX_SECS, 3, 7);
    changed.set(0).template(300, &[(8, 4), (12, 4), (4, 1)]);
    assert_eq!(
        run(changed, &mut cache),
        2,
        "the same id with another layout"
    );
    let options = |seq: u32, rate: u32| {
        let mut p = V9Packet::new(1, UPTIME, UNIX_SECS, seq, 7);
        p.set(1)
            .options_template(257, &[(1, 4)], &[(34, 4), (35, 1)]);
        p.set(257);
        p.writer().u32(0).u32(rate).u8(2).bytes(&[0, 0, 0]);
        p
    };
    assert_eq!(
        run(options(4, 100), &mut cache),
        4,
        "an options template and a rate"
    );
    assert_eq!(run(options(5, 100), &mut cache), 4, "both repeated");
    assert_eq!(run(options(6, 200), &mut cache), 5, "a new rate");
    let mut withdraw = V9Packet::new(1, UPTIME, UNIX_SECS, 7, 7);
    withdraw.set(0).template(300, &[]);
    assert_eq!(run(withdraw, &mut cache), 6, "a withdrawal");
}
