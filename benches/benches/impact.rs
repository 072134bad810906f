//! Impact analysis at scale: a synthetic map of 100 k assets and ~400 k dependencies shaped like
//! a data centre (clients → load balancers → pools of application servers → database pairs,
//! caches and one directory server every application needs). Times the blast radius of the
//! directory (the worst case: everything breaks, every edge is walked), of one database, the
//! single-points-of-failure report, a five-hop upstream walk and building the graph.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use actors::analysis::{CallEdge, CallGraph, Direction};
use criterion::{criterion_group, criterion_main, Criterion};

const CLIENTS: u32 = 88_999;
const BALANCERS: u32 = 1_000;
const APPS: u32 = 8_000;
const DATABASES: u32 = 2_000;
/// Most entries in the critical-dependency sets (as the API allows).
const BUDGET: usize = 20_000_000;
/// Each client's calls.
const CALLS_PER_CLIENT: u32 = 4;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(n)) as u32
    }
}

fn addr(tier: u8, i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, tier, (i >> 8) as u8, i as u8))
}

fn edge(client: IpAddr, server: IpAddr, port: u16) -> CallEdge {
    CallEdge {
        client,
        server,
        port,
        protocol: 6,
    }
}

/// The synthetic map; the directory server is `10.4.0.0`.
fn data_centre() -> Vec<CallEdge> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let directory = addr(4, 0);
    let mut edges = Vec::new();
    for c in 0..CLIENTS {
        // Client addresses span 10.10.0.0 – 10.11.91.x.
        let client = addr(10 + (c >> 16) as u8, c & 0xffff);
        for _ in 0..CALLS_PER_CLIENT {
            if rng.below(10) == 0 {
                edges.push(edge(client, addr(2, rng.below(APPS)), 8080));
            } else {
                edges.push(edge(client, addr(1, rng.below(BALANCERS)), 443));
            }
        }
    }
    for b in 0..BALANCERS {
        for k in 0..4 {
            edges.push(edge(addr(1, b), addr(2, (b * 8 + k * 2) % APPS), 8080));
        }
    }
    for a in 0..APPS {
        let app = addr(2, a);
        let db = rng.below(DATABASES / 2) * 2;
        edges.push(edge(app, addr(3, db), 5432));
        edges.push(edge(app, addr(3, db + 1), 5432));
        edges.push(edge(app, addr(3, rng.below(DATABASES)), 6379));
        edges.push(edge(app, directory, 636));
        for _ in 0..2 {
            edges.push(edge(app, addr(2, rng.below(APPS)), 9090));
        }
    }
    edges
}

fn impact(c: &mut Criterion) {
    let edges = data_centre();
    let g = CallGraph::new(edges.iter().copied());
    println!(
        "synthetic map: {} assets, {} dependencies",
        g.len(),
        g.edge_count()
    );
    let directory = g.node(addr(4, 0)).expect("directory in the map");
    let database = g.node(addr(3, 10)).expect("database in the map");
    let all = g.blast_radius(&[directory], u32::MAX);
    println!(
        "directory fails: {} broken, {} degraded; database 10.3.0.10 fails: {} broken; {} single points of failure",
        all.broken.len(),
        all.degraded.len(),
        g.blast_radius(&[database], u32::MAX).broken.len(),
        g.critical_dependencies(BUDGET).map_or(0, |c| g.single_points_of_failure(&c).len())
    );
    let mut group = c.benchmark_group("impact_100k_assets_400k_dependencies");
    group.sample_size(20);
    group.bench_function("blast_radius_everything_breaks", |b| {
        b.iter(|| g.blast_radius(black_box(&[directory]), u32::MAX))
    });
    group.bench_function("blast_radius_one_database", |b| {
        b.iter(|| g.blast_radius(black_box(&[database]), u32::MAX))
    });
    group.bench_function("single_points_of_failure", |b| {
        b.iter(|| {
            g.critical_dependencies(BUDGET)
                .map(|c| g.single_points_of_failure(&c))
        })
    });
    group.bench_function("upstream_5_hops", |b| {
        b.iter(|| g.reach(black_box(directory), Direction::Upstream, 5))
    });
    group.bench_function("build", |b| {
        b.iter(|| CallGraph::new(black_box(&edges).iter().copied()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = impact
}
criterion_main!(benches);
