use etherparse::{LaxLinkExtSlice, LaxNetSlice, LaxSlicedPacket, PacketBuilder, TransportSlice};
use proptest::prelude::*;

use super::*;

/// What `etherparse` reads from a sampled header (the decoder used it before): the fields, and
/// whether it reached the transport header.
fn etherparse_reading(header_protocol: u32, header: &[u8]) -> Option<(FlowRecord, bool)> {
    let parsed = match header_protocol {
        protocol::ETHERNET => LaxSlicedPacket::from_ethernet(header).ok(),
        protocol::IPV4 | protocol::IPV6 => LaxSlicedPacket::from_ip(header).ok(),
        _ => None,
    }?;
    let mut flow = FlowRecord::default();
    for ext in &parsed.link_exts {
        if let LaxLinkExtSlice::Vlan(v) = ext {
            flow.vlan = Some(v.vlan_identifier().value());
            break;
        }
    }
    match &parsed.net {
        Some(LaxNetSlice::Ipv4(ip)) => {
            let h = ip.header();
            flow.src_addr = IpAddr::V4(h.source_addr());
            flow.dst_addr = IpAddr::V4(h.destination_addr());
            flow.protocol = ip.payload().ip_number.0;
            flow.tos = h.slice().get(1).copied().unwrap_or(0);
        }
        Some(LaxNetSlice::Ipv6(ip)) => {
            let h = ip.header();
            flow.src_addr = IpAddr::V6(h.source_addr());
            flow.dst_addr = IpAddr::V6(h.destination_addr());
            flow.protocol = ip.payload().ip_number.0;
            flow.tos = h.traffic_class();
        }
        _ => return None,
    }
    let transport = match &parsed.transport {
        Some(TransportSlice::Tcp(t)) => {
            flow.src_port = t.source_port();
            flow.dst_port = t.destination_port();
            flow.tcp_flags = t.slice().get(13).copied().unwrap_or(0);
            true
        }
        Some(TransportSlice::Udp(u)) => {
            flow.src_port = u.source_port();
            flow.dst_port = u.destination_port();
            true
        }
        Some(TransportSlice::Icmpv4(i)) => {
            flow.dst_port = u16::from(i.type_u8()) << 8 | u16::from(i.code_u8());
            true
        }
        Some(TransportSlice::Icmpv6(i)) => {
            flow.dst_port = u16::from(i.type_u8()) << 8 | u16::from(i.code_u8());
            true
        }
        None => false,
    };
    Some((flow, transport))
}

fn ours(header_protocol: u32, header: &[u8]) -> Option<FlowRecord> {
    let mut flow = FlowRecord::default();
    parse(header_protocol, header, &mut flow).then_some(flow)
}

/// A bare IP packet: IPv4 or IPv6, carrying TCP, UDP or an ICMP echo request, with ToS (traffic
/// class) `tos` and `payload` bytes after the transport header.
fn ip_packet(v6: bool, transport: u8, ports: (u16, u16), tos: u8, payload: usize) -> Vec<u8> {
    let payload = vec![0x5a; payload];
    let mut out = Vec::new();
    let (sp, dp) = ports;
    let written = match (v6, transport) {
        (false, 0) => PacketBuilder::ipv4([10, 1, 2, 3], [192, 168, 7, 9], 64)
            .tcp(sp, dp, 7, 1024)
            .syn()
            .ack(1)
            .write(&mut out, &payload),
        (false, 1) => PacketBuilder::ipv4([10, 1, 2, 3], [192, 168, 7, 9], 64)
            .udp(sp, dp)
            .write(&mut out, &payload),
        (false, _) => PacketBuilder::ipv4([10, 1, 2, 3], [192, 168, 7, 9], 64)
            .icmpv4_echo_request(sp, dp)
            .write(&mut out, &payload),
        (true, 0) => PacketBuilder::ipv6([0xfd; 16], [0x20; 16], 64)
            .tcp(sp, dp, 7, 1024)
            .psh()
            .fin()
            .write(&mut out, &payload),
        (true, 1) => PacketBuilder::ipv6([0xfd; 16], [0x20; 16], 64)
            .udp(sp, dp)
            .write(&mut out, &payload),
        (true, _) => PacketBuilder::ipv6([0xfd; 16], [0x20; 16], 64)
            .icmpv6_echo_request(sp, dp)
            .write(&mut out, &payload),
    };
    assert!(written.is_ok(), "{written:?}");
    if v6 {
        out[0] = 0x60 | (tos >> 4);
        out[1] = (out[1] & 0x0f) | (tos << 4);
    } else {
        out[1] = tos;
    }
    out
}

