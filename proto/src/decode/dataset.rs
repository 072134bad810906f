//! Data sets, shared by NetFlow v9 and IPFIX: walking records through a compiled template,
//! turning them into flow records (two for an RFC 5103 biflow), learning sampling and clock
//! facts from options records, and buffering sets whose template has not arrived yet.

use super::fast::FastSet;
use super::fields::{RecordFields, TimeBase, VARIABLE_LENGTH};
use super::reader::Reader;
use super::template::{PendingSet, ScopeState, Template, TemplateCache, TemplateScope};
use super::{DecodeContext, DecodeError, FlowSink, PacketReport, SkipReason};
use crate::record::{BiflowDirection, FlowRecord};

/// Where a set came from: its template scope, the clock of the packet that carried it, and the
/// caller's context.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SetOrigin<'c> {
    pub scope: TemplateScope,
    pub base: TimeBase,
    pub ctx: &'c DecodeContext,
}

/// Reads one record's fields through `template` into `fields`.
fn read_record(
    r: &mut Reader<'_>,
    template: &Template,
    fields: &mut RecordFields,
) -> Result<(), DecodeError> {
    for (spec, kind) in template.compiled() {
        let len = if spec.len == VARIABLE_LENGTH {
            match r.u8("variable length")? {
                255 => usize::from(r.u16("variable length (long form)")?),
                n => usize::from(n),
            }
        } else {
            usize::from(spec.len)
        };
        let value = r.bytes(len, "field value")?;
        fields.apply(kind, value);
    }
    Ok(())
}

/// Facts an options record taught about its exporter.
#[derive(Default)]
struct OptionsFacts {
    system_init_ms: Option<u64>,
    rates: [(Option<u64>, u32); 8],
    n_rates: usize,
}

/// Decodes one data set body with a known template. Data records become flows; options records
/// update the scope's sampling and clock state. A record cut short ends the set (counted).
pub(crate) fn decode_data_set<S: FlowSink>(
    cache: &mut TemplateCache,
    origin: &SetOrigin<'_>,
    template_id: u16,
    mut body: Reader<'_>,
    sink: &mut S,
    report: &mut PacketReport,
) -> bool {
    let scope = &origin.scope;
    let mut facts = OptionsFacts::default();
    {
        let Some(state) = cache.scope(scope) else {
            return false;
        };
        let Some(template) = state.templates.get(&template_id) else {
            return false;
        };
        let min = template.min_record_len();
        if min == 0 {
            report.skipped.add(SkipReason::MalformedTemplate);
            return true;
        }
        let base = TimeBase {
            system_init_ms: state.system_init_ms,
            ..origin.base
        };
        if let Some(layout) = template.fast_layout() {
            let set = FastSet {
                base,
                rate: state.sampling.rate_for(None).unwrap_or(1).max(1),
                exporter: origin.ctx.exporter,
                domain: scope.domain,
                source: scope.source,
            };
            let n = layout.records(body.rest(), min, &set, sink);
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            report.data_records = report.data_records.saturating_add(n);
            report.flows = report.flows.saturating_add(n);
            return true;
        }
        // Fixed-length records are cut from the body up front; what is left over, shorter
        // than a record, is padding (RFC 7011 §3.3.1). Variable-length ones are walked.
        let mut fixed = template
            .fixed_record_len()
            .map(|len| body.rest().chunks_exact(len));
        loop {
            let mut fields = RecordFields::default();
            if let Some(records) = fixed.as_mut() {
                let Some(record) = records.next() else {
                    break;
                };
                for op in template.ops() {
                    if let Some(value) = op
                        .offset
                        .checked_add(op.len)
                        .and_then(|end| record.get(op.offset..end))
                    {
                        fields.apply(op.kind, value);
                    }
                }
            } else {
                if body.remaining() < min {
                    break;
                }
                if read_record(&mut body, template, &mut fields).is_err() {
                    report.skipped.add(SkipReason::TruncatedRecord);
                    break;
                }
            }
            report.data_records += 1;
            if template.is_options() {
                if let Some(init) = fields.system_init_ms {
                    facts.system_init_ms = Some(init);
                }
                if let (Some(rate), Some(slot)) =
                    (fields.sampling_rate(), facts.rates.get_mut(facts.n_rates))
                {
                    *slot = (fields.sampler_id, rate);
                    facts.n_rates += 1;
                }
            } else {
                emit(&fields, state, &base, origin, sink, report);
            }
        }
    }
    if facts.system_init_ms.is_some() || facts.n_rates > 0 {
        let mut changed = false;
        if let Some(state) = cache.scope_mut(*scope) {
            if facts.system_init_ms.is_some() && state.system_init_ms != facts.system_init_ms {
                state.system_init_ms = facts.system_init_ms;
                changed = true;
            }
            for (sampler, rate) in facts.rates.iter().take(facts.n_rates) {
                changed |= state.sampling.learn(*sampler, *rate);
            }
        }
        if changed {
            cache.note_change();
        }
    }
    true
}

