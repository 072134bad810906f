//! Property tests: no input, random or a mutation of a valid packet, makes a decoder panic,
//! loop without progress, or emit more records than the bytes could hold.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use proto::decode::fields::{FieldSpec, REVERSE_PEN, VARIABLE_LENGTH};
use proto::decode::{decode_datagram, CollectingSink, DecodeContext, TemplateCache};
use proto::encode::{self, IpfixMessage, V9Packet, Writer};
use proto::FlowRecord;

fn ctx() -> DecodeContext {
    DecodeContext {
        exporter: IpAddr::V4(Ipv4Addr::LOCALHOST),
        received_ms: 1_793_527_200_000,
    }
}

fn flow(i: u8) -> FlowRecord {
    FlowRecord {
        src_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)),
        dst_addr: IpAddr::V4(Ipv4Addr::new(10, 0, 1, i)),
        src_port: 1000 + u16::from(i),
        dst_port: 80,
        protocol: 6,
        bytes: 100,
        packets: 1,
        first_ms: 1_793_527_199_000,
        last_ms: 1_793_527_200_000,
        ..FlowRecord::default()
    }
}

/// Valid packets of every format, the seeds for mutation.
fn seeds() -> Vec<Vec<u8>> {
    let flows: Vec<FlowRecord> = (1..=5).map(flow).collect();
    let v5 = encode::netflow_v5(1_793_527_200_000, 100_000, 1, &flows);

    let mut v9 = V9Packet::new(2, 100_000, 1_793_527_200, 1, 0);
    v9.set(0)
        .template(256, &[(8, 4), (12, 4), (1, 4), (2, 4), (22, 4), (21, 4)]);
    v9.set(1).options_template(257, &[(1, 4)], &[(34, 4)]);
    v9.set(257).writer().u32(0).u32(10);
    v9.set(256);
    for f in &flows {
        encode_v9(v9.writer(), f);
    }

    let mut ipfix = IpfixMessage::new(1_793_527_200, 1, 1);
    ipfix
        .set(2)
        .template(256, 0, &encode::standard_ipv4_template());
    let var = FieldSpec {
        id: 82,
        enterprise: 0,
        len: VARIABLE_LENGTH,
    };
    let rev = FieldSpec {
        id: 1,
        enterprise: REVERSE_PEN,
        len: 8,
    };
    let fields = [
        FieldSpec {
            id: 8,
            enterprise: 0,
            len: 4,
        },
        var,
        FieldSpec {
            id: 12,
            enterprise: 0,
            len: 4,
        },
        rev,
    ];
    ipfix.template(300, 0, &fields);
    ipfix.set(256);
    for f in &flows {
        encode::standard_ipv4_record(ipfix.writer(), f);
    }
    ipfix
        .set(300)
        .writer()
        .bytes(&[1, 2, 3, 4])
        .u8(2)
        .bytes(b"ab")
        .bytes(&[5, 6, 7, 8])
        .u64(9);

    let mut sflow = Writer::new();
    encode::sflow_header(&mut sflow, IpAddr::V4(Ipv4Addr::LOCALHOST), 0, 1, 1, 2);
    let frame = [
        2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0,
        0, 1, 10, 0, 0, 2, 0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0,
        0, 0,
    ];
    encode::sflow_raw_header_sample(&mut sflow, 10, 1, 2, 60, &frame);
    encode::sflow_raw_header_sample(&mut sflow, 10, 1, 2, 60, &frame);
    vec![v5, v9.finish(), ipfix.finish(), sflow.into_bytes()]
}

fn encode_v9(w: &mut Writer, f: &FlowRecord) {
    w.ip(f.src_addr)
        .ip(f.dst_addr)
        .u32(f.bytes as u32)
        .u32(f.packets as u32)
        .u32(99_000)
        .u32(100_000);
}

/// Decodes packets in sequence through one cache; checks the report agrees with the sink and
/// that no more flows came out than the bytes could carry (a biflow record yields two).
fn check(packets: &[Vec<u8>]) {
    let mut cache = TemplateCache::new();
    let total_bytes: usize = packets.iter().map(Vec::len).sum();
    let mut emitted = 0usize;
    for p in packets {
        let mut sink = CollectingSink::default();
        if let Ok(report) = decode_datagram(p, &ctx(), &mut cache, &mut sink) {
            assert_eq!(report.flows as usize, sink.flows.len());
            assert_eq!(report.counters as usize, sink.counters.len());
            if p.get(..2) == Some(&[0, 5]) {
                assert!(sink.flows.len() <= p.len().saturating_sub(24) / 48);
            }
            emitted += sink.flows.len();
        }
    }
    assert!(
        emitted <= 2 * total_bytes,
        "{emitted} flows from {total_bytes} bytes"
    );
    let json = serde_json::to_string(&cache).expect("cache serialises");
    let back: TemplateCache = serde_json::from_str(&json).expect("cache deserialises");
    assert_eq!(back.template_count(), cache.template_count());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1500)) {
        check(&[data]);
    }

    #[test]
    fn random_bytes_behind_a_valid_version_never_panic(
        version in prop_oneof![Just(vec![0u8, 5]), Just(vec![0, 9]), Just(vec![0, 10]), Just(vec![0, 0, 0, 5])],
        data in proptest::collection::vec(any::<u8>(), 0..1500),
    ) {
        let mut p = version;
        p.extend(data);
        if p.len() >= 4 && p[1] == 10 {
            let len = p.len().min(65535) as u16;
            p[2..4].copy_from_slice(&len.to_be_bytes());
        }
        check(&[p]);
    }

    #[test]
    fn mutated_valid_packets_never_panic(
        which in 0usize..4,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..12),
        cut in any::<usize>(),
    ) {
        let seeds = seeds();
        let mut p = seeds[which].clone();
        for (at, v) in flips {
            let i = at % p.len();
            p[i] = v;
        }
        let keep = p.len() - cut % (p.len() / 2 + 1);
        p.truncate(keep);
        // The intact seed first so templates are known, then the mutation.
        check(&[seeds[which].clone(), p]);
    }
}

#[test]
fn seeds_decode_to_their_records() {
    let mut cache = TemplateCache::new();
    let counts: Vec<usize> = seeds()
        .iter()
        .map(|p| {
            let mut sink = CollectingSink::default();
            decode_datagram(p, &ctx(), &mut cache, &mut sink).expect("seed decodes");
            sink.flows.len()
        })
        .collect();
    // v5: 5; v9: 5; IPFIX: 5 + 1 biflow record with reverse bytes (forward + reverse); sFlow: 2.
    assert_eq!(counts, vec![5, 5, 7, 2]);
}
