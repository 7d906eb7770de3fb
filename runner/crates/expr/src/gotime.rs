//! Go's `time.Time` as far as expr expressions use it: `now()`, `date()`, arithmetic with
//! durations, Go layouts (`2006-01-02T15:04:05Z07:00`) for parsing and `Format`, and the
//! common methods (`Unix()`, `Add()`, `Hours()`, ...).
//!
//! Time zones are fixed offsets only: resolving names such as `Europe/Paris` would need the
//! system time zone database, and this layer does no I/O.

use std::rc::Rc;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::check::{P, Sig};
use super::eval::{Eval, Val, fail};
use super::gofmt;

/// A Go `time.Time`: an instant plus the zone it is displayed in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GoTime {
    pub(crate) ts: Timestamp,
    /// Seconds east of UTC.
    pub(crate) offset: i32,
    /// The zone's name (`UTC`, `PST`); empty for a bare numeric offset.
    pub(crate) zone: Rc<str>,
}

const NANOS_PER_SEC: i128 = 1_000_000_000;
/// Seconds from Go's zero time (January 1, year 1) to the Unix epoch.
const ZERO_TO_UNIX: i128 = 62_135_596_800;

struct Civil {
    year: i32,
    month: i32,
    day: i32,
    hour: i32,
    minute: i32,
    second: i32,
    nano: i32,
    weekday: usize,
    yday: i32,
}

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

impl GoTime {
    pub(crate) fn utc(ts: Timestamp) -> GoTime {
        GoTime {
            ts,
            offset: 0,
            zone: Rc::from("UTC"),
        }
    }

    fn civil(&self) -> Civil {
        let local = self
            .ts
            .checked_add(SignedDuration::from_secs(i64::from(self.offset)))
            .unwrap_or(self.ts);
        let dt = local.to_zoned(TimeZone::UTC).datetime();
        Civil {
            year: i32::from(dt.year()),
            month: i32::from(dt.month()),
            day: i32::from(dt.day()),
            hour: i32::from(dt.hour()),
            minute: i32::from(dt.minute()),
            second: i32::from(dt.second()),
            nano: dt.subsec_nanosecond(),
            weekday: dt.weekday().to_sunday_zero_offset() as usize,
            yday: i32::from(dt.day_of_year()),
        }
    }

    fn nanos(&self) -> i128 {
        self.ts.as_nanosecond()
    }

    fn at_nanos(&self, ns: i128) -> GoTime {
        let clamped = ns.clamp(
            Timestamp::MIN.as_nanosecond(),
            Timestamp::MAX.as_nanosecond(),
        );
        GoTime {
            ts: Timestamp::from_nanosecond(clamped).unwrap_or(self.ts),
            offset: self.offset,
            zone: self.zone.clone(),
        }
    }

    pub(crate) fn add(&self, d: i64) -> GoTime {
        self.at_nanos(self.nanos() + i128::from(d))
    }

