//! The unified flow record every decoder produces, and the sFlow interface counters that are not
//! flows. Both are fixed-size `Copy` values: decoding never allocates per record.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

/// Which wire format a record was decoded from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum FlowSource {
    /// Cisco NetFlow version 5.
    #[default]
    NetflowV5,
    /// Cisco NetFlow version 9 (RFC 3954).
    NetflowV9,
    /// IPFIX (RFC 7011), sometimes called NetFlow v10.
    Ipfix,
    /// sFlow version 5.
    Sflow,
}

/// Where a record sits in a bidirectional flow (RFC 5103).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BiflowDirection {
    /// An ordinary one-way flow record.
    #[default]
    Unidirectional,
    /// The forward half of a biflow: source is the biflow initiator.
    Forward,
    /// The reverse half of a biflow, already turned around: source is the biflow responder.
    Reverse,
}

/// One flow, whatever protocol carried it. Times are absolute UTC milliseconds since the Unix
/// epoch with the exporter's clock already applied; `bytes` and `packets` are already scaled by
/// `sampling_rate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowRecord {
    /// Source address (IPv4 or IPv6).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub src_addr: IpAddr,
    /// Destination address (IPv4 or IPv6).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub dst_addr: IpAddr,
    /// Transport source port (0 when the protocol has none).
    pub src_port: u16,
    /// Transport destination port; for ICMP, NetFlow exporters put `type << 8 | code` here.
    pub dst_port: u16,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, …).
    pub protocol: u8,
    /// Cumulative OR of TCP flags seen in the flow.
    pub tcp_flags: u8,
    /// IPv4 type of service / IPv6 traffic class byte.
    pub tos: u8,
    /// Octets in the flow, scaled by the sampling rate.
    pub bytes: u64,
    /// Packets in the flow, scaled by the sampling rate.
    pub packets: u64,
    /// Input interface index (SNMP ifIndex), 0 when unknown.
    pub in_if: u32,
    /// Output interface index (SNMP ifIndex), 0 when unknown.
    pub out_if: u32,
    /// Source BGP AS number, 0 when unknown.
    pub src_as: u32,
    /// Destination BGP AS number, 0 when unknown.
    pub dst_as: u32,
    /// IP next hop, when the exporter reports one.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub next_hop: Option<IpAddr>,
    /// 802.1Q VLAN id, when present.
    pub vlan: Option<u16>,
    /// First packet of the flow, UTC ms since the Unix epoch.
    pub first_ms: u64,
    /// Last packet of the flow, UTC ms since the Unix epoch.
    pub last_ms: u64,
    /// The device that exported the flow (the UDP source, or the sFlow agent address).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub exporter: IpAddr,
    /// NetFlow v9 source id, IPFIX observation domain id, or sFlow sub-agent id.
    pub observation_domain: u32,
    /// The 1-in-N sampling rate applied to `bytes` and `packets` (1 when unsampled).
    pub sampling_rate: u32,
    /// Forward/reverse half of an RFC 5103 biflow, or unidirectional.
    pub direction: BiflowDirection,
    /// The wire format this record came from.
    pub source: FlowSource,
}

impl Default for FlowRecord {
    fn default() -> Self {
        let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        FlowRecord {
            src_addr: unspecified,
            dst_addr: unspecified,
            src_port: 0,
            dst_port: 0,
            protocol: 0,
            tcp_flags: 0,
            tos: 0,
            bytes: 0,
            packets: 0,
            in_if: 0,
            out_if: 0,
            src_as: 0,
            dst_as: 0,
            next_hop: None,
            vlan: None,
            first_ms: 0,
            last_ms: 0,
            exporter: unspecified,
            observation_domain: 0,
            sampling_rate: 1,
            direction: BiflowDirection::Unidirectional,
            source: FlowSource::NetflowV5,
        }
    }
}

impl FlowRecord {
    /// The DSCP code point: the upper six bits of the ToS / traffic class byte.
    pub fn dscp(&self) -> u8 {
        self.tos >> 2
    }

    /// How long the flow lasted, in milliseconds (0 if the exporter's times are inverted).
    pub fn duration_ms(&self) -> u64 {
        self.last_ms.saturating_sub(self.first_ms)
    }
}

/// sFlow generic interface counters (counter record enterprise 0, format 1) for one interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceCounters {
    /// The sFlow agent that sent the counters.
    pub exporter: IpAddr,
    /// The agent's sub-agent id.
    pub observation_domain: u32,
    /// When the datagram was received, UTC ms since the Unix epoch.
    pub received_ms: u64,
    /// Counter sample sequence number.
    pub sequence: u32,
    /// SNMP ifIndex of the interface.
    pub if_index: u32,
    /// SNMP ifType.
    pub if_type: u32,
    /// Interface speed in bits per second.
    pub if_speed: u64,
    /// 0 unknown, 1 full duplex, 2 half duplex, 3 in, 4 out.
    pub if_direction: u32,
    /// Bit 0 admin up, bit 1 operationally up.
    pub if_status: u32,
    /// Octets received.
    pub in_octets: u64,
    /// Unicast packets received.
    pub in_ucast_pkts: u32,
    /// Multicast packets received.
    pub in_multicast_pkts: u32,
    /// Broadcast packets received.
    pub in_broadcast_pkts: u32,
    /// Inbound packets discarded.
    pub in_discards: u32,
    /// Inbound packets with errors.
    pub in_errors: u32,
    /// Inbound packets of unknown protocol.
    pub in_unknown_protos: u32,
    /// Octets sent.
    pub out_octets: u64,
    /// Unicast packets sent.
    pub out_ucast_pkts: u32,
    /// Multicast packets sent.
    pub out_multicast_pkts: u32,
    /// Broadcast packets sent.
    pub out_broadcast_pkts: u32,
    /// Outbound packets discarded.
    pub out_discards: u32,
    /// Outbound packets with errors.
    pub out_errors: u32,
    /// 1 if the interface is in promiscuous mode.
    pub promiscuous_mode: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_record_is_small_and_fixed_size() {
        assert!(std::mem::size_of::<FlowRecord>() <= 160);
    }

    #[test]
    fn dscp_is_the_upper_six_bits_of_tos() {
        let r = FlowRecord {
            tos: 0xb8,
            ..FlowRecord::default()
        };
        assert_eq!(r.dscp(), 46);
    }
}
