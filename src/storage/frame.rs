//! The byte layout of segments: the segment header, batch headers and
//! event frames, and the codec of record bodies.
//!
//! ```text
//! segment header (40 bytes): "RWLOGSEG" | format u16 | codec u16 | first position u64 | log id [16] | CRC32C of the 36 bytes before
//! batch header   (28 bytes): "BTCH" | first position u64 | events u32 | frame bytes u64 | CRC32C of the 24 bytes before
//! frame:                     body length u32 | CRC32C of body u32 | body
//! ```
//!
//! All integers are little-endian. A frame's body is the record's head
//! (position, stream, version, id, time, event type, schema version,
//! metadata) and then its payload, both in bincode 2's standard
//! configuration.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::event::{Event, Metadata, Recorded, Timestamp};
use crate::position::{Position, StreamId};

use super::codec::{self, CODEC_BINCODE2};
use super::upcast::Upcasters;

const SEGMENT_MAGIC: &[u8; 8] = b"RWLOGSEG";
/// 1: frames without batch boundaries or log id (rwlog 0.1 before the
/// integrity work); 2: this layout.
pub(crate) const FORMAT_VERSION: u16 = 2;
pub(crate) const SEGMENT_HEADER: usize = 40;
const BATCH_MAGIC: &[u8; 4] = b"BTCH";
pub(crate) const BATCH_HEADER: usize = 28;
pub(crate) const FRAME_HEADER: usize = 8;

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(bytes)
}

