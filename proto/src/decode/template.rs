//! The template cache NetFlow v9 and IPFIX decoders need: templates per (exporter address,
//! source id / observation domain, protocol), the sampling rates and system init time learned from
//! options records, and a bounded buffer of data sets that arrived before their template.
//!
//! The caller owns the cache (one per collector) and may serialise it (serde) to persist
//! templates across restarts; the pending buffer is transient and not serialised.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::fast::FastLayout;
use super::fields::{classify, FieldKind, FieldSpec, VARIABLE_LENGTH};
use crate::record::FlowSource;

/// The hasher of the cache's maps: looked up once per data set, so SipHash showed in profiles;
/// foldhash is randomly seeded per process.
type FastHash = foldhash::fast::RandomState;

/// Identifies one template space: templates are scoped by exporter, domain and protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TemplateScope {
    /// Exporter address (UDP source).
    pub exporter: IpAddr,
    /// NetFlow v9 source id or IPFIX observation domain id.
    pub domain: u32,
    /// NetFlow v9 or IPFIX.
    pub source: FlowSource,
}

/// A learned template or options template, compiled for decoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "TemplateDef", into = "TemplateDef")]
pub struct Template {
    fields: Vec<FieldSpec>,
    kinds: Vec<FieldKind>,
    scope_fields: u16,
    is_options: bool,
    min_len: usize,
    fixed_len: Option<usize>,
    ops: Vec<FieldOp>,
    fast: Option<Box<FastLayout>>,
}

/// One field FlowLens reads from a fixed-length record: where its value sits and what it means.
/// A fixed-length template compiles to a list of these (ignored fields left out), so reading a
/// record is one bounds-checked slice per wanted field, with no per-field length parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldOp {
    /// Offset of the value from the start of the record.
    pub offset: usize,
    /// Length of the value in bytes.
    pub len: usize,
    /// What the value means.
    pub kind: FieldKind,
}

/// The serialised form of a [`Template`]: just what came off the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TemplateDef {
    fields: Vec<FieldSpec>,
    scope_fields: u16,
    is_options: bool,
}

impl From<TemplateDef> for Template {
    fn from(d: TemplateDef) -> Self {
        Template::new(d.fields, d.scope_fields, d.is_options)
    }
}

impl From<Template> for TemplateDef {
    fn from(t: Template) -> Self {
        TemplateDef {
            fields: t.fields,
            scope_fields: t.scope_fields,
            is_options: t.is_options,
        }
    }
}

impl Template {
    /// Compiles a template from its field specifiers. `scope_fields` is the number of leading
    /// scope fields of an options template (0 for a data template).
    pub fn new(fields: Vec<FieldSpec>, scope_fields: u16, is_options: bool) -> Self {
        let kinds: Vec<FieldKind> = fields.iter().map(|f| classify(*f)).collect();
        let mut min_len = 0usize;
        let mut variable = false;
        let mut ops = Vec::new();
        for (f, kind) in fields.iter().zip(&kinds) {
            if f.len == VARIABLE_LENGTH {
                variable = true;
                min_len += 1;
            } else {
                if *kind != FieldKind::Ignored {
                    ops.push(FieldOp {
                        offset: min_len,
                        len: usize::from(f.len),
                        kind: *kind,
                    });
                }
                min_len += usize::from(f.len);
            }
        }
        if variable {
            ops.clear();
        }
        let fast = (!variable && !is_options)
            .then(|| FastLayout::compile(&ops, min_len))
            .flatten()
            .map(Box::new);
        Template {
            fields,
            kinds,
            scope_fields,
            is_options,
            min_len,
            fixed_len: (!variable).then_some(min_len),
            ops,
            fast,
        }
    }

    /// The field specifiers, in wire order.
    pub fn fields(&self) -> &[FieldSpec] {
        &self.fields
    }

    /// Field specifiers with their compiled meaning.
    pub fn compiled(&self) -> impl Iterator<Item = (FieldSpec, FieldKind)> + '_ {
        self.fields.iter().copied().zip(self.kinds.iter().copied())
    }

    /// The straight-line layout of a plain fixed-length data template, if it is one.
    pub fn fast_layout(&self) -> Option<&FastLayout> {
        self.fast.as_deref()
    }

    /// The wanted fields of a fixed-length template with their offsets; empty for templates
    /// with variable-length fields (read those with [`Template::compiled`]).
    pub fn ops(&self) -> &[FieldOp] {
        &self.ops
    }

    /// Whether this is an options template (IPFIX set 3, NetFlow v9 flowset 1).
    pub fn is_options(&self) -> bool {
        self.is_options
    }

    /// Number of scope fields (options templates).
    pub fn scope_fields(&self) -> u16 {
        self.scope_fields
    }

    /// The smallest number of bytes a record can take (variable-length fields count one byte).
    /// Always above zero for a template the cache accepts, so decoding loops always progress.
    pub fn min_record_len(&self) -> usize {
        self.min_len
    }

    /// The record length when every field has a fixed length.
    pub fn fixed_record_len(&self) -> Option<usize> {
        self.fixed_len
    }
}

