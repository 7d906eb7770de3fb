//! Go's `time.ParseDuration`, which Argo uses for every duration string (`30s`, `1h30m`,
//! `1.5h`, `300ms`). Plain integers are not durations here; callers that accept bare seconds
//! (pause steps) handle them first.

use jiff::SignedDuration;

/// A duration string that Go's `time.ParseDuration` would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time: invalid duration {0:?}")]
pub struct InvalidDuration(pub String);

/// Parse a Go duration string: an optional sign, then one or more `<number><unit>` pairs with
/// units `ns`, `us` (or `µs`, `μs`), `ms`, `s`, `m`, `h`. `"0"` alone is valid.
pub fn parse_go_duration(text: &str) -> Result<SignedDuration, InvalidDuration> {
    let invalid = || InvalidDuration(text.to_string());
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(SignedDuration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total_nanos: i128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after_unit) = after.split_at(unit_len);
        let unit_nanos: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            _ => return Err(invalid()),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let mut nanos = whole.checked_mul(unit_nanos).ok_or_else(invalid)?;
        let mut scale = unit_nanos;
        for digit in fraction.bytes() {
            scale /= 10;
            nanos += i128::from(digit - b'0') * scale;
        }
        total_nanos = total_nanos.checked_add(nanos).ok_or_else(invalid)?;
        rest = after_unit;
    }
    if negative {
        total_nanos = -total_nanos;
    }
    let nanos = i64::try_from(total_nanos).map_err(|_| invalid())?;
    Ok(SignedDuration::from_nanos(nanos))
}

/// Format seconds the way Go's `time.Duration.String()` does for whole seconds (`1h2m3s`,
/// `5m0s`, `0s`), for messages that quote durations.
pub fn format_go_seconds(seconds: i64) -> String {
    if seconds == 0 {
        return "0s".to_string();
    }
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{sign}{m}m{s}s")
    } else {
        format!("{sign}{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_go() {
        let cases = [
            ("0", 0i64),
            ("5s", 5_000_000_000),
            ("1h30m", 5_400_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("300ms", 300_000_000),
            ("-1s", -1_000_000_000),
            ("+2m", 120_000_000_000),
            ("1m30.5s", 90_500_000_000),
            ("2us", 2_000),
            ("2µs", 2_000),
            (".5s", 500_000_000),
        ];
        for (text, nanos) in cases {
            assert_eq!(
                parse_go_duration(text).map(|d| d.as_nanos()),
                Ok(i128::from(nanos)),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        for text in ["", "10", "1d", "5 m", "s", "1.2.3s", "-", "1h foo", "abc"] {
            assert!(
                parse_go_duration(text).is_err(),
                "{text:?} should not parse"
            );
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_seconds(0), "0s");
        assert_eq!(format_go_seconds(45), "45s");
        assert_eq!(format_go_seconds(300), "5m0s");
        assert_eq!(format_go_seconds(3723), "1h2m3s");
    }
}