/// A segment's header.
pub(crate) fn segment_header(first: u64, log_id: Uuid) -> [u8; SEGMENT_HEADER] {
    let mut h = [0u8; SEGMENT_HEADER];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[10..12].copy_from_slice(&CODEC_BINCODE2.to_le_bytes());
    h[12..20].copy_from_slice(&first.to_le_bytes());
    h[20..36].copy_from_slice(log_id.as_bytes());
    let crc = crc32c::crc32c(&h[..36]);
    h[36..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// A parsed segment header.
pub(crate) struct SegmentHeader {
    pub(crate) first: u64,
    pub(crate) log_id: Uuid,
}

/// Parses a segment header; on error, the offset of the bad field and why.
pub(crate) fn parse_segment_header(b: &[u8]) -> std::result::Result<SegmentHeader, (u64, String)> {
    let short = || (0, "a segment shorter than its header".to_string());
    if b.len() < 10 {
        return Err(short());
    }
    if &b[..8] != SEGMENT_MAGIC {
        return Err((0, "not an rwlog segment (bad magic)".into()));
    }
    let format = u16_at(b, 8);
    if format != FORMAT_VERSION {
        let why = if format == 1 {
            "segment format 1 (rwlog 0.1, without batch boundaries); this version reads format 2 only"
                .to_string()
        } else {
            format!("unknown segment format version {format}")
        };
        return Err((8, why));
    }
    if b.len() < SEGMENT_HEADER {
        return Err(short());
    }
    if crc32c::crc32c(&b[..36]) != u32_at(b, 36) {
        return Err((36, "the segment header's checksum does not match".into()));
    }
    let codec = u16_at(b, 10);
    if codec != CODEC_BINCODE2 {
        return Err((10, format!("unknown codec {codec}")));
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&b[20..36]);
    Ok(SegmentHeader {
        first: u64_at(b, 12),
        log_id: Uuid::from_bytes(id),
    })
}

/// Whether `b` is a segment whose header's writing was interrupted: less
/// than the whole of `expected`, then only zeros (the file's length may
/// have reached past the header without its data). No batch of such a
/// segment was ever synced: its header is synced before any batch is
/// written.
pub(crate) fn is_interrupted_header(b: &[u8], expected: &[u8; SEGMENT_HEADER]) -> bool {
    let same = b.iter().zip(expected).take_while(|(x, y)| x == y).count();
    same < SEGMENT_HEADER && b[same..].iter().all(|&x| x == 0)
}

/// Fills the batch header at the start of `batch`, whose frames follow it.
pub(crate) fn fill_batch_header(batch: &mut [u8], first: u64, count: u32) {
    let bytes = (batch.len() - BATCH_HEADER) as u64;
    batch[..4].copy_from_slice(BATCH_MAGIC);
    batch[4..12].copy_from_slice(&first.to_le_bytes());
    batch[12..16].copy_from_slice(&count.to_le_bytes());
    batch[16..24].copy_from_slice(&bytes.to_le_bytes());
    let crc = crc32c::crc32c(&batch[..24]);
    batch[24..28].copy_from_slice(&crc.to_le_bytes());
}

/// A parsed batch header.
pub(crate) struct BatchHeader {
    pub(crate) first: u64,
    pub(crate) count: u32,
    /// The bytes of the batch's frames, which follow the header.
    pub(crate) bytes: u64,
}

/// Parses a batch header (`b` holds at least [`BATCH_HEADER`] bytes); `None`
/// if its magic or checksum is wrong.
pub(crate) fn parse_batch_header(b: &[u8]) -> Option<BatchHeader> {
    let ok = &b[..4] == BATCH_MAGIC && crc32c::crc32c(&b[..24]) == u32_at(b, 24);
    ok.then(|| BatchHeader {
        first: u64_at(b, 4),
        count: u32_at(b, 12),
        bytes: u64_at(b, 16),
    })
}

/// A frame's header: its body's length and checksum.
pub(crate) fn parse_frame_header(b: &[u8]) -> (u32, u32) {
    (u32_at(b, 0), u32_at(b, 4))
}

/// The fixed part of a record, as written.
#[derive(Serialize)]
struct HeadRef<'a> {
    position: u64,
    stream: &'a str,
    version: u64,
    id: Uuid,
    recorded_at: u64,
    event_type: &'a str,
    schema_version: u32,
    metadata: Option<&'a Metadata>,
}

/// The fixed part of a record, as read.
#[derive(Deserialize)]
struct Head {
    position: u64,
    stream: String,
    version: u64,
    id: Uuid,
    recorded_at: u64,
    event_type: String,
    schema_version: u32,
    metadata: Option<Metadata>,
}

/// Appends one record's frame to `buf`. On error (the event encodes to more
/// than `max` bytes, or does not encode) `buf` is as it was.
pub(crate) fn encode_frame<E: Event + Serialize>(
    buf: &mut Vec<u8>,
    r: &Recorded<E>,
    max: u32,
) -> Result<()> {
    let start = buf.len();
    let result = encode_body(buf, r, max);
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

fn encode_body<E: Event + Serialize>(buf: &mut Vec<u8>, r: &Recorded<E>, max: u32) -> Result<()> {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_HEADER]);
    let head = HeadRef {
        position: r.position.0,
        stream: r.stream.as_str(),
        version: r.version,
        id: r.id,
        recorded_at: r.recorded_at.as_nanos(),
        event_type: r.payload.event_type(),
        schema_version: r.schema_version,
        metadata: r.metadata.as_deref(),
    };
    let codec_error = |e: bincode::error::EncodeError| {
        Error::Codec(format!("encoding the event for stream `{}`: {e}", r.stream))
    };
    bincode::serde::encode_into_std_write(&head, buf, codec::config()).map_err(codec_error)?;
    bincode::serde::encode_into_std_write(&r.payload, buf, codec::config()).map_err(codec_error)?;
    let body_len = buf.len() - start - FRAME_HEADER;
    let len = u32::try_from(body_len)
        .ok()
        .filter(|&l| l <= max)
        .ok_or(Error::TooLarge {
            what: "an encoded event",
            size: body_len as u64,
            max: u64::from(max),
        })?;
    let crc = crc32c::crc32c(&buf[start + FRAME_HEADER..]);
    crate::telemetry::event_bytes(FRAME_HEADER + body_len);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The leading fields of a record, as read without its type.
#[derive(Deserialize)]
struct HeadPrefix {
    _position: u64,
    _stream: String,
    _version: u64,
    id: Uuid,
}

/// The event id in a frame's body (already verified by its checksum),
/// without knowing the event's type.
pub(crate) fn decode_id(body: &[u8]) -> Option<Uuid> {
    codec::decode::<HeadPrefix>(body).ok().map(|(h, _)| h.id)
}

/// The stream, version, id and time in a frame's body (already verified by
/// its checksum), without knowing the event's type.
pub(crate) fn decode_head(body: &[u8]) -> Option<(String, u64, Uuid, crate::event::Timestamp)> {
    let (head, _) = codec::decode::<Head>(body).ok()?;
    let time = crate::event::Timestamp::from_nanos(head.recorded_at);
    Some((head.stream, head.version, head.id, time))
}

/// Decodes a frame's body (already verified by its checksum).
pub(crate) fn decode_record<E: Event + serde::de::DeserializeOwned>(
    body: &[u8],
    upcasters: &Upcasters<E>,
) -> Result<Recorded<E>> {
    let (head, used): (Head, usize) = codec::decode(body).map_err(Error::Codec)?;
    let payload_bytes = &body[used..];
    let payload = if head.schema_version == E::SCHEMA_VERSION {
        codec::decode_whole::<E>(payload_bytes).map_err(Error::Codec)?
    } else {
        upcasters.upcast(
            &head.event_type,
            head.schema_version,
            Position(head.position),
            payload_bytes,
        )?
    };
    Ok(Recorded {
        position: Position(head.position),
        stream: StreamId::from(head.stream),
        version: head.version,
        id: head.id,
        recorded_at: Timestamp::from_nanos(head.recorded_at),
        schema_version: head.schema_version,
        metadata: head.metadata.map(Box::new),
        payload,
    })
}

/// What is wrong with a stored batch's body.
pub(crate) enum Damage {
    /// At this byte of its body.
    At(usize, String),
    /// A frame whose checksum holds, at this byte, does not decode as an
    /// event.
    Decode(usize, Error),
}

/// Decodes the `count` frames of a stored batch's body (a segment's batch
/// or a shared log's row) into `out`: each checked against its checksum
/// and holding the position after the last, from `first`; the body ends
/// with the last frame.
pub(crate) fn decode_body<E: Event + serde::de::DeserializeOwned>(
    body: &[u8],
    first: u64,
    count: u64,
    upcasters: &Upcasters<E>,
    out: &mut Vec<Recorded<E>>,
) -> std::result::Result<(), Damage> {
    let mut at = 0;
    for i in 0..count {
        if body.len() - at < FRAME_HEADER {
            return Err(Damage::At(
                at,
                "the batch ends inside a frame's header".into(),
            ));
        }
        let (len, crc) = parse_frame_header(&body[at..]);
        let start = at + FRAME_HEADER;
        let end = start.saturating_add(len as usize);
        if end > body.len() {
            let why = format!("a frame of {len} bytes runs past the batch's end");
            return Err(Damage::At(at, why));
        }
        if crc32c::crc32c(&body[start..end]) != crc {
            return Err(Damage::At(at, "a frame's checksum does not match".into()));
        }
        let r =
            decode_record::<E>(&body[start..end], upcasters).map_err(|e| Damage::Decode(at, e))?;
        if r.position.0 != first + i {
            let why = format!(
                "the event there says position {}, not {}",
                r.position,
                first + i
            );
            return Err(Damage::At(at, why));
        }
        out.push(r);
        at = end;
    }
    if at != body.len() {
        return Err(Damage::At(
            at,
            format!("{} bytes follow the last frame", body.len() - at),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_any_flipped_bit_is_caught() {
        let id = Uuid::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788);
        let h = segment_header(42, id);
        let parsed = parse_segment_header(&h).ok().unwrap();
        assert_eq!((parsed.first, parsed.log_id), (42, id));
        for bit in 0..SEGMENT_HEADER * 8 {
            let mut bad = h;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(parse_segment_header(&bad).is_err(), "bit {bit}");
        }
        let mut batch = vec![0u8; BATCH_HEADER + 10];
        fill_batch_header(&mut batch, 7, 3);
        let b = parse_batch_header(&batch).unwrap();
        assert_eq!((b.first, b.count, b.bytes), (7, 3, 10));
        for bit in 0..BATCH_HEADER * 8 {
            let mut bad = batch.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(parse_batch_header(&bad).is_none(), "bit {bit}");
        }
    }

    #[test]
    fn an_interrupted_header_is_a_prefix_then_zeros() {
        let h = segment_header(1, Uuid::nil());
        assert!(is_interrupted_header(&[], &h));
        assert!(is_interrupted_header(&h[..11], &h));
        let mut zeros = h[..12].to_vec();
        zeros.extend([0; 5]);
        assert!(is_interrupted_header(&zeros, &h));
        assert!(
            !is_interrupted_header(&h, &h),
            "a whole header is not interrupted"
        );
        assert!(!is_interrupted_header(b"RWLOGSEX", &h));
    }
}
