//! The fast path for the common case: fixed-length data templates made only of plain flow fields
//! (addresses, ports, protocol, counters, interfaces, AS numbers, next hop, VLAN and one start
//! and one end time). Such a template compiles, when learned, into a [`FastLayout`] of field
//! offsets, and each record is read in straight-line code with no per-field dispatch.
//!
//! Everything else (options, biflows, sampling or duration fields, fallbacks, repeated fields,
//! variable-length fields) takes the general path in `dataset`. Both paths must give identical
//! records; the `fast_and_general_paths_agree_on_*` tests check that on random templates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::fields::{FieldKind, RawTime, TimeBase, TimeForm};
use super::template::FieldOp;
use super::FlowSink;
use crate::record::{BiflowDirection, FlowRecord, FlowSource};

/// The longest record the fast path takes; longer ones (rare) take the general path.
pub const MAX_FAST_RECORD: usize = 256;

/// Bytes a record is read through: the record and what follows it, so that any value at an
/// offset below [`MAX_FAST_RECORD`] is read as a whole 8-byte (or 16-byte) load with no bounds
/// check (offsets are `u8`s, and a 16-byte read at 255 ends at 271).
const VIEW: usize = MAX_FAST_RECORD + 16;

/// The bytes from one record's start, [`VIEW`] long. Values are read forward from their offset:
/// bytes past the value (the next record's, or the zero padding after the last) are shifted out.
type RecordView = [u8; VIEW];

#[inline(always)]
fn window(rec: &RecordView, at: u8) -> u64 {
    let at = usize::from(at);
    rec.get(at..at + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
        .map_or(0, u64::from_be_bytes)
}

#[inline(always)]
fn bytes<const N: usize>(rec: &RecordView, at: u8) -> [u8; N] {
    let at = usize::from(at);
    rec.get(at..)
        .and_then(<[u8]>::first_chunk::<N>)
        .copied()
        .unwrap_or([0; N])
}

/// Where one value sits in a record, precomputed so that reading it is branch-free: load the 8
/// bytes at `offset` (big-endian), shift right by `shift` bits to drop the bytes after the value,
/// and mask. `mask == 0` means the template lacks the value. 16-byte values (IPv6) are read whole.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Loc {
    mask: u64,
    offset: u8,
    shift: u8,
    len: u8,
}

impl Loc {
    /// Where a value of `len` bytes at `offset` sits; `None` if the record would be too long.
    fn new(offset: usize, len: usize) -> Option<Loc> {
        if offset + len > MAX_FAST_RECORD {
            return None;
        }
        let (mask, shift) = match len {
            1..=8 => (u64::MAX, (8 - len) * 8),
            _ => (0, 0),
        };
        Some(Loc {
            mask,
            offset: u8::try_from(offset).ok()?,
            shift: u8::try_from(shift).ok()?,
            len: u8::try_from(len).ok()?,
        })
    }

    fn present(self) -> bool {
        self.len != 0
    }

    /// Reads the value as a big-endian unsigned integer (0 when absent).
    #[inline(always)]
    fn uint(self, rec: &RecordView) -> u64 {
        (window(rec, self.offset) >> self.shift) & self.mask
    }

    /// Reads the value as an IPv4 or IPv6 address (by its length).
    #[inline(always)]
    fn addr(self, rec: &RecordView) -> Option<IpAddr> {
        if self.len == 16 {
            Some(IpAddr::V6(Ipv6Addr::from(bytes::<16>(rec, self.offset))))
        } else if self.len == 4 {
            Some(IpAddr::V4(Ipv4Addr::from(bytes::<4>(rec, self.offset))))
        } else {
            None
        }
    }
}

/// Clocks [`FastLayout::records`] specialises for: both times present and in this form
/// (uptime only with the header's sysUpTime), or anything ([`TimeBase::resolve_span`]).
const CLOCK_ANY: u8 = 0;
/// Unix milliseconds.
const CLOCK_MILLIS: u8 = 1;
/// Unix seconds.
const CLOCK_SECS: u8 = 2;
/// Exporter uptime ms, with the header's sysUpTime.
const CLOCK_UPTIME: u8 = 3;

