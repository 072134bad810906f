//! API over the projection: assets, services, dependencies and the topology map.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use axum::extract::{Path, Query, State};
use axum::Json;
use ipnet::IpNet;
use proto::api::{Asset, Dependency, Page, Service, Status, Topology, TopologyEdge, TopologyNode};
use proto::event::DependencyKey;

use super::params::{bad, page_of, parse_ip, Failure, Params};
use super::scope::Scope;
use super::AppState;
use crate::store::Projection;

type Pairs = Query<Vec<(String, String)>>;

fn status_filter(p: &mut Params) -> Result<Option<Status>, Failure> {
    Ok(match p.choice("status", &["active", "expired", "all"])? {
        Some("active") => Some(Status::Active),
        Some("expired") => Some(Status::Expired),
        _ => None,
    })
}

/// Whether an asset (classified) is in `env`: `internal`, `external` or an environment name.
fn env_matches(env: &str, asset: &Asset) -> bool {
    match env {
        "internal" => asset.internal,
        "external" => !asset.internal,
        name => asset
            .classification
            .as_ref()
            .and_then(|c| c.environment)
            .is_some_and(|e| e.name() == name),
    }
}

/// Lists assets.
#[utoipa::path(get, path = "/api/v1/assets", tag = "map",
    params(
        ("subnet" = Option<String>, Query, description = "Only assets in this CIDR"),
        ("internal" = Option<bool>, Query, description = "Only internal (true) or external (false) assets"),
        ("env" = Option<String>, Query, description = "internal, external, or an environment: prod, uat, qa, test, dev"),
        ("datacenter" = Option<String>, Query, description = "Only assets a classification rule places in this data centre"),
        ("role" = Option<String>, Query, description = "Only assets with this role in force: server, workstation, database, cache_queue, load_balancer, gateway, dns, ntp"),
        ("status" = Option<String>, Query, description = "active, expired or all (default all)"),
        ("sort" = Option<String>, Query, description = "bytes (default, busiest first), ip, last_seen"),
        ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query, description = "Page size, default 100")),
    responses((status = 200, body = Page<Asset>), (status = 400, body = proto::api::ApiError)))]
pub async fn assets(
    State(s): State<AppState>,
    scope: Scope,
    Query(q): Pairs,
) -> Result<Json<Page<Asset>>, Failure> {
    let mut p = Params::new(q)?;
    let subnet = p.net("subnet")?;
    let internal = p.parse::<bool>("internal", "true or false")?;
    let env = p.choice(
        "env",
        &["internal", "external", "prod", "uat", "qa", "test", "dev"],
    )?;
    let datacenter: Option<String> = p.parse("datacenter", "a name")?;
    let role = p
        .parse::<String>("role", "a role")?
        .map(|r| {
            proto::role::Role::parse(&r).ok_or_else(|| bad("role", format!("`{r}` is not a role")))
        })
        .transpose()?;
    let status = status_filter(&mut p)?;
    let sort = p
        .choice("sort", &["bytes", "ip", "last_seen"])?
        .unwrap_or("bytes");
    let (offset, limit) = p.page(100, s.max_page)?;
    p.finish()?;
    let rules = super::rules::rule_set(&s.projection)?;
    let roles = super::roles::roles_of(&s.projection)?;
    let mut items = Vec::new();
    for a in s.projection.assets() {
        let mut a = a?;
        super::rules::classify(&rules, &mut a);
        a.role = roles.get(&a.ip).cloned();
        let dc = a
            .classification
            .as_ref()
            .and_then(|c| c.datacenter.as_deref());
        if subnet.is_none_or(|n| n.contains(&a.ip))
            && scope.sees(&a.ip)
            && internal.is_none_or(|i| a.internal == i)
            && env.is_none_or(|e| env_matches(e, &a))
            && datacenter.as_deref().is_none_or(|d| dc == Some(d))
            && role.is_none_or(|r| a.role.as_ref().is_some_and(|x| x.role == r))
            && status.is_none_or(|st| a.status == st)
        {
            items.push(a);
        }
    }
    match sort {
        "ip" => {}
        "last_seen" => {
            items.sort_by(|a, b| b.last_seen_ms.cmp(&a.last_seen_ms).then(a.ip.cmp(&b.ip)))
        }
        _ => items.sort_by(|a, b| {
            (b.bytes_in + b.bytes_out)
                .cmp(&(a.bytes_in + a.bytes_out))
                .then(a.ip.cmp(&b.ip))
        }),
    }
    Ok(Json(page_of(items, offset, limit)))
}

/// One asset.
#[utoipa::path(get, path = "/api/v1/assets/{ip}", tag = "map",
    params(("ip" = String, Path, description = "The asset's address")),
    responses((status = 200, body = Asset), (status = 404, body = proto::api::ApiError)))]
