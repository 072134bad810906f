//! The projection's snapshot format: every tree's records (tree number, key, value), LZ4-
//! compressed in blocks of about 1 MiB, so that taking a snapshot never holds the uncompressed
//! projection in memory. Snapshots of older versions (the records uncompressed) still read.

use super::StoreError;

/// The first bytes of a compressed snapshot (an uncompressed one starts with a tree number).
const MAGIC: &[u8; 4] = b"FLS1";

/// Uncompressed bytes per block.
const BLOCK: usize = 1 << 20;

/// Builds a snapshot record by record.
pub(crate) struct Writer {
    out: Vec<u8>,
    staging: Vec<u8>,
}

impl Writer {
    /// An empty snapshot.
    pub(crate) fn new() -> Writer {
        Writer {
            out: MAGIC.to_vec(),
            staging: Vec::with_capacity(BLOCK),
        }
    }

    /// Adds one record; blocks end on record boundaries.
    pub(crate) fn push(&mut self, tree: u8, key: &[u8], value: &[u8]) {
        if self.staging.len() + 9 + key.len() + value.len() > BLOCK && !self.staging.is_empty() {
            self.seal();
        }
        self.staging.push(tree);
        self.staging
            .extend_from_slice(&(key.len() as u32).to_be_bytes());
        self.staging.extend_from_slice(key);
        self.staging
            .extend_from_slice(&(value.len() as u32).to_be_bytes());
        self.staging.extend_from_slice(value);
    }

    /// Compresses the staged records as one block: its compressed length, then the block.
    fn seal(&mut self) {
        let block = lz4_flex::block::compress_prepend_size(&self.staging);
        self.out
            .extend_from_slice(&(block.len() as u32).to_be_bytes());
        self.out.extend_from_slice(&block);
        self.staging.clear();
    }

    /// The snapshot.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        if !self.staging.is_empty() {
            self.seal();
        }
        self.out.shrink_to_fit();
        self.out
    }
}

/// Calls `f` on every record of a snapshot, compressed or not, in order.
pub(crate) fn for_each_record(
    snapshot: &[u8],
    mut f: impl FnMut(u8, &[u8], &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let Some(mut blocks) = snapshot.strip_prefix(MAGIC) else {
        return records(snapshot, &mut f);
    };
    while !blocks.is_empty() {
        let (block, rest) = take_chunk(blocks)?;
        let plain = lz4_flex::block::decompress_size_prepended(block)
            .map_err(|e| StoreError::BadSnapshot(format!("a block does not decompress: {e}")))?;
        records(&plain, &mut f)?;
        blocks = rest;
    }
    Ok(())
}

fn records(
    mut rest: &[u8],
    f: &mut impl FnMut(u8, &[u8], &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    while let Some((&tree, after)) = rest.split_first() {
        let (key, after) = take_chunk(after)?;
        let (value, after) = take_chunk(after)?;
        f(tree, key, value)?;
        rest = after;
    }
    Ok(())
}

/// A big-endian u32 length and that many bytes.
fn take_chunk(bytes: &[u8]) -> Result<(&[u8], &[u8]), StoreError> {
    let (len, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or_else(|| StoreError::BadSnapshot("truncated length".into()))?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(StoreError::BadSnapshot(format!(
            "chunk of {len} bytes with {} left",
            rest.len()
        )));
    }
    Ok(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(snapshot: &[u8]) -> Vec<(u8, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for_each_record(snapshot, |t, k, v| {
            out.push((t, k.to_vec(), v.to_vec()));
            Ok(())
        })
        .expect("reads");
        out
    }

    #[test]
    fn records_come_back_across_blocks_and_from_the_old_format() {
        let records: Vec<(u8, Vec<u8>, Vec<u8>)> = (0..5_000u32)
            .map(|i| {
                (
                    (i % 6) as u8,
                    i.to_be_bytes().to_vec(),
                    vec![i as u8; 300 + i as usize % 700],
                )
            })
            .collect();
        let mut w = Writer::new();
        let mut old = Vec::new();
        for (t, k, v) in &records {
            w.push(*t, k, v);
            old.push(*t);
            old.extend_from_slice(&(k.len() as u32).to_be_bytes());
            old.extend_from_slice(k);
            old.extend_from_slice(&(v.len() as u32).to_be_bytes());
            old.extend_from_slice(v);
        }
        let snapshot = w.finish();
        assert!(
            snapshot.len() < old.len() / 4,
            "{} vs {}",
            snapshot.len(),
            old.len()
        );
        assert_eq!(read(&snapshot), records);
        assert_eq!(read(&old), records);
        assert_eq!(read(&Writer::new().finish()), vec![]);
    }

    #[test]
    fn damaged_snapshots_are_errors() {
        let mut w = Writer::new();
        w.push(1, b"key", b"value");
        let good = w.finish();
        for bad in [
            &good[..good.len() - 1],
            &good[..6],
            b"FLS1\x00\x00\x00\x02ab",
        ] {
            assert!(for_each_record(bad, |_, _, _| Ok(())).is_err(), "{bad:?}");
        }
    }
}
