//! Raft RPC over NATS request/reply: the client side ([`NatsNetwork`], openraft's network
//! factory) and the server side ([`serve`], one subscription per node answering its peers).
//! Subjects are `flowlens.<cluster>.raft.<node>.{append,vote,snapshot}` (and `write`, a
//! follower's batch forwarded to the leader: see [`super::cluster`]); requests and replies are
//! MessagePack. "No responders" is reported as Unreachable (the node is down: openraft backs
//! off), a timeout or any other failure as a network error.

use std::time::Duration;

use async_nats::{Client, RequestErrorKind};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft, RaftNetwork, RaftNetworkFactory};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::task::JoinHandle;

use super::TypeConfig;

/// The RPC kinds, the last token of their subject.
const APPEND: &str = "append";
const VOTE: &str = "vote";
const SNAPSHOT: &str = "snapshot";
/// Room left in a message for its headers and subjects.
const HEADROOM: usize = 4096;

#[cfg(test)]
#[path = "nats_tests.rs"]
mod tests;

/// The subject prefix of one node's Raft RPCs.
pub fn node_subject(cluster: &str, node: u64) -> String {
    format!("flowlens.{cluster}.raft.{node}")
}

/// Why an RPC over NATS failed on the way (not a Raft answer).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Nobody subscribes to the target's subject: the node is down or not started.
    #[error("node {node}: no responders on {subject}")]
    NoResponders {
        /// The target node.
        node: u64,
        /// The subject asked.
        subject: String,
    },
    /// The request or its reply failed: timeout, connection, or an undecodable payload.
    #[error("node {node}: {why}")]
    Failed {
        /// The target node.
        node: u64,
        /// What failed.
        why: String,
    },
}

/// openraft's network over NATS: a client per target node, all sharing one connection.
#[derive(Clone, Debug)]
pub struct NatsNetwork {
    client: Client,
    cluster: String,
}

impl NatsNetwork {
    /// A network for `cluster` over `client`.
    pub fn new(client: Client, cluster: impl Into<String>) -> NatsNetwork {
        NatsNetwork {
            client,
            cluster: cluster.into(),
        }
    }
}

/// The connection to one peer.
#[derive(Clone, Debug)]
pub struct NatsPeer {
    client: Client,
    target: u64,
    subject: String,
}

impl RaftNetworkFactory<TypeConfig> for NatsNetwork {
    type Network = NatsPeer;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> NatsPeer {
        NatsPeer {
            client: self.client.clone(),
            target,
            subject: node_subject(&self.cluster, target),
        }
    }
}

