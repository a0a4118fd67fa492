//! RFC 3339 date-times in UTC with milliseconds (`2026-11-26T19:00:00.123Z`),
//! the form PASETO's `exp`, `nbf` and `iat` claims take, from and to
//! milliseconds since the Unix epoch. Integer civil-calendar arithmetic
//! (H. Hinnant's `days_from_civil`), no clock and no time library.

use alloc::format;
use alloc::string::String;

/// Days from 1970-01-01 to `y-m-d` (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `y-m-d` of the day `z` days after 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The latest instant written: 9999-12-31T23:59:59.999Z.
pub const MAX_MS: u64 = 253_402_300_799_999;

/// `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (clamped to [`MAX_MS`]).
pub fn to_rfc3339(ms: u64) -> String {
    let ms = ms.min(MAX_MS);
    let (days, rem) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// Reads exactly the form [`to_rfc3339`] writes; `None` otherwise.
pub fn from_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 24
        || [4, 7].iter().any(|&i| b[i] != b'-')
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        let digits = &text[from..to];
        digits.bytes().all(|c| c.is_ascii_digit()).then(|| digits.parse().ok()).flatten()
    };
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, min, s, milli) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    if !(1..=12).contains(&m) || d == 0 || h > 23 || min > 59 || s > 59 || y < 1970 {
        return None;
    }
    let days = days_from_civil(i64::from(y), m, d);
    // A day past the month's end comes back as another date.
    if civil_from_days(days) != (i64::from(y), m, d) {
        return None;
    }
    let ms = (days as u64) * 86_400_000 + u64::from(h) * 3_600_000 + u64::from(min) * 60_000 + u64::from(s) * 1000 + u64::from(milli);
    Some(ms)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(to_rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(to_rfc3339(1_795_719_600_123), "2026-11-26T19:00:00.123Z");
        assert_eq!(to_rfc3339(u64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(from_rfc3339("2026-11-26T19:00:00.123Z"), Some(1_795_719_600_123));
        for bad in [
            "2026-02-30T00:00:00.000Z",
            "2026-11-26T19:00:00Z",
            "2026-11-26T24:00:00.000Z",
            "2026-11-26 19:00:00.000Z",
            "+026-11-26T19:00:00.000Z",
        ] {
            assert_eq!(from_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips() {
        for ms in [0, 1, 86_399_999, 86_400_000, 1_700_000_000_000, 4_102_444_800_000, MAX_MS] {
            assert_eq!(from_rfc3339(&to_rfc3339(ms)), Some(ms));
        }
        let mut ms = 0u64;
        while ms < MAX_MS {
            assert_eq!(from_rfc3339(&to_rfc3339(ms)), Some(ms));
            ms += 7_919_999_937;
        }
    }
}
