//! Information elements shared by NetFlow v9 and IPFIX (v9 field types 1–127 are IPFIX IEs with
//! the same numbers): which IEs FlowLens reads, how each maps onto a [`FlowRecord`], and how a
//! record's many possible time forms resolve to absolute UTC milliseconds.
//!
//! Templates are compiled once, when learned, into [`FieldKind`]s, so the per-record loop is a
//! match on a small enum over borrowed bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::reader::be_uint;
use crate::record::FlowRecord;

/// IANA private enterprise number of RFC 5103 reverse information elements.
pub const REVERSE_PEN: u32 = 29305;
/// The IPFIX length value that marks a variable-length field.
pub const VARIABLE_LENGTH: u16 = 0xffff;

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// One field of a template as it appeared on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSpec {
    /// Information element id (v9 field type), without the enterprise bit.
    pub id: u16,
    /// Private enterprise number, 0 for IANA elements.
    pub enterprise: u32,
    /// Field length in bytes, or [`VARIABLE_LENGTH`].
    pub len: u16,
}

/// What a field means to FlowLens, decided once per template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// An element FlowLens does not read: skipped by length.
    Ignored,
    /// octetDeltaCount (1).
    Bytes,
    /// packetDeltaCount (2).
    Packets,
    /// octetTotalCount (85) / postOctetDeltaCount (23): used when no delta count is present.
    BytesFallback,
    /// packetTotalCount (86) / postPacketDeltaCount (24): used when no delta count is present.
    PacketsFallback,
    /// protocolIdentifier (4).
    Protocol,
    /// ipClassOfService (5).
    Tos,
    /// ipDiffServCodePoint (195).
    Dscp,
    /// tcpControlBits (6).
    TcpFlags,
    /// sourceTransportPort (7).
    SrcPort,
    /// destinationTransportPort (11).
    DstPort,
    /// icmpTypeCodeIPv4 (32) / icmpTypeCodeIPv6 (139): becomes the destination port.
    IcmpTypeCode,
    /// sourceIPv4Address (8) / sourceIPv6Address (27).
    SrcAddr,
    /// destinationIPv4Address (12) / destinationIPv6Address (28).
    DstAddr,
    /// ipNextHopIPv4Address (15) / ipNextHopIPv6Address (62).
    NextHop,
    /// bgpNextHopIPv4Address (18) / bgpNextHopIPv6Address (63): used when no IP next hop.
    BgpNextHop,
    /// ingressInterface (10).
    InIf,
    /// egressInterface (14).
    OutIf,
    /// bgpSourceAsNumber (16).
    SrcAs,
    /// bgpDestinationAsNumber (17).
    DstAs,
    /// vlanId (58) / dot1qVlanId (243).
    Vlan,
    /// flowStartSysUpTime (22), ms of exporter uptime.
    StartUptime,
    /// flowEndSysUpTime (21), ms of exporter uptime.
    EndUptime,
    /// flowStartSeconds (150).
    StartSecs,
    /// flowEndSeconds (151).
    EndSecs,
    /// flowStartMilliseconds (152).
    StartMillis,
    /// flowEndMilliseconds (153).
    EndMillis,
    /// flowStartMicroseconds (154) / flowStartNanoseconds (156): NTP timestamps.
    StartNtp,
    /// flowEndMicroseconds (155) / flowEndNanoseconds (157): NTP timestamps.
    EndNtp,
    /// flowStartDeltaMicroseconds (158): µs before the export time.
    StartDeltaMicros,
    /// flowEndDeltaMicroseconds (159): µs before the export time.
    EndDeltaMicros,
    /// flowDurationMilliseconds (161).
    DurationMillis,
    /// flowDurationMicroseconds (162).
    DurationMicros,
    /// systemInitTimeMilliseconds (160): wall-clock time of exporter uptime zero.
    SystemInitMillis,
    /// samplingInterval (34) / samplerRandomInterval (50) / samplingPacketInterval (305).
    SamplingInterval,
    /// samplingPacketSpace (306): packets skipped between samples.
    SamplingSpace,
    /// samplingSize (309): packets sampled out of a population.
    SamplingSize,
    /// samplingPopulation (310).
    SamplingPopulation,
    /// samplerId (48) / selectorId (302): names the sampler whose rate applies.
    SamplerId,
    /// RFC 5103 reverseOctetDeltaCount.
    RevBytes,
    /// RFC 5103 reversePacketDeltaCount.
    RevPackets,
    /// RFC 5103 reverseTcpControlBits.
    RevTcpFlags,
    /// RFC 5103 reverseIpClassOfService.
    RevTos,
    /// RFC 5103 reverse flow start, in any of the IPFIX time forms (kept with its own kind).
    RevStart(TimeForm),
    /// RFC 5103 reverse flow end, in any of the IPFIX time forms.
    RevEnd(TimeForm),
}

