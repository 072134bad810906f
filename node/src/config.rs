//! Node configuration: built-in defaults, then an optional TOML or YAML file, then `FLOWLENS_*`
//! environment variables (`__` separates sections: `FLOWLENS_API__LISTEN=127.0.0.1:9000`), then
//! command-line flags. Every value is validated with an error that names its key.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml, Yaml};
use figment::Figment;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The whole node configuration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the node keeps its store (sled) and collector state.
    pub data_dir: PathBuf,
    /// This node's Raft id.
    pub node_id: u64,
    /// Clustering (off unless `cluster.nats` is set).
    pub cluster: ClusterSection,
    /// Federation of sites into one map (off unless `federation.sites` is set).
    pub federation: FederationSection,
    /// REST API and UI.
    pub api: ApiConfig,
    /// UDP flow listeners.
    pub collector: CollectorSection,
    /// Flow aggregation.
    pub aggregator: AggregatorSection,
    /// The dependency graph.
    pub graph: GraphSection,
    /// Behavioural classification of assets.
    pub classification: ClassificationSection,
    /// Advisories: findings about the traffic.
    pub advisories: AdvisoriesSection,
    /// Alert notification delivery.
    pub alerting: AlertingSection,
    /// Where alerts are sent (`[[notifiers]]`); rules name them by id.
    pub notifiers: Vec<crate::alerting::notify::NotifierConfig>,
    /// Local (non-replicated) retention of rollups.
    pub retention: RetentionSection,
    /// The sled store.
    pub store: StoreSection,
    /// Logging.
    pub log: LogSection,
    /// Access control: sessions, tokens, the first admin.
    pub auth: AuthSection,
    /// Other collectors every received datagram is also sent to, unchanged (`[[relay]]`).
    pub relay: Vec<actors::relay::RelayTarget>,
}

/// Access control settings. Authentication is always on: the first node to lead a cluster with
/// no users creates `admin` with a one-time password (printed, and written to
/// `<data_dir>/initial-admin-password`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// How long a browser session lasts.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// An admin API token to create with the first admin (at least 32 characters), for
    /// provisioning by programs (a Kubernetes secret, say). Unset: none.
    pub bootstrap_token: Option<String>,
    /// Failed sign-ins allowed per client address per minute.
    pub login_attempts_per_minute: u32,
    /// Requests allowed per client address per second (a burst of twice as many).
    pub requests_per_second: u32,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            session_ttl: Duration::from_secs(12 * 3600),
            bootstrap_token: None,
            login_attempts_per_minute: 10,
            requests_per_second: 200,
        }
    }
}

/// Cluster settings. A node without a NATS URL runs alone, with no NATS needed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// The cluster's name: the `<cluster>` token of its NATS subjects.
    pub name: String,
    /// NATS server URL(s), comma-separated (`nats://127.0.0.1:4222`); empty runs alone.
    pub nats: String,
    /// How long the JetStream stream of committed events keeps them.
    #[serde(with = "humantime_serde")]
    pub events_max_age: Duration,
    /// How to authenticate to NATS and secure the connection (`[cluster.security]`).
    pub security: crate::nats::NatsSecurity,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            name: "flowlens".into(),
            nats: String::new(),
            events_max_age: Duration::from_secs(7 * 86_400),
            security: crate::nats::NatsSecurity::default(),
        }
    }
}

impl ClusterSection {
    /// Whether this node runs in a cluster (a NATS URL, and not federating: a federation node
    /// uses the URL to follow its sites and keeps its own log alone).
    pub fn enabled(&self) -> bool {
        !self.nats.trim().is_empty()
    }
}

/// Federation settings: this node follows the committed events of several sites (each its own
/// cluster) on NATS and projects them into one map. It needs `cluster.nats`; its own log runs
/// alone.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FederationSection {
    /// The sites followed (their `cluster.name`).
    pub sites: Vec<String>,
    /// The networks of each site, by site name: an asset in one is at home there, and a
    /// dependency between assets at home in two sites is cross-site. Without networks, an
    /// asset only one site reported is at home there.
    pub networks: std::collections::BTreeMap<String, Vec<IpNet>>,
    /// The JetStream domain of each site whose NATS server has its own (a leafnode with
    /// JetStream); sites without one are on the node's own JetStream.
    pub domains: std::collections::BTreeMap<String, String>,
}