pub async fn asset(
    State(s): State<AppState>,
    scope: Scope,
    Path(ip): Path<String>,
) -> Result<Json<Asset>, Failure> {
    let ip = parse_ip("ip", &ip)?;
    scope.check(&ip)?;
    let mut asset = s
        .projection
        .asset(ip)?
        .ok_or_else(|| Failure::NotFound(format!("no asset {ip}")))?;
    super::rules::classify(&super::rules::rule_set(&s.projection)?, &mut asset);
    asset.role = s.projection.role(ip)?.effective();
    Ok(Json(asset))
}

/// The services an asset answers on.
#[utoipa::path(get, path = "/api/v1/assets/{ip}/services", tag = "map",
    params(("ip" = String, Path)),
    responses((status = 200, body = Vec<Service>), (status = 404, body = proto::api::ApiError)))]
pub async fn asset_services(
    State(s): State<AppState>,
    scope: Scope,
    Path(ip): Path<String>,
) -> Result<Json<Vec<Service>>, Failure> {
    let ip = parse_ip("ip", &ip)?;
    scope.check(&ip)?;
    if s.projection.asset(ip)?.is_none() {
        return Err(Failure::NotFound(format!("no asset {ip}")));
    }
    Ok(Json(
        s.projection.services_of(ip).collect::<Result<_, _>>()?,
    ))
}

/// An asset's dependencies: downstream (what it calls), upstream (who calls it) or both.
#[utoipa::path(get, path = "/api/v1/assets/{ip}/dependencies", tag = "map",
    params(("ip" = String, Path),
        ("direction" = Option<String>, Query, description = "downstream, upstream or both (default)")),
    responses((status = 200, body = Vec<Dependency>), (status = 404, body = proto::api::ApiError)))]
pub async fn asset_dependencies(
    State(s): State<AppState>,
    scope: Scope,
    Path(ip): Path<String>,
    Query(q): Pairs,
) -> Result<Json<Vec<Dependency>>, Failure> {
    let ip = parse_ip("ip", &ip)?;
    scope.check(&ip)?;
    let mut p = Params::new(q)?;
    let direction = p
        .choice("direction", &["downstream", "upstream", "both"])?
        .unwrap_or("both");
    p.finish()?;
    if s.projection.asset(ip)?.is_none() {
        return Err(Failure::NotFound(format!("no asset {ip}")));
    }
    let mut out = Vec::new();
    if direction != "upstream" {
        for d in s.projection.dependencies_from(ip) {
            out.push(d?);
        }
    }
    if direction != "downstream" {
        for d in s.projection.dependencies() {
            let d = d?;
            if d.key.service.ip == ip {
                out.push(d);
            }
        }
    }
    Ok(Json(out))
}

/// Lists services.
#[utoipa::path(get, path = "/api/v1/services", tag = "map",
    params(("ip" = Option<String>, Query, description = "Server address or CIDR"),
        ("port" = Option<u16>, Query), ("protocol" = Option<String>, Query, description = "Number or tcp/udp/…"),
        ("status" = Option<String>, Query), ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query)),
    responses((status = 200, body = Page<Service>), (status = 400, body = proto::api::ApiError)))]
pub async fn services(
    State(s): State<AppState>,
    scope: Scope,
    Query(q): Pairs,
) -> Result<Json<Page<Service>>, Failure> {
    let mut p = Params::new(q)?;
    let ip = p.net("ip")?;
    let port = p.port("port")?;
    let protocol = p.protocol("protocol")?;
    let status = status_filter(&mut p)?;
    let (offset, limit) = p.page(100, s.max_page)?;
    p.finish()?;
    let mut items = Vec::new();
    for svc in s.projection.services() {
        let svc = svc?;
        if ip.is_none_or(|n| n.contains(&svc.key.ip))
            && scope.sees(&svc.key.ip)
            && port.is_none_or(|x| svc.key.port == x)
            && protocol.is_none_or(|x| svc.key.protocol == x)
            && status.is_none_or(|st| svc.status == st)
        {
            items.push(svc);
        }
    }
    items.sort_by(|a, b| {
        (b.bytes_in + b.bytes_out)
            .cmp(&(a.bytes_in + a.bytes_out))
            .then(a.key.cmp(&b.key))
    });
    Ok(Json(page_of(items, offset, limit)))
}

/// Lists dependencies.
#[utoipa::path(get, path = "/api/v1/dependencies", tag = "map",
    params(("client" = Option<String>, Query, description = "Client address or CIDR"),
        ("server" = Option<String>, Query, description = "Server address or CIDR"),
        ("port" = Option<u16>, Query), ("protocol" = Option<String>, Query),
        ("status" = Option<String>, Query),
        ("sort" = Option<String>, Query, description = "bytes (default, busiest first), last_seen, first_seen (newest first), client, server (by address, then port)"),
        ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query)),
    responses((status = 200, body = Page<Dependency>), (status = 400, body = proto::api::ApiError)))]
