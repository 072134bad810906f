//! The call graph impact analysis runs on, built from the projection and kept until the
//! projection changes: one build serves every analysis request until the next applied log entry.
//! Builds run on a blocking thread, one at a time; concurrent requests wait for it, and a
//! periodic pass's gentle build goes at full speed while a request waits.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};

use actors::analysis::{CallEdge, CallGraph, Spof};
use proto::api::Status;
use proto::classify::{Environment, RuleSet};
use proto::impact::GraphSize;

use crate::pace::{Pacer, Waiting};
use crate::store::{Projection, StoreError};

/// Most entries the critical-dependency sets of the SPOF report may hold together (about 80 MB);
/// only very deep chains of single dependencies reach it.
pub const CRITICAL_BUDGET: usize = 20_000_000;

/// The share of a core a periodic pass (the classifier's) builds its graph with: at 200 k
/// dependencies a build takes about half a CPU-second, which at full speed, once a minute,
/// made collection beside it lose flows.
pub const BACKGROUND_SHARE: f64 = 0.25;

/// One built graph and what was derived from it.
pub struct AnalysisGraph {
    /// The graph.
    pub graph: CallGraph,
    /// Each node's tier, as an index into `tier_names`.
    tiers: Vec<u16>,
    tier_names: Vec<String>,
    /// Its size and when it was built.
    pub size: GraphSize,
    spof: OnceLock<Option<Arc<SpofTable>>>,
}

/// The single points of failure of a graph, with every asset's critical dependencies.
pub struct SpofTable {
    /// Worst first.
    pub spofs: Vec<Spof>,
    /// Per node, the nodes whose failure alone breaks it.
    pub critical: Vec<Vec<u32>>,
}

impl AnalysisGraph {
    /// Builds the graph of the projection's dependencies (active ones unless `include_expired`)
    /// at the pace of `pacer`, one step per dependency and asset.
    pub fn build(
        projection: &Projection,
        applied_index: u64,
        include_expired: bool,
        pacer: &mut Pacer,
    ) -> Result<AnalysisGraph, StoreError> {
        // Streamed into the graph, not collected first: the graph keeps 12 bytes per edge.
        let mut failed = None;
        let edges = projection
            .dependencies()
            .inspect(|_| pacer.step())
            .map_while(|d| d.map_err(|e| failed = Some(e)).ok())
            .filter(|d| include_expired || d.status == Status::Active)
            .map(|d| CallEdge {
                client: d.key.client,
                server: d.key.service.ip,
                port: d.key.service.port,
                protocol: d.key.service.protocol,
            });
        let graph = CallGraph::new(edges);
        if let Some(e) = failed {
            return Err(e);
        }
        // An asset's tier is its environment when a classification rule gives one, otherwise
        // internal or external.
        let rules = RuleSet::new(
            projection
                .classification_rules()
                .collect::<Result<_, _>>()?,
        );
        let mut tier_names = vec!["internal".to_string(), "external".to_string()];
        tier_names.extend(Environment::ALL.iter().map(|e| e.name().to_string()));
        let mut tiers = vec![1u16; graph.len()];
        for (node, tier) in tiers.iter_mut().enumerate() {
            pacer.step();
            let ip = graph.ip(node as u32);
            let class = rules.classify(ip);
            let internal = match class.internal {
                Some(internal) => internal,
                None => projection.asset(ip)?.is_some_and(|a| a.internal),
            };
            *tier = match class.environment {
                Some(env) => {
                    2 + Environment::ALL.iter().position(|e| *e == env).unwrap_or(0) as u16
                }
                None => u16::from(!internal),
            };
        }
        let size = GraphSize {
            assets: graph.len() as u64,
            dependencies: graph.edge_count() as u64,
            applied_index,
            include_expired,
        };
        Ok(AnalysisGraph {
            graph,
            tiers,
            tier_names,
            size,
            spof: OnceLock::new(),
        })
    }

    /// The tier name of a node.
    pub fn tier(&self, node: u32) -> &str {
        self.tier_names[usize::from(self.tiers[node as usize])].as_str()
    }

    /// The single points of failure, computed on first use; `None` past [`CRITICAL_BUDGET`].
    pub fn spof(&self) -> Option<Arc<SpofTable>> {
        self.spof
            .get_or_init(|| {
                let critical = self.graph.critical_dependencies(CRITICAL_BUDGET)?;
                let spofs = self.graph.single_points_of_failure(&critical);
                Some(Arc::new(SpofTable { spofs, critical }))
            })
            .clone()
    }
}

