//! `flowlens admin`: manages a cluster's membership (init, add-node, remove-node) and shows its
//! status, by sending the admin requests of [`crate::raft::cluster`] over NATS.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use crate::config::is_subject_token;
use crate::raft::cluster::{admin_request, discover, AdminOk, AdminRequest};

/// `flowlens admin` flags.
#[derive(clap::Args, Debug)]
pub struct AdminArgs {
    /// NATS server URL the cluster's nodes use.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// The cluster's name (`cluster.name` of its nodes).
    #[arg(long, default_value = "flowlens")]
    pub cluster: String,
    /// NATS authentication and TLS.
    #[command(flatten)]
    pub security: crate::nats::NatsSecurity,
    /// What to do.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// An admin command.
#[derive(clap::Subcommand, Debug)]
pub enum AdminCommand {
    /// Make a running node the first member of a new cluster.
    Init {
        /// The node's id.
        #[arg(long, default_value_t = 1)]
        node: u64,
    },
    /// Add a running node: it replicates as a learner until it has caught up, then votes.
    AddNode {
        /// The node's id.
        id: u64,
    },
    /// Remove a node from the cluster.
    RemoveNode {
        /// The node's id.
        id: u64,
    },
    /// Every member's role, term, log and applied index.
    Status,
    /// Rebuild a node's projection from its history and check it equals the live one.
    Rebuild {
        /// The node's id.
        #[arg(long, default_value_t = 1)]
        node: u64,
    },
}

/// Refuses a cluster or site name given as `--<flag>` that is not a NATS subject token.
pub(crate) fn check_name(flag: &str, name: &str) -> anyhow::Result<()> {
    if !is_subject_token(name) {
        bail!("--{flag} {name:?}: must be letters, digits, '-' or '_'");
    }
    Ok(())
}

/// Connects a command-line tool to NATS at `url` with `security`, giving up after 5 s with an
/// error naming it.
pub(crate) async fn connect(
    url: &str,
    security: &crate::nats::NatsSecurity,
) -> anyhow::Result<async_nats::Client> {
    let options = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(5));
    security
        .apply(options)
        .await?
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to NATS at {url}"))
}

/// Runs an admin command; returns what to print.
pub async fn run(args: &AdminArgs) -> anyhow::Result<String> {
    check_name("cluster", &args.cluster)?;
    let client = connect(&args.nats, &args.security).await?;
    let cluster = args.cluster.as_str();
    let (node, request) = match args.command {
        AdminCommand::Init { node } => (Some(node), AdminRequest::Init),
        AdminCommand::AddNode { id } => (None, AdminRequest::AddNode { id }),
        AdminCommand::RemoveNode { id } => (None, AdminRequest::RemoveNode { id }),
        AdminCommand::Rebuild { node } => (Some(node), AdminRequest::Rebuild),
        AdminCommand::Status => return status(&client, cluster).await,
    };
    match admin_request(&client, cluster, node, &request)
        .await
        .map_err(|e| anyhow!(e))?
    {
        AdminOk::Done { message } => Ok(format!("{message}\n")),
        AdminOk::Status(s) => Ok(format!("{s:?}\n")),
    }
}

/// Gathers every running node's state, and the membership the leader (or any node) knows:
/// a table of members and of running nodes that are not members.
async fn status(client: &async_nats::Client, cluster: &str) -> anyhow::Result<String> {
    let found = discover(client, cluster).await.map_err(|e| anyhow!(e))?;
    let Some(view) = found
        .values()
        .find(|s| s.leader == Some(s.id))
        .or_else(|| found.values().max_by_key(|s| s.term))
    else {
        bail!("no node of cluster {cluster} is running (nobody answers on NATS)");
    };
    let members: BTreeMap<u64, &str> = view
        .members
        .iter()
        .map(|(id, addr)| (*id, addr.as_str()))
        .collect();
    let mut ids: Vec<u64> = members.keys().chain(found.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = String::new();
    let leader = view
        .leader
        .map_or_else(|| "none".to_owned(), |l| l.to_string());
    let _ = writeln!(
        out,
        "cluster {cluster}: leader {leader}, voters {:?}, learners {:?}",
        view.voters, view.learners
    );
    let _ = writeln!(
        out,
        "{:>6}  {:<22} {:<10} {:>6} {:>10} {:>10}  member",
        "node", "api", "state", "term", "last log", "applied"
    );
    for id in ids {
        let member = if view.voters.contains(&id) {
            "voter"
        } else if view.learners.contains(&id) {
            "learner"
        } else {
            "not a member"
        };
        match found.get(&id) {
            Some(s) => {
                let idx = |i: Option<u64>| i.map_or_else(|| "-".to_owned(), |i| i.to_string());
                let _ = writeln!(
                    out,
                    "{:>6}  {:<22} {:<10} {:>6} {:>10} {:>10}  {member}",
                    id,
                    s.addr,
                    s.state,
                    s.term,
                    idx(s.last_log_index),
                    idx(s.applied_index)
                );
            }
            None => {
                let addr = members.get(&id).copied().unwrap_or("?");
                let _ = writeln!(out, "{id:>6}  {addr:<22} unreachable  {member}");
            }
        }
    }
    Ok(out)
}