pub async fn dependencies(
    State(s): State<AppState>,
    scope: Scope,
    Query(q): Pairs,
) -> Result<Json<Page<Dependency>>, Failure> {
    let mut p = Params::new(q)?;
    let client = p.net("client")?;
    let server = p.net("server")?;
    let port = p.port("port")?;
    let protocol = p.protocol("protocol")?;
    let status = status_filter(&mut p)?;
    let sort = p
        .choice(
            "sort",
            &["bytes", "last_seen", "first_seen", "client", "server"],
        )?
        .unwrap_or("bytes");
    let (offset, limit) = p.page(100, s.max_page)?;
    p.finish()?;
    let mut items = Vec::new();
    for d in s.projection.dependencies() {
        let d = d?;
        if client.is_none_or(|n| n.contains(&d.key.client))
            && scope.sees_either(&d.key.client, &d.key.service.ip)
            && server.is_none_or(|n| n.contains(&d.key.service.ip))
            && port.is_none_or(|x| d.key.service.port == x)
            && protocol.is_none_or(|x| d.key.service.protocol == x)
            && status.is_none_or(|st| d.status == st)
        {
            items.push(d);
        }
    }
    match sort {
        "last_seen" => {
            items.sort_by(|a, b| b.last_seen_ms.cmp(&a.last_seen_ms).then(a.key.cmp(&b.key)))
        }
        "first_seen" => items.sort_by(|a, b| {
            b.first_seen_ms
                .cmp(&a.first_seen_ms)
                .then(a.key.cmp(&b.key))
        }),
        // Keys order by client first.
        "client" => items.sort_by_key(|d| d.key),
        "server" => items.sort_by_key(|d| (d.key.service, d.key.client)),
        _ => items.sort_by(|a, b| bytes(b).cmp(&bytes(a)).then(a.key.cmp(&b.key))),
    }
    Ok(Json(page_of(items, offset, limit)))
}

fn bytes(d: &Dependency) -> u64 {
    d.bytes_to_server.saturating_add(d.bytes_to_client)
}

/// One dependency by id (`client>server:port/protocol`).
#[utoipa::path(get, path = "/api/v1/dependencies/{id}", tag = "map",
    params(("id" = String, Path, description = "client>server:port/protocol")),
    responses((status = 200, body = Dependency), (status = 404, body = proto::api::ApiError)))]
pub async fn dependency(
    State(s): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Json<Dependency>, Failure> {
    let key = DependencyKey::parse_id(&id)
        .ok_or_else(|| bad("id", format!("`{id}` is not client>server:port/protocol")))?;
    if !scope.sees_either(&key.client, &key.service.ip) {
        scope.check(&key.client)?;
    }
    s.projection
        .dependency(&key)?
        .map(Json)
        .ok_or_else(|| Failure::NotFound(format!("no dependency {id}")))
}

/// The dependency map: assets and dependencies, filtered and capped.
#[utoipa::path(get, path = "/api/v1/topology", tag = "map",
    params(("subnet" = Option<String>, Query, description = "Only assets in this CIDR and edges touching it"),
        ("env" = Option<String>, Query, description = "internal, external, or an environment of the classification rules: prod, uat, qa, test, dev"),
        ("port" = Option<u16>, Query, description = "Only dependencies on this service port"),
        ("since" = Option<String>, Query, description = "Seen at or after: Unix ms or a duration ago (15m)"),
        ("until" = Option<String>, Query, description = "First seen at or before"),
        ("status" = Option<String>, Query, description = "active (default), expired or all"),
        ("at" = Option<String>, Query, description = "The map as it was then (Unix ms or a duration ago), rebuilt from the history"),
        ("max_nodes" = Option<u64>, Query, description = "Default 2000"), ("max_edges" = Option<u64>, Query, description = "Default 5000")),
    responses((status = 200, body = Topology), (status = 400, body = proto::api::ApiError)))]
pub async fn topology(
    State(s): State<AppState>,
    scope: Scope,
    Query(q): Pairs,
) -> Result<Json<Topology>, Failure> {
    let now = actors::now_ms();
    let mut p = Params::new(q)?;
    let at = p.time("at", now)?;
    let Some(at) = at else {
        return build_topology(&s.projection, p, now, &scope).map(Json);
    };
    let log = s.log.clone();
    let _turn = s.disk_reads.acquire().await;
    let topology = tokio::task::spawn_blocking(move || {
        let replayed = crate::raft::replay::as_of(log.history(), at).map_err(|e| match e {
            crate::raft::LogError::BeforeHistory { .. } => bad("at", e.to_string()),
            e => Failure::Internal(e.to_string()),
        })?;
        build_topology(&replayed.projection, p, now, &scope)
    })
    .await
    .map_err(|e| Failure::Internal(e.to_string()))??;
    Ok(Json(topology))
}

