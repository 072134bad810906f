//! The `flowlens` command line: `node` runs a node, `admin` manages a cluster, `forward` relays
//! flow datagrams, `simulate` exports a synthetic network as flow packets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use node::config::Config;

/// jemalloc, for an RSS that stays flat under bursts (see node/Cargo.toml).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// FlowLens: flow collector and application dependency map.
#[derive(Parser)]
#[command(name = "flowlens", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: collect flows, map dependencies, serve the API.
    Node(NodeArgs),
    /// Relay flow datagrams, unchanged, to other collectors (no map, no storage).
    Forward(node::forward::ForwardArgs),
    /// Send a synthetic network's flows to a collector.
    Simulate(node::simulate::SimulateArgs),
    /// Manage a cluster's membership over NATS.
    Admin(node::admin::AdminArgs),
    /// Follow a site's committed events on NATS.
    #[command(subcommand)]
    Events(node::events::EventsCommand),
}

/// `flowlens node` flags; they override the config file and environment.
#[derive(clap::Args)]
struct NodeArgs {
    /// Config file (.toml, .yaml or .yml). Without one, built-in defaults apply.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Data directory (config key `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// API and UI address (config key `api.listen`).
    #[arg(long)]
    api_listen: Option<SocketAddr>,
    /// UDP flow listener, repeatable; replaces `collector.listen`.
    #[arg(long = "listen")]
    listen: Vec<SocketAddr>,
    /// Cluster name (config key `cluster.name`).
    #[arg(long)]
    cluster: Option<String>,
    /// This node's Raft id (config key `node_id`).
    #[arg(long)]
    node_id: Option<u64>,
    /// NATS server URL; joins a cluster (config key `cluster.nats`). Without it the node runs
    /// alone.
    #[arg(long)]
    nats: Option<String>,
    /// Follow these sites' events on NATS and project one map of them all (config key
    /// `federation.sites`); the node's own log then runs alone.
    #[arg(long, value_delimiter = ',')]
    federate: Vec<String>,
}

fn load_config(args: &NodeArgs) -> Result<Config, String> {
    let mut config =
        Config::load(args.config.as_deref(), std::env::vars()).map_err(|e| e.to_string())?;
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(listen) = args.api_listen {
        config.api.listen = listen;
    }
    if !args.listen.is_empty() {
        config.collector.listen = args.listen.clone();
    }
    if let Some(name) = &args.cluster {
        config.cluster.name = name.clone();
    }
    if let Some(id) = args.node_id {
        config.node_id = id;
    }
    if let Some(url) = &args.nats {
        config.cluster.nats = url.clone();
    }
    if !args.federate.is_empty() {
        config.federation.sites = args.federate.clone();
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flowlens: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Node(args) => match load_config(&args) {
            Ok(config) => {
                init_tracing(&config.log.level);
                runtime
                    .block_on(node::run::run(config))
                    .map_err(|e| format!("{e:#}"))
            }
            Err(e) => Err(e),
        },
        Command::Admin(args) => {
            init_tracing("warn");
            runtime
                .block_on(node::admin::run(&args))
                .map(|out| print!("{out}"))
                .map_err(|e| format!("{e:#}"))
        }
        Command::Events(node::events::EventsCommand::Tail(args)) => {
            init_tracing("warn");
            runtime
                .block_on(node::events::tail(&args))
                .map_err(|e| format!("{e:#}"))
        }
        Command::Forward(args) => {
            init_tracing("info");
            runtime
                .block_on(node::forward::run(&args))
                .map_err(|e| format!("{e:#}"))
        }
        Command::Simulate(args) => {
            init_tracing("info");
            runtime
                .block_on(node::simulate::run(&args))
                .map(|report| {
                    println!(
                        "sent {} flows in {} packets ({} bytes) in {:.1} s",
                        report.flows, report.packets, report.bytes, report.elapsed_s
                    );
                })
                .map_err(|e| format!("{e:#}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowlens: {e}");
            ExitCode::from(2)
        }
    }
}
