//! Timestamps: one clock read per event, formatted without allocation.
//!
//! RFC 3339 formatting caches the `YYYY-MM-DDTHH:MM:SS` prefix per thread for
//! the current second, so most events only write the fraction.

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, as seconds and nanoseconds since the Unix epoch (UTC).
///
/// ```
/// use spanline_core::Timestamp;
/// let t = Timestamp::from_unix(1_763_758_369, 633_647_000);
/// assert_eq!((t.unix_secs(), t.subsec_nanos()), (1_763_758_369, 633_647_000));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

/// Digits after the decimal point of a formatted timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Precision {
    /// `.123Z`
    Millis,
    /// `.123456Z`
    Micros,
}

impl Timestamp {
    /// Reads the system clock.
    ///
    /// ```
    /// let a = spanline_core::Timestamp::now();
    /// assert!(spanline_core::Timestamp::now() >= a);
    /// ```
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// Builds a timestamp from Unix seconds and nanoseconds (clamped to < 1e9).
    ///
    /// ```
    /// let t = spanline_core::Timestamp::from_unix(1, 2_000_000_000);
    /// assert_eq!(t.subsec_nanos(), 999_999_999, "clamped");
    /// ```
    pub fn from_unix(secs: i64, nanos: u32) -> Self {
        Self {
            secs,
            nanos: nanos.min(999_999_999),
        }
    }

    /// Seconds since the Unix epoch.
    ///
    /// ```
    /// assert_eq!(spanline_core::Timestamp::from_unix(42, 0).unix_secs(), 42);
    /// ```
    pub fn unix_secs(&self) -> i64 {
        self.secs
    }

    /// Nanoseconds within the second.
    ///
    /// ```
    /// assert_eq!(spanline_core::Timestamp::from_unix(0, 5).subsec_nanos(), 5);
    /// ```
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// Milliseconds since the Unix epoch (a Redis stream entry id's time,
    /// JavaScript's `Date`).
    ///
    /// ```
    /// assert_eq!(spanline_core::Timestamp::from_unix(2, 500_000_000).unix_millis(), 2_500);
    /// ```
    pub fn unix_millis(&self) -> i64 {
        self.secs
            .saturating_mul(1000)
            .saturating_add(i64::from(self.nanos / 1_000_000))
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS.fffZ` (UTC) with the given precision.
    pub(crate) fn write_rfc3339(&self, buf: &mut Vec<u8>, precision: Precision) {
        buf.extend_from_slice(&cached_prefix(self.secs));
        buf.push(b'.');
        let (value, digits) = match precision {
            Precision::Millis => (self.nanos / 1_000_000, 3),
            Precision::Micros => (self.nanos / 1_000, 6),
        };
        write_padded(buf, value, digits);
        buf.push(b'Z');
    }

    /// Appends `YYYY-MM-DD HH:MM:SS` (UTC), the console renderer's form.
    ///
    /// ```
    /// let mut buf = Vec::new();
    /// spanline_core::Timestamp::from_unix(86_399, 0).write_human(&mut buf);
    /// assert_eq!(buf, b"1970-01-01 23:59:59");
    /// ```
    #[doc(hidden)]
    pub fn write_human(&self, buf: &mut Vec<u8>) {
        let mut prefix = cached_prefix(self.secs);
        prefix[10] = b' ';
        buf.extend_from_slice(&prefix);
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self::from_unix(d.as_secs() as i64, d.subsec_nanos()),
            // Before 1970: a clock set far back. Keep it ordered and valid.
            Err(e) => {
                let d: Duration = e.duration();
                let mut secs = -(d.as_secs() as i64);
                let mut nanos = d.subsec_nanos();
                if nanos > 0 {
                    secs -= 1;
                    nanos = 1_000_000_000 - nanos;
                }
                Self::from_unix(secs, nanos)
            }
        }
    }
}

fn write_padded(buf: &mut Vec<u8>, value: u32, digits: usize) {
    let mut tmp = [b'0'; 9];
    let mut v = value;
    for slot in tmp[..digits].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    buf.extend_from_slice(&tmp[..digits]);
}

thread_local! {
    /// The formatted prefix of the last second this thread formatted.
    static PREFIX: Cell<(i64, [u8; 19])> = const { Cell::new((i64::MIN, [0; 19])) };
}

fn cached_prefix(secs: i64) -> [u8; 19] {
    PREFIX
        .try_with(|cell| {
            let (cached_secs, prefix) = cell.get();
            if cached_secs == secs {
                return prefix;
            }
            let prefix = format_prefix(secs);
            cell.set((secs, prefix));
            prefix
        })
        // During thread teardown the cache is gone; format directly.
        .unwrap_or_else(|_| format_prefix(secs))
}

/// `YYYY-MM-DDTHH:MM:SS` for Unix seconds (proleptic Gregorian, UTC).
fn format_prefix(secs: i64) -> [u8; 19] {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut out = *b"0000-00-00T00:00:00";
    // Years outside 0..=9999 cannot be written in four digits; clamp them.
    let year = year.clamp(0, 9999) as u32;
    put2(&mut out[0..2], year / 100);
    put2(&mut out[2..4], year % 100);
    put2(&mut out[5..7], month);
    put2(&mut out[8..10], day);
    put2(&mut out[11..13], (rem / 3600) as u32);
    put2(&mut out[14..16], (rem % 3600 / 60) as u32);
    put2(&mut out[17..19], (rem % 60) as u32);
    out
}

fn put2(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10 % 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(secs: i64, nanos: u32, p: Precision) -> String {
        let mut buf = Vec::new();
        Timestamp::from_unix(secs, nanos).write_rfc3339(&mut buf, p);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn formats_known_dates() {
        assert_eq!(fmt(0, 0, Precision::Micros), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            fmt(951_782_400, 5_000_000, Precision::Millis),
            "2000-02-29T00:00:00.005Z"
        );
        assert_eq!(
            fmt(4_102_444_799, 999_999_999, Precision::Micros),
            "2099-12-31T23:59:59.999999Z"
        );
        assert_eq!(fmt(-1, 0, Precision::Millis), "1969-12-31T23:59:59.000Z");
    }

    #[test]
    fn cache_tracks_second_changes() {
        assert_eq!(
            fmt(86_399, 0, Precision::Millis),
            "1970-01-01T23:59:59.000Z"
        );
        assert_eq!(
            fmt(86_400, 0, Precision::Millis),
            "1970-01-02T00:00:00.000Z"
        );
        assert_eq!(
            fmt(86_399, 0, Precision::Millis),
            "1970-01-01T23:59:59.000Z"
        );
    }

    #[test]
    fn pre_epoch_system_time_is_ordered() {
        let t = Timestamp::from(UNIX_EPOCH - Duration::from_millis(1500));
        assert_eq!(t, Timestamp::from_unix(-2, 500_000_000));
    }
}
