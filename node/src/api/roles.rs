//! Asset roles over the API: what is in force and why (`GET /assets/{ip}/role`, with what the
//! traffic suggests right now), and a role set by hand (`PUT`), committed as an event; a manual
//! role wins over the classifier's until cleared with `{"role": null}`.

use std::collections::HashMap;
use std::net::IpAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use proto::event::EventKind;
use proto::role::{AssetRole, ManualRole, Role, RoleInput, RoleReport};

use super::params::{bad, json_body, parse_ip, Failure};
use super::AppState;
use crate::store::Projection;

/// The role in force of every asset that has one.
pub fn roles_of(projection: &Projection) -> Result<HashMap<IpAddr, AssetRole>, Failure> {
    let mut roles = HashMap::new();
    for item in projection.roles() {
        let (ip, record) = item?;
        if let Some(role) = record.effective() {
            roles.insert(ip, role);
        }
    }
    Ok(roles)
}

/// An asset's role: in force, set, applied, and suggested by its traffic now.
#[utoipa::path(get, path = "/api/v1/assets/{ip}/role", tag = "map",
    params(("ip" = String, Path)),
    responses((status = 200, body = RoleReport), (status = 404, body = proto::api::ApiError)))]
pub async fn role(
    State(s): State<AppState>,
    scope: super::scope::Scope,
    Path(ip): Path<String>,
) -> Result<Json<RoleReport>, Failure> {
    let ip = parse_ip("ip", &ip)?;
    scope.check(&ip)?;
    let asset = s
        .projection
        .asset(ip)?
        .ok_or_else(|| Failure::NotFound(format!("no asset {ip}")))?;
    let record = s.projection.role(ip)?;
    let graph = s
        .analysis
        .graph(&s.projection, s.log.applied_index(), false)
        .await
        .map_err(Failure::Internal)?;
    let candidates = graph
        .graph
        .node(ip)
        .map(|n| graph.graph.role_guesses(n))
        .unwrap_or_default();
    Ok(Json(RoleReport {
        ip,
        effective: record.effective(),
        manual: record.manual,
        inferred: record.inferred,
        candidates,
        observed_ms: actors::now_ms().saturating_sub(asset.first_seen_ms),
        min_observation_ms: u64::try_from(s.classification.min_observation.as_millis())
            .unwrap_or(u64::MAX),
        min_confidence_pct: (s.classification.min_confidence * 100.0).round() as u8,
    }))
}

/// Sets an asset's role by hand (it wins over the inferred one), or clears it with `null`.
#[utoipa::path(put, path = "/api/v1/assets/{ip}/role", tag = "map",
    params(("ip" = String, Path)), request_body = RoleInput,
    responses((status = 200, body = RoleReport), (status = 400, body = proto::api::ApiError),
        (status = 404, body = proto::api::ApiError)))]
pub async fn set_role(
    State(s): State<AppState>,
    scope: super::scope::Scope,
    Path(ip): Path<String>,
    input: Result<Json<RoleInput>, JsonRejection>,
) -> Result<Json<RoleReport>, Failure> {
    let parsed = parse_ip("ip", &ip)?;
    scope.check(&parsed)?;
    let input = json_body(input)?;
    let role = match input.role.as_deref() {
        None => None,
        Some(name) => Some(Role::parse(name).ok_or_else(|| {
            let names: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
            bad(
                "role",
                format!("`{name}` is not one of {}, or null", names.join(", ")),
            )
        })?),
    };
    if s.projection.asset(parsed)?.is_none() {
        return Err(Failure::NotFound(format!("no asset {parsed}")));
    }
    super::rules::commit(
        &s,
        EventKind::AssetRoleSet {
            manual: Box::new(ManualRole { ip: parsed, role }),
        },
    )
    .await?;
    self::role(State(s), scope, Path(ip)).await
}
