//! The actor pipeline on real UDP: captures from real exporters are sent to a collector on a
//! loopback port; the events the graph commits must describe the captured network with the right
//! client/server direction and byte totals, and the exporter counters must add up.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actors::aggregator::{Aggregator, AggregatorArgs, AggregatorConfig, AggregatorMsg, FlowQuery};
use actors::collector::{Collector, CollectorArgs, CollectorConfig, CollectorMsg};
use actors::graph::{Graph, GraphArgs, GraphConfig, KnownState};
use actors::lane::Lane;
use actors::EventSink;
use flowlens_tests::{data_dir, load_truth, read_pcap};
use proto::event::{EventBatch, EventKind};
use ractor::{Actor, ActorRef};

/// Keeps committed batches in memory (the node's Raft log is tested in the node crate).
#[derive(Default)]
struct Recorder(Mutex<Vec<EventBatch>>);

impl EventSink for Recorder {
    fn commit<'a>(
        &'a self,
        batch: &'a EventBatch,
    ) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'a>> {
        Box::pin(async move {
            let mut all = self.0.lock().map_err(|e| e.to_string())?;
            all.push(batch.clone());
            Ok(all.len() as u64)
        })
    }
}

struct Pipeline {
    collector: ActorRef<CollectorMsg>,
    aggregator: ActorRef<AggregatorMsg>,
    recorder: Arc<Recorder>,
    addr: SocketAddr,
}

async fn start(state_dir: Option<std::path::PathBuf>) -> Pipeline {
    let recorder = Arc::new(Recorder::default());
    let (graph, _) = Actor::spawn(
        None,
        Graph,
        GraphArgs {
            config: GraphConfig {
                internal_networks: vec![],
                idle_expiry: Duration::from_secs(3600),
                stats_interval: Duration::from_secs(3600),
                max_edges_per_event: 1000,
                discovery_rate: 5000,
            },
            sink: recorder.clone(),
            known: KnownState::default(),
            rollups: None,
        },
    )
    .await
    .expect("graph starts");
    let (aggregator, _) = Actor::spawn(
        None,
        Aggregator,
        AggregatorArgs {
            config: AggregatorConfig {
                recent_flows: 10_000,
                flush_interval: Duration::from_secs(3600),
                window: Duration::from_secs(300),
            },
            graph,
            raw: None,
            advisor: None,
        },
    )
    .await
    .expect("aggregator starts");
    let (collector, _) = Actor::spawn(
        None,
        Collector,
        CollectorArgs {
            config: CollectorConfig {
                listeners: vec!["127.0.0.1:0".parse().expect("addr")],
                recv_buffer_bytes: 1 << 20,
                batch_datagrams: 32,
                state_dir,
            },
            lane: Lane::new(64, usize::MAX),
            relay: actors::relay::Relay::default(),
            aggregator: aggregator.clone(),
        },
    )
    .await
    .expect("collector starts");
    let addrs = ractor::call!(collector, CollectorMsg::LocalAddrs).expect("addrs");
    Pipeline {
        collector,
        aggregator,
        recorder,
        addr: addrs[0],
    }
}

async fn send_capture(name: &str, to: SocketAddr) -> usize {
    let datagrams = read_pcap(&data_dir().join(name)).expect("capture reads");
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    for d in &datagrams {
        socket.send_to(&d.payload, to).await.expect("send");
    }
    datagrams.len()
}

