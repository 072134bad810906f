//! The map's force layout at the UI's cap: 2,000 nodes and 5,000 edges, grouped into 8 subnets.
//! One step must fit well inside a 16 ms animation frame next to drawing; the full settle
//! (about 300 steps) is what a user waits for before the map stops moving.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use layout::Layout;

const NODES: u32 = 2_000;
const EDGES: u32 = 5_000;

fn map() -> (Vec<(u32, u32)>, Vec<u32>) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut below = |n: u32| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % u64::from(n)) as u32
    };
    // Clients call a few hundred servers, as a data centre's map does.
    let edges = (0..EDGES)
        .map(|_| (below(NODES), below(NODES / 8)))
        .collect();
    let groups = (0..NODES).map(|i| i % 8).collect();
    (edges, groups)
}

fn bench(c: &mut Criterion) {
    let (edges, groups) = map();
    let mut hot = Layout::new(NODES as usize, &edges, &groups);
    c.bench_function("layout step, 2k nodes / 5k edges", |b| {
        b.iter(|| {
            hot.reheat(1.0);
            black_box(hot.step())
        })
    });
    c.bench_function("layout settle, 2k nodes / 5k edges", |b| {
        b.iter(|| {
            let mut l = Layout::new(NODES as usize, &edges, &groups);
            while !l.settled() {
                l.step();
            }
            black_box(l.positions()[0])
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
