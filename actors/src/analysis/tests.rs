//! Impact analysis on hand-built maps with known answers, and against petgraph's own dominator
//! and articulation-point algorithms and a brute-force blast radius on random maps.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use petgraph::graph::{DiGraph, NodeIndex, UnGraph};
use proptest::prelude::*;

use super::{CallEdge, CallGraph, Direction};

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

fn call(client: u8, server: u8, port: u16) -> CallEdge {
    CallEdge {
        client: ip(client),
        server: ip(server),
        port,
        protocol: 6,
    }
}

fn ips(g: &CallGraph, nodes: impl IntoIterator<Item = u32>) -> BTreeSet<IpAddr> {
    nodes.into_iter().map(|n| g.ip(n)).collect()
}

fn node(g: &CallGraph, n: u8) -> u32 {
    g.node(ip(n)).expect("asset in the graph")
}

/// Clients 1..=3 call a load balancer 10 on 443; it calls web servers 20 and 21 on 8080; both
/// call database 30 on 5432 and cache 31 on 6379. 40 calls 41, nothing else.
fn three_tier() -> CallGraph {
    let mut edges = vec![];
    for c in 1..=3 {
        edges.push(call(c, 10, 443));
    }
    edges.extend([call(10, 20, 8080), call(10, 21, 8080)]);
    for w in [20, 21] {
        edges.extend([call(w, 30, 5432), call(w, 31, 6379)]);
    }
    edges.push(call(40, 41, 22));
    CallGraph::new(edges)
}

#[test]
fn reaches_dependencies_and_dependents_to_the_hop_limit() {
    let g = three_tier();
    let down = g.reach(node(&g, 1), Direction::Downstream, 1);
    assert_eq!(
        ips(&g, down.iter().map(|r| r.node)),
        ips(&g, [node(&g, 10)])
    );
    let down = g.reach(node(&g, 1), Direction::Downstream, 10);
    assert_eq!(down.len(), 5);
    let hops: BTreeMap<IpAddr, u32> = down.iter().map(|r| (g.ip(r.node), r.hops)).collect();
    assert_eq!(hops[&ip(30)], 3);
    let up = g.reach(node(&g, 30), Direction::Upstream, 2);
    assert_eq!(
        ips(&g, up.iter().map(|r| r.node)),
        [20, 21, 10].map(ip).into_iter().collect()
    );
}

#[test]
fn a_failed_pool_member_degrades_its_client_and_breaks_nothing() {
    let g = three_tier();
    let impact = g.blast_radius(&[node(&g, 20)], u32::MAX);
    assert!(impact.broken.is_empty());
    assert_eq!(
        ips(&g, impact.degraded.iter().map(|i| i.node)),
        [ip(10)].into()
    );
    assert_eq!(impact.lost_edges, 1);
}

#[test]
fn a_failed_database_breaks_everything_that_reaches_it() {
    let g = three_tier();
    let impact = g.blast_radius(&[node(&g, 30)], u32::MAX);
    let broken: BTreeMap<IpAddr, u32> = impact
        .broken
        .iter()
        .map(|i| (g.ip(i.node), i.hops))
        .collect();
    let expected: BTreeMap<IpAddr, u32> = [(20, 1), (21, 1), (10, 2), (1, 3), (2, 3), (3, 3)]
        .map(|(n, h)| (ip(n), h))
        .into();
    assert_eq!(broken, expected);
    assert!(impact.degraded.is_empty());
    // Limited to one hop, only the web servers go.
    let near = g.blast_radius(&[node(&g, 30)], 1);
    assert_eq!(near.broken.len(), 2);
}

#[test]
fn failing_the_whole_pool_breaks_the_balancer_and_its_clients() {
    let g = three_tier();
    let impact = g.blast_radius(&[node(&g, 20), node(&g, 21)], u32::MAX);
    assert_eq!(
        ips(&g, impact.broken.iter().map(|i| i.node)),
        [10, 1, 2, 3].map(ip).into()
    );
}

