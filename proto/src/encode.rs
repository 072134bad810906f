//! Encoders for the four wire formats: byte-exact packet builders for tests, fuzz seeds and
//! benchmarks, and the exporter side of `flowlens simulate`. Unlike the decoders they allocate
//! freely: they run on the sending side, never on the collector's hot path.

use std::net::IpAddr;

use crate::decode::fields::FieldSpec;
use crate::record::FlowRecord;

/// A growable big-endian byte writer.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    /// Appends a big-endian u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Appends a big-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Appends a big-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Appends raw bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    /// Appends an address in its natural width (4 or 16 bytes).
    pub fn ip(&mut self, a: IpAddr) -> &mut Self {
        match a {
            IpAddr::V4(a) => self.bytes(&a.octets()),
            IpAddr::V6(a) => self.bytes(&a.octets()),
        }
    }
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    /// Overwrites a big-endian u16 at `at` (for length fields written after their contents).
    pub fn patch_u16(&mut self, at: usize, v: u16) {
        if let Some(slot) = self.buf.get_mut(at..at + 2) {
            slot.copy_from_slice(&v.to_be_bytes());
        }
    }
    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Builds a NetFlow v5 datagram. `records` are written as given (no sampling division); times
/// are converted back to uptime against `sys_uptime` and `export_ms`.
pub fn netflow_v5(
    export_ms: u64,
    sys_uptime: u32,
    sequence: u32,
    records: &[FlowRecord],
) -> Vec<u8> {
    let mut w = Writer::new();
    let to_uptime = |t: u64| sys_uptime.wrapping_sub(export_ms.saturating_sub(t) as u32);
    w.u16(5).u16(records.len() as u16).u32(sys_uptime);
    w.u32((export_ms / 1000) as u32)
        .u32(((export_ms % 1000) * 1_000_000) as u32);
    w.u32(sequence).u8(0).u8(0).u16(0);
    for r in records {
        let v4 = |a: IpAddr| match a {
            IpAddr::V4(a) => a.octets(),
            IpAddr::V6(_) => [0; 4],
        };
        w.bytes(&v4(r.src_addr)).bytes(&v4(r.dst_addr));
        w.bytes(&r.next_hop.map_or([0; 4], v4));
        w.u16(r.in_if as u16).u16(r.out_if as u16);
        w.u32(r.packets as u32).u32(r.bytes as u32);
        w.u32(to_uptime(r.first_ms)).u32(to_uptime(r.last_ms));
        w.u16(r.src_port)
            .u16(r.dst_port)
            .u8(0)
            .u8(r.tcp_flags)
            .u8(r.protocol)
            .u8(r.tos);
        w.u16(r.src_as as u16)
            .u16(r.dst_as as u16)
            .u8(0)
            .u8(0)
            .u16(0);
    }
    w.into_bytes()
}

/// The template `flowlens simulate` and the benches export for IPv4 flows: the fields of a
/// NetFlow v5 record, with absolute millisecond times (IE 152/153).
pub fn standard_ipv4_template() -> Vec<FieldSpec> {
    [
        (8, 4),
        (12, 4),
        (7, 2),
        (11, 2),
        (4, 1),
        (6, 1),
        (5, 1),
        (1, 8),
        (2, 8),
        (10, 4),
        (14, 4),
        (16, 4),
        (17, 4),
        (15, 4),
        (152, 8),
        (153, 8),
    ]
    .iter()
    .map(|&(id, len)| FieldSpec {
        id,
        enterprise: 0,
        len,
    })
    .collect()
}

