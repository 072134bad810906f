//! Exporter faults against one real node: an exporter that restarts with a different template
//! under the same id and its sequence numbers from zero, and one whose clock jumps a day ahead
//! and back. Each must lose nothing (bytes exact on the map) and say what it saw (a sequence
//! reset, not loss; nothing seen in the future).

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use flowlens_tests::cluster::settle;
use flowlens_tests::{free_tcp_port, free_udp_port, now_ms, tcp_flow, NodeProcess};
use proto::decode::fields::FieldSpec;
use proto::encode::{self, IpfixMessage};
use proto::FlowRecord;

use super::{Outcome, Scale};

/// A ready node in a fresh directory (the directory goes with it).
fn start(bin: &Path) -> Result<(tempfile::TempDir, NodeProcess), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let node = NodeProcess::start(bin, dir.path(), free_tcp_port(), free_udp_port(), &[], &[]);
    super::wait(Duration::from_secs(30), || {
        node.get("/api/v1/health/ready").0 == 200
    })
    .ok_or("the node never became ready")?;
    Ok((dir, node))
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

/// Dependency id → (bytes to server, 0) that TCP `flows` must become.
fn bytes_of<'a>(flows: impl Iterator<Item = &'a FlowRecord>) -> BTreeMap<String, (u64, u64)> {
    let mut want = BTreeMap::new();
    for f in flows {
        let id = format!("{}>{}:{}/6", f.src_addr, f.dst_addr, f.dst_port);
        want.entry(id).or_insert((0, 0)).0 += f.bytes;
    }
    want
}

/// The first exporter's counters as the node reports them.
fn exporter_counters(node: &NodeProcess) -> serde_json::Value {
    node.get("/api/v1/exporters")
        .1
        .as_array()
        .and_then(|a| a.first().cloned())
        .unwrap_or_default()
}

/// Flows from `clients` clients 10.<net>.<i / 250>.<i % 250 + 1> to `server` on `port`.
fn flows(net: u8, clients: usize, server: &str, port: u16, bytes: u64) -> Vec<FlowRecord> {
    (0..clients)
        .map(|i| {
            let client = format!("10.{net}.{}.{}", i / 250, i % 250 + 1);
            tcp_flow(&client, server, port, bytes + i as u64)
        })
        .collect()
}

/// Sends `flows` as template + data messages of at most 20 records each, sequence from `seq`.
fn export(
    socket: &UdpSocket,
    to: std::net::SocketAddr,
    seq: u32,
    fields: &[FieldSpec],
    flows: &[FlowRecord],
    write: fn(&mut encode::Writer, &FlowRecord),
    export_secs: u32,
) -> Result<(), String> {
    let mut seq = seq;
    for chunk in flows.chunks(20) {
        for m in messages(seq, fields, chunk, write, export_secs) {
            socket.send_to(&m, to).map_err(|e| e.to_string())?;
        }
        seq = seq.wrapping_add(chunk.len() as u32);
        std::thread::sleep(Duration::from_micros(300));
    }
    Ok(())
}

/// An exporter restarts: another layout under its template id, sequence numbers from 0.
pub fn restart(bin: &Path, scale: Scale) -> Result<Outcome, String> {
    let (_dir, node) = start(bin)?;
    let exporter = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let secs = (now_ms() / 1000) as u32;
    let n = 5 * usize::from(scale.rounds) / 2;
    let before = flows(2, n, "10.1.0.10", 443, 1_000);
    let standard = encode::standard_ipv4_template();
    // It has been running a while: its sequence is at 1000.
    let record = encode::standard_ipv4_record;
    export(&exporter, node.udp, 1000, &standard, &before, record, secs)?;
    let nodes = [&node];
    settle(&nodes, &bytes_of(before.iter()), scale.settle)
        .map_err(|m| format!("{m} of the first flows missing before the restart"))?;
    // Restarted: template 256 now lists the destination first; sequence numbers from 0 again.
    let after = flows(3, n, "10.1.0.20", 5432, 7_000);
    let restarted = Instant::now();
    export(
        &exporter,
        node.udp,
        0,
        &swapped_template(),
        &after,
        swapped_record,
        secs + 5,
    )?;
    let want = bytes_of(before.iter().chain(&after));
    let (recovery, lost) = match settle(&nodes, &want, scale.settle) {
        Ok(_) => (restarted.elapsed(), 0),
        Err(m) => (restarted.elapsed(), m),
    };
    super::wait(Duration::from_secs(10), || {
        exporter_counters(&node)["sequence_resets"].as_u64() >= Some(1)
    })
    .ok_or("no sequence reset counted")?;
    let counters = exporter_counters(&node);
    if counters["sequence_lost"] != 0 {
        return Err(format!("a restart counted as loss: {counters}"));
    }
    Ok(Outcome {
        scenario: "exporter-restart",
        flows: before.len() + after.len(),
        lost,
        recovery,
        detail: format!(
            "every flow decoded with the new layout, in the right direction; sequence resets \
             {}, sequence loss {}",
            counters["sequence_resets"], counters["sequence_lost"]
        ),
    })
}

/// An exporter's clock jumps a day ahead, then a day back.
pub fn clock_jump(bin: &Path, scale: Scale) -> Result<Outcome, String> {
    let (_dir, node) = start(bin)?;
    let exporter = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let now = now_ms();
    let day = 86_400_000;
    let standard = encode::standard_ipv4_template();
    let per = (usize::from(scale.rounds) / 4).max(1);
    let mut sent = Vec::new();
    let started = Instant::now();
    for (i, shift) in [0i64, day, -day, 0].into_iter().enumerate() {
        let mut batch = flows(4, per, &format!("10.1.0.{}", 30 + i), 443, 500);
        for f in &mut batch {
            f.first_ms = f.first_ms.saturating_add_signed(shift);
            f.last_ms = f.last_ms.saturating_add_signed(shift);
        }
        let secs = (now.saturating_add_signed(shift) / 1000) as u32;
        let seq = (i * per) as u32;
        export(
            &exporter,
            node.udp,
            seq,
            &standard,
            &batch,
            encode::standard_ipv4_record,
            secs,
        )?;
        sent.extend(batch);
    }
    let want = bytes_of(sent.iter());
    let lost = settle(&[&node], &want, scale.settle).err().unwrap_or(0);
    let recovery = started.elapsed();
    // The map's times stay on the node's clock: nothing is seen in the future.
    let (_, list) = node.get("/api/v1/dependencies?limit=10000");
    let latest = now_ms();
    let future = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| {
            d["last_seen_ms"]
                .as_u64()
                .is_none_or(|seen| seen > latest + 1_000)
        })
        .count();
    if future > 0 {
        return Err(format!("{future} dependencies seen in the future"));
    }
    let counters = exporter_counters(&node);
    if counters["sequence_lost"] != 0 {
        return Err(format!("a clock jump counted as loss: {counters}"));
    }
    Ok(Outcome {
        scenario: "clock-jump",
        flows: sent.len(),
        lost,
        recovery,
        detail: "no dependency seen in the future (the map keeps the node's clock); no sequence \
                 loss"
            .into(),
    })
}
