//! The projection: assets, services, dependencies, alerts and the history index as sled trees,
//! a pure fold of the committed event log. Each log entry is applied in one sled transaction
//! together with the state machine's metadata (last applied log id, membership), so a crash
//! never leaves an entry half-applied or applied twice.

use std::collections::BTreeMap;
use std::net::IpAddr;

use proto::api::{Asset, Dependency, Service, Status};
use proto::event::{DependencyKey, EdgeStats, EventBatch, EventKind, ServiceKey};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use super::{from_value, keys, to_value, StoreError};

const ASSETS: &str = "assets";
const SERVICES: &str = "services";
const DEPENDENCIES: &str = "dependencies";
pub(super) const ALERTS: &str = "alerts";
const HISTORY: &str = "history";
const META: &str = "sm_meta";
/// Rules (classification rules under `c/<id>`).
pub(super) const RULES: &str = "rules";
pub(super) const CLASSIFICATION_PREFIX: &[u8] = b"c/";
/// Asset roles (inferred and manual), keyed by address.
pub(super) const ROLES: &str = "roles";
/// Advisories, keyed by id.
pub(super) const ADVISORIES: &str = "advisories";
/// Users and credentials (see `access.rs`).
pub(super) const ACCESS: &str = "access";
/// Meta key of the row counts of assets, services and dependencies (8 bytes big-endian each),
/// kept with every entry so that counting needs no scan.
const COUNTS: &[u8] = b"counts";

/// The tree names, in snapshot order (new trees are appended: a snapshot numbers its trees).
const TREES: [&str; 10] = [
    ASSETS,
    SERVICES,
    DEPENDENCIES,
    ALERTS,
    HISTORY,
    META,
    RULES,
    ROLES,
    ADVISORIES,
    ACCESS,
];

/// Every tree's key/value pairs by tree name (see [`Projection::contents`]).
pub type Contents = BTreeMap<&'static str, Vec<(Vec<u8>, Vec<u8>)>>;

/// The projected state of one node.
#[derive(Clone)]
pub struct Projection {
    pub(super) assets: sled::Tree,
    pub(super) services: sled::Tree,
    pub(super) dependencies: sled::Tree,
    pub(super) alerts: sled::Tree,
    pub(super) history: sled::Tree,
    pub(super) meta: sled::Tree,
    pub(super) rules: sled::Tree,
    pub(super) roles: sled::Tree,
    pub(super) advisories: sled::Tree,
    pub(super) access: sled::Tree,
}

pub(super) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

pub(super) fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

impl Projection {
    /// Opens (creating if needed) the projection's trees in `db`.
    pub fn open(db: &sled::Db) -> Result<Projection, StoreError> {
        let projection = Projection {
            assets: db.open_tree(ASSETS)?,
            services: db.open_tree(SERVICES)?,
            dependencies: db.open_tree(DEPENDENCIES)?,
            alerts: db.open_tree(ALERTS)?,
            history: db.open_tree(HISTORY)?,
            meta: db.open_tree(META)?,
            rules: db.open_tree(RULES)?,
            roles: db.open_tree(ROLES)?,
            advisories: db.open_tree(ADVISORIES)?,
            access: db.open_tree(ACCESS)?,
        };
        if projection.meta.get(COUNTS)?.is_none() {
            // A store written before the counts were kept: count once.
            let counts = [
                projection.assets.len() as u64,
                projection.services.len() as u64,
                projection.dependencies.len() as u64,
            ];
            projection.meta.insert(COUNTS, &encode_counts(counts)[..])?;
        }
        Ok(projection)
    }

    fn trees(&self) -> [&sled::Tree; 10] {
        [
            &self.assets,
            &self.services,
            &self.dependencies,
            &self.alerts,
            &self.history,
            &self.meta,
            &self.rules,
            &self.roles,
            &self.advisories,
            &self.access,
        ]
    }

