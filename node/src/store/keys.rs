//! Byte keys for the projection's trees: addresses, service endpoints and dependencies encoded so
//! that sled's byte order groups a server's services and a client's dependencies together.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proto::event::{DependencyKey, ServiceKey};

/// An address as a key: `4` + 4 octets or `6` + 16 octets.
pub fn ip(ip: IpAddr, out: &mut Vec<u8>) {
    match ip {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
}

/// The key of an asset.
pub fn asset(addr: IpAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(17);
    ip(addr, &mut out);
    out
}

/// The key of a service: its address, then port and protocol.
pub fn service(key: &ServiceKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    ip(key.ip, &mut out);
    out.extend_from_slice(&key.port.to_be_bytes());
    out.push(key.protocol);
    out
}

/// The key of a dependency: the client's address, then the service's key.
pub fn dependency(key: &DependencyKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    ip(key.client, &mut out);
    out.extend_from_slice(&service(&key.service));
    out
}

/// Reads an address key back; the rest of the bytes follow it.
pub fn read_ip(bytes: &[u8]) -> Option<(IpAddr, &[u8])> {
    let (family, rest) = bytes.split_first()?;
    match family {
        4 => {
            let (octets, rest) = rest.split_first_chunk::<4>()?;
            Some((IpAddr::V4(Ipv4Addr::from(*octets)), rest))
        }
        6 => {
            let (octets, rest) = rest.split_first_chunk::<16>()?;
            Some((IpAddr::V6(Ipv6Addr::from(*octets)), rest))
        }
        _ => None,
    }
}

/// The history index key: event time, log index, position in the batch (all big-endian, so the
/// tree iterates in time order).
pub fn history(at_ms: u64, log_index: u64, position: u32) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..8].copy_from_slice(&at_ms.to_be_bytes());
    out[8..16].copy_from_slice(&log_index.to_be_bytes());
    out[16..].copy_from_slice(&position.to_be_bytes());
    out
}

/// The log index of a [`history`] key, if it is one.
pub fn history_log_index(key: &[u8]) -> Option<u64> {
    key.get(8..16)?.try_into().ok().map(u64::from_be_bytes)
}
