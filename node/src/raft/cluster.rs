//! A node's part in a cluster beyond Raft's own RPCs: forwarding a follower's event batches to
//! the leader, and the admin protocol (`init`, `add-node`, `remove-node`, `status`) that the
//! `flowlens admin` command speaks over NATS.
//!
//! Subjects: `flowlens.<cluster>.raft.<node>.write` takes a forwarded batch (MessagePack);
//! `flowlens.<cluster>.admin.<node>` asks one node and `flowlens.<cluster>.admin.all` every
//! running node (each answers: [`discover`] gathers them), both in JSON so that operators can
//! also use the `nats` CLI. Membership changes sent to a follower are passed on to the leader.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_nats::{Client, RequestErrorKind};
use futures_util::StreamExt;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, Raft, RaftMetrics};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::nats::node_subject;
use super::{LogPayload, TypeConfig};

/// The last token of a forwarded write's subject.
pub const WRITE: &str = "write";

/// How long a forwarded write may take (commit on the leader included) before it is sent again
/// (a batch sent twice is applied once: see `super::Origin`).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an admin request may take (adding a node waits for it to catch up).
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);

/// How long adding a node waits for it to answer at all (it may be starting).
const NODE_START_WAIT: Duration = Duration::from_secs(15);

/// How long [`discover`] waits for more answers after the last one.
const DISCOVER_QUIET: Duration = Duration::from_millis(300);

/// The subject on which every node of `cluster` answers admin requests.
pub fn admin_all_subject(cluster: &str) -> String {
    format!("flowlens.{cluster}.admin.all")
}

/// The subject on which node `node` of `cluster` answers admin requests.
pub fn admin_node_subject(cluster: &str, node: u64) -> String {
    format!("flowlens.{cluster}.admin.{node}")
}

/// Why a forwarded write was not committed by the node it was sent to.
#[derive(Clone, Debug, Serialize, Deserialize, thiserror::Error)]
#[error("node {node} did not commit the batch: {why}")]
pub struct WriteRefused {
    /// The node that refused.
    pub node: u64,
    /// The leader it knows of, when it is not the leader itself (try there).
    pub leader: Option<u64>,
    /// What it said.
    pub why: String,
}

/// Why forwarding a batch to the leader failed.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The leader is not subscribed (down, or not started): nothing was committed.
    #[error("leader {0} is unreachable (no responders)")]
    Unreachable(u64),
    /// The node asked is not (or no longer) the leader: nothing was committed.
    #[error("{0}")]
    Refused(WriteRefused),
    /// The request or its reply failed; the batch may or may not have been committed.
    #[error("forwarding to leader {leader} failed: {why}")]
    Failed {
        /// The leader asked.
        leader: u64,
        /// What failed.
        why: String,
    },
}

/// Sends a follower's batches to the leader over NATS.
#[derive(Clone, Debug)]
pub struct Forwarder {
    client: Client,
    cluster: String,
}

impl Forwarder {
    /// A forwarder for `cluster` over `client`.
    pub fn new(client: Client, cluster: impl Into<String>) -> Forwarder {
        Forwarder {
            client,
            cluster: cluster.into(),
        }
    }

    /// Asks `leader` to commit `payload`; its log index once committed there.
    pub async fn write(&self, leader: u64, payload: &LogPayload) -> Result<u64, ForwardError> {
        let failed = |why: String| ForwardError::Failed { leader, why };
        let subject = format!("{}.{WRITE}", node_subject(&self.cluster, leader));
        let request = async_nats::Request::new()
            .payload(payload.as_bytes().to_vec().into())
            .timeout(Some(WRITE_TIMEOUT));
        let reply = self
            .client
            .send_request(subject, request)
            .await
            .map_err(|e| match e.kind() {
                RequestErrorKind::NoResponders => ForwardError::Unreachable(leader),
                _ => failed(e.to_string()),
            })?;
        let answer: Result<u64, WriteRefused> =
            rmp_serde::from_slice(&reply.payload).map_err(|e| failed(format!("bad reply: {e}")))?;
        answer.map_err(ForwardError::Refused)
    }
}

