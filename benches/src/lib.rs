//! Packet builders and an allocation counter shared by the FlowLens benchmarks.
//!
//! Linking this crate installs [`CountingAllocator`] as the global allocator: it forwards to the
//! system allocator and counts every allocation, both in total and per thread, so a bench or a
//! test can say how many allocations a stretch of code made on its own thread. The builders make
//! the realistic datagrams the benches decode: a full NetFlow v5 packet, ~1400-byte NetFlow v9
//! and IPFIX data packets (after their template packets), and an sFlow datagram of raw-header
//! samples.

pub mod faults;
pub mod ingest;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};

use proto::decode::{ipfix, netflow_v5, netflow_v9, sflow, DecodeContext, TemplateCache};
use proto::encode::{self, IpfixMessage, V9Packet, Writer};
use proto::FlowRecord;

// ---------------------------------------------------------------------------------------------
// Allocation counting.
// ---------------------------------------------------------------------------------------------

/// Allocations made by every thread since the program started.
static TOTAL_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Allocations made by this thread. Const-initialised and without a destructor, so reading
    /// it from inside the allocator never allocates.
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting allocations (`alloc`, `alloc_zeroed` and `realloc` each count
/// one; frees are not counted).
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingAllocator;

impl CountingAllocator {
    fn count() {
        TOTAL_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // During thread teardown the slot may be gone: such allocations are not this thread's
        // measurement anyway.
        let _ = THREAD_ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; counting
// touches only an atomic and a const-initialised thread-local `Cell`, neither of which allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count();
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count();
        // SAFETY: as for `dealloc`; the caller upholds `realloc`'s contract for `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made so far by all threads.
pub fn total_allocations() -> u64 {
    TOTAL_ALLOCATIONS.load(Ordering::Relaxed)
}

/// Allocations made so far by the calling thread.
pub fn thread_allocations() -> u64 {
    THREAD_ALLOCATIONS.with(Cell::get)
}

/// Runs `f` and returns its result with the number of allocations the calling thread made
/// while it ran.
pub fn count_allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = thread_allocations();
    let out = f();
    (out, thread_allocations() - before)
}

// ---------------------------------------------------------------------------------------------
// Realistic datagrams.
// ---------------------------------------------------------------------------------------------

/// 2026-11-01T10:00:00Z in Unix ms: the export time of every bench packet.
pub const EXPORT_MS: u64 = 1_793_527_200_000;

/// The exporter's uptime at [`EXPORT_MS`] (v5/v9 headers).
pub const SYS_UPTIME: u32 = 86_400_000;

/// The decode context every bench uses.
pub fn context() -> DecodeContext {
    DecodeContext {
        exporter: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        received_ms: EXPORT_MS,
    }
}

/// `n` varied IPv4 flows (web, DNS, SSH, database) that ended within the last minute.
pub fn sample_flows(n: usize) -> Vec<FlowRecord> {
    (0..n)
        .map(|i| {
            let k = i as u32;
            let first_ms = EXPORT_MS - 60_000 + u64::from(k % 50) * 997;
            FlowRecord {
                src_addr: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + k * 37 % 65_521)),
                dst_addr: IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 + k * 11 % 4_093)),
                src_port: 32_768 + (k * 7_919 % 28_000) as u16,
                dst_port: [443, 80, 53, 22, 5432, 6379][i % 6],
                protocol: [6, 6, 17, 6, 6, 6][i % 6],
                tcp_flags: [0x1b, 0x1a, 0, 0x18, 0x1b, 0x12][i % 6],
                tos: [0, 0, 0, 0x10, 0xb8, 0][i % 6],
                bytes: 60 + u64::from(k * 7_477 % 1_500_000),
                packets: 1 + u64::from(k * 31 % 1_200),
                in_if: 1 + k % 8,
                out_if: 9 + k % 4,
                src_as: 64_512 + k % 16,
                dst_as: 65_001,
                next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254))),
                first_ms,
                last_ms: first_ms + u64::from(k % 30) * 1_000,
                ..FlowRecord::default()
            }
        })
        .collect()
}

/// A benchmark input: the packets that teach templates, then one data packet to decode over
/// and over, and how many flow records that packet holds.
#[derive(Clone, Debug)]
pub struct BenchPacket {
    /// Template packets to decode once first (empty for v5 and sFlow).
    pub setup: Vec<Vec<u8>>,
    /// The data packet the bench decodes.
    pub packet: Vec<u8>,
    /// Flow records in `packet`.
    pub records: u64,
}

