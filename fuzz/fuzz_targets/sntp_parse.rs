//! Arbitrary bytes as an SNTP server's answer: `parse_response` must not
//! panic, whatever the bytes and the local timestamps (also before 1970 and
//! across the 2036 era wrap), and a sample it accepts has finite numbers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathproof::check::sntp::parse_response;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A local time from 8 fuzz bytes: within ±2^62 ns (±146 years) of the
/// Unix epoch, so before 1900 and past the 2036 era wrap too.
fn local_time(b: &[u8]) -> SystemTime {
    let mut raw = [0u8; 8];
    raw[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
    let v = i64::from_le_bytes(raw);
    let d = Duration::from_nanos(v.unsigned_abs() % (1 << 62));
    if v >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

fuzz_target!(|data: &[u8]| {
    let server = SocketAddr::from((Ipv4Addr::LOCALHOST, 123));
    let (times, packet) = data.split_at(data.len().min(16));
    let t1 = local_time(times.get(..8).unwrap_or(times));
    let t4 = local_time(times.get(8..).unwrap_or(&[]));
    if let Ok(s) = parse_response(server, packet, t1, t4) {
        assert!(s.offset_secs.is_finite() && s.delay_secs.is_finite());
    }
    // With the origin check passed: our t1 echoed in the packet.
    if packet.len() >= 48 {
        let mut p = packet.to_vec();
        p[24..32].copy_from_slice(&pathproof::check::sntp::ntp_timestamp(t1).to_be_bytes());
        if let Ok(s) = parse_response(server, &p, t1, t4) {
            assert!(s.offset_secs.is_finite() && s.delay_secs.is_finite());
        }
    }
});
