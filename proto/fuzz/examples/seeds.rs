//! Writes the seed corpora for the fuzz targets: valid packets built with `proto::encode` (and a
//! few by hand where no builder exists), plus the UDP payloads of the flow captures in
//! `tests/data/*.pcap` and sFlow samples wrapped around the frames of `tests/data/traffic.pcap`.
//!
//! `cargo run --example seeds [-- [-v] <corpus dir> [<pcap dir>]]`, from `proto/fuzz`; the defaults
//! are `corpus/` and `../../tests/data/`. Each target's seeds go to `<corpus dir>/<target>/`.
//! NetFlow v9 and IPFIX seeds are datagram streams joined with `DATAGRAM_SEPARATOR`.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use flowlens_fuzz::{join_datagrams, MAX_DATAGRAMS};
use proto::decode::fields::{FieldSpec, REVERSE_PEN, VARIABLE_LENGTH};
use proto::decode::{decode_datagram, CollectingSink, TemplateCache};
use proto::encode::{self, IpfixMessage, V9Packet, Writer};
use proto::FlowRecord;

const EXPORT_MS: u64 = 1_793_527_200_000;
const EXPORT_SECS: u32 = 1_793_527_200;
const UPTIME: u32 = 3_600_000;

/// Seeds for one target: (file name, bytes).
type Seeds = Vec<(String, Vec<u8>)>;

/// A seed with the target it is for: (target, file name, bytes).
type TargetSeed = (&'static str, String, Vec<u8>);

fn flow(i: u8) -> FlowRecord {
    FlowRecord {
        src_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)),
        dst_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 1, i)),
        src_port: 40_000 + u16::from(i),
        dst_port: 443,
        protocol: 6,
        tcp_flags: 0x1b,
        tos: 0x20,
        bytes: 1500 * u64::from(i),
        packets: u64::from(i),
        in_if: 1,
        out_if: 2,
        src_as: 64_512,
        dst_as: 64_513,
        next_hop: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254))),
        first_ms: EXPORT_MS - 5000,
        last_ms: EXPORT_MS - 1000,
        ..FlowRecord::default()
    }
}

fn flows(n: u8) -> Vec<FlowRecord> {
    (1..=n).map(flow).collect()
}

fn spec(id: u16, len: u16) -> FieldSpec {
    FieldSpec {
        id,
        enterprise: 0,
        len,
    }
}

fn reverse(id: u16, len: u16) -> FieldSpec {
    FieldSpec {
        id,
        enterprise: REVERSE_PEN,
        len,
    }
}

fn v4(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => [0; 4],
    }
}

// ---------------------------------------------------------------- NetFlow v5

fn netflow_v5_seeds() -> Seeds {
    let mut seeds = vec![
        (
            "enc-one".to_string(),
            encode::netflow_v5(EXPORT_MS, UPTIME, 1, &flows(1)),
        ),
        (
            "enc-thirty".to_string(),
            encode::netflow_v5(EXPORT_MS, UPTIME, 7, &flows(30)),
        ),
    ];
    // Sampling interval (mode 01, 1 in 100) in the last two header bytes.
    let mut sampled = encode::netflow_v5(EXPORT_MS, UPTIME, 37, &flows(3));
    sampled[22..24].copy_from_slice(&(0x4000u16 | 100).to_be_bytes());
    seeds.push(("enc-sampled".to_string(), sampled));
    // A header that claims more records than the datagram holds.
    let mut short = encode::netflow_v5(EXPORT_MS, UPTIME, 40, &flows(2));
    short[2..4].copy_from_slice(&5u16.to_be_bytes());
    seeds.push(("enc-count-beyond-datagram".to_string(), short));
    seeds
}

// ---------------------------------------------------------------- NetFlow v9