/// Commits a forwarded batch on this node if it leads (the `write` RPC's handler).
pub async fn answer_write(raft: &Raft<TypeConfig>, node: u64, payload: &[u8]) -> Vec<u8> {
    let payload = LogPayload::from_bytes(payload.to_vec());
    let answer: Result<u64, WriteRefused> = if let Err(e) = payload.decode() {
        Err(WriteRefused {
            node,
            leader: None,
            why: format!("undecodable batch: {e}"),
        })
    } else {
        match raft.client_write(payload).await {
            Ok(r) => Ok(r.data.index),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(WriteRefused {
                node,
                leader: f.leader_id,
                why: "not the leader".into(),
            }),
            Err(e) => Err(WriteRefused {
                node,
                leader: None,
                why: e.to_string(),
            }),
        }
    };
    rmp_serde::to_vec_named(&answer).unwrap_or_default()
}

/// An admin request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AdminRequest {
    /// Make the node asked the first member of a new cluster.
    Init,
    /// Add a running node: as a learner until it has caught up, then as a voter.
    AddNode {
        /// The node's id.
        id: u64,
    },
    /// Remove a node (voter or learner) from the cluster.
    RemoveNode {
        /// The node's id.
        id: u64,
    },
    /// The state of the node asked.
    Status,
    /// Rebuild the node's projection from its history and compare it with the live one.
    Rebuild,
}

/// One node's view of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's id.
    pub id: u64,
    /// Its API address.
    pub addr: String,
    /// Its Raft role: Leader, Follower, Candidate or Learner.
    pub state: String,
    /// Its current term.
    pub term: u64,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// Index of its last log entry.
    pub last_log_index: Option<u64>,
    /// Index of the last entry applied to its projection.
    pub applied_index: Option<u64>,
    /// Whether the cluster it belongs to was initialised.
    pub initialized: bool,
    /// Voters of the membership it knows.
    pub voters: Vec<u64>,
    /// Learners of the membership it knows.
    pub learners: Vec<u64>,
    /// Every member and its API address, by id (a list: JSON object keys cannot be numbers
    /// inside the tagged reply).
    pub members: Vec<(u64, String)>,
}

impl NodeStatus {
    /// The status of a node from its Raft metrics.
    pub fn from_metrics(addr: &str, m: &RaftMetrics<u64, BasicNode>) -> NodeStatus {
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        NodeStatus {
            id: m.id,
            addr: addr.to_owned(),
            state: format!("{:?}", m.state),
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            initialized: m.membership_config.log_id().is_some(),
            learners: membership.learner_ids().collect(),
            members: membership
                .nodes()
                .map(|(id, n)| (*id, n.addr.clone()))
                .collect(),
            voters: voters.into_iter().collect(),
        }
    }
}

/// A successful admin answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum AdminOk {
    /// The node's status.
    Status(NodeStatus),
    /// The change was made.
    Done {
        /// What was done.
        message: String,
    },
}

/// An admin answer: done, or why not.
pub type AdminReply = Result<AdminOk, String>;

/// What the admin service of one node needs.
#[derive(Clone)]
pub struct AdminService {
    /// The NATS connection.
    pub client: Client,
    /// The cluster's name.
    pub cluster: String,
    /// This node's id.
    pub node: u64,
    /// This node's API address, stored in the membership.
    pub addr: String,
    /// This node's event log (its Raft, history and projection).
    pub log: std::sync::Arc<super::EventLog>,
}

impl AdminService {
    /// Answers admin requests, on this node's subject and the cluster-wide one, until the
    /// returned tasks are aborted.
    pub async fn serve(self) -> Result<Vec<JoinHandle<()>>, async_nats::SubscribeError> {
        let own = self
            .client
            .subscribe(admin_node_subject(&self.cluster, self.node))
            .await?;
        let all = self
            .client
            .subscribe(admin_all_subject(&self.cluster))
            .await?;
        Ok(vec![self.clone().answer_all(own), self.answer_all(all)])
    }

