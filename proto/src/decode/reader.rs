//! The bounds-checked big-endian reader every decoder reads through. It never panics: each read
//! checks the remaining length and reports the absolute offset of a short read.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::DecodeError;

/// A cursor over a borrowed byte slice. `base` is the offset of `buf` inside the whole packet,
/// so errors name absolute packet offsets even for sub-readers.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over a whole packet.
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// Absolute offset of the next byte in the packet.
    #[inline]
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes not yet read.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// True when everything has been read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    #[inline]
    fn short(&self, n: usize, what: &'static str) -> DecodeError {
        DecodeError::Truncated {
            offset: self.offset(),
            needed: n.saturating_sub(self.remaining()),
            what,
        }
    }

    /// Takes the next `n` bytes.
    #[inline]
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.short(n, what))?;
        match self.buf.get(self.pos..end) {
            Some(s) => {
                self.pos = end;
                Ok(s)
            }
            None => Err(self.short(n, what)),
        }
    }

    /// Takes the next `n` bytes as a reader of their own (for a set, sample or record).
    #[inline]
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, DecodeError> {
        let base = self.offset();
        let buf = self.bytes(n, what)?;
        Ok(Reader { buf, pos: 0, base })
    }

    /// Skips `n` bytes.
    #[inline]
    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        self.bytes(n, what).map(|_| ())
    }

    #[inline]
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.bytes(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// Reads one byte.
    #[inline]
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a big-endian u16.
    #[inline]
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian u32.
    #[inline]
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian u64.
    #[inline]
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Reads an IPv4 address.
    #[inline]
    pub fn ipv4(&mut self, what: &'static str) -> Result<Ipv4Addr, DecodeError> {
        Ok(Ipv4Addr::from(self.array::<4>(what)?))
    }

    /// Reads an IPv6 address.
    #[inline]
    pub fn ipv6(&mut self, what: &'static str) -> Result<Ipv6Addr, DecodeError> {
        Ok(Ipv6Addr::from(self.array::<16>(what)?))
    }

    /// Reads a u16 at `at` (relative to this reader) without moving.
    #[inline]
    pub fn peek_u16(&self, at: usize, what: &'static str) -> Result<u16, DecodeError> {
        let mut r = *self;
        r.pos = at;
        r.u16(what)
    }

    /// Reads a u32 at `at` (relative to this reader) without moving.
    #[inline]
    pub fn peek_u32(&self, at: usize, what: &'static str) -> Result<u32, DecodeError> {
        let mut r = *self;
        r.pos = at;
        r.u32(what)
    }
}

/// Reads a big-endian unsigned integer of 1 to 8 bytes (IPFIX reduced-size encoding); longer
/// slices keep their last 8 bytes, an empty slice is 0.
#[inline]
pub fn be_uint(bytes: &[u8]) -> u64 {
    match *bytes {
        [a] => u64::from(a),
        [a, b] => u64::from(u16::from_be_bytes([a, b])),
        [a, b, c, d] => u64::from(u32::from_be_bytes([a, b, c, d])),
        [a, b, c, d, e, f, g, h] => u64::from_be_bytes([a, b, c, d, e, f, g, h]),
        _ => {
            let tail = bytes.len().saturating_sub(8);
            bytes
                .iter()
                .skip(tail)
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reads_report_the_absolute_offset() {
        let data = [0u8, 1, 2, 3, 4, 5];
        let mut r = Reader::new(&data);
        r.skip(2, "a").ok();
        let mut sub = r.sub(3, "sub").expect("sub");
        assert_eq!(sub.u16("x"), Ok(0x0203));
        assert_eq!(
            sub.u16("y"),
            Err(DecodeError::Truncated {
                offset: 4,
                needed: 1,
                what: "y"
            })
        );
    }

    #[test]
    fn huge_lengths_do_not_overflow() {
        let data = [0u8; 4];
        let mut r = Reader::new(&data);
        r.skip(1, "a").ok();
        assert!(r.bytes(usize::MAX, "huge").is_err());
    }

    #[test]
    fn be_uint_reads_reduced_size_integers() {
        assert_eq!(be_uint(&[]), 0);
        assert_eq!(be_uint(&[0x12]), 0x12);
        assert_eq!(be_uint(&[0x12, 0x34, 0x56]), 0x123456);
        assert_eq!(be_uint(&[1, 0, 0, 0, 0, 0, 0, 0, 2]), 2);
    }
}