const V9_FIELDS: [(u16, u16); 13] = [
    (8, 4),
    (12, 4),
    (15, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (6, 1),
    (5, 1),
    (1, 4),
    (2, 4),
    (10, 2),
    (22, 4),
    (21, 4),
];

fn v9_record(w: &mut Writer, r: &FlowRecord, sampler: Option<u8>) {
    let up = |t: u64| UPTIME.wrapping_sub((EXPORT_MS - t) as u32);
    w.bytes(&v4(r.src_addr))
        .bytes(&v4(r.dst_addr))
        .bytes(&v4(r.next_hop.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))));
    w.u16(r.src_port).u16(r.dst_port);
    w.u8(r.protocol).u8(r.tcp_flags).u8(r.tos);
    w.u32(r.bytes as u32)
        .u32(r.packets as u32)
        .u16(r.in_if as u16);
    w.u32(up(r.first_ms)).u32(up(r.last_ms));
    if let Some(s) = sampler {
        w.u8(s);
    }
}

fn v9_template_packet(seq: u32, id: u16, fields: &[(u16, u16)]) -> Vec<u8> {
    let mut p = V9Packet::new(1, UPTIME, EXPORT_SECS, seq, 0);
    p.set(0).template(id, fields);
    p.finish()
}

fn v9_data_packet(seq: u32, id: u16, n: u8) -> Vec<u8> {
    let mut p = V9Packet::new(u16::from(n), UPTIME, EXPORT_SECS, seq, 0);
    p.set(id);
    for f in flows(n) {
        v9_record(p.writer(), &f, None);
    }
    p.finish()
}

fn netflow_v9_seeds() -> Seeds {
    let mut seeds = Seeds::new();

    let mut p = V9Packet::new(4, UPTIME, EXPORT_SECS, 1, 0);
    p.set(0).template(256, &V9_FIELDS);
    p.set(256);
    for f in flows(3) {
        v9_record(p.writer(), &f, None);
    }
    seeds.push((
        "enc-template-and-data".into(),
        join_datagrams(&[p.finish()]),
    ));

    seeds.push((
        "enc-data-before-template".into(),
        join_datagrams(&[
            v9_data_packet(1, 256, 4),
            v9_data_packet(2, 257, 2),
            v9_template_packet(3, 256, &V9_FIELDS),
            v9_data_packet(4, 256, 1),
        ]),
    ));

    // Options template: scope system (1), sampling interval (34), sampler id (48), algorithm
    // (35); then a data template naming its sampler.
    let mut opts = V9Packet::new(3, UPTIME, EXPORT_SECS, 1, 7);
    opts.set(1)
        .options_template(300, &[(1, 4)], &[(48, 1), (34, 4), (35, 1)]);
    opts.set(300);
    opts.writer().u32(0).u8(3).u32(512).u8(2);
    opts.set(1).options_template(301, &[(1, 4)], &[(34, 4)]);
    opts.set(301);
    opts.writer().u32(0).u32(64);
    let mut sampled_fields = V9_FIELDS.to_vec();
    sampled_fields.push((48, 1));
    let mut data = V9Packet::new(3, UPTIME, EXPORT_SECS, 2, 7);
    data.set(0).template(260, &sampled_fields);
    data.set(260);
    for (i, f) in flows(3).iter().enumerate() {
        v9_record(data.writer(), f, Some(if i == 0 { 9 } else { 3 }));
    }
    seeds.push((
        "enc-options-sampling".into(),
        join_datagrams(&[opts.finish(), data.finish()]),
    ));

    // Template, data, withdrawal (field count 0), data that now waits, the template again.
    let mut withdraw = V9Packet::new(1, UPTIME, EXPORT_SECS, 3, 0);
    withdraw.set(0).template(256, &[]);
    seeds.push((
        "enc-withdraw-mid-stream".into(),
        join_datagrams(&[
            v9_template_packet(1, 256, &V9_FIELDS),
            v9_data_packet(2, 256, 2),
            withdraw.finish(),
            v9_data_packet(4, 256, 2),
            v9_template_packet(5, 256, &V9_FIELDS),
        ]),
    ));

    // IPv6 addresses, several templates in one flowset, padding at the end of the flowset.
    let mut v6 = V9Packet::new(3, UPTIME, EXPORT_SECS, 9, 1);
    v6.set(0)
        .template(
            270,
            &[(27, 16), (28, 16), (7, 2), (11, 2), (4, 1), (1, 8), (2, 8)],
        )
        .template(271, &[(8, 4), (12, 4), (32, 2), (4, 1), (1, 4), (2, 4)]);
    v6.writer().u16(0).u16(0);
    v6.set(270);
    v6.writer()
        .bytes(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets())
        .bytes(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets())
        .u16(5353)
        .u16(53)
        .u8(17)
        .u64(300)
        .u64(2);
    v6.writer().u16(0); // padding to a 4-byte boundary
    v6.set(271);
    v6.writer()
        .bytes(&[10, 0, 0, 1, 10, 0, 0, 2])
        .u16(0x0800)
        .u8(1)
        .u32(84)
        .u32(1);
    seeds.push((
        "enc-ipv6-icmp-padding".into(),
        join_datagrams(&[v6.finish()]),
    ));
    seeds
}