impl FederationSection {
    /// Whether this node federates sites.
    pub fn enabled(&self) -> bool {
        !self.sites.is_empty()
    }
}

/// Whether `name` can be one token of a NATS subject: letters, digits, `-` and `_`.
pub fn is_subject_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// REST API settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address the API and UI listen on.
    pub listen: SocketAddr,
    /// Largest page size a list request may ask for.
    pub max_page: usize,
    /// PEM certificate chain: with `tls_key`, the API and UI are served over HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM certificates other members' API certificates are checked against when this node
    /// asks them for their health (the cluster page); default: those in `tls_cert`.
    pub tls_ca: Option<PathBuf>,
    /// `host:port` other members and the cluster page reach this node's API at (it goes into
    /// the cluster membership); default: `listen`, which is wrong when that is `0.0.0.0`.
    pub advertise: Option<String>,
}

impl ApiConfig {
    /// The address members record for this node: `advertise`, else `listen`.
    pub fn advertised(&self) -> String {
        self.advertise
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }
}

/// Collector settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorSection {
    /// UDP addresses to listen on (IPv4 `0.0.0.0:2055` or IPv6 `[::]:2055`).
    pub listen: Vec<SocketAddr>,
    /// Requested socket receive buffer, bytes.
    pub recv_buffer_bytes: usize,
    /// Datagrams decoded per batch.
    pub batch_datagrams: usize,
    /// Flow batches allowed in flight to the aggregator before whole batches are dropped.
    pub queue_batches: usize,
    /// Flows allowed in flight to the aggregator (in those batches) before whole batches are
    /// dropped: what bounds the queue's memory (a flow takes 144 bytes).
    pub queue_flows: usize,
}

/// Aggregator settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AggregatorSection {
    /// Recent flows kept in memory for the flow explorer (144 bytes each: the default 10 000
    /// is 1.4 MB, seconds of a busy network and minutes of a quiet one); a query without a time
    /// range that they cannot fill once older flows have gone is read from disk.
    pub recent_flows: usize,
    /// How often dependency traffic is handed to the graph.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Window for top talkers and protocol mix.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

/// Graph settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GraphSection {
    /// Networks counted as internal besides RFC 1918 / RFC 4193.
    pub internal_networks: Vec<IpNet>,
    /// Idle time after which assets, services and dependencies expire.
    #[serde(with = "humantime_serde")]
    pub idle_expiry: Duration,
    /// How often traffic statistics are committed to the event log (and so how often every
    /// active dependency's row is rewritten in the projection; live throughput comes from the
    /// aggregator, not from here). One minute matches the finest rollup tier.
    #[serde(with = "humantime_serde")]
    pub stats_interval: Duration,
    /// Most dependencies in one traffic event.
    pub max_edges_per_event: usize,
    /// Most new dependencies announced per second (discovery events committed). A burst of
    /// more (a cold start on a large network) waits in the map and goes out at this pace, so
    /// that the projection does not write them all at once; fewer a second go out at once.
    pub discovery_rate: u32,
}

/// Behavioural classification: the role of each asset guessed from its traffic.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClassificationSection {
    /// How often the classifier looks at the map (on the Raft leader only).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Least confidence (0 to 1) for an inferred role to be applied.
    pub min_confidence: f64,
    /// How long an asset must have been seen before a role is inferred for it.
    #[serde(with = "humantime_serde")]
    pub min_observation: Duration,
}

impl Default for ClassificationSection {
    fn default() -> Self {
        ClassificationSection {
            interval: Duration::from_secs(60),
            min_confidence: 0.7,
            min_observation: Duration::from_secs(600),
        }
    }
}

