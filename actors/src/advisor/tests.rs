//! The detectors on hand-built windows with known answers, and the advisor's raise-once and
//! expiry bookkeeping.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use proto::advisory::{AdvisoryKind, Severity};
use proto::event::{DependencyKey, EdgeStats, EventBatch, EventKind, ServiceKey, TrafficDelta};

use super::detect::{detect, Baselines, Thresholds, Window};
use super::{AdvisorConfig, AdvisorState, AdvisorTotals};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

fn edge(
    client: &str,
    server: &str,
    port: u16,
    protocol: u8,
    bytes: u64,
    packets: u64,
) -> EdgeStats {
    EdgeStats {
        dependency: DependencyKey {
            client: ip(client),
            service: ServiceKey {
                ip: ip(server),
                port,
                protocol,
            },
        },
        traffic: TrafficDelta {
            bytes_to_server: bytes,
            packets_to_server: packets,
            flows: 1,
            ..TrafficDelta::default()
        },
    }
}

fn thresholds() -> Thresholds {
    Thresholds {
        window: Duration::from_secs(10),
        top_talker_min_bytes: 1_000,
        baseline_windows: 3,
        anomaly_min_bytes: 1_000,
        ..Thresholds::default()
    }
}

fn run(edges: &[EdgeStats]) -> Vec<(AdvisoryKind, Severity, String)> {
    let mut w = Window::new(0);
    w.add(edges);
    detect(&w, &mut Baselines::default(), &thresholds(), 10_000)
        .into_iter()
        .map(|a| (a.kind, a.severity, a.subject))
        .collect()
}

#[test]
fn a_hundred_ports_on_one_host_is_a_scan_and_ninety_nine_is_not() {
    let scan: Vec<EdgeStats> = (1..=100)
        .map(|p| edge("10.0.0.66", "10.0.1.5", p, 6, 60, 1))
        .collect();
    let found = run(&scan);
    assert!(
        found.contains(&(
            AdvisoryKind::PortScan,
            Severity::Warning,
            "10.0.0.66>10.0.1.5".into()
        )),
        "{found:?}"
    );
    assert!(!run(&scan[..99])
        .iter()
        .any(|f| f.0 == AdvisoryKind::PortScan));
}

#[test]
fn fifty_hosts_on_one_port_is_a_sweep() {
    let sweep: Vec<EdgeStats> = (1..=50)
        .map(|h| edge("10.0.0.66", &format!("10.0.2.{h}"), 22, 6, 60, 1))
        .collect();
    let found = run(&sweep);
    assert!(
        found.contains(&(
            AdvisoryKind::HostSweep,
            Severity::Warning,
            "10.0.0.66:22/6".into()
        )),
        "{found:?}"
    );
    assert!(!run(&sweep[..49])
        .iter()
        .any(|f| f.0 == AdvisoryKind::HostSweep));
}

#[test]
fn telnet_and_smb_to_the_internet_are_insecure_but_internal_smb_is_not() {
    let found = run(&[
        edge("10.0.0.7", "10.0.1.9", 23, 6, 500, 5),
        edge("10.0.0.8", "10.0.1.9", 23, 6, 500, 5),
        edge("10.0.0.7", "203.0.113.4", 445, 6, 500, 5),
        edge("10.0.0.7", "10.0.1.10", 445, 6, 500, 5),
    ]);
    let insecure: Vec<_> = found
        .iter()
        .filter(|f| f.0 == AdvisoryKind::InsecureProtocol)
        .collect();
    assert_eq!(
        insecure,
        vec![
            &(
                AdvisoryKind::InsecureProtocol,
                Severity::Warning,
                "10.0.1.9:23/6".to_string()
            ),
            &(
                AdvisoryKind::InsecureProtocol,
                Severity::Critical,
                "203.0.113.4:445/6".to_string()
            ),
        ]
    );
}

#[test]
fn dns_volume_and_the_top_talker_are_reported_with_their_numbers() {
    let mut w = Window::new(0);
    w.add(&[
        edge("10.0.0.9", "10.0.0.53", 53, 17, 60_000, 600),
        edge("10.0.0.50", "10.0.9.1", 443, 6, 9_000_000, 6_000),
        edge("10.0.0.51", "10.0.9.2", 443, 6, 1_000_000, 700),
    ]);
    let found = detect(&w, &mut Baselines::default(), &thresholds(), 10_000);
    let dns = found
        .iter()
        .find(|a| a.kind == AdvisoryKind::DnsVolume)
        .expect("dns volume");
    assert_eq!(
        dns.summary,
        "10.0.0.9 sent 60 DNS queries/s to 1 server: far more than a host needs"
    );
    let top = found
        .iter()
        .find(|a| a.kind == AdvisoryKind::TopTalker)
        .expect("top talker");
    assert_eq!(top.subject, "10.0.0.50");
    assert!(
        top.summary
            .starts_with("10.0.0.50 is using 89% of the bandwidth"),
        "{}",
        top.summary
    );
    assert!(
        top.summary
            .ends_with("mostly 443/tcp (https) with 10.0.9.1"),
        "{}",
        top.summary
    );
    assert_eq!(top.evidence, "/api/v1/flows?host=10.0.0.50");
}