// ---------------------------------------------------------------- IPFIX

fn ipfix_standard_message(seq: u32, domain: u32, template: bool, n: u8) -> Vec<u8> {
    let mut m = IpfixMessage::new(EXPORT_SECS, seq, domain);
    if template {
        m.set(2).template(256, 0, &encode::standard_ipv4_template());
    }
    if n > 0 {
        m.set(256);
        for f in flows(n) {
            encode::standard_ipv4_record(m.writer(), &f);
        }
    }
    m.finish()
}

fn ipfix_seeds() -> Seeds {
    let mut seeds = Seeds::new();
    seeds.push((
        "enc-template-and-data".into(),
        join_datagrams(&[ipfix_standard_message(1, 1, true, 5)]),
    ));
    seeds.push((
        "enc-data-before-template".into(),
        join_datagrams(&[
            ipfix_standard_message(1, 1, false, 3),
            ipfix_standard_message(4, 2, false, 1),
            ipfix_standard_message(5, 1, true, 2),
        ]),
    ));

    // Options: sampling (interval, space; selector id) and systemInitTimeMilliseconds, then a
    // template with uptime-based times and a selector id.
    let mut opts = IpfixMessage::new(EXPORT_SECS, 1, 3);
    opts.set(3)
        .template(
            400,
            1,
            &[spec(149, 4), spec(302, 2), spec(305, 4), spec(306, 4)],
        )
        .template(401, 1, &[spec(149, 4), spec(160, 8)])
        .template(402, 1, &[spec(149, 4), spec(309, 4), spec(310, 4)]);
    opts.set(400);
    opts.writer().u32(3).u16(1).u32(1).u32(99);
    opts.set(401);
    opts.writer().u32(3).u64(EXPORT_MS - u64::from(UPTIME));
    opts.set(402);
    opts.writer().u32(3).u32(1).u32(1000);
    let mut data = IpfixMessage::new(EXPORT_SECS, 2, 3);
    data.set(2).template(
        410,
        0,
        &[
            spec(8, 4),
            spec(12, 4),
            spec(4, 1),
            spec(1, 4),
            spec(2, 4),
            spec(22, 4),
            spec(21, 4),
            spec(302, 2),
        ],
    );
    data.set(410);
    data.writer()
        .bytes(&[10, 1, 0, 1, 10, 1, 0, 2])
        .u8(17)
        .u32(1200)
        .u32(3)
        .u32(UPTIME - 4000)
        .u32(UPTIME - 100)
        .u16(1);
    seeds.push((
        "enc-options-sampling-init-time".into(),
        join_datagrams(&[opts.finish(), data.finish()]),
    ));

    // Sampling fields in 8 bytes (reduced-size encoding allows 1 to 8): interval and space at
    // the extremes once overflowed the rate computation.
    let mut wide = IpfixMessage::new(EXPORT_SECS, 1, 6);
    wide.set(2).template(
        440,
        0,
        &[
            spec(8, 4),
            spec(12, 4),
            spec(305, 8),
            spec(306, 8),
            spec(1, 8),
        ],
    );
    wide.set(440);
    wide.writer()
        .bytes(&[10, 5, 0, 1, 10, 5, 0, 2])
        .u64(u64::MAX)
        .u64(1)
        .u64(1500);
    wide.writer()
        .bytes(&[10, 5, 0, 3, 10, 5, 0, 4])
        .u64(100)
        .u64(u64::MAX)
        .u64(1500);
    seeds.push((
        "enc-sampling-8-byte-fields".into(),
        join_datagrams(&[wide.finish()]),
    ));

    // RFC 5103 biflow: reverse IEs under PEN 29305, with reverse times in two forms.
    let mut bi = IpfixMessage::new(EXPORT_SECS, 1, 4);
    bi.set(2).template(
        420,
        0,
        &[
            spec(8, 4),
            spec(12, 4),
            spec(7, 2),
            spec(11, 2),
            spec(4, 1),
            spec(6, 1),
            spec(1, 8),
            spec(2, 8),
            spec(152, 8),
            spec(153, 8),
            reverse(1, 8),
            reverse(2, 8),
            reverse(6, 1),
            reverse(152, 8),
            reverse(159, 4),
        ],
    );
    bi.set(420);
    for (i, f) in flows(3).iter().enumerate() {
        bi.writer().bytes(&v4(f.src_addr)).bytes(&v4(f.dst_addr));
        bi.writer().u16(f.src_port).u16(f.dst_port).u8(6).u8(0x1b);
        bi.writer()
            .u64(f.bytes)
            .u64(f.packets)
            .u64(f.first_ms)
            .u64(f.last_ms);
        let rev = if i == 2 { 0 } else { 4000 }; // the last one has no reverse traffic
        bi.writer()
            .u64(rev)
            .u64(rev / 1000)
            .u8(0x12)
            .u64(f.first_ms + 3)
            .u32(900);
    }
    seeds.push((
        "enc-biflow-reverse-pen".into(),
        join_datagrams(&[bi.finish()]),
    ));

    // Variable-length fields (interfaceName 82, applicationName 96): short and long form, and
    // an enterprise field FlowLens skips.
    let mut var = IpfixMessage::new(EXPORT_SECS, 1, 5);
    var.set(2).template(
        430,
        0,
        &[
            spec(8, 4),
            spec(12, 4),
            spec(82, VARIABLE_LENGTH),
            FieldSpec {
                id: 100,
                enterprise: 9,
                len: 4,
            },
            spec(96, VARIABLE_LENGTH),
            spec(1, 4),
        ],
    );
    var.set(430);
    var.writer().bytes(&[10, 2, 0, 1, 10, 2, 0, 2]);
    var.writer().u8(4).bytes(b"eth0").u32(7).u8(0).u32(64);
    var.writer().bytes(&[10, 2, 0, 3, 10, 2, 0, 4]);
    var.writer().u8(255).u16(300).bytes(&[b'x'; 300]);
    var.writer().u32(7).u8(3).bytes(b"dns").u32(128);
    seeds.push((
        "enc-variable-length".into(),
        join_datagrams(&[var.finish()]),
    ));

    // Withdrawals: one template, then all data templates (template id = set id 2).
    let mut w1 = IpfixMessage::new(EXPORT_SECS, 9, 1);
    w1.set(2).template(256, 0, &[]);
    let mut w2 = IpfixMessage::new(EXPORT_SECS, 10, 1);
    w2.set(2).template(2, 0, &[]);
    let mut w3 = IpfixMessage::new(EXPORT_SECS, 11, 3);
    w3.set(3).template(3, 0, &[]);
    seeds.push((
        "enc-withdraw-mid-stream".into(),
        join_datagrams(&[
            ipfix_standard_message(1, 1, true, 2),
            w1.finish(),
            ipfix_standard_message(3, 1, false, 2),
            ipfix_standard_message(5, 1, true, 1),
            w2.finish(),
            w3.finish(),
            ipfix_standard_message(6, 1, false, 1),
        ]),
    ));
    seeds
}