    /// Applies one committed log entry atomically: the events of `batch` (none for blank or
    /// membership entries) and the `meta` key/values the state machine keeps with it.
    pub fn apply(
        &self,
        log_index: u64,
        batch: Option<&EventBatch>,
        meta: &[(&[u8], Vec<u8>)],
    ) -> Result<(), StoreError> {
        let trees = self.trees();
        let result = trees[..].transaction(|tx| {
            let [assets, services, dependencies, alerts, history, meta_tx, rules, roles, advisories, access] =
                &tx[..]
            else {
                return Ok(());
            };
            let mut fold = Fold {
                assets,
                services,
                dependencies,
                rules,
                roles,
                advisories,
                alerts,
                access,
                new: [0; 3],
            };
            if let Some(batch) = batch {
                for (position, event) in batch.events.iter().enumerate() {
                    fold.apply(event.at_ms, &event.kind)?;
                    let key = keys::history(
                        event.at_ms,
                        log_index,
                        u32::try_from(position).unwrap_or(u32::MAX),
                    );
                    history.insert(&key[..], event.kind.name().as_bytes())?;
                }
            }
            for (key, value) in meta {
                meta_tx.insert(*key, value.as_slice())?;
            }
            if fold.new != [0; 3] {
                let mut counts = decode_counts(meta_tx.get(COUNTS)?.as_deref());
                for (count, new) in counts.iter_mut().zip(fold.new) {
                    *count = count.saturating_add(new);
                }
                meta_tx.insert(COUNTS, &encode_counts(counts)[..])?;
            }
            Ok(())
        });
        result.map_err(|e| match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
        })
    }

    /// The metadata keys starting with `prefix`, in order.
    pub fn meta_keys(
        &self,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<Vec<u8>, StoreError>> + '_ {
        self.meta
            .scan_prefix(prefix)
            .map(|item| Ok(item?.0.to_vec()))
    }

    /// Reads a state-machine metadata value.
    pub fn meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(key)?.map(|v| v.to_vec()))
    }

    /// Flushes everything to disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.meta.flush_async().await?;
        Ok(())
    }

    /// Every tree's contents (metadata included) as one byte string: the Raft snapshot.
    pub fn export(&self) -> Result<Vec<u8>, StoreError> {
        let mut out = super::snapshot::Writer::new();
        for (number, tree) in (0u8..).zip(self.trees()) {
            for item in tree.iter() {
                let (k, v) = item?;
                out.push(number, &k, &v);
            }
        }
        Ok(out.finish())
    }

    /// Replaces every tree's contents with a snapshot made by [`Projection::export`].
    pub fn import(&self, snapshot: &[u8]) -> Result<(), StoreError> {
        let mut batches: Vec<sled::Batch> = TREES.iter().map(|_| sled::Batch::default()).collect();
        super::snapshot::for_each_record(snapshot, |tree, key, value| {
            batches
                .get_mut(usize::from(tree))
                .ok_or_else(|| StoreError::BadSnapshot(format!("unknown tree number {tree}")))?
                .insert(key, value);
            Ok(())
        })?;
        for (tree, batch) in self.trees().into_iter().zip(batches) {
            tree.clear()?;
            tree.apply_batch(batch)?;
        }
        Ok(())
    }

    /// The projected state without the state machine's metadata, for comparing two projections.
    pub fn contents(&self) -> Result<Contents, StoreError> {
        let mut out = BTreeMap::new();
        for (name, tree) in TREES.iter().zip(self.trees()) {
            if *name == META {
                continue;
            }
            let items = tree
                .iter()
                .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect::<Result<Vec<_>, _>>()?;
            out.insert(*name, items);
        }
        Ok(out)
    }

    /// The history index from `from_ms` to `to_ms` (inclusive), in time order: (event time, log
    /// index, position in the entry, kind name).
    pub fn history_index(
        &self,
        from_ms: u64,
        to_ms: u64,
    ) -> impl Iterator<Item = Result<(u64, u64, u32, String), StoreError>> + '_ {
        let start = keys::history(from_ms, 0, 0);
        let end = keys::history(to_ms, u64::MAX, u32::MAX);
        self.history.range(start..=end).map(|item| {
            let (k, v) = item?;
            let at = |r: std::ops::Range<usize>| k.get(r).unwrap_or_default().to_vec();
            let be8 = |b: Vec<u8>| <[u8; 8]>::try_from(b).map_or(0, u64::from_be_bytes);
            let be4 = |b: Vec<u8>| <[u8; 4]>::try_from(b).map_or(0, u32::from_be_bytes);
            Ok((
                be8(at(0..8)),
                be8(at(8..16)),
                be4(at(16..20)),
                String::from_utf8_lossy(&v).into_owned(),
            ))
        })
    }

    /// Removes the history index entries of log entries up to `through_index` stamped up to
    /// `until_ms` (the history no longer holds them: retention made a later checkpoint its base);
    /// returns how many.
    pub fn prune_history_index(
        &self,
        through_index: u64,
        until_ms: u64,
    ) -> Result<u64, StoreError> {
        let end = keys::history(until_ms, u64::MAX, u32::MAX);
        let mut removed = 0;
        let mut batch = sled::Batch::default();
        let mut pending = 0;
        for item in self.history.range(..=end) {
            let (key, _) = item?;
            if keys::history_log_index(&key).is_some_and(|i| i <= through_index) {
                batch.remove(key);
                pending += 1;
            }
            if pending == 10_000 {
                self.history.apply_batch(std::mem::take(&mut batch))?;
                removed += pending;
                pending = 0;
            }
        }
        self.history.apply_batch(batch)?;
        Ok(removed + pending)
    }

    /// One asset.
    pub fn asset(&self, ip: IpAddr) -> Result<Option<Asset>, StoreError> {
        self.assets
            .get(keys::asset(ip))?
            .map(|v| from_value(ASSETS, &v))
            .transpose()
    }

    /// All assets, in address order.
    pub fn assets(&self) -> impl Iterator<Item = Result<Asset, StoreError>> + '_ {
        decoded(ASSETS, self.assets.iter())
    }

    /// One service.
    pub fn service(&self, key: &ServiceKey) -> Result<Option<Service>, StoreError> {
        self.services
            .get(keys::service(key))?
            .map(|v| from_value(SERVICES, &v))
            .transpose()
    }

    /// All services, grouped by server address.
    pub fn services(&self) -> impl Iterator<Item = Result<Service, StoreError>> + '_ {
        decoded(SERVICES, self.services.iter())
    }

    /// The services one asset answers on.
    pub fn services_of(
        &self,
        ip: IpAddr,
    ) -> impl Iterator<Item = Result<Service, StoreError>> + '_ {
        decoded(SERVICES, self.services.scan_prefix(keys::asset(ip)))
    }

    /// One dependency.
    pub fn dependency(&self, key: &DependencyKey) -> Result<Option<Dependency>, StoreError> {
        self.dependencies
            .get(keys::dependency(key))?
            .map(|v| from_value(DEPENDENCIES, &v))
            .transpose()
    }

    /// All dependencies, grouped by client address.
    pub fn dependencies(&self) -> impl Iterator<Item = Result<Dependency, StoreError>> + '_ {
        decoded(DEPENDENCIES, self.dependencies.iter())
    }

    /// The dependencies whose client is `ip` (what it calls: downstream).
    pub fn dependencies_from(
        &self,
        ip: IpAddr,
    ) -> impl Iterator<Item = Result<Dependency, StoreError>> + '_ {
        decoded(DEPENDENCIES, self.dependencies.scan_prefix(keys::asset(ip)))
    }

    /// Number of assets, services and dependencies (kept with every applied entry: no scan).
    pub fn counts(&self) -> Result<(u64, u64, u64), StoreError> {
        let [assets, services, dependencies] = decode_counts(self.meta.get(COUNTS)?.as_deref());
        Ok((assets, services, dependencies))
    }

    /// History index entries (time, log index, event kind) between two times, inclusive.
    pub fn history(
        &self,
        from_ms: u64,
        to_ms: u64,
    ) -> impl Iterator<Item = Result<(u64, u64, String), StoreError>> + '_ {
        let start = keys::history(from_ms, 0, 0);
        let end = keys::history(to_ms, u64::MAX, u32::MAX);
        self.history.range(start..=end).map(|item| {
            let (k, v) = item?;
            let at = k
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes);
            let index = k
                .get(8..16)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes);
            Ok((
                at.unwrap_or(0),
                index.unwrap_or(0),
                String::from_utf8_lossy(&v).into_owned(),
            ))
        })
    }
}

