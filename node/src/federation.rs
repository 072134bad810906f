//! Federation: a node that follows several sites' committed events on NATS (one ordered
//! JetStream consumer per site, started after the last event it applied) and commits them into
//! its own event log, so that its projection is one map of all the sites. Each batch's origin is
//! the site and the stream sequence of its last event, so an event delivered again (a commit
//! that timed out but landed) is applied once; the state machine tags the assets and dependencies a site reported
//! (metadata keys `site/<site id>/…`), which `/api/v1/federation` reads.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer};
use axum::extract::State;
use axum::Json;
use futures_util::StreamExt;
use ipnet::IpNet;
use proto::event::{DependencyKey, Event, EventBatch, EventKind};
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::api::params::Failure;
use crate::api::AppState;
use crate::config::FederationSection;
use crate::events::stream_name;
use crate::raft::state_machine::last_from_origin;
use crate::raft::{EventLog, Origin};
use crate::store::{Projection, StoreError};

/// The bit that marks an origin as a federated site rather than a node.
pub const SITE_ORIGIN: u64 = 1 << 63;

/// Events committed per batch at most.
const BATCH: usize = 512;

/// The origin id of site `name`: FNV-1a of the name with [`SITE_ORIGIN`] set.
pub fn site_origin(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    SITE_ORIGIN | (h >> 1)
}

/// The metadata key prefix of site `origin`'s tags.
fn tag_prefix(origin: u64) -> Vec<u8> {
    let mut key = b"site/".to_vec();
    key.extend_from_slice(&origin.to_be_bytes());
    key
}

/// The metadata keys tagging what a batch from site `origin` reported: `a/<ip>` for assets,
/// `d/<dependency id>` for dependencies (discovered, or carrying traffic).
pub fn site_tags(origin: u64, batch: &EventBatch) -> BTreeSet<Vec<u8>> {
    let prefix = tag_prefix(origin);
    let key = |kind: &str, id: &str| {
        let mut k = prefix.clone();
        k.extend_from_slice(kind.as_bytes());
        k.extend_from_slice(id.as_bytes());
        k
    };
    let mut tags = BTreeSet::new();
    let dependency = |tags: &mut BTreeSet<Vec<u8>>, d: &DependencyKey| {
        tags.insert(key("/d/", &d.id()));
        tags.insert(key("/a/", &d.client.to_string()));
        tags.insert(key("/a/", &d.service.ip.to_string()));
    };
    for e in &batch.events {
        match &e.kind {
            EventKind::AssetDiscovered { ip, .. } => {
                tags.insert(key("/a/", &ip.to_string()));
            }
            EventKind::DependencyDiscovered { dependency: d } => dependency(&mut tags, d),
            EventKind::DependencyTraffic { edges } => {
                for edge in edges {
                    dependency(&mut tags, &edge.dependency);
                }
            }
            _ => {}
        }
    }
    tags
}

/// Follows every site of `federation` until the tasks are aborted.
pub fn spawn(
    client: async_nats::Client,
    federation: &FederationSection,
    log: Arc<EventLog>,
) -> Vec<JoinHandle<()>> {
    federation
        .sites
        .iter()
        .map(|site| {
            let (client, site, log) = (client.clone(), site.clone(), log.clone());
            let domain = federation.domains.get(&site).cloned();
            tokio::spawn(async move {
                let mut failures = 0u32;
                let js = match &domain {
                    Some(d) => jetstream::with_domain(client, d),
                    None => jetstream::new(client),
                };
                loop {
                    if let Err(e) = follow(&js, &site, &log).await {
                        failures += 1;
                        if failures == 1 || failures.is_power_of_two() {
                            tracing::warn!(site, error = %format!("{e:#}"), failures, "following a site");
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
        })
        .collect()
}

/// The stream sequence of the last event of site `origin` this node applied (0 for none).
fn applied_sequence(projection: &Projection, origin: u64) -> Result<u64, StoreError> {
    Ok(last_from_origin(projection, origin)?.map_or(0, |(_, seq)| seq))
}

/// Consumes one site's stream from the event after the last one this node applied, in order,
/// committing its events in batches.
///
/// The resume point is this node's own projection (the origin sequence the state machine keeps
/// per site), not a consumer's acknowledgements: an ordered consumer is created from there on
/// every (re)start, so a round that fails (no leader yet, a commit timeout, a lost connection) is
/// fetched again from its first event and nothing after it can be applied before it. An acked
/// durable consumer could not promise that: after a failed round it went on delivering from
/// where it had got to, and the next ack covered the events the failed round had not applied.
async fn follow(js: &jetstream::Context, site: &str, log: &EventLog) -> anyhow::Result<()> {
    let stream = js
        .get_stream(stream_name(site))
        .await
        .with_context(|| format!("site {site}: no stream {} yet", stream_name(site)))?;
    let origin = site_origin(site);
    let resume = applied_sequence(log.projection(), origin)?;
    let deliver_policy = match resume {
        0 => consumer::DeliverPolicy::All,
        n => consumer::DeliverPolicy::ByStartSequence {
            start_sequence: n + 1,
        },
    };
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy,
            ..Default::default()
        })
        .await
        .context("cannot create the consumer")?;
    let mut messages = consumer.messages().await.context("cannot consume")?;
    loop {
        // A batch: what is there now, up to BATCH events, waiting at most 100 ms after the first.
        let Some(first) = messages.next().await else {
            return Ok(());
        };
        let mut batch = vec![first?];
        while batch.len() < BATCH {
            match tokio::time::timeout(Duration::from_millis(100), messages.next()).await {
                Ok(Some(m)) => batch.push(m?),
                _ => break,
            }
        }
        let applied = applied_sequence(log.projection(), origin)?;
        let mut events = Vec::with_capacity(batch.len());
        let mut last_seq = 0;
        for m in &batch {
            let seq = m
                .info()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .stream_sequence;
            last_seq = last_seq.max(seq);
            if seq <= applied {
                continue;
            }
            match serde_json::from_slice::<Event>(&m.payload) {
                Ok(event) => events.push(event),
                Err(e) => {
                    tracing::warn!(site, seq, error = %e, "an event that is not schema 1 JSON was skipped")
                }
            }
        }
        if !events.is_empty() {
            let origin = Origin {
                node: origin,
                boot: 0,
                seq: last_seq,
            };
            log.append_with_origin(&EventBatch::new(events), origin)
                .await
                .context("committing a site's events")?;
        }
    }
}

/// One followed site.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FederatedSite {
    /// The site's name.
    pub name: String,
    /// Stream sequence of the last event applied from it.
    pub applied_sequence: u64,
    /// Assets it reported.
    pub assets: u64,
    /// Dependencies it reported.
    pub dependencies: u64,
}

/// A dependency between assets at home in two different sites.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CrossSiteDependency {
    /// `client>server:port/protocol`.
    pub id: String,
    /// The client's site.
    pub client_site: String,
    /// The server's site.
    pub server_site: String,
}

/// The federation: the sites followed and the dependencies crossing between them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Federation {
    /// Each site followed.
    pub sites: Vec<FederatedSite>,
    /// Each asset's home site, by address.
    pub homes: BTreeMap<String, String>,
    /// Dependencies from an asset at home in one site to one at home in another.
    pub cross_site: Vec<CrossSiteDependency>,
}