/// The views of the first `count` records of `base`, `record_len` bytes apart (the caller
/// makes sure each has [`VIEW`] bytes; one that had not would read as zeros).
#[inline(always)]
fn views(
    base: &[u8],
    record_len: usize,
    count: usize,
) -> impl ExactSizeIterator<Item = &RecordView> {
    (0..count).map(move |i| {
        base.get(i * record_len..)
            .and_then(<[u8]>::first_chunk::<VIEW>)
            .unwrap_or(&[0; VIEW])
    })
}

/// A time field's place and form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TimeLoc {
    loc: Loc,
    form: TimeForm,
}

impl TimeLoc {
    #[inline(always)]
    fn raw(self, rec: &RecordView) -> RawTime {
        if !self.loc.present() {
            return RawTime::Absent;
        }
        let v = self.loc.uint(rec);
        match self.form {
            TimeForm::Uptime => RawTime::Uptime(v as u32),
            TimeForm::Secs => RawTime::Absolute(v.saturating_mul(1000)),
            TimeForm::Millis => RawTime::Absolute(v),
            TimeForm::DeltaMicros => RawTime::DeltaMicros(v),
            // Only 8-byte NTP timestamps take the fast path (see `FastLayout::compile`).
            TimeForm::Ntp => {
                let frac_ms = ((v & 0xffff_ffff) * 1000) >> 32;
                let secs = v >> 32;
                super::fields::ntp_secs_to_unix_ms(secs, frac_ms)
                    .map_or(RawTime::Absent, RawTime::Absolute)
            }
        }
    }
}

/// A compiled fixed-length data template of plain flow fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastLayout {
    src: Loc,
    dst: Loc,
    next_hop: Loc,
    src_port: Loc,
    dst_port: Loc,
    protocol: Loc,
    tos: Loc,
    tcp_flags: Loc,
    bytes: Loc,
    packets: Loc,
    in_if: Loc,
    out_if: Loc,
    src_as: Loc,
    dst_as: Loc,
    vlan: Loc,
    start: TimeLoc,
    end: TimeLoc,
}

