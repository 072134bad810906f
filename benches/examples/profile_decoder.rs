//! Decodes one protocol's bench packet many times, for profilers (`valgrind --tool=callgrind`,
//! `perf record`): `cargo run --release -p flowlens-benches --example profile_decoder -- ipfix 100000`.

use flowlens_benches::{FlowLensDecoder, Protocol};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "netflow_v5".to_owned());
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let Some(protocol) = Protocol::ALL.into_iter().find(|p| p.name() == name) else {
        eprintln!("unknown protocol {name}; one of netflow_v5, netflow_v9, ipfix, sflow");
        std::process::exit(2);
    };
    let input = protocol.packet();
    let mut decoder = FlowLensDecoder::new(protocol, &input);
    let mut records = 0usize;
    for _ in 0..rounds {
        records += decoder.decode(std::hint::black_box(&input.packet));
    }
    println!("{name}: {records} records in {rounds} packets");
}
