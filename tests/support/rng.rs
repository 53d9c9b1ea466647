// The one deterministic random generator of the tests, benches and the
// compare example (xorshift64), brought in with `include!` so that each
// keeps its own module layout. Failures replay from their seed.

/// A deterministic xorshift64 generator.
pub struct Rng(pub u64);

impl Rng {
    /// The next value (never 0 for a non-zero seed).
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
