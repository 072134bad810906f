//! The FlowLens node as a library: configuration, the simulator, the Raft event log over sled, the
//! sled projection, the REST API and the wiring that starts them. `main.rs` is only the CLI.

pub mod admin;
pub mod alerting;
pub mod analysis;
pub mod api;
pub mod auth;
pub mod classifier;
pub mod config;
pub mod events;
pub mod federation;
pub mod forward;
pub mod housekeeping;
pub mod nats;
pub mod pace;
pub mod raft;
pub mod run;
pub mod simulate;
pub mod store;
pub mod tls;