/// The latest built graphs (active dependencies only, and with expired ones).
#[derive(Clone, Default)]
pub struct AnalysisCache {
    slots: Arc<tokio::sync::Mutex<[Option<Arc<AnalysisGraph>>; 2]>>,
    /// Requests waiting for the slots: a paced build under way hurries while any do.
    waiting: Arc<AtomicUsize>,
}

impl AnalysisCache {
    /// The graph as of `applied_index`, built (and kept for the next request) if the cached
    /// one is older.
    pub async fn graph(
        &self,
        projection: &Projection,
        applied_index: u64,
        include_expired: bool,
    ) -> Result<Arc<AnalysisGraph>, String> {
        self.get(projection, applied_index, include_expired, true)
            .await
    }

    /// [`AnalysisCache::graph`] for a periodic pass: the cached graph when it is current,
    /// otherwise one built for this pass alone and not kept (under a steady flow stream the log
    /// moves on before the next request, and a large network's graph is tens of MB).
    pub async fn graph_once(
        &self,
        projection: &Projection,
        applied_index: u64,
    ) -> Result<Arc<AnalysisGraph>, String> {
        self.get(projection, applied_index, false, false).await
    }

    async fn get(
        &self,
        projection: &Projection,
        applied_index: u64,
        include_expired: bool,
        keep: bool,
    ) -> Result<Arc<AnalysisGraph>, String> {
        // A request counts as waiting until it has the slots: without this, one that came
        // during the classifier's paced build waited for all of it (about 2 s at 200 k
        // dependencies).
        let waiting = keep.then(|| Waiting::new(&self.waiting));
        let mut slots = self.slots.lock().await;
        drop(waiting);
        let slot = &mut slots[usize::from(include_expired)];
        if let Some(g) = slot
            .as_ref()
            .filter(|g| g.size.applied_index == applied_index)
        {
            return Ok(g.clone());
        }
        let projection = projection.clone();
        let waiting = self.waiting.clone();
        // A periodic pass's graph is built gently; one a request waits for, at full speed.
        let built = tokio::task::spawn_blocking(move || {
            let mut pacer = if keep {
                Pacer::unlimited()
            } else {
                Pacer::new(BACKGROUND_SHARE).hurried_by(waiting)
            };
            AnalysisGraph::build(&projection, applied_index, include_expired, &mut pacer)
        })
        .await
        .map_err(|e| format!("analysis graph build failed: {e}"))?
        .map_err(|e| format!("analysis graph build failed: {e}"))?;
        let built = Arc::new(built);
        if keep {
            *slot = Some(built.clone());
        } else if slot
            .as_ref()
            .is_some_and(|g| g.size.applied_index < applied_index)
        {
            // Outdated by now: no later request can use it.
            *slot = None;
        }
        Ok(built)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;

    async fn until_waiting(cache: &AnalysisCache, n: usize) {
        for _ in 0..500 {
            if cache.waiting.load(Ordering::Acquire) == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never {n} waiting");
    }

    #[tokio::test]
    async fn a_request_counts_as_waiting_until_it_has_the_cache_or_gives_up() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let db = sled::open(dir.path()).expect("sled");
        let projection = Projection::open(&db).expect("projection");
        let cache = AnalysisCache::default();

        // As while a periodic pass builds: the slots are held.
        let held = cache.slots.lock().await;
        let (c, p) = (cache.clone(), projection.clone());
        let request = tokio::spawn(async move { c.graph(&p, 0, false).await.map(|g| g.size) });
        until_waiting(&cache, 1).await;
        drop(held);
        let size = request.await.expect("joined").expect("built");
        assert_eq!((size.assets, size.dependencies), (0, 0));
        assert_eq!(cache.waiting.load(Ordering::Acquire), 0);

        // Given up while waiting (the client went away): no longer counted.
        let held = cache.slots.lock().await;
        let (c, p) = (cache.clone(), projection.clone());
        let request = tokio::spawn(async move { c.graph(&p, 0, true).await.map(|g| g.size) });
        until_waiting(&cache, 1).await;
        request.abort();
        assert!(request.await.is_err(), "the request was cancelled");
        assert_eq!(cache.waiting.load(Ordering::Acquire), 0);

        // A periodic pass waiting for the slots does not hurry anything.
        let (c, p) = (cache.clone(), projection.clone());
        let pass = tokio::spawn(async move { c.graph_once(&p, 1).await.map(|g| g.size) });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(cache.waiting.load(Ordering::Acquire), 0);
        drop(held);
        let size = pass.await.expect("joined").expect("built");
        assert_eq!(size.applied_index, 1);
    }
}
