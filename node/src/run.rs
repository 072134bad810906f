//! Starting and stopping a node: opens the store and the raw flow tier, starts the event log,
//! seeds the graph from the projection, spawns graph → aggregator → collector, serves the API,
//! and on SIGINT/SIGTERM stops in the order that loses nothing: stop reading UDP (templates
//! saved), flush the aggregator (traffic into the graph, raw flows to disk) and the graph into
//! the log, shut Raft down, flush sled.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::advisor::{Advisor, AdvisorArgs, AdvisorConfig, AdvisorMsg};
use actors::aggregator::{Aggregator, AggregatorArgs, AggregatorConfig, AggregatorMsg};
use actors::collector::{Collector, CollectorArgs, CollectorConfig, CollectorMsg};
use actors::graph::{Graph, GraphArgs, GraphConfig, GraphMsg, KnownState};
use actors::lane::Lane;
use actors::{EventSink, RawSink, RollupSink};
use anyhow::Context;
use proto::event::EventBatch;
use ractor::{Actor, ActorRef};

use crate::api::{self, AppState};
use crate::config::Config;
use crate::events;
use crate::federation;
use crate::raft::cluster::{AdminService, Forwarder};
use crate::raft::nats::{self, NatsNetwork};
use crate::raft::{EventLog, Snapshots, SoloNetwork, Start};
use crate::store::raw::{RawConfig, RawStore};
use crate::store::rollups::{Retention, Rollups};
use crate::store::Projection;

/// The event log as the graph's sink.
struct LogSink(Arc<EventLog>);

impl EventSink for LogSink {
    fn commit<'a>(
        &'a self,
        batch: &'a EventBatch,
    ) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'a>> {
        Box::pin(async move { self.0.append(batch).await.map_err(|e| e.to_string()) })
    }
}