/// The NetFlow v9 template the benches and tests export for IPv4 flows: the fields of a v5
/// record, with times as exporter uptime (IE 22/21).
pub const STANDARD_V9_TEMPLATE: [(u16, u16); 16] = [
    (8, 4),
    (12, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (6, 1),
    (5, 1),
    (1, 4),
    (2, 4),
    (10, 2),
    (14, 2),
    (16, 2),
    (17, 2),
    (15, 4),
    (22, 4),
    (21, 4),
];

/// Bytes of one record under [`STANDARD_V9_TEMPLATE`].
pub const STANDARD_V9_RECORD_LEN: usize = 43;

/// Writes one flow in [`STANDARD_V9_TEMPLATE`] layout, for a packet whose header says
/// `sys_uptime` at `export_ms` (times become uptime milliseconds; counters are cut to 32 bits).
pub fn standard_v9_record(w: &mut Writer, r: &FlowRecord, export_ms: u64, sys_uptime: u32) {
    let uptime = |t: u64| sys_uptime.wrapping_sub(export_ms.saturating_sub(t) as u32);
    w.ip(r.src_addr)
        .ip(r.dst_addr)
        .u16(r.src_port)
        .u16(r.dst_port);
    w.u8(r.protocol).u8(r.tcp_flags).u8(r.tos);
    w.u32(r.bytes as u32).u32(r.packets as u32);
    w.u16(r.in_if as u16).u16(r.out_if as u16);
    w.u16(r.src_as as u16).u16(r.dst_as as u16);
    match r.next_hop {
        Some(IpAddr::V4(a)) => w.bytes(&a.octets()),
        _ => w.u32(0),
    };
    w.u32(uptime(r.first_ms)).u32(uptime(r.last_ms));
}

/// Writes one record in [`standard_ipv4_template`] layout.
pub fn standard_ipv4_record(w: &mut Writer, r: &FlowRecord) {
    w.ip(r.src_addr)
        .ip(r.dst_addr)
        .u16(r.src_port)
        .u16(r.dst_port);
    w.u8(r.protocol)
        .u8(r.tcp_flags)
        .u8(r.tos)
        .u64(r.bytes)
        .u64(r.packets);
    w.u32(r.in_if).u32(r.out_if).u32(r.src_as).u32(r.dst_as);
    match r.next_hop {
        Some(IpAddr::V4(a)) => w.bytes(&a.octets()),
        _ => w.u32(0),
    };
    w.u64(r.first_ms).u64(r.last_ms);
}

/// Builds an IPFIX message set by set; `finish` fills in the message length.
#[derive(Clone, Debug)]
pub struct IpfixMessage {
    w: Writer,
    set_start: Option<usize>,
}

impl IpfixMessage {
    /// Starts a message with the given header fields.
    pub fn new(export_secs: u32, sequence: u32, domain: u32) -> Self {
        let mut w = Writer::new();
        w.u16(10).u16(0).u32(export_secs).u32(sequence).u32(domain);
        IpfixMessage { w, set_start: None }
    }
    /// Opens a set with the given id (closing any open one).
    pub fn set(&mut self, id: u16) -> &mut Self {
        self.close_set();
        self.set_start = Some(self.w.len());
        self.w.u16(id).u16(0);
        self
    }
    fn close_set(&mut self) {
        if let Some(start) = self.set_start.take() {
            let len = (self.w.len() - start) as u16;
            self.w.patch_u16(start + 2, len);
        }
    }
    /// Appends a template record (inside an open set 2, or set 3 with `scope` > 0).
    pub fn template(&mut self, id: u16, scope: u16, fields: &[FieldSpec]) -> &mut Self {
        self.w.u16(id).u16(fields.len() as u16);
        if scope > 0 {
            self.w.u16(scope);
        }
        for f in fields {
            if f.enterprise != 0 {
                self.w.u16(f.id | 0x8000).u16(f.len).u32(f.enterprise);
            } else {
                self.w.u16(f.id).u16(f.len);
            }
        }
        self
    }
    /// Direct access to the body for data records.
    pub fn writer(&mut self) -> &mut Writer {
        &mut self.w
    }
    /// Closes the last set and returns the message.
    pub fn finish(mut self) -> Vec<u8> {
        self.close_set();
        let len = self.w.len() as u16;
        self.w.patch_u16(2, len);
        self.w.into_bytes()
    }
}

/// Builds a NetFlow v9 packet flowset by flowset.
#[derive(Clone, Debug)]
pub struct V9Packet {
    w: Writer,
    set_start: Option<usize>,
}

impl V9Packet {
    /// Starts a packet; `count` is written as given (exporters get it wrong, so can tests).
    pub fn new(count: u16, sys_uptime: u32, unix_secs: u32, sequence: u32, source_id: u32) -> Self {
        let mut w = Writer::new();
        w.u16(9)
            .u16(count)
            .u32(sys_uptime)
            .u32(unix_secs)
            .u32(sequence)
            .u32(source_id);
        V9Packet { w, set_start: None }
    }
    /// Opens a flowset with the given id (closing any open one).
    pub fn set(&mut self, id: u16) -> &mut Self {
        self.close_set();
        self.set_start = Some(self.w.len());
        self.w.u16(id).u16(0);
        self
    }
    fn close_set(&mut self) {
        if let Some(start) = self.set_start.take() {
            let len = (self.w.len() - start) as u16;
            self.w.patch_u16(start + 2, len);
        }
    }
    /// Appends a template record to an open template flowset (id 0).
    pub fn template(&mut self, id: u16, fields: &[(u16, u16)]) -> &mut Self {
        self.w.u16(id).u16(fields.len() as u16);
        for (t, l) in fields {
            self.w.u16(*t).u16(*l);
        }
        self
    }
    /// Appends an options template record to an open options flowset (id 1).
    pub fn options_template(
        &mut self,
        id: u16,
        scope: &[(u16, u16)],
        options: &[(u16, u16)],
    ) -> &mut Self {
        self.w
            .u16(id)
            .u16((scope.len() * 4) as u16)
            .u16((options.len() * 4) as u16);
        for (t, l) in scope.iter().chain(options) {
            self.w.u16(*t).u16(*l);
        }
        self
    }
    /// Direct access to the body for data records.
    pub fn writer(&mut self) -> &mut Writer {
        &mut self.w
    }
    /// Closes the last flowset and returns the packet.
    pub fn finish(mut self) -> Vec<u8> {
        self.close_set();
        self.w.into_bytes()
    }
}

/// Builds an sFlow v5 datagram header for `n_samples` samples from an IPv4 or IPv6 agent.
pub fn sflow_header(
    w: &mut Writer,
    agent: IpAddr,
    sub_agent: u32,
    sequence: u32,
    uptime: u32,
    n_samples: u32,
) {
    w.u32(5).u32(if agent.is_ipv4() { 1 } else { 2 }).ip(agent);
    w.u32(sub_agent).u32(sequence).u32(uptime).u32(n_samples);
}

/// Appends an sFlow compact flow sample holding one raw Ethernet header record.
pub fn sflow_raw_header_sample(
    w: &mut Writer,
    rate: u32,
    in_if: u32,
    out_if: u32,
    frame_len: u32,
    header: &[u8],
) {
    let pad = (4 - header.len() % 4) % 4;
    let record_len = 16 + header.len() + pad;
    let sample_len = 32 + 8 + record_len;
    w.u32(1).u32(sample_len as u32);
    w.u32(1)
        .u32(in_if)
        .u32(rate)
        .u32(0)
        .u32(0)
        .u32(in_if)
        .u32(out_if)
        .u32(1);
    w.u32(1).u32(record_len as u32);
    w.u32(1)
        .u32(frame_len)
        .u32(4)
        .u32(header.len() as u32)
        .bytes(header);
    for _ in 0..pad {
        w.u8(0);
    }
}
