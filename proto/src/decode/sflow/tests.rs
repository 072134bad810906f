use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::PacketBuilder;

use super::*;
use crate::decode::CollectingSink;
use crate::encode::{self, Writer};

const AGENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 255, 0, 1));
const RECEIVED_MS: u64 = 1_793_527_200_123;

fn ctx() -> DecodeContext {
    DecodeContext {
        exporter: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        received_ms: RECEIVED_MS,
    }
}

fn tcp_frame(vlan: Option<u16>, payload_len: usize) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let payload = vec![0u8; payload_len];
    let mut out = Vec::new();
    match vlan {
        Some(id) => eth
            .single_vlan(id.try_into().unwrap())
            .ipv4([172, 16, 0, 5], [172, 16, 9, 9], 64)
            .tcp(45678, 3306, 1, 65535)
            .syn()
            .ack(1)
            .write(&mut out, &payload)
            .unwrap(),
        None => eth
            .ipv4([172, 16, 0, 5], [172, 16, 9, 9], 64)
            .tcp(45678, 3306, 1, 65535)
            .syn()
            .ack(1)
            .write(&mut out, &payload)
            .unwrap(),
    }
    out
}

fn decode_all(pkt: &[u8]) -> (CollectingSink, PacketReport) {
    let mut sink = CollectingSink::default();
    let report = decode(pkt, &ctx(), &mut sink).unwrap();
    (sink, report)
}

#[test]
fn decodes_sflow_raw_header_sample_scaled_by_rate() {
    let frame = tcp_frame(Some(42), 1400);
    let mut w = Writer::new();
    encode::sflow_header(&mut w, AGENT, 3, 77, 1000, 1);
    // Agents truncate the sampled header: 128 of the frame's bytes.
    encode::sflow_raw_header_sample(&mut w, 512, 5, 9, frame.len() as u32, &frame[..128]);
    let (sink, report) = decode_all(&w.into_bytes());
    assert_eq!(
        (report.sequence, report.observation_domain, report.flows),
        (77, 3, 1)
    );
    let f = sink.flows[0];
    assert_eq!(
        (f.src_addr, f.dst_addr),
        (
            IpAddr::V4(Ipv4Addr::new(172, 16, 0, 5)),
            IpAddr::V4(Ipv4Addr::new(172, 16, 9, 9))
        )
    );
    assert_eq!((f.src_port, f.dst_port, f.protocol), (45678, 3306, 6));
    assert_eq!(f.tcp_flags, 0x12);
    assert_eq!(f.vlan, Some(42));
    assert_eq!((f.in_if, f.out_if), (5, 9));
    assert_eq!(f.sampling_rate, 512);
    assert_eq!(f.bytes, frame.len() as u64 * 512);
    assert_eq!(f.packets, 512);
    assert_eq!((f.first_ms, f.last_ms), (RECEIVED_MS, RECEIVED_MS));
    assert_eq!(f.exporter, AGENT);
    assert_eq!(f.source, FlowSource::Sflow);
}

/// An expanded flow sample (format 3) with sampled IPv4 (format 3), extended switch, router and
/// gateway records.
fn expanded_sample(w: &mut Writer) {
    let mut recs = Writer::new();
    // Sampled IPv4: length, protocol, src, dst, sport, dport, flags, tos.
    recs.u32(3)
        .u32(32)
        .u32(1000)
        .u32(17)
        .bytes(&[192, 0, 2, 1])
        .bytes(&[192, 0, 2, 2]);
    recs.u32(5353).u32(53).u32(0).u32(0x20);
    recs.u32(1001).u32(16).u32(100).u32(0).u32(200).u32(0);
    recs.u32(1002)
        .u32(16)
        .u32(1)
        .bytes(&[192, 0, 2, 254])
        .u32(24)
        .u32(24);
    // Gateway: next hop, as, src_as, src_peer_as, 1 segment of 2 ASNs.
    recs.u32(1003)
        .u32(40)
        .u32(1)
        .bytes(&[0, 0, 0, 0])
        .u32(65000)
        .u32(65010)
        .u32(65020);
    recs.u32(1).u32(2).u32(2).u32(64500).u32(64501);
    let recs = recs.into_bytes();
    w.u32(3).u32(44 + recs.len() as u32);
    // seq, source id type+index, rate, pool, drops, input fmt+value, output fmt+value, records.
    w.u32(9)
        .u32(0)
        .u32(17)
        .u32(1024)
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(11)
        .u32(0)
        .u32(12)
        .u32(4);
    w.bytes(&recs);
}

#[test]
fn decodes_expanded_flow_sample_with_extended_data() {
    let mut w = Writer::new();
    encode::sflow_header(&mut w, AGENT, 0, 1, 1, 1);
    expanded_sample(&mut w);
    let (sink, report) = decode_all(&w.into_bytes());
    assert_eq!(report.skipped.total(), 0);
    let f = sink.flows[0];
    assert_eq!(
        (f.protocol, f.src_port, f.dst_port, f.tos),
        (17, 5353, 53, 0x20)
    );
    assert_eq!((f.in_if, f.out_if), (11, 12));
    assert_eq!(f.vlan, Some(100));
    assert_eq!(f.next_hop, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254))));
    assert_eq!((f.src_as, f.dst_as), (65010, 64501));
    assert_eq!(
        (f.bytes, f.packets, f.sampling_rate),
        (1000 * 1024, 1024, 1024)
    );
}

