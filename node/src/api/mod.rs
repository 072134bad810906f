//! The REST API (axum, `/api/v1`, JSON): the map from the projection, live statistics from the
//! actors, health, Prometheus metrics at `/metrics` and the OpenAPI document at
//! `/api/v1/openapi.json`. Bad parameters get a 400 naming the parameter.

pub mod about;
pub mod access;
pub mod advisories;
pub mod alerts;
pub mod analysis;
pub mod export;
pub mod history;
pub mod live;
pub mod map;
pub mod params;
pub mod roles;
pub mod rules;
pub mod scope;
pub mod stream;
pub mod ui;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::aggregator::AggregatorMsg;
use actors::collector::CollectorMsg;
use actors::graph::GraphMsg;
use actors::lane::Lane;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router};
use ractor::ActorRef;
use utoipa::OpenApi;

use crate::raft::EventLog;
use crate::store::raw::RawStore;
use crate::store::Projection;
use params::Failure;

/// Disk reads of raw flows that may run at once (each on a blocking thread).
pub const DISK_READS: usize = 2;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The projection (reads).
    pub projection: Projection,
    /// The event log (health, metrics).
    pub log: Arc<EventLog>,
    /// The collector (exporters).
    pub collector: ActorRef<CollectorMsg>,
    /// The aggregator (flows, statistics).
    pub aggregator: ActorRef<AggregatorMsg>,
    /// The graph (counts).
    pub graph: ActorRef<GraphMsg>,
    /// The lane in front of the aggregator (drop counters).
    pub lane: Lane,
    /// When the node started.
    pub started: Instant,
    /// Largest page size.
    pub max_page: usize,
    /// The raw flows on disk (flow queries reaching back past the ring, metrics).
    pub raw: Arc<RawStore>,
    /// The rollups (metrics).
    pub rollups: Arc<crate::store::rollups::Rollups>,
    /// Most flows the in-memory ring holds (`aggregator.recent_flows`).
    pub ring_capacity: usize,
    /// How far back the in-memory ring answers flow queries (`retention.raw_hot`).
    pub raw_hot: Duration,
    /// Disk reads of raw flows running at once are bounded (each may scan millions of
    /// records); further ones wait their turn.
    pub disk_reads: Arc<tokio::sync::Semaphore>,
    /// The sites this node federates, if it does.
    pub federation: Option<crate::config::FederationSection>,
    /// The call graph impact analysis runs on, rebuilt when the projection changes.
    pub analysis: crate::analysis::AnalysisCache,
    /// Behavioural classification settings (role answers).
    pub classification: crate::config::ClassificationSection,
    /// The configured notifiers (alert rules name them).
    pub notifiers: Vec<crate::alerting::notify::NotifierConfig>,
    /// The cluster's name.
    pub cluster_name: Arc<str>,
    /// The configuration with its secrets hidden (the about answer).
    pub config: Arc<serde_json::Value>,
    /// Access control settings.
    pub auth: crate::config::AuthSection,
    /// Per-client request and sign-in limits.
    pub limits: crate::auth::Limits,
    /// The API is served over TLS (session cookies are then `Secure`).
    pub tls: bool,
    /// The flow relay (its counters).
    pub relay: actors::relay::Relay,
    /// The data directory's usage and the history's retention (metrics).
    pub usage: Arc<crate::housekeeping::Usage>,
    /// With TLS on: how this node checks other members' API certificates (cluster page).
    pub member_tls: Option<Arc<rustls::ClientConfig>>,
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "FlowLens API",
        description = "Flow collector and application dependency map."
    ),
    paths(
        map::assets,
        map::asset,
        map::asset_services,
        map::asset_dependencies,
        map::services,
        map::dependencies,
        map::dependency,
        map::topology,
        live::flows,
        live::throughput,
        live::top_talkers,
        live::protocols,
        live::exporters,
        live::relay,
        live::live,
        about::about,
        access::login,
        access::logout,
        access::me,
        access::state,
        access::password,
        access::tokens,
        access::create_token,
        access::revoke_token,
        access::users,
        access::create_user,
        access::update_user,
        access::delete_user,
        access::audit,
        live::ready,
        history::events,
        history::diff,
        history::rebuild,
        analysis::downstream,
        analysis::upstream,
        analysis::blast_radius,
        analysis::what_if,
        analysis::spof,
        analysis::critical,
        analysis::path,
        rules::list,
        rules::create,
        rules::get,
        rules::replace,
        rules::delete,
        rules::classify_ip,
        roles::role,
        roles::set_role,
        advisories::list,
        alerts::list_rules,
        alerts::create_rule,
        alerts::get_rule,
        alerts::replace_rule,
        alerts::delete_rule,
        alerts::list_alerts,
        alerts::get_alert,
        alerts::acknowledge,
        alerts::resolve,
        alerts::notifiers,
        stream::stream,
        export::allow_list,
        crate::federation::federation
    ),
    components(schemas(proto::event::Event, proto::event::EventBatch))
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn not_found() -> Failure {
    Failure::NotFound("no such API route".into())
}