/// Limits that keep a hostile or broken exporter from growing the cache without bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheLimits {
    /// Templates kept per scope; more are refused.
    pub max_templates_per_scope: usize,
    /// Scopes (exporter × domain × protocol) kept; more are refused.
    pub max_scopes: usize,
    /// Data sets buffered while waiting for their template, over all scopes.
    pub max_pending_sets: usize,
    /// Bytes buffered while waiting for templates, over all scopes.
    pub max_pending_bytes: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_templates_per_scope: 4096,
            max_scopes: 65_536,
            max_pending_sets: 256,
            max_pending_bytes: 1 << 20,
        }
    }
}

/// What an exporter's options records told us about sampling.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamplingState {
    /// Rate from an options record that named no sampler: applies to every record.
    pub default_rate: Option<u32>,
    /// Rates by sampler id / selector id.
    pub by_sampler: Vec<(u64, u32)>,
}

impl SamplingState {
    /// Records a rate learned from an options record; whether that changed anything.
    pub fn learn(&mut self, sampler: Option<u64>, rate: u32) -> bool {
        match sampler {
            None => self.default_rate.replace(rate) != Some(rate),
            Some(id) => match self.by_sampler.iter().position(|(s, _)| *s == id) {
                Some(i) => self
                    .by_sampler
                    .get_mut(i)
                    .is_some_and(|slot| std::mem::replace(&mut slot.1, rate) != rate),
                None if self.by_sampler.len() < 256 => {
                    self.by_sampler.push((id, rate));
                    true
                }
                None => false,
            },
        }
    }

    /// The rate for a record naming `sampler` (or none).
    pub fn rate_for(&self, sampler: Option<u64>) -> Option<u32> {
        sampler
            .and_then(|id| {
                self.by_sampler
                    .iter()
                    .find(|(s, _)| *s == id)
                    .map(|(_, r)| *r)
            })
            .or(self.default_rate)
    }
}

/// Everything known about one template scope.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeState {
    /// Templates by id.
    pub templates: HashMap<u16, Template, FastHash>,
    /// Sampling learned from options records.
    pub sampling: SamplingState,
    /// IPFIX systemInitTimeMilliseconds learned from an options record.
    pub system_init_ms: Option<u64>,
}

/// A data set waiting for its template, with the header clock it arrived under.
#[derive(Clone, Debug)]
pub(crate) struct PendingSet {
    pub scope: TemplateScope,
    pub template_id: u16,
    pub export_ms: u64,
    pub sys_uptime: Option<u32>,
    pub data: Vec<u8>,
}

/// Templates and exporter state for every exporter a collector hears from.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "CacheDef", into = "CacheDef")]
pub struct TemplateCache {
    scopes: HashMap<TemplateScope, ScopeState, FastHash>,
    limits: CacheLimits,
    pending: VecDeque<PendingSet>,
    pending_bytes: usize,
    /// Changes to what is saved, counted (see [`TemplateCache::changes`]).
    changes: u64,
}

/// Serialised form of the cache: a list, since map keys must be strings in JSON.
#[derive(Serialize, Deserialize)]
struct CacheDef {
    limits: CacheLimits,
    scopes: Vec<(TemplateScope, ScopeState)>,
}

impl From<CacheDef> for TemplateCache {
    fn from(d: CacheDef) -> Self {
        TemplateCache {
            scopes: d.scopes.into_iter().collect(),
            limits: d.limits,
            pending: VecDeque::new(),
            pending_bytes: 0,
            changes: 0,
        }
    }
}

impl From<TemplateCache> for CacheDef {
    fn from(c: TemplateCache) -> Self {
        CacheDef {
            limits: c.limits,
            scopes: c.scopes.into_iter().collect(),
        }
    }
}

/// The outcome of offering the cache a new template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// Stored (new or refreshed).
    Stored,
    /// Refused: a cache limit was reached.
    LimitReached,
}