/// Advisories: the detectors' window, thresholds and expiry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdvisoriesSection {
    /// Whether the detectors run.
    pub enabled: bool,
    /// Length of one detection window.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// An advisory not found again for this long is resolved.
    #[serde(with = "humantime_serde")]
    pub expire: Duration,
    /// Distinct ports one source tries on one host in a window: a port scan.
    pub scan_ports: usize,
    /// Distinct hosts one source tries on one port in a window: a host sweep.
    pub sweep_hosts: usize,
    /// DNS queries per second from one client: unusual volume.
    pub dns_queries_per_s: f64,
    /// Share of a window's bytes one host must carry to be reported as top talker.
    pub top_talker_share: f64,
    /// Least bytes in a window for a top talker to be reported.
    pub top_talker_min_bytes: u64,
    /// Windows a network's baseline needs before spikes and drops are reported.
    pub baseline_windows: u32,
    /// A window this many times a network's baseline is a spike.
    pub spike_factor: f64,
    /// A window this fraction below the baseline is a drop.
    pub drop_ratio: f64,
    /// Least bytes per window for spikes and drops to be reported.
    pub anomaly_min_bytes: u64,
}

impl Default for AdvisoriesSection {
    fn default() -> Self {
        let t = actors::advisor::detect::Thresholds::default();
        AdvisoriesSection {
            enabled: true,
            window: t.window,
            expire: Duration::from_secs(600),
            scan_ports: t.scan_ports,
            sweep_hosts: t.sweep_hosts,
            dns_queries_per_s: t.dns_queries_per_s,
            top_talker_share: t.top_talker_share,
            top_talker_min_bytes: t.top_talker_min_bytes,
            baseline_windows: t.baseline_windows,
            spike_factor: t.spike_factor,
            drop_ratio: t.drop_ratio,
            anomaly_min_bytes: t.anomaly_min_bytes,
        }
    }
}

impl AdvisoriesSection {
    /// The detector thresholds, with the graph's internal networks.
    pub fn thresholds(&self, internal_networks: &[IpNet]) -> actors::advisor::detect::Thresholds {
        actors::advisor::detect::Thresholds {
            window: self.window,
            scan_ports: self.scan_ports,
            sweep_hosts: self.sweep_hosts,
            dns_queries_per_s: self.dns_queries_per_s,
            top_talker_share: self.top_talker_share,
            top_talker_min_bytes: self.top_talker_min_bytes,
            baseline_windows: self.baseline_windows,
            spike_factor: self.spike_factor,
            drop_ratio: self.drop_ratio,
            anomaly_min_bytes: self.anomaly_min_bytes,
            internal_networks: internal_networks.to_vec(),
        }
    }
}

/// Alert notification delivery.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingSection {
    /// Wait before the second attempt; doubled before each further one.
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    /// Attempts per notifier and alert before giving up (the failure stays visible).
    pub max_attempts: u32,
    /// Longest one attempt may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for AlertingSection {
    fn default() -> Self {
        AlertingSection {
            retry_base: Duration::from_secs(1),
            max_attempts: 5,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Retention of the local raw flows and rollups (never replicated).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSection {
    /// How far back the in-memory ring answers flow queries (it is also bounded by count,
    /// `aggregator.recent_flows`); older flows are read from disk.
    #[serde(with = "humantime_serde")]
    pub raw_hot: Duration,
    /// Raw flows kept on disk under `<data_dir>/flows`.
    #[serde(with = "humantime_serde")]
    pub raw: Duration,
    /// Most bytes of raw flows kept on disk; the oldest minutes are deleted first.
    pub raw_max_bytes: u64,
    /// Per-minute rollups.
    #[serde(with = "humantime_serde")]
    pub minute: Duration,
    /// Per-hour rollups.
    #[serde(with = "humantime_serde")]
    pub hour: Duration,
    /// Per-day rollups.
    #[serde(with = "humantime_serde")]
    pub day: Duration,
    /// The event history under `<data_dir>/history` (what `/history`, `/audit`, replays and
    /// diffs read): events older than this are pruned, in steps of a sixteenth of it (the
    /// history restarts from a checkpoint of the projection taken before the cutoff). The
    /// projection itself (assets, dependencies, alerts, rules, users) is never pruned by it.
    #[serde(with = "humantime_serde")]
    pub events: Duration,
    /// The disk guard: below this much free space on the data directory's filesystem, raw
    /// flows are no longer written (the map, rollups and events go on) and a CRITICAL
    /// `disk_space` advisory is raised; both end once twice as much is free again.
    pub min_free_bytes: u64,
}

/// sled settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// sled page cache, MiB (sled's own default is 1 GiB). sled uses several times this under
    /// write load. Stats periods are written in key order, so the working set is small: at 50k
    /// hosts / 200k dependencies and 100k flows/s, 2, 4 and 8 all gave a peak RSS of 159 MB,
    /// 16 gave 176 MB and 32 gave 212 MB.
    pub cache_capacity_mb: u64,
    /// The projection is snapshotted every this many Raft log entries, and the log purged
    /// behind the snapshot (the history under `<data_dir>/history` keeps every entry).
    pub snapshot_every: u64,
    /// Log entries kept behind the last snapshot: a node less far behind catches up from the
    /// log, one further behind installs the snapshot.
    pub log_keep: u64,
}

/// Logging settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `tracing` filter (`info`, `flowlens=debug,info`, …); `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            node_id: 1,
            cluster: ClusterSection::default(),
            federation: FederationSection::default(),
            api: ApiConfig::default(),
            collector: CollectorSection::default(),
            aggregator: AggregatorSection::default(),
            graph: GraphSection::default(),
            classification: ClassificationSection::default(),
            advisories: AdvisoriesSection::default(),
            alerting: AlertingSection::default(),
            notifiers: Vec::new(),
            retention: RetentionSection::default(),
            store: StoreSection::default(),
            log: LogSection::default(),
            auth: AuthSection::default(),
            relay: Vec::new(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_page: 10_000,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            advertise: None,
        }
    }
}

