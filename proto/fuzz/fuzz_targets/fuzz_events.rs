//! Event batches (rkyv) and JSON events: see `flowlens_fuzz::events_harness`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| flowlens_fuzz::events_harness(data));