/// Decodes the values of a sled scan of `tree`.
pub(super) fn decoded<T>(
    tree: &'static str,
    scan: sled::Iter,
) -> impl Iterator<Item = Result<T, StoreError>>
where
    T: rkyv::Archive,
    T::Archived: for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rkyv::rancor::Error>>
        + rkyv::Deserialize<T, rkyv::api::high::HighDeserializer<rkyv::rancor::Error>>,
{
    scan.map(move |item| {
        item.map_err(StoreError::from)
            .and_then(|(_, v)| from_value(tree, &v))
    })
}

fn encode_counts(counts: [u64; 3]) -> [u8; 24] {
    let mut out = [0; 24];
    for (chunk, count) in out.chunks_exact_mut(8).zip(counts) {
        chunk.copy_from_slice(&count.to_be_bytes());
    }
    out
}

/// Decodes [`encode_counts`]; a missing or short value counts as zero.
fn decode_counts(bytes: Option<&[u8]>) -> [u64; 3] {
    let mut counts = [0; 3];
    if let Some(bytes) = bytes {
        for (count, chunk) in counts.iter_mut().zip(bytes.chunks_exact(8)) {
            *count = chunk.try_into().map_or(0, u64::from_be_bytes);
        }
    }
    counts
}

/// What one traffic event adds to one asset or service: bytes and packets in (received) and out
/// (sent), flows, and the times it covers.
struct Sum {
    bytes_in: u64,
    bytes_out: u64,
    packets_in: u64,
    packets_out: u64,
    flows: u64,
    first: u64,
    last: u64,
}