impl Default for CollectorSection {
    fn default() -> Self {
        CollectorSection {
            listen: [2055, 4739, 6343]
                .into_iter()
                .map(|port| SocketAddr::from(([0, 0, 0, 0], port)))
                .collect(),
            recv_buffer_bytes: 32 << 20,
            batch_datagrams: 64,
            queue_batches: 1024,
            queue_flows: 131_072,
        }
    }
}

impl Default for AggregatorSection {
    fn default() -> Self {
        AggregatorSection {
            recent_flows: 10_000,
            flush_interval: Duration::from_secs(5),
            window: Duration::from_secs(300),
        }
    }
}

impl Default for GraphSection {
    fn default() -> Self {
        GraphSection {
            internal_networks: Vec::new(),
            idle_expiry: Duration::from_secs(3600),
            stats_interval: Duration::from_secs(60),
            max_edges_per_event: 1000,
            discovery_rate: 10_000,
        }
    }
}

impl Default for RetentionSection {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        RetentionSection {
            raw_hot: Duration::from_secs(600),
            raw: Duration::from_secs(72 * 3600),
            raw_max_bytes: 10 << 30,
            minute: Duration::from_secs(7 * DAY),
            hour: Duration::from_secs(90 * DAY),
            day: Duration::from_secs(730 * DAY),
            events: Duration::from_secs(365 * DAY),
            min_free_bytes: 1 << 30,
        }
    }
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            cache_capacity_mb: 8,
            snapshot_every: 50_000,
            log_keep: 10_000,
        }
    }
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".to_string(),
        }
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment variable could not be read or has a bad value.
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value is out of range.
    #[error("configuration key `{key}`: {why}")]
    Invalid {
        /// Dotted key (`collector.listen`).
        key: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// The file's extension names no known format.
    #[error("configuration file {0}: use a .toml, .yaml or .yml file")]
    UnknownFormat(PathBuf),
}

fn invalid(key: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        why: why.into(),
    }
}

