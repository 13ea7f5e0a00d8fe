//! Rendering of an analysis: human text and JSON. Output types live here,
//! apart from the analysis types, so the JSON schema is one documented place.

pub mod check;
pub mod json;
pub mod text;
pub mod trace;

use std::time::{Duration, UNIX_EPOCH};

/// Formats nanoseconds since the epoch as RFC 3339 UTC with microseconds
/// (times before 1970 are shown as the epoch: captures do not have them).
pub fn rfc3339(ts_ns: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_nanos(u64::try_from(ts_ns).unwrap_or(0));
    humantime::format_rfc3339_micros(t).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            super::rfc3339(1_741_240_278_123_456_789),
            "2025-03-06T05:51:18.123456Z"
        );
    }
}