impl NatsPeer {
    /// Sends `request` as `kind` and decodes the target's `Result`.
    async fn call<Req: Serialize, Resp: DeserializeOwned, E: DeserializeOwned>(
        &self,
        kind: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Result<Resp, E>, TransportError> {
        let payload = self.encode(request)?;
        self.send(kind, payload, timeout).await
    }

    fn encode<Req: Serialize>(&self, request: &Req) -> Result<Vec<u8>, TransportError> {
        rmp_serde::to_vec_named(request).map_err(|e| TransportError::Failed {
            node: self.target,
            why: format!("cannot encode the request: {e}"),
        })
    }

    /// The largest request payload the server takes, less room for the headers.
    fn max_payload(&self) -> usize {
        self.client
            .server_info()
            .max_payload
            .saturating_sub(HEADROOM)
            .max(HEADROOM)
    }

    async fn send<Resp: DeserializeOwned, E: DeserializeOwned>(
        &self,
        kind: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Result<Resp, E>, TransportError> {
        let failed = |why: String| TransportError::Failed {
            node: self.target,
            why,
        };
        let subject = format!("{}.{kind}", self.subject);
        let request = async_nats::Request::new()
            .payload(payload.into())
            .timeout(Some(timeout));
        let reply = self
            .client
            .send_request(subject.clone(), request)
            .await
            .map_err(|e| match e.kind() {
                RequestErrorKind::NoResponders => TransportError::NoResponders {
                    node: self.target,
                    subject,
                },
                _ => failed(e.to_string()),
            })?;
        rmp_serde::from_slice(&reply.payload).map_err(|e| failed(format!("bad reply: {e}")))
    }
}

impl RaftNetwork<TypeConfig> for NatsPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        // A request over the server's message limit carries only its first entries (halved
        // until it fits); openraft sends the rest next (a partial success).
        let mut rpc = rpc;
        let mut cut = None;
        let limit = self.max_payload();
        let payload = loop {
            let payload = match self.encode(&rpc) {
                Ok(p) => p,
                Err(e) => return Err(RPCError::Network(NetworkError::new(&e))),
            };
            if payload.len() <= limit || rpc.entries.len() <= 1 {
                break payload;
            }
            rpc.entries.truncate(rpc.entries.len() / 2);
            cut = rpc.entries.last().map(|e| e.log_id);
            rpc.leader_commit = rpc.leader_commit.min(cut);
        };
        let answer = self.send(APPEND, payload, option.hard_ttl()).await;
        match into_rpc(self, answer)? {
            AppendEntriesResponse::Success if cut.is_some() => {
                Ok(AppendEntriesResponse::PartialSuccess(cut))
            }
            other => Ok(other),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        into_rpc(self, self.call(SNAPSHOT, &rpc, option.hard_ttl()).await)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        into_rpc(self, self.call(VOTE, &rpc, option.hard_ttl()).await)
    }
}

/// A peer's answer (or the transport's failure) as openraft wants it.
// The error type is openraft's: the RaftNetwork methods return it unboxed.
#[allow(clippy::result_large_err)]
fn into_rpc<Resp, E: std::error::Error>(
    peer: &NatsPeer,
    answer: Result<Result<Resp, E>, TransportError>,
) -> Result<Resp, RPCError<u64, BasicNode, E>> {
    match answer {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(peer.target, e))),
        Err(e @ TransportError::NoResponders { .. }) => {
            Err(RPCError::Unreachable(Unreachable::new(&e)))
        }
        Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
    }
}

/// Answers this node's Raft RPCs from its peers until the returned task is aborted (which
/// drops the subscription: the server stops routing to it).
pub async fn serve(
    client: Client,
    cluster: &str,
    node: u64,
    raft: Raft<TypeConfig>,
) -> Result<JoinHandle<()>, async_nats::SubscribeError> {
    use futures_util::StreamExt;
    let mut requests = client
        .subscribe(format!("{}.*", node_subject(cluster, node)))
        .await?;
    Ok(tokio::spawn(async move {
        while let Some(msg) = requests.next().await {
            let (client, raft) = (client.clone(), raft.clone());
            // Each request on its own task: a slow append must not hold up a vote.
            tokio::spawn(async move {
                let Some(reply) = msg.reply else { return };
                let kind = msg.subject.rsplit('.').next().unwrap_or_default();
                let answer = match kind {
                    APPEND => answer(&msg.payload, |r| raft.append_entries(r)).await,
                    VOTE => answer(&msg.payload, |r| raft.vote(r)).await,
                    SNAPSHOT => answer(&msg.payload, |r| raft.install_snapshot(r)).await,
                    super::cluster::WRITE => {
                        Ok(super::cluster::answer_write(&raft, node, &msg.payload).await)
                    }
                    _ => return,
                };
                match answer {
                    Ok(bytes) => {
                        if let Err(e) = client.publish(reply, bytes.into()).await {
                            tracing::warn!(error = %e, "raft reply not sent");
                        }
                    }
                    Err(why) => tracing::warn!(kind, why, "raft request dropped"),
                }
            });
        }
    }))
}

/// Decodes a request, runs it, encodes the `Result`; `Err` when the request cannot be decoded
/// (the caller times out: a peer running an incompatible version must not be answered wrongly).
async fn answer<Req, Resp, E, F, Fut>(payload: &[u8], handle: F) -> Result<Vec<u8>, String>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    E: Serialize,
    F: FnOnce(Req) -> Fut,
    Fut: std::future::Future<Output = Result<Resp, E>>,
{
    let request: Req = rmp_serde::from_slice(payload).map_err(|e| format!("bad request: {e}"))?;
    let result = handle(request).await;
    rmp_serde::to_vec_named(&result).map_err(|e| format!("cannot encode the reply: {e}"))
}
