//! Behavioural classification: what an asset does, guessed from the shape of its traffic in the
//! call graph, each guess with a confidence and the evidence in plain words. Database, cache and
//! queue, DNS and NTP servers are recognised by the ports they answer on; a load balancer by
//! answering many clients on one port while calling a pool of servers on one port; a gateway or
//! NAT by one address talking to very many peers across many networks; a plain server by fan-in
//! and a workstation by fan-out.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use proto::role::{Role, RoleGuess};

use super::CallGraph;
use crate::ports::{describe_service, plural};

/// Ports of databases (TCP).
pub const DATABASE_PORTS: &[u16] = &[
    1433, 1521, 3306, 5432, 5984, 6432, 7474, 8086, 9042, 26257, 27017, 28015, 50000,
];
/// Ports of caches and message queues (TCP).
pub const CACHE_QUEUE_PORTS: &[u16] = &[
    1883, 2181, 4222, 5672, 6379, 8883, 9092, 11211, 26379, 61613, 61616,
];

/// Peers (callers and callees) a gateway talks to at least.
const GATEWAY_PEERS: usize = 50;
/// Distinct /16 (IPv4) or /48 (IPv6) networks among them at least.
const GATEWAY_NETWORKS: usize = 8;

fn pct(x: f64) -> u8 {
    (x.clamp(0.0, 1.0) * 100.0).round() as u8
}

fn network_of(ip: IpAddr) -> (bool, u64) {
    match ip {
        IpAddr::V4(v4) => (false, u64::from(u32::from(v4) >> 16)),
        IpAddr::V6(v6) => (true, (u128::from(v6) >> 80) as u64),
    }
}

/// Specific roles win ties over generic ones.
fn specificity(role: Role) -> u8 {
    match role {
        Role::Database => 0,
        Role::CacheQueue => 1,
        Role::Dns => 2,
        Role::Ntp => 3,
        Role::LoadBalancer => 4,
        Role::Gateway => 5,
        Role::Server => 6,
        Role::Workstation => 7,
    }
}

impl CallGraph {
    /// The services `node` answers on, with the distinct clients of each.
    pub fn served(&self, node: u32) -> BTreeMap<(u16, u8), BTreeSet<u32>> {
        let mut served: BTreeMap<(u16, u8), BTreeSet<u32>> = BTreeMap::new();
        for e in Self::range(&self.in_start, node) {
            let key = self.need_service[self.in_need[e] as usize];
            served.entry(key).or_default().insert(self.inc[e]);
        }
        served
    }

    /// The services `node` calls, with the distinct servers of each.
    pub fn calls(&self, node: u32) -> BTreeMap<(u16, u8), BTreeSet<u32>> {
        let mut calls: BTreeMap<(u16, u8), BTreeSet<u32>> = BTreeMap::new();
        for e in Self::range(&self.out_start, node) {
            let key = self.need_service[self.out_need[e] as usize];
            calls.entry(key).or_default().insert(self.out[e]);
        }
        calls
    }