/// Records in a full NetFlow v5 packet.
pub const V5_RECORDS: usize = 30;

/// A full NetFlow v5 packet: 30 records, 1464 bytes.
pub fn v5_packet() -> BenchPacket {
    BenchPacket {
        setup: Vec::new(),
        packet: encode::netflow_v5(EXPORT_MS, SYS_UPTIME, 1_000, &sample_flows(V5_RECORDS)),
        records: V5_RECORDS as u64,
    }
}

/// Payload bytes a bench data packet aims for (a 1500-byte MTU less IP/UDP headers and slack).
pub const TARGET_PACKET_LEN: usize = 1_400;

/// A NetFlow v9 template packet, then a ~1400-byte data packet of [`encode::STANDARD_V9_TEMPLATE`] records.
pub fn v9_packet() -> BenchPacket {
    let unix_secs = (EXPORT_MS / 1000) as u32;
    let mut template = V9Packet::new(1, SYS_UPTIME, unix_secs, 0, 1);
    template.set(0).template(256, &encode::STANDARD_V9_TEMPLATE);
    let n = (TARGET_PACKET_LEN - netflow_v9::HEADER_LEN - 4) / encode::STANDARD_V9_RECORD_LEN;
    let mut data = V9Packet::new(n as u16, SYS_UPTIME, unix_secs, 1, 1);
    data.set(256);
    for r in &sample_flows(n) {
        encode::standard_v9_record(data.writer(), r, EXPORT_MS, SYS_UPTIME);
    }
    BenchPacket {
        setup: vec![template.finish()],
        packet: data.finish(),
        records: n as u64,
    }
}

/// Bytes of one record under `encode::standard_ipv4_template()`.
pub fn ipfix_record_len() -> usize {
    encode::standard_ipv4_template()
        .iter()
        .map(|f| usize::from(f.len))
        .sum()
}

/// An IPFIX template message (`standard_ipv4_template`), then a ~1400-byte data message.
pub fn ipfix_packet() -> BenchPacket {
    let secs = (EXPORT_MS / 1000) as u32;
    let mut template = IpfixMessage::new(secs, 0, 1);
    template
        .set(2)
        .template(256, 0, &encode::standard_ipv4_template());
    let n = (TARGET_PACKET_LEN - ipfix::HEADER_LEN - 4) / ipfix_record_len();
    let mut data = IpfixMessage::new(secs, 0, 1);
    data.set(256);
    for r in &sample_flows(n) {
        encode::standard_ipv4_record(data.writer(), r);
    }
    BenchPacket {
        setup: vec![template.finish()],
        packet: data.finish(),
        records: n as u64,
    }
}

/// Flow samples in the bench sFlow datagram.
pub const SFLOW_SAMPLES: usize = 8;

/// Bytes of sampled header per sFlow flow sample (the common sFlow agent default).
pub const SFLOW_HEADER_LEN: usize = 128;

/// A 128-byte sampled header: Ethernet, IPv4 and TCP headers, then the start of the payload.
pub fn sampled_tcp_header(r: &FlowRecord) -> Vec<u8> {
    let octets = |a: IpAddr| match a {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => [0; 4],
    };
    let builder = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(octets(r.src_addr), octets(r.dst_addr), 64)
        .tcp(r.src_port, r.dst_port, 0x1234_5678, 64_240)
        .ack(0x0bad_cafe)
        .psh();
    let payload = vec![0x5a; SFLOW_HEADER_LEN - 14 - 20 - 20];
    let mut frame = Vec::with_capacity(SFLOW_HEADER_LEN);
    // Writing into a Vec cannot fail; should it, the frame comes out short and the bench's
    // record count check says so.
    let _ = builder.write(&mut frame, &payload);
    frame
}

