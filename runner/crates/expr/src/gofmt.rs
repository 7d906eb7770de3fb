//! Go's spelling of values and errors, so that our messages match what Argo prints.
//!
//! `fmt`'s `%v` of floats and durations, `strconv.Quote`, `strconv.ParseInt`/`ParseFloat`
//! errors and `time.ParseDuration`. Only what the condition language needs.

/// `strconv.Quote`: double quotes, Go escapes, printable Unicode kept.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// `%q` of a rune: `'x'`.
pub(crate) fn quote_rune(c: char) -> String {
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'');
    out.push('\'');
    out
}

fn push_escaped(out: &mut String, c: char, quote: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
        c if c.is_control() => {
            if (c as u32) < 0x10000 {
                out.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                out.push_str(&format!("\\U{:08x}", c as u32));
            }
        }
        c => out.push(c),
    }
}

/// expr's `unescape`: takes a quoted literal (`'...'` or `"..."`) and decodes its escapes.
pub(crate) fn unescape(quoted: &str) -> Result<String, String> {
    let quoted = quoted.replace("\r\n", "\n").replace('\r', "\n");
    let bytes = quoted.as_bytes();
    let n = bytes.len();
    if n < 2 || bytes[0] != bytes[n - 1] || (bytes[0] != b'"' && bytes[0] != b'\'') {
        return Err("unable to unescape string".into());
    }
    let inner = &quoted[1..n - 1];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err("unable to unescape string, found '\\' as last character".into());
        };
        let value = match e {
            'a' => '\x07',
            'b' => '\x08',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            '\\' => '\\',
            '\'' => '\'',
            '"' => '"',
            '`' => '`',
            '?' => '?',
            'x' | 'X' | 'u' | 'U' => {
                let len = match e {
                    'u' => 4,
                    'U' => 8,
                    _ => 2,
                };
                let mut v: u32 = 0;
                for _ in 0..len {
                    let d = chars
                        .next()
                        .and_then(|h| h.to_digit(16))
                        .ok_or_else(|| "unable to unescape string".to_string())?;
                    v = (v << 4) | d;
                }
                // Go appends a \x escape above 0x7f as a raw byte (invalid UTF-8);
                // Rust strings cannot hold that, so the code point is kept instead.
                char::from_u32(v).ok_or("unable to unescape string")?
            }
            '0'..='3' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = chars
                        .next()
                        .and_then(|o| o.to_digit(8))
                        .ok_or_else(|| "unable to unescape octal sequence in string".to_string())?;
                    v = v * 8 + d;
                }
                char::from_u32(v).ok_or("unable to unescape string")?
            }
            _ => return Err("unable to unescape string".into()),
        };
        out.push(value);
    }
    Ok(out)
}

/// `fmt`'s `%v` of a float64: Go's `%g` with the shortest digits, which switches to the
/// exponent form when the decimal exponent is below -4 or at least 6 (`1e+06`).
pub fn format_float(f: f64) -> String {
    format_float_with(f, 6)
}