/// The encoding of a time field, for reverse biflow times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeForm {
    /// Exporter uptime ms.
    Uptime,
    /// Unix seconds.
    Secs,
    /// Unix ms.
    Millis,
    /// NTP timestamp.
    Ntp,
    /// µs before export time.
    DeltaMicros,
}

/// Decides what a field means. Fields whose length cannot hold what they claim to be (an IPv4
/// address that is not 4 bytes, an integer over 8 bytes) are ignored rather than misread.
pub fn classify(spec: FieldSpec) -> FieldKind {
    use FieldKind::*;
    let len = spec.len;
    let int = (1..=8).contains(&len);
    let kind = match (spec.enterprise, spec.id) {
        (0, 1) => Bytes,
        (0, 2) => Packets,
        (0, 23) | (0, 85) => BytesFallback,
        (0, 24) | (0, 86) => PacketsFallback,
        (0, 4) => Protocol,
        (0, 5) => Tos,
        (0, 195) => Dscp,
        (0, 6) => TcpFlags,
        (0, 7) => SrcPort,
        (0, 11) => DstPort,
        (0, 32) | (0, 139) => IcmpTypeCode,
        (0, 8) | (0, 12) | (0, 15) | (0, 18) if len != 4 => Ignored,
        (0, 27) | (0, 28) | (0, 62) | (0, 63) if len != 16 => Ignored,
        (0, 8) | (0, 27) => return SrcAddr,
        (0, 12) | (0, 28) => return DstAddr,
        (0, 15) | (0, 62) => return NextHop,
        (0, 18) | (0, 63) => return BgpNextHop,
        (0, 10) => InIf,
        (0, 14) => OutIf,
        (0, 16) => SrcAs,
        (0, 17) => DstAs,
        (0, 58) | (0, 243) => Vlan,
        (0, 22) => StartUptime,
        (0, 21) => EndUptime,
        (0, 150) => StartSecs,
        (0, 151) => EndSecs,
        (0, 152) => StartMillis,
        (0, 153) => EndMillis,
        (0, 154) | (0, 156) => return ntp_or_ignored(len, StartNtp),
        (0, 155) | (0, 157) => return ntp_or_ignored(len, EndNtp),
        (0, 158) => StartDeltaMicros,
        (0, 159) => EndDeltaMicros,
        (0, 161) => DurationMillis,
        (0, 162) => DurationMicros,
        (0, 160) => SystemInitMillis,
        (0, 34) | (0, 50) | (0, 305) => SamplingInterval,
        (0, 306) => SamplingSpace,
        (0, 309) => SamplingSize,
        (0, 310) => SamplingPopulation,
        (0, 48) | (0, 302) => SamplerId,
        (REVERSE_PEN, 1) => RevBytes,
        (REVERSE_PEN, 2) => RevPackets,
        (REVERSE_PEN, 6) => RevTcpFlags,
        (REVERSE_PEN, 5) => RevTos,
        (REVERSE_PEN, 22) => RevStart(TimeForm::Uptime),
        (REVERSE_PEN, 21) => RevEnd(TimeForm::Uptime),
        (REVERSE_PEN, 150) => RevStart(TimeForm::Secs),
        (REVERSE_PEN, 151) => RevEnd(TimeForm::Secs),
        (REVERSE_PEN, 152) => RevStart(TimeForm::Millis),
        (REVERSE_PEN, 153) => RevEnd(TimeForm::Millis),
        (REVERSE_PEN, 154) | (REVERSE_PEN, 156) if len == 8 || len == 16 => {
            return RevStart(TimeForm::Ntp)
        }
        (REVERSE_PEN, 155) | (REVERSE_PEN, 157) if len == 8 || len == 16 => {
            return RevEnd(TimeForm::Ntp)
        }
        (REVERSE_PEN, 158) => RevStart(TimeForm::DeltaMicros),
        (REVERSE_PEN, 159) => RevEnd(TimeForm::DeltaMicros),
        _ => return Ignored,
    };
    if int {
        kind
    } else {
        Ignored
    }
}

fn ntp_or_ignored(len: u16, kind: FieldKind) -> FieldKind {
    if len == 8 || len == 16 {
        kind
    } else {
        FieldKind::Ignored
    }
}

