//! NetFlow v9 (RFC 3954): a 20-byte header, then flowsets — templates (id 0), options templates
//! (id 1) and data (id ≥ 256). The header's record count is unreliable in practice, so sets are
//! walked by their lengths alone. Record times are exporter uptime; the header ties them to UTC.

use super::dataset::{data_set, release_pending, SetOrigin};
use super::fields::{FieldSpec, TimeBase, VARIABLE_LENGTH};
use super::reader::Reader;
use super::template::{Learned, Template, TemplateCache, TemplateScope};
use super::{DecodeContext, DecodeError, FlowSink, PacketReport, SkipReason};
use crate::record::FlowSource;

/// Size of the v9 header.
pub const HEADER_LEN: usize = 20;
/// Flowset id of template flowsets.
pub const TEMPLATE_SET: u16 = 0;
/// Flowset id of options template flowsets.
pub const OPTIONS_TEMPLATE_SET: u16 = 1;
/// Lowest data flowset (template) id.
pub const MIN_DATA_SET: u16 = 256;

/// Decodes one NetFlow v9 datagram into `sink`, learning templates into `cache`.
pub fn decode<S: FlowSink>(
    packet: &[u8],
    ctx: &DecodeContext,
    cache: &mut TemplateCache,
    sink: &mut S,
) -> Result<PacketReport, DecodeError> {
    let mut r = Reader::new(packet);
    let version = r.u16("version")?;
    if version != 9 {
        return Err(DecodeError::UnsupportedVersion {
            version: u32::from(version),
        });
    }
    let count = r.u16("count")?;
    let sys_uptime = r.u32("sys_uptime")?;
    let unix_secs = r.u32("unix_secs")?;
    let sequence = r.u32("package_sequence")?;
    let source_id = r.u32("source_id")?;
    let export_ms = u64::from(unix_secs) * 1000;
    let mut report = PacketReport {
        source: FlowSource::NetflowV9,
        sequence,
        observation_domain: source_id,
        export_ms,
        header_count: u32::from(count),
        ..PacketReport::default()
    };
    let origin = SetOrigin {
        scope: TemplateScope {
            exporter: ctx.exporter,
            domain: source_id,
            source: FlowSource::NetflowV9,
        },
        base: TimeBase {
            export_ms,
            sys_uptime: Some(sys_uptime),
            system_init_ms: None,
        },
        ctx,
    };
    while r.remaining() >= 4 {
        let set_id = r.u16("flowset id")?;
        let set_len = usize::from(r.u16("flowset length")?);
        if set_len < 4 || set_len - 4 > r.remaining() {
            // A length that cannot be walked past: nothing after it can be trusted.
            report.skipped.add(SkipReason::MalformedSet);
            break;
        }
        let body = r.sub(set_len - 4, "flowset body")?;
        match set_id {
            TEMPLATE_SET => template_set(body, false, cache, &origin, sink, &mut report),
            OPTIONS_TEMPLATE_SET => template_set(body, true, cache, &origin, sink, &mut report),
            2..=255 => report.skipped.add(SkipReason::ReservedSetId),
            id => data_set(cache, &origin, id, body, sink, &mut report),
        }
    }
    Ok(report)
}

/// Reads `n` (type, length) field specifiers.
fn field_specs(
    body: &mut Reader<'_>,
    n: usize,
    out: &mut Vec<FieldSpec>,
) -> Result<(), DecodeError> {
    for _ in 0..n {
        let id = body.u16("field type")?;
        let len = body.u16("field length")?;
        out.push(FieldSpec {
            id,
            enterprise: 0,
            len,
        });
    }
    Ok(())
}

/// One record of a template flowset.
enum TemplateRecord {
    /// A template to learn (or refresh).
    Define(u16, Template),
    /// Field count zero: withdraw this template id.
    Withdraw(u16),
    /// Well-framed but unusable (reserved id, zero-length record, variable-length field).
    Invalid,
    /// All-zero bytes: padding at the end of the flowset.
    Padding,
}

/// Parses one template record; Err means its extent is unknown and the flowset must stop.
fn template_record(body: &mut Reader<'_>, options: bool) -> Result<TemplateRecord, DecodeError> {
    let id = body.u16("template id")?;
    let (scope_n, option_n) = if options {
        let scope_len = usize::from(body.u16("option scope length")?);
        let option_len = usize::from(body.u16("option length")?);
        if scope_len % 4 != 0 || option_len % 4 != 0 {
            return Err(DecodeError::BadHeader {
                field: "options template lengths",
                value: (scope_len | option_len) as u64,
            });
        }
        (scope_len / 4, option_len / 4)
    } else {
        (0, usize::from(body.u16("field count")?))
    };
    let total = scope_n + option_n;
    if total * 4 > body.remaining() {
        return Err(DecodeError::Truncated {
            offset: body.offset(),
            needed: total * 4 - body.remaining(),
            what: "template fields",
        });
    }
    if total == 0 {
        return Ok(if id == 0 {
            TemplateRecord::Padding
        } else {
            TemplateRecord::Withdraw(id)
        });
    }
    let mut fields = Vec::with_capacity(total);
    field_specs(body, total, &mut fields)?;
    let template = Template::new(fields, scope_n as u16, options);
    let valid = id >= MIN_DATA_SET
        && template.min_record_len() > 0
        && template.fields().iter().all(|f| f.len != VARIABLE_LENGTH);
    Ok(if valid {
        TemplateRecord::Define(id, template)
    } else {
        TemplateRecord::Invalid
    })
}

/// Learns every template in a template or options template flowset, then decodes any data that
/// was waiting for them. A field count of zero withdraws the template.
fn template_set<S: FlowSink>(
    mut body: Reader<'_>,
    options: bool,
    cache: &mut TemplateCache,
    origin: &SetOrigin<'_>,
    sink: &mut S,
    report: &mut PacketReport,
) {
    let header = if options { 6 } else { 4 };
    while body.remaining() >= header {
        match template_record(&mut body, options) {
            Ok(TemplateRecord::Define(id, t)) => {
                if cache.learn(origin.scope, id, t) == Learned::Stored {
                    report.templates += 1;
                    release_pending(cache, origin, id, sink, report);
                } else {
                    report.skipped.add(SkipReason::MalformedTemplate);
                }
            }
            Ok(TemplateRecord::Withdraw(id)) => {
                if cache.withdraw(&origin.scope, id) {
                    report.withdrawals += 1;
                }
            }
            Ok(TemplateRecord::Invalid) => report.skipped.add(SkipReason::MalformedTemplate),
            Ok(TemplateRecord::Padding) => break,
            Err(_) => {
                report.skipped.add(SkipReason::MalformedTemplate);
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests;
