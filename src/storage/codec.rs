//! The codec of everything stored: bincode 2's standard configuration. A
//! decode may allocate at most 4096 times the bytes it reads (at least
//! 1 MiB), so a length prefix in a hostile file, even one with a valid
//! checksum, cannot make the reader allocate without limit.

use bincode::config::{Configuration, Limit};
use serde::de::DeserializeOwned;

/// The codec id stored in segment and snapshot headers: bincode 2,
/// standard configuration.
pub(crate) const CODEC_BINCODE2: u16 = 1;

/// How many times its own size a decoded value may claim in memory. A
/// value's in-memory size can exceed its encoded size many times over (a
/// `Vec` of `None`s of a large type), so the factor is generous.
const GROWTH: usize = 4096;

/// The configuration for encoding.
pub(crate) fn config() -> Configuration {
    bincode::config::standard()
}

const fn tier(shift: u32) -> usize {
    if shift >= usize::BITS {
        usize::MAX
    } else {
        1 << shift
    }
}

fn decode_within<T: DeserializeOwned, const N: usize>(
    bytes: &[u8],
) -> Result<(T, usize), bincode::error::DecodeError> {
    let config: Configuration<_, _, Limit<N>> = config().with_limit::<N>();
    bincode::serde::decode_from_slice(bytes, config)
}

/// Decodes a `T` from the start of `bytes`; the value and the bytes used.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), String> {
    let may_claim = bytes.len().saturating_mul(GROWTH);
    let decoded = if may_claim <= tier(20) {
        decode_within::<T, { tier(20) }>(bytes)
    } else if may_claim <= tier(26) {
        decode_within::<T, { tier(26) }>(bytes)
    } else if may_claim <= tier(32) {
        decode_within::<T, { tier(32) }>(bytes)
    } else if may_claim <= tier(38) {
        decode_within::<T, { tier(38) }>(bytes)
    } else {
        decode_within::<T, { tier(44) }>(bytes)
    };
    decoded.map_err(|e| e.to_string())
}

/// Decodes a `T` that must fill `bytes` exactly.
pub(crate) fn decode_whole<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, used) = decode(bytes)?;
    if used != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - used));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_length_is_an_error_not_an_allocation() {
        // A string that claims 2^61 bytes, in a 12-byte input.
        let mut hostile = vec![0xFD];
        hostile.extend_from_slice(&(1u64 << 61).to_le_bytes());
        hostile.extend_from_slice(b"abc");
        assert!(decode::<String>(&hostile).is_err());
        let v: Vec<Option<[u64; 32]>> = vec![None; 10_000];
        let bytes = bincode::serde::encode_to_vec(&v, config()).unwrap();
        assert_eq!(
            decode_whole::<Vec<Option<[u64; 32]>>>(&bytes)
                .unwrap()
                .len(),
            10_000
        );
    }
}
