//! `flowlens simulate`: a synthetic network exported as flow packets (placeholder, being written).
