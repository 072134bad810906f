//! Decoder throughput in records per second: FlowLens's NetFlow v5, v9, IPFIX and sFlow
//! decoders on realistic packets, each beside `netflow_parser` on the same packet (v5, v9,
//! IPFIX), so one run gives the ratio. After the timings it prints allocations per record for
//! each decoder (the `alloc_report` bench prints the same table alone).

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flowlens_benches::{allocations_per_record, FlowLensDecoder, NetflowParserDecoder, Protocol};

fn decoders(c: &mut Criterion) {
    for protocol in Protocol::ALL {
        let input = protocol.packet();
        let mut group = c.benchmark_group(protocol.name());
        group.throughput(Throughput::Elements(input.records));
        let mut ours = FlowLensDecoder::new(protocol, &input);
        group.bench_function("flowlens", |b| {
            b.iter(|| ours.decode(black_box(&input.packet)))
        });
        if protocol.netflow_parser_reads() {
            let mut theirs = NetflowParserDecoder::new(&input);
            group.bench_function("netflow_parser", |b| {
                b.iter(|| theirs.decode(black_box(&input.packet)))
            });
        }
        group.finish();
    }
    print_allocations();
}

/// Prints allocations per record for every decoder over 10 000 packets after warm-up.
fn print_allocations() {
    println!("\nallocations per record (10 000 packets after 100 warm-up packets):");
    for protocol in Protocol::ALL {
        let input = protocol.packet();
        let mut ours = FlowLensDecoder::new(protocol, &input);
        let a = allocations_per_record(|p| ours.decode(p), &input, 100, 10_000);
        println!("  {:<11} flowlens        {a:.3}", protocol.name());
        if protocol.netflow_parser_reads() {
            let mut theirs = NetflowParserDecoder::new(&input);
            let a = allocations_per_record(|p| theirs.decode(p), &input, 100, 10_000);
            println!("  {:<11} netflow_parser  {a:.3}", protocol.name());
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = decoders
}
criterion_main!(benches);