#[test]
fn ranks_the_shared_backends_then_the_balancer_as_single_points_of_failure() {
    let g = three_tier();
    let critical = g.critical_dependencies(usize::MAX).expect("within budget");
    let spofs = g.single_points_of_failure(&critical);
    let ranked: Vec<(IpAddr, u32, u32, bool, u32)> = spofs
        .iter()
        .map(|s| {
            (
                g.ip(s.node),
                s.breaks,
                s.dominated,
                s.cut_vertex,
                s.separated,
            )
        })
        .collect();
    assert_eq!(
        ranked,
        vec![
            // Both web servers need the database and the cache: either alone breaks all six.
            // Dominators see the two needs as alternatives, so neither dominates anything.
            (ip(30), 6, 0, false, 0),
            (ip(31), 6, 0, false, 0),
            // Every chain of the three clients runs through the balancer, a cut vertex.
            (ip(10), 3, 3, true, 3),
            (ip(41), 1, 1, false, 0),
        ]
    );
    // The redundant web servers are not single points of failure.
    assert_eq!(
        ips(&g, critical[node(&g, 1) as usize].iter().copied()),
        [10, 30, 31].map(ip).into()
    );
    assert!(g.critical_dependencies(2).is_none());
}

#[test]
fn a_chain_has_every_inner_node_as_a_cut_vertex() {
    let g = CallGraph::new((1..6).map(|i| call(i, i + 1, 80)));
    let cuts: BTreeMap<IpAddr, u32> = g
        .cut_vertices()
        .into_iter()
        .map(|(n, s)| (g.ip(n), s))
        .collect();
    assert_eq!(
        cuts,
        [(2, 1), (3, 2), (4, 2), (5, 1)]
            .map(|(n, s)| (ip(n), s))
            .into()
    );
    let dependents = g.dominated_counts();
    assert_eq!(dependents[node(&g, 6) as usize], 5);
    assert_eq!(dependents[node(&g, 3) as usize], 2);
}

#[test]
fn finds_the_shortest_call_path_and_the_ports_on_it() {
    let g = three_tier();
    let path = g.call_path(node(&g, 2), node(&g, 31)).expect("a path");
    assert_eq!(path.len(), 4);
    assert_eq!(g.ip(path[1]), ip(10));
    assert_eq!(g.services_between(path[0], path[1]), vec![(443, 6)]);
    assert!(g.call_path(node(&g, 31), node(&g, 2)).is_none());
    assert!(g.call_path(node(&g, 1), node(&g, 41)).is_none());
}

#[test]
fn cycles_that_never_reach_a_leaf_still_get_dominators() {
    // 1 → 2 → 3 → 1, and 4 → 1.
    let g = CallGraph::new([
        call(1, 2, 80),
        call(2, 3, 80),
        call(3, 1, 80),
        call(4, 1, 80),
    ]);
    // Hung under the root at 1 (the lowest address): 4 and the rest of the cycle reach a leaf
    // only through 1, and 2 only through 3.
    let dependents = g.dominated_counts();
    let by_ip: BTreeMap<IpAddr, u32> = (0..g.len() as u32)
        .map(|n| (g.ip(n), dependents[n as usize]))
        .collect();
    assert_eq!(
        by_ip,
        [(1, 3), (2, 0), (3, 1), (4, 0)]
            .map(|(n, d)| (ip(n), d))
            .into()
    );
    assert!(g.blast_radius(&[node(&g, 2)], u32::MAX).broken.len() == 3);
}

/// Brute force: repeat until nothing changes, a client is broken when some need has every
/// server down.
fn brute_blast(edges: &[CallEdge], failed: &HashSet<IpAddr>) -> BTreeSet<IpAddr> {
    let mut down: HashSet<IpAddr> = failed.clone();
    loop {
        let mut needs: BTreeMap<(IpAddr, u16, u8), (usize, usize)> = BTreeMap::new();
        let unique: BTreeSet<CallEdge> = edges
            .iter()
            .filter(|e| e.client != e.server)
            .copied()
            .collect();
        for e in &unique {
            let n = needs.entry((e.client, e.port, e.protocol)).or_default();
            n.0 += 1;
            n.1 += usize::from(down.contains(&e.server));
        }
        let newly: Vec<IpAddr> = needs
            .iter()
            .filter(|(k, (all, gone))| all == gone && !down.contains(&k.0))
            .map(|(k, _)| k.0)
            .collect();
        if newly.is_empty() {
            return down.difference(failed).copied().collect();
        }
        down.extend(newly);
    }
}

