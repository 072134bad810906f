//! FlowLens wire formats: flow decoders, the unified [`FlowRecord`], change events and API types. Pure and I/O-free: no sockets, no clocks, no globals.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod advisory;
pub mod alert;
pub mod api;
pub mod auth;
pub mod classify;
pub mod codec;
pub mod decode;
pub mod encode;
pub mod event;
pub mod impact;
pub mod record;
pub mod role;

pub use record::FlowRecord;
