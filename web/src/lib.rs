//! The FlowLens web UI (Leptos, CSR, wasm32). It grows with the single-node issue's API.