/// The router with every route.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/assets", get(map::assets))
        .route("/assets/{ip}", get(map::asset))
        .route("/assets/{ip}/services", get(map::asset_services))
        .route("/assets/{ip}/dependencies", get(map::asset_dependencies))
        .route("/assets/{ip}/role", get(roles::role).put(roles::set_role))
        .route("/services", get(map::services))
        .route("/dependencies", get(map::dependencies))
        .route("/dependencies/{*id}", get(map::dependency))
        .route("/topology", get(map::topology))
        .route("/topology/diff", get(history::diff))
        .route("/history/events", get(history::events))
        .route("/admin/rebuild", axum::routing::post(history::rebuild))
        .route("/federation", get(crate::federation::federation))
        .route("/analysis/downstream/{ip}", get(analysis::downstream))
        .route("/analysis/upstream/{ip}", get(analysis::upstream))
        .route("/analysis/blast-radius/{ip}", get(analysis::blast_radius))
        .route("/analysis/what-if", get(analysis::what_if))
        .route("/analysis/spof", get(analysis::spof))
        .route("/analysis/critical/{ip}", get(analysis::critical))
        .route("/analysis/path", get(analysis::path))
        .route("/advisories", get(advisories::list))
        .route(
            "/alert-rules",
            get(alerts::list_rules).post(alerts::create_rule),
        )
        .route(
            "/alert-rules/{id}",
            get(alerts::get_rule)
                .put(alerts::replace_rule)
                .delete(alerts::delete_rule),
        )
        .route("/alerts", get(alerts::list_alerts))
        .route("/alerts/{id}", get(alerts::get_alert))
        .route(
            "/alerts/{id}/acknowledge",
            axum::routing::post(alerts::acknowledge),
        )
        .route("/alerts/{id}/resolve", axum::routing::post(alerts::resolve))
        .route("/notifiers", get(alerts::notifiers))
        .route("/events/stream", get(stream::stream))
        .route("/export/allow-list", get(export::allow_list))
        .route(
            "/classification-rules",
            get(rules::list).post(rules::create),
        )
        .route(
            "/classification-rules/{id}",
            get(rules::get).put(rules::replace).delete(rules::delete),
        )
        .route(
            "/classification-rules/classify/{ip}",
            get(rules::classify_ip),
        )
        .route("/flows", get(live::flows))
        .route("/stats/throughput", get(live::throughput))
        .route("/stats/top-talkers", get(live::top_talkers))
        .route("/stats/protocols", get(live::protocols))
        .route("/exporters", get(live::exporters))
        .route("/relay", get(live::relay))
        .route("/health/live", get(live::live))
        .route("/about", get(about::about))
        .route("/auth/login", axum::routing::post(access::login))
        .route("/auth/logout", axum::routing::post(access::logout))
        .route("/auth/me", get(access::me))
        .route("/auth/state", get(access::state))
        .route("/auth/password", axum::routing::post(access::password))
        .route("/tokens", get(access::tokens).post(access::create_token))
        .route("/tokens/{id}", axum::routing::delete(access::revoke_token))
        .route("/users", get(access::users).post(access::create_user))
        .route(
            "/users/{name}",
            axum::routing::put(access::update_user).delete(access::delete_user),
        )
        .route("/audit", get(access::audit))
        .route("/health/ready", get(live::ready))
        .route("/openapi.json", get(openapi))
        .fallback(not_found);
    Router::new()
        .nest("/api/v1", api)
        .route("/metrics", get(live::metrics))
        .fallback(ui::serve)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::guard,
        ))
        .layer(DefaultBodyLimit::max(64 * 1024))
        // Internal failures log themselves with their cause (`Failure::Internal`); a 503 from
        // readiness or an overloaded node is an answer, not an error to log on every probe.
        .layer(
            tower_http::trace::TraceLayer::new_for_http().on_failure(
                tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
            ),
        )
        .with_state(state)
}