fn format_float_with(f: f64, eprec: i32) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` prints the shortest round-tripping digits, like Go's shortest mode.
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if exp < -4 || exp >= eprec {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let point = exp as usize + 1;
        if digits.len() <= point {
            out.push_str(&digits);
            for _ in digits.len()..point {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
    out
}

/// `time.Duration.String`: `1h2m3.5s`, `1.5ms`, `0s`.
pub(crate) fn format_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let neg = d < 0;
    let mut u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        let (frac, rest) = fmt_frac(u, prec);
        out.push_str(&rest.to_string());
        out.push_str(&frac);
        out.push_str(unit);
    } else {
        let (frac, secs) = fmt_frac(u, 9);
        u = secs;
        let s = u % 60;
        u /= 60;
        let mut tail = format!("{s}{frac}s");
        if u > 0 {
            tail = format!("{}m{tail}", u % 60);
            u /= 60;
            if u > 0 {
                tail = format!("{u}h{tail}");
            }
        }
        out.push_str(&tail);
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// The fraction of `v / 10^prec` as `.123` without trailing zeros, and the integer part.
fn fmt_frac(v: u64, prec: u32) -> (String, u64) {
    let scale = 10u64.pow(prec);
    let frac = v % scale;
    let int = v / scale;
    if frac == 0 {
        return (String::new(), int);
    }
    let digits = format!("{:0width$}", frac, width = prec as usize);
    (format!(".{}", digits.trim_end_matches('0')), int)
}

/// `time.ParseDuration`, with Go's error messages.
pub(crate) fn parse_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for &c in &b[..int_len] {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .filter(|&v| v <= 1 << 63)
                .ok_or_else(invalid)?;
        }
        s = &s[int_len..];
        let pre = int_len > 0;
        // Fraction.
        let mut f: u64 = 0;
        let mut scale = 1f64;
        let mut post = false;
        if let Some(rest) = s.strip_prefix('.') {
            s = rest;
            let frac_len = s.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for c in s[..frac_len].bytes() {
                if overflow {
                    continue;
                }
                match f
                    .checked_mul(10)
                    .and_then(|x| x.checked_add(u64::from(c - b'0')))
                {
                    Some(x) if x <= 1 << 63 => {
                        f = x;
                        scale *= 10.0;
                    }
                    _ => overflow = true,
                }
            }
            post = frac_len > 0;
            s = &s[frac_len..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        let unit_len = s
            .char_indices()
            .find(|&(_, c)| c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", quote(orig)));
        }
        let unit_str = &s[..unit_len];
        s = &s[unit_len..];
        let unit: u64 = match unit_str {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    quote(unit_str),
                    quote(orig)
                ));
            }
        };
        if v > (1u64 << 63) / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > 1 << 63 {
                return Err(invalid());
            }
        }
        total = total
            .checked_add(v)
            .filter(|&t| t <= 1 << 63)
            .ok_or_else(invalid)?;
    }
    if neg {
        return Ok((total as i64).wrapping_neg());
    }
    if total > i64::MAX as u64 {
        return Err(invalid());
    }
    Ok(total as i64)
}

/// `strconv.ParseInt(s, 10, 64)`, with Go's error text.
pub(crate) fn parse_int(s: &str) -> Result<i64, String> {
    use std::num::IntErrorKind;
    s.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "value out of range",
            _ => "invalid syntax",
        };
        format!("strconv.ParseInt: parsing {}: {why}", quote(s))
    })
}

/// `strconv.ParseFloat(s, 64)`, with Go's error text.
pub(crate) fn parse_float(s: &str) -> Result<f64, String> {
    let syntax = || format!("strconv.ParseFloat: parsing {}: invalid syntax", quote(s));
    let body = s.strip_prefix(['+', '-']).unwrap_or(s).to_ascii_lowercase();
    let special = matches!(body.as_str(), "inf" | "infinity" | "nan");
    if body.contains('_') || (body == "nan" && body.len() != s.len()) {
        return Err(syntax());
    }
    let f: f64 = s.parse().map_err(|_| syntax())?;
    if f.is_infinite() && !special {
        return Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            quote(s)
        ));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go() {
        for (f, want) in [
            (10.0, "10"),
            (0.95, "0.95"),
            (1.0e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (1.0 / 3.0, "0.3333333333333333"),
        ] {
            assert_eq!(format_float(f), want, "{f}");
        }
    }

    #[test]
    fn durations_print_like_go() {
        for (d, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (1_500_000, "1.5ms"),
            (3_600_000_000_000, "1h0m0s"),
            (90_000_000_000, "1m30s"),
            (-5_250_000_000, "-5.25s"),
        ] {
            assert_eq!(format_duration(d), want);
        }
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("1h"), Ok(3_600_000_000_000));
        assert_eq!(parse_duration("-1.5h"), Ok(-5_400_000_000_000));
        assert_eq!(parse_duration("2h45m"), Ok(9_900_000_000_000));
        assert_eq!(parse_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(
            parse_duration("1d").unwrap_err(),
            r#"time: unknown unit "d" in duration "1d""#
        );
        assert_eq!(
            parse_duration("1").unwrap_err(),
            r#"time: missing unit in duration "1""#
        );
        assert_eq!(
            parse_duration("x").unwrap_err(),
            r#"time: invalid duration "x""#
        );
    }

    #[test]
    fn strconv_errors() {
        assert_eq!(
            parse_float("NotANum").unwrap_err(),
            r#"strconv.ParseFloat: parsing "NotANum": invalid syntax"#
        );
        assert_eq!(
            parse_int("1.1").unwrap_err(),
            r#"strconv.ParseInt: parsing "1.1": invalid syntax"#
        );
        assert!(parse_float("NaN").unwrap().is_nan());
        assert_eq!(parse_float("+Inf"), Ok(f64::INFINITY));
        assert!(
            parse_float("1e400")
                .unwrap_err()
                .ends_with("value out of range")
        );
    }
}
