//! Event ids: UUID v7 (RFC 9562) with a counter, cheap enough to make for
//! every event.

use uuid::Uuid;

/// The sequencer's source of event ids: UUID v7 (RFC 9562), the batch's
/// millisecond timestamp followed by 74 bits that are unique within this
/// sequencer and random across sequencers.
///
/// The 74 bits are a 42-bit counter (rand_a and the top of rand_b, the
/// RFC's "fixed bit-length dedicated counter" method: ids of one sequencer
/// sort in the order it gave them, except once every 2^42 ids, when the
/// counter wraps within a millisecond) over a 32-bit random salt drawn
/// once. The counter starts at a random value too. No random bits are drawn per
/// event: that would cost more than the rest of the id.
pub(crate) struct Ids {
    counter: u64,
    salt: u64,
}

impl Ids {
    const COUNTER_BITS: u32 = 42;

    pub(crate) fn new() -> Ids {
        let seed = Uuid::new_v4().as_u128();
        Ids {
            counter: (seed as u64) >> (64 - Self::COUNTER_BITS),
            salt: (seed >> 64) as u64 & 0xFFFF_FFFF,
        }
    }

    pub(crate) fn next(&mut self, millis: u64) -> Uuid {
        let counter = self.counter & ((1 << Self::COUNTER_BITS) - 1);
        self.counter = self.counter.wrapping_add(1);
        // rand_a: the counter's top 12 bits; rand_b: its other 30 bits, then
        // the salt.
        let rand_a = (counter >> 30) as u128;
        let rand_b = ((counter & ((1 << 30) - 1)) as u128) << 32 | self.salt as u128;
        let bits = (millis as u128 & ((1 << 48) - 1)) << 80
            | 0x7 << 76
            | rand_a << 64
            | 0b10 << 62
            | rand_b;
        Uuid::from_u128(bits)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Ids;

    #[test]
    fn ids_are_v7_with_the_batch_time_and_increase_within_a_millisecond() {
        let mut ids = Ids::new();
        let millis = 1_764_000_000_123;
        let all: Vec<_> = (0..10_000).map(|_| ids.next(millis)).collect();
        for id in &all {
            assert_eq!(id.get_version_num(), 7);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            let (secs, nanos) = id.get_timestamp().expect("v7 timestamp").to_unix();
            assert_eq!(secs * 1000 + u64::from(nanos) / 1_000_000, millis);
        }
        // Strictly increasing (the counter only wraps after 2^42 ids, and
        // the test starts far enough below that, or sees one wrap at most).
        let wraps = all.windows(2).filter(|w| w[0] >= w[1]).count();
        assert!(wraps <= 1, "{wraps} decreases");
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
    }

    #[test]
    fn two_sequencers_give_different_ids_for_the_same_millisecond() {
        let (mut a, mut b) = (Ids::new(), Ids::new());
        let from_a: std::collections::HashSet<_> = (0..1000).map(|_| a.next(7)).collect();
        assert!((0..1000).all(|_| !from_a.contains(&b.next(7))));
    }
}
