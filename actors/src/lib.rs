//! FlowLens actors: collector → aggregator → graph → event log, alerting and forwarding.
//! Each actor gets a module with its message enum, state and handler as its issue lands.
