//! FlowLens actors (ractor): the collector reads UDP and decodes, the aggregator buckets flows and
//! infers who is client and who is server, the graph keeps the dependency map and emits change
//! events to the event log. Bounded lanes sit between them: ractor mailboxes are unbounded.

pub mod advisor;
pub mod aggregator;
pub mod analysis;
pub mod collector;
mod committer;
pub mod graph;
pub mod lane;
pub mod ports;
pub mod relay;
pub mod sequence;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::event::{EdgeStats, EventBatch};
use proto::FlowRecord;

/// Where the graph actor commits its change events: the node's event log.
pub trait EventSink: Send + Sync + 'static {
    /// Commits a batch; resolves to its log index once applied, or an error saying why not. The
    /// batch is borrowed so that a refused one can be retried without a copy.
    fn commit<'a>(
        &'a self,
        batch: &'a EventBatch,
    ) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'a>>;
}

/// Where committed per-dependency traffic goes for the 1 min / 1 h / 1 d rollups (local to the
/// node, never replicated).
pub trait RollupSink: Send + Sync + 'static {
    /// Records one stats period's traffic, committed at `at_ms`; the edges are handed over.
    fn record(&self, at_ms: u64, edges: Vec<EdgeStats>);
}

/// Where aggregated flow records go to be kept raw on disk (local to the node, never
/// replicated). Must not block: a sink that falls behind drops and counts.
pub trait RawSink: Send + Sync + 'static {
    /// Hands over one batch of flow records, as decoded.
    fn record(&self, flows: Vec<FlowRecord>);
}

/// A hash map with foldhash: several times faster than the standard SipHash on the small keys
/// of the per-flow path, and seeded per process, so crafted flows cannot force collisions.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// A hash set with foldhash (see [`FastMap`]).
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// A value per host address, IPv4 addresses packed into 4 bytes: a map of 50 k hosts with
/// 24-byte values takes 32-byte entries instead of 48 (`IpAddr` is 17 bytes, padded).
#[derive(Clone, Debug)]
pub struct HostMap<V> {
    v4: FastMap<u32, V>,
    other: FastMap<IpAddr, V>,
}

impl<V> Default for HostMap<V> {
    fn default() -> Self {
        HostMap {
            v4: FastMap::default(),
            other: FastMap::default(),
        }
    }
}

impl<V: Default> HostMap<V> {
    /// The value of `ip`, inserted as the default if absent.
    pub fn entry(&mut self, ip: IpAddr) -> &mut V {
        match ip {
            IpAddr::V4(v4) => self.v4.entry(v4.into()).or_default(),
            IpAddr::V6(_) => self.other.entry(ip).or_default(),
        }
    }
}

impl<V> HostMap<V> {
    /// Every host with its value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, &V)> {
        let v4 = self
            .v4
            .iter()
            .map(|(ip, v)| (IpAddr::from(ip.to_be_bytes()), v));
        v4.chain(self.other.iter().map(|(ip, v)| (*ip, v)))
    }

    /// Hosts held.
    pub fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sends `msg()` to `to` every `period` (the first at once; a late tick is not made up) until
/// the actor is gone.
pub fn send_every<M: ractor::Message>(
    to: ractor::ActorRef<M>,
    period: Duration,
    msg: impl Fn() -> M + Send + 'static,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if to.send_message(msg()).is_err() {
                return;
            }
        }
    });
}

/// Wall-clock time, UTC ms since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_map_gives_back_ipv4_and_ipv6_hosts_with_their_values() {
        let mut hosts: HostMap<u64> = HostMap::default();
        let hosts_in: [IpAddr; 4] = [
            "10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4])),
            "255.255.255.255".parse().unwrap_or(IpAddr::from([0; 4])),
            "::ffff:10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4])),
            "fd00::1".parse().unwrap_or(IpAddr::from([0; 4])),
        ];
        for (i, ip) in hosts_in.iter().enumerate() {
            *hosts.entry(*ip) += i as u64 + 1;
            *hosts.entry(*ip) += 10;
        }
        assert_eq!(hosts.len(), 4);
        let mut out: Vec<(IpAddr, u64)> = hosts.iter().map(|(ip, v)| (ip, *v)).collect();
        out.sort();
        let mut expected: Vec<(IpAddr, u64)> = hosts_in
            .iter()
            .enumerate()
            .map(|(i, ip)| (*ip, i as u64 + 11))
            .collect();
        expected.sort();
        assert_eq!(out, expected);
    }
}
