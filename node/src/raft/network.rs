//! The Raft network of a cluster of one: there are no peers, so every RPC is unreachable. The
//! cluster issue replaces it with RPC over NATS.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftNetwork, RaftNetworkFactory};

use super::TypeConfig;

/// The network used by a cluster of one: every RPC answers Unreachable (there are no peers).
/// The cluster issue replaces it with NATS.
#[derive(Clone, Copy, Debug, Default)]
pub struct SoloNetwork;

/// The connection [`SoloNetwork`] hands out for a peer: it never reaches it.
#[derive(Clone, Copy, Debug)]
pub struct SoloPeer {
    /// The peer asked for.
    pub target: u64,
}

/// The error every [`SoloPeer`] RPC reports.
#[derive(Debug, thiserror::Error)]
#[error("node {0} is unreachable: this node runs a cluster of one, without a network")]
struct NoPeers(u64);

fn unreachable<E: std::error::Error>(target: u64) -> RPCError<u64, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&NoPeers(target)))
}

impl RaftNetworkFactory<TypeConfig> for SoloNetwork {
    type Network = SoloPeer;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> SoloPeer {
        SoloPeer { target }
    }
}

impl RaftNetwork<TypeConfig> for SoloPeer {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(unreachable(self.target))
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        Err(unreachable(self.target))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(unreachable(self.target))
    }
}