impl FastLayout {
    /// Compiles the wanted fields (`ops`, from [`Template::ops`]) of a fixed-length data
    /// template of `record_len` bytes, if it qualifies for the fast path: at most
    /// [`MAX_FAST_RECORD`] bytes, source and destination address present, every wanted field of a
    /// kind below and no kind twice. The caller passes only data templates of fixed length.
    ///
    /// [`Template::ops`]: super::template::Template::ops
    pub fn compile(ops: &[FieldOp], record_len: usize) -> Option<FastLayout> {
        if record_len > MAX_FAST_RECORD {
            return None;
        }
        let absent = TimeLoc {
            loc: Loc::default(),
            form: TimeForm::Millis,
        };
        let mut l = FastLayout {
            src: Loc::default(),
            dst: Loc::default(),
            next_hop: Loc::default(),
            src_port: Loc::default(),
            dst_port: Loc::default(),
            protocol: Loc::default(),
            tos: Loc::default(),
            tcp_flags: Loc::default(),
            bytes: Loc::default(),
            packets: Loc::default(),
            in_if: Loc::default(),
            out_if: Loc::default(),
            src_as: Loc::default(),
            dst_as: Loc::default(),
            vlan: Loc::default(),
            start: absent,
            end: absent,
        };
        for op in ops {
            let here = Loc::new(op.offset, op.len)?;
            use FieldKind::*;
            let (slot, form) = match op.kind {
                Ignored => continue,
                SrcAddr => (&mut l.src, None),
                DstAddr => (&mut l.dst, None),
                NextHop => (&mut l.next_hop, None),
                SrcPort => (&mut l.src_port, None),
                DstPort => (&mut l.dst_port, None),
                Protocol => (&mut l.protocol, None),
                Tos => (&mut l.tos, None),
                TcpFlags => (&mut l.tcp_flags, None),
                Bytes => (&mut l.bytes, None),
                Packets => (&mut l.packets, None),
                InIf => (&mut l.in_if, None),
                OutIf => (&mut l.out_if, None),
                SrcAs => (&mut l.src_as, None),
                DstAs => (&mut l.dst_as, None),
                Vlan => (&mut l.vlan, None),
                StartUptime => (&mut l.start.loc, Some((true, TimeForm::Uptime))),
                EndUptime => (&mut l.end.loc, Some((false, TimeForm::Uptime))),
                StartSecs => (&mut l.start.loc, Some((true, TimeForm::Secs))),
                EndSecs => (&mut l.end.loc, Some((false, TimeForm::Secs))),
                StartMillis => (&mut l.start.loc, Some((true, TimeForm::Millis))),
                EndMillis => (&mut l.end.loc, Some((false, TimeForm::Millis))),
                StartDeltaMicros => (&mut l.start.loc, Some((true, TimeForm::DeltaMicros))),
                EndDeltaMicros => (&mut l.end.loc, Some((false, TimeForm::DeltaMicros))),
                StartNtp if op.len == 8 => (&mut l.start.loc, Some((true, TimeForm::Ntp))),
                EndNtp if op.len == 8 => (&mut l.end.loc, Some((false, TimeForm::Ntp))),
                _ => return None,
            };
            if slot.present() {
                return None;
            }
            *slot = here;
            match form {
                Some((true, form)) => l.start.form = form,
                Some((false, form)) => l.end.form = form,
                None => {}
            }
        }
        // Integers wider than 8 bytes keep their last 8 in the general path; not worth a window.
        let ints = [
            l.src_port,
            l.dst_port,
            l.protocol,
            l.tos,
            l.tcp_flags,
            l.bytes,
            l.packets,
            l.in_if,
            l.out_if,
            l.src_as,
            l.dst_as,
            l.vlan,
            l.start.loc,
            l.end.loc,
        ];
        let ints_ok = ints.iter().all(|i| i.len <= 8);
        (record_len >= 8 && ints_ok && l.src.present() && l.dst.present()).then_some(l)
    }

    /// Decodes every whole record of a data set `body` of `record_len`-byte records (the
    /// template's length) into `sink`; a shorter remainder is padding. Returns how many.
    ///
    /// Records are read in place where at least [`VIEW`] bytes follow their start; the last few
    /// of the set are first copied, together, into one zero-padded buffer. The loop is
    /// specialised for the common clocks (both times present, in one form) so that each record
    /// reads its times without dispatching on their forms.
    pub fn records<S: FlowSink>(
        &self,
        body: &[u8],
        record_len: usize,
        set: &FastSet,
        sink: &mut S,
    ) -> usize {
        let both = self.start.loc.present() && self.end.loc.present();
        let same = self.start.form == self.end.form;
        match (both && same, self.start.form, set.base.sys_uptime) {
            (true, TimeForm::Millis, _) => {
                self.records_with::<CLOCK_MILLIS, S>(body, record_len, set, sink)
            }
            (true, TimeForm::Secs, _) => {
                self.records_with::<CLOCK_SECS, S>(body, record_len, set, sink)
            }
            (true, TimeForm::Uptime, Some(_)) => {
                self.records_with::<CLOCK_UPTIME, S>(body, record_len, set, sink)
            }
            _ => self.records_with::<CLOCK_ANY, S>(body, record_len, set, sink),
        }
    }

