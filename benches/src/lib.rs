//! Packet builders and an allocation counter shared by the FlowLens benchmarks.