// ---------------------------------------------------------------- sFlow

fn ethernet_ipv4_tcp(vlan: Option<u16>) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(&[0x02, 0, 0, 0, 0, 1])
        .bytes(&[0x02, 0, 0, 0, 0, 2]);
    if let Some(v) = vlan {
        w.u16(0x8100).u16(v);
    }
    w.u16(0x0800);
    w.u8(0x45)
        .u8(0x28)
        .u16(1500)
        .u16(1)
        .u16(0x4000)
        .u8(64)
        .u8(6)
        .u16(0);
    w.bytes(&[10, 3, 0, 1]).bytes(&[10, 3, 0, 2]);
    w.u16(51_000)
        .u16(443)
        .u32(1)
        .u32(0)
        .u8(0x50)
        .u8(0x18)
        .u16(65_535)
        .u16(0)
        .u16(0);
    w.bytes(&[0xab; 24]);
    w.into_bytes()
}

fn ethernet_ipv6_udp() -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(&[0x02, 0, 0, 0, 0, 1])
        .bytes(&[0x02, 0, 0, 0, 0, 2])
        .u16(0x86dd);
    w.u32(0x6000_0000).u16(40).u8(17).u8(64);
    w.bytes(&Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1).octets());
    w.bytes(&Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1).octets());
    w.u16(5353).u16(53).u16(40).u16(0);
    w.into_bytes()
}

