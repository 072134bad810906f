//! Alert rules and alerts over the API: rules created, replaced and deleted as events; alerts
//! listed, acknowledged and resolved as events; the configured notifiers (ids and kinds only,
//! never their secrets).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use proto::advisory::Severity;
use proto::alert::{AlertAction, AlertRecord, AlertRule, AlertRuleInput};
use proto::api::Page;
use proto::event::EventKind;
use serde::{Deserialize, Serialize};

use super::params::{bad, json_body, page_of, Failure, Params};
use super::rules::commit;
use super::scope::Scope;
use super::AppState;

type Pairs = Query<Vec<(String, String)>>;

/// Most alert rules a node keeps.
pub const MAX_ALERT_RULES: usize = 1_000;

fn notifier_ids(s: &AppState) -> Vec<String> {
    s.notifiers.iter().map(|n| n.id.clone()).collect()
}

fn existing_rule(s: &AppState, id: &str) -> Result<AlertRule, Failure> {
    s.projection
        .alert_rule(id)?
        .ok_or_else(|| Failure::NotFound(format!("no alert rule {id}")))
}

/// Every alert rule.
#[utoipa::path(get, path = "/api/v1/alert-rules", tag = "alerts",
    responses((status = 200, body = Vec<AlertRule>)))]
pub async fn list_rules(State(s): State<AppState>) -> Result<Json<Vec<AlertRule>>, Failure> {
    let mut rules: Vec<AlertRule> = s.projection.alert_rules().collect::<Result<_, _>>()?;
    rules.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.id.cmp(&b.id)));
    Ok(Json(rules))
}

/// Creates an alert rule.
#[utoipa::path(post, path = "/api/v1/alert-rules", tag = "alerts", request_body = AlertRuleInput,
    responses((status = 201, body = AlertRule), (status = 400, body = proto::api::ApiError)))]
pub async fn create_rule(
    State(s): State<AppState>,
    input: Result<Json<AlertRuleInput>, JsonRejection>,
) -> Result<(StatusCode, Json<AlertRule>), Failure> {
    let rule = json_body(input)?
        .into_rule(
            crate::store::new_id(),
            None,
            actors::now_ms(),
            &notifier_ids(&s),
        )
        .map_err(|e| bad(e.field, e.why))?;
    if s.projection.alert_rules().count() >= MAX_ALERT_RULES {
        return Err(bad(
            "body",
            format!("at most {MAX_ALERT_RULES} alert rules"),
        ));
    }
    commit(
        &s,
        EventKind::AlertRuleSet {
            rule: Box::new(rule.clone()),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(rule)))
}

/// One alert rule.
#[utoipa::path(get, path = "/api/v1/alert-rules/{id}", tag = "alerts", params(("id" = String, Path)),
    responses((status = 200, body = AlertRule), (status = 404, body = proto::api::ApiError)))]
pub async fn get_rule(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AlertRule>, Failure> {
    existing_rule(&s, &id).map(Json)
}

/// Replaces an alert rule.
#[utoipa::path(put, path = "/api/v1/alert-rules/{id}", tag = "alerts", params(("id" = String, Path)),
    request_body = AlertRuleInput,
    responses((status = 200, body = AlertRule), (status = 400, body = proto::api::ApiError),
        (status = 404, body = proto::api::ApiError)))]
pub async fn replace_rule(
    State(s): State<AppState>,
    Path(id): Path<String>,
    input: Result<Json<AlertRuleInput>, JsonRejection>,
) -> Result<Json<AlertRule>, Failure> {
    let input = json_body(input)?;
    let old = existing_rule(&s, &id)?;
    let rule = input
        .into_rule(
            id,
            Some(old.created_ms),
            actors::now_ms(),
            &notifier_ids(&s),
        )
        .map_err(|e| bad(e.field, e.why))?;
    commit(
        &s,
        EventKind::AlertRuleSet {
            rule: Box::new(rule.clone()),
        },
    )
    .await?;
    Ok(Json(rule))
}

/// Deletes an alert rule (its alerts stay).
#[utoipa::path(delete, path = "/api/v1/alert-rules/{id}", tag = "alerts", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = proto::api::ApiError)))]
pub async fn delete_rule(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, Failure> {
    existing_rule(&s, &id)?;
    commit(&s, EventKind::AlertRuleDeleted { id: id.into() }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists alerts, most severe and newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts",
    params(("status" = Option<String>, Query, description = "open, acknowledged, resolved, unresolved (default: open and acknowledged) or all"),
        ("severity" = Option<String>, Query, description = "At least this severity"),
        ("rule" = Option<String>, Query, description = "Only alerts of this rule id"),
        ("offset" = Option<u64>, Query), ("limit" = Option<u64>, Query, description = "Page size, default 100")),
    responses((status = 200, body = Page<AlertRecord>), (status = 400, body = proto::api::ApiError)))]
pub async fn list_alerts(
    State(s): State<AppState>,
    scope: Scope,
    Query(q): Pairs,
) -> Result<Json<Page<AlertRecord>>, Failure> {
    let mut p = Params::new(q)?;
    let status = p
        .choice(
            "status",
            &["open", "acknowledged", "resolved", "unresolved", "all"],
        )?
        .unwrap_or("unresolved");
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
    let rule: Option<String> = p.parse("rule", "a rule id")?;
    let (offset, limit) = p.page(100, s.max_page)?;
    p.finish()?;
    let mut items = Vec::new();
    for record in s.projection.alerts() {
        let record = record?;
        let status_ok = match status {
            "all" => true,
            "unresolved" => record.status != "resolved",
            st => record.status == st,
        };
        if status_ok
            && scope.sees_subject(&record.alert.subject)
            && severity.is_none_or(|min| record.alert.severity <= min)
            && rule.as_deref().is_none_or(|r| record.alert.rule_id == r)
        {
            items.push(record);
        }
    }
    items.sort_by(|a, b| {
        a.alert
            .severity
            .cmp(&b.alert.severity)
            .then(b.alert.at_ms.cmp(&a.alert.at_ms))
            .then(a.alert.id.cmp(&b.alert.id))
    });
    Ok(Json(page_of(items, offset, limit)))
}

/// One alert, with its notification outcomes.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", params(("id" = String, Path)),
    responses((status = 200, body = AlertRecord), (status = 404, body = proto::api::ApiError)))]