/// Turns one data record into one flow record, or two for a biflow with reverse traffic.
fn emit<S: FlowSink>(
    fields: &RecordFields,
    state: &ScopeState,
    base: &TimeBase,
    origin: &SetOrigin<'_>,
    sink: &mut S,
    report: &mut PacketReport,
) {
    if !(fields.has_src && fields.has_dst) {
        report.skipped.add(SkipReason::RecordWithoutAddresses);
        return;
    }
    let rate = fields
        .sampling_rate()
        .or_else(|| state.sampling.rate_for(fields.sampler_id))
        .unwrap_or(1)
        .max(1);
    let (first_ms, last_ms) = fields.resolve_times(base);
    let forward = FlowRecord {
        bytes: fields.flow.bytes.saturating_mul(u64::from(rate)),
        packets: fields.flow.packets.saturating_mul(u64::from(rate)),
        first_ms,
        last_ms,
        exporter: origin.ctx.exporter,
        observation_domain: origin.scope.domain,
        sampling_rate: rate,
        source: origin.scope.source,
        direction: if fields.is_biflow {
            BiflowDirection::Forward
        } else {
            BiflowDirection::Unidirectional
        },
        ..fields.flow
    };
    sink.flow(forward);
    report.flows += 1;
    if fields.is_biflow && (fields.rev_packets > 0 || fields.rev_bytes > 0) {
        let (first_ms, last_ms) = fields.resolve_reverse_times(base, (first_ms, last_ms));
        sink.flow(FlowRecord {
            src_addr: forward.dst_addr,
            dst_addr: forward.src_addr,
            src_port: forward.dst_port,
            dst_port: forward.src_port,
            in_if: forward.out_if,
            out_if: forward.in_if,
            src_as: forward.dst_as,
            dst_as: forward.src_as,
            tcp_flags: fields.rev_tcp_flags,
            tos: fields.rev_tos.unwrap_or(forward.tos),
            bytes: fields.rev_bytes.saturating_mul(u64::from(rate)),
            packets: fields.rev_packets.saturating_mul(u64::from(rate)),
            first_ms,
            last_ms,
            direction: BiflowDirection::Reverse,
            ..forward
        });
        report.flows += 1;
    }
}

/// Handles a data set: decodes it if its template is known, otherwise buffers a copy (bounded)
/// to decode when the template arrives.
pub(crate) fn data_set<S: FlowSink>(
    cache: &mut TemplateCache,
    origin: &SetOrigin<'_>,
    template_id: u16,
    body: Reader<'_>,
    sink: &mut S,
    report: &mut PacketReport,
) {
    if decode_data_set(cache, origin, template_id, body, sink, report) {
        return;
    }
    let pending = PendingSet {
        scope: origin.scope,
        template_id,
        export_ms: origin.base.export_ms,
        sys_uptime: origin.base.sys_uptime,
        data: body.rest().to_vec(),
    };
    let (kept, dropped) = cache.buffer(pending);
    for _ in 0..dropped {
        report.skipped.add(SkipReason::PendingOverflow);
    }
    if kept {
        report.buffered += 1;
    } else {
        report.skipped.add(SkipReason::MissingTemplate);
    }
}

/// Decodes the sets that were waiting for `template_id`, each under its own header's clock.
pub(crate) fn release_pending<S: FlowSink>(
    cache: &mut TemplateCache,
    origin: &SetOrigin<'_>,
    template_id: u16,
    sink: &mut S,
    report: &mut PacketReport,
) {
    for set in cache.take_pending(&origin.scope, template_id) {
        let base = TimeBase {
            export_ms: set.export_ms,
            sys_uptime: set.sys_uptime,
            system_init_ms: None,
        };
        let origin = SetOrigin { base, ..*origin };
        decode_data_set(
            cache,
            &origin,
            template_id,
            Reader::new(&set.data),
            sink,
            report,
        );
    }
}
