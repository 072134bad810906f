//! Alerting: each applied batch is matched against the enabled alert rules (condition, scope,
//! maintenance windows) by the node that committed it (a federation node takes its sites'
//! batches), so every batch is looked at once whatever the leadership does. A match with no open
//! alert for the same rule and subject raises one (an `AlertRaised` event); should two nodes
//! raise the same, the projection keeps the first. Alerts raised by an advisory resolve with it.
//! The node whose raise was kept tells the rule's notifiers, retrying with doubling waits, and
//! commits each outcome (`AlertNotified`): a failure is visible on the alert, never dropped
//! silently. Acknowledging and resolving by users go through the API.

pub mod notify;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use proto::alert::{Alert, AlertAction, AlertCondition, AlertRule, Delivery};
use proto::classify::RuleSet;
use proto::event::{Event, EventBatch, EventKind};
use tokio::sync::broadcast::error::RecvError;

use crate::config::AlertingSection;
use crate::raft::EventLog;
use crate::store::Projection;
use notify::NotifierConfig;

/// What the alerting task needs.
#[derive(Clone)]
pub struct Alerting {
    /// The event log (applied batches in, alerts out).
    pub log: Arc<EventLog>,
    /// The projection (rules, open alerts, classification).
    pub projection: Projection,
    /// Delivery settings.
    pub config: AlertingSection,
    /// The notifiers rules may name.
    pub notifiers: Vec<NotifierConfig>,
    /// Networks counted as internal besides RFC 1918 / RFC 4193.
    pub internal_networks: Vec<IpNet>,
    /// How long one traffic event covers (the graph's stats interval).
    pub stats_interval: Duration,
    /// This node.
    pub node_id: u64,
}

/// One thing an event says that a rule may fire on.
struct Candidate {
    condition: &'static str,
    subject: String,
    summary: String,
    ips: Vec<IpAddr>,
    port: Option<u16>,
    advisory: Option<proto::advisory::Severity>,
    bytes_per_s: u64,
}

impl Alerting {
    fn candidates(&self, event: &Event) -> Vec<Candidate> {
        let mut out = Vec::new();
        let plain =
            |condition, subject: String, summary: String, ips: Vec<IpAddr>, port| Candidate {
                condition,
                subject,
                summary,
                ips,
                port,
                advisory: None,
                bytes_per_s: 0,
            };
        match &event.kind {
            EventKind::AssetDiscovered { ip, internal } => out.push(plain(
                "new_asset",
                ip.to_string(),
                format!(
                    "new {} asset {ip}",
                    if *internal { "internal" } else { "external" }
                ),
                vec![*ip],
                None,
            )),
            EventKind::AssetExpired { ip } => out.push(plain(
                "asset_removed",
                ip.to_string(),
                format!("asset {ip} has not been seen for the idle time"),
                vec![*ip],
                None,
            )),
            EventKind::DependencyDiscovered { dependency: d } => {
                let (client, server) = (d.client, d.service.ip);
                let ips = vec![client, server];
                let port = Some(d.service.port);
                out.push(plain(
                    "new_dependency",
                    d.id(),
                    format!("new dependency: {client} calls {}", d.service.id()),
                    ips.clone(),
                    port,
                ));
                let internal = |ip| actors::graph::is_internal(ip, &self.internal_networks);
                if internal(client) && !internal(server) {
                    out.push(plain(
                        "new_external_destination",
                        d.id(),
                        format!(
                            "{client} calls external {} for the first time",
                            d.service.id()
                        ),
                        ips,
                        port,
                    ));
                }
            }
            EventKind::DependencyExpired { dependency: d } => out.push(plain(
                "dependency_removed",
                d.id(),
                format!(
                    "dependency vanished: {} has not called {} for the idle time",
                    d.client,
                    d.service.id()
                ),
                vec![d.client, d.service.ip],
                Some(d.service.port),
            )),
            EventKind::AdvisoryRaised { advisory } => {
                let ips = advisory
                    .subject
                    .split(['>', ':', '/'])
                    .filter_map(|p| p.parse().ok())
                    .collect();
                out.push(Candidate {
                    condition: "advisory",
                    subject: advisory.id.clone(),
                    summary: format!("{}: {}", advisory.severity.name(), advisory.summary),
                    ips,
                    port: None,
                    advisory: Some(advisory.severity),
                    bytes_per_s: 0,
                });
            }
            EventKind::DependencyTraffic { edges } => {
                let secs = self.stats_interval.as_secs_f64().max(0.001);
                for e in edges {
                    let t = &e.traffic;
                    let bytes = t.bytes_to_server.saturating_add(t.bytes_to_client);
                    let rate = (bytes as f64 / secs) as u64;
                    out.push(Candidate {
                        condition: "traffic",
                        subject: e.dependency.id(),
                        summary: format!(
                            "{} carried {rate} bytes/s over the last stats period",
                            e.dependency.id()
                        ),
                        ips: vec![e.dependency.client, e.dependency.service.ip],
                        port: Some(e.dependency.service.port),
                        advisory: None,
                        bytes_per_s: rate,
                    });
                }
            }
            _ => {}
        }
        out
    }

