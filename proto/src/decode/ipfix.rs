//! IPFIX (RFC 7011/7012): a 16-byte message header, then sets — templates (id 2), options
//! templates (id 3) and data (id ≥ 256). Fields may be enterprise-specific (skipped safely unless
//! FlowLens reads them, like RFC 5103 reverse IEs) and variable-length. A template record with no
//! fields withdraws its template; withdrawing the set id itself withdraws all of that kind.

use super::dataset::{data_set, release_pending, SetOrigin};
use super::fields::{FieldSpec, TimeBase};
use super::reader::Reader;
use super::template::{Learned, Template, TemplateCache, TemplateScope};
use super::{DecodeContext, DecodeError, FlowSink, PacketReport, SkipReason};
use crate::record::FlowSource;

/// Size of the IPFIX message header.
pub const HEADER_LEN: usize = 16;
/// Set id of template sets.
pub const TEMPLATE_SET: u16 = 2;
/// Set id of options template sets.
pub const OPTIONS_TEMPLATE_SET: u16 = 3;
/// Lowest data set (template) id.
pub const MIN_DATA_SET: u16 = 256;

/// Decodes one IPFIX message into `sink`, learning templates into `cache`. Bytes after the
/// message length (UDP padding) are ignored; a message length beyond the datagram is an error.
pub fn decode<S: FlowSink>(
    packet: &[u8],
    ctx: &DecodeContext,
    cache: &mut TemplateCache,
    sink: &mut S,
) -> Result<PacketReport, DecodeError> {
    let mut head = Reader::new(packet);
    let version = head.u16("version")?;
    if version != 10 {
        return Err(DecodeError::UnsupportedVersion {
            version: u32::from(version),
        });
    }
    let length = usize::from(head.u16("message length")?);
    if length < HEADER_LEN || length > packet.len() {
        return Err(DecodeError::BadHeader {
            field: "message length",
            value: length as u64,
        });
    }
    let export_secs = head.u32("export time")?;
    let sequence = head.u32("sequence number")?;
    let domain = head.u32("observation domain id")?;
    let mut r = head.sub(length - HEADER_LEN, "message body")?;
    let export_ms = u64::from(export_secs) * 1000;
    let mut report = PacketReport {
        source: FlowSource::Ipfix,
        sequence,
        observation_domain: domain,
        export_ms,
        ..PacketReport::default()
    };
    let origin = SetOrigin {
        scope: TemplateScope {
            exporter: ctx.exporter,
            domain,
            source: FlowSource::Ipfix,
        },
        base: TimeBase {
            export_ms,
            sys_uptime: None,
            system_init_ms: None,
        },
        ctx,
    };
    while r.remaining() >= 4 {
        let set_id = r.u16("set id")?;
        let set_len = usize::from(r.u16("set length")?);
        if set_len < 4 || set_len - 4 > r.remaining() {
            report.skipped.add(SkipReason::MalformedSet);
            break;
        }
        let body = r.sub(set_len - 4, "set body")?;
        match set_id {
            TEMPLATE_SET => template_set(body, false, cache, &origin, sink, &mut report),
            OPTIONS_TEMPLATE_SET => template_set(body, true, cache, &origin, sink, &mut report),
            0..=255 => report.skipped.add(SkipReason::ReservedSetId),
            id => data_set(cache, &origin, id, body, sink, &mut report),
        }
    }
    Ok(report)
}

/// One record of a template set.
enum TemplateRecord {
    /// A template to learn (or refresh).
    Define(u16, Template),
    /// Field count zero: withdraw this id (or, for the set id itself, all of that kind).
    Withdraw(u16),
    /// Well-framed but unusable.
    Invalid,
}

/// Parses one template or options template record.
fn template_record(body: &mut Reader<'_>, options: bool) -> Result<TemplateRecord, DecodeError> {
    let id = body.u16("template id")?;
    let count = usize::from(body.u16("field count")?);
    if count == 0 {
        return Ok(TemplateRecord::Withdraw(id));
    }
    let scope_n = if options {
        body.u16("scope field count")?
    } else {
        0
    };
    // Each specifier takes at least 4 bytes: a count the set cannot hold is rejected before
    // anything is allocated for it.
    if count * 4 > body.remaining() {
        return Err(DecodeError::Truncated {
            offset: body.offset(),
            needed: count * 4 - body.remaining(),
            what: "template field specifiers",
        });
    }
    let mut fields = Vec::with_capacity(count);
    for _ in 0..count {
        let raw_id = body.u16("information element id")?;
        let len = body.u16("field length")?;
        let enterprise = if raw_id & 0x8000 != 0 {
            body.u32("enterprise number")?
        } else {
            0
        };
        fields.push(FieldSpec {
            id: raw_id & 0x7fff,
            enterprise,
            len,
        });
    }
    let template = Template::new(fields, scope_n, options);
    let scope_ok = !options || (scope_n >= 1 && usize::from(scope_n) <= count);
    let valid = id >= MIN_DATA_SET && scope_ok && template.min_record_len() > 0;
    Ok(if valid {
        TemplateRecord::Define(id, template)
    } else {
        TemplateRecord::Invalid
    })
}

/// Learns, refreshes or withdraws every template record in a set, then decodes data that was
/// waiting for the templates learned.
fn template_set<S: FlowSink>(
    mut body: Reader<'_>,
    options: bool,
    cache: &mut TemplateCache,
    origin: &SetOrigin<'_>,
    sink: &mut S,
    report: &mut PacketReport,
) {
    let set_id = if options {
        OPTIONS_TEMPLATE_SET
    } else {
        TEMPLATE_SET
    };
    while body.remaining() >= 4 {
        match template_record(&mut body, options) {
            Ok(TemplateRecord::Define(id, t)) => {
                if cache.learn(origin.scope, id, t) == Learned::Stored {
                    report.templates += 1;
                    release_pending(cache, origin, id, sink, report);
                } else {
                    report.skipped.add(SkipReason::MalformedTemplate);
                }
            }
            Ok(TemplateRecord::Withdraw(id)) if id == set_id => {
                let n = cache.withdraw_all(&origin.scope, options);
                report.withdrawals = report.withdrawals.saturating_add(n as u32);
            }
            Ok(TemplateRecord::Withdraw(0)) => break, // zero padding
            Ok(TemplateRecord::Withdraw(id)) => {
                if cache.withdraw(&origin.scope, id) {
                    report.withdrawals += 1;
                }
            }
            Ok(TemplateRecord::Invalid) => report.skipped.add(SkipReason::MalformedTemplate),
            Err(_) => {
                report.skipped.add(SkipReason::MalformedTemplate);
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests;
