//! The projection's rules, roles, advisories and alerts: their part of the fold (classification
//! and alert rules, inferred and manual roles, advisories raised and resolved, alerts raised,
//! acknowledged, resolved and notified) and their readers.

use std::net::IpAddr;

use proto::advisory::AdvisoryRecord;
use proto::alert::{AlertRecord, AlertRule};
use proto::classify::ClassificationRule;
use proto::event::EventKind;
use proto::role::RoleRecord;

use super::projection::{
    abort, decoded, Fold, Projection, TxResult, ADVISORIES, ALERTS, CLASSIFICATION_PREFIX, ROLES,
    RULES,
};
use super::{from_value, keys, to_value, StoreError};

/// Key prefix of alert rules in the rules tree.
const ALERT_RULE_PREFIX: &[u8] = b"a/";
/// Key prefix of alert records in the alerts tree (`r/<alert id>`).
const ALERT_PREFIX: &[u8] = b"r/";
/// Key prefix of the open-alert index (`o/<rule id> 0x1f <subject>` → alert id): one open alert
/// per rule and subject, however many nodes raise it.
const OPEN_PREFIX: &[u8] = b"o/";

fn alert_key(id: &str) -> Vec<u8> {
    [ALERT_PREFIX, id.as_bytes()].concat()
}

fn open_key(rule_id: &str, subject: &str) -> Vec<u8> {
    [OPEN_PREFIX, rule_id.as_bytes(), b"\x1f", subject.as_bytes()].concat()
}

pub(super) fn classification_key(id: &str) -> Vec<u8> {
    [CLASSIFICATION_PREFIX, id.as_bytes()].concat()
}

fn alert_rule_key(id: &str) -> Vec<u8> {
    [ALERT_RULE_PREFIX, id.as_bytes()].concat()
}

impl Fold<'_> {
    /// Applies an event that is not about the map itself.
    pub(super) fn fact(&mut self, at: u64, kind: &EventKind) -> TxResult<()> {
        match kind {
            EventKind::ClassificationRuleSet { rule } => {
                self.rules
                    .insert(classification_key(&rule.id), to_value(rule.as_ref()))?;
                Ok(())
            }
            EventKind::ClassificationRuleDeleted { id } => {
                self.rules.remove(classification_key(id))?;
                Ok(())
            }
            EventKind::AssetRoleInferred { inferred } => {
                let mut record = self.role(inferred.ip)?;
                record.inferred.clone_from(&inferred.guess);
                record.inferred_ms = at;
                self.put_role(inferred.ip, &record)
            }
            EventKind::AdvisoryRaised { advisory } => {
                let key = advisory.id.as_bytes();
                let old: Option<AdvisoryRecord> = self
                    .advisories
                    .get(key)?
                    .map(|v| from_value(ADVISORIES, &v).map_err(abort))
                    .transpose()?;
                if old.as_ref().is_some_and(|r| r.status == "active") {
                    // Raised again while active (another node found it too): one is enough.
                    return Ok(());
                }
                let record = AdvisoryRecord {
                    advisory: advisory.as_ref().clone(),
                    status: "active".into(),
                    raised_ms: at,
                    resolved_ms: 0,
                    resolution: None,
                    times_raised: old.map_or(1, |r| r.times_raised.saturating_add(1)),
                };
                self.advisories.insert(key, to_value(&record))?;
                Ok(())
            }
            EventKind::AdvisoryResolved { resolution } => {
                let key = resolution.id.as_bytes();
                if let Some(mut record) = self
                    .advisories
                    .get(key)?
                    .map(|v| from_value::<AdvisoryRecord>(ADVISORIES, &v).map_err(abort))
                    .transpose()?
                {
                    if record.status == "active" {
                        record.status = "resolved".into();
                        record.resolved_ms = at;
                        record.resolution = Some(resolution.reason.clone());
                        self.advisories.insert(key, to_value(&record))?;
                    }
                }
                Ok(())
            }
            EventKind::AssetRoleSet { manual } => {
                let mut record = self.role(manual.ip)?;
                record.manual = manual.role;
                record.manual_ms = at;
                self.put_role(manual.ip, &record)
            }
            EventKind::AlertRuleSet { rule } => {
                self.rules
                    .insert(alert_rule_key(&rule.id), to_value(rule.as_ref()))?;
                Ok(())
            }
            EventKind::AlertRuleDeleted { id } => {
                self.rules.remove(alert_rule_key(id))?;
                Ok(())
            }
            EventKind::AlertRaised { alert } => {
                let open = open_key(&alert.rule_id, &alert.subject);
                // Another node raised it first: the open alert stands for both.
                if self.alerts.get(&open)?.is_none()
                    && self.alerts.get(alert_key(&alert.id))?.is_none()
                {
                    self.alerts.insert(open, alert.id.as_bytes())?;
                    let record = AlertRecord {
                        alert: alert.as_ref().clone(),
                        status: "open".into(),
                        acknowledged: None,
                        acknowledged_ms: 0,
                        resolved: None,
                        resolved_ms: 0,
                        deliveries: Vec::new(),
                    };
                    self.alerts
                        .insert(alert_key(&alert.id), to_value(&record))?;
                }
                Ok(())
            }
            EventKind::AlertAcknowledged { action } => self.update_alert(&action.id, |r| {
                if r.status == "open" {
                    r.status = "acknowledged".into();
                    r.acknowledged = Some(action.as_ref().clone());
                    r.acknowledged_ms = at;
                }
            }),
            EventKind::AlertResolved { action } => {
                let mut index = None;
                self.update_alert(&action.id, |r| {
                    if r.status != "resolved" {
                        r.status = "resolved".into();
                        r.resolved = Some(action.as_ref().clone());
                        r.resolved_ms = at;
                        index = Some(open_key(&r.alert.rule_id, &r.alert.subject));
                    }
                })?;
                if let Some(key) = index {
                    self.alerts.remove(key)?;
                }
                Ok(())
            }
            EventKind::AlertNotified { delivery } => self.update_alert(&delivery.alert_id, |r| {
                r.deliveries.retain(|d| d.notifier != delivery.notifier);
                r.deliveries.push(delivery.as_ref().clone());
            }),
            // The map's own events are folded by `Fold::apply`.
            EventKind::UserSet { .. }
            | EventKind::UserDeleted { .. }
            | EventKind::CredentialIssued { .. }
            | EventKind::CredentialRevoked { .. } => self.access_fact(at, kind),
            _ => Ok(()),
        }
    }

    fn update_alert(&self, id: &str, change: impl FnOnce(&mut AlertRecord)) -> TxResult<()> {
        if let Some(mut record) = self
            .alerts
            .get(alert_key(id))?
            .map(|v| from_value::<AlertRecord>(ALERTS, &v).map_err(abort))
            .transpose()?
        {
            change(&mut record);
            self.alerts.insert(alert_key(id), to_value(&record))?;
        }
        Ok(())
    }

    fn role(&self, ip: IpAddr) -> TxResult<RoleRecord> {
        Ok(self
            .roles
            .get(keys::asset(ip))?
            .map(|v| from_value(ROLES, &v).map_err(abort))
            .transpose()?
            .unwrap_or_default())
    }

    fn put_role(&self, ip: IpAddr, record: &RoleRecord) -> TxResult<()> {
        if *record == RoleRecord::default() {
            self.roles.remove(keys::asset(ip))?;
        } else {
            self.roles.insert(keys::asset(ip), to_value(record))?;
        }
        Ok(())
    }
}