pub async fn get_alert(
    State(s): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Json<AlertRecord>, Failure> {
    visible(&s, &scope, &id).map(Json)
}

/// Alert `id`, if it exists and `scope` sees its subject.
fn visible(s: &AppState, scope: &Scope, id: &str) -> Result<AlertRecord, Failure> {
    let record = s
        .projection
        .alert(id)?
        .ok_or_else(|| Failure::NotFound(format!("no alert {id}")))?;
    if !scope.sees_subject(&record.alert.subject) {
        return Err(Failure::Forbidden(format!(
            "alert {id} is about {}, outside this role's scope ({})",
            record.alert.subject,
            scope.describe()
        )));
    }
    Ok(record)
}

/// Who acts on an alert, and a note (both optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertActionInput {
    /// Who (until users arrive, free text; default `api`).
    #[serde(default)]
    pub by: Option<String>,
    /// A note.
    #[serde(default)]
    pub note: Option<String>,
}

async fn act(
    s: AppState,
    id: String,
    input: axum::body::Bytes,
    resolve: bool,
) -> Result<Json<AlertRecord>, Failure> {
    let input: AlertActionInput = if input.iter().all(u8::is_ascii_whitespace) {
        AlertActionInput::default()
    } else {
        serde_json::from_slice(&input).map_err(|e| bad("body", e.to_string()))?
    };
    let record = s
        .projection
        .alert(&id)?
        .ok_or_else(|| Failure::NotFound(format!("no alert {id}")))?;
    let clean = |v: Option<String>, field: &str| -> Result<Option<String>, Failure> {
        match v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
            Some(v) if v.chars().count() > 500 || v.chars().any(char::is_control) => {
                Err(bad(field, "at most 500 characters, no control characters"))
            }
            v => Ok(v),
        }
    };
    let action = AlertAction {
        id: id.clone(),
        by: clean(input.by, "by")?.unwrap_or_else(|| "api".into()),
        note: clean(input.note, "note")?,
    };
    let change = if resolve {
        (record.status != "resolved").then(|| EventKind::AlertResolved {
            action: Box::new(action),
        })
    } else if record.status == "open" {
        Some(EventKind::AlertAcknowledged {
            action: Box::new(action),
        })
    } else {
        return Err(bad(
            "id",
            format!("alert {id} is {} already", record.status),
        ));
    };
    if let Some(kind) = change {
        commit(&s, kind).await?;
    }
    get_alert(State(s), Scope::default(), Path(id)).await
}

/// Acknowledges an open alert.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "alerts", params(("id" = String, Path)),
    request_body = Option<AlertActionInput>,
    responses((status = 200, body = AlertRecord), (status = 400, body = proto::api::ApiError),
        (status = 404, body = proto::api::ApiError)))]
pub async fn acknowledge(
    State(s): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    input: axum::body::Bytes,
) -> Result<Json<AlertRecord>, Failure> {
    visible(&s, &scope, &id)?;
    act(s, id, input, false).await
}

/// Resolves an alert (resolving a resolved one changes nothing).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", tag = "alerts", params(("id" = String, Path)),
    request_body = Option<AlertActionInput>,
    responses((status = 200, body = AlertRecord), (status = 404, body = proto::api::ApiError)))]
pub async fn resolve(
    State(s): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    input: axum::body::Bytes,
) -> Result<Json<AlertRecord>, Failure> {
    visible(&s, &scope, &id)?;
    act(s, id, input, true).await
}

/// A configured notifier, without its secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotifierInfo {
    /// Its id.
    pub id: String,
    /// `webhook`, `slack`, `teams` or `email`.
    pub kind: String,
}

/// The configured notifiers.
#[utoipa::path(get, path = "/api/v1/notifiers", tag = "alerts",
    responses((status = 200, body = Vec<NotifierInfo>)))]
pub async fn notifiers(State(s): State<AppState>) -> Json<Vec<NotifierInfo>> {
    Json(
        s.notifiers
            .iter()
            .map(|n| NotifierInfo {
                id: n.id.clone(),
                kind: serde_json::to_value(n.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            })
            .collect(),
    )
}
