//! Relaying with the exporter's own source address: each datagram becomes an IPv4/UDP packet
//! built here (source = the exporter's address and port) and sent on a raw socket with
//! `IP_HDRINCL`, which needs `CAP_NET_RAW`. Collectors that identify exporters by source
//! address then see the router, not the relay.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};

/// `IPPROTO_RAW`: the socket sends whole IP packets (`IP_HDRINCL` is implied).
const IPPROTO_RAW: i32 = 255;

/// IPv4 header (no options) and UDP header.
const HEADERS: usize = 20 + 8;

/// A raw IPv4 socket that sends UDP datagrams from any source address.
pub struct RawSender {
    /// The raw socket, driven by Tokio as a datagram socket (`sendto` takes whole packets).
    socket: tokio::net::UdpSocket,
    packet: Vec<u8>,
}

impl RawSender {
    /// Opens the raw socket (inside a Tokio runtime).
    ///
    /// # Errors
    /// Without `CAP_NET_RAW` (`PermissionDenied`), or when the OS refuses the socket.
    pub fn open() -> io::Result<RawSender> {
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_RAW)))
            .map_err(|e| {
                if e.kind() == io::ErrorKind::PermissionDenied {
                    io::Error::new(
                        e.kind(),
                        "keeping the exporter's source address needs a raw socket: run with \
                         CAP_NET_RAW (root, `setcap cap_net_raw+ep`, or systemd \
                         AmbientCapabilities=CAP_NET_RAW)",
                    )
                } else {
                    e
                }
            })?;
        socket.set_nonblocking(true)?;
        Ok(RawSender {
            socket: tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(socket))?,
            packet: Vec::with_capacity(65_536),
        })
    }

    /// Sends `payload` to `to` as if from `from`.
    ///
    /// # Errors
    /// When the packet would exceed 65,535 bytes, or the OS refuses it (a packet over the
    /// path's MTU is refused, not fragmented).
    pub async fn send(
        &mut self,
        from: SocketAddrV4,
        to: SocketAddrV4,
        payload: &[u8],
    ) -> io::Result<()> {
        if !build(from, to, payload, &mut self.packet) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the datagram does not fit one IPv4 packet",
            ));
        }
        // A raw socket takes the destination from the packet; the address only routes it.
        let route = SocketAddr::from((*to.ip(), 0));
        self.socket.send_to(&self.packet, route).await.map(|_| ())
    }
}

/// Writes into `out` the IPv4/UDP packet carrying `payload` from `from` to `to`, with both
/// checksums; false when it would be longer than an IPv4 packet can be.
pub fn build(from: SocketAddrV4, to: SocketAddrV4, payload: &[u8], out: &mut Vec<u8>) -> bool {
    let Ok(total) = u16::try_from(HEADERS + payload.len()) else {
        return false;
    };
    let udp_len = total - 20;
    out.clear();
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    // Identification 0 (the kernel picks one), don't fragment, TTL 64, UDP, checksum below.
    out.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    out.extend_from_slice(&from.ip().octets());
    out.extend_from_slice(&to.ip().octets());
    let ip_sum = checksum(0, out.get(..20).unwrap_or_default());
    out[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    out.extend_from_slice(&from.port().to_be_bytes());
    out.extend_from_slice(&to.port().to_be_bytes());
    out.extend_from_slice(&udp_len.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
    // The UDP checksum covers a pseudo-header: addresses, protocol, UDP length.
    let mut pseudo = [0u8; 12];
    pseudo[..4].copy_from_slice(&from.ip().octets());
    pseudo[4..8].copy_from_slice(&to.ip().octets());
    pseudo[9] = 17;
    pseudo[10..].copy_from_slice(&udp_len.to_be_bytes());
    let partial = sum(0, &pseudo);
    let udp_sum = match checksum(partial, out.get(20..).unwrap_or_default()) {
        0 => 0xffff,
        s => s,
    };
    out[26..28].copy_from_slice(&udp_sum.to_be_bytes());
    true
}

/// The ones'-complement sum of `bytes` as big-endian 16-bit words, added to `acc`.
fn sum(mut acc: u32, bytes: &[u8]) -> u32 {
    let mut words = bytes.chunks_exact(2);
    for w in &mut words {
        acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

/// The Internet checksum of `bytes` on top of the partial sum `acc`.
fn checksum(acc: u32, bytes: &[u8]) -> u16 {
    let mut s = sum(acc, bytes);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !u16::try_from(s).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_carry_the_exporters_address_and_valid_checksums() {
        let from: SocketAddrV4 = "192.0.2.1:50000".parse().expect("addr");
        let to: SocketAddrV4 = "198.51.100.7:2055".parse().expect("addr");
        let mut out = Vec::new();
        assert!(build(from, to, b"odd-sized payload", &mut out));
        assert_eq!(out.len(), 28 + 17);
        assert_eq!(out[12..16], [192, 0, 2, 1]);
        assert_eq!(out[16..20], [198, 51, 100, 7]);
        assert_eq!(u16::from_be_bytes([out[20], out[21]]), 50000);
        assert_eq!(u16::from_be_bytes([out[22], out[23]]), 2055);
        assert_eq!(&out[28..], b"odd-sized payload");
        // A header with its checksum in place sums to zero.
        assert_eq!(checksum(0, &out[..20]), 0);
        let mut pseudo = vec![192, 0, 2, 1, 198, 51, 100, 7, 0, 17];
        pseudo.extend_from_slice(&(8u16 + 17).to_be_bytes());
        assert_eq!(checksum(sum(0, &pseudo), &out[20..]), 0);
        assert!(!build(from, to, &vec![0; 65_536], &mut out));
    }
}