    fn answer_all(self, mut requests: async_nats::Subscriber) -> JoinHandle<()> {
        tokio::spawn(async move {
            while let Some(msg) = requests.next().await {
                let service = self.clone();
                tokio::spawn(async move {
                    let Some(reply) = msg.reply else { return };
                    let answer: AdminReply = match serde_json::from_slice(&msg.payload) {
                        Ok(request) => service.handle(request).await,
                        Err(e) => Err(format!("bad admin request: {e}")),
                    };
                    let bytes = serde_json::to_vec(&answer).unwrap_or_default();
                    if let Err(e) = service.client.publish(reply, bytes.into()).await {
                        tracing::warn!(error = %e, "admin reply not sent");
                    }
                });
            }
        })
    }

    async fn handle(&self, request: AdminRequest) -> AdminReply {
        let metrics = self.log.metrics();
        match request {
            AdminRequest::Status => Ok(AdminOk::Status(NodeStatus::from_metrics(
                &self.addr, &metrics,
            ))),
            AdminRequest::Init => {
                let members = BTreeMap::from([(self.node, BasicNode::new(&self.addr))]);
                self.log
                    .raft()
                    .initialize(members)
                    .await
                    .map_err(|e| format!("node {}: cannot initialise: {e}", self.node))?;
                // Answer once it leads, so that the next command (add-node) finds a leader.
                self.log
                    .raft()
                    .wait(Some(std::time::Duration::from_secs(10)))
                    .metrics(|m| m.current_leader == Some(self.node), "leads")
                    .await
                    .map_err(|e| {
                        format!("node {}: initialised but not leading yet: {e}", self.node)
                    })?;
                Ok(AdminOk::Done {
                    message: format!(
                        "node {} initialised the cluster {}",
                        self.node, self.cluster
                    ),
                })
            }
            AdminRequest::AddNode { .. } | AdminRequest::RemoveNode { .. }
                if metrics.current_leader != Some(self.node) =>
            {
                let Some(leader) = metrics.current_leader else {
                    return Err(format!(
                        "node {} knows no leader (is the cluster initialised?)",
                        self.node
                    ));
                };
                admin_request(&self.client, &self.cluster, Some(leader), &request).await
            }
            AdminRequest::Rebuild => {
                let log = self.log.clone();
                let r =
                    tokio::task::spawn_blocking(move || super::replay::rebuild_and_compare(&log))
                        .await
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.to_string())?;
                let what = format!(
                    "node {}: rebuilt {} history entries up to index {} in {:?}",
                    self.node, r.entries, r.index, r.took
                );
                if r.equal {
                    Ok(AdminOk::Done {
                        message: format!("{what}: equal to the live projection"),
                    })
                } else {
                    Err(format!(
                        "{what}: DIFFERS from the live projection in (tree, rows rebuilt, rows \
                         live) {:?}",
                        r.differences
                    ))
                }
            }
            AdminRequest::AddNode { id } => self.add_node(id).await,
            AdminRequest::RemoveNode { id } => self.remove_node(id, &metrics).await,
        }
    }

    async fn add_node(&self, id: u64) -> AdminReply {
        let known = self.log.metrics().membership_config;
        if known.membership().voter_ids().any(|v| v == id) {
            return Ok(AdminOk::Done {
                message: format!("node {id} is already a voter"),
            });
        }
        // A node started just now may not listen yet (a `join` step racing the nodes' start):
        // it is given a while to answer.
        let deadline = tokio::time::Instant::now() + NODE_START_WAIT;
        let status = loop {
            match admin_request(&self.client, &self.cluster, Some(id), &AdminRequest::Status).await
            {
                Ok(AdminOk::Status(s)) => break s,
                Ok(other) => return Err(format!("node {id} answered status with {other:?}")),
                Err(e)
                    if e.contains("is not running") && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.log
            .raft()
            .add_learner(id, BasicNode::new(&status.addr), true)
            .await
            .map_err(|e| format!("cannot add node {id} as a learner: {e}"))?;
        self.log
            .raft()
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(|e| format!("node {id} caught up but cannot become a voter: {e}"))?;
        Ok(AdminOk::Done {
            message: format!("node {id} ({}) is a voter", status.addr),
        })
    }

    async fn remove_node(&self, id: u64, metrics: &RaftMetrics<u64, BasicNode>) -> AdminReply {
        let membership = metrics.membership_config.membership();
        let ids = BTreeSet::from([id]);
        let change = if membership.voter_ids().any(|v| v == id) {
            ChangeMembers::RemoveVoters(ids)
        } else if membership.learner_ids().any(|l| l == id) {
            ChangeMembers::RemoveNodes(ids)
        } else {
            return Err(format!("node {id} is not a member"));
        };
        self.log
            .raft()
            .change_membership(change, false)
            .await
            .map_err(|e| format!("cannot remove node {id}: {e}"))?;
        Ok(AdminOk::Done {
            message: format!("node {id} was removed"),
        })
    }
}

/// The status of every running node of `cluster` (members or not), by node id: waits for
/// answers until none has come for 300 ms (at most 5 s).
pub async fn discover(client: &Client, cluster: &str) -> Result<BTreeMap<u64, NodeStatus>, String> {
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| e.to_string())?;
    let payload = serde_json::to_vec(&AdminRequest::Status).map_err(|e| e.to_string())?;
    client
        .publish_with_reply(admin_all_subject(cluster), inbox, payload.into())
        .await
        .map_err(|e| e.to_string())?;
    client.flush().await.map_err(|e| e.to_string())?;
    let mut found = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    // The first answer may take a moment (a busy node); later ones come close behind it.
    let mut wait = Duration::from_secs(2);
    while let Ok(Some(msg)) = tokio::time::timeout(wait, replies.next()).await {
        match serde_json::from_slice::<AdminReply>(&msg.payload) {
            Ok(Ok(AdminOk::Status(s))) => {
                found.insert(s.id, s);
            }
            Ok(other) => tracing::warn!(answer = ?other, "unexpected answer to status"),
            Err(e) => tracing::warn!(error = %e, "unreadable answer to status"),
        }
        wait = DISCOVER_QUIET;
        if tokio::time::Instant::now() > deadline {
            break;
        }
    }
    Ok(found)
}

