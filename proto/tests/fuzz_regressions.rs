//! Inputs that once made a decoder misbehave, found by the fuzz targets in `proto/fuzz` (or by
//! reading the decoders while writing them), kept as plain tests so the behaviour stays fixed
//! without a fuzzer. Each test names what the decoder must do with the input.

use std::net::{IpAddr, Ipv4Addr};

use proto::decode::{decode_datagram, CollectingSink, DecodeContext, TemplateCache};

fn ctx() -> DecodeContext {
    DecodeContext {
        exporter: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        received_ms: 1_793_527_200_000,
    }
}

/// Decodes datagrams in order through one cache, as the fuzz targets do.
fn decode_stream(datagrams: &[&[u8]]) -> CollectingSink {
    let mut cache = TemplateCache::new();
    let mut sink = CollectingSink::default();
    for d in datagrams {
        let _ = decode_datagram(d, &ctx(), &mut cache, &mut sink);
    }
    sink
}

#[test]
fn ipfix_sampling_interval_plus_space_beyond_u64_does_not_overflow() {
    // Template 256: sourceIPv4Address, destinationIPv4Address, samplingPacketInterval (8 bytes),
    // samplingPacketSpace (8 bytes); one record with interval u64::MAX and space 1.
    let message = [
        // Header: version 10, length 68, export time, sequence 1, domain 1.
        &[0x00, 0x0a, 0x00, 0x44, 0x6a, 0xe7, 0x0e, 0x60][..],
        &[0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01],
        // Template set (length 24): template 256 with 4 fields: 8/4, 12/4, 305/8, 306/8.
        &[0x00, 0x02, 0x00, 0x18, 0x01, 0x00, 0x00, 0x04],
        &[0x00, 0x08, 0x00, 0x04, 0x00, 0x0c, 0x00, 0x04],
        &[0x01, 0x31, 0x00, 0x08, 0x01, 0x32, 0x00, 0x08],
        // Data set 256 (length 28): 10.0.0.1 -> 10.0.0.2, interval u64::MAX, space 1.
        &[0x01, 0x00, 0x00, 0x1c],
        &[0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02],
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01],
    ]
    .concat();
    let sink = decode_stream(&[&message]);
    assert_eq!(sink.flows.len(), 1);
    // (u64::MAX + 1) / u64::MAX = 1 in 1.
    assert_eq!(sink.flows.first().map(|f| f.sampling_rate), Some(1));
}
