//! Micro-segmentation export: the dependencies observed into and out of an asset group (a CIDR,
//! an environment or a role) as an allow-list, in JSON, CSV, an `iptables-restore` snippet
//! (IPv4) or an `nft` snippet (IPv4 and IPv6). The firewall snippets fill a chain of their own
//! that ends in a drop; the operator jumps to it from where it belongs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use proto::api::Status;
use proto::classify::Environment;
use serde::{Deserialize, Serialize};

use super::params::{bad, Failure, Params};
use super::AppState;

type Pairs = Query<Vec<(String, String)>>;

/// One allowed flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Allow {
    /// `inbound` (into the group) or `outbound` (out of it; both ends in the group: inbound).
    pub direction: String,
    /// The calling asset.
    #[schema(value_type = String)]
    pub client: IpAddr,
    /// The called asset.
    #[schema(value_type = String)]
    pub server: IpAddr,
    /// Service port (0 for protocols without ports).
    pub port: u16,
    /// IP protocol number.
    pub protocol: u8,
    /// Well-known service name.
    pub service: Option<String>,
    /// Flow records seen.
    pub flows: u64,
    /// Last seen, UTC ms.
    pub last_seen_ms: u64,
}

/// The allow-list of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AllowList {
    /// The group, as asked (`cidr=10.1.0.0/16`, `env=prod`, `role=database`).
    pub group: String,
    /// Assets in the group.
    pub members: u64,
    /// The allowed flows, inbound first.
    pub rules: Vec<Allow>,
}

fn proto_name(protocol: u8) -> Option<&'static str> {
    match protocol {
        1 => Some("icmp"),
        6 => Some("tcp"),
        17 => Some("udp"),
        58 => Some("ipv6-icmp"),
        132 => Some("sctp"),
        _ => None,
    }
}

fn has_ports(protocol: u8) -> bool {
    matches!(protocol, 6 | 17 | 132)
}

fn comment(a: &Allow) -> String {
    let service = a.service.as_deref().unwrap_or("unnamed service");
    // Comments hold no quotes or newlines.
    format!("{service}, {} flows", a.flows).replace(['"', '\n', '\r'], "")
}

fn iptables(list: &AllowList) -> String {
    let mut out = format!(
        "# FlowLens allow-list for {} ({} assets): iptables-restore --noflush < this\n# Jump to FLOWLENS-IN / FLOWLENS-OUT from INPUT, OUTPUT or FORWARD as fits.\n*filter\n:FLOWLENS-IN - [0:0]\n:FLOWLENS-OUT - [0:0]\n-A FLOWLENS-IN -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n-A FLOWLENS-OUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n",
        list.group, list.members
    );
    let mut skipped = 0;
    for a in &list.rules {
        if !(a.client.is_ipv4() && a.server.is_ipv4()) {
            skipped += 1;
            continue;
        }
        let chain = if a.direction == "inbound" {
            "FLOWLENS-IN"
        } else {
            "FLOWLENS-OUT"
        };
        let proto = match proto_name(a.protocol) {
            Some(p) => format!("-p {p}"),
            None => format!("-p {}", a.protocol),
        };
        let port = if has_ports(a.protocol) {
            format!(
                " -m {} --dport {}",
                proto_name(a.protocol).unwrap_or("tcp"),
                a.port
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "-A {chain} -s {}/32 -d {}/32 {proto}{port} -m conntrack --ctstate NEW -m comment --comment \"{}\" -j ACCEPT",
            a.client,
            a.server,
            comment(a)
        );
    }
    out.push_str("-A FLOWLENS-IN -j DROP\n-A FLOWLENS-OUT -j DROP\nCOMMIT\n");
    if skipped > 0 {
        let _ = writeln!(
            out,
            "# {skipped} IPv6 rules left out: use format=nftables for them"
        );
    }
    out
}

fn nftables(list: &AllowList) -> String {
    let mut out = format!(
        "# FlowLens allow-list for {} ({} assets): nft -f this\n# Jump to flowlens_in / flowlens_out from your input, output or forward chains.\ntable inet flowlens {{\n",
        list.group, list.members
    );
    for (chain, direction) in [("flowlens_in", "inbound"), ("flowlens_out", "outbound")] {
        let _ = writeln!(
            out,
            "  chain {chain} {{\n    ct state established,related accept"
        );
        for a in list.rules.iter().filter(|a| a.direction == direction) {
            let family = if a.client.is_ipv4() { "ip" } else { "ip6" };
            let service = match (proto_name(a.protocol), has_ports(a.protocol)) {
                (Some(p), true) => format!("{p} dport {}", a.port),
                (Some("ipv6-icmp"), false) => "meta l4proto ipv6-icmp".to_string(),
                (Some(p), false) => format!("meta l4proto {p}"),
                (None, _) => format!("meta l4proto {}", a.protocol),
            };
            let _ = writeln!(
                out,
                "    {family} saddr {} {family} daddr {} {service} ct state new accept comment \"{}\"",
                a.client,
                a.server,
                comment(a)
            );
        }
        out.push_str("    counter drop\n  }\n");
    }
    out.push_str("}\n");
    out
}

fn csv(list: &AllowList) -> String {
    let mut out =
        String::from("direction,client,server,port,protocol,service,flows,last_seen_ms\n");
    for a in &list.rules {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            a.direction,
            a.client,
            a.server,
            a.port,
            a.protocol,
            a.service.as_deref().unwrap_or(""),
            a.flows,
            a.last_seen_ms
        );
    }
    out
}