/// The sites followed, each asset's site, and the cross-site dependencies.
#[utoipa::path(get, path = "/api/v1/federation", tag = "federation",
    responses((status = 200, body = Federation), (status = 404, body = proto::api::ApiError)))]
pub async fn federation(State(s): State<AppState>) -> Result<Json<Federation>, Failure> {
    let Some(config) = s.federation.clone() else {
        return Err(Failure::NotFound(
            "this node does not federate sites (federation.sites)".into(),
        ));
    };
    let projection = s.projection.clone();
    let answer = tokio::task::spawn_blocking(move || summarize(&projection, &config))
        .await
        .map_err(|e| Failure::Internal(e.to_string()))??;
    Ok(Json(answer))
}

fn summarize(projection: &Projection, config: &FederationSection) -> Result<Federation, Failure> {
    let internal = |e: StoreError| Failure::Internal(e.to_string());
    let mut sites = Vec::new();
    // Sites that reported each asset, and every dependency reported.
    let mut reported: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut dependencies = BTreeSet::new();
    for name in &config.sites {
        let origin = site_origin(name);
        let prefix = tag_prefix(origin);
        let (mut assets, mut deps) = (0, 0);
        for key in projection.meta_keys(&prefix) {
            let key = key.map_err(internal)?;
            let rest = String::from_utf8_lossy(key.get(prefix.len()..).unwrap_or_default());
            if let Some(ip) = rest.strip_prefix("/a/") {
                assets += 1;
                reported
                    .entry(ip.to_owned())
                    .or_default()
                    .insert(name.clone());
            } else if let Some(id) = rest.strip_prefix("/d/") {
                deps += 1;
                dependencies.insert(id.to_owned());
            }
        }
        sites.push(FederatedSite {
            name: name.clone(),
            applied_sequence: applied_sequence(projection, origin).map_err(internal)?,
            assets,
            dependencies: deps,
        });
    }
    let home = |ip: &str| -> Option<String> {
        let addr: IpAddr = ip.parse().ok()?;
        let by_network = config
            .networks
            .iter()
            .find(|(_, nets)| nets.iter().any(|n: &IpNet| n.contains(&addr)))
            .map(|(site, _)| site.clone());
        by_network.or_else(|| {
            let sites = reported.get(ip)?;
            (sites.len() == 1)
                .then(|| sites.iter().next().cloned())
                .flatten()
        })
    };
    let homes = reported
        .keys()
        .filter_map(|ip| Some((ip.clone(), home(ip)?)))
        .collect();
    let cross_site = dependencies
        .into_iter()
        .filter_map(|id| {
            let key = DependencyKey::parse_id(&id)?;
            let client_site = home(&key.client.to_string())?;
            let server_site = home(&key.service.ip.to_string())?;
            (client_site != server_site).then_some(CrossSiteDependency {
                id,
                client_site,
                server_site,
            })
        })
        .collect();
    Ok(Federation {
        sites,
        homes,
        cross_site,
    })
}