#[test]
fn decodes_sampled_ipv6_records_and_ipv6_agents() {
    let agent = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
    let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5);
    let dst = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 6);
    let mut w = Writer::new();
    encode::sflow_header(&mut w, IpAddr::V6(agent), 0, 1, 1, 1);
    w.u32(1).u32(32 + 8 + 56);
    w.u32(1).u32(7).u32(10).u32(0).u32(0).u32(1).u32(2).u32(1);
    w.u32(4)
        .u32(56)
        .u32(80)
        .u32(6)
        .bytes(&src.octets())
        .bytes(&dst.octets())
        .u32(1)
        .u32(22)
        .u32(0x18)
        .u32(0);
    let (sink, _) = decode_all(&w.into_bytes());
    let f = sink.flows[0];
    assert_eq!(
        (f.src_addr, f.dst_addr, f.exporter),
        (IpAddr::V6(src), IpAddr::V6(dst), IpAddr::V6(agent))
    );
    assert_eq!((f.dst_port, f.tcp_flags, f.bytes), (22, 0x18, 800));
}

#[test]
fn decodes_generic_interface_counters() {
    let mut w = Writer::new();
    encode::sflow_header(&mut w, AGENT, 0, 1, 1, 1);
    w.u32(2).u32(12 + 8 + 88);
    w.u32(5).u32(7).u32(1);
    w.u32(1).u32(88);
    w.u32(7).u32(6).u64(10_000_000_000).u32(1).u32(3);
    w.u64(123_456_789)
        .u32(1000)
        .u32(20)
        .u32(30)
        .u32(1)
        .u32(2)
        .u32(3);
    w.u64(987_654_321)
        .u32(2000)
        .u32(40)
        .u32(50)
        .u32(4)
        .u32(5)
        .u32(0);
    let (sink, report) = decode_all(&w.into_bytes());
    assert_eq!((report.counters, report.flows), (1, 0));
    let c = sink.counters[0];
    assert_eq!(
        (c.if_index, c.if_speed, c.if_status),
        (7, 10_000_000_000, 3)
    );
    assert_eq!(
        (c.in_octets, c.in_ucast_pkts, c.out_octets, c.out_ucast_pkts),
        (123_456_789, 1000, 987_654_321, 2000)
    );
    assert_eq!((c.out_discards, c.out_errors, c.exporter), (4, 5, AGENT));
}

#[test]
fn huge_sample_count_ends_with_the_datagram() {
    let frame = tcp_frame(None, 10);
    let mut w = Writer::new();
    encode::sflow_header(&mut w, AGENT, 0, 1, 1, u32::MAX);
    encode::sflow_raw_header_sample(&mut w, 1, 1, 2, frame.len() as u32, &frame);
    let (sink, report) = decode_all(&w.into_bytes());
    assert_eq!(sink.flows.len(), 1);
    assert_eq!(report.skipped.get(SkipReason::MalformedSample), 1);
}

#[test]
fn sample_length_past_the_datagram_is_counted() {
    let mut w = Writer::new();
    encode::sflow_header(&mut w, AGENT, 0, 1, 1, 1);
    w.u32(1).u32(10_000).u32(0);
    let (sink, report) = decode_all(&w.into_bytes());
    assert!(sink.flows.is_empty());
    assert_eq!(report.skipped.get(SkipReason::MalformedSample), 1);
}

#[test]
fn unknown_sample_formats_are_skipped_by_length() {
    let frame = tcp_frame(None, 10);
    let mut w = Writer::new();
    encode::sflow_header(&mut w, AGENT, 0, 1, 1, 2);
    w.u32((4413 << 12) | 5).u32(8).u64(0xdead_beef);
    encode::sflow_raw_header_sample(&mut w, 1, 1, 2, frame.len() as u32, &frame);
    let (sink, report) = decode_all(&w.into_bytes());
    assert_eq!(sink.flows.len(), 1);
    assert_eq!(report.skipped.get(SkipReason::UnknownFormat), 1);
}

#[test]
fn non_ip_headers_are_counted_not_emitted() {
    // An ARP request.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[
        0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2,
    ]);
    let mut w = Writer::new();
    encode::sflow_header(&mut w, AGENT, 0, 1, 1, 1);
    encode::sflow_raw_header_sample(&mut w, 1, 1, 2, 64, &arp);
    let (sink, report) = decode_all(&w.into_bytes());
    assert!(sink.flows.is_empty());
    assert_eq!(report.skipped.get(SkipReason::NonIpHeader), 1);
}

#[test]
fn truncated_flow_record_counts_the_sample_as_malformed() {
    let frame = tcp_frame(None, 10);
    let mut w = Writer::new();
    encode::sflow_header(&mut w, AGENT, 0, 1, 1, 1);
    encode::sflow_raw_header_sample(&mut w, 1, 1, 2, frame.len() as u32, &frame);
    let mut pkt = w.into_bytes();
    // Claim a header longer than the record holds.
    let at = 28 + 8 + 32 + 8 + 12;
    pkt[at..at + 4].copy_from_slice(&5000u32.to_be_bytes());
    let (sink, report) = decode_all(&pkt);
    assert!(sink.flows.is_empty());
    assert_eq!(report.skipped.get(SkipReason::MalformedSample), 1);
}

#[test]
fn unsupported_agent_address_type_is_a_typed_error() {
    let mut w = Writer::new();
    w.u32(5).u32(7).u32(0);
    let err = decode(&w.into_bytes(), &ctx(), &mut Vec::new()).unwrap_err();
    assert_eq!(
        err,
        DecodeError::BadHeader {
            field: "agent address",
            value: 7
        }
    );
}