/// A counter sample with one generic interface counters record.
fn counter_sample(w: &mut Writer, if_index: u32) {
    w.u32(2).u32(12 + 8 + 88);
    w.u32(17).u32(if_index).u32(1);
    w.u32(1).u32(88);
    w.u32(if_index).u32(6).u64(10_000_000_000).u32(1).u32(3);
    w.u64(123_456_789);
    for v in [1000, 10, 5, 0, 0, 0] {
        w.u32(v);
    }
    w.u64(987_654_321);
    for v in [2000, 20, 6, 1, 2, 0] {
        w.u32(v);
    }
}

/// An expanded flow sample with a sampled IPv4 record and extended switch, router and gateway
/// records.
fn expanded_flow_sample(w: &mut Writer) {
    let records = 8 + 32 + 8 + 16 + 8 + 16 + 8 + 48;
    w.u32(3).u32(44 + records);
    w.u32(5).u32(0).u32(3).u32(256).u32(10_000).u32(0);
    w.u32(0).u32(3).u32(0).u32(4).u32(4);
    w.u32(3).u32(32);
    w.u32(1400)
        .u32(17)
        .bytes(&[10, 4, 0, 1])
        .bytes(&[10, 4, 0, 2]);
    w.u32(123).u32(123).u32(0).u32(0x10);
    w.u32(1001).u32(16).u32(100).u32(0).u32(100).u32(0);
    w.u32(1002)
        .u32(16)
        .u32(1)
        .bytes(&[10, 4, 0, 254])
        .u32(24)
        .u32(24);
    w.u32(1003).u32(48).u32(1).bytes(&[10, 4, 0, 253]);
    w.u32(64_500).u32(64_501).u32(64_502);
    w.u32(1)
        .u32(2)
        .u32(2)
        .u32(64_502)
        .u32(64_503)
        .u32(0)
        .u32(100);
}

fn sflow_seeds(traffic_frames: &[Vec<u8>]) -> Seeds {
    let agent = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    let mut seeds = Seeds::new();

    let mut w = Writer::new();
    encode::sflow_header(&mut w, agent, 0, 1, UPTIME, 3);
    encode::sflow_raw_header_sample(&mut w, 512, 3, 4, 1514, &ethernet_ipv4_tcp(None));
    encode::sflow_raw_header_sample(&mut w, 512, 3, 4, 1518, &ethernet_ipv4_tcp(Some(42)));
    counter_sample(&mut w, 3);
    seeds.push(("enc-raw-headers-and-counters".into(), w.into_bytes()));

    let mut w = Writer::new();
    let agent6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 10));
    encode::sflow_header(&mut w, agent6, 1, 2, UPTIME, 2);
    encode::sflow_raw_header_sample(&mut w, 1, 5, 6, 94, &ethernet_ipv6_udp());
    expanded_flow_sample(&mut w);
    seeds.push(("enc-ipv6-agent-expanded-sample".into(), w.into_bytes()));

    for (i, chunk) in traffic_frames.chunks(6).take(12).enumerate() {
        let mut w = Writer::new();
        encode::sflow_header(&mut w, agent, 0, 100 + i as u32, UPTIME, chunk.len() as u32);
        for frame in chunk {
            let header = &frame[..frame.len().min(128)];
            encode::sflow_raw_header_sample(&mut w, 64, 1, 2, frame.len() as u32, header);
        }
        seeds.push((format!("traffic-frames-{i:02}"), w.into_bytes()));
    }
    seeds
}

