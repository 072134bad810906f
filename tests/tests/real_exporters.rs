//! Real-exporter captures (softflowd, pmacct, nfdump's nfreplay) decoded by FlowLens must match,
//! record for record, what tshark's independent dissectors decoded from the same bytes.
//! Captures and truth live in `tests/data` (regenerate with `tests/data/generate.sh`).

use flowlens_tests::{data_dir, load_truth, read_pcap, Truth, TruthRecord};
use proto::decode::{decode_datagram, CollectingSink, DecodeContext, TemplateCache};
use proto::record::{BiflowDirection, FlowRecord, FlowSource};

/// Decodes every datagram of a capture in order through one template cache, returning each
/// flow with the index of the datagram it came out of.
fn decode_capture(name: &str) -> (Vec<(usize, FlowRecord)>, CollectingSink) {
    let datagrams = read_pcap(&data_dir().join(format!("{name}.pcap"))).expect("capture reads");
    let mut cache = TemplateCache::new();
    let mut flows = Vec::new();
    let mut all = CollectingSink::default();
    for (i, d) in datagrams.iter().enumerate() {
        let ctx = DecodeContext {
            exporter: d.src.ip(),
            received_ms: d.ts_ms,
        };
        let mut sink = CollectingSink::default();
        let report = decode_datagram(&d.payload, &ctx, &mut cache, &mut sink)
            .unwrap_or_else(|e| panic!("{name}: datagram {i}: {e}"));
        assert_eq!(
            report.skipped.total(),
            0,
            "{name}: datagram {i} skipped parts: {report:?}"
        );
        flows.extend(sink.flows.iter().map(|f| (i, *f)));
        all.flows.extend(sink.flows);
        all.counters.extend(sink.counters);
    }
    (flows, all)
}

fn direction_name(d: BiflowDirection) -> &'static str {
    match d {
        BiflowDirection::Unidirectional => "none",
        BiflowDirection::Forward => "forward",
        BiflowDirection::Reverse => "reverse",
    }
}

/// A decoded flow seen through the truth's eyes; times must agree to the millisecond.
fn as_truth(packet: usize, f: &FlowRecord) -> TruthRecord {
    TruthRecord {
        packet,
        src: f.src_addr,
        dst: f.dst_addr,
        src_port: f.src_port,
        dst_port: f.dst_port,
        proto: f.protocol,
        bytes: f.bytes,
        packets: f.packets,
        first_ms: f.first_ms,
        last_ms: f.last_ms,
        direction: direction_name(f.direction).to_owned(),
        sampling_rate: f.sampling_rate,
    }
}

fn assert_matches_truth(name: &str, source: FlowSource) {
    let truth: Truth = load_truth(name).expect("truth loads");
    let (flows, all) = decode_capture(name);
    assert!(!truth.records.is_empty(), "{name}: truth has no records");
    assert_eq!(
        flows.len(),
        truth.records.len(),
        "{name}: decoded {} flows, tshark saw {}",
        flows.len(),
        truth.records.len()
    );
    for (n, ((packet, f), t)) in flows.iter().zip(&truth.records).enumerate() {
        assert_eq!(f.source, source, "{name}: record {n}");
        assert_eq!(
            as_truth(*packet, f),
            *t,
            "{name}: record {n} differs from tshark"
        );
    }
    for (n, t) in truth.counters.iter().enumerate() {
        let c = all
            .counters
            .get(n)
            .unwrap_or_else(|| panic!("{name}: counter record {n} missing"));
        let got = (
            c.if_index,
            c.in_octets,
            c.out_octets,
            c.in_ucast_pkts,
            c.out_ucast_pkts,
        );
        assert_eq!(
            got,
            (
                t.if_index,
                t.in_octets,
                t.out_octets,
                t.in_ucast,
                t.out_ucast
            ),
            "{name}: counters {n}"
        );
    }
    assert_eq!(
        all.counters.len(),
        truth.counters.len(),
        "{name}: counter records"
    );
}

#[test]
fn softflowd_netflow_v5_matches_tshark() {
    assert_matches_truth("softflowd_v5", FlowSource::NetflowV5);
}

#[test]
fn softflowd_netflow_v9_matches_tshark() {
    assert_matches_truth("softflowd_v9", FlowSource::NetflowV9);
}

#[test]
fn softflowd_ipfix_matches_tshark() {
    assert_matches_truth("softflowd_ipfix", FlowSource::Ipfix);
}

#[test]
fn softflowd_ipfix_millisecond_times_match_tshark() {
    assert_matches_truth("softflowd_ipfix_milli", FlowSource::Ipfix);
}

#[test]
fn softflowd_ipfix_biflows_match_tshark() {
    assert_matches_truth("softflowd_ipfix_biflow", FlowSource::Ipfix);
}

#[test]
fn pmacct_netflow_v5_matches_tshark() {
    assert_matches_truth("pmacct_v5", FlowSource::NetflowV5);
}

#[test]
fn pmacct_netflow_v9_matches_tshark() {
    assert_matches_truth("pmacct_v9", FlowSource::NetflowV9);
}

#[test]
fn pmacct_ipfix_matches_tshark() {
    assert_matches_truth("pmacct_ipfix", FlowSource::Ipfix);
}

#[test]
fn pmacct_sflow_matches_tshark() {
    assert_matches_truth("pmacct_sflow", FlowSource::Sflow);
}

#[test]
fn pmacct_ipfix_millisecond_times_match_tshark() {
    assert_matches_truth("pmacct_ipfix_msec", FlowSource::Ipfix);
}

#[test]
fn nfreplay_netflow_v5_matches_tshark() {
    assert_matches_truth("nfreplay_v5", FlowSource::NetflowV5);
}

#[test]
fn nfreplay_netflow_v9_matches_tshark() {
    assert_matches_truth("nfreplay_v9", FlowSource::NetflowV9);
}
