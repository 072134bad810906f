//! The decoders' allocation promise, checked with the counting allocator: once a collector has
//! learned its exporters' templates and its record buffer has grown, decoding a packet allocates
//! nothing at all, for every protocol.

use flowlens_benches::{allocations_per_record, count_allocations, FlowLensDecoder, Protocol};

/// Decodes before measuring: templates learned, the record buffer grown.
const WARM_UP: usize = 10;
/// Decodes measured.
const PACKETS: usize = 1_000;

fn assert_decoding_allocates_nothing(protocol: Protocol) {
    let input = protocol.packet();
    let mut decoder = FlowLensDecoder::new(protocol, &input);
    let per_record = allocations_per_record(|p| decoder.decode(p), &input, WARM_UP, PACKETS);
    assert_eq!(
        per_record,
        0.0,
        "{}: {per_record} allocations per record",
        protocol.name()
    );
}

#[test]
fn netflow_v5_decoding_allocates_nothing_after_warm_up() {
    assert_decoding_allocates_nothing(Protocol::NetflowV5);
}

#[test]
fn netflow_v9_decoding_allocates_nothing_once_templates_are_learned() {
    assert_decoding_allocates_nothing(Protocol::NetflowV9);
}

#[test]
fn ipfix_decoding_allocates_nothing_once_templates_are_learned() {
    assert_decoding_allocates_nothing(Protocol::Ipfix);
}

#[test]
fn sflow_raw_header_decoding_allocates_nothing_after_warm_up() {
    assert_decoding_allocates_nothing(Protocol::Sflow);
}

#[test]
fn the_counting_allocator_is_installed_in_this_test_binary() {
    // Guards the tests above against passing because nothing was counted.
    let (v, n) = count_allocations(|| std::hint::black_box(vec![0u8; 64]));
    assert_eq!((v.len(), n), (64, 1));
}