/// The observed dependencies of an asset group as an allow-list.
#[utoipa::path(get, path = "/api/v1/export/allow-list", tag = "analysis",
    params(("cidr" = Option<String>, Query, description = "The group: assets in this network"),
        ("env" = Option<String>, Query, description = "The group: assets of this environment (classification rules)"),
        ("role" = Option<String>, Query, description = "The group: assets with this role"),
        ("direction" = Option<String>, Query, description = "inbound, outbound or both (default)"),
        ("format" = Option<String>, Query, description = "json (default), csv, iptables or nftables"),
        ("include_expired" = Option<bool>, Query, description = "Include expired dependencies (default false)")),
    responses((status = 200, body = AllowList), (status = 400, body = proto::api::ApiError)))]
pub async fn allow_list(State(s): State<AppState>, Query(q): Pairs) -> Result<Response, Failure> {
    let mut p = Params::new(q)?;
    let cidr = p.net("cidr")?;
    let env = p
        .parse::<String>("env", "an environment")?
        .map(|e| {
            Environment::parse(&e).ok_or_else(|| {
                bad(
                    "env",
                    format!("`{e}` is not one of prod, uat, qa, test, dev"),
                )
            })
        })
        .transpose()?;
    let role = p.role("role")?;
    let direction = p
        .choice("direction", &["inbound", "outbound", "both"])?
        .unwrap_or("both");
    let format = p
        .choice("format", &["json", "csv", "iptables", "nftables"])?
        .unwrap_or("json");
    let include_expired = p
        .parse::<bool>("include_expired", "true or false")?
        .unwrap_or(false);
    p.finish()?;
    if cidr.is_none() && env.is_none() && role.is_none() {
        return Err(bad("cidr", "name the group: cidr, env or role"));
    }
    let group = [
        cidr.map(|c| format!("cidr={c}")),
        env.map(|e| format!("env={}", e.name())),
        role.map(|r| format!("role={}", r.name())),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let projection = s.projection.clone();
    let list = tokio::task::spawn_blocking(move || -> Result<AllowList, Failure> {
        let rules = super::rules::rule_set(&projection)?;
        let roles = super::roles::roles_of(&projection)?;
        let mut members: HashMap<IpAddr, bool> = HashMap::new();
        let mut in_group = |ip: IpAddr| -> bool {
            *members.entry(ip).or_insert_with(|| {
                cidr.is_none_or(|n: IpNet| n.contains(&ip))
                    && env.is_none_or(|e| rules.classify(ip).environment == Some(e))
                    && role.is_none_or(|r| roles.get(&ip).is_some_and(|x| x.role == r))
            })
        };
        let mut allows = Vec::new();
        for d in projection.dependencies() {
            let d = d?;
            if !include_expired && d.status != Status::Active {
                continue;
            }
            let (client_in, server_in) = (in_group(d.key.client), in_group(d.key.service.ip));
            let dir = if server_in && direction != "outbound" {
                "inbound"
            } else if client_in && !server_in && direction != "inbound" {
                "outbound"
            } else {
                continue;
            };
            allows.push(Allow {
                direction: dir.into(),
                client: d.key.client,
                server: d.key.service.ip,
                port: d.key.service.port,
                protocol: d.key.service.protocol,
                service: d.service_name.clone(),
                flows: d.flows,
                last_seen_ms: d.last_seen_ms,
            });
        }
        allows.sort_by(|a, b| {
            (
                a.direction != "inbound",
                a.server,
                a.port,
                a.protocol,
                a.client,
            )
                .cmp(&(
                    b.direction != "inbound",
                    b.server,
                    b.port,
                    b.protocol,
                    b.client,
                ))
        });
        let mut group_members = 0;
        for a in projection.assets() {
            if in_group(a?.ip) {
                group_members += 1;
            }
        }
        Ok(AllowList {
            group,
            members: group_members,
            rules: allows,
        })
    })
    .await
    .map_err(|e| Failure::Internal(e.to_string()))??;
    let text = |body: String| {
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
    };
    Ok(match format {
        "csv" => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            csv(&list),
        )
            .into_response(),
        "iptables" => text(iptables(&list)),
        "nftables" => text(nftables(&list)),
        _ => axum::Json(list).into_response(),
    })
}