    #[inline(always)]
    fn records_with<const CLOCK: u8, S: FlowSink>(
        &self,
        body: &[u8],
        record_len: usize,
        set: &FastSet,
        sink: &mut S,
    ) -> usize {
        let record_len = record_len.max(1);
        let n = body.len() / record_len;
        // Records whose view fits inside the body.
        let direct = (body.len().saturating_sub(VIEW) / record_len + 1).min(n);
        let direct = if body.len() < VIEW { 0 } else { direct };
        sink.flows(views(body, record_len, direct).map(|v| self.record::<CLOCK>(v, set)));
        let tail = body
            .get(direct * record_len..n * record_len)
            .unwrap_or_default();
        if !tail.is_empty() {
            // Record `direct` did not fit, so `tail` is shorter than VIEW and every view of it
            // fits in 2 × VIEW.
            let mut buf = [0u8; 2 * VIEW];
            if let Some(dst) = buf.get_mut(..tail.len()) {
                dst.copy_from_slice(tail);
            }
            sink.flows(views(&buf, record_len, n - direct).map(|v| self.record::<CLOCK>(v, set)));
        }
        n
    }

    /// A record's first and last times as UTC ms, under a [`records`](Self::records) clock.
    #[inline(always)]
    fn span<const CLOCK: u8>(&self, rec: &RecordView, base: &TimeBase) -> (u64, u64) {
        let (start, end) = (self.start.loc.uint(rec), self.end.loc.uint(rec));
        match CLOCK {
            CLOCK_MILLIS => (start, end),
            CLOCK_SECS => (start.saturating_mul(1000), end.saturating_mul(1000)),
            CLOCK_UPTIME => {
                let sys = base.sys_uptime.unwrap_or(0);
                let utc = |t| super::netflow_v5::uptime_to_utc_ms(base.export_ms, sys, t as u32);
                (utc(start), utc(end))
            }
            _ => base.resolve_span(self.start.raw(rec), self.end.raw(rec), None),
        }
    }

    /// Decodes one record, read through its view, into a flow record.
    #[inline(always)]
    fn record<const CLOCK: u8>(&self, rec: &RecordView, set: &FastSet) -> FlowRecord {
        let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let rate = u64::from(set.rate);
        let (first_ms, last_ms) = self.span::<CLOCK>(rec, &set.base);
        let vlan = self.vlan.uint(rec) as u16 & 0x0fff;
        FlowRecord {
            src_addr: self.src.addr(rec).unwrap_or(unspecified),
            dst_addr: self.dst.addr(rec).unwrap_or(unspecified),
            src_port: self.src_port.uint(rec) as u16,
            dst_port: self.dst_port.uint(rec) as u16,
            protocol: self.protocol.uint(rec) as u8,
            tcp_flags: self.tcp_flags.uint(rec) as u8,
            tos: self.tos.uint(rec) as u8,
            bytes: self.bytes.uint(rec).saturating_mul(rate),
            packets: self.packets.uint(rec).saturating_mul(rate),
            in_if: self.in_if.uint(rec) as u32,
            out_if: self.out_if.uint(rec) as u32,
            src_as: self.src_as.uint(rec) as u32,
            dst_as: self.dst_as.uint(rec) as u32,
            next_hop: self.next_hop.addr(rec).filter(|a| !a.is_unspecified()),
            vlan: (vlan != 0).then_some(vlan),
            first_ms,
            last_ms,
            exporter: set.exporter,
            observation_domain: set.domain,
            sampling_rate: set.rate,
            direction: BiflowDirection::Unidirectional,
            source: set.source,
        }
    }
}

/// What every record of one data set shares on the fast path.
#[derive(Clone, Copy, Debug)]
pub struct FastSet {
    /// The clock of the packet that carried the set, with the scope's system init time.
    pub base: TimeBase,
    /// The sampling rate in force for the scope (records carry no sampler of their own).
    pub rate: u32,
    /// The exporter's address.
    pub exporter: IpAddr,
    /// Observation domain / source id.
    pub domain: u32,
    /// The protocol that carried the set.
    pub source: FlowSource,
}

#[cfg(test)]
mod tests;
