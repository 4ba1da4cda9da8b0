//! A line's time: RFC 3339 text with any offset and fraction, or an epoch
//! number (pino's milliseconds, seconds).

use spanline_core::Timestamp;

/// A time from RFC 3339 text (`Z` or an offset, any fraction) or from an
/// epoch number (milliseconds past 10^11, else seconds).
pub(crate) fn read_time(v: &serde_json::Value) -> Option<Timestamp> {
    match v {
        serde_json::Value::Number(n) => {
            let x = n.as_f64()?;
            if !(0.0..1e17).contains(&x) {
                return None;
            }
            let secs = if x >= 1e11 { x / 1000.0 } else { x };
            // Below 10^8 seconds (1973) a number is not a time.
            if secs < 1e8 {
                return None;
            }
            let whole = secs.floor();
            Some(Timestamp::from_unix(
                whole as i64,
                ((secs - whole) * 1e9).round().min(999_999_999.0) as u32,
            ))
        }
        serde_json::Value::String(s) => parse_rfc3339(s),
        _ => None,
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub(crate) fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut nanos: u32 = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 9 {
                nanos = nanos * 10 + u32::from(b[at] - b'0');
            }
            at += 1;
        }
        let digits = (at - start).min(9) as u32;
        if digits == 0 {
            return None;
        }
        nanos *= 10u32.pow(9 - digits);
    }
    let offset = match b.get(at)? {
        b'Z' | b'z' if at + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if at + 6 == b.len() && b[at + 3] == b':' => {
            let minutes = num(at + 1, 2)? * 60 + num(at + 4, 2)?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(Timestamp::from_unix(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_from_rfc3339_and_epoch_numbers() {
        let at = |v: &str| {
            read_time(&serde_json::from_str(v).unwrap()).map(|t| (t.unix_secs(), t.subsec_nanos()))
        };
        assert_eq!(at(r#""1970-01-01T00:00:00Z""#), Some((0, 0)));
        assert_eq!(
            at(r#""2026-12-02T13:00:01.5Z""#),
            Some((1_796_216_401, 500_000_000))
        );
        assert_eq!(
            at(r#""2026-12-02T14:00:01.123456789+01:00""#),
            Some((1_796_216_401, 123_456_789))
        );
        assert_eq!(
            at(r#""2026-12-02T08:00:01-05:00""#),
            Some((1_796_216_401, 0))
        );
        // pino's epoch milliseconds, structlog's float seconds.
        assert_eq!(at("1796216401500"), Some((1_796_216_401, 500_000_000)));
        assert_eq!(at("1796216401.25"), Some((1_796_216_401, 250_000_000)));
        for not_a_time in [
            "42",
            "-1",
            r#""yesterday""#,
            r#""2026-13-02T00:00:00Z""#,
            r#""2026-12-02T00:00:00""#,
            r#""2026-12-02T00:00:00.Z""#,
        ] {
            assert_eq!(at(not_a_time), None, "{not_a_time}");
        }
    }
}