    fn matches(&self, rule: &AlertRule, c: &Candidate, at_ms: u64, classes: &RuleSet) -> bool {
        let condition_ok = match &rule.condition {
            AlertCondition::Advisory { min_severity } => {
                c.advisory.is_some_and(|s| s <= *min_severity)
            }
            AlertCondition::Traffic { min_bytes_per_s } => {
                c.condition == "traffic" && c.bytes_per_s >= *min_bytes_per_s
            }
            other => other.name() == c.condition,
        };
        let scope = &rule.scope;
        let cidr_ok = scope.cidr.as_deref().is_none_or(|cidr| {
            proto::classify::parse_cidr(cidr).is_some_and(|n| c.ips.iter().any(|ip| n.contains(ip)))
        });
        let port_ok = scope.port.is_none_or(|p| c.port == Some(p));
        let env_ok = scope.environment.is_none_or(|env| {
            c.ips
                .iter()
                .any(|ip| classes.classify(*ip).environment == Some(env))
        });
        rule.enabled && condition_ok && cidr_ok && port_ok && env_ok && !rule.in_maintenance(at_ms)
    }

    /// The alert events one applied batch calls for; `open` holds the (rule, subject) of every
    /// open alert, and is updated with those raised here.
    fn evaluate(
        &self,
        batch: &EventBatch,
        rules: &[AlertRule],
        open: &mut HashMap<(String, String), String>,
    ) -> Result<Vec<Event>, String> {
        let now = actors::now_ms();
        let mut events = Vec::new();
        let classes = if rules.iter().any(|r| r.scope.environment.is_some()) {
            RuleSet::new(
                self.projection
                    .classification_rules()
                    .collect::<Result<_, _>>()
                    .map_err(|e| e.to_string())?,
            )
        } else {
            RuleSet::default()
        };
        let watches_traffic = rules
            .iter()
            .any(|r| r.enabled && matches!(r.condition, AlertCondition::Traffic { .. }));
        for event in &batch.events {
            if let EventKind::AdvisoryResolved { resolution } = &event.kind {
                let done: Vec<(String, String)> = open
                    .keys()
                    .filter(|(_, subject)| *subject == resolution.id)
                    .cloned()
                    .collect();
                for key in done {
                    if let Some(id) = open.remove(&key) {
                        events.push(Event {
                            at_ms: now,
                            kind: EventKind::AlertResolved {
                                action: Box::new(AlertAction {
                                    id,
                                    by: "flowlens".into(),
                                    note: Some(format!("advisory resolved: {}", resolution.reason)),
                                }),
                            },
                        });
                    }
                }
                continue;
            }
            // Traffic events name every active dependency each period: only look at them when
            // a rule watches traffic.
            if matches!(event.kind, EventKind::DependencyTraffic { .. }) && !watches_traffic {
                continue;
            }
            for c in self.candidates(event) {
                for rule in rules {
                    if !self.matches(rule, &c, event.at_ms, &classes) {
                        continue;
                    }
                    let key = (rule.id.clone(), c.subject.clone());
                    if open.contains_key(&key) {
                        continue;
                    }
                    let id = crate::store::new_id();
                    open.insert(key, id.clone());
                    events.push(Event {
                        at_ms: now,
                        kind: EventKind::AlertRaised {
                            alert: Box::new(Alert {
                                id,
                                rule_id: rule.id.clone(),
                                rule_name: rule.name.clone(),
                                severity: rule.severity,
                                subject: c.subject.clone(),
                                summary: c.summary.clone(),
                                cause: event.kind.name().to_string(),
                                at_ms: event.at_ms,
                            }),
                        },
                    });
                }
            }
        }
        Ok(events)
    }

