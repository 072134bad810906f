//! Classification rules over the API: create, read, replace and delete (each change an event
//! committed through the log), and what the rules say about one address. Rules are applied to
//! assets when the API answers, so a rule change re-classifies every asset at once, and the map
//! as of a past moment shows the rules of that moment.

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use proto::api::Asset;
use proto::classify::{Classification, ClassificationRule, RuleInput, RuleSet};
use proto::event::{Event, EventBatch, EventKind};
use serde::{Deserialize, Serialize};

use super::params::{bad, json_body, parse_ip, Failure};
use super::AppState;
use crate::store::Projection;

/// Most classification rules a node keeps.
pub const MAX_RULES: usize = 10_000;

/// The rules of a projection, indexed.
pub fn rule_set(projection: &Projection) -> Result<RuleSet, Failure> {
    Ok(RuleSet::new(
        projection
            .classification_rules()
            .collect::<Result<Vec<_>, _>>()?,
    ))
}

/// Fills in what the rules say about an asset; a rule's internal flag overrides the one
/// decided at discovery.
pub fn classify(rules: &RuleSet, asset: &mut Asset) {
    let class = rules.classify(asset.ip);
    if class.rule_id.is_some() {
        if let Some(internal) = class.internal {
            asset.internal = internal;
        }
        asset.classification = Some(class);
    }
}

/// Commits one event and waits until this node has applied it (a follower applies the leader's
/// entry a moment later), so that the answer and the next read agree.
pub async fn commit(s: &AppState, kind: EventKind) -> Result<(), Failure> {
    commit_all(s, vec![kind]).await
}