impl Projection {
    /// Every classification rule, in id order.
    pub fn classification_rules(
        &self,
    ) -> impl Iterator<Item = Result<ClassificationRule, StoreError>> + '_ {
        decoded(RULES, self.rules.scan_prefix(CLASSIFICATION_PREFIX))
    }

    /// One classification rule.
    pub fn classification_rule(&self, id: &str) -> Result<Option<ClassificationRule>, StoreError> {
        self.rules
            .get(classification_key(id))?
            .map(|v| from_value(RULES, &v))
            .transpose()
    }

    /// Every advisory (active and resolved), by id.
    pub fn advisories(&self) -> impl Iterator<Item = Result<AdvisoryRecord, StoreError>> + '_ {
        decoded(ADVISORIES, self.advisories.iter())
    }

    /// What is known about an asset's role.
    pub fn role(&self, ip: IpAddr) -> Result<RoleRecord, StoreError> {
        Ok(self
            .roles
            .get(keys::asset(ip))?
            .map(|v| from_value(ROLES, &v))
            .transpose()?
            .unwrap_or_default())
    }

    /// Every asset's role record, by address.
    pub fn roles(&self) -> impl Iterator<Item = Result<(IpAddr, RoleRecord), StoreError>> + '_ {
        self.roles.iter().map(|item| {
            let (k, v) = item?;
            let (ip, _) = keys::read_ip(&k).ok_or_else(|| StoreError::BadValue {
                tree: ROLES,
                why: "key is not an address".into(),
            })?;
            Ok((ip, from_value(ROLES, &v)?))
        })
    }

    /// Every alert rule, in id order.
    pub fn alert_rules(&self) -> impl Iterator<Item = Result<AlertRule, StoreError>> + '_ {
        decoded(RULES, self.rules.scan_prefix(ALERT_RULE_PREFIX))
    }

    /// One alert rule.
    pub fn alert_rule(&self, id: &str) -> Result<Option<AlertRule>, StoreError> {
        self.rules
            .get(alert_rule_key(id))?
            .map(|v| from_value(RULES, &v))
            .transpose()
    }

    /// Every alert, in id order.
    pub fn alerts(&self) -> impl Iterator<Item = Result<AlertRecord, StoreError>> + '_ {
        decoded(ALERTS, self.alerts.scan_prefix(ALERT_PREFIX))
    }

    /// The id of the open alert of a rule for a subject, if there is one.
    pub fn open_alert(&self, rule_id: &str, subject: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .alerts
            .get(open_key(rule_id, subject))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// One alert.
    pub fn alert(&self, id: &str) -> Result<Option<AlertRecord>, StoreError> {
        self.alerts
            .get(alert_key(id))?
            .map(|v| from_value(ALERTS, &v))
            .transpose()
    }
}
