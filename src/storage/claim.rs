//! What snapshots and checkpoints claim about the log they were made
//! from, and how a claim stands against the recovered log.
//!
//! A snapshot or checkpoint is made from one log (its id), for one view or
//! projection (its name), at one position, whose event had one id; and it
//! says whether the log was synced before it was written. It fits the
//! recovered log only if all four match. One that is synced and lies beyond
//! the recovered head proves that the log lost positions it had durably
//! acknowledged.

use std::path::Path;

use uuid::Uuid;

use crate::position::Position;

/// What a snapshot or checkpoint says it was made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Claim {
    pub(crate) log_id: Uuid,
    /// The view's or projection's name.
    pub(crate) name: String,
    pub(crate) position: Position,
    /// The id of the event at `position` (nil at position 0).
    pub(crate) event_id: Uuid,
    /// The log was synced up to `position` before this was written.
    pub(crate) synced: bool,
}

/// Fixed bytes of an encoded claim, besides the name.
const FIXED: usize = 16 + 8 + 16 + 1 + 2;

impl Claim {
    /// Appends the claim's bytes: log id, position, event id, flags, name
    /// length (u16) and name.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let name = self.name.as_bytes();
        let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(self.log_id.as_bytes());
        out.extend_from_slice(&self.position.0.to_le_bytes());
        out.extend_from_slice(self.event_id.as_bytes());
        out.push(u8::from(self.synced));
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&name[..usize::from(name_len)]);
    }

    /// Decodes a claim at the start of `b`; the claim and the bytes it used.
    pub(crate) fn decode(b: &[u8]) -> Option<(Claim, usize)> {
        let fixed = b.get(..FIXED)?;
        let uuid = |i: usize| {
            let mut id = [0u8; 16];
            id.copy_from_slice(&fixed[i..i + 16]);
            Uuid::from_bytes(id)
        };
        let mut position = [0u8; 8];
        position.copy_from_slice(&fixed[16..24]);
        let name_len = usize::from(u16::from_le_bytes([fixed[41], fixed[42]]));
        let name = b.get(FIXED..FIXED + name_len)?;
        let claim = Claim {
            log_id: uuid(0),
            position: Position(u64::from_le_bytes(position)),
            event_id: uuid(24),
            synced: fixed[40] & 1 == 1,
            name: String::from_utf8(name.to_vec()).ok()?,
        };
        Some((claim, FIXED + name_len))
    }

    /// How the claim stands against the recovered log.
    pub(crate) fn judge(&self, log: &LogFacts<'_>, name: &str) -> Verdict {
        if self.log_id != log.log_id {
            return Verdict::Unfit(format!("made from another log ({})", self.log_id));
        }
        if self.name != name {
            return Verdict::Unfit(format!("made for `{}`, not `{name}`", self.name));
        }
        if self.position > log.head {
            return match self.synced {
                true => Verdict::Proof,
                false => Verdict::Beyond,
            };
        }
        if self.position.next() < log.first {
            return Verdict::Archived;
        }
        if self.position > Position::ZERO && (log.id_at)(self.position) != Some(self.event_id) {
            return Verdict::Unfit(format!(
                "made from another event at position {} (the log's tail was lost and written again)",
                self.position
            ));
        }
        Verdict::Fits
    }
}

/// What a claim is judged against.
pub(crate) struct LogFacts<'a> {
    pub(crate) log_id: Uuid,
    pub(crate) head: Position,
    /// The first position the log holds (after its horizon, if archived).
    pub(crate) first: Position,
    pub(crate) id_at: &'a dyn Fn(Position) -> Option<Uuid>,
}

/// A claim's standing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It matches the recovered log: usable.
    Fits,
    /// It is beyond the head and synced: the log lost what it proves.
    Proof,
    /// It is of this log and name, beyond the head, but was written while
    /// the log was not synced: a loss the durability setting allowed.
    Beyond,
    /// It is older than the log's horizon: it cannot be checked or used
    /// (the events after it were archived), and is left alone.
    Archived,
    /// It does not belong to this log at this state: never used.
    Unfit(String),
}

/// A kind of file that carries a claim.
pub(crate) struct ClaimFile {
    /// What it is, for messages ("snapshot", "checkpoint").
    pub(crate) what: &'static str,
    /// Reads the claim of the file at `path` (header only).
    pub(crate) read: fn(&Path) -> std::result::Result<Claim, String>,
    /// Whether one beyond the head without proof is moved back to the head
    /// (a checkpoint: what it handled up to the head is still true) rather
    /// than set aside (a snapshot: its state holds events the log lost).
    pub(crate) rewinds: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> Claim {
        Claim {
            log_id: Uuid::from_u128(1),
            name: "totals".into(),
            position: Position(5),
            event_id: Uuid::from_u128(55),
            synced: true,
        }
    }

    #[test]
    fn a_claim_round_trips() {
        let mut b = Vec::new();
        claim().encode(&mut b);
        b.extend_from_slice(b"rest");
        let (c, used) = Claim::decode(&b).unwrap();
        assert_eq!((c, &b[used..]), (claim(), &b"rest"[..]));
        assert!(Claim::decode(&b[..10]).is_none());
    }

    #[test]
    fn a_claim_fits_only_its_own_log_view_and_event() {
        let id_at = |p: Position| (p.0 <= 7).then(|| Uuid::from_u128(u128::from(p.0) * 11));
        let log = LogFacts {
            log_id: Uuid::from_u128(1),
            head: Position(7),
            first: Position::FIRST,
            id_at: &id_at,
        };
        assert_eq!(claim().judge(&log, "totals"), Verdict::Fits);
        assert!(matches!(claim().judge(&log, "other"), Verdict::Unfit(_)));
        let foreign = Claim {
            log_id: Uuid::from_u128(2),
            ..claim()
        };
        assert!(matches!(foreign.judge(&log, "totals"), Verdict::Unfit(_)));
        let rewritten = Claim {
            event_id: Uuid::from_u128(56),
            ..claim()
        };
        assert!(matches!(rewritten.judge(&log, "totals"), Verdict::Unfit(_)));
        let beyond = Claim {
            position: Position(9),
            ..claim()
        };
        assert_eq!(beyond.judge(&log, "totals"), Verdict::Proof);
        let unsynced = Claim {
            synced: false,
            ..beyond
        };
        assert_eq!(unsynced.judge(&log, "totals"), Verdict::Beyond);
    }
}