/// Commits events together in one log entry (applied atomically), and waits as [`commit`] does.
pub async fn commit_all(s: &AppState, kinds: Vec<EventKind>) -> Result<(), Failure> {
    let at_ms = actors::now_ms();
    let batch = EventBatch::new(
        kinds
            .into_iter()
            .map(|kind| Event { at_ms, kind })
            .collect(),
    );
    let index = s.log.append(&batch).await.map_err(|e| match e {
        crate::raft::LogError::NoLeader { .. } | crate::raft::LogError::Forward { .. } => {
            Failure::Unavailable(e.to_string())
        }
        e => Failure::Internal(e.to_string()),
    })?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.log.applied_index() < index {
        if tokio::time::Instant::now() >= deadline {
            return Err(Failure::Unavailable(format!(
                "committed at log index {index} but not yet applied on this node"
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn invalid(e: proto::classify::RuleError) -> Failure {
    bad(e.field, e.why)
}

/// Every classification rule, longest prefix first, then by priority.
#[utoipa::path(get, path = "/api/v1/classification-rules", tag = "classification",
    responses((status = 200, body = Vec<ClassificationRule>)))]
pub async fn list(State(s): State<AppState>) -> Result<Json<Vec<ClassificationRule>>, Failure> {
    let mut rules: Vec<ClassificationRule> = s
        .projection
        .classification_rules()
        .collect::<Result<_, _>>()?;
    let prefix =
        |r: &ClassificationRule| proto::classify::parse_cidr(&r.cidr).map_or(0, |n| n.prefix_len());
    rules.sort_by(|a, b| {
        prefix(b)
            .cmp(&prefix(a))
            .then(a.priority.cmp(&b.priority))
            .then(a.cidr.cmp(&b.cidr))
            .then(a.id.cmp(&b.id))
    });
    Ok(Json(rules))
}

/// Creates a rule; answers it with its id.
#[utoipa::path(post, path = "/api/v1/classification-rules", tag = "classification",
    request_body = RuleInput,
    responses((status = 201, body = ClassificationRule), (status = 400, body = proto::api::ApiError)))]
pub async fn create(
    State(s): State<AppState>,
    input: Result<Json<RuleInput>, JsonRejection>,
) -> Result<(StatusCode, Json<ClassificationRule>), Failure> {
    let rule = json_body(input)?
        .into_rule(crate::store::new_id(), None, actors::now_ms())
        .map_err(invalid)?;
    if s.projection.classification_rules().count() >= MAX_RULES {
        return Err(bad("body", format!("at most {MAX_RULES} rules")));
    }
    commit(
        &s,
        EventKind::ClassificationRuleSet {
            rule: Box::new(rule.clone()),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

fn existing(s: &AppState, id: &str) -> Result<ClassificationRule, Failure> {
    s.projection
        .classification_rule(id)?
        .ok_or_else(|| Failure::NotFound(format!("no classification rule {id}")))
}

/// One rule.
#[utoipa::path(get, path = "/api/v1/classification-rules/{id}", tag = "classification",
    params(("id" = String, Path)),
    responses((status = 200, body = ClassificationRule), (status = 404, body = proto::api::ApiError)))]
pub async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ClassificationRule>, Failure> {
    existing(&s, &id).map(Json)
}

/// Replaces a rule (its id and creation time stay).
#[utoipa::path(put, path = "/api/v1/classification-rules/{id}", tag = "classification",
    params(("id" = String, Path)), request_body = RuleInput,
    responses((status = 200, body = ClassificationRule), (status = 400, body = proto::api::ApiError),
        (status = 404, body = proto::api::ApiError)))]
pub async fn replace(
    State(s): State<AppState>,
    Path(id): Path<String>,
    input: Result<Json<RuleInput>, JsonRejection>,
) -> Result<Json<ClassificationRule>, Failure> {
    let input = json_body(input)?;
    let old = existing(&s, &id)?;
    let rule = input
        .into_rule(id, Some(old.created_ms), actors::now_ms())
        .map_err(invalid)?;
    commit(
        &s,
        EventKind::ClassificationRuleSet {
            rule: Box::new(rule.clone()),
        },
    )
    .await?;
    Ok(Json(rule))
}

/// Deletes a rule.
#[utoipa::path(delete, path = "/api/v1/classification-rules/{id}", tag = "classification",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = proto::api::ApiError)))]
pub async fn delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    existing(&s, &id)?;
    commit(&s, EventKind::ClassificationRuleDeleted { id: id.into() }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the rules say about an address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClassifyAnswer {
    /// The address.
    #[schema(value_type = String)]
    pub ip: IpAddr,
    /// The deciding rule and its attributes (all empty when no rule covers it).
    pub classification: Classification,
    /// Every rule covering the address, the deciding one first.
    pub matching: Vec<ClassificationRule>,
    /// Whether the address is an asset of the map.
    pub known_asset: bool,
}

/// Classifies an address with the current rules (whether or not it was ever seen).
#[utoipa::path(get, path = "/api/v1/classification-rules/classify/{ip}", tag = "classification",
    params(("ip" = String, Path)),
    responses((status = 200, body = ClassifyAnswer), (status = 400, body = proto::api::ApiError)))]
pub async fn classify_ip(
    State(s): State<AppState>,
    Path(ip): Path<String>,
) -> Result<Json<ClassifyAnswer>, Failure> {
    let ip = parse_ip("ip", &ip)?;
    let rules = rule_set(&s.projection)?;
    let classification = rules.classify(ip);
    let mut matching: Vec<ClassificationRule> = rules
        .rules()
        .iter()
        .filter(|r| proto::classify::parse_cidr(&r.cidr).is_some_and(|n| n.contains(&ip)))
        .cloned()
        .collect();
    matching.sort_by_key(|r| {
        (
            r.id.as_str() != classification.rule_id.as_deref().unwrap_or_default(),
            std::cmp::Reverse(proto::classify::parse_cidr(&r.cidr).map_or(0, |n| n.prefix_len())),
            r.priority,
        )
    });
    Ok(Json(ClassifyAnswer {
        ip,
        classification,
        matching,
        known_asset: s.projection.asset(ip)?.is_some(),
    }))
}