#[test]
fn traffic_to_a_network_dropping_or_spiking_against_its_baseline_is_reported() {
    let t = Thresholds {
        top_talker_min_bytes: u64::MAX,
        ..thresholds()
    };
    let mut baselines = Baselines::default();
    let steady = [edge("10.0.0.1", "192.168.5.10", 443, 6, 50_000, 50)];
    for i in 0..3 {
        let mut w = Window::new(i * 10_000);
        w.add(&steady);
        assert!(detect(&w, &mut baselines, &t, i * 10_000).is_empty());
    }
    let silent = detect(&Window::new(30_000), &mut baselines, &t, 30_000);
    assert_eq!(silent.len(), 1, "{silent:?}");
    assert_eq!(silent[0].kind, AdvisoryKind::TrafficDrop);
    assert_eq!(silent[0].subject, "192.168.5.0/24");
    assert!(
        silent[0]
            .summary
            .starts_with("traffic to 192.168.5.0/24 dropped 100%"),
        "{}",
        silent[0].summary
    );
    let mut burst = Window::new(40_000);
    burst.add(&[edge("10.0.0.1", "192.168.5.10", 443, 6, 2_000_000, 2_000)]);
    let spike = detect(&burst, &mut baselines, &t, 40_000);
    assert_eq!(
        spike.iter().map(|a| a.kind).collect::<Vec<_>>(),
        vec![AdvisoryKind::TrafficSpike]
    );
}

struct Refuses;

impl crate::EventSink for Refuses {
    fn commit<'a>(
        &'a self,
        _batch: &'a EventBatch,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<u64, String>> + Send + 'a>> {
        Box::pin(async { Err("no log in this test".to_string()) })
    }
}

#[test]
fn an_advisory_is_raised_once_while_found_and_resolved_after_the_expiry() {
    let mut state = AdvisorState {
        config: AdvisorConfig {
            thresholds: thresholds(),
            expire: Duration::from_secs(30),
        },
        sink: Arc::new(Refuses),
        graph: None,
        window: Window::new(0),
        baselines: Baselines::default(),
        active: Default::default(),
        unsent: Vec::new(),
        totals: AdvisorTotals::default(),
    };
    let telnet = [edge("10.0.0.7", "10.0.1.9", 23, 6, 500, 5)];
    let kinds = |events: &[proto::event::Event]| -> Vec<&'static str> {
        events.iter().map(|e| e.kind.name()).collect()
    };
    state.window.add(&telnet);
    assert_eq!(kinds(&state.close_window(10_000)), vec!["advisory.raised"]);
    state.window.add(&telnet);
    assert!(state.close_window(20_000).is_empty());
    assert!(state.close_window(30_000).is_empty());
    let resolved = state.close_window(50_000);
    assert_eq!(kinds(&resolved), vec!["advisory.resolved"]);
    let EventKind::AdvisoryResolved { resolution } = &resolved[0].kind else {
        return;
    };
    assert_eq!(resolution.id, "insecure_protocol:10.0.1.9:23/6");
    assert_eq!(resolution.reason, "not seen for 30s");
    state.window.add(&telnet);
    assert_eq!(kinds(&state.close_window(60_000)), vec!["advisory.raised"]);
    assert_eq!((state.totals.raised, state.totals.resolved), (2, 1));
}

#[test]
fn requests_and_replies_seen_at_different_exporters_are_asymmetric() {
    use crate::aggregator::Asymmetry;
    let key = edge("10.0.0.5", "10.1.0.9", 443, 6, 0, 0).dependency;
    let (a, b): (IpAddr, IpAddr) = (ip("192.0.2.1"), ip("192.0.2.2"));
    let mut w = Window::new(0);
    w.add_asymmetric(&[
        Asymmetry {
            dependency: key,
            to_server: (a, 3, 5),
            to_client: (b, 7, 1),
        },
        Asymmetry {
            dependency: key,
            to_server: (a, 3, 5),
            to_client: (b, 7, 1),
        },
    ]);
    let found = detect(&w, &mut Baselines::default(), &thresholds(), 10_000);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, AdvisoryKind::FlowAsymmetry);
    assert_eq!(found[0].subject, "192.0.2.1/3/5>192.0.2.2/7/1");
    assert_eq!(
        found[0].summary,
        "asymmetric routing: 2 dependencies had requests seen at 192.0.2.1 (interface 3 → 5) and replies at 192.0.2.2 (interface 7 → 1), e.g. 10.0.0.5 → 10.1.0.9:443/6"
    );
}

#[test]
fn scans_and_sweeps_count_across_ipv4_and_ipv6_edges() {
    // IPv4 pairs and the others are kept in separate tables: one sweep over both families,
    // and a scan between IPv6 hosts, are counted as one run each.
    let mut edges: Vec<EdgeStats> = (1..=25)
        .map(|h| edge("10.0.0.66", &format!("10.0.2.{h}"), 22, 6, 60, 1))
        .collect();
    edges.extend((1..=25).map(|h| edge("10.0.0.66", &format!("fd00::{h:x}"), 22, 6, 60, 1)));
    edges.extend((1..=100).map(|p| edge("fd00::66", "fd00::5", p, 6, 60, 1)));
    let found = run(&edges);
    assert!(
        found.contains(&(
            AdvisoryKind::HostSweep,
            Severity::Warning,
            "10.0.0.66:22/6".into()
        )),
        "{found:?}"
    );
    assert!(
        found.contains(&(
            AdvisoryKind::PortScan,
            Severity::Warning,
            "fd00::66>fd00::5".into()
        )),
        "{found:?}"
    );
    assert!(!run(&edges[1..50])
        .iter()
        .any(|f| f.0 == AdvisoryKind::HostSweep));
}