/// An Ethernet II frame around `packet`, behind the given tags (EtherType, tag control).
fn frame(tags: &[(u16, u16)], packet: &[u8]) -> Vec<u8> {
    let mut out = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    for (ether_type, tci) in tags {
        out.extend_from_slice(&ether_type.to_be_bytes());
        out.extend_from_slice(&tci.to_be_bytes());
    }
    let ether_type: u16 = if packet[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
    out.extend_from_slice(&ether_type.to_be_bytes());
    out.extend_from_slice(packet);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// On every packet `etherparse` reads, this reads the same; where `etherparse` stops short
    /// of the transport (a TCP header cut before its 20 bytes, a UDP or ICMP one before 8),
    /// this still reads what the bytes hold, and what it reads is what was sent.
    #[test]
    fn reads_what_etherparse_reads(
        v6 in any::<bool>(),
        transport in 0u8..3,
        ports in (any::<u16>(), any::<u16>()),
        tos in any::<u8>(),
        payload in 0usize..64,
        tags in proptest::collection::vec(
            (prop_oneof![Just(0x8100u16), Just(0x88a8), Just(0x9100)], any::<u16>()), 0..3),
        ethernet in any::<bool>(),
        cut in 0usize..160,
    ) {
        let packet = ip_packet(v6, transport, ports, tos, payload);
        let (header_protocol, mut header) = if ethernet {
            (protocol::ETHERNET, frame(&tags, &packet))
        } else {
            (if v6 { protocol::IPV6 } else { protocol::IPV4 }, packet.clone())
        };
        header.truncate(cut.max(1));
        let reference = etherparse_reading(header_protocol, &header);
        let read = ours(header_protocol, &header);
        prop_assert_eq!(read.is_some(), reference.is_some());
        let (Some(read), Some((expected, transport_read))) = (read, reference) else {
            return Ok(());
        };
        if transport_read {
            prop_assert_eq!(read, expected);
        } else {
            let without_transport = FlowRecord {
                src_port: 0,
                dst_port: 0,
                tcp_flags: 0,
                ..read
            };
            prop_assert_eq!(without_transport, expected);
            let ip_header = if v6 { 40 } else { 20 };
            let prefix = if ethernet { 14 + 4 * tags.len() } else { 0 };
            let sent = &packet[ip_header..];
            let have = header.len().saturating_sub(prefix + ip_header);
            let echo_request: u16 = if v6 { 128 << 8 } else { 8 << 8 };
            match transport {
                2 => prop_assert_eq!(read.dst_port, if have >= 2 { echo_request } else { 0 }),
                _ if have >= 4 => prop_assert_eq!((read.src_port, read.dst_port), ports),
                _ => prop_assert_eq!((read.src_port, read.dst_port), (0, 0)),
            }
            if transport == 0 {
                let flags = if have >= 14 { sent[13] } else { 0 };
                prop_assert_eq!(read.tcp_flags, flags);
            }
        }
    }

    /// Nothing panics and nothing is read past the end, whatever the bytes.
    #[test]
    fn arbitrary_bytes_are_read_safely(
        header_protocol in prop_oneof![Just(1u32), Just(11), Just(12), any::<u32>()],
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let _ = ours(header_protocol, &bytes);
    }
}

fn ipv4_fields(read: &FlowRecord) -> (IpAddr, IpAddr, u8, u16, u16) {
    (
        read.src_addr,
        read.dst_addr,
        read.protocol,
        read.src_port,
        read.dst_port,
    )
}

#[test]
fn a_first_fragment_keeps_its_ports_and_later_fragments_have_none() {
    // Unlike etherparse (no transport for any fragment), but as sflowtool and Wireshark: the
    // first fragment carries the transport header.
    let mut first = ip_packet(false, 1, (5353, 53), 0, 40);
    first[6] = 0x20; // more fragments, offset 0
    let mut later = first.clone();
    later[6] = 0x00;
    later[7] = 0x05; // offset 40 bytes
    let src = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
    let dst = IpAddr::V4(Ipv4Addr::new(192, 168, 7, 9));
    let read = ours(protocol::IPV4, &first).unwrap_or_default();
    assert_eq!(ipv4_fields(&read), (src, dst, 17, 5353, 53));
    let read = ours(protocol::IPV4, &later).unwrap_or_default();
    assert_eq!(ipv4_fields(&read), (src, dst, 17, 0, 0));

    // IPv6: a fragment header (next header UDP) after a hop-by-hop header of 8 bytes.
    let udp = ip_packet(true, 1, (4500, 500), 0, 8);
    let mut v6 = udp[..40].to_vec();
    v6[6] = 0; // hop-by-hop
    let payload_len = (udp.len() - 40 + 16) as u16;
    v6[4..6].copy_from_slice(&payload_len.to_be_bytes());
    v6.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop: next fragment, PadN
    v6.extend_from_slice(&[17, 0, 0x00, 0x01, 0, 0, 0, 7]); // fragment: offset 0, more
    v6.extend_from_slice(&udp[40..]);
    let read = ours(protocol::IPV6, &v6).unwrap_or_default();
    assert_eq!(
        (read.protocol, read.src_port, read.dst_port),
        (17, 4500, 500)
    );
    v6[48 + 2] = 0x01; // offset 32 bytes: a later fragment
    let read = ours(protocol::IPV6, &v6).unwrap_or_default();
    assert_eq!((read.protocol, read.src_port, read.dst_port), (17, 0, 0));
    // Cut inside the extension headers: addresses, no transport.
    let read = ours(protocol::IPV6, &v6[..44]).unwrap_or_default();
    assert_eq!(read.src_addr, IpAddr::V6(Ipv6Addr::from([0xfd; 16])));
    assert_eq!((read.src_port, read.dst_port), (0, 0));
}

#[test]
fn an_authentication_header_is_read_through() {
    let tcp = ip_packet(false, 0, (40000, 443), 0, 0);
    let mut p = tcp[..20].to_vec();
    p[9] = 51;
    // Next header TCP, length 4 words (24 bytes), reserved, SPI, sequence, 12 bytes of ICV.
    p.extend_from_slice(&[6, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
    p.extend_from_slice(&[0; 12]);
    p.extend_from_slice(&tcp[20..]);
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    let read = ours(protocol::IPV4, &p).unwrap_or_default();
    assert_eq!(
        (read.protocol, read.src_port, read.dst_port),
        (6, 40000, 443)
    );
    assert_eq!(read.tcp_flags, 0x12, "SYN ACK");
}

#[test]
fn vlan_tags_and_integrity_only_macsec_are_read_through() {
    let packet = ip_packet(false, 1, (1234, 161), 0xb8, 0);
    // QinQ: the outer (service) tag's id is the one kept.
    let qinq = frame(&[(0x88a8, 0x2064), (0x8100, 0x0ffe)], &packet);
    let read = ours(protocol::ETHERNET, &qinq).unwrap_or_default();
    assert_eq!((read.vlan, read.tos, read.dst_port), (Some(100), 0xb8, 161));

    // MACsec with an explicit SCI, integrity only: EtherType and packet follow the SecTAG.
    let mut macsec = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xe5];
    macsec.extend_from_slice(&[0x20, 0, 0, 0, 0, 9]);
    macsec.extend_from_slice(&[0xaa; 8]);
    macsec.extend_from_slice(&[0x08, 0x00]);
    macsec.extend_from_slice(&packet);
    let read = ours(protocol::ETHERNET, &macsec).unwrap_or_default();
    assert_eq!((read.protocol, read.dst_port), (17, 161));
    // Encrypted (E and C set): nothing readable.
    macsec[14] = 0x2c;
    assert_eq!(ours(protocol::ETHERNET, &macsec), None);
}

#[test]
fn headers_without_an_ip_packet_are_not_read() {
    let mut flow = FlowRecord {
        vlan: Some(7),
        ..FlowRecord::default()
    };
    let untouched = flow;
    let mut arp = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x06];
    arp.extend_from_slice(&[0; 28]);
    let packet = ip_packet(false, 0, (1, 2), 0, 0);
    let mut bad_ihl = packet.clone();
    bad_ihl[0] = 0x44;
    let mut bad_version = packet.clone();
    bad_version[0] = 0x55;
    let too_many_tags = frame(&[(0x8100, 1); 9], &packet);
    for (header_protocol, bytes) in [
        (protocol::ETHERNET, &arp[..]),
        (protocol::IPV4, &bad_ihl[..]),
        (protocol::IPV4, &bad_version[..]),
        (protocol::IPV4, &packet[..19]),
        (protocol::ETHERNET, &frame(&[], &packet)[..30]),
        (protocol::ETHERNET, &too_many_tags[..]),
        (protocol::ETHERNET, &[][..]),
        (2, &packet[..]),
    ] {
        assert!(!parse(header_protocol, bytes, &mut flow), "{bytes:02x?}");
        assert_eq!(flow, untouched);
    }
}