// ---------------------------------------------------------------- pcap

/// Frames of a little-endian Ethernet pcap (µs or ns timestamps).
fn pcap_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let magic = bytes
        .get(..4)
        .map(|m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
    let link = bytes
        .get(20..24)
        .map(|l| u32::from_le_bytes([l[0], l[1], l[2], l[3]]));
    if !matches!(magic, Some(0xa1b2_c3d4 | 0xa1b2_3c4d)) || link != Some(1) {
        return frames;
    }
    let mut at = 24;
    while let Some(h) = bytes.get(at..at + 16) {
        let incl = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let Some(frame) = bytes.get(at + 16..at + 16 + incl) else {
            break;
        };
        frames.push(frame.to_vec());
        at += 16 + incl;
    }
    frames
}

/// The UDP payload of an Ethernet frame (IPv4 or IPv6 without extension headers, optional
/// 802.1Q tag).
fn udp_payload(frame: &[u8]) -> Option<&[u8]> {
    let mut at = 12;
    let mut ethertype = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
    if ethertype == 0x8100 {
        at += 4;
        ethertype = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
    }
    let ip = frame.get(at + 2..)?;
    let udp = match ethertype {
        0x0800 if *ip.get(9)? == 17 => ip.get(usize::from(ip.first()? & 0x0f) * 4..)?,
        0x86dd if *ip.get(6)? == 17 => ip.get(40..)?,
        _ => return None,
    };
    let len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    udp.get(8..len.max(8))
}

/// Which target a flow datagram belongs to, by its version field.
fn target_of(payload: &[u8]) -> Option<&'static str> {
    match payload.get(..4)? {
        [0, 5, _, _] => Some("fuzz_netflow_v5"),
        [0, 9, _, _] => Some("fuzz_netflow_v9"),
        [0, 10, _, _] => Some("fuzz_ipfix"),
        [0, 0, 0, 5] => Some("fuzz_sflow"),
        _ => None,
    }
}

