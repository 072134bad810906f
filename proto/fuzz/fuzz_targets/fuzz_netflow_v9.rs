//! NetFlow v9: one input is several datagrams (split on `DATAGRAM_SEPARATOR`) decoded in order
//! through one template cache; see `flowlens_fuzz::templated_harness`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::decode::netflow_v9;
use proto::record::FlowSource;

fuzz_target!(|data: &[u8]| {
    flowlens_fuzz::templated_harness(data, netflow_v9::decode, FlowSource::NetflowV9)
});
