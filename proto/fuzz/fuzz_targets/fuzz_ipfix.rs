//! IPFIX: one input is several messages (split on `DATAGRAM_SEPARATOR`) decoded in order
//! through one template cache; see `flowlens_fuzz::templated_harness`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::decode::ipfix;
use proto::record::FlowSource;

fuzz_target!(|data: &[u8]| {
    flowlens_fuzz::templated_harness(data, ipfix::decode, FlowSource::Ipfix)
});
