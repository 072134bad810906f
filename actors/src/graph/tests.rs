use std::future::Future;
use std::pin::Pin;

use super::*;

struct Nowhere;

impl EventSink for Nowhere {
    fn commit<'a>(
        &'a self,
        _batch: &'a EventBatch,
    ) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'a>> {
        Box::pin(async { Ok(0) })
    }
}

fn edge(client: [u8; 4], server: [u8; 4], port: u16) -> EdgeStats {
    EdgeStats {
        dependency: DependencyKey {
            client: IpAddr::from(client),
            service: ServiceKey {
                ip: IpAddr::from(server),
                port,
                protocol: 6,
            },
        },
        traffic: TrafficDelta {
            bytes_to_server: 100,
            flows: 1,
            ..TrafficDelta::default()
        },
    }
}

fn kinds(events: &[Event]) -> Vec<String> {
    let mut v: Vec<String> = events
        .iter()
        .map(|e| {
            format!("{:?}", e.kind)
                .split([' ', '{'])
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    v.sort();
    v
}

fn state(max_edges_per_event: usize) -> GraphState {
    let config = GraphConfig {
        internal_networks: vec![],
        idle_expiry: Duration::from_secs(60),
        stats_interval: Duration::from_secs(10),
        max_edges_per_event,
        discovery_rate: 5000,
    };
    GraphState::new(config, Committer::start(Arc::new(Nowhere), None, || {}))
}

/// What observing `edges` at `at` commits when the discovery pace lets everything through: the
/// events `observe` makes, then the announcements.
fn found(g: &mut GraphState, edges: Vec<EdgeStats>, at: u64) -> Vec<Event> {
    let mut events = g.observe(edges, at);
    events.extend(g.announcements(usize::MAX));
    events
}

/// Edges and bytes of the traffic events among `events`.
fn traffic_of(events: &[Event]) -> (usize, u64) {
    let mut out = (0, 0);
    for e in events {
        if let EventKind::DependencyTraffic { edges } = &e.kind {
            assert!(edges.len() <= 1000);
            out.0 += edges.len();
            out.1 += edges.iter().map(|e| e.traffic.bytes_to_server).sum::<u64>();
        }
    }
    out
}

#[tokio::test]
async fn a_sweep_goes_batch_by_batch_and_counts_every_observation_once() {
    let mut g = state(1000);
    let edges = many(5000);
    found(&mut g, edges.clone(), 1_000);
    g.start_sweep(2_000);
    let first = g.sweep_events(2000, usize::MAX);
    assert_eq!(first.len(), 2);
    assert_eq!(traffic_of(&first), (2000, 200_000));
    // In key order (the projection's), whatever order the map holds them in.
    let keys: Vec<DependencyKey> = first
        .iter()
        .flat_map(|e| match &e.kind {
            EventKind::DependencyTraffic { edges } => edges.iter().map(|x| x.dependency).collect(),
            _ => Vec::new(),
        })
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        keys.first().map(|k| k.client),
        Some(IpAddr::from([10, 1, 0, 0]))
    );
    assert!(g.sweep.is_some());
    // Mid-sweep: everything seen again, plus a new dependency.
    found(&mut g, edges, 3_000);
    found(&mut g, vec![edge([10, 9, 9, 9], [10, 2, 0, 1], 443)], 3_000);
    // A second start does not restart the sweep under way.
    g.start_sweep(4_000);
    let rest: Vec<Event> = [
        g.sweep_events(2000, usize::MAX),
        g.sweep_events(2000, usize::MAX),
    ]
    .concat();
    assert!(rest.iter().all(|e| e.at_ms == 2_000));
    // Not yet visited: both observations; already visited, or found since the sweep
    // started: waits for the next sweep.
    assert_eq!(traffic_of(&rest), (3000, 600_000));
    assert!(g.sweep.is_none());
    g.start_sweep(10_000);
    let next = g.sweep_events(usize::MAX, usize::MAX);
    assert_eq!(traffic_of(&next), (2001, 200_100));
    assert!(g.sweep.is_none());
    // Nothing is left: a sweep over a quiet map is empty.
    g.start_sweep(20_000);
    assert!(g.sweep_events(usize::MAX, usize::MAX).is_empty());
}

#[tokio::test]
async fn a_sweep_hands_on_traffic_as_it_comes_due_over_half_the_stats_interval() {
    let mut g = state(1000);
    g.config.stats_interval = Duration::from_millis(400);
    // A sweep over an empty map ends at once, so that the next one can start.
    g.start_sweep(500);
    g.sweep();
    assert!(g.sweep.is_none());
    let edges = many(5000);
    found(&mut g, edges, 1_000);
    g.start_sweep(2_000);
    // At once: one batch's worth, then nothing more until more is due.
    g.sweep();
    assert_eq!(g.sweep.as_ref().map(|s| s.next), Some(MAX_BATCH_WEIGHT));
    g.sweep();
    assert_eq!(g.sweep.as_ref().map(|s| s.next), Some(MAX_BATCH_WEIGHT));
    // Half the interval on, all of it (as the committer makes room).
    tokio::time::sleep(Duration::from_millis(250)).await;
    for _ in 0..100 {
        g.drain();
        g.sweep();
        if g.sweep.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(g.sweep.is_none());
    assert!(g.dependencies.values().all(|d| d.traffic.flows == 0));
}

#[tokio::test]
async fn seen_dependencies_keep_their_assets_and_service_alive_and_idle_ones_expire_together() {
    let mut g = state(1000);
    let t0 = 1_000_000;
    let first = found(&mut g, vec![edge([10, 0, 0, 1], [10, 0, 0, 2], 443)], t0);
    assert_eq!(
        kinds(&first),
        [
            "AssetDiscovered",
            "AssetDiscovered",
            "DependencyDiscovered",
            "ServiceDiscovered"
        ]
    );
    // Seen again (the one-lookup path) 50 s later: nothing new, traffic merged.
    assert!(found(
        &mut g,
        vec![edge([10, 0, 0, 1], [10, 0, 0, 2], 443)],
        t0 + 50_000
    )
    .is_empty());
    g.start_sweep(t0 + 50_000);
    let traffic = g.sweep_events(usize::MAX, usize::MAX);
    assert!(g.sweep.is_none());
    match traffic.first().map(|e| &e.kind) {
        Some(EventKind::DependencyTraffic { edges }) => {
            assert_eq!(edges.len(), 1);
            assert_eq!(edges[0].traffic.bytes_to_server, 200);
            assert_eq!(edges[0].traffic.flows, 2);
        }
        other => panic!("expected one traffic event, got {other:?}"),
    }
    // 70 s after the first sighting but 20 s after the last: assets and service stay.
    assert!(g.expiry_events(t0 + 70_000).is_empty());
    // Idle past the expiry after the last sighting: all four go at once.
    let gone = g.expiry_events(t0 + 50_000 + 61_000);
    assert_eq!(
        kinds(&gone),
        [
            "AssetExpired",
            "AssetExpired",
            "DependencyExpired",
            "ServiceExpired"
        ]
    );
    assert_eq!(g.graph.edge_count(), 0);
    // Seen again: rediscovered.
    let again = found(
        &mut g,
        vec![edge([10, 0, 0, 1], [10, 0, 0, 2], 443)],
        t0 + 200_000,
    );
    assert_eq!(kinds(&again), kinds(&first));
    assert_eq!(g.graph.edge_count(), 1);
}

#[tokio::test]
async fn traffic_another_node_committed_keeps_a_dependency_alive_here_and_its_expiry_ends_it() {
    let mut g = state(1000);
    let t0 = 1_000_000;
    let x = edge([10, 0, 0, 1], [10, 0, 0, 2], 443);
    let from_elsewhere = |at_ms, kind| EventBatch::new(vec![Event { at_ms, kind }]);
    // Another node discovered x and keeps committing its traffic; this node never sees it.
    g.follow(&from_elsewhere(
        t0,
        EventKind::DependencyDiscovered {
            dependency: x.dependency,
        },
    ));
    for k in 1..=3u64 {
        g.follow(&from_elsewhere(
            t0 + k * 50_000,
            EventKind::DependencyTraffic { edges: vec![x] },
        ));
    }
    // Idle here for 150 s (expiry 60 s), but not idle in the cluster: nothing expires.
    assert!(g.expiry_events(t0 + 150_000 + 30_000).is_empty());
    assert_eq!(g.graph.edge_count(), 1);
    // Its own sightings add to what it followed without a second discovery.
    assert!(found(&mut g, vec![x], t0 + 190_000).is_empty());
    // The other node expired it: so does this one, silently; seen here again, it is new.
    g.follow(&from_elsewhere(
        t0 + 400_000,
        EventKind::DependencyExpired {
            dependency: x.dependency,
        },
    ));
    assert_eq!(g.graph.edge_count(), 0);
    let again = found(&mut g, vec![x], t0 + 410_000);
    assert_eq!(kinds(&again), ["DependencyDiscovered"]);
}

#[tokio::test]
async fn the_advisor_window_sums_each_dependency_once_and_starts_over_when_taken() {
    let mut g = state(1000);
    let (a, b, c) = (
        edge([10, 0, 0, 1], [10, 0, 1, 1], 443),
        edge([10, 0, 0, 2], [10, 0, 1, 1], 443),
        edge([10, 0, 0, 1], [10, 0, 1, 2], 22),
    );
    let mut v6 = edge([0; 4], [0; 4], 53);
    v6.dependency.client = "fd00::7".parse().unwrap_or(IpAddr::from([0; 4]));
    v6.traffic.packets_to_server = 3;
    v6.traffic.bytes_to_client = 40;
    // New dependencies, then one of them again (now active: the one-lookup path) with others.
    found(&mut g, vec![a, b], 1_000);
    found(&mut g, vec![a, c, v6], 2_000);
    found(&mut g, vec![v6], 3_000);
    let mut got: Vec<(DependencyKey, u64, u64)> = g
        .take_window()
        .edges()
        .map(|((client, service), t)| {
            (
                DependencyKey { client, service },
                t.bytes,
                t.request_packets,
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (a.dependency, 200, 0),
        (b.dependency, 100, 0),
        (c.dependency, 100, 0),
        (v6.dependency, 280, 6),
    ];
    want.sort();
    assert_eq!(got, want);
    // Taken: the next window starts empty, and holds only what is observed after.
    assert_eq!(g.take_window().len(), 0);
    found(&mut g, vec![b], 4_000);
    let next: Vec<u64> = g.take_window().edges().map(|(_, t)| t.bytes).collect();
    assert_eq!(next, vec![100]);
    // Another node's traffic keeps the map alive here but is not this node's to advise on.
    let batch = EventBatch::new(vec![Event {
        at_ms: 5_000,
        kind: EventKind::DependencyTraffic { edges: vec![a] },
    }]);
    g.follow(&batch);
    assert!(g.take_window().is_empty());
}

/// `n` dependencies of distinct clients to one service.
fn many(n: u32) -> Vec<EdgeStats> {
    (0..n)
        .map(|i| {
            let [_, _, a, b] = i.to_be_bytes();
            edge([10, 1, a, b], [10, 2, 0, 1], 443)
        })
        .collect()
}

fn discovered(events: &[Event]) -> Vec<(DependencyKey, u64)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::DependencyDiscovered { dependency } => Some((*dependency, e.at_ms)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn new_dependencies_wait_to_be_announced_and_their_traffic_waits_with_them() {
    let mut g = state(1000);
    let edges = many(3000);
    // Their assets and service are announced at once; the dependencies wait.
    let first = g.observe(edges.clone(), 1_000);
    assert!(discovered(&first).is_empty());
    assert_eq!(first.len(), 3000 + 1 + 1);
    assert_eq!(g.counts().unannounced, 3000);
    assert_eq!(g.graph.edge_count(), 3000);
    // Seen again before they are announced: still one announcement each, stamped when found.
    assert!(g.observe(edges[..10].to_vec(), 1_500).is_empty());
    // Not announced: their traffic is not swept.
    g.start_sweep(2_000);
    assert!(g.sweep_events(usize::MAX, usize::MAX).is_empty());
    // Announced in the order found (the projection's key order), as many as asked.
    let some = discovered(&g.announcements(1000));
    assert_eq!(some.len(), 1000);
    assert!(some.iter().all(|(_, at)| *at == 1_000));
    let keys: Vec<DependencyKey> = some.iter().map(|(k, _)| *k).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(g.counts().unannounced, 2000);
    // Now the announced ones' traffic goes, both sightings of those seen twice.
    g.start_sweep(3_000);
    let swept = g.sweep_events(usize::MAX, usize::MAX);
    assert_eq!(traffic_of(&swept), (1000, 100_000 + 10 * 100));
    // One expired meanwhile (another node said so): passed over; the rest go.
    g.follow(&EventBatch::new(vec![Event {
        at_ms: 3_500,
        kind: EventKind::DependencyExpired {
            dependency: edges[2999].dependency,
        },
    }]));
    let rest = discovered(&g.announcements(usize::MAX));
    assert_eq!(rest.len(), 1999);
    assert_eq!(g.counts().unannounced, 0);
    assert!(discovered(&g.announcements(usize::MAX)).is_empty());
}

#[tokio::test]
async fn the_graph_announces_at_its_discovery_rate_and_a_flush_announces_everything() {
    let mut g = state(1000);
    g.pace = announce::Pace::new(1000);
    let events = g.observe(many(5000), 1_000);
    g.commit(events);
    let start = std::time::Instant::now();
    // A second's worth at once (batch by batch, as the committer takes them).
    announce_now(&mut g).await;
    assert_eq!(g.counts().unannounced, 4000);
    announce_now(&mut g).await;
    assert_eq!(g.counts().unannounced, 4000);
    // Then the rate, in whole batches: about 300 after 300 ms.
    tokio::time::sleep(Duration::from_millis(300)).await;
    announce_now(&mut g).await;
    let elapsed = start.elapsed().as_secs_f64();
    let announced = 4000 - g.counts().unannounced;
    assert_eq!(announced % announce::ANNOUNCE_BATCH, 0);
    assert!(
        (300..=(elapsed * 1000.0) as usize).contains(&announced),
        "{announced} announced in {elapsed} s"
    );
    // A flush does not wait for the pace.
    g.flush().await;
    assert_eq!(g.counts().unannounced, 0);
    assert!(g.dependencies.values().all(|d| d.announced));
    // Assets, service, dependencies, and their traffic in events of 1000 edges.
    assert_eq!(g.committer.committed(), 5000 + 1 + 1 + 5000 + 5);
}

/// Lets the graph announce all the pace allows now, the committer taking each batch.
async fn announce_now(g: &mut GraphState) {
    for _ in 0..100 {
        g.drain();
        g.announce();
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_dependency_another_node_announced_is_not_announced_again_here() {
    let mut g = state(1000);
    let x = edge([10, 0, 0, 1], [10, 0, 0, 2], 443);
    // Found here, and before this node announces it, another node's discovery arrives.
    g.observe(vec![x], 1_000);
    g.follow(&EventBatch::new(vec![Event {
        at_ms: 1_000,
        kind: EventKind::DependencyDiscovered {
            dependency: x.dependency,
        },
    }]));
    assert!(discovered(&g.announcements(usize::MAX)).is_empty());
    // And its traffic goes with the next sweep.
    g.start_sweep(2_000);
    assert_eq!(
        traffic_of(&g.sweep_events(usize::MAX, usize::MAX)),
        (1, 100)
    );
}

#[tokio::test]
async fn a_few_new_dependencies_go_at_once_with_their_assets_and_a_backlog_in_whole_batches() {
    let mut g = state(1000);
    // A few: in the batch that announces their assets and service.
    let mut events = g.observe(many(3), 1_000);
    assert!(g.announce_into(&mut events));
    assert_eq!(
        kinds(&events),
        [
            vec!["AssetDiscovered"; 4],
            vec!["DependencyDiscovered"; 3],
            vec!["ServiceDiscovered"]
        ]
        .concat()
    );
    assert_eq!(g.counts().unannounced, 0);
    // A backlog: a whole batch at a time, never the pace's leftovers as a small one (here
    // 120 allowed: two batches, and the other 20 wait).
    g.pace = announce::Pace::new(120);
    let _ = g.observe(many(10_000), 2_000);
    let mut sizes = Vec::new();
    loop {
        let mut events = Vec::new();
        if !g.announce_into(&mut events) {
            break;
        }
        sizes.push(discovered(&events).len());
        g.drain();
        tokio::task::yield_now().await;
    }
    let batch = announce::ANNOUNCE_BATCH;
    assert_eq!(sizes, [batch, batch]);
    assert_eq!(g.counts().unannounced, 10_000 - 3 - 2 * batch);
}
