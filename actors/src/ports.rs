//! The port table: well-known service names by port and protocol, and which ports count as
//! service ports when deciding which side of a flow is the server.

/// (port, protocol, name) for common services. Protocol 0 means both TCP and UDP.
const TABLE: &[(u16, u8, &str)] = &[
    (20, 6, "ftp-data"),
    (21, 6, "ftp"),
    (22, 6, "ssh"),
    (23, 6, "telnet"),
    (25, 6, "smtp"),
    (53, 0, "dns"),
    (67, 17, "dhcp"),
    (69, 17, "tftp"),
    (80, 6, "http"),
    (88, 0, "kerberos"),
    (110, 6, "pop3"),
    (111, 0, "rpcbind"),
    (123, 17, "ntp"),
    (135, 6, "msrpc"),
    (137, 17, "netbios-ns"),
    (139, 6, "netbios-ssn"),
    (143, 6, "imap"),
    (161, 17, "snmp"),
    (162, 17, "snmp-trap"),
    (179, 6, "bgp"),
    (389, 0, "ldap"),
    (443, 6, "https"),
    (443, 17, "quic"),
    (445, 6, "smb"),
    (465, 6, "smtps"),
    (500, 17, "isakmp"),
    (514, 17, "syslog"),
    (515, 6, "printer"),
    (587, 6, "submission"),
    (636, 6, "ldaps"),
    (853, 6, "dns-over-tls"),
    (873, 6, "rsync"),
    (993, 6, "imaps"),
    (995, 6, "pop3s"),
    (1433, 6, "mssql"),
    (1521, 6, "oracle"),
    (1883, 6, "mqtt"),
    (2049, 0, "nfs"),
    (2055, 17, "netflow"),
    (2181, 6, "zookeeper"),
    (2379, 6, "etcd"),
    (3000, 6, "grafana"),
    (3306, 6, "mysql"),
    (3389, 6, "rdp"),
    (4222, 6, "nats"),
    (4739, 17, "ipfix"),
    (5044, 6, "beats"),
    (5060, 0, "sip"),
    (5432, 6, "postgresql"),
    (5672, 6, "amqp"),
    (5900, 6, "vnc"),
    (6343, 17, "sflow"),
    (6379, 6, "redis"),
    (6443, 6, "kubernetes-api"),
    (8080, 6, "http-alt"),
    (8443, 6, "https-alt"),
    (9000, 6, "http-alt"),
    (9042, 6, "cassandra"),
    (9090, 6, "prometheus"),
    (9092, 6, "kafka"),
    (9200, 6, "elasticsearch"),
    (11211, 0, "memcached"),
    (15672, 6, "rabbitmq-mgmt"),
    (27017, 6, "mongodb"),
];

/// The well-known name of a service port, if it has one.
pub fn service_name(port: u16, protocol: u8) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|(p, proto, _)| *p == port && (*proto == protocol || *proto == 0))
        .map(|(_, _, name)| *name)
}

/// Whether a port is a service port: below 1024, or named in the table.
pub fn is_service_port(port: u16, protocol: u8) -> bool {
    (port != 0 && port < 1024) || service_name(port, protocol).is_some()
}

/// The name of an IP protocol number.
pub fn protocol_name(protocol: u8) -> String {
    match protocol {
        1 => "icmp".into(),
        2 => "igmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        41 => "ipv6".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        58 => "icmpv6".into(),
        89 => "ospf".into(),
        132 => "sctp".into(),
        other => format!("ip-{other}"),
    }
}

/// A service endpoint's port for people: `5432/tcp (postgresql)`, `7000/udp`.
pub fn describe_service(port: u16, protocol: u8) -> String {
    let proto = protocol_name(protocol);
    match service_name(port, protocol) {
        Some(name) => format!("{port}/{proto} ({name})"),
        None => format!("{port}/{proto}"),
    }
}

/// `1 client`, `3 clients`: a count and its noun.
pub fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// Whether a protocol has ports (TCP, UDP, SCTP, UDP-Lite).
pub fn has_ports(protocol: u8) -> bool {
    matches!(protocol, 6 | 17 | 132 | 136)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_common_ports_by_protocol() {
        assert_eq!(service_name(443, 6), Some("https"));
        assert_eq!(service_name(53, 17), Some("dns"));
        assert_eq!(service_name(5432, 6), Some("postgresql"));
        assert_eq!(service_name(5432, 17), None);
        assert!(is_service_port(1023, 6));
        assert!(is_service_port(6379, 6));
        assert!(!is_service_port(40000, 6));
        assert!(!is_service_port(0, 1));
    }
}
