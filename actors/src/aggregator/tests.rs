//! Client/server inference, one rule at a time, and whether the server side was already known.

use std::net::{IpAddr, Ipv4Addr};

use super::*;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

fn flow(src: (u8, u16), dst: (u8, u16), protocol: u8) -> FlowRecord {
    FlowRecord {
        src_addr: ip(src.0),
        src_port: src.1,
        dst_addr: ip(dst.0),
        dst_port: dst.1,
        protocol,
        ..FlowRecord::default()
    }
}

fn service(last: u8, port: u16, protocol: u8) -> ServiceKey {
    ServiceKey {
        ip: ip(last),
        port,
        protocol,
    }
}

#[test]
fn a_service_port_marks_the_server_in_either_direction() {
    let known = FastSet::default();
    let request = orient(&flow((1, 50_000), (2, 443), 6), &known);
    let reply = orient(&flow((2, 443), (1, 50_000), 6), &known);
    assert_eq!(request.key.client, ip(1));
    assert_eq!(request.key.service, service(2, 443, 6));
    assert!(request.to_server);
    assert_eq!(reply.key, request.key);
    assert!(!reply.to_server);
    assert!(!request.server_known && !reply.server_known);
}

#[test]
fn a_known_server_endpoint_beats_the_port_rule_and_says_it_was_known() {
    let mut known = FastSet::default();
    known.insert(service(9, 9_999, 6));
    // The source port is a service port, but the destination has been a server before.
    let o = orient(&flow((5, 443), (9, 9_999), 6), &known);
    assert_eq!(o.key.service, service(9, 9_999, 6));
    assert_eq!(o.key.client, ip(5));
    assert!(o.to_server && o.server_known);
    // Both sides known: the port rule decides, and the server it picks was known.
    known.insert(service(5, 443, 6));
    let o = orient(&flow((5, 443), (9, 9_999), 6), &known);
    assert_eq!(o.key.service, service(5, 443, 6));
    assert!(!o.to_server && o.server_known);
}

#[test]
fn without_service_ports_a_client_syn_then_the_lower_port_decide() {
    let known = FastSet::default();
    let mut syn = flow((1, 40_000), (2, 50_000), 6);
    syn.tcp_flags = 0x02;
    let o = orient(&syn, &known);
    assert_eq!(o.key.service, service(2, 50_000, 6));
    assert!(o.to_server);
    let o = orient(&flow((1, 50_000), (2, 40_000), 17), &known);
    assert_eq!(o.key.service, service(2, 40_000, 17));
    assert!(o.to_server && !o.server_known);
}

#[test]
fn a_biflow_direction_from_the_exporter_is_taken_as_is() {
    let known = FastSet::default();
    let mut f = flow((2, 443), (1, 50_000), 6);
    f.direction = BiflowDirection::Forward;
    let o = orient(&f, &known);
    assert_eq!(o.key.service, service(1, 50_000, 6));
    assert!(o.to_server);
    f.direction = BiflowDirection::Reverse;
    let o = orient(&f, &known);
    assert_eq!(o.key.service, service(2, 443, 6));
    assert!(!o.to_server);
}

#[test]
fn icmp_echo_replies_point_back_at_the_pinged_host() {
    let known = FastSet::default();
    // Exporters put type * 256 + code in the destination port: 8 request, 0 reply.
    let request = orient(&flow((1, 0), (2, 8 << 8), 1), &known);
    let reply = orient(&flow((2, 0), (1, 0), 1), &known);
    assert_eq!(request.key.service, service(2, 0, 1));
    assert!(request.to_server);
    assert_eq!(reply.key, request.key);
    assert!(!reply.to_server);
    let mut known = FastSet::default();
    known.insert(service(2, 0, 1));
    let o = orient(&flow((2, 0), (1, 8 << 8), 1), &known);
    assert_eq!(o.key.service, service(2, 0, 1), "a known server wins");
    assert!(!o.to_server && o.server_known);
}

fn via(mut f: FlowRecord, exporter: u8, in_if: u32, out_if: u32) -> FlowRecord {
    f.exporter = IpAddr::V4(Ipv4Addr::new(192, 0, 2, exporter));
    f.in_if = in_if;
    f.out_if = out_if;
    f
}

#[test]
fn a_reply_over_the_requests_interfaces_is_symmetric_and_any_other_path_is_not() {
    let request = flow((1, 50_000), (2, 443), 6);
    let reply = flow((2, 443), (1, 50_000), 6);
    let paths = |req: FlowRecord, rep: FlowRecord| {
        let mut p = Paths::default();
        p.see(true, &req);
        p.see(false, &rep);
        p.asymmetric()
    };
    assert_eq!(paths(via(request, 1, 3, 5), via(reply, 1, 5, 3)), None);
    assert_eq!(
        paths(via(request, 1, 3, 5), via(reply, 1, 7, 3)),
        Some((
            (IpAddr::from([192, 0, 2, 1]), 3, 5),
            (IpAddr::from([192, 0, 2, 1]), 7, 3)
        ))
    );
    assert!(paths(via(request, 1, 0, 0), via(reply, 2, 0, 0)).is_some());
    // Interfaces unknown at one exporter: nothing to compare.
    assert_eq!(paths(via(request, 1, 0, 0), via(reply, 1, 0, 0)), None);
    // One direction only: nothing to compare either.
    let mut one = Paths::default();
    one.see(true, &via(request, 1, 3, 5));
    assert_eq!(one.asymmetric(), None);
    // A direction seen at two points (two exporters on its way) is left alone.
    let mut mixed = Paths::default();
    mixed.see(true, &via(request, 1, 3, 5));
    mixed.see(true, &via(request, 2, 3, 5));
    mixed.see(false, &via(reply, 3, 1, 1));
    assert_eq!(mixed.asymmetric(), None);
}
