//! Following what other nodes (and federated sites) committed: their traffic and discoveries
//! keep this node's view alive, their expiries end it here too.

use proto::event::{DependencyKey, EventBatch, EventKind};

use super::{GraphState, Seen};

impl GraphState {
    /// Takes in a batch another node committed. Its traffic and discoveries keep this node's
    /// view of those assets, services and dependencies alive, so that this node does not expire
    /// what only another node's collectors see. Its expiries end them here too. No event is
    /// emitted: the batch is committed already.
    pub fn follow(&mut self, batch: &EventBatch) {
        for e in &batch.events {
            match &e.kind {
                EventKind::DependencyTraffic { edges } => {
                    for edge in edges {
                        self.refresh(edge.dependency, e.at_ms);
                    }
                }
                EventKind::DependencyDiscovered { dependency } => {
                    self.refresh(*dependency, e.at_ms)
                }
                EventKind::AssetDiscovered { ip, .. } => {
                    self.node(*ip);
                    if let Some((_, seen)) = self.assets.get_mut(ip) {
                        seen.last_ms = seen.last_ms.max(e.at_ms);
                        seen.active = true;
                    }
                }
                EventKind::ServiceDiscovered { service, .. } => {
                    let seen = self.services.entry(*service).or_insert(Seen::NEVER);
                    seen.last_ms = seen.last_ms.max(e.at_ms);
                    seen.active = true;
                }
                EventKind::DependencyExpired { dependency } => {
                    if let Some(dep) = self.dependencies.get_mut(dependency) {
                        dep.active = false;
                        if let Some(edge) = dep.edge.take() {
                            self.graph.remove_edge(edge);
                        }
                    }
                }
                EventKind::ServiceExpired { service } => {
                    if let Some(seen) = self.services.get_mut(service) {
                        seen.active = false;
                    }
                }
                EventKind::AssetExpired { ip } => {
                    if let Some((_, seen)) = self.assets.get_mut(ip) {
                        seen.active = false;
                    }
                }
                // Rules change how assets are described, not whether they are alive.
                EventKind::ClassificationRuleSet { .. }
                | EventKind::ClassificationRuleDeleted { .. }
                | EventKind::AssetRoleInferred { .. }
                | EventKind::AssetRoleSet { .. }
                | EventKind::AdvisoryRaised { .. }
                | EventKind::AdvisoryResolved { .. }
                | EventKind::AlertRuleSet { .. }
                | EventKind::AlertRuleDeleted { .. }
                | EventKind::AlertRaised { .. }
                | EventKind::AlertAcknowledged { .. }
                | EventKind::AlertResolved { .. }
                | EventKind::AlertNotified { .. }
                | EventKind::UserSet { .. }
                | EventKind::UserDeleted { .. }
                | EventKind::CredentialIssued { .. }
                | EventKind::CredentialRevoked { .. }
                | EventKind::AuditRecorded { .. } => {}
            }
        }
    }

    /// Marks a dependency, its service and its assets active and seen at `at`, silently.
    fn refresh(&mut self, key: DependencyKey, at: u64) {
        for ip in [key.client, key.service.ip] {
            self.node(ip);
            if let Some((_, seen)) = self.assets.get_mut(&ip) {
                seen.last_ms = seen.last_ms.max(at);
                seen.active = true;
            }
        }
        let service = self.services.entry(key.service).or_insert(Seen::NEVER);
        service.last_ms = service.last_ms.max(at);
        service.active = true;
        // Whoever committed this announced it.
        let (position, _) = self.activate(key, at);
        if let Some((_, dep)) = self.dependencies.get_index_mut(position) {
            dep.announced = true;
        }
    }
}