impl Sum {
    fn new(first: u64, last: u64) -> Sum {
        Sum {
            bytes_in: 0,
            bytes_out: 0,
            packets_in: 0,
            packets_out: 0,
            flows: 0,
            first,
            last,
        }
    }

    /// Adds `(bytes, packets)` received and sent.
    fn add(
        &mut self,
        inbound: (u64, u64),
        outbound: (u64, u64),
        flows: u64,
        first: u64,
        last: u64,
    ) {
        self.bytes_in = self.bytes_in.saturating_add(inbound.0);
        self.packets_in = self.packets_in.saturating_add(inbound.1);
        self.bytes_out = self.bytes_out.saturating_add(outbound.0);
        self.packets_out = self.packets_out.saturating_add(outbound.1);
        self.flows = self.flows.saturating_add(flows);
        self.first = self.first.min(first);
        self.last = self.last.max(last);
    }
}

/// The fold of events over the projection's trees inside one transaction.
pub(super) struct Fold<'a> {
    pub(super) assets: &'a TransactionalTree,
    pub(super) services: &'a TransactionalTree,
    pub(super) dependencies: &'a TransactionalTree,
    pub(super) rules: &'a TransactionalTree,
    pub(super) roles: &'a TransactionalTree,
    pub(super) advisories: &'a TransactionalTree,
    pub(super) alerts: &'a TransactionalTree,
    pub(super) access: &'a TransactionalTree,
    /// Rows created so far: assets, services, dependencies.
    pub(super) new: [u64; 3],
}