/// An sFlow v5 datagram of 8 compact flow samples (1-in-1000), each a 128-byte raw header of
/// an Ethernet/IPv4/TCP frame.
pub fn sflow_packet() -> BenchPacket {
    let mut w = Writer::new();
    let agent = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    encode::sflow_header(&mut w, agent, 0, 42, SYS_UPTIME, SFLOW_SAMPLES as u32);
    for (i, r) in sample_flows(SFLOW_SAMPLES).iter().enumerate() {
        let header = sampled_tcp_header(r);
        encode::sflow_raw_header_sample(&mut w, 1_000, 1 + i as u32 % 4, 9, 1_514, &header);
    }
    BenchPacket {
        setup: Vec::new(),
        packet: w.into_bytes(),
        records: SFLOW_SAMPLES as u64,
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding, the way a collector does it.
// ---------------------------------------------------------------------------------------------

/// The four FlowLens decoders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// NetFlow v5.
    NetflowV5,
    /// NetFlow v9.
    NetflowV9,
    /// IPFIX.
    Ipfix,
    /// sFlow v5.
    Sflow,
}

impl Protocol {
    /// Every protocol, in bench order.
    pub const ALL: [Protocol; 4] = [
        Protocol::NetflowV5,
        Protocol::NetflowV9,
        Protocol::Ipfix,
        Protocol::Sflow,
    ];

    /// A short name for bench ids and reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::NetflowV5 => "netflow_v5",
            Protocol::NetflowV9 => "netflow_v9",
            Protocol::Ipfix => "ipfix",
            Protocol::Sflow => "sflow",
        }
    }

    /// The bench packet for this protocol.
    pub fn packet(self) -> BenchPacket {
        match self {
            Protocol::NetflowV5 => v5_packet(),
            Protocol::NetflowV9 => v9_packet(),
            Protocol::Ipfix => ipfix_packet(),
            Protocol::Sflow => sflow_packet(),
        }
    }

    /// Whether `netflow_parser` reads this protocol (it has no sFlow).
    pub fn netflow_parser_reads(self) -> bool {
        self != Protocol::Sflow
    }
}

/// A FlowLens collector's decoding state for one protocol: its template cache and a record
/// buffer reused across packets.
#[derive(Debug)]
pub struct FlowLensDecoder {
    protocol: Protocol,
    ctx: DecodeContext,
    cache: TemplateCache,
    /// Records of the last decoded packet.
    pub records: Vec<FlowRecord>,
}

impl FlowLensDecoder {
    /// A decoder that has already learned `input`'s templates.
    pub fn new(protocol: Protocol, input: &BenchPacket) -> Self {
        let mut d = FlowLensDecoder {
            protocol,
            ctx: context(),
            cache: TemplateCache::new(),
            records: Vec::with_capacity(64),
        };
        for p in &input.setup {
            d.decode(p);
        }
        d
    }

    /// Decodes one datagram into [`Self::records`] (cleared first); returns how many records
    /// it held, 0 if the datagram was rejected.
    pub fn decode(&mut self, packet: &[u8]) -> usize {
        self.records.clear();
        let sink = &mut self.records;
        let result = match self.protocol {
            Protocol::NetflowV5 => netflow_v5::decode(packet, &self.ctx, sink),
            Protocol::NetflowV9 => netflow_v9::decode(packet, &self.ctx, &mut self.cache, sink),
            Protocol::Ipfix => ipfix::decode(packet, &self.ctx, &mut self.cache, sink),
            Protocol::Sflow => sflow::decode(packet, &self.ctx, sink),
        };
        match result {
            Ok(_) => self.records.len(),
            Err(_) => 0,
        }
    }
}

/// `netflow_parser` as a collector uses it: one parser (template state) per exporter.
#[derive(Debug, Default)]
pub struct NetflowParserDecoder {
    parser: netflow_parser::NetflowParser,
}

impl NetflowParserDecoder {
    /// A parser that has already learned `input`'s templates.
    pub fn new(input: &BenchPacket) -> Self {
        let mut d = NetflowParserDecoder::default();
        for p in &input.setup {
            d.decode(p);
        }
        d
    }

    /// Parses one datagram; returns how many flow records it held.
    pub fn decode(&mut self, packet: &[u8]) -> usize {
        use netflow_parser::variable_versions::ipfix::FlowSetBody as IpfixBody;
        use netflow_parser::variable_versions::v9::FlowSetBody as V9Body;
        use netflow_parser::NetflowPacket;
        let result = self.parser.parse_bytes(packet);
        result
            .packets
            .iter()
            .map(|p| match p {
                NetflowPacket::V5(v5) => v5.flowsets.len(),
                NetflowPacket::V9(v9) => v9
                    .flowsets
                    .iter()
                    .map(|s| match &s.body {
                        V9Body::Data(d) => d.fields.len(),
                        _ => 0,
                    })
                    .sum(),
                NetflowPacket::IPFix(ipfix) => ipfix
                    .flowsets
                    .iter()
                    .map(|s| match &s.body {
                        IpfixBody::Data(d) => d.fields.len(),
                        _ => 0,
                    })
                    .sum(),
                _ => 0,
            })
            .sum()
    }
}