/// Converts an NTP-format timestamp to Unix ms. Eight bytes are RFC 7011's 32-bit seconds since
/// 1900 plus a 32-bit binary fraction. Sixteen bytes (pmacct's µs form) are read as a 64-bit
/// seconds field and a 64-bit microseconds field.
pub fn ntp_to_unix_ms(bytes: &[u8]) -> Option<u64> {
    let (secs, frac_ms) = match bytes.len() {
        8 => {
            let secs = be_uint(bytes.get(..4)?);
            let frac = be_uint(bytes.get(4..)?);
            (secs, (frac * 1000) >> 32)
        }
        16 => {
            let secs = be_uint(bytes.get(..8)?);
            let micros = be_uint(bytes.get(8..)?);
            (secs, micros / 1000)
        }
        _ => return None,
    };
    ntp_secs_to_unix_ms(secs, frac_ms)
}

/// Converts NTP-era seconds plus milliseconds to Unix milliseconds. Seconds below the Unix
/// epoch's NTP value are taken as already Unix (some exporters send Unix seconds here).
#[inline]
pub fn ntp_secs_to_unix_ms(secs: u64, frac_ms: u64) -> Option<u64> {
    let unix = secs.checked_sub(NTP_UNIX_OFFSET_SECS).unwrap_or(secs);
    unix.checked_mul(1000)?.checked_add(frac_ms)
}

/// One timestamp as the record carried it, before the header's clock is applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RawTime {
    /// Not present.
    #[default]
    Absent,
    /// Exporter uptime in ms.
    Uptime(u32),
    /// Absolute Unix ms.
    Absolute(u64),
    /// µs before the export time.
    DeltaMicros(u64),
}

/// Clock information from the packet header and the exporter's options records.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimeBase {
    /// Header export time, Unix ms.
    pub export_ms: u64,
    /// NetFlow v9 header sysUpTime (ms); None for IPFIX.
    pub sys_uptime: Option<u32>,
    /// IPFIX systemInitTimeMilliseconds learned from an options record (or the record itself).
    pub system_init_ms: Option<u64>,
}

impl TimeBase {
    /// Resolves a record's start and end (and duration, if it has one) to absolute UTC ms: a
    /// missing end is start + duration (or start), a missing start end − duration (or end),
    /// and a record with neither is stamped with the export time.
    #[inline]
    pub fn resolve_span(
        &self,
        start: RawTime,
        end: RawTime,
        duration_ms: Option<u64>,
    ) -> (u64, u64) {
        match (self.resolve(start), self.resolve(end)) {
            (Some(s), Some(e)) => (s, e),
            (Some(s), None) => (s, duration_ms.map_or(s, |d| s.saturating_add(d))),
            (None, Some(e)) => (duration_ms.map_or(e, |d| e.saturating_sub(d)), e),
            (None, None) => (self.export_ms, self.export_ms),
        }
    }

    /// Resolves a raw time to Unix ms; None when the record did not carry it or the exporter's
    /// clock for it is unknown.
    #[inline]
    pub fn resolve(&self, t: RawTime) -> Option<u64> {
        match t {
            RawTime::Absent => None,
            RawTime::Absolute(ms) => Some(ms),
            RawTime::DeltaMicros(us) => Some(self.export_ms.saturating_sub(us / 1000)),
            RawTime::Uptime(up) => match (self.sys_uptime, self.system_init_ms) {
                (Some(sys), _) => {
                    Some(super::netflow_v5::uptime_to_utc_ms(self.export_ms, sys, up))
                }
                (None, Some(init)) => Some(init.saturating_add(u64::from(up))),
                (None, None) => None,
            },
        }
    }
}