impl Fold<'_> {
    fn apply(&mut self, at: u64, kind: &EventKind) -> TxResult<()> {
        match kind {
            EventKind::AssetDiscovered { ip, internal } => {
                let mut asset = self.asset_or_new(*ip, at)?;
                asset.internal = *internal;
                asset.status = Status::Active;
                asset.last_seen_ms = asset.last_seen_ms.max(at);
                self.put_asset(&asset)
            }
            EventKind::ServiceDiscovered { service, name } => {
                let mut s = self.service_or_new(service, at)?;
                s.status = Status::Active;
                if name.is_some() {
                    s.name.clone_from(name);
                }
                s.last_seen_ms = s.last_seen_ms.max(at);
                self.put_service(&s)
            }
            EventKind::DependencyDiscovered { dependency } => {
                let mut d = self.dependency_or_new(dependency, at)?;
                d.status = Status::Active;
                d.last_seen_ms = d.last_seen_ms.max(at);
                self.put_dependency(&d)
            }
            EventKind::DependencyTraffic { edges } => self.traffic(edges, at),
            EventKind::AssetExpired { ip } => {
                if let Some(mut asset) = self.get_asset(*ip)? {
                    asset.status = Status::Expired;
                    self.put_asset(&asset)?;
                }
                Ok(())
            }
            EventKind::ServiceExpired { service } => {
                if let Some(mut s) = self.get_service(service)? {
                    s.status = Status::Expired;
                    self.put_service(&s)?;
                }
                Ok(())
            }
            EventKind::DependencyExpired { dependency } => {
                if let Some(mut d) = self.get_dependency(dependency)? {
                    d.status = Status::Expired;
                    self.put_dependency(&d)?;
                }
                Ok(())
            }
            kind => self.fact(at, kind),
        }
    }

    /// One traffic event: each dependency's row once per edge, but each service's and asset's
    /// row once for the whole event, with the event's sums for it (in key order).
    fn traffic(&mut self, edges: &[EdgeStats], at: u64) -> TxResult<()> {
        let mut services: BTreeMap<ServiceKey, Sum> = BTreeMap::new();
        let mut assets: BTreeMap<IpAddr, Sum> = BTreeMap::new();
        for edge in edges {
            let (key, t) = (&edge.dependency, &edge.traffic);
            let first = if t.first_ms == 0 { at } else { t.first_ms };
            let last = t.last_ms.max(first);
            let mut d = self.dependency_or_new(key, first)?;
            d.bytes_to_server = d.bytes_to_server.saturating_add(t.bytes_to_server);
            d.bytes_to_client = d.bytes_to_client.saturating_add(t.bytes_to_client);
            d.packets_to_server = d.packets_to_server.saturating_add(t.packets_to_server);
            d.packets_to_client = d.packets_to_client.saturating_add(t.packets_to_client);
            d.flows = d.flows.saturating_add(t.flows);
            d.first_seen_ms = d.first_seen_ms.min(first);
            d.last_seen_ms = d.last_seen_ms.max(last);
            d.status = Status::Active;
            self.put_dependency(&d)?;

            let to_server = (t.bytes_to_server, t.packets_to_server);
            let to_client = (t.bytes_to_client, t.packets_to_client);
            services
                .entry(key.service)
                .or_insert_with(|| Sum::new(first, last))
                .add(to_server, to_client, t.flows, first, last);
            assets
                .entry(key.client)
                .or_insert_with(|| Sum::new(first, last))
                .add(to_client, to_server, t.flows, first, last);
            assets
                .entry(key.service.ip)
                .or_insert_with(|| Sum::new(first, last))
                .add(to_server, to_client, t.flows, first, last);
        }
        for (key, sum) in &services {
            let mut s = self.service_or_new(key, sum.first)?;
            s.bytes_in = s.bytes_in.saturating_add(sum.bytes_in);
            s.bytes_out = s.bytes_out.saturating_add(sum.bytes_out);
            s.flows = s.flows.saturating_add(sum.flows);
            s.last_seen_ms = s.last_seen_ms.max(sum.last);
            s.status = Status::Active;
            self.put_service(&s)?;
        }
        for (ip, sum) in &assets {
            let mut a = self.asset_or_new(*ip, sum.first)?;
            a.bytes_in = a.bytes_in.saturating_add(sum.bytes_in);
            a.bytes_out = a.bytes_out.saturating_add(sum.bytes_out);
            a.packets_in = a.packets_in.saturating_add(sum.packets_in);
            a.packets_out = a.packets_out.saturating_add(sum.packets_out);
            a.last_seen_ms = a.last_seen_ms.max(sum.last);
            a.status = Status::Active;
            self.put_asset(&a)?;
        }
        Ok(())
    }

    fn get_asset(&self, ip: IpAddr) -> TxResult<Option<Asset>> {
        self.assets
            .get(keys::asset(ip))?
            .map(|v| from_value(ASSETS, &v).map_err(abort))
            .transpose()
    }

    fn asset_or_new(&mut self, ip: IpAddr, at: u64) -> TxResult<Asset> {
        if let Some(asset) = self.get_asset(ip)? {
            return Ok(asset);
        }
        self.new[0] += 1;
        Ok(Asset {
            ip,
            internal: false,
            status: Status::Active,
            first_seen_ms: at,
            last_seen_ms: at,
            bytes_in: 0,
            bytes_out: 0,
            packets_in: 0,
            packets_out: 0,
            classification: None,
            role: None,
        })
    }

    fn put_asset(&self, asset: &Asset) -> TxResult<()> {
        self.assets.insert(keys::asset(asset.ip), to_value(asset))?;
        Ok(())
    }

    fn get_service(&self, key: &ServiceKey) -> TxResult<Option<Service>> {
        self.services
            .get(keys::service(key))?
            .map(|v| from_value(SERVICES, &v).map_err(abort))
            .transpose()
    }

    fn service_or_new(&mut self, key: &ServiceKey, at: u64) -> TxResult<Service> {
        if let Some(service) = self.get_service(key)? {
            return Ok(service);
        }
        self.new[1] += 1;
        Ok(Service {
            id: key.id(),
            key: *key,
            name: None,
            status: Status::Active,
            first_seen_ms: at,
            last_seen_ms: at,
            bytes_in: 0,
            bytes_out: 0,
            flows: 0,
        })
    }

    fn put_service(&self, service: &Service) -> TxResult<()> {
        self.services
            .insert(keys::service(&service.key), to_value(service))?;
        Ok(())
    }

    fn get_dependency(&self, key: &DependencyKey) -> TxResult<Option<Dependency>> {
        self.dependencies
            .get(keys::dependency(key))?
            .map(|v| from_value(DEPENDENCIES, &v).map_err(abort))
            .transpose()
    }

    fn dependency_or_new(&mut self, key: &DependencyKey, at: u64) -> TxResult<Dependency> {
        if let Some(d) = self.get_dependency(key)? {
            return Ok(d);
        }
        self.new[2] += 1;
        let service_name = self.get_service(&key.service)?.and_then(|s| s.name);
        Ok(Dependency {
            id: key.id(),
            key: *key,
            service_name,
            status: Status::Active,
            first_seen_ms: at,
            last_seen_ms: at,
            bytes_to_server: 0,
            bytes_to_client: 0,
            packets_to_server: 0,
            packets_to_client: 0,
            flows: 0,
        })
    }

    fn put_dependency(&self, d: &Dependency) -> TxResult<()> {
        self.dependencies
            .insert(keys::dependency(&d.key), to_value(d))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use proto::event::{Event, TrafficDelta};

    use super::*;

    fn key(client: u8, server: u8, port: u16) -> DependencyKey {
        let ip = |d| IpAddr::V4(Ipv4Addr::new(10, 0, 0, d));
        DependencyKey {
            client: ip(client),
            service: ServiceKey {
                ip: ip(server),
                port,
                protocol: 6,
            },
        }
    }

    fn traffic(keys: &[DependencyKey]) -> EventBatch {
        let edges = keys
            .iter()
            .map(|k| EdgeStats {
                dependency: *k,
                traffic: TrafficDelta {
                    bytes_to_server: 100,
                    flows: 1,
                    first_ms: 1_000,
                    last_ms: 2_000,
                    ..TrafficDelta::default()
                },
            })
            .collect();
        EventBatch::new(vec![Event {
            at_ms: 2_000,
            kind: EventKind::DependencyTraffic { edges },
        }])
    }

    fn scanned(p: &Projection) -> (u64, u64, u64) {
        (
            p.assets.len() as u64,
            p.services.len() as u64,
            p.dependencies.len() as u64,
        )
    }

    #[test]
    fn one_traffic_event_adds_each_edge_to_its_assets_and_service_once() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let p = Projection::open(&db).unwrap();
        // Clients .1 and .2 call .9:443; .1 also calls .8:22. Each edge: 100 bytes to the
        // server in one flow (see `traffic`).
        let edges = [key(1, 9, 443), key(2, 9, 443), key(1, 8, 22)];
        p.apply(1, Some(&traffic(&edges)), &[]).unwrap();
        p.apply(2, Some(&traffic(&edges[..1])), &[]).unwrap();
        let ip = |d| IpAddr::V4(Ipv4Addr::new(10, 0, 0, d));
        let asset = |d| p.asset(ip(d)).unwrap().unwrap();
        assert_eq!((asset(1).bytes_out, asset(1).bytes_in), (300, 0));
        assert_eq!((asset(2).bytes_out, asset(2).bytes_in), (100, 0));
        assert_eq!((asset(9).bytes_in, asset(9).bytes_out), (300, 0));
        assert_eq!(asset(8).bytes_in, 100);
        assert_eq!(
            (asset(1).first_seen_ms, asset(1).last_seen_ms),
            (1_000, 2_000)
        );
        let https = p.service(&key(1, 9, 443).service).unwrap().unwrap();
        assert_eq!((https.bytes_in, https.flows), (300, 3));
        let d = p.dependency(&key(1, 9, 443)).unwrap().unwrap();
        assert_eq!((d.bytes_to_server, d.flows), (200, 2));
    }

    #[test]
    fn counts_follow_new_rows_only_and_are_rebuilt_for_an_old_store() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let p = Projection::open(&db).unwrap();
        assert_eq!(p.counts().unwrap(), (0, 0, 0));
        // Two clients of one service, then the same rows again plus a new server.
        p.apply(1, Some(&traffic(&[key(1, 9, 443), key(2, 9, 443)])), &[])
            .unwrap();
        assert_eq!(p.counts().unwrap(), (3, 1, 2));
        p.apply(
            2,
            Some(&traffic(&[key(1, 9, 443), key(1, 8, 22), key(1, 8, 22)])),
            &[],
        )
        .unwrap();
        assert_eq!(p.counts().unwrap(), (4, 2, 3));
        assert_eq!(p.counts().unwrap(), scanned(&p));

        // A store written before counts were kept gets them counted when opened.
        p.meta.remove(COUNTS).unwrap();
        drop(p);
        let reopened = Projection::open(&db).unwrap();
        assert_eq!(reopened.counts().unwrap(), (4, 2, 3));
    }
}