/// Waits until the exporter counters show `packets` datagrams.
async fn wait_for_packets(p: &Pipeline, packets: u64) {
    for _ in 0..200 {
        let exporters = ractor::call!(p.collector, CollectorMsg::Exporters).expect("exporters");
        if exporters.iter().map(|e| e.packets).sum::<u64>() >= packets {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("collector did not receive {packets} datagrams");
}

const SERVER_PORTS: [u16; 6] = [22, 53, 80, 443, 5432, 6379];

/// (client, server, port, protocol) → bytes to server, bytes to client, from the truth.
type Expected = BTreeMap<(IpAddr, IpAddr, u16, u8), (u64, u64)>;

fn expected_dependencies(name: &str) -> Expected {
    let truth = load_truth(name.trim_end_matches(".pcap")).expect("truth");
    let mut out = Expected::new();
    for r in &truth.records {
        if r.proto != 6 && r.proto != 17 {
            continue;
        }
        if SERVER_PORTS.contains(&r.dst_port) {
            out.entry((r.src, r.dst, r.dst_port, r.proto))
                .or_default()
                .0 += r.bytes;
        } else if SERVER_PORTS.contains(&r.src_port) {
            out.entry((r.dst, r.src, r.src_port, r.proto))
                .or_default()
                .1 += r.bytes;
        }
    }
    out
}

fn committed_dependencies(
    batches: &[EventBatch],
) -> (BTreeSet<(IpAddr, IpAddr, u16, u8)>, Expected) {
    let mut discovered = BTreeSet::new();
    let mut traffic = Expected::new();
    for e in batches.iter().flat_map(|b| &b.events) {
        match &e.kind {
            EventKind::DependencyDiscovered { dependency: d } => {
                discovered.insert((d.client, d.service.ip, d.service.port, d.service.protocol));
            }
            EventKind::DependencyTraffic { edges } => {
                for edge in edges {
                    let d = edge.dependency;
                    let t = traffic
                        .entry((d.client, d.service.ip, d.service.port, d.service.protocol))
                        .or_default();
                    t.0 += edge.traffic.bytes_to_server;
                    t.1 += edge.traffic.bytes_to_client;
                }
            }
            _ => {}
        }
    }
    (discovered, traffic)
}

async fn maps_capture(name: &str) {
    let p = start(None).await;
    let sent = send_capture(name, p.addr).await;
    wait_for_packets(&p, sent as u64).await;
    ractor::call!(p.aggregator, AggregatorMsg::Flush).expect("flush");
    let batches = p.recorder.0.lock().expect("lock").clone();
    let (discovered, traffic) = committed_dependencies(&batches);
    let expected = expected_dependencies(name);
    assert!(
        !expected.is_empty(),
        "{name}: truth has TCP/UDP conversations"
    );
    for (key, bytes) in &expected {
        assert!(
            discovered.contains(key),
            "{name}: dependency {key:?} not discovered"
        );
        assert_eq!(traffic.get(key), Some(bytes), "{name}: bytes of {key:?}");
    }
    for key in &discovered {
        let (_, _, port, proto) = *key;
        if proto == 6 || proto == 17 {
            assert!(
                SERVER_PORTS.contains(&port),
                "{name}: dependency {key:?} points at a client port"
            );
        }
    }
    let exporters = ractor::call!(p.collector, CollectorMsg::Exporters).expect("exporters");
    let truth = load_truth(name.trim_end_matches(".pcap")).expect("truth");
    assert_eq!(exporters.len(), 1);
    assert_eq!(exporters[0].packets, sent as u64);
    assert_eq!(exporters[0].records, truth.records.len() as u64);
    assert_eq!(exporters[0].sequence_lost, 0, "{name}: {:?}", exporters[0]);
    assert!(
        exporters[0].errors.is_empty(),
        "{name}: {:?}",
        exporters[0].errors
    );
    let recent = ractor::call!(
        p.aggregator,
        AggregatorMsg::RecentFlows,
        FlowQuery {
            port: Some(5432),
            limit: 1000,
            ..FlowQuery::default()
        }
    )
    .expect("recent flows");
    let truth_5432 = truth
        .records
        .iter()
        .filter(|r| r.src_port == 5432 || r.dst_port == 5432)
        .count();
    assert_eq!(
        recent.total, truth_5432 as u64,
        "{name}: flows on port 5432"
    );
    p.collector.stop(None);
}

#[tokio::test]
async fn maps_softflowd_netflow_v5_with_client_server_direction_and_bytes() {
    maps_capture("softflowd_v5.pcap").await;
}

#[tokio::test]
async fn maps_softflowd_netflow_v9() {
    maps_capture("softflowd_v9.pcap").await;
}

#[tokio::test]
async fn maps_softflowd_ipfix_without_counting_its_lagging_sequence_as_loss() {
    maps_capture("softflowd_ipfix.pcap").await;
}

#[tokio::test]
async fn maps_softflowd_ipfix_biflows() {
    maps_capture("softflowd_ipfix_biflow.pcap").await;
}

#[tokio::test]
async fn maps_pmacct_ipfix_and_v9() {
    maps_capture("pmacct_ipfix.pcap").await;
    maps_capture("pmacct_v9.pcap").await;
}

#[tokio::test]
async fn maps_pmacct_sflow_samples() {
    maps_capture("pmacct_sflow.pcap").await;
}

#[tokio::test]
async fn templates_saved_by_one_collector_decode_data_for_the_next() {
    let dir = tempfile::tempdir().expect("tempdir");
    let datagrams = read_pcap(&data_dir().join("softflowd_v9.pcap")).expect("capture");
    let p = start(Some(dir.path().to_path_buf())).await;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    socket
        .send_to(&datagrams[0].payload, p.addr)
        .await
        .expect("send");
    wait_for_packets(&p, 1).await;
    ractor::call!(p.collector, CollectorMsg::StopReading).expect("stop");
    let port = p.addr.port();
    p.collector.stop(None);
    let saved = dir.path().join(format!("templates-{port}.json"));
    assert!(saved.exists(), "templates saved at {}", saved.display());

    // A new collector on the same port reloads them: data-only packets decode at once.
    let q = start_on(dir.path(), port).await;
    let data_only: Vec<_> = datagrams[1..].iter().collect();
    for d in &data_only {
        socket.send_to(&d.payload, q.addr).await.expect("send");
    }
    wait_for_packets(&q, data_only.len() as u64).await;
    let exporters = ractor::call!(q.collector, CollectorMsg::Exporters).expect("exporters");
    assert!(exporters[0].records > 0, "{:?}", exporters[0]);
    assert_eq!(
        exporters[0].errors.get("no_template"),
        None,
        "{:?}",
        exporters[0]
    );
}

async fn start_on(dir: &std::path::Path, port: u16) -> Pipeline {
    let mut p = start(None).await;
    p.collector.stop(None);
    let (collector, _) = Actor::spawn(
        None,
        Collector,
        CollectorArgs {
            config: CollectorConfig {
                listeners: vec![SocketAddr::from(([127, 0, 0, 1], port))],
                recv_buffer_bytes: 1 << 20,
                batch_datagrams: 32,
                state_dir: Some(dir.to_path_buf()),
            },
            lane: Lane::new(64, usize::MAX),
            relay: actors::relay::Relay::default(),
            aggregator: p.aggregator.clone(),
        },
    )
    .await
    .expect("collector restarts");
    p.collector = collector;
    p.addr = SocketAddr::from(([127, 0, 0, 1], port));
    p
}