    /// Tells every notifier of the alert's rule, retrying; commits each outcome.
    fn notify(&self, alert: Alert) {
        let Ok(Some(rule)) = self.projection.alert_rule(&alert.rule_id) else {
            return;
        };
        for id in rule.notify {
            let Some(notifier) = self.notifiers.iter().find(|n| n.id == id).cloned() else {
                continue;
            };
            let (log, config, alert) = (self.log.clone(), self.config.clone(), alert.clone());
            tokio::spawn(async move {
                let mut wait = config.retry_base;
                for attempt in 1..=config.max_attempts {
                    let result = notify::deliver(&notifier, &alert, config.timeout).await;
                    let done = result.is_ok() || attempt == config.max_attempts;
                    if let Err(e) = &result {
                        tracing::warn!(alert = %alert.id, notifier = %notifier.id, attempt, error = %e, "notification failed");
                    }
                    let outcome = Delivery {
                        alert_id: alert.id.clone(),
                        notifier: notifier.id.clone(),
                        ok: result.is_ok(),
                        attempts: attempt,
                        error: result.err(),
                        done,
                    };
                    let batch = EventBatch::new(vec![Event {
                        at_ms: actors::now_ms(),
                        kind: EventKind::AlertNotified {
                            delivery: Box::new(outcome),
                        },
                    }]);
                    if let Err(e) = log.append(&batch).await {
                        tracing::error!(alert = %alert.id, error = %e, "cannot record a notification outcome");
                    }
                    if done {
                        return;
                    }
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                }
            });
        }
    }

    fn open_alerts(&self) -> Result<HashMap<(String, String), String>, String> {
        let mut open = HashMap::new();
        for record in self.projection.alerts() {
            let record = record.map_err(|e| e.to_string())?;
            if record.status != "resolved" {
                open.insert(
                    (record.alert.rule_id.clone(), record.alert.subject.clone()),
                    record.alert.id.clone(),
                );
            }
        }
        Ok(open)
    }

    /// Runs until aborted.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        let mut applied = self.log.subscribe_applied();
        tokio::spawn(async move {
            let mut open = match self.open_alerts() {
                Ok(open) => open,
                Err(e) => {
                    tracing::error!(error = %e, "alerting cannot read the open alerts; not running");
                    return;
                }
            };
            let mut notified: HashSet<String> = HashSet::new();
            loop {
                let (origin, batch) = match applied.recv().await {
                    Ok(applied) => (applied.origin, applied.batch),
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(
                            batches = n,
                            "alerting fell behind the log; those batches were not checked"
                        );
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                // Keep the open set in step with every node's alerts.
                for event in &batch.events {
                    match &event.kind {
                        EventKind::AlertRaised { alert } => {
                            // The projection keeps the first raise for a rule and subject.
                            let key = (alert.rule_id.clone(), alert.subject.clone());
                            match self.projection.open_alert(&key.0, &key.1) {
                                Ok(Some(kept)) => {
                                    open.insert(key, kept);
                                }
                                Ok(None) => {}
                                Err(e) => {
                                    tracing::error!(error = %e, "alerting cannot read the open alerts")
                                }
                            }
                        }
                        EventKind::AlertResolved { action } => {
                            open.retain(|_, id| *id != action.id)
                        }
                        _ => {}
                    }
                }
                // Batches without an origin were written before origins existed: the leader's.
                let mine = match origin {
                    Some(o) => {
                        o.node == self.node_id || o.node & crate::federation::SITE_ORIGIN != 0
                    }
                    None => self.log.metrics().current_leader == Some(self.node_id),
                };
                if !mine {
                    continue;
                }
                for event in &batch.events {
                    if let EventKind::AlertRaised { alert } = &event.kind {
                        // Only the raise the projection kept is notified.
                        let kept = matches!(self.projection.alert(&alert.id), Ok(Some(_)));
                        if kept && notified.insert(alert.id.clone()) {
                            self.notify(alert.as_ref().clone());
                        }
                    }
                }
                let rules: Vec<AlertRule> = match self.projection.alert_rules().collect() {
                    Ok(rules) => rules,
                    Err(e) => {
                        tracing::error!(error = %e, "alerting cannot read its rules");
                        continue;
                    }
                };
                if rules.is_empty()
                    && !batch
                        .events
                        .iter()
                        .any(|e| matches!(e.kind, EventKind::AdvisoryResolved { .. }))
                {
                    continue;
                }
                match self.evaluate(&batch, &rules, &mut open) {
                    Ok(events) if !events.is_empty() => {
                        if let Err(e) = self.log.append(&EventBatch::new(events)).await {
                            tracing::error!(error = %e, "alerting could not commit alerts");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "alerting failed on a batch"),
                }
            }
        })
    }
}
