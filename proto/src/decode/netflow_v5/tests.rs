use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::encode;
use crate::record::FlowRecord;

const EXPORTER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const EXPORT_MS: u64 = 1_793_527_200_250; // 2026-11-01T10:00:00.250Z

fn ctx() -> DecodeContext {
    DecodeContext {
        exporter: EXPORTER,
        received_ms: EXPORT_MS + 5,
    }
}

fn flow(src: [u8; 4], dst: [u8; 4], first_ms: u64, last_ms: u64) -> FlowRecord {
    FlowRecord {
        src_addr: IpAddr::V4(Ipv4Addr::from(src)),
        dst_addr: IpAddr::V4(Ipv4Addr::from(dst)),
        src_port: 51000,
        dst_port: 443,
        protocol: 6,
        tcp_flags: 0x1b,
        tos: 0x28,
        bytes: 12_345,
        packets: 17,
        in_if: 3,
        out_if: 7,
        src_as: 64512,
        dst_as: 15169,
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254))),
        first_ms,
        last_ms,
        ..FlowRecord::default()
    }
}

#[test]
fn decodes_v5_records_with_absolute_times() {
    let input = [
        flow(
            [10, 0, 0, 1],
            [10, 0, 1, 1],
            EXPORT_MS - 60_000,
            EXPORT_MS - 1_000,
        ),
        flow(
            [10, 0, 0, 2],
            [8, 8, 8, 8],
            EXPORT_MS - 5_000,
            EXPORT_MS - 10,
        ),
    ];
    let pkt = encode::netflow_v5(EXPORT_MS, 3_600_000, 42, &input);
    let mut out = Vec::new();
    let report = decode(&pkt, &ctx(), &mut out).unwrap();
    assert_eq!(report.flows, 2);
    assert_eq!(report.sequence, 42);
    assert_eq!(report.export_ms, EXPORT_MS);
    assert_eq!(out.len(), 2);
    for (got, want) in out.iter().zip(&input) {
        let want = FlowRecord {
            exporter: EXPORTER,
            source: FlowSource::NetflowV5,
            ..*want
        };
        assert_eq!(*got, want);
    }
}

#[test]
fn v5_header_sampling_interval_scales_counts() {
    let input = [flow(
        [10, 0, 0, 1],
        [10, 0, 1, 1],
        EXPORT_MS - 1000,
        EXPORT_MS,
    )];
    let mut pkt = encode::netflow_v5(EXPORT_MS, 100_000, 1, &input);
    // Mode 01 (deterministic), interval 100.
    pkt[22..24].copy_from_slice(&(0x4000u16 | 100).to_be_bytes());
    let mut out = Vec::new();
    decode(&pkt, &ctx(), &mut out).unwrap();
    assert_eq!(out[0].sampling_rate, 100);
    assert_eq!(out[0].bytes, 1_234_500);
    assert_eq!(out[0].packets, 1_700);
}

#[test]
fn v5_first_after_header_uptime_is_not_a_huge_time() {
    // pmacct stamps First/Last slightly after the header's SysUptime.
    let mut pkt = encode::netflow_v5(
        EXPORT_MS,
        10_000,
        1,
        &[flow([1, 1, 1, 1], [2, 2, 2, 2], 0, 0)],
    );
    let rec = HEADER_LEN;
    pkt[rec + 24..rec + 28].copy_from_slice(&10_500u32.to_be_bytes());
    pkt[rec + 28..rec + 32].copy_from_slice(&10_700u32.to_be_bytes());
    let mut out = Vec::new();
    decode(&pkt, &ctx(), &mut out).unwrap();
    assert_eq!(out[0].first_ms, EXPORT_MS + 500);
    assert_eq!(out[0].last_ms, EXPORT_MS + 700);
}

#[test]
fn v5_uptime_wraparound_keeps_times_in_the_past() {
    let mut pkt = encode::netflow_v5(
        EXPORT_MS,
        1_000,
        1,
        &[flow([1, 1, 1, 1], [2, 2, 2, 2], 0, 0)],
    );
    let rec = HEADER_LEN;
    // First was 3 s before the uptime counter wrapped past zero.
    pkt[rec + 24..rec + 28].copy_from_slice(&(u32::MAX - 1_999).to_be_bytes());
    pkt[rec + 28..rec + 32].copy_from_slice(&500u32.to_be_bytes());
    let mut out = Vec::new();
    decode(&pkt, &ctx(), &mut out).unwrap();
    assert_eq!(out[0].first_ms, EXPORT_MS - 3_000);
    assert_eq!(out[0].last_ms, EXPORT_MS - 500);
}

#[test]
fn v5_count_beyond_the_datagram_decodes_only_what_is_there() {
    let input = [flow([1, 1, 1, 1], [2, 2, 2, 2], EXPORT_MS, EXPORT_MS); 3];
    let mut pkt = encode::netflow_v5(EXPORT_MS, 1, 1, &input);
    pkt[2..4].copy_from_slice(&30u16.to_be_bytes());
    pkt.truncate(HEADER_LEN + 2 * RECORD_LEN + 10);
    let mut out = Vec::new();
    let report = decode(&pkt, &ctx(), &mut out).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(report.skipped.get(SkipReason::TruncatedRecord), 28);
}

#[test]
fn v5_trailing_bytes_beyond_count_are_not_records() {
    let input = [flow([1, 1, 1, 1], [2, 2, 2, 2], EXPORT_MS, EXPORT_MS); 2];
    let mut pkt = encode::netflow_v5(EXPORT_MS, 1, 1, &input);
    pkt[2..4].copy_from_slice(&1u16.to_be_bytes());
    let mut out = Vec::new();
    decode(&pkt, &ctx(), &mut out).unwrap();
    assert_eq!(out.len(), 1);
}

#[test]
fn v5_truncated_header_is_a_typed_error() {
    let pkt = encode::netflow_v5(EXPORT_MS, 1, 1, &[]);
    let mut out = Vec::new();
    let err = decode(&pkt[..20], &ctx(), &mut out).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Truncated {
                offset: 20,
                what: "engine_type",
                ..
            }
        ),
        "{err}"
    );
}