/// Everything read from one data record, before it becomes one or two [`FlowRecord`]s.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecordFields {
    /// The flow fields read directly.
    pub flow: FlowRecord,
    /// Source address seen.
    pub has_src: bool,
    /// Destination address seen.
    pub has_dst: bool,
    /// A delta byte count seen (fallbacks apply otherwise).
    pub has_bytes: bool,
    /// A delta packet count seen.
    pub has_packets: bool,
    /// Destination port seen (ICMP type/code applies otherwise).
    pub has_dst_port: bool,
    /// ToS seen (DSCP applies otherwise).
    pub has_tos: bool,
    /// Flow start as carried.
    pub start: RawTime,
    /// Flow end as carried.
    pub end: RawTime,
    /// Duration in ms, when carried instead of one end.
    pub duration_ms: Option<u64>,
    /// systemInitTimeMilliseconds, when carried.
    pub system_init_ms: Option<u64>,
    /// Sampling packet interval / samplingSize.
    pub sampling_interval: Option<u64>,
    /// samplingPacketSpace.
    pub sampling_space: Option<u64>,
    /// samplingPopulation.
    pub sampling_population: Option<u64>,
    /// samplerId / selectorId.
    pub sampler_id: Option<u64>,
    /// RFC 5103 reverse octets.
    pub rev_bytes: u64,
    /// RFC 5103 reverse packets.
    pub rev_packets: u64,
    /// RFC 5103 reverse TCP flags.
    pub rev_tcp_flags: u8,
    /// The reverse direction's ToS byte, when the record carries one.
    pub rev_tos: Option<u8>,
    /// Any reverse IE seen: this record is a biflow.
    pub is_biflow: bool,
    /// Reverse start time.
    pub rev_start: RawTime,
    /// Reverse end time.
    pub rev_end: RawTime,
}

fn addr(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        _ => None,
    }
}

fn raw_time(form: TimeForm, v: &[u8]) -> RawTime {
    match form {
        TimeForm::Uptime => RawTime::Uptime(be_uint(v) as u32),
        TimeForm::Secs => RawTime::Absolute(be_uint(v).saturating_mul(1000)),
        TimeForm::Millis => RawTime::Absolute(be_uint(v)),
        TimeForm::Ntp => ntp_to_unix_ms(v).map_or(RawTime::Absent, RawTime::Absolute),
        TimeForm::DeltaMicros => RawTime::DeltaMicros(be_uint(v)),
    }
}

impl RecordFields {
    /// Applies one field's value.
    pub fn apply(&mut self, kind: FieldKind, v: &[u8]) {
        use FieldKind::*;
        let f = &mut self.flow;
        match kind {
            Ignored => {}
            Bytes => {
                f.bytes = be_uint(v);
                self.has_bytes = true;
            }
            Packets => {
                f.packets = be_uint(v);
                self.has_packets = true;
            }
            BytesFallback if !self.has_bytes => f.bytes = be_uint(v),
            PacketsFallback if !self.has_packets => f.packets = be_uint(v),
            BytesFallback | PacketsFallback => {}
            Protocol => f.protocol = be_uint(v) as u8,
            Tos => {
                f.tos = be_uint(v) as u8;
                self.has_tos = true;
            }
            Dscp if !self.has_tos => f.tos = (be_uint(v) as u8) << 2,
            Dscp => {}
            TcpFlags => f.tcp_flags = be_uint(v) as u8,
            SrcPort => f.src_port = be_uint(v) as u16,
            DstPort => {
                f.dst_port = be_uint(v) as u16;
                self.has_dst_port = true;
            }
            IcmpTypeCode if !self.has_dst_port => f.dst_port = be_uint(v) as u16,
            IcmpTypeCode => {}
            SrcAddr => {
                if let Some(a) = addr(v) {
                    f.src_addr = a;
                    self.has_src = true;
                }
            }
            DstAddr => {
                if let Some(a) = addr(v) {
                    f.dst_addr = a;
                    self.has_dst = true;
                }
            }
            NextHop => f.next_hop = addr(v).filter(|a| !a.is_unspecified()).or(f.next_hop),
            BgpNextHop if f.next_hop.is_none() => {
                f.next_hop = addr(v).filter(|a| !a.is_unspecified())
            }
            BgpNextHop => {}
            InIf => f.in_if = be_uint(v) as u32,
            OutIf => f.out_if = be_uint(v) as u32,
            SrcAs => f.src_as = be_uint(v) as u32,
            DstAs => f.dst_as = be_uint(v) as u32,
            Vlan => {
                f.vlan = Some(be_uint(v) as u16 & 0x0fff)
                    .filter(|v| *v != 0)
                    .or(f.vlan)
            }
            StartUptime => self.start = raw_time(TimeForm::Uptime, v),
            EndUptime => self.end = raw_time(TimeForm::Uptime, v),
            StartSecs => self.start = raw_time(TimeForm::Secs, v),
            EndSecs => self.end = raw_time(TimeForm::Secs, v),
            StartMillis => self.start = raw_time(TimeForm::Millis, v),
            EndMillis => self.end = raw_time(TimeForm::Millis, v),
            StartNtp => self.start = raw_time(TimeForm::Ntp, v),
            EndNtp => self.end = raw_time(TimeForm::Ntp, v),
            StartDeltaMicros => self.start = raw_time(TimeForm::DeltaMicros, v),
            EndDeltaMicros => self.end = raw_time(TimeForm::DeltaMicros, v),
            DurationMillis => self.duration_ms = Some(be_uint(v)),
            DurationMicros => self.duration_ms = Some(be_uint(v) / 1000),
            SystemInitMillis => self.system_init_ms = Some(be_uint(v)),
            SamplingInterval => self.sampling_interval = Some(be_uint(v)),
            SamplingSpace => self.sampling_space = Some(be_uint(v)),
            SamplingSize => self.sampling_interval = Some(be_uint(v)),
            SamplingPopulation => self.sampling_population = Some(be_uint(v)),
            SamplerId => self.sampler_id = Some(be_uint(v)),
            RevBytes => {
                self.rev_bytes = be_uint(v);
                self.is_biflow = true;
            }
            RevPackets => {
                self.rev_packets = be_uint(v);
                self.is_biflow = true;
            }
            RevTcpFlags => {
                self.rev_tcp_flags = be_uint(v) as u8;
                self.is_biflow = true;
            }
            RevTos => {
                self.rev_tos = Some(be_uint(v) as u8);
                self.is_biflow = true;
            }
            RevStart(form) => self.rev_start = raw_time(form, v),
            RevEnd(form) => self.rev_end = raw_time(form, v),
        }
    }