/// Allocations per record over `packets` decodes of `input.packet`, measured on this thread
/// after `warm_up` decodes.
pub fn allocations_per_record(
    mut decode: impl FnMut(&[u8]) -> usize,
    input: &BenchPacket,
    warm_up: usize,
    packets: usize,
) -> f64 {
    for _ in 0..warm_up {
        decode(&input.packet);
    }
    let (records, allocations) = count_allocations(|| {
        let mut records = 0usize;
        for _ in 0..packets {
            records += decode(&input.packet);
        }
        records
    });
    assert_eq!(
        records as u64,
        input.records * packets as u64,
        "every packet must decode to all its records"
    );
    allocations as f64 / records as f64
}

// ---------------------------------------------------------------------------------------------
// End-to-end benches: a release node.

/// A `flowlens node` started for an end-to-end bench (killed on drop, if still running).
pub struct BenchNode {
    /// The process.
    pub child: std::process::Child,
    /// Its API address.
    pub api: std::net::SocketAddr,
    /// Its UDP collector address.
    pub udp: std::net::SocketAddr,
}

impl Drop for BenchNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `flowlens` binary `cargo test` built beside the running test binary (tests of this crate
/// drive a debug node through the end-to-end benches' code).
///
/// # Panics
/// When it is not there: the workspace's tests (`cargo xtask test`) build it.
pub fn test_flowlens() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("flowlens"))
        .expect("target directory");
    assert!(
        bin.is_file(),
        "{} is missing: run the workspace's tests (`cargo xtask test`), which build it",
        bin.display()
    );
    bin
}

/// Starts `flowlens node` with data in `dir` on free loopback ports, with the test admin token,
/// and waits up to 10 s until it is ready.
///
/// # Errors
/// When it cannot start or does not become ready.
pub fn start_node(flowlens: &std::path::Path, dir: &std::path::Path) -> Result<BenchNode, String> {
    use flowlens_tests::{free_tcp_port, free_udp_port, http_get, test_token};
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let udp = std::net::SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
    let child = std::process::Command::new(flowlens)
        .args(["node", "--data-dir"])
        .arg(dir)
        .args([
            "--api-listen",
            &api.to_string(),
            "--listen",
            &udp.to_string(),
        ])
        .env("RUST_LOG", "warn")
        .env("FLOWLENS_AUTH__BOOTSTRAP_TOKEN", test_token())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", flowlens.display()))?;
    let node = BenchNode { child, api, udp };
    let ready = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        http_get(api, "/api/v1/health/ready").is_ok_and(|(s, _)| s == 200)
    });
    if ready {
        Ok(node)
    } else {
        Err("the node did not become ready".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_packets_are_as_large_as_their_descriptions_say() {
        assert_eq!(v5_packet().packet.len(), 24 + 30 * 48);
        let v9 = v9_packet();
        assert!(
            (1_300..=1_400).contains(&v9.packet.len()),
            "{}",
            v9.packet.len()
        );
        let ipfix = ipfix_packet();
        assert!((1_300..=1_400).contains(&ipfix.packet.len()));
        assert_eq!(
            sampled_tcp_header(&sample_flows(1)[0]).len(),
            SFLOW_HEADER_LEN
        );
    }

    #[test]
    fn both_parsers_find_every_record_of_every_bench_packet() {
        for protocol in Protocol::ALL {
            let input = protocol.packet();
            let mut ours = FlowLensDecoder::new(protocol, &input);
            assert_eq!(
                ours.decode(&input.packet) as u64,
                input.records,
                "{protocol:?}"
            );
            if protocol.netflow_parser_reads() {
                let mut theirs = NetflowParserDecoder::new(&input);
                assert_eq!(theirs.decode(&input.packet) as u64, input.records);
            }
        }
    }

    #[test]
    fn the_allocation_counter_sees_this_threads_allocations() {
        let (v, n) = count_allocations(|| vec![1u8; 100]);
        assert_eq!(v.len(), 100);
        assert_eq!(n, 1);
    }
}
