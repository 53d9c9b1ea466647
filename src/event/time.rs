//! Timestamps as people read them: RFC 3339 in UTC.

use std::fmt;

use super::Timestamp;

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1_000_000_000;
        let nanos = self.0 % 1_000_000_000;
        let (days, day_secs) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
            day_secs / 3600,
            day_secs / 60 % 60,
            day_secs % 60
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The proleptic Gregorian date `days` after 1970-01-01 (H. Hinnant's
/// civil-from-days, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::event::Timestamp;

    #[test]
    fn timestamps_read_as_utc_dates() {
        for (days, date) in [
            (0, (1970, 1, 1)),
            (11_016, (2000, 2, 29)),
            (20_783, (2026, 11, 26)),
            (47_541, (2100, 3, 1)),
            (213_503, (2554, 7, 21)),
        ] {
            assert_eq!(civil_from_days(days), date, "{days} days");
        }
        let t = Timestamp::from_nanos(20_783 * 86_400_000_000_000 + 3_723_000_000_042);
        assert_eq!(t.to_string(), "2026-11-26T01:02:03.000000042Z");
        assert_eq!(
            format!("{:?}", Timestamp::from_nanos(u64::MAX)),
            "2554-07-21T23:34:33.709551615Z"
        );
    }
}