impl Config {
    /// Loads defaults, then `file` (TOML or YAML by extension; it must exist when given), then
    /// `FLOWLENS_*` variables from `env` (pass `std::env::vars()`), and validates the result.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(invalid(
                    "--config",
                    format!("{} is not a readable file", path.display()),
                ));
            }
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            figment = match ext {
                "toml" => figment.merge(Toml::file_exact(path)),
                "yaml" | "yml" => figment.merge(Yaml::file_exact(path)),
                _ => return Err(ConfigError::UnknownFormat(path.to_path_buf())),
            };
        }
        let vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("FLOWLENS_"))
            .collect();
        // figment reads the process environment; feed it exactly the given variables instead.
        let figment = vars.iter().fold(figment, |f, (k, v)| {
            let key = k
                .trim_start_matches("FLOWLENS_")
                .to_lowercase()
                .replace("__", ".");
            f.merge(Serialized::default(&key, parse_env_value(v)))
        });
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and consistency; errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(why) = self.cluster.security.problem() {
            return Err(invalid("cluster.security", why));
        }
        actors::relay::validate(&self.relay).map_err(|why| invalid("relay", why))?;
        if let Some(a) = &self.api.advertise {
            let port = a.rsplit_once(':').and_then(|(host, port)| {
                (!host.is_empty() && host != "0.0.0.0" && host != "[::]")
                    .then(|| port.parse::<u16>().ok())
                    .flatten()
            });
            if port.is_none_or(|p| p == 0) {
                return Err(invalid(
                    "api.advertise",
                    format!("`{a}` is not a reachable host:port like 10.0.0.5:8080"),
                ));
            }
        }
        if self.api.tls_ca.is_some() && self.api.tls_cert.is_none() {
            return Err(invalid(
                "api.tls_ca",
                "checks members' HTTPS certificates: it needs api.tls_cert and api.tls_key",
            ));
        }
        if self.api.tls_cert.is_some() != self.api.tls_key.is_some() {
            return Err(invalid(
                "api.tls_cert",
                "api.tls_cert and api.tls_key go together",
            ));
        }
        if self
            .auth
            .bootstrap_token
            .as_ref()
            .is_some_and(|t| t.trim().len() < 32)
        {
            return Err(invalid(
                "auth.bootstrap_token",
                "must be at least 32 characters",
            ));
        }
        if self.auth.login_attempts_per_minute == 0 || self.auth.requests_per_second == 0 {
            return Err(invalid(
                "auth",
                "login_attempts_per_minute and requests_per_second must be 1 or more",
            ));
        }
        if self.auth.session_ttl < Duration::from_secs(60) {
            return Err(invalid("auth.session_ttl", "must be at least 1m"));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        if self.node_id == 0 {
            return Err(invalid("node_id", "must be 1 or more"));
        }
        if !is_subject_token(&self.cluster.name) {
            return Err(invalid(
                "cluster.name",
                "must be letters, digits, '-' or '_' (it is a NATS subject token)",
            ));
        }
        for site in &self.federation.sites {
            if !is_subject_token(site) {
                return Err(invalid(
                    "federation.sites",
                    format!("{site:?}: must be letters, digits, '-' or '_'"),
                ));
            }
        }
        for (key, mut names) in [
            (
                "federation.networks",
                Box::new(self.federation.networks.keys()) as Box<dyn Iterator<Item = &String>>,
            ),
            (
                "federation.domains",
                Box::new(self.federation.domains.keys()),
            ),
        ] {
            if let Some(site) = names.find(|k| !self.federation.sites.contains(k)) {
                return Err(invalid(key, format!("{site:?} is not in federation.sites")));
            }
        }
        if !(0.0..=1.0).contains(&self.classification.min_confidence) {
            return Err(invalid(
                "classification.min_confidence",
                "must be between 0 and 1",
            ));
        }
        if self.classification.interval.is_zero() {
            return Err(invalid("classification.interval", "must be more than 0"));
        }
        let mut ids = HashSet::new();
        for n in &self.notifiers {
            n.check()
                .map_err(|why| invalid("notifiers", format!("{}: {why}", n.id)))?;
            if !ids.insert(&n.id) {
                return Err(invalid("notifiers", format!("{}: id used twice", n.id)));
            }
        }
        if !(1..=20).contains(&self.alerting.max_attempts) {
            return Err(invalid("alerting.max_attempts", "must be 1 to 20"));
        }
        let a = &self.advisories;
        if a.window < Duration::from_millis(100) {
            return Err(invalid("advisories.window", "must be at least 100ms"));
        }
        if a.scan_ports == 0 || a.sweep_hosts == 0 {
            return Err(invalid(
                "advisories.scan_ports",
                "scan_ports and sweep_hosts must be 1 or more",
            ));
        }
        if !(0.0..=1.0).contains(&a.top_talker_share) || !(0.0..=1.0).contains(&a.drop_ratio) {
            return Err(invalid(
                "advisories.top_talker_share",
                "top_talker_share and drop_ratio must be between 0 and 1",
            ));
        }
        if a.spike_factor <= 1.0 || a.dns_queries_per_s <= 0.0 {
            return Err(invalid(
                "advisories.spike_factor",
                "spike_factor must be more than 1 and dns_queries_per_s more than 0",
            ));
        }
        if self.store.snapshot_every == 0 {
            return Err(invalid("store.snapshot_every", "must be 1 or more"));
        }
        if self.api.max_page == 0 {
            return Err(invalid("api.max_page", "must be 1 or more"));
        }
        let mut seen = HashSet::new();
        for addr in &self.collector.listen {
            if !seen.insert(addr) {
                return Err(invalid(
                    "collector.listen",
                    format!("{addr} is listed twice"),
                ));
            }
            if *addr == self.api.listen {
                return Err(invalid(
                    "collector.listen",
                    format!("{addr} is also api.listen"),
                ));
            }
        }
        if self.collector.recv_buffer_bytes < 65_536 {
            return Err(invalid(
                "collector.recv_buffer_bytes",
                "must be at least 65536",
            ));
        }
        if !(1..=4096).contains(&self.collector.batch_datagrams) {
            return Err(invalid("collector.batch_datagrams", "must be 1 to 4096"));
        }
        if self.collector.queue_batches == 0 {
            return Err(invalid("collector.queue_batches", "must be 1 or more"));
        }
        if self.collector.queue_flows == 0 {
            return Err(invalid("collector.queue_flows", "must be 1 or more"));
        }
        let positive = [
            ("aggregator.flush_interval", self.aggregator.flush_interval),
            ("aggregator.window", self.aggregator.window),
            ("graph.idle_expiry", self.graph.idle_expiry),
            ("graph.stats_interval", self.graph.stats_interval),
            ("retention.raw_hot", self.retention.raw_hot),
            ("retention.minute", self.retention.minute),
            ("retention.hour", self.retention.hour),
            ("retention.day", self.retention.day),
            ("retention.events", self.retention.events),
        ];
        for (key, d) in positive {
            if d < Duration::from_millis(50) {
                return Err(invalid(key, "must be at least 50ms"));
            }
        }
        if self.graph.stats_interval > self.graph.idle_expiry {
            return Err(invalid(
                "graph.stats_interval",
                "must not be longer than graph.idle_expiry",
            ));
        }
        if self.graph.max_edges_per_event == 0 {
            return Err(invalid("graph.max_edges_per_event", "must be 1 or more"));
        }
        if self.graph.discovery_rate == 0 {
            return Err(invalid("graph.discovery_rate", "must be 1 or more"));
        }
        if self.retention.raw < Duration::from_secs(60) {
            return Err(invalid(
                "retention.raw",
                "must be at least 1m (raw flows are kept in one file per minute)",
            ));
        }
        if self.retention.raw_max_bytes < 1 << 20 {
            return Err(invalid(
                "retention.raw_max_bytes",
                "must be at least 1048576 (1 MiB)",
            ));
        }
        if self.store.cache_capacity_mb == 0 {
            return Err(invalid("store.cache_capacity_mb", "must be 1 or more"));
        }
        Ok(())
    }
}

