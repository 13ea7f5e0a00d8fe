//! Dates and durations, written one way everywhere.

use std::time::{Duration, UNIX_EPOCH};

/// Nanoseconds since the epoch as RFC 3339 UTC with microseconds (times
/// before 1970 are shown as the epoch: captures do not have them).
pub fn rfc3339_ns(ts_ns: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_nanos(u64::try_from(ts_ns).unwrap_or(0));
    humantime::format_rfc3339_micros(t).to_string()
}

/// Unix seconds as RFC 3339 UTC, for any `i64`: certificate dates are
/// untrusted input, and humantime's formatter panics before 1970 and after
/// 9999, so the civil date is computed here (Hinnant's days-to-civil). Years
/// outside 0..=9999 are written as `unix N`.
pub fn rfc3339_secs(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return format!("unix {unix}");
    }
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian
/// calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A duration for people: `0.2 s`, `42 s`, `6 min 2 s`, `3 h 4 min`,
/// `2 d 1 h`. The sign is dropped (the sentence says which way).
pub fn human_duration(secs: f64) -> String {
    let abs = secs.abs();
    if abs < 59.5 {
        return if abs.fract() == 0.0 {
            format!("{abs:.0} s")
        } else {
            format!("{abs:.1} s")
        };
    }
    let s = abs.round() as u64;
    match s {
        0..=3599 => format!("{} min {} s", s / 60, s % 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339_ns(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339_ns(1_741_240_278_123_456_789),
            "2025-03-06T05:51:18.123456Z"
        );
        assert_eq!(rfc3339_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_secs(1_741_240_278), "2025-03-06T05:51:18Z");
        assert_eq!(rfc3339_secs(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_secs(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339_secs(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339_secs(253_402_300_800), "unix 253402300800");
        assert!(rfc3339_secs(i64::MIN).starts_with("unix "));
        assert!(rfc3339_secs(i64::MAX).starts_with("unix "));
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(0.2), "0.2 s");
        assert_eq!(human_duration(-30.0), "30 s");
        assert_eq!(human_duration(350.0), "5 min 50 s");
        assert_eq!(human_duration(360.0), "6 min 0 s");
        assert_eq!(human_duration(3.0 * 3600.0 + 240.0), "3 h 4 min");
        assert_eq!(human_duration(2.0 * 86_400.0 + 3600.0), "2 d 1 h");
    }
}