fn random_edges() -> impl Strategy<Value = Vec<CallEdge>> {
    prop::collection::vec(
        (
            0u8..24,
            0u8..24,
            prop::sample::select(vec![80u16, 443, 5432]),
        ),
        1..70,
    )
    .prop_map(|v| v.into_iter().map(|(c, s, p)| call(c, s, p)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn blast_radius_matches_brute_force(edges in random_edges(), pick in prop::collection::vec(0usize..64, 1..4)) {
        let g = CallGraph::new(edges.clone());
        prop_assume!(!g.is_empty());
        let failed: Vec<u32> = pick.iter().map(|p| (p % g.len()) as u32).collect();
        let failed_ips: HashSet<IpAddr> = failed.iter().map(|&n| g.ip(n)).collect();
        let impact = g.blast_radius(&failed, u32::MAX);
        prop_assert_eq!(ips(&g, impact.broken.iter().map(|i| i.node)), brute_blast(&edges, &failed_ips));
    }

    #[test]
    fn single_failure_counts_match_brute_force(edges in random_edges()) {
        let g = CallGraph::new(edges.clone());
        let critical = g.critical_dependencies(usize::MAX).expect("within budget");
        let spofs = g.single_points_of_failure(&critical);
        let breaks: BTreeMap<u32, u32> = spofs.iter().map(|s| (s.node, s.breaks)).collect();
        for x in 0..g.len() as u32 {
            let expected = brute_blast(&edges, &[g.ip(x)].into()).len() as u32;
            prop_assert_eq!(breaks.get(&x).copied().unwrap_or(0), expected, "asset {}", g.ip(x));
        }
    }

    #[test]
    fn cut_vertices_match_petgraph(edges in random_edges()) {
        let g = CallGraph::new(edges);
        let mut un = UnGraph::<(), ()>::new_undirected();
        let ids: Vec<NodeIndex> = (0..g.len()).map(|_| un.add_node(())).collect();
        for v in 0..g.len() as u32 {
            for w in g.callees(v) {
                un.add_edge(ids[v as usize], ids[w as usize], ());
            }
        }
        let expected: BTreeSet<u32> = petgraph::algo::articulation_points::articulation_points(&un)
            .into_iter()
            .map(|n| n.index() as u32)
            .collect();
        let found: BTreeSet<u32> = g.cut_vertices().into_iter().map(|(n, _)| n).collect();
        prop_assert_eq!(found, expected);
    }

    #[test]
    fn dominated_counts_match_petgraph(edges in random_edges()) {
        let g = CallGraph::new(edges);
        prop_assume!(!g.is_empty());
        // The same construction with petgraph: reversed edges, a virtual root above every
        // asset that calls nothing and above each part not reached from those.
        let n = g.len();
        let mut rev = DiGraph::<(), ()>::new();
        let ids: Vec<NodeIndex> = (0..=n).map(|_| rev.add_node(())).collect();
        let root = ids[n];
        for v in 0..n as u32 {
            for w in g.callees(v) {
                rev.add_edge(ids[w as usize], ids[v as usize], ());
            }
        }
        let mut hung: Vec<u32> = (0..n as u32).filter(|&v| g.callees(v).next().is_none()).collect();
        let mut seen = HashSet::new();
        let mark = |start: u32, seen: &mut HashSet<u32>| {
            let mut dfs = petgraph::visit::Dfs::new(&rev, ids[start as usize]);
            let mut fresh = false;
            while let Some(x) = dfs.next(&rev) {
                fresh |= seen.insert(x.index() as u32);
            }
            fresh
        };
        hung.retain(|&s| mark(s, &mut seen));
        for v in 0..n as u32 {
            if !seen.contains(&v) {
                mark(v, &mut seen);
                hung.push(v);
            }
        }
        for &h in &hung {
            rev.add_edge(root, ids[h as usize], ());
        }
        let doms = petgraph::algo::dominators::simple_fast(&rev, root);
        let mut expected = vec![0u32; n];
        for &id in &ids[..n] {
            for d in doms.strict_dominators(id).into_iter().flatten() {
                if d != root {
                    expected[d.index()] += 1;
                }
            }
        }
        prop_assert_eq!(g.dominated_counts(), expected);
    }
}