/// A running node's handles.
pub struct Node {
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// Where the collector listens.
    pub collector_addrs: Vec<SocketAddr>,
    db: sled::Db,
    log: Arc<EventLog>,
    collector: ActorRef<CollectorMsg>,
    aggregator: ActorRef<AggregatorMsg>,
    graph: ActorRef<GraphMsg>,
    advisor: Option<ActorRef<AdvisorMsg>>,
    raw: Arc<RawStore>,
    server: tokio::task::JoinHandle<()>,
    stop_api: tokio::sync::oneshot::Sender<()>,
    /// The Raft RPC and admin services of a clustered node.
    cluster_tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Hands the graph every batch another node (or a federated site) committed, so that it keeps
/// alive what only they see and ends what they expire.
fn follow_others(
    log: &EventLog,
    graph: ActorRef<GraphMsg>,
    node_id: u64,
) -> tokio::task::JoinHandle<()> {
    use tokio::sync::broadcast::error::RecvError;
    let mut applied = log.subscribe_applied();
    tokio::spawn(async move {
        loop {
            match applied.recv().await {
                Ok(a) if a.origin.is_some_and(|o| o.node != node_id) => {
                    if graph.send_message(GraphMsg::Follow(a.batch)).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(batches = n, "the graph fell behind other nodes' batches")
                }
                Err(RecvError::Closed) => return,
            }
        }
    })
}

/// Connects to `cluster.nats`, retrying in the background (a node may start before its server).
async fn connect(config: &Config) -> anyhow::Result<async_nats::Client> {
    let options = async_nats::ConnectOptions::new()
        .name(format!(
            "flowlens {} node {}",
            config.cluster.name, config.node_id
        ))
        .retry_on_initial_connect();
    config
        .cluster
        .security
        .apply(options)
        .await?
        .connect(config.cluster.nats.as_str())
        .await
        .with_context(|| format!("cluster.nats {}: cannot connect", config.cluster.nats))
}

/// The event log, the NATS connection of a clustered node, and its NATS services' tasks.
type OpenedLog = (
    EventLog,
    Option<async_nats::Client>,
    Vec<tokio::task::JoinHandle<()>>,
);

/// Opens the event log: alone, or in the cluster `config.cluster` names, with its Raft RPC and
/// admin services answering on NATS (the connection is retried in the background, so a node
/// may start before its NATS server).
async fn open_log(
    config: &Config,
    db: &sled::Db,
    projection: &Projection,
) -> anyhow::Result<OpenedLog> {
    let dir = config.data_dir.join("raft");
    let snapshots = Snapshots {
        every: config.store.snapshot_every,
        keep: config.store.log_keep,
    };
    // A federation node uses NATS to follow its sites; its own log runs alone.
    if !config.cluster.enabled() || config.federation.enabled() {
        let start = Start::Solo {
            addr: config.api.advertised(),
        };
        let log = EventLog::open(
            db,
            &dir,
            projection.clone(),
            config.node_id,
            start,
            snapshots,
            SoloNetwork,
        )
        .await
        .context("cannot start the event log")?;
        return Ok((log, None, Vec::new()));
    }
    let name = config.cluster.name.clone();
    let client = connect(config).await?;
    let start = Start::Cluster {
        forward: Forwarder::new(client.clone(), name.clone()),
    };
    let network = NatsNetwork::new(client.clone(), name.clone());
    let log = EventLog::open(
        db,
        &dir,
        projection.clone(),
        config.node_id,
        start,
        snapshots,
        network,
    )
    .await
    .context("cannot start the event log")?;
    let tasks = vec![
        nats::serve(client.clone(), &name, config.node_id, log.raft().clone())
            .await
            .context("cannot subscribe to the Raft subjects")?,
    ];
    tracing::info!(
        cluster = %name,
        node = config.node_id,
        nats = %config.cluster.nats,
        "clustered: membership is managed with `flowlens admin`"
    );
    Ok((log, Some(client), tasks))
}

fn known_state(projection: &Projection) -> anyhow::Result<KnownState> {
    Ok(KnownState {
        assets: projection.assets().collect::<Result<_, _>>()?,
        services: projection.services().collect::<Result<_, _>>()?,
        dependencies: projection.dependencies().collect::<Result<_, _>>()?,
    })
}

impl Node {
    /// Starts every part of the node.
    pub async fn start(config: Config) -> anyhow::Result<Node> {
        let started = Instant::now();
        if config.federation.enabled() && !config.cluster.enabled() {
            anyhow::bail!(
                "configuration key `federation.sites`: federating needs cluster.nats (--nats) \
                 to follow the sites on"
            );
        }
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
        let store_dir = config.data_dir.join("store");
        let db = sled::Config::new()
            .path(&store_dir)
            .cache_capacity(config.store.cache_capacity_mb << 20)
            .open()
            .with_context(|| format!("cannot open the store at {}", store_dir.display()))?;
        let projection = Projection::open(&db)?;
        let (log, client, mut cluster_tasks) = open_log(&config, &db, &projection).await?;
        let log = Arc::new(log);
        if config.federation.enabled() {
            let client = connect(&config).await?;
            cluster_tasks.extend(federation::spawn(client, &config.federation, log.clone()));
        }
        if let Some(client) = client {
            let admin = AdminService {
                client: client.clone(),
                cluster: config.cluster.name.clone(),
                node: config.node_id,
                addr: config.api.advertised(),
                log: log.clone(),
            };
            cluster_tasks.extend(
                admin
                    .serve()
                    .await
                    .context("cannot subscribe to the admin subjects")?,
            );
            cluster_tasks.push(events::spawn_publisher(
                client,
                config.cluster.name.clone(),
                config.cluster.events_max_age,
                log.clone(),
            ));
        }
        let known = known_state(&projection)?;
        tracing::info!(
            assets = known.assets.len(),
            services = known.services.len(),
            dependencies = known.dependencies.len(),
            applied = log.applied_index(),
            "projection loaded"
        );
        let r = &config.retention;
        drop_sled_rollups(&db);
        let rollups = Rollups::open(
            &config.data_dir.join("rollups"),
            Retention([r.minute, r.hour, r.day]),
        )?;
        let raw = RawStore::open(RawConfig {
            dir: config.data_dir.join("flows"),
            keep: r.raw,
            max_bytes: r.raw_max_bytes,
        })?;
        let (graph, _) = Actor::spawn(
            Some("graph".into()),
            Graph,
            GraphArgs {
                config: GraphConfig {
                    internal_networks: config.graph.internal_networks.clone(),
                    idle_expiry: config.graph.idle_expiry,
                    stats_interval: config.graph.stats_interval,
                    max_edges_per_event: config.graph.max_edges_per_event,
                    discovery_rate: config.graph.discovery_rate,
                },
                sink: Arc::new(LogSink(log.clone())),
                known,
                rollups: Some(rollups.clone() as Arc<dyn RollupSink>),
            },
        )
        .await?;
        if config.cluster.enabled() {
            cluster_tasks.push(follow_others(&log, graph.clone(), config.node_id));
        }
        let advisor = if config.advisories.enabled {
            let mut active = Vec::new();
            for record in projection.advisories() {
                let record = record?;
                if record.status == "active" {
                    active.push(record.advisory.id);
                }
            }
            let (advisor, _) = Actor::spawn(
                Some("advisor".into()),
                Advisor,
                AdvisorArgs {
                    config: AdvisorConfig {
                        thresholds: config
                            .advisories
                            .thresholds(&config.graph.internal_networks),
                        expire: config.advisories.expire,
                    },
                    sink: Arc::new(LogSink(log.clone())),
                    active,
                    graph: graph.clone(),
                },
            )
            .await?;
            Some(advisor)
        } else {
            None
        };
        let (aggregator, _) = Actor::spawn(
            Some("aggregator".into()),
            Aggregator,
            AggregatorArgs {
                config: AggregatorConfig {
                    recent_flows: config.aggregator.recent_flows,
                    flush_interval: config.aggregator.flush_interval,
                    window: config.aggregator.window,
                },
                graph: graph.clone(),
                raw: Some(raw.clone() as Arc<dyn RawSink>),
                advisor: advisor.clone(),
            },
        )
        .await?;
        let lane = Lane::new(config.collector.queue_batches, config.collector.queue_flows);
        let relay = actors::relay::Relay::start(&config.relay)
            .context("cannot start the relay (relay targets)")?;
        let (collector, _) = Actor::spawn(
            Some("collector".into()),
            Collector,
            CollectorArgs {
                config: CollectorConfig {
                    listeners: config.collector.listen.clone(),
                    recv_buffer_bytes: config.collector.recv_buffer_bytes,
                    batch_datagrams: config.collector.batch_datagrams,
                    state_dir: Some(config.data_dir.join("collector")),
                },
                lane: lane.clone(),
                relay: relay.clone(),
                aggregator: aggregator.clone(),
            },
        )
        .await
        .context("cannot start the collector")?;
        let collector_addrs = ractor::call!(collector, CollectorMsg::LocalAddrs)?;
        cluster_tasks.push(
            crate::alerting::Alerting {
                log: log.clone(),
                projection: projection.clone(),
                config: config.alerting.clone(),
                notifiers: config.notifiers.clone(),
                internal_networks: config.graph.internal_networks.clone(),
                stats_interval: config.graph.stats_interval,
                node_id: config.node_id,
            }
            .spawn(),
        );
        let analysis = crate::analysis::AnalysisCache::default();
        cluster_tasks.push(crate::classifier::spawn(
            log.clone(),
            projection.clone(),
            analysis.clone(),
            config.classification.clone(),
            config.node_id,
        ));
        let tls = match (&config.api.tls_cert, &config.api.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
            _ => None,
        };
        let member_tls = match (&tls, &config.api.tls_ca, &config.api.tls_cert) {
            (Some(_), Some(ca), _) | (Some(_), None, Some(ca)) => {
                Some(crate::tls::member_client(ca)?)
            }
            _ => None,
        };
        let state = AppState {
            projection,
            log: log.clone(),
            collector: collector.clone(),
            aggregator: aggregator.clone(),
            graph: graph.clone(),
            lane,
            started,
            max_page: config.api.max_page,
            raw: raw.clone(),
            rollups,
            ring_capacity: config.aggregator.recent_flows,
            raw_hot: config.retention.raw_hot,
            disk_reads: Arc::new(tokio::sync::Semaphore::new(api::DISK_READS)),
            federation: config
                .federation
                .enabled()
                .then(|| config.federation.clone()),
            analysis,
            classification: config.classification.clone(),
            notifiers: config.notifiers.clone(),
            cluster_name: config.cluster.name.as_str().into(),
            config: Arc::new(api::about::redacted(&config)),
            auth: config.auth.clone(),
            limits: crate::auth::Limits::default(),
            relay,
            tls: tls.is_some(),
            usage: Arc::default(),
            member_tls,
        };
        let listener = tokio::net::TcpListener::bind(config.api.listen)
            .await
            .with_context(|| format!("cannot listen on api.listen {}", config.api.listen))?;
        let api_addr = listener.local_addr()?;
        let (stop_api, stopped) = tokio::sync::oneshot::channel::<()>();
        let bootstrap = tokio::spawn(crate::auth::bootstrap(
            state.clone(),
            config.data_dir.clone(),
            config.auth.bootstrap_token.clone(),
        ));
        let guard = tokio::spawn(crate::housekeeping::disk_guard(
            state.clone(),
            config.data_dir.clone(),
            config.retention.min_free_bytes,
            raw.clone(),
        ));
        let retention = tokio::spawn(crate::housekeeping::retention(
            state.clone(),
            config.data_dir.clone(),
            config.retention.events,
            state.usage.clone(),
        ));
        let app = api::router(state);
        let server = match tls {
            Some(tls) => tokio::spawn(crate::tls::serve(listener, tls, app, async move {
                let _ = stopped.await;
            })),
            None => tokio::spawn(async move {
                let serve = axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                )
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "api server failed");
                }
            }),
        };
        Ok(Node {
            api_addr,
            collector_addrs,
            db,
            log,
            collector,
            aggregator,
            graph,
            advisor,
            raw,
            server,
            stop_api,
            cluster_tasks: {
                let mut tasks = cluster_tasks;
                tasks.push(bootstrap);
                tasks.push(guard);
                tasks.push(retention);
                tasks
            },
        })
    }

    /// Stops in the order that loses nothing committed or received.
    pub async fn stop(self) -> anyhow::Result<()> {
        let timeout = Some(Duration::from_secs(30));
        let _ = self
            .collector
            .call(CollectorMsg::StopReading, timeout)
            .await;
        let flushed = self.aggregator.call(AggregatorMsg::Flush, timeout).await;
        if let Err(e) = flushed {
            tracing::error!(error = %e, "final flush failed");
        }
        let raw = self.raw.clone();
        if !matches!(
            tokio::task::spawn_blocking(move || raw.flush(Duration::from_secs(10))).await,
            Ok(true)
        ) {
            tracing::error!("raw flows: final flush failed");
        }
        let _ = self.stop_api.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
        self.collector.stop(None);
        self.aggregator.stop(None);
        self.graph.stop(None);
        if let Some(advisor) = &self.advisor {
            advisor.stop(None);
        }
        for task in &self.cluster_tasks {
            task.abort();
        }
        // Cancelled tasks drop what they hold (store handles) only once awaited.
        for task in self.cluster_tasks {
            let _ = task.await;
        }
        self.log.shutdown().await?;
        self.db.flush_async().await?;
        tracing::info!("stopped cleanly");
        Ok(())
    }
}

/// Waits for SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Runs a node until SIGINT/SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let node = Node::start(config).await?;
    let collectors: Vec<String> = node
        .collector_addrs
        .iter()
        .map(|a| format!("udp://{a}"))
        .collect();
    println!(
        "FlowLens node ready: API http://{}/api/v1 · collectors {}",
        node.api_addr,
        collectors.join(" ")
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    node.stop().await
}

/// Drops the rollup trees older versions kept in sled (rollups now live in files): their pages
/// cost memory for as long as they exist.
fn drop_sled_rollups(db: &sled::Db) {
    for name in ["rollup_1m", "rollup_1h", "rollup_1d", "rollup_meta"] {
        match db.drop_tree(name) {
            Ok(true) => tracing::info!(tree = name, "dropped the old rollup tree"),
            Ok(false) => {}
            Err(e) => tracing::warn!(tree = name, error = %e, "cannot drop the old rollup tree"),
        }
    }
}
