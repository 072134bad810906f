//! The aggregator → graph hand-off under a slow graph: at most a few traffic messages wait in
//! the graph's (unbounded) mailbox; the rest keeps merging in the aggregator, and nothing is lost.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actors::aggregator::{Aggregator, AggregatorArgs, AggregatorConfig, AggregatorMsg, FlowBatch};
use actors::graph::GraphMsg;
use actors::lane::Lane;
use proto::FlowRecord;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::Semaphore;

/// A graph stand-in that handles each traffic message only when the test lets it.
struct SlowGraph;

struct Seen {
    gate: Arc<Semaphore>,
    messages: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl Actor for SlowGraph {
    type Msg = GraphMsg;
    type State = Seen;
    type Arguments = Seen;

    async fn pre_start(
        &self,
        _myself: ActorRef<GraphMsg>,
        seen: Seen,
    ) -> Result<Seen, ActorProcessingErr> {
        Ok(seen)
    }

    async fn handle(
        &self,
        _myself: ActorRef<GraphMsg>,
        msg: GraphMsg,
        seen: &mut Seen,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            GraphMsg::Observe(edges, _, _token) => {
                seen.gate.acquire().await?.forget();
                seen.messages.fetch_add(1, Ordering::SeqCst);
                let bytes: u64 = edges
                    .iter()
                    .map(|e| e.traffic.bytes_to_server + e.traffic.bytes_to_client)
                    .sum();
                seen.bytes.fetch_add(bytes, Ordering::SeqCst);
            }
            GraphMsg::Flush(reply) => {
                let _ = reply.send(());
            }
            _ => {}
        }
        Ok(())
    }
}

fn flow(client: u8, bytes: u64) -> FlowRecord {
    FlowRecord {
        src_addr: IpAddr::V4(Ipv4Addr::new(10, 1, 0, client)),
        dst_addr: IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1)),
        src_port: 40_000,
        dst_port: 443,
        protocol: 6,
        tcp_flags: 0x1b,
        bytes,
        packets: 1,
        first_ms: 1_000,
        last_ms: 2_000,
        ..FlowRecord::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_graph_gets_a_bounded_number_of_messages_and_every_byte() {
    let gate = Arc::new(Semaphore::new(0));
    let messages = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let seen = Seen {
        gate: gate.clone(),
        messages: messages.clone(),
        bytes: bytes.clone(),
    };
    let (graph, _) = Actor::spawn(None, SlowGraph, seen).await.expect("graph");
    let (aggregator, _) = Actor::spawn(
        None,
        Aggregator,
        AggregatorArgs {
            config: AggregatorConfig {
                recent_flows: 0,
                flush_interval: Duration::from_secs(3600),
                window: Duration::from_secs(300),
            },
            graph,
            raw: None,
            advisor: None,
        },
    )
    .await
    .expect("aggregator");
    let lane = Lane::new(1_000_000, usize::MAX);
    let mut sent = 0;
    // Twenty periods, each handed over by a tick, while the graph handles nothing.
    for period in 0..20u8 {
        let flows: Vec<FlowRecord> = (1..=10).map(|c| flow(c, 100 + u64::from(period))).collect();
        sent += flows.iter().map(|f| f.bytes).sum::<u64>();
        let slot = lane.reserve(flows.len()).expect("lane room");
        aggregator
            .send_message(AggregatorMsg::Ingest(FlowBatch { flows, slot }))
            .expect("ingest");
        aggregator.send_message(AggregatorMsg::Tick).expect("tick");
    }
    // Everything above is handled once this answers (one mailbox, in order).
    let totals = match aggregator
        .call(AggregatorMsg::Totals, Some(Duration::from_secs(10)))
        .await
        .expect("totals")
    {
        ractor::rpc::CallResult::Success(t) => t,
        _ => panic!("no totals"),
    };
    assert_eq!(totals.flows, 200);
    assert!(
        totals.pending_edges > 0,
        "the rest waits, merged, in the aggregator"
    );
    // Let the graph go, then flush: whatever waited goes in one more message.
    gate.add_permits(1_000);
    let flushed = aggregator
        .call(AggregatorMsg::Flush, Some(Duration::from_secs(10)))
        .await
        .expect("flush");
    assert!(matches!(flushed, ractor::rpc::CallResult::Success(())));
    let handed = messages.load(Ordering::SeqCst);
    assert!(
        (2..=5).contains(&handed),
        "{handed} messages for 20 ticks: at most 4 in flight, then the flush"
    );
    assert_eq!(
        bytes.load(Ordering::SeqCst),
        sent,
        "every byte arrives once"
    );
}
