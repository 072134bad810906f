use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use super::*;
use crate::decode::fields::FieldSpec;
use crate::decode::template::Template;
use crate::decode::{decode_datagram, CollectingSink, DecodeContext, PacketReport, TemplateCache};
use crate::encode::{IpfixMessage, V9Packet};

const EXPORT_SECS: u32 = 1_793_527_200;

fn ctx() -> DecodeContext {
    DecodeContext {
        exporter: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        received_ms: u64::from(EXPORT_SECS) * 1000,
    }
}

/// Fields a template may carry, each with the lengths exporters use for it: plain flow fields
/// (fast path), fields that send a template down the general path, and unknown ones.
const FIELDS: &[(u16, &[u16])] = &[
    (15, &[4]),
    (62, &[16]),
    (7, &[1, 2]),
    (11, &[1, 2]),
    (4, &[1, 2]),
    (5, &[1]),
    (6, &[1, 2]),
    (1, &[1, 2, 3, 4, 5, 6, 7, 8]),
    (2, &[2, 4, 8]),
    (10, &[2, 4]),
    (14, &[2, 4]),
    (16, &[2, 4]),
    (17, &[2, 4]),
    (58, &[2]),
    (22, &[4]),
    (21, &[4]),
    (150, &[4]),
    (151, &[4]),
    (152, &[8]),
    (153, &[8]),
    (154, &[8, 16]),
    (155, &[8, 16]),
    (158, &[4]),
    (159, &[4]),
    (160, &[8]),
    (161, &[4]),
    (23, &[4, 8]),
    (195, &[1]),
    (34, &[4]),
    (999, &[1, 3, 9]),
    (1, &[12]),
];

fn field() -> impl Strategy<Value = FieldSpec> {
    (0..FIELDS.len(), any::<prop::sample::Index>()).prop_map(|(i, pick)| {
        let (id, lens) = FIELDS.get(i).copied().unwrap_or((999, &[1]));
        FieldSpec {
            id,
            enterprise: 0,
            len: *pick.get(lens),
        }
    })
}

fn template() -> impl Strategy<Value = Vec<FieldSpec>> {
    (
        prop::bool::ANY,
        prop::collection::vec(field(), 0..14),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(v6, mut fields, at_src, at_dst)| {
            let (src, dst, len) = if v6 { (27, 28, 16) } else { (8, 12, 4) };
            let spec = |id| FieldSpec {
                id,
                enterprise: 0,
                len,
            };
            let i = at_src.index(fields.len() + 1);
            fields.insert(i, spec(src));
            let j = at_dst.index(fields.len() + 1);
            fields.insert(j, spec(dst));
            fields
        })
}

/// Decodes `setup` then `data` twice: as learned (fast path where it applies) and with every
/// template forced down the general path.
fn both_paths(setup: &[u8], data: &[u8]) -> [(Vec<FlowRecord>, PacketReport); 2] {
    [false, true].map(|general| {
        let mut cache = TemplateCache::new();
        let mut sink = CollectingSink::default();
        let _ = decode_datagram(setup, &ctx(), &mut cache, &mut sink);
        if general {
            cache.disable_fast_paths();
        }
        let mut sink = CollectingSink::default();
        let report = decode_datagram(data, &ctx(), &mut cache, &mut sink).unwrap_or_default();
        (sink.flows, report)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn fast_and_general_paths_agree_on_ipfix(
        fields in template(),
        bytes in prop::collection::vec(any::<u8>(), 0..1200),
    ) {
        let mut t = IpfixMessage::new(EXPORT_SECS, 0, 7);
        t.set(2).template(300, 0, &fields);
        let setup = t.finish();
        let mut d = IpfixMessage::new(EXPORT_SECS, 1, 7);
        d.set(300).writer().bytes(&bytes);
        let [(fast, fast_report), (general, general_report)] = both_paths(&setup, &d.finish());
        prop_assert_eq!(&fast, &general);
        prop_assert_eq!(fast_report, general_report);
    }

    #[test]
    fn fast_and_general_paths_agree_on_netflow_v9(
        fields in template(),
        bytes in prop::collection::vec(any::<u8>(), 0..1200),
        sys_uptime in any::<u32>(),
    ) {
        let pairs: Vec<(u16, u16)> = fields.iter().map(|f| (f.id, f.len)).collect();
        let mut t = V9Packet::new(1, sys_uptime, EXPORT_SECS, 0, 7);
        t.set(0).template(300, &pairs);
        let setup = t.finish();
        let mut d = V9Packet::new(1, sys_uptime, EXPORT_SECS, 1, 7);
        d.set(300).writer().bytes(&bytes);
        let [(fast, fast_report), (general, general_report)] = both_paths(&setup, &d.finish());
        prop_assert_eq!(&fast, &general);
        prop_assert_eq!(fast_report, general_report);
    }
}

#[test]
fn plain_templates_take_the_fast_path_and_others_do_not() {
    let spec = |id, len| FieldSpec {
        id,
        enterprise: 0,
        len,
    };
    let plain = [spec(8, 4), spec(12, 4), spec(1, 8), spec(152, 8)];
    let fast = |fields: &[FieldSpec], is_options: bool| {
        Template::new(fields.to_vec(), u16::from(is_options), is_options)
            .fast_layout()
            .is_some()
    };
    assert!(fast(&plain, false));
    assert!(!fast(&plain, true), "options");
    let biflow = [
        spec(8, 4),
        spec(12, 4),
        FieldSpec {
            id: 1,
            enterprise: crate::decode::fields::REVERSE_PEN,
            len: 8,
        },
    ];
    assert!(!fast(&biflow, false), "biflow");
    let twice = [spec(8, 4), spec(12, 4), spec(1, 8), spec(1, 4)];
    assert!(!fast(&twice, false), "repeated");
    let no_dst = [spec(8, 4), spec(1, 8)];
    assert!(!fast(&no_dst, false), "no destination");
    let variable = [spec(8, 4), spec(12, 4), spec(82, 0xffff)];
    assert!(!fast(&variable, false), "variable length");
    let long = [spec(8, 4), spec(12, 4), spec(999, 300)];
    assert!(!fast(&long, false), "longer than 256");
}
