//! Sequence-gap accounting per exporter stream. Each format numbers differently (v5: flows before
//! this packet; v9: packets; IPFIX: data records before this message; sFlow: datagrams), and some
//! exporters are off by one message (softflowd's IPFIX sequence already counts the records of
//! the message that carries it, so it leads by one message). A tracker learns which of the two numberings a stream uses before it counts anything as lost, and treats
//! a big jump back or forward as a restart, not as loss.

/// Jumps larger than this are restarts or resets, not loss.
const MAX_GAP: u32 = 1 << 20;

/// What one packet's sequence number said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// First packet of the stream.
    Start,
    /// In order.
    InOrder,
    /// `n` units (records or packets) are missing before this one.
    Lost(u32),
    /// The numbering restarted or went backwards (exporter restart, reordering).
    Reset,
}

/// The state of one stream (one exporter, observation domain and format).
#[derive(Clone, Copy, Debug, Default)]
pub struct SequenceTracker {
    last: Option<(u32, u32)>,
    leading: bool,
}

impl SequenceTracker {
    /// Takes a packet's sequence number and the units it carries (records for v5/IPFIX, 1 for
    /// v9/sFlow packets).
    pub fn observe(&mut self, sequence: u32, count: u32) -> Verdict {
        let Some((last_seq, last_count)) = self.last else {
            self.last = Some((sequence, count));
            return Verdict::Start;
        };
        let standard = last_seq.wrapping_add(last_count);
        let leading = last_seq.wrapping_add(count);
        let expected = if self.leading { leading } else { standard };
        let verdict = if sequence == expected {
            Verdict::InOrder
        } else if sequence == leading || sequence == standard {
            // The stream uses the other numbering: learn it, count nothing.
            self.leading = sequence == leading && sequence != standard;
            Verdict::InOrder
        } else {
            let ahead = sequence.wrapping_sub(expected);
            if ahead < MAX_GAP {
                Verdict::Lost(ahead)
            } else {
                Verdict::Reset
            }
        };
        self.last = Some((sequence, count));
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_missing_records_between_ipfix_messages() {
        let mut t = SequenceTracker::default();
        assert_eq!(t.observe(100, 10), Verdict::Start);
        assert_eq!(t.observe(110, 5), Verdict::InOrder);
        assert_eq!(t.observe(130, 5), Verdict::Lost(15));
        assert_eq!(t.observe(135, 1), Verdict::InOrder);
    }

    #[test]
    fn learns_a_stream_that_leads_one_message_without_crying_wolf() {
        // softflowd's IPFIX: the sequence already includes this message's records.
        let counts = [23u32, 30, 26, 7, 7, 12, 1];
        let mut t = SequenceTracker::default();
        let mut total = 0u32;
        for (i, &c) in counts.iter().enumerate() {
            total += c;
            let v = t.observe(total, c);
            assert!(
                matches!(v, Verdict::Start | Verdict::InOrder),
                "message {i}: {v:?}"
            );
        }
        // Real loss is still counted in that numbering: 5 records missing.
        assert_eq!(t.observe(total + 5 + 4, 4), Verdict::Lost(5));
    }

    #[test]
    fn wraps_around_and_treats_big_jumps_as_resets() {
        let mut t = SequenceTracker::default();
        t.observe(u32::MAX - 1, 1);
        assert_eq!(t.observe(u32::MAX, 1), Verdict::InOrder);
        assert_eq!(t.observe(0, 1), Verdict::InOrder);
        assert_eq!(t.observe(5, 1), Verdict::Lost(4));
        assert_eq!(t.observe(0, 1), Verdict::Reset);
        assert_eq!(t.observe(1, 1), Verdict::InOrder);
    }
}