    /// `t.Sub(u)`, saturating like Go's.
    pub(crate) fn sub(&self, other: &GoTime) -> i64 {
        (self.nanos() - other.nanos()).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// `Time.String()`.
    pub(crate) fn go_string(&self) -> String {
        self.format("2006-01-02 15:04:05.999999999 -0700 MST")
    }

    pub(crate) fn rfc3339(&self) -> String {
        self.format("2006-01-02T15:04:05.999999999Z07:00")
    }

    /// `Time.Format(layout)`.
    pub(crate) fn format(&self, layout: &str) -> String {
        let c = self.civil();
        let mut out = String::new();
        let mut rest = layout;
        loop {
            let (prefix, std, suffix) = next_std_chunk(rest);
            out.push_str(prefix);
            let Some(std) = std else { break };
            rest = suffix;
            match std {
                Std::Year => out.push_str(&format!("{:02}", c.year.rem_euclid(100))),
                Std::LongYear => out.push_str(&format!("{:04}", c.year)),
                Std::Month => out.push_str(&LONG_MONTHS[(c.month - 1) as usize][..3]),
                Std::LongMonth => out.push_str(LONG_MONTHS[(c.month - 1) as usize]),
                Std::NumMonth => out.push_str(&c.month.to_string()),
                Std::ZeroMonth => out.push_str(&format!("{:02}", c.month)),
                Std::WeekDay => out.push_str(&LONG_DAYS[c.weekday][..3]),
                Std::LongWeekDay => out.push_str(LONG_DAYS[c.weekday]),
                Std::Day => out.push_str(&c.day.to_string()),
                Std::UnderDay => out.push_str(&format!("{:>2}", c.day)),
                Std::ZeroDay => out.push_str(&format!("{:02}", c.day)),
                Std::UnderYearDay => out.push_str(&format!("{:>3}", c.yday)),
                Std::ZeroYearDay => out.push_str(&format!("{:03}", c.yday)),
                Std::Hour => out.push_str(&format!("{:02}", c.hour)),
                Std::Hour12 => out.push_str(&hour12(c.hour).to_string()),
                Std::ZeroHour12 => out.push_str(&format!("{:02}", hour12(c.hour))),
                Std::Minute => out.push_str(&c.minute.to_string()),
                Std::ZeroMinute => out.push_str(&format!("{:02}", c.minute)),
                Std::Second => out.push_str(&c.second.to_string()),
                Std::ZeroSecond => out.push_str(&format!("{:02}", c.second)),
                Std::PM => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
                Std::Pm => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
                Std::Tz(tz) => self.format_zone(&mut out, tz),
                Std::Frac { sep, digits, trim } => {
                    let s = format!("{:09}", c.nano);
                    let s = &s[..digits.min(9)];
                    if trim {
                        let t = s.trim_end_matches('0');
                        if !t.is_empty() {
                            out.push(sep);
                            out.push_str(t);
                        }
                    } else {
                        out.push(sep);
                        out.push_str(s);
                    }
                }
            }
        }
        out
    }

    fn format_zone(&self, out: &mut String, tz: Tz) {
        if tz == Tz::Name {
            if !self.zone.is_empty() {
                out.push_str(&self.zone);
                return;
            }
            let minutes = self.offset / 60;
            out.push(if minutes < 0 { '-' } else { '+' });
            out.push_str(&format!(
                "{:02}{:02}",
                minutes.abs() / 60,
                minutes.abs() % 60
            ));
            return;
        }
        if tz.iso() && self.offset == 0 {
            out.push('Z');
            return;
        }
        let secs = self.offset.abs();
        out.push(if self.offset < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", secs / 3600));
        if tz.short() {
            return;
        }
        if tz.colon() {
            out.push(':');
        }
        out.push_str(&format!("{:02}", secs / 60 % 60));
        if tz.seconds() {
            if tz.colon() {
                out.push(':');
            }
            out.push_str(&format!("{:02}", secs % 60));
        }
    }

    fn with_civil(&self, c: &Civil) -> GoTime {
        let utc_secs = days_from_civil(c.year, c.month, c.day) as i128 * 86_400
            + i128::from(c.hour * 3600 + c.minute * 60 + c.second)
            - i128::from(self.offset);
        self.at_nanos(utc_secs * NANOS_PER_SEC + i128::from(c.nano))
    }
}

fn hour12(h: i32) -> i32 {
    match h % 12 {
        0 => 12,
        h => h,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date; months and days may overflow
/// their ranges and are normalized, as Go's `time.Date` does.
fn days_from_civil(year: i32, month: i32, day: i32) -> i64 {
    let m0 = i64::from(year) * 12 + i64::from(month - 1);
    let (y, m) = (m0.div_euclid(12), m0.rem_euclid(12) + 1);
    // Howard Hinnant's days_from_civil, for the first of the month.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 + i64::from(day - 1)
}

fn days_in(month: i32, year: i32) -> i32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tz {
    Name,
    Iso,
    IsoSeconds,
    IsoShort,
    IsoColon,
    IsoColonSeconds,
    Num,
    NumSeconds,
    NumShort,
    NumColon,
    NumColonSeconds,
}

impl Tz {
    fn iso(self) -> bool {
        matches!(
            self,
            Tz::Iso | Tz::IsoSeconds | Tz::IsoShort | Tz::IsoColon | Tz::IsoColonSeconds
        )
    }
    fn short(self) -> bool {
        matches!(self, Tz::IsoShort | Tz::NumShort)
    }
    fn colon(self) -> bool {
        matches!(
            self,
            Tz::IsoColon | Tz::IsoColonSeconds | Tz::NumColon | Tz::NumColonSeconds
        )
    }
    fn seconds(self) -> bool {
        matches!(
            self,
            Tz::IsoSeconds | Tz::IsoColonSeconds | Tz::NumSeconds | Tz::NumColonSeconds
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std {
    Year,
    LongYear,
    Month,
    LongMonth,
    NumMonth,
    ZeroMonth,
    WeekDay,
    LongWeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    PM,
    Pm,
    Tz(Tz),
    Frac {
        sep: char,
        digits: usize,
        trim: bool,
    },
}

/// Go's `nextStdChunk`: the literal prefix, the next layout element, and the rest.
fn next_std_chunk(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let starts_lower = |i: usize| b.get(i).is_some_and(u8::is_ascii_lowercase);
    let at = |i: usize, s: &str| layout.get(i..).is_some_and(|r| r.starts_with(s));
    for i in 0..b.len() {
        let cut = |n: usize, std: Std| (&layout[..i], Some(std), &layout[i + n..]);
        match b[i] {
            b'J' if at(i, "Jan") => {
                if at(i, "January") {
                    return cut(7, Std::LongMonth);
                }
                if !starts_lower(i + 3) {
                    return cut(3, Std::Month);
                }
            }
            b'M' => {
                if at(i, "Mon") {
                    if at(i, "Monday") {
                        return cut(6, Std::LongWeekDay);
                    }
                    if !starts_lower(i + 3) {
                        return cut(3, Std::WeekDay);
                    }
                }
                if at(i, "MST") {
                    return cut(3, Std::Tz(Tz::Name));
                }
            }
            b'0' => {
                if let Some(&d) = b.get(i + 1) {
                    let std = match d {
                        b'1' => Some(Std::ZeroMonth),
                        b'2' => Some(Std::ZeroDay),
                        b'3' => Some(Std::ZeroHour12),
                        b'4' => Some(Std::ZeroMinute),
                        b'5' => Some(Std::ZeroSecond),
                        b'6' => Some(Std::Year),
                        _ => None,
                    };
                    if let Some(std) = std {
                        return cut(2, std);
                    }
                }
                if at(i, "002") {
                    return cut(3, Std::ZeroYearDay);
                }
            }
            b'1' => {
                if b.get(i + 1) == Some(&b'5') {
                    return cut(2, Std::Hour);
                }
                return cut(1, Std::NumMonth);
            }
            b'2' => {
                if at(i, "2006") {
                    return cut(4, Std::LongYear);
                }
                return cut(1, Std::Day);
            }
            b'_' => {
                if b.get(i + 1) == Some(&b'2') {
                    if at(i + 1, "2006") {
                        return (&layout[..i + 1], Some(Std::LongYear), &layout[i + 5..]);
                    }
                    return cut(2, Std::UnderDay);
                }
                if at(i, "__2") {
                    return cut(3, Std::UnderYearDay);
                }
            }
            b'3' => return cut(1, Std::Hour12),
            b'4' => return cut(1, Std::Minute),
            b'5' => return cut(1, Std::Second),
            b'P' if b.get(i + 1) == Some(&b'M') => return cut(2, Std::PM),
            b'p' if b.get(i + 1) == Some(&b'm') => return cut(2, Std::Pm),
            b'-' => {
                for (pat, tz) in [
                    ("-070000", Tz::NumSeconds),
                    ("-07:00:00", Tz::NumColonSeconds),
                    ("-0700", Tz::Num),
                    ("-07:00", Tz::NumColon),
                    ("-07", Tz::NumShort),
                ] {
                    if at(i, pat) {
                        return cut(pat.len(), Std::Tz(tz));
                    }
                }
            }
            b'Z' => {
                for (pat, tz) in [
                    ("Z070000", Tz::IsoSeconds),
                    ("Z07:00:00", Tz::IsoColonSeconds),
                    ("Z0700", Tz::Iso),
                    ("Z07:00", Tz::IsoColon),
                    ("Z07", Tz::IsoShort),
                ] {
                    if at(i, pat) {
                        return cut(pat.len(), Std::Tz(tz));
                    }
                }
            }
            sep @ (b'.' | b',') => {
                if let Some(&ch @ (b'0' | b'9')) = b.get(i + 1) {
                    let mut j = i + 1;
                    while b.get(j) == Some(&ch) {
                        j += 1;
                    }
                    if !b.get(j).is_some_and(u8::is_ascii_digit) {
                        let std = Std::Frac {
                            sep: char::from(sep),
                            digits: j - i - 1,
                            trim: ch == b'9',
                        };
                        return (&layout[..i], Some(std), &layout[j..]);
                    }
                }
            }
            _ => {}
        }
    }
    (layout, None, "")
}

fn is_digit(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

fn getnum(s: &[u8], fixed: bool) -> Option<(i32, &[u8])> {
    if !is_digit(s, 0) {
        return None;
    }
    if !is_digit(s, 1) {
        if fixed {
            return None;
        }
        return Some((i32::from(s[0] - b'0'), &s[1..]));
    }
    Some((
        i32::from(s[0] - b'0') * 10 + i32::from(s[1] - b'0'),
        &s[2..],
    ))
}

fn cutspace(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b' ').count();
    &s[n..]
}

fn skip<'a>(mut value: &'a [u8], prefix: &str) -> Result<&'a [u8], &'a [u8]> {
    let mut prefix = prefix.as_bytes();
    while let Some(&p) = prefix.first() {
        if p == b' ' {
            if value.first().is_some_and(|&c| c != b' ') {
                return Err(value);
            }
            prefix = cutspace(prefix);
            value = cutspace(value);
            continue;
        }
        if value.first() != Some(&p) {
            return Err(value);
        }
        prefix = &prefix[1..];
        value = &value[1..];
    }
    Ok(value)
}

fn lookup<'a>(table: &[&str], value: &'a [u8], len: Option<usize>) -> Option<(i32, &'a [u8])> {
    for (i, name) in table.iter().enumerate() {
        let name = len.map_or(*name, |n| &name[..n]);
        if value.len() >= name.len() && value[..name.len()].eq_ignore_ascii_case(name.as_bytes()) {
            return Some((i as i32, &value[name.len()..]));
        }
    }
    None
}

fn parse_nanos(value: &[u8], n: usize) -> Option<i32> {
    if !matches!(value.first(), Some(b'.' | b',')) {
        return None;
    }
    let n = n.min(10);
    let digits = std::str::from_utf8(&value[1..n]).ok()?;
    let mut ns: i32 = digits.parse().ok()?;
    for _ in n..10 {
        ns *= 10;
    }
    Some(ns)
}

/// A time zone abbreviation such as `PST` or `CEST` (3 to 5 capitals), or `GMT+3`.
fn parse_zone_name(value: &[u8]) -> Option<usize> {
    if value.len() < 3 {
        return None;
    }
    if value.starts_with(b"GMT") {
        let mut n = 3;
        if matches!(value.get(3), Some(b'+' | b'-')) {
            n += 1;
            let digits = value[4..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            n += digits;
        }
        return Some(n);
    }
    let n = value.iter().take_while(|c| c.is_ascii_uppercase()).count();
    (3..=5).contains(&n).then_some(n)
}

/// `time.Parse(layout, value)` (`time.ParseInLocation` with UTC), with Go's messages.
pub(crate) fn parse(layout: &str, value: &str) -> Result<GoTime, String> {
    let err = |layout_elem: &str, value_elem: &[u8], message: &str| {
        if message.is_empty() {
            format!(
                "parsing time {} as {}: cannot parse {} as {}",
                gofmt::quote(value),
                gofmt::quote(layout),
                gofmt::quote(&String::from_utf8_lossy(value_elem)),
                gofmt::quote(layout_elem)
            )
        } else {
            format!("parsing time {}{message}", gofmt::quote(value))
        }
    };
    let (mut year, mut month, mut day, mut yday) = (0i32, -1i32, -1i32, -1i32);
    let (mut hour, mut min, mut sec, mut nsec) = (0i32, 0i32, 0i32, 0i32);
    let (mut pm_set, mut am_set) = (false, false);
    let mut utc = false;
    let mut zone_offset: Option<i32> = None;
    let mut zone_name: Option<String> = None;

    let mut rest_layout = layout;
    let mut v = value.as_bytes();
    loop {
        let (prefix, std, suffix) = next_std_chunk(rest_layout);
        let std_str = &rest_layout[prefix.len()..rest_layout.len() - suffix.len()];
        v = match skip(v, prefix) {
            Ok(v) => v,
            Err(at) => return Err(err(prefix, at, "")),
        };
        let Some(std) = std else {
            if !v.is_empty() {
                return Err(err(
                    "",
                    v,
                    &format!(
                        ": extra text: {}",
                        gofmt::quote(&String::from_utf8_lossy(v))
                    ),
                ));
            }
            break;
        };
        rest_layout = suffix;
        let hold = v;
        let mut range_err: Option<&str> = None;
        let ok: Option<&[u8]> = (|| {
            match std {
                Std::Year => {
                    let p = std::str::from_utf8(v.get(..2)?).ok()?;
                    year = p.parse().ok()?;
                    year += if year >= 69 { 1900 } else { 2000 };
                    Some(&v[2..])
                }
                Std::LongYear => {
                    if v.len() < 4 || !is_digit(v, 0) {
                        return None;
                    }
                    year = std::str::from_utf8(&v[..4]).ok()?.parse().ok()?;
                    Some(&v[4..])
                }
                Std::Month => {
                    let (m, r) = lookup(&LONG_MONTHS, v, Some(3))?;
                    month = m + 1;
                    Some(r)
                }
                Std::LongMonth => {
                    let (m, r) = lookup(&LONG_MONTHS, v, None)?;
                    month = m + 1;
                    Some(r)
                }
                Std::NumMonth | Std::ZeroMonth => {
                    let (m, r) = getnum(v, std == Std::ZeroMonth)?;
                    month = m;
                    if !(1..=12).contains(&m) {
                        range_err = Some("month");
                    }
                    Some(r)
                }
                Std::WeekDay => lookup(&LONG_DAYS, v, Some(3)).map(|(_, r)| r),
                Std::LongWeekDay => lookup(&LONG_DAYS, v, None).map(|(_, r)| r),
                Std::Day | Std::UnderDay | Std::ZeroDay => {
                    let v = if std == Std::UnderDay && v.first() == Some(&b' ') {
                        &v[1..]
                    } else {
                        v
                    };
                    let (d, r) = getnum(v, std == Std::ZeroDay)?;
                    day = d;
                    Some(r)
                }
                Std::UnderYearDay | Std::ZeroYearDay => {
                    let n = v.iter().take(3).take_while(|c| c.is_ascii_digit()).count();
                    let v2 = if std == Std::UnderYearDay {
                        let spaces = v.iter().take(2).take_while(|&&c| c == b' ').count();
                        &v[spaces..]
                    } else {
                        v
                    };
                    let n = if std == Std::ZeroYearDay { 3 } else { n.max(1) };
                    let digits = std::str::from_utf8(v2.get(..n)?).ok()?;
                    yday = digits.parse().ok()?;
                    if !(1..=366).contains(&yday) {
                        range_err = Some("day-of-year");
                    }
                    Some(&v2[n..])
                }
                Std::Hour => {
                    let (h, r) = getnum(v, false)?;
                    hour = h;
                    if !(0..24).contains(&h) {
                        range_err = Some("hour");
                    }
                    Some(r)
                }
                Std::Hour12 | Std::ZeroHour12 => {
                    let (h, r) = getnum(v, std == Std::ZeroHour12)?;
                    hour = h;
                    if !(0..=12).contains(&h) {
                        range_err = Some("hour");
                    }
                    Some(r)
                }
                Std::Minute | Std::ZeroMinute => {
                    let (m, r) = getnum(v, std == Std::ZeroMinute)?;
                    min = m;
                    if !(0..60).contains(&m) {
                        range_err = Some("minute");
                    }
                    Some(r)
                }
                Std::Second | Std::ZeroSecond => {
                    let (s, mut r) = getnum(v, std == Std::ZeroSecond)?;
                    sec = s;
                    if !(0..60).contains(&s) {
                        range_err = Some("second");
                        return Some(r);
                    }
                    // A fractional second in the value that the layout does not mention.
                    if r.len() >= 2 && matches!(r[0], b'.' | b',') && is_digit(r, 1) {
                        let (_, next, _) = next_std_chunk(rest_layout);
                        if !matches!(next, Some(Std::Frac { .. })) {
                            let mut n = 2;
                            while is_digit(r, n) {
                                n += 1;
                            }
                            nsec = parse_nanos(r, n)?;
                            r = &r[n..];
                        }
                    }
                    Some(r)
                }
                Std::PM | Std::Pm => {
                    let p = v.get(..2)?;
                    let (pm, am): (&[u8], &[u8]) = if std == Std::PM {
                        (b"PM", b"AM")
                    } else {
                        (b"pm", b"am")
                    };
                    if p == pm {
                        pm_set = true;
                    } else if p == am {
                        am_set = true;
                    } else {
                        return None;
                    }
                    Some(&v[2..])
                }
                Std::Tz(Tz::Name) => {
                    if v.starts_with(b"UTC") {
                        utc = true;
                        return Some(&v[3..]);
                    }
                    let n = parse_zone_name(v)?;
                    zone_name = Some(String::from_utf8_lossy(&v[..n]).into_owned());
                    Some(&v[n..])
                }
                Std::Tz(tz) => {
                    if tz.iso() && v.first() == Some(&b'Z') {
                        utc = true;
                        return Some(&v[1..]);
                    }
                    let (sign, hh, mm, ss, r): (u8, &[u8], &[u8], &[u8], &[u8]) =
                        if tz.colon() && !tz.seconds() {
                            if v.len() < 6 || v[3] != b':' {
                                return None;
                            }
                            (v[0], &v[1..3], &v[4..6], b"00", &v[6..])
                        } else if tz.short() {
                            if v.len() < 3 {
                                return None;
                            }
                            (v[0], &v[1..3], b"00", b"00", &v[3..])
                        } else if tz.colon() {
                            if v.len() < 9 || v[3] != b':' || v[6] != b':' {
                                return None;
                            }
                            (v[0], &v[1..3], &v[4..6], &v[7..9], &v[9..])
                        } else if tz.seconds() {
                            if v.len() < 7 {
                                return None;
                            }
                            (v[0], &v[1..3], &v[3..5], &v[5..7], &v[7..])
                        } else {
                            if v.len() < 5 {
                                return None;
                            }
                            (v[0], &v[1..3], &v[3..5], b"00", &v[5..])
                        };
                    let (h, _) = getnum(hh, true)?;
                    let (m, _) = getnum(mm, true)?;
                    let (s, _) = getnum(ss, true)?;
                    let off = (h * 60 + m) * 60 + s;
                    zone_offset = Some(match sign {
                        b'+' => off,
                        b'-' => -off,
                        _ => return None,
                    });
                    Some(r)
                }
                Std::Frac { digits, trim, .. } => {
                    if !trim {
                        let n = 1 + digits;
                        if v.len() < n {
                            return None;
                        }
                        nsec = parse_nanos(v, n)?;
                        return Some(&v[n..]);
                    }
                    if v.len() < 2 || !matches!(v[0], b'.' | b',') || !is_digit(v, 1) {
                        return Some(v);
                    }
                    let mut i = 0;
                    while is_digit(v, i + 1) {
                        i += 1;
                    }
                    nsec = parse_nanos(v, 1 + i)?;
                    Some(&v[1 + i..])
                }
            }
        })();
        if let Some(what) = range_err {
            return Err(err(
                std_str,
                ok.unwrap_or(v),
                &format!(": {what} out of range"),
            ));
        }
        match ok {
            Some(r) => v = r,
            None => return Err(err(std_str, hold, "")),
        }
    }
    if pm_set && hour < 12 {
        hour += 12;
    } else if am_set && hour == 12 {
        hour = 0;
    }
    if yday >= 0 {
        let leap = days_in(2, year) == 29;
        if yday > if leap { 366 } else { 365 } {
            return Err(err("", b"", ": day-of-year out of range"));
        }
        let (mut m, mut d) = (1, yday);
        while d > days_in(m, year) {
            d -= days_in(m, year);
            m += 1;
        }
        if (month >= 0 && month != m) || (day >= 0 && day != d) {
            return Err(err("", b"", ": day-of-year does not match month or day"));
        }
        month = m;
        day = d;
    } else {
        if month < 0 {
            month = 1;
        }
        if day < 0 {
            day = 1;
        }
    }
    if day < 1 || day > days_in(month, year) {
        return Err(err("", v, ": day out of range"));
    }
    let (offset, zone): (i32, Rc<str>) = if utc {
        (0, Rc::from("UTC"))
    } else if let Some(off) = zone_offset {
        (off, Rc::from(""))
    } else if let Some(name) = zone_name {
        let off = name
            .strip_prefix("GMT")
            .and_then(|n| n.parse::<i32>().ok())
            .map_or(0, |h| h * 3600);
        (off, Rc::from(name.as_str()))
    } else {
        (0, Rc::from("UTC"))
    };
    let base = GoTime {
        ts: Timestamp::UNIX_EPOCH,
        offset,
        zone,
    };
    Ok(base.with_civil(&Civil {
        year,
        month,
        day,
        hour,
        minute: min,
        second: sec,
        nano: nsec,
        weekday: 0,
        yday: 0,
    }))
}

/// The layouts `date(s)` tries, in order (expr's builtin).
const DATE_LAYOUTS: [&str; 7] = [
    "2006-01-02",
    "15:04:05",
    "2006-01-02 15:04:05",
    "2006-01-02T15:04:05Z07:00",
    "02 Jan 06 15:04 MST",
    "Monday, 02-Jan-06 15:04:05 MST",
    "Mon, 02 Jan 2006 15:04:05 MST",
];

/// expr's `date(value[, layout[, zone]])`.
pub(crate) fn date(args: &[Val], at: usize) -> Eval<Val> {
    let text = match args.first() {
        Some(Val::Str(s)) => s.clone(),
        Some(other) => {
            return fail(
                at,
                format!(
                    "interface conversion: interface {{}} is {}, not string",
                    other.iface_type()
                ),
            );
        }
        None => {
            return fail(
                at,
                "invalid number of arguments (expected at least 1, got 0)",
            );
        }
    };
    let layout = match args.get(1) {
        Some(Val::Str(s)) => Some(s.clone()),
        Some(other) => {
            return fail(
                at,
                format!(
                    "interface conversion: interface {{}} is {}, not string",
                    other.iface_type()
                ),
            );
        }
        None => None,
    };
    if let Some(zone) = args.get(2) {
        let name = match zone {
            Val::Str(s) => s.to_string(),
            other => other.go_string(),
        };
        if !matches!(name.as_str(), "" | "UTC" | "Local") {
            return fail(at, format!("unknown time zone {name}"));
        }
    }
    match layout {
        Some(layout) => parse(&layout, &text)
            .map(Val::Time)
            .or_else(|e| fail(at, e)),
        None => DATE_LAYOUTS
            .iter()
            .find_map(|l| parse(l, &text).ok())
            .map(Val::Time)
            .map_or_else(|| fail(at, format!("invalid date {text}")), Ok),
    }
}

/// The methods of `time.Time` and `time.Duration` that expressions may call.
pub(crate) fn method_sig(receiver: P, name: &str) -> Option<Sig> {
    use P::*;
    let sig = |params: &'static [P], out: P| Some(Sig { params, out });
    match receiver {
        Time => match name {
            "Add" => sig(&[Duration], Time),
            "Sub" => sig(&[Time], Duration),
            "AddDate" => sig(&[Int, Int, Int], Time),
            "After" | "Before" | "Equal" => sig(&[Time], Bool),
            "Compare" => sig(&[Time], Int),
            "Unix" | "UnixMilli" | "UnixMicro" | "UnixNano" => sig(&[], Int64),
            "Year" | "Day" | "Hour" | "Minute" | "Second" | "Nanosecond" | "YearDay" => {
                sig(&[], Int)
            }
            "Format" => sig(&[String], String),
            "String" => sig(&[], String),
            "UTC" | "Local" => sig(&[], Time),
            "IsZero" => sig(&[], Bool),
            "Truncate" | "Round" => sig(&[Duration], Time),
            _ => None,
        },
        Duration => match name {
            "Hours" | "Minutes" | "Seconds" => sig(&[], Float),
            "Milliseconds" | "Microseconds" | "Nanoseconds" => sig(&[], Int64),
            "String" => sig(&[], String),
            "Abs" => sig(&[], Duration),
            "Truncate" | "Round" => sig(&[Duration], Duration),
            _ => None,
        },
        _ => None,
    }
}

/// Calls a method on a time or duration value.
pub(crate) fn call_method(base: &Val, name: &str, args: &[Val], at: usize) -> Eval<Val> {
    let arg_time = |i: usize| match args.get(i) {
        Some(Val::Time(t)) => Ok(t.clone()),
        other => bad_arg(other, "time.Time", at),
    };
    let arg_dur = |i: usize| match args.get(i) {
        Some(Val::Duration(d)) => Ok(*d),
        other => bad_arg(other, "time.Duration", at),
    };
    let arg_int = |i: usize| match args.get(i) {
        Some(Val::Int(n) | Val::Int64(n)) => Ok(*n),
        other => bad_arg(other, "int", at),
    };
    match base {
        Val::Time(t) => {
            let c = t.civil();
            Ok(match name {
                "Add" => Val::Time(t.add(arg_dur(0)?)),
                "Sub" => Val::Duration(t.sub(&arg_time(0)?)),
                "AddDate" => {
                    let (y, m, d) = (arg_int(0)?, arg_int(1)?, arg_int(2)?);
                    // Far beyond any representable time; the instant is clamped anyway.
                    let bound = |base: i32, add: i64, limit: i64| {
                        (i64::from(base).saturating_add(add)).clamp(-limit, limit) as i32
                    };
                    let civil = Civil {
                        year: bound(c.year, y, 1_000_000),
                        month: bound(c.month, m, 12_000_000),
                        day: bound(c.day, d, 400_000_000),
                        ..c
                    };
                    Val::Time(t.with_civil(&civil))
                }
                "After" => Val::Bool(t.ts > arg_time(0)?.ts),
                "Before" => Val::Bool(t.ts < arg_time(0)?.ts),
                "Equal" => Val::Bool(t.ts == arg_time(0)?.ts),
                "Compare" => Val::Int(match t.ts.cmp(&arg_time(0)?.ts) {
                    std::cmp::Ordering::Less => -1,
                    std::cmp::Ordering::Equal => 0,
                    std::cmp::Ordering::Greater => 1,
                }),
                "Unix" => Val::Int64(t.ts.as_second()),
                "UnixMilli" => Val::Int64(t.ts.as_millisecond()),
                "UnixMicro" => Val::Int64(t.ts.as_microsecond()),
                "UnixNano" => {
                    Val::Int64(t.nanos().clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
                }
                "Year" => Val::Int(i64::from(c.year)),
                "Day" => Val::Int(i64::from(c.day)),
                "Hour" => Val::Int(i64::from(c.hour)),
                "Minute" => Val::Int(i64::from(c.minute)),
                "Second" => Val::Int(i64::from(c.second)),
                "Nanosecond" => Val::Int(i64::from(c.nano)),
                "YearDay" => Val::Int(i64::from(c.yday)),
                "Format" => match args.first() {
                    Some(Val::Str(layout)) => Val::str(&t.format(layout)),
                    other => return bad_arg(other, "string", at),
                },
                "String" => Val::str(&t.go_string()),
                "UTC" | "Local" => Val::Time(GoTime::utc(t.ts)),
                "IsZero" => Val::Bool(t.nanos() == -ZERO_TO_UNIX * NANOS_PER_SEC),
                "Truncate" | "Round" => {
                    let d = i128::from(arg_dur(0)?);
                    if d <= 0 {
                        return Ok(Val::Time(t.clone()));
                    }
                    let since_zero = t.nanos() + ZERO_TO_UNIX * NANOS_PER_SEC;
                    let mut r = since_zero.rem_euclid(d);
                    if name == "Round" && r + r >= d {
                        r -= d;
                    }
                    Val::Time(t.at_nanos(t.nanos() - r))
                }
                _ => return no_method("time.Time", name, at),
            })
        }
        Val::Duration(d) => {
            let d = *d;
            Ok(match name {
                "Hours" => Val::Float(split_float(d, 3_600_000_000_000)),
                "Minutes" => Val::Float(split_float(d, 60_000_000_000)),
                "Seconds" => Val::Float(split_float(d, 1_000_000_000)),
                "Milliseconds" => Val::Int64(d / 1_000_000),
                "Microseconds" => Val::Int64(d / 1_000),
                "Nanoseconds" => Val::Int64(d),
                "String" => Val::str(&gofmt::format_duration(d)),
                "Abs" => Val::Duration(if d == i64::MIN { i64::MAX } else { d.abs() }),
                "Truncate" => {
                    let m = arg_dur(0)?;
                    Val::Duration(if m <= 0 { d } else { d - d % m })
                }
                "Round" => {
                    let m = i128::from(arg_dur(0)?);
                    let d = i128::from(d);
                    let rounded = if m <= 0 {
                        d
                    } else {
                        let r = (d % m).abs();
                        match (d < 0, r + r < m) {
                            (true, true) => d + r,
                            (true, false) => d + r - m,
                            (false, true) => d - r,
                            (false, false) => d - r + m,
                        }
                    };
                    Val::Duration(rounded.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
                }
                _ => return no_method("time.Duration", name, at),
            })
        }
        other => no_method(other.go_type(), name, at),
    }
}

/// Go computes `Hours()` as whole hours plus the fraction, to stay exact.
fn split_float(d: i64, unit: i64) -> f64 {
    let whole = d / unit;
    let rest = d % unit;
    whole as f64 + rest as f64 / unit as f64
}

fn bad_arg<T>(got: Option<&Val>, want: &str, at: usize) -> Eval<T> {
    let got = got.map_or("nil", Val::iface_type);
    fail(
        at,
        format!("interface conversion: interface {{}} is {got}, not {want}"),
    )
}

fn no_method<T>(ty: &str, name: &str, at: usize) -> Eval<T> {
    fail(at, format!("type {ty} has no method {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn parses_go_layouts() {
        let t = parse("2006-01-02", "2024-02-29").unwrap();
        assert_eq!(t.ts, ts("2024-02-29T00:00:00Z"));
        let t = parse("2006-01-02T15:04:05Z07:00", "2024-03-01T10:30:00+02:00").unwrap();
        assert_eq!(t.ts, ts("2024-03-01T08:30:00Z"));
        assert_eq!(t.offset, 7200);
        let t = parse("2006-01-02T15:04:05Z07:00", "2024-03-01T10:30:00.250Z").unwrap();
        assert_eq!(t.ts, ts("2024-03-01T10:30:00.25Z"));
        let t = parse("Jan 2, 2006 at 3:04pm (MST)", "Feb 3, 2013 at 7:54pm (PST)").unwrap();
        assert_eq!(t.ts, ts("2013-02-03T19:54:00Z"));
        assert_eq!(
            parse("2006-01-02", "2024-13-01").unwrap_err(),
            r#"parsing time "2024-13-01": month out of range"#
        );
        assert_eq!(
            parse("2006-01-02", "yesterday").unwrap_err(),
            r#"parsing time "yesterday" as "2006-01-02": cannot parse "yesterday" as "2006""#
        );
        assert_eq!(
            parse("2006-01-02", "2024-02-30").unwrap_err(),
            r#"parsing time "2024-02-30": day out of range"#
        );
    }

    #[test]
    fn formats_like_go() {
        let t = GoTime::utc(ts("2024-03-01T08:05:09.5Z"));
        assert_eq!(t.go_string(), "2024-03-01 08:05:09.5 +0000 UTC");
        assert_eq!(t.format("Mon Jan _2 3:04PM 2006"), "Fri Mar  1 8:05AM 2024");
        assert_eq!(t.format(".000"), ".500");
        assert_eq!(t.rfc3339(), "2024-03-01T08:05:09.5Z");
    }

    #[test]
    fn add_date_normalizes_like_go() {
        let t = GoTime::utc(ts("2024-01-31T00:00:00Z"));
        let v = call_method(
            &Val::Time(t),
            "AddDate",
            &[Val::Int(0), Val::Int(1), Val::Int(0)],
            0,
        )
        .unwrap();
        let Val::Time(t) = v else { panic!() };
        assert_eq!(t.ts, ts("2024-03-02T00:00:00Z"));
    }
}
