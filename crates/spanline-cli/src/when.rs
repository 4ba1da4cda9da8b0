//! Times on the command line: `--since` and `--until` take a time relative
//! to now (`-15m`, `2h`, `90s`, `7d`, `1w`: that long ago), a date
//! (`2026-12-06`, midnight UTC), an RFC 3339 time (`2026-12-06T10:00:00Z`,
//! or without a zone: UTC) or epoch seconds or milliseconds.

use std::time::{Duration, SystemTime};

use spanline_core::Timestamp;
use spanline_json::read::parse_time;

/// Reads a time given on the command line, relative to `now`.
pub(crate) fn parse_at(text: &str, now: SystemTime) -> Result<Timestamp, String> {
    let spec = text.trim();
    if spec == "now" {
        return Ok(Timestamp::from(now));
    }
    if let Some(ago) = relative(spec) {
        let at = now
            .checked_sub(ago)
            .ok_or_else(|| format!("{text:?} is before the epoch"))?;
        return Ok(Timestamp::from(at));
    }
    let date_only = spec.len() == 10 && spec.as_bytes().get(4) == Some(&b'-');
    let candidates = if date_only {
        vec![format!("{spec}T00:00:00Z")]
    } else {
        vec![spec.to_string(), format!("{spec}Z")]
    };
    candidates
        .iter()
        .find_map(|c| parse_time(c))
        .ok_or_else(|| {
            format!(
                "{text:?} is not a time: give one like -15m, 2h, 7d, 2026-12-06 or 2026-12-06T10:00:00Z"
            )
        })
}

/// The time given, relative to the clock now (clap's value parser).
pub(crate) fn parse(text: &str) -> Result<Timestamp, String> {
    parse_at(text, SystemTime::now())
}

/// `-15m`, `15m`, `2h`, `90s`, `7d`, `1w`: how long ago.
fn relative(spec: &str) -> Option<Duration> {
    let spec = spec.strip_prefix('-').unwrap_or(spec);
    let unit_at = spec.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = spec.split_at(unit_at);
    let n: u64 = number.parse().ok()?;
    let secs = match unit {
        "s" | "sec" => 1,
        "m" | "min" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(secs)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failure report

    use super::*;

    #[test]
    fn relative_absolute_and_bad_times() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_551_200);
        let at = |s: &str| parse_at(s, now).map(|t| t.unix_secs());
        assert_eq!(at("-15m"), Ok(1_796_551_200 - 900));
        assert_eq!(at("2h"), Ok(1_796_551_200 - 7_200));
        assert_eq!(at("1w"), Ok(1_796_551_200 - 604_800));
        assert_eq!(at("now"), Ok(1_796_551_200));
        assert_eq!(at("2026-12-06"), Ok(1_796_515_200));
        assert_eq!(at("2026-12-06T10:00:00Z"), Ok(1_796_551_200));
        assert_eq!(at("2026-12-06T10:00:00"), Ok(1_796_551_200), "no zone: UTC");
        assert_eq!(at("2026-12-06T11:00:00+01:00"), Ok(1_796_551_200));
        assert_eq!(at("1796551200"), Ok(1_796_551_200));
        for bad in [
            "yesterday",
            "15x",
            "-",
            "",
            "2026-13-01",
            "99999999999999999999m",
        ] {
            let err = at(bad).unwrap_err();
            assert!(
                err.contains("not a time") || err.contains("epoch"),
                "{bad}: {err}"
            );
        }
    }
}