/// The map of `projection`, with the filters still in `p`, as `scope` sees it (its assets and
/// the dependencies touching them, with their other ends).
fn build_topology(
    projection: &Projection,
    mut p: Params,
    now: u64,
    scope: &Scope,
) -> Result<Topology, Failure> {
    let subnet = p.net("subnet")?;
    let env = p.choice(
        "env",
        &["internal", "external", "prod", "uat", "qa", "test", "dev"],
    )?;
    let rules = super::rules::rule_set(projection)?;
    let roles = super::roles::roles_of(projection)?;
    let port = p.port("port")?;
    let since = p.time("since", now)?;
    let until = p.time("until", now)?;
    let status = match p.choice("status", &["active", "expired", "all"])? {
        Some("all") => None,
        Some("expired") => Some(Status::Expired),
        _ => Some(Status::Active),
    };
    let max_nodes = p
        .parse::<usize>("max_nodes", "a positive integer")?
        .unwrap_or(2000);
    let max_edges = p
        .parse::<usize>("max_edges", "a positive integer")?
        .unwrap_or(5000);
    p.finish()?;
    if max_nodes == 0 || max_nodes > 100_000 {
        return Err(bad("max_nodes", "must be 1 to 100000"));
    }
    if max_edges == 0 || max_edges > 400_000 {
        return Err(bad("max_edges", "must be 1 to 400000"));
    }
    let in_time =
        |first: u64, last: u64| since.is_none_or(|t| last >= t) && until.is_none_or(|t| first <= t);
    let mut assets: HashMap<IpAddr, Asset> = HashMap::new();
    for a in projection.assets() {
        let mut a = a?;
        super::rules::classify(&rules, &mut a);
        a.role = roles.get(&a.ip).cloned();
        let env_ok = env.is_none_or(|e| env_matches(e, &a));
        if env_ok
            && status.is_none_or(|st| a.status == st)
            && in_time(a.first_seen_ms, a.last_seen_ms)
        {
            assets.insert(a.ip, a);
        }
    }
    let in_subnet = |ip: &IpAddr| subnet.is_none_or(|n: IpNet| n.contains(ip));
    let mut edges = Vec::new();
    for d in projection.dependencies() {
        let d = d?;
        let (c, sv) = (d.key.client, d.key.service.ip);
        if port.is_none_or(|x| d.key.service.port == x)
            && status.is_none_or(|st| d.status == st)
            && in_time(d.first_seen_ms, d.last_seen_ms)
            && (in_subnet(&c) || in_subnet(&sv))
            && scope.sees_either(&c, &sv)
            && assets.contains_key(&c)
            && assets.contains_key(&sv)
        {
            edges.push(d);
        }
    }
    let mut nodes: Vec<Asset> = if port.is_some() || subnet.is_some() || scope.is_limited() {
        let touched: HashSet<IpAddr> = edges
            .iter()
            .flat_map(|d| [d.key.client, d.key.service.ip])
            .collect();
        assets
            .into_values()
            .filter(|a| {
                touched.contains(&a.ip) || (port.is_none() && in_subnet(&a.ip) && scope.sees(&a.ip))
            })
            .collect()
    } else {
        assets.into_values().collect()
    };
    let total_nodes = nodes.len() as u64;
    let total_edges = edges.len() as u64;
    nodes.sort_by(|a, b| {
        (b.bytes_in + b.bytes_out)
            .cmp(&(a.bytes_in + a.bytes_out))
            .then(a.ip.cmp(&b.ip))
    });
    nodes.truncate(max_nodes);
    let kept: HashSet<IpAddr> = nodes.iter().map(|a| a.ip).collect();
    edges.sort_by(|a, b| bytes(b).cmp(&bytes(a)).then(a.key.cmp(&b.key)));
    edges.retain(|d| kept.contains(&d.key.client) && kept.contains(&d.key.service.ip));
    edges.truncate(max_edges);
    let mut services: HashMap<IpAddr, Vec<proto::event::ServiceKey>> = HashMap::new();
    for svc in projection.services() {
        let svc = svc?;
        if svc.status == Status::Active && kept.contains(&svc.key.ip) {
            services.entry(svc.key.ip).or_default().push(svc.key);
        }
    }
    let truncated = (nodes.len() as u64) < total_nodes || (edges.len() as u64) < total_edges;
    Ok(Topology {
        nodes: nodes
            .into_iter()
            .map(|asset| TopologyNode {
                services: services.remove(&asset.ip).unwrap_or_default(),
                asset,
            })
            .collect(),
        edges: edges
            .into_iter()
            .map(|dependency| TopologyEdge { dependency })
            .collect(),
        truncated,
        total_nodes,
        total_edges,
    })
}