    /// The 1-in-N rate this record's own sampling fields describe, if any.
    pub fn sampling_rate(&self) -> Option<u32> {
        let interval = self.sampling_interval.filter(|i| *i > 0)?;
        let rate = match (self.sampling_population, self.sampling_space) {
            (Some(pop), _) if pop >= interval => pop / interval,
            // (interval + space) / interval, without overflowing on 8-byte fields.
            (_, Some(space)) => (space / interval).saturating_add(1),
            _ => interval,
        };
        u32::try_from(rate.max(1)).ok()
    }

    /// Resolves first/last times against the clock, filling a missing end from the start plus
    /// duration (and vice versa); with no times at all the export time stands for both.
    pub fn resolve_times(&self, base: &TimeBase) -> (u64, u64) {
        let base = TimeBase {
            system_init_ms: self.system_init_ms.or(base.system_init_ms),
            ..*base
        };
        base.resolve_span(self.start, self.end, self.duration_ms)
    }

    /// Resolves the reverse direction's times, defaulting to the forward ones.
    pub fn resolve_reverse_times(&self, base: &TimeBase, forward: (u64, u64)) -> (u64, u64) {
        let base = TimeBase {
            system_init_ms: self.system_init_ms.or(base.system_init_ms),
            ..*base
        };
        let start = base.resolve(self.rev_start).unwrap_or(forward.0);
        let end = base.resolve(self.rev_end).unwrap_or(forward.1);
        (start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_eight_byte_timestamps_convert_to_unix_ms() {
        // 2026-11-01T10:00:00.5Z
        let unix = 1_793_527_200u64;
        let mut b = Vec::new();
        b.extend_from_slice(&((unix + NTP_UNIX_OFFSET_SECS) as u32).to_be_bytes());
        b.extend_from_slice(&(1u32 << 31).to_be_bytes());
        assert_eq!(ntp_to_unix_ms(&b), Some(unix * 1000 + 500));
    }

    #[test]
    fn addresses_of_the_wrong_length_are_ignored() {
        let spec = FieldSpec {
            id: 8,
            enterprise: 0,
            len: 16,
        };
        assert_eq!(classify(spec), FieldKind::Ignored);
        let spec = FieldSpec {
            id: 27,
            enterprise: 0,
            len: 16,
        };
        assert_eq!(classify(spec), FieldKind::SrcAddr);
        let spec = FieldSpec {
            id: 1,
            enterprise: 0,
            len: 9,
        };
        assert_eq!(classify(spec), FieldKind::Ignored);
    }

    #[test]
    fn sampling_rate_from_interval_space_and_population() {
        let mut f = RecordFields {
            sampling_interval: Some(1),
            sampling_space: Some(99),
            ..Default::default()
        };
        assert_eq!(f.sampling_rate(), Some(100));
        f = RecordFields {
            sampling_interval: Some(2),
            sampling_population: Some(2000),
            ..Default::default()
        };
        assert_eq!(f.sampling_rate(), Some(1000));
        f = RecordFields {
            sampling_interval: Some(0),
            ..Default::default()
        };
        assert_eq!(f.sampling_rate(), None);
    }
}