impl TemplateCache {
    /// An empty cache with default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache with the given limits.
    pub fn with_limits(limits: CacheLimits) -> Self {
        TemplateCache {
            limits,
            ..Self::default()
        }
    }

    /// Number of scopes known.
    pub fn scope_count(&self) -> usize {
        self.scopes.len()
    }

    /// Total templates over all scopes.
    pub fn template_count(&self) -> usize {
        self.scopes.values().map(|s| s.templates.len()).sum()
    }

    /// Makes every template take the general path (tests compare the two paths).
    #[cfg(test)]
    pub(crate) fn disable_fast_paths(&mut self) {
        for state in self.scopes.values_mut() {
            for t in state.templates.values_mut() {
                t.fast = None;
            }
        }
    }

    /// Data sets buffered while waiting for templates.
    pub fn pending_sets(&self) -> usize {
        self.pending.len()
    }

    /// The state of one scope, if known.
    pub fn scope(&self, scope: &TemplateScope) -> Option<&ScopeState> {
        self.scopes.get(scope)
    }

    /// Looks up a template.
    pub fn template(&self, scope: &TemplateScope, id: u16) -> Option<&Template> {
        self.scopes.get(scope).and_then(|s| s.templates.get(&id))
    }

    pub(crate) fn scope_mut(&mut self, scope: TemplateScope) -> Option<&mut ScopeState> {
        if !self.scopes.contains_key(&scope) && self.scopes.len() >= self.limits.max_scopes {
            return None;
        }
        Some(self.scopes.entry(scope).or_default())
    }

    /// Stores (or refreshes) a template.
    pub fn learn(&mut self, scope: TemplateScope, id: u16, template: Template) -> Learned {
        let max = self.limits.max_templates_per_scope;
        let Some(state) = self.scope_mut(scope) else {
            return Learned::LimitReached;
        };
        if !state.templates.contains_key(&id) && state.templates.len() >= max {
            return Learned::LimitReached;
        }
        // Exporters send the same templates again every few packets: only a new or changed
        // one changes what a restart must remember.
        if state.templates.get(&id) != Some(&template) {
            state.templates.insert(id, template);
            self.changes += 1;
        }
        Learned::Stored
    }

    /// How many times what is saved (templates, sampling rates, exporter clocks) has changed
    /// since the cache was made or loaded: a collector saves the cache when this moves, not
    /// every time an exporter repeats a template it already sent.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Counts a change made through [`TemplateCache::scope_mut`].
    pub(crate) fn note_change(&mut self) {
        self.changes += 1;
    }

    /// Withdraws one template; returns whether it existed.
    pub fn withdraw(&mut self, scope: &TemplateScope, id: u16) -> bool {
        let existed = self
            .scopes
            .get_mut(scope)
            .is_some_and(|s| s.templates.remove(&id).is_some());
        if existed {
            self.changes += 1;
        }
        existed
    }

    /// Withdraws every data template (or every options template) of a scope; returns how many.
    pub fn withdraw_all(&mut self, scope: &TemplateScope, options: bool) -> usize {
        let Some(s) = self.scopes.get_mut(scope) else {
            return 0;
        };
        let before = s.templates.len();
        s.templates.retain(|_, t| t.is_options() != options);
        let withdrawn = before - s.templates.len();
        if withdrawn > 0 {
            self.changes += 1;
        }
        withdrawn
    }

    /// Buffers a data set that arrived before its template. Returns how many older sets were
    /// dropped to stay within the limits (the new set itself is dropped if it alone is too big).
    pub(crate) fn buffer(&mut self, set: PendingSet) -> (bool, u32) {
        let len = set.data.len();
        if len > self.limits.max_pending_bytes || self.limits.max_pending_sets == 0 {
            return (false, 0);
        }
        let mut dropped = 0;
        while self.pending.len() >= self.limits.max_pending_sets
            || self.pending_bytes + len > self.limits.max_pending_bytes
        {
            match self.pending.pop_front() {
                Some(old) => {
                    self.pending_bytes -= old.data.len();
                    dropped += 1;
                }
                None => break,
            }
        }
        self.pending_bytes += len;
        self.pending.push_back(set);
        (true, dropped)
    }

    /// Removes and returns the buffered sets for one template, oldest first.
    pub(crate) fn take_pending(&mut self, scope: &TemplateScope, id: u16) -> Vec<PendingSet> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.pending.len());
        for p in self.pending.drain(..) {
            if p.scope == *scope && p.template_id == id {
                self.pending_bytes -= p.data.len();
                taken.push(p);
            } else {
                kept.push_back(p);
            }
        }
        self.pending = kept;
        taken
    }
}