/// Sends an admin request to node `node` of `cluster` and waits for its answer; without a node,
/// to the leader found by [`discover`].
pub async fn admin_request(
    client: &Client,
    cluster: &str,
    node: Option<u64>,
    request: &AdminRequest,
) -> AdminReply {
    let node = match node {
        Some(n) => n,
        None => {
            let found = discover(client, cluster).await?;
            if found.is_empty() {
                return Err(format!("no node of cluster {cluster} is running"));
            }
            let leader = found.values().find(|s| s.leader == Some(s.id));
            match leader {
                Some(s) => s.id,
                None => {
                    return Err(format!(
                        "none of the running nodes {:?} of cluster {cluster} leads (is the \
                         cluster initialised? `flowlens admin init --node <id>`)",
                        found.keys().collect::<Vec<_>>()
                    ))
                }
            }
        }
    };
    let subject = admin_node_subject(cluster, node);
    let who = format!("node {node}");
    let payload = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let request = async_nats::Request::new()
        .payload(payload.into())
        .timeout(Some(ADMIN_TIMEOUT));
    let reply = client
        .send_request(subject.clone(), request)
        .await
        .map_err(|e| match e.kind() {
            RequestErrorKind::NoResponders => {
                format!("{who} is not running (nobody answers on {subject})")
            }
            _ => format!("{who}: {e}"),
        })?;
    serde_json::from_slice::<AdminReply>(&reply.payload)
        .map_err(|e| format!("{who} sent an unreadable answer: {e}"))?
}
