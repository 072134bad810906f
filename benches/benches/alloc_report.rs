//! Allocations per decoded record, FlowLens against `netflow_parser`, over 10 000 packets per
//! protocol after warm-up: `cargo bench -p flowlens-benches --bench alloc_report`.

use flowlens_benches::{allocations_per_record, FlowLensDecoder, NetflowParserDecoder, Protocol};

/// Packets decoded before measuring.
const WARM_UP: usize = 100;
/// Packets measured.
const PACKETS: usize = 10_000;

fn main() {
    println!(
        "{:<11} {:<15} {:>8} {:>22}",
        "protocol", "decoder", "records", "allocations/record"
    );
    for protocol in Protocol::ALL {
        let input = protocol.packet();
        let records = input.records * PACKETS as u64;
        let mut ours = FlowLensDecoder::new(protocol, &input);
        let a = allocations_per_record(|p| ours.decode(p), &input, WARM_UP, PACKETS);
        println!(
            "{:<11} {:<15} {records:>8} {a:>22.3}",
            protocol.name(),
            "flowlens"
        );
        if protocol.netflow_parser_reads() {
            let mut theirs = NetflowParserDecoder::new(&input);
            let a = allocations_per_record(|p| theirs.decode(p), &input, WARM_UP, PACKETS);
            println!(
                "{:<11} {:<15} {records:>8} {a:>22.3}",
                protocol.name(),
                "netflow_parser"
            );
        }
    }
}
