//! The fuzz harnesses behind `fuzz_targets/`: how one fuzzer input becomes one datagram (v5,
//! sFlow) or a stream of datagrams decoded through one [`TemplateCache`] (v9, IPFIX), and the
//! invariants every decode must keep whatever the bytes: no panic, the report agrees with what
//! the sink received, no more records than the bytes could hold, cache limits respected, and
//! the cache survives a serde round trip. The event target reads committed event batches (rkyv)
//! and JSON events.
//!
//! libFuzzer hands each input to a fresh process state, so a cache cannot live across inputs;
//! instead one input carries several datagrams separated by [`DATAGRAM_SEPARATOR`], which keeps
//! template-then-data, withdrawal mid-stream and pending-buffer release reachable, and survives
//! byte insertions and deletions better than length prefixes would.

use std::net::{IpAddr, Ipv4Addr};

use proto::decode::template::CacheLimits;
use proto::decode::{
    decode_datagram, netflow_v5, sflow, CollectingSink, DecodeContext, DecodeError, PacketReport,
    SkipReason, TemplateCache,
};
use proto::event::{Event, EventBatch};
use proto::record::FlowSource;
use proto::FlowRecord;

/// Separates datagrams inside one fuzzer input for the templated targets.
pub const DATAGRAM_SEPARATOR: &[u8] = b"\xf1\x0e\xda\x7a";

/// Datagrams decoded per input at most: keeps one execution short.
pub const MAX_DATAGRAMS: usize = 64;

/// Small limits, so that template, scope and pending-buffer limits are actually reached.
pub const FUZZ_LIMITS: CacheLimits = CacheLimits {
    max_templates_per_scope: 16,
    max_scopes: 4,
    max_pending_sets: 8,
    max_pending_bytes: 16 * 1024,
};

/// The context every harness decodes under.
pub fn context() -> DecodeContext {
    DecodeContext {
        exporter: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        received_ms: 1_793_527_200_000,
    }
}