/// Seeds from the flow captures: v5 and sFlow one per datagram, v9 and IPFIX one stream per
/// capture. Returns them with the frames of `traffic.pcap` for the sFlow raw-header seeds.
fn pcap_seeds(dir: &Path) -> (Vec<TargetSeed>, Vec<Vec<u8>>) {
    let mut seeds = Vec::new();
    let mut traffic = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        eprintln!("no captures in {}: pcap seeds skipped", dir.display());
        return (seeds, traffic);
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
    {
        let Ok(bytes) = fs::read(path) else { continue };
        let stem = path
            .file_stem()
            .map_or("capture".into(), |s| s.to_string_lossy());
        let frames = pcap_frames(&bytes);
        if stem == "traffic" {
            traffic = frames;
            continue;
        }
        let mut streams: Vec<(&'static str, Vec<Vec<u8>>)> = Vec::new();
        let mut singles = 0;
        for payload in frames.iter().filter_map(|f| udp_payload(f)) {
            let Some(target) = target_of(payload) else {
                continue;
            };
            if matches!(target, "fuzz_netflow_v9" | "fuzz_ipfix") {
                match streams.iter_mut().find(|(t, _)| *t == target) {
                    Some((_, s)) if s.len() < MAX_DATAGRAMS => s.push(payload.to_vec()),
                    Some(_) => {}
                    None => streams.push((target, vec![payload.to_vec()])),
                }
            } else {
                seeds.push((
                    target,
                    format!("pcap-{stem}-{singles:02}"),
                    payload.to_vec(),
                ));
                singles += 1;
            }
        }
        for (target, stream) in streams {
            seeds.push((target, format!("pcap-{stem}"), join_datagrams(&stream)));
        }
    }
    (seeds, traffic)
}

/// What decoding a seed gives (`-v`): datagrams, flows, counters, templates and skips, so a seed
/// that no longer decodes is noticed.
fn summary(seed: &[u8]) -> String {
    let ctx = flowlens_fuzz::context();
    let mut cache = TemplateCache::new();
    let mut sink = CollectingSink::default();
    let (mut datagrams, mut errors, mut templates, mut skipped) = (0, 0, 0, 0);
    for datagram in flowlens_fuzz::split_datagrams(seed) {
        datagrams += 1;
        match decode_datagram(datagram, &ctx, &mut cache, &mut sink) {
            Ok(r) => {
                templates += r.templates;
                skipped += r.skipped.total();
            }
            Err(_) => errors += 1,
        }
    }
    format!(
        "{datagrams} datagrams ({errors} errors), {} flows, {} counters, {templates} templates, \
         {skipped} skipped",
        sink.flows.len(),
        sink.counters.len()
    )
}

/// Event seeds: committed batches as the log stores them (rkyv) and single events as NATS
/// carries them (JSON).
fn event_seeds() -> Seeds {
    use proto::event::{DependencyKey, Event, EventBatch, EventKind, ServiceKey};
    let dependency = DependencyKey {
        client: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        service: ServiceKey {
            ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
            port: 443,
            protocol: 6,
        },
    };
    let events = vec![
        Event {
            at_ms: EXPORT_MS,
            kind: EventKind::AssetDiscovered {
                ip: dependency.client,
                internal: true,
            },
        },
        Event {
            at_ms: EXPORT_MS + 1,
            kind: EventKind::ServiceDiscovered {
                service: dependency.service,
                name: Some("https".into()),
            },
        },
        Event {
            at_ms: EXPORT_MS + 2,
            kind: EventKind::DependencyDiscovered { dependency },
        },
        Event {
            at_ms: EXPORT_MS + 3,
            kind: EventKind::DependencyExpired { dependency },
        },
    ];
    let mut seeds: Seeds = vec![
        (
            "batch.rkyv".into(),
            EventBatch::new(events.clone()).to_rkyv(),
        ),
        ("empty.rkyv".into(), EventBatch::new(Vec::new()).to_rkyv()),
    ];
    for (i, e) in events.iter().enumerate() {
        let json = serde_json::to_vec(e).unwrap_or_default();
        seeds.push((format!("event-{i}.json"), json));
    }
    seeds
}

fn main() -> std::io::Result<()> {
    // `cargo run` sets this at run time; the compile-time path may name another clone.
    let here = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let mut args = std::env::args().skip(1).peekable();
    let verbose = args.next_if(|a| a == "-v").is_some();
    let corpus = args
        .next()
        .map_or_else(|| here.join("corpus"), PathBuf::from);
    let captures = args
        .next()
        .map_or_else(|| here.join("../../tests/data"), PathBuf::from);

    let (from_pcaps, traffic) = pcap_seeds(&captures);
    let mut all: Vec<TargetSeed> = Vec::new();
    let built = [
        ("fuzz_netflow_v5", netflow_v5_seeds()),
        ("fuzz_netflow_v9", netflow_v9_seeds()),
        ("fuzz_ipfix", ipfix_seeds()),
        ("fuzz_sflow", sflow_seeds(&traffic)),
        ("fuzz_events", event_seeds()),
    ];
    for (target, seeds) in built {
        all.extend(seeds.into_iter().map(|(name, bytes)| (target, name, bytes)));
    }
    all.extend(from_pcaps);

    for (target, name, bytes) in &all {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(format!("seed-{name}")), bytes)?;
        if verbose {
            println!("{target} {name}: {}", summary(bytes));
        }
    }
    for target in [
        "fuzz_netflow_v5",
        "fuzz_netflow_v9",
        "fuzz_ipfix",
        "fuzz_sflow",
        "fuzz_events",
    ] {
        let n = all.iter().filter(|(t, _, _)| *t == target).count();
        println!("{target}: {n} seeds in {}", corpus.join(target).display());
    }
    Ok(())
}
