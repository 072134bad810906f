//! Exporter faults on a real node: an exporter that restarts with a different template under
//! the same id and sequence numbers from zero, and one whose clock jumps a day ahead and back.
//! Each must lose nothing (bytes exact on the map) and say what it saw (a sequence reset, not
//! loss).

use std::net::UdpSocket;

use flowlens_tests::{free_tcp_port, free_udp_port, now_ms, tcp_flow, NodeProcess};
use proto::decode::fields::FieldSpec;
use proto::encode::{self, IpfixMessage};
use proto::FlowRecord;

fn start() -> (tempfile::TempDir, NodeProcess) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flowlens"));
    let node = NodeProcess::start(bin, dir.path(), free_tcp_port(), free_udp_port(), &[], &[]);
    node.wait_until(|n| n.get("/api/v1/health/ready").0 == 200, "ready");
    (dir, node)
}

/// The standard template with source and destination swapped: the same id, another layout.
fn swapped_template() -> Vec<FieldSpec> {
    let mut fields = encode::standard_ipv4_template();
    fields.swap(0, 1);
    fields.swap(2, 3);
    fields
}

/// A record in [`swapped_template`] layout.
fn swapped_record(w: &mut encode::Writer, r: &FlowRecord) {
    let mut swapped = *r;
    std::mem::swap(&mut swapped.src_addr, &mut swapped.dst_addr);
    std::mem::swap(&mut swapped.src_port, &mut swapped.dst_port);
    encode::standard_ipv4_record(w, &swapped);
}

/// An IPFIX template message and a data message of `flows` (domain 1, sequence `seq`).
fn messages(
    seq: u32,
    fields: &[FieldSpec],
    flows: &[FlowRecord],
    write: fn(&mut encode::Writer, &FlowRecord),
    export_secs: u32,
) -> [Vec<u8>; 2] {
    let mut template = IpfixMessage::new(export_secs, seq, 1);
    template.set(2).template(256, 0, fields);
    let mut data = IpfixMessage::new(export_secs, seq, 1);
    data.set(256);
    for f in flows {
        write(data.writer(), f);
    }
    [template.finish(), data.finish()]
}

/// Dependency id → (bytes to server, 0) that `flows` must become.
fn bytes_of<'a>(
    flows: impl Iterator<Item = &'a FlowRecord>,
) -> std::collections::BTreeMap<String, (u64, u64)> {
    flows
        .map(|f| {
            let id = format!("{}>{}:{}/6", f.src_addr, f.dst_addr, f.dst_port);
            (id, (f.bytes, 0))
        })
        .collect()
}

fn exporter_counters(node: &NodeProcess) -> serde_json::Value {
    node.get("/api/v1/exporters")
        .1
        .as_array()
        .and_then(|a| a.first().cloned())
        .unwrap_or_default()
}

#[test]
fn an_exporter_restarting_with_a_new_template_and_sequence_loses_nothing() {
    let (_dir, node) = start();
    let exporter = UdpSocket::bind("127.0.0.1:0").expect("exporter");
    let secs = (now_ms() / 1000) as u32;
    let before: Vec<FlowRecord> = (1..=3)
        .map(|i| tcp_flow(&format!("10.2.0.{i}"), "10.1.0.10", 443, 1_000 * i))
        .collect();
    let standard = encode::standard_ipv4_template();
    // It has been running a while: its sequence is at 1000.
    for m in messages(1000, &standard, &before, encode::standard_ipv4_record, secs) {
        exporter.send_to(&m, node.udp).expect("sent");
    }
    node.wait_until(|n| n.dependencies().len() == 3, "the first three");
    // Restarted: template 256 now lists the destination first; sequence numbers from 0 again.
    let after = vec![
        tcp_flow("10.3.0.1", "10.1.0.20", 5432, 7_000),
        tcp_flow("10.3.0.2", "10.1.0.20", 5432, 9_000),
    ];
    for m in messages(0, &swapped_template(), &after, swapped_record, secs + 5) {
        exporter.send_to(&m, node.udp).expect("sent");
    }
    let want = bytes_of(before.iter().chain(&after));
    node.wait_until(
        |n| n.dependencies() == want,
        "every flow's bytes, in the right direction",
    );
    node.wait_until(
        |n| exporter_counters(n)["sequence_resets"].as_u64() >= Some(1),
        "a sequence reset counted",
    );
    let counters = exporter_counters(&node);
    assert_eq!(
        counters["sequence_lost"], 0,
        "a restart is not loss: {counters}"
    );
}

#[test]
fn an_exporter_whose_clock_jumps_a_day_loses_nothing() {
    let (_dir, node) = start();
    let exporter = UdpSocket::bind("127.0.0.1:0").expect("exporter");
    let now = now_ms();
    let day = 86_400_000;
    let standard = encode::standard_ipv4_template();
    let mut sent = Vec::new();
    for (i, shift) in [0i64, day, -day, 0].into_iter().enumerate() {
        let mut f = tcp_flow(
            &format!("10.4.0.{}", i + 1),
            "10.1.0.30",
            443,
            500 + i as u64,
        );
        f.first_ms = f.first_ms.saturating_add_signed(shift);
        f.last_ms = f.last_ms.saturating_add_signed(shift);
        let secs = (now.saturating_add_signed(shift) / 1000) as u32;
        let seq = i as u32;
        for m in messages(seq, &standard, &[f], encode::standard_ipv4_record, secs) {
            exporter.send_to(&m, node.udp).expect("sent");
        }
        sent.push(f);
    }
    let want = bytes_of(sent.iter());
    node.wait_until(|n| n.dependencies() == want, "all four flows' bytes");
    // The map's times stay on the node's clock: nothing is seen in the future.
    let (_, list) = node.get("/api/v1/dependencies?limit=100");
    let latest = now_ms();
    for d in list["items"].as_array().expect("items") {
        let seen = d["last_seen_ms"].as_u64().expect("last seen");
        assert!(seen <= latest + 1_000, "{d} seen after {latest}");
    }
    assert_eq!(exporter_counters(&node)["sequence_lost"], 0);
}