/// Environment values are TOML-ish: lists (`[a, b]`), numbers and booleans parse as such,
/// anything else is a string.
fn parse_env_value(v: &str) -> figment::value::Value {
    use figment::value::Value;
    let trimmed = v.trim();
    if let Some(inner) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let items: Vec<Value> = inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| parse_env_value(s.trim_matches('"')))
            .collect();
        return Value::from(items);
    }
    if let Ok(n) = trimmed.parse::<u64>() {
        return Value::from(n);
    }
    if let Ok(b) = trimmed.parse::<bool>() {
        return Value::from(b);
    }
    Value::from(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn load_str(ext: &str, text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut f = tempfile::Builder::new()
            .suffix(ext)
            .tempfile()
            .map_err(|e| invalid("test", e.to_string()))?;
        f.write_all(text.as_bytes())
            .map_err(|e| invalid("test", e.to_string()))?;
        Config::load(
            Some(f.path()),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load(None, Vec::new()).expect("defaults load");
        assert_eq!(c, Config::default());
        assert_eq!(
            c.api.listen,
            "127.0.0.1:8080".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(c.collector.listen.len(), 3);
    }

    #[test]
    fn toml_yaml_and_env_layer_in_order() {
        let c = load_str(
            ".toml",
            "data_dir = \"/tmp/x\"\n[graph]\nstats_interval = \"2s\"\n[collector]\nlisten = [\"127.0.0.1:9995\", \"[::1]:9995\"]\n",
            &[("FLOWLENS_API__LISTEN", "127.0.0.1:9000"), ("OTHER", "x")],
        )
        .expect("loads");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.graph.stats_interval, Duration::from_secs(2));
        assert_eq!(c.collector.listen.len(), 2);
        assert_eq!(
            c.api.listen,
            "127.0.0.1:9000".parse::<SocketAddr>().expect("addr")
        );
        let y = load_str(".yaml", "aggregator:\n  recent_flows: 5\n", &[]).expect("yaml");
        assert_eq!(y.aggregator.recent_flows, 5);
    }

    #[test]
    fn errors_name_the_key() {
        let e = load_str(".toml", "[collector]\nlisten = [\"not an address\"]\n", &[])
            .expect_err("bad address");
        assert!(e.to_string().contains("collector.listen"), "{e}");
        let e = load_str(".toml", "[grpah]\nx = 1\n", &[]).expect_err("unknown section");
        assert!(e.to_string().contains("grpah"), "{e}");
        let e = load_str(
            ".toml",
            "[graph]\nidle_expiry = \"1s\"\nstats_interval = \"5s\"\n",
            &[],
        )
        .expect_err("inconsistent");
        assert!(e.to_string().contains("graph.stats_interval"), "{e}");
        let e =
            load_str(".toml", "", &[("FLOWLENS_GRAPH__IDLE_EXPIRY", "soon")]).expect_err("bad env");
        assert!(e.to_string().contains("idle_expiry"), "{e}");
        let e = load_str(".toml", "[retention]\nraw = \"30s\"\n", &[]).expect_err("short");
        assert!(e.to_string().contains("retention.raw"), "{e}");
        let e = load_str(
            ".toml",
            "",
            &[("FLOWLENS_RETENTION__RAW_MAX_BYTES", "1000")],
        )
        .expect_err("small");
        assert!(e.to_string().contains("retention.raw_max_bytes"), "{e}");
        let e = load_str(".toml", "[graph]\ndiscovery_rate = 0\n", &[]).expect_err("zero");
        assert!(e.to_string().contains("graph.discovery_rate"), "{e}");
        let e = load_str(".ini", "", &[]).expect_err("format");
        assert!(e.to_string().contains(".toml"), "{e}");
    }

    #[test]
    fn the_advertised_api_address_must_be_reachable() {
        let c = load_str(".toml", "", &[("FLOWLENS_API__ADVERTISE", "node1:8080")]).expect("ok");
        assert_eq!(c.api.advertised(), "node1:8080");
        assert_eq!(Config::default().api.advertised(), "127.0.0.1:8080");
        for bad in ["0.0.0.0:8080", "node1", "node1:0", ":8080"] {
            let e = load_str(".toml", "", &[("FLOWLENS_API__ADVERTISE", bad)]).expect_err(bad);
            assert!(e.to_string().contains("api.advertise"), "{e}");
        }
        let e = load_str(".toml", "", &[("FLOWLENS_API__TLS_CA", "/ca.pem")]).expect_err("ca");
        assert!(e.to_string().contains("api.tls_ca"), "{e}");
    }
}

#[cfg(test)]
mod deploy_tests {
    use super::*;

    #[test]
    fn the_example_config_in_deploy_is_the_defaults() {
        let path = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join("../deploy/flowlens.toml");
        let c = Config::load(Some(&path), Vec::new()).expect("deploy/flowlens.toml loads");
        assert_eq!(c, Config::default());
    }

    #[test]
    fn the_multi_site_example_configs_load() {
        let dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join("../deploy/multi-site");
        let load = |name: &str| {
            Config::load(Some(&dir.join(name)), Vec::new())
                .unwrap_or_else(|e| panic!("deploy/multi-site/{name}: {e}"))
        };
        let a = load("site-a.toml");
        assert_eq!(
            (a.cluster.name.as_str(), a.cluster.enabled()),
            ("site-a", true)
        );
        let b = load("site-b.toml");
        assert_eq!(b.cluster.name, "site-b");
        let f = load("federation.toml");
        assert_eq!(f.federation.sites, ["site-a", "site-b"]);
        assert_eq!(f.federation.domains.len(), 2);
        assert!(f.cluster.enabled());
    }
}