/// Splits one fuzzer input into at most [`MAX_DATAGRAMS`] datagrams.
pub fn split_datagrams(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() + 1 < MAX_DATAGRAMS {
        match rest
            .windows(DATAGRAM_SEPARATOR.len())
            .position(|w| w == DATAGRAM_SEPARATOR)
        {
            Some(at) => {
                out.push(&rest[..at]);
                rest = &rest[at + DATAGRAM_SEPARATOR.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

/// Joins datagrams into one fuzzer input (the inverse of [`split_datagrams`]).
pub fn join_datagrams(datagrams: &[Vec<u8>]) -> Vec<u8> {
    datagrams.join(DATAGRAM_SEPARATOR)
}

fn check_common(flows: &[FlowRecord], source: FlowSource) {
    for f in flows {
        assert_eq!(f.source, source, "record tagged with the wrong source");
        assert!(f.sampling_rate >= 1, "sampling rate 0 in {f:?}");
    }
}

/// NetFlow v5: one input is one datagram.
pub fn netflow_v5_harness(data: &[u8]) {
    let ctx = context();
    let mut flows: Vec<FlowRecord> = Vec::new();
    match netflow_v5::decode(data, &ctx, &mut flows) {
        Ok(report) => {
            assert_eq!(report.flows as usize, flows.len(), "report.flows vs sink");
            let fit = data.len().saturating_sub(netflow_v5::HEADER_LEN) / netflow_v5::RECORD_LEN;
            assert!(
                flows.len() <= fit,
                "{} flows from {} bytes",
                flows.len(),
                data.len()
            );
            assert!(flows.len() <= report.header_count as usize);
            assert_eq!(
                report.flows + report.skipped.get(SkipReason::TruncatedRecord),
                report.header_count,
                "every claimed record is decoded or counted as truncated"
            );
            check_common(&flows, FlowSource::NetflowV5);
            for f in &flows {
                assert_eq!(f.exporter, ctx.exporter);
            }
        }
        Err(_) => assert!(flows.is_empty(), "records emitted by a failed decode"),
    }
    if data.starts_with(&[0, 5]) {
        same_through_dispatch(data, &flows);
    }
}

/// sFlow v5: one input is one datagram.
pub fn sflow_harness(data: &[u8]) {
    let ctx = context();
    let mut sink = CollectingSink::default();
    match sflow::decode(data, &ctx, &mut sink) {
        Ok(report) => {
            assert_eq!(
                report.flows as usize,
                sink.flows.len(),
                "report.flows vs sink"
            );
            assert_eq!(
                report.counters as usize,
                sink.counters.len(),
                "report.counters"
            );
            // Every sample takes at least its 8-byte format and length.
            let fit = data.len() / 8;
            assert!(
                sink.flows.len() <= fit,
                "{} flows from {} bytes",
                sink.flows.len(),
                data.len()
            );
            assert!(sink.counters.len() <= fit);
            assert!(sink.flows.len() <= report.header_count as usize);
            check_common(&sink.flows, FlowSource::Sflow);
            for f in &sink.flows {
                assert_eq!((f.first_ms, f.last_ms), (ctx.received_ms, ctx.received_ms));
                assert_eq!(f.packets, u64::from(f.sampling_rate));
            }
        }
        Err(_) => {
            assert!(sink.flows.is_empty() && sink.counters.is_empty());
        }
    }
    if data.starts_with(&[0, 0, 0, 5]) {
        same_through_dispatch(data, &sink.flows);
    }
}

/// `decode_datagram` must pick the same decoder and produce the same records.
fn same_through_dispatch(data: &[u8], direct: &[FlowRecord]) {
    let mut cache = TemplateCache::new();
    let mut flows: Vec<FlowRecord> = Vec::new();
    let _ = decode_datagram(data, &context(), &mut cache, &mut flows);
    assert_eq!(
        flows, direct,
        "decode_datagram disagrees with the direct decoder"
    );
}

/// The signature NetFlow v9 and IPFIX decoders share.
pub type TemplatedDecoder = fn(
    &[u8],
    &DecodeContext,
    &mut TemplateCache,
    &mut Vec<FlowRecord>,
) -> Result<PacketReport, DecodeError>;

/// NetFlow v9 / IPFIX: one input is a stream of datagrams through one template cache.
pub fn templated_harness(data: &[u8], decode: TemplatedDecoder, source: FlowSource) {
    let ctx = context();
    let mut cache = TemplateCache::with_limits(FUZZ_LIMITS);
    let mut flows: Vec<FlowRecord> = Vec::new();
    let mut bytes_seen = 0usize;
    for datagram in split_datagrams(data) {
        bytes_seen += datagram.len();
        let before = flows.len();
        let templates_before = cache.template_count();
        match decode(datagram, &ctx, &mut cache, &mut flows) {
            Ok(report) => {
                assert_eq!(
                    report.flows as usize,
                    flows.len() - before,
                    "report.flows vs sink"
                );
                assert!(report.flows <= report.data_records.saturating_mul(2));
            }
            Err(_) => {
                assert_eq!(flows.len(), before, "records emitted by a failed decode");
                assert_eq!(
                    cache.template_count(),
                    templates_before,
                    "failed decode learned"
                );
            }
        }
        // A flow needs a record holding a source and a destination address (at least 8 bytes),
        // and a biflow record yields two flows. Buffered data is decoded at most once, so the
        // bound holds over the stream even when flows are released from an earlier datagram.
        assert!(
            flows.len() <= 2 * (bytes_seen / 8),
            "{} flows from {bytes_seen} bytes",
            flows.len()
        );
        assert!(cache.scope_count() <= FUZZ_LIMITS.max_scopes);
        assert!(
            cache.template_count() <= FUZZ_LIMITS.max_scopes * FUZZ_LIMITS.max_templates_per_scope
        );
        assert!(cache.pending_sets() <= FUZZ_LIMITS.max_pending_sets);
    }
    check_common(&flows, source);
    for f in &flows {
        assert_eq!(f.exporter, ctx.exporter);
    }
    let json = serde_json::to_string(&cache).expect("a template cache serialises");
    let back: TemplateCache = serde_json::from_str(&json).expect("and deserialises");
    assert_eq!(
        back.template_count(),
        cache.template_count(),
        "templates lost in serde"
    );
    assert_eq!(
        back.scope_count(),
        cache.scope_count(),
        "scopes lost in serde"
    );
}

/// The event decoders: one input is read both as a log entry's rkyv batch
/// ([`EventBatch::from_rkyv`], what every node applies) and as one JSON event (what NATS
/// subscribers and federation nodes read). Whatever the bytes: no panic; a batch that decodes
/// encodes back to the same batch; an event's JSON is stable (decoding it and encoding again
/// gives the same bytes).
pub fn events_harness(data: &[u8]) {
    if let Ok(batch) = EventBatch::from_rkyv(data) {
        let again = EventBatch::from_rkyv(&batch.to_rkyv())
            .expect("a decoded batch re-encodes to bytes that decode");
        assert_eq!(again, batch, "rkyv round trip changed the batch");
        for event in &batch.events {
            check_json(event);
        }
    }
    if let Ok(event) = serde_json::from_slice::<Event>(data) {
        check_json(&event);
    }
}

/// An event's JSON decodes to an event with the same JSON (a non-finite float, which JSON
/// cannot hold, is written as null and does not decode back: that is allowed).
fn check_json(event: &Event) {
    let json = serde_json::to_vec(event).expect("every event has a JSON form");
    if let Ok(back) = serde_json::from_slice::<Event>(&json) {
        let again = serde_json::to_vec(&back).expect("and again");
        assert_eq!(again, json, "JSON round trip changed the event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_inverts_join() {
        let dgs = vec![b"abc".to_vec(), Vec::new(), b"de".to_vec()];
        let joined = join_datagrams(&dgs);
        assert_eq!(split_datagrams(&joined), vec![&b"abc"[..], b"", b"de"]);
        assert_eq!(split_datagrams(b""), vec![&b""[..]]);
    }
}