    /// Every role the traffic of `node` suggests, most confident first (then the most specific).
    pub fn role_guesses(&self, node: u32) -> Vec<RoleGuess> {
        let served = self.served(node);
        let calls = self.calls(node);
        let mut guesses: Vec<RoleGuess> = Vec::new();
        let mut guess = |role: Role, confidence: f64, evidence: Vec<String>| {
            guesses.push(RoleGuess {
                role,
                confidence_pct: pct(confidence),
                evidence,
            })
        };
        let by_port = |role: Role, ports: &[u16], protocol: Option<u8>, base: f64| {
            let mut best: Option<(usize, String)> = None;
            for (&(port, proto), clients) in &served {
                if ports.contains(&port) && protocol.is_none_or(|p| p == proto) {
                    let line = format!(
                        "answers {} for {}",
                        describe_service(port, proto),
                        plural(clients.len(), "client")
                    );
                    if best.as_ref().is_none_or(|(n, _)| clients.len() > *n) {
                        best = Some((clients.len(), line));
                    }
                }
            }
            best.map(|(n, line)| (role, base + 0.1 * n.min(3) as f64, line))
        };
        for found in [
            by_port(Role::Database, DATABASE_PORTS, Some(6), 0.65),
            by_port(Role::CacheQueue, CACHE_QUEUE_PORTS, Some(6), 0.65),
            by_port(Role::Dns, &[53], None, 0.7),
            by_port(Role::Ntp, &[123], Some(17), 0.7),
        ]
        .into_iter()
        .flatten()
        {
            guess(found.0, found.1, vec![found.2]);
        }

        let clients: BTreeSet<u32> = served.values().flatten().copied().collect();
        let servers: BTreeSet<u32> = calls.values().flatten().copied().collect();

        // A load balancer: a front port with several clients, and a pool behind it on one port
        // that is not a database's or a cache's.
        let front = served.iter().max_by_key(|(_, c)| c.len());
        let pool = calls
            .iter()
            .filter(|((port, _), _)| {
                !DATABASE_PORTS.contains(port) && !CACHE_QUEUE_PORTS.contains(port)
            })
            .max_by_key(|(_, s)| s.len());
        if let (Some((&(fp, fproto), fc)), Some((&(pp, pproto), ps))) = (front, pool) {
            if fc.len() >= 3 && ps.len() >= 2 && calls.len() <= 2 {
                let mut confidence = 0.5 + 0.1 * ps.len().min(3) as f64;
                if fc.len() >= 10 {
                    confidence += 0.1;
                }
                guess(
                    Role::LoadBalancer,
                    confidence,
                    vec![
                        format!(
                            "answers {} for {}",
                            describe_service(fp, fproto),
                            plural(fc.len(), "client")
                        ),
                        format!(
                            "calls a pool of {} on {}",
                            plural(ps.len(), "server"),
                            describe_service(pp, pproto)
                        ),
                    ],
                );
            }
        }

        // A gateway or NAT: very many peers, spread over many networks.
        let peers: BTreeSet<u32> = clients.union(&servers).copied().collect();
        let networks: BTreeSet<(bool, u64)> =
            peers.iter().map(|&p| network_of(self.ip(p))).collect();
        // Fan-in and fan-out say little about an address that fronts whole networks.
        let gateway = peers.len() >= GATEWAY_PEERS && networks.len() >= GATEWAY_NETWORKS;
        let generic_cap = if gateway { 0.6 } else { 1.0 };
        if gateway {
            guess(
                Role::Gateway,
                0.7 + 0.2 * (peers.len() as f64 / 200.0).min(1.0),
                vec![format!(
                    "talks to {} in {} different /16 networks",
                    plural(peers.len(), "peer"),
                    networks.len()
                )],
            );
        }

        if clients.len() >= 3 {
            let ports: Vec<String> = served
                .keys()
                .take(3)
                .map(|&(p, t)| describe_service(p, t))
                .collect();
            guess(
                Role::Server,
                (0.5 + 0.05 * clients.len().min(8) as f64).min(generic_cap),
                vec![format!(
                    "answers {} on {}",
                    plural(clients.len(), "client"),
                    ports.join(", ")
                )],
            );
        }
        if served.is_empty() && servers.len() >= 3 {
            guess(
                Role::Workstation,
                (0.5 + 0.05 * servers.len().min(8) as f64).min(generic_cap),
                vec![
                    format!(
                        "calls {} on {}",
                        plural(servers.len(), "server"),
                        plural(calls.len(), "service port")
                    ),
                    "answers no one".into(),
                ],
            );
        }
        guesses.sort_by(|a, b| {
            b.confidence_pct
                .cmp(&a.confidence_pct)
                .then(specificity(a.role).cmp(&specificity(b.role)))
        });
        guesses
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::analysis::CallEdge;

    fn ip(a: u8, b: u8, c: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, a, b, c))
    }

    fn call(client: IpAddr, server: IpAddr, port: u16, protocol: u8) -> CallEdge {
        CallEdge {
            client,
            server,
            port,
            protocol,
        }
    }

    fn best(g: &CallGraph, at: IpAddr) -> Option<(Role, u8)> {
        let node = g.node(at)?;
        g.role_guesses(node)
            .first()
            .map(|x| (x.role, x.confidence_pct))
    }

    #[test]
    fn recognises_databases_caches_balancers_and_name_servers() {
        let (lb, web1, web2, db, cache, dns) = (
            ip(1, 0, 10),
            ip(1, 0, 20),
            ip(1, 0, 21),
            ip(1, 0, 30),
            ip(1, 0, 31),
            ip(1, 0, 53),
        );
        let mut edges = vec![];
        for c in 1..=3 {
            edges.push(call(ip(2, 0, c), lb, 443, 6));
            edges.push(call(ip(2, 0, c), dns, 53, 17));
        }
        for web in [web1, web2] {
            edges.extend([
                call(lb, web, 8080, 6),
                call(web, db, 5432, 6),
                call(web, cache, 6379, 6),
            ]);
        }
        let g = CallGraph::new(edges);
        assert_eq!(best(&g, db), Some((Role::Database, 85)));
        assert_eq!(best(&g, cache), Some((Role::CacheQueue, 85)));
        assert_eq!(best(&g, dns), Some((Role::Dns, 100)));
        assert_eq!(best(&g, lb), Some((Role::LoadBalancer, 70)));
        // The web servers answer one client each and call two ports: nothing stands out.
        assert_eq!(best(&g, web1), None);
        let evidence = &g.role_guesses(g.node(db).unwrap_or(0))[0].evidence;
        assert_eq!(
            evidence,
            &vec!["answers 5432/tcp (postgresql) for 2 clients".to_string()]
        );
    }

    #[test]
    fn tells_servers_from_workstations_and_gateways() {
        let server = ip(3, 0, 1);
        let workstation = ip(4, 0, 1);
        let nat = ip(5, 0, 1);
        let mut edges = vec![];
        for c in 0..6 {
            edges.push(call(ip(3, 1, c), server, 8443, 6));
        }
        for s in 0..4 {
            edges.push(call(workstation, ip(4, 1, s), 443, 6));
        }
        // 60 servers in 12 /16 networks, behind one address.
        for s in 0..60u8 {
            edges.push(call(nat, ip(100 + s % 12, s, 1), 443, 6));
        }
        let g = CallGraph::new(edges);
        assert_eq!(best(&g, server), Some((Role::Server, 80)));
        assert_eq!(best(&g, workstation), Some((Role::Workstation, 70)));
        assert_eq!(best(&g, nat), Some((Role::Gateway, 76)));
        let all: Vec<Role> = g
            .role_guesses(g.node(nat).unwrap_or(0))
            .iter()
            .map(|x| x.role)
            .collect();
        assert_eq!(all, vec![Role::Gateway, Role::Workstation]);
    }
}
