//! Advisories over the API: the findings the advisor raised, most severe and newest first.

use axum::extract::{Query, State};
use axum::Json;
use proto::advisory::{AdvisoryRecord, Severity};
use proto::api::Page;

use super::params::{bad, page_of, Failure, Params};
use super::AppState;

type Pairs = Query<Vec<(String, String)>>;

/// Lists advisories.
#[utoipa::path(get, path = "/api/v1/advisories", tag = "advisories",
    params(("status" = Option<String>, Query, description = "active (default), resolved or all"),
        ("severity" = Option<String>, Query, description = "At least this severity: CRITICAL, WARNING or INFO"),
        ("kind" = Option<String>, Query, description = "top_talker, port_scan, host_sweep, insecure_protocol, traffic_spike, traffic_drop, dns_volume, flow_asymmetry"),
        ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query, description = "Page size, default 100")),
    responses((status = 200, body = Page<AdvisoryRecord>), (status = 400, body = proto::api::ApiError)))]
pub async fn list(
    State(s): State<AppState>,
    scope: super::scope::Scope,
    Query(q): Pairs,
) -> Result<Json<Page<AdvisoryRecord>>, Failure> {
    let mut p = Params::new(q)?;
    let status = p
        .choice("status", &["active", "resolved", "all"])?
        .unwrap_or("active");
    let severity = p
        .parse::<String>("severity", "a severity")?
        .map(|v| {
            Severity::parse(&v).ok_or_else(|| {
                bad(
                    "severity",
                    format!("`{v}` is not CRITICAL, WARNING or INFO"),
                )
            })
        })
        .transpose()?;
    let kind = p.choice(
        "kind",
        &[
            "top_talker",
            "port_scan",
            "host_sweep",
            "insecure_protocol",
            "traffic_spike",
            "traffic_drop",
            "dns_volume",
            "flow_asymmetry",
        ],
    )?;
    let (offset, limit) = p.page(100, s.max_page)?;
    p.finish()?;
    let mut items = Vec::new();
    for record in s.projection.advisories() {
        let record = record?;
        if (status == "all" || record.status == status)
            && scope.sees_subject(&record.advisory.subject)
            && severity.is_none_or(|min| record.advisory.severity <= min)
            && kind.is_none_or(|k| record.advisory.kind.name() == k)
        {
            items.push(record);
        }
    }
    items.sort_by(|a, b| {
        a.advisory
            .severity
            .cmp(&b.advisory.severity)
            .then(b.raised_ms.cmp(&a.raised_ms))
            .then(a.advisory.id.cmp(&b.advisory.id))
    });
    Ok(Json(page_of(items, offset, limit)))
}
