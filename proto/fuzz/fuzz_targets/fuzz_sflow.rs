//! sFlow v5: one input is one datagram; see `flowlens_fuzz::sflow_harness`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| flowlens_fuzz::sflow_harness(data));
