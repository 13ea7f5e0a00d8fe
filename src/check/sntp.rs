//! The clock check: one SNTP client exchange (RFC 4330, client mode of
//! RFC 5905) with a time server, giving the local clock's offset, and the
//! time servers the host is configured with (read from the chrony, ntpd and
//! systemd-timesyncd configuration; never resolved here).
//!
//! Packet encoding and reading are pure ([`encode_request`],
//! [`parse_response`]); [`query`] does the UDP exchange, with an injectable
//! clock ([`query_with_clock`]) so that tests can fake a skewed local clock.
//! Written by hand because the SNTP client crates do their own socket and
//! resolution and do not report kiss-o'-death codes or leap state; the
//! packet is 48 fixed bytes.

use serde::Serialize;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch.
const NTP_UNIX_OFFSET_SECS: i128 = 2_208_988_800;
const NANOS_PER_SEC: i128 = 1_000_000_000;
/// An NTP packet without extension fields.
pub const PACKET_LEN: usize = 48;
const MODE_CLIENT: u8 = 3;
const MODE_SERVER: u8 = 4;
const VERSION: u8 = 4;
const LEAP_UNSYNCHRONISED: u8 = 3;
/// Stratum 16 means "unsynchronised" (RFC 5905 §7.3).
const STRATUM_UNSYNCHRONISED: u8 = 16;

/// One good answer from a time server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SntpSample {
    pub server: SocketAddr,
    /// Server clock − local clock: positive means the local clock is BEHIND.
    pub offset_secs: f64,
    /// Round-trip delay, without the server's processing time.
    pub delay_secs: f64,
    pub stratum: u8,
    /// The server's reference: a tag like "GPS" or "LAB", or the IPv4
    /// address (or IPv6 hash) of its upstream.
    pub reference_id: String,
    /// Leap indicator (0 none, 1/2 leap second pending; 3 is refused).
    pub leap: u8,
    pub version: u8,
}

/// Why there is no sample.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SntpError {
    #[error("no answer from {server} ({tries} tries, {timeout_ms} ms each)")]
    Timeout {
        server: SocketAddr,
        tries: u32,
        timeout_ms: u64,
    },
    #[error("{server}: {error}")]
    Io { server: SocketAddr, error: String },
    /// Stratum 0: the server refuses us ("RATE", "DENY", "RSTR", …).
    #[error("kiss-o'-death {code}: the server refuses to give the time")]
    KissOfDeath { code: String },
    #[error("the server is not synchronised (leap {leap}, stratum {stratum})")]
    Unsynchronised { leap: u8, stratum: u8 },
    #[error("malformed answer: {reason}")]
    Malformed { reason: String },
    /// Not the answer to our request (origin timestamp differs): late, or
    /// forged. [`query`] skips such datagrams.
    #[error("not an answer to our request: {reason}")]
    Unmatched { reason: String },
}

// ---------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------

/// The 64-bit NTP timestamp of `t` (32.32 fixed point seconds since 1900,
/// wrapped to its era). Times before 1970 are fine, no panic.
pub fn ntp_timestamp(t: SystemTime) -> u64 {
    // Duration's nanoseconds fit in i128 with room for the 32-bit shift.
    let unix_nanos = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    let ntp_nanos = unix_nanos + NTP_UNIX_OFFSET_SECS * NANOS_PER_SEC;
    // Truncation to u64 is the era wrap (modulo 2^32 seconds).
    ((ntp_nanos << 32).div_euclid(NANOS_PER_SEC)) as u64
}

/// `a − b` in seconds, correct across an era wrap as long as the two are
/// within 68 years of each other (RFC 5905 §6).
fn diff_secs(a: u64, b: u64) -> f64 {
    (a.wrapping_sub(b) as i64) as f64 / 4_294_967_296.0
}

fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

// ---------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------

/// A client request (LI 0, version 4, mode 3) whose transmit timestamp is
/// `t1`; the server echoes it as origin, which [`parse_response`] checks.
pub fn encode_request(t1: SystemTime) -> [u8; PACKET_LEN] {
    let mut p = [0u8; PACKET_LEN];
    p[0] = (VERSION << 3) | MODE_CLIENT;
    p[40..48].copy_from_slice(&ntp_timestamp(t1).to_be_bytes());
    p
}

/// The reference id as text for stratum 0/1 (and for stratum ≥ 2 when it
/// is an obvious ASCII tag such as a lab's "LAB"), else the upstream's
/// IPv4 address (or IPv6 hash) in dotted form.
fn reference_id(stratum: u8, id: [u8; 4]) -> String {
    let text_len = id.iter().position(|b| *b == 0).unwrap_or(4);
    let (text, padding) = id.split_at(text_len);
    let is_tag = !text.is_empty()
        && text[0].is_ascii_uppercase()
        && text
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && padding.iter().all(|b| *b == 0);
    if stratum <= 1 || is_tag {
        text.iter()
            .map(|b| {
                if b.is_ascii_graphic() {
                    char::from(*b)
                } else {
                    '?'
                }
            })
            .collect()
    } else {
        Ipv4Addr::from(id).to_string()
    }
}

/// Reads a server's answer to the request sent at `t1`, received at `t4`
/// (both by the local clock), into offset and delay:
/// θ = ((T2−T1)+(T3−T4))/2, δ = (T4−T1)−(T3−T2).
pub fn parse_response(
    server: SocketAddr,
    bytes: &[u8],
    t1: SystemTime,
    t4: SystemTime,
) -> Result<SntpSample, SntpError> {
    let malformed = |reason: String| SntpError::Malformed { reason };
    if bytes.len() < PACKET_LEN {
        return Err(malformed(format!(
            "{} bytes, an NTP packet has at least {PACKET_LEN}",
            bytes.len()
        )));
    }
    let leap = bytes[0] >> 6;
    let version = (bytes[0] >> 3) & 7;
    let mode = bytes[0] & 7;
    let stratum = bytes[1];
    if mode != MODE_SERVER {
        return Err(malformed(format!(
            "mode {mode}, a server answers with mode {MODE_SERVER}"
        )));
    }
    if !(1..=4).contains(&version) {
        return Err(malformed(format!("NTP version {version}")));
    }
    let field = |at: usize| {
        be_u64(bytes, at).ok_or_else(|| malformed(format!("no timestamp at byte {at}")))
    };
    let origin = field(24)?;
    let receive = field(32)?;
    let transmit = field(40)?;
    let sent = ntp_timestamp(t1);
    if origin != sent {
        return Err(SntpError::Unmatched {
            reason: format!("origin timestamp {origin:#018x}, we sent {sent:#018x}"),
        });
    }
    let ref_id = [bytes[12], bytes[13], bytes[14], bytes[15]];
    if stratum == 0 {
        return Err(SntpError::KissOfDeath {
            code: reference_id(0, ref_id),
        });
    }
    if leap == LEAP_UNSYNCHRONISED || stratum >= STRATUM_UNSYNCHRONISED {
        return Err(SntpError::Unsynchronised { leap, stratum });
    }
    if transmit == 0 {
        return Err(malformed("server transmit timestamp is zero".to_string()));
    }
    let t4 = ntp_timestamp(t4);
    let offset_secs = (diff_secs(receive, sent) + diff_secs(transmit, t4)) / 2.0;
    let delay_secs = diff_secs(t4, sent) - diff_secs(transmit, receive);
    Ok(SntpSample {
        server,
        offset_secs,
        delay_secs,
        stratum,
        reference_id: reference_id(stratum, ref_id),
        leap,
        version,
    })
}

// ---------------------------------------------------------------------------
// The exchange
// ---------------------------------------------------------------------------

fn io_text(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => format!("port unreachable ({e})"),
        _ => e.to_string(),
    }
}

/// [`query_with_clock`] with the system clock.
pub fn query(server: SocketAddr, timeout: Duration, tries: u32) -> Result<SntpSample, SntpError> {
    query_with_clock(server, timeout, tries, &SystemTime::now)
}

/// Asks `server` up to `tries` times, waiting `timeout` for each answer, on
/// a connected UDP socket (only the server's datagrams arrive; those that do
/// not answer our request are skipped). `clock` is the local clock.
/// Kiss-o'-death and "unsynchronised" are answers, returned at once.
pub fn query_with_clock(
    server: SocketAddr,
    timeout: Duration,
    tries: u32,
    clock: &dyn Fn() -> SystemTime,
) -> Result<SntpSample, SntpError> {
    let io_error = |e: &io::Error| SntpError::Io {
        server,
        error: io_text(e),
    };
    let bind: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(bind).map_err(|e| io_error(&e))?;
    sock.connect(server).map_err(|e| io_error(&e))?;

    let mut last_io: Option<SntpError> = None;
    let mut last_malformed: Option<SntpError> = None;
    let mut buf = [0u8; 1024];
    for _ in 0..tries.max(1) {
        let t1 = clock();
        if let Err(e) = sock.send(&encode_request(t1)) {
            last_io = Some(io_error(&e));
            continue;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))
                .map_err(|e| io_error(&e))?;
            match sock.recv(&mut buf) {
                Ok(n) => {
                    let t4 = clock();
                    match parse_response(server, &buf[..n], t1, t4) {
                        Ok(sample) => return Ok(sample),
                        Err(SntpError::Unmatched { .. }) => {}
                        Err(e @ SntpError::Malformed { .. }) => last_malformed = Some(e),
                        Err(e) => return Err(e),
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    last_io = Some(io_error(&e));
                    break;
                }
            }
        }
    }
    Err(last_malformed.or(last_io).unwrap_or(SntpError::Timeout {
        server,
        tries: tries.max(1),
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    }))
}

// ---------------------------------------------------------------------------
// Configured servers
// ---------------------------------------------------------------------------

/// Time servers named in chrony.conf / ntp.conf text (`server`, `pool`,
/// `peer` lines; ntpd's `-4`/`-6` flags skipped) or timesyncd.conf text
/// (`NTP=`, `FallbackNTP=`), in order, without duplicates. ntpd's local
/// refclock pseudo-addresses (127.127.x.y) are not servers and are skipped.
pub fn servers_from_config(text: &str) -> Vec<String> {
    let mut servers: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        if !s.starts_with("127.127.") && !servers.iter().any(|x| x == s) {
            servers.push(s.to_string());
        }
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';', '!']) {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            if matches!(key.trim(), "NTP" | "FallbackNTP") {
                value.split_whitespace().for_each(&mut add);
            }
            continue;
        }
        let mut words = line.split_whitespace();
        if matches!(words.next(), Some("server" | "pool" | "peer"))
            && let Some(host) = words.find(|w| !w.starts_with('-'))
        {
            add(host);
        }
    }
    servers
}

/// Configuration files that name time servers, in the order they are read.
pub const CONFIG_FILES: [&str; 5] = [
    "/etc/chrony.conf",
    "/etc/chrony/chrony.conf",
    "/etc/ntp.conf",
    "/etc/ntpsec/ntp.conf",
    "/etc/systemd/timesyncd.conf",
];

/// The time servers of this host's configuration (see [`CONFIG_FILES`]),
/// as written (names are not resolved). chrony `include`/`sourcedir` and
/// timesyncd drop-in directories are not followed.
pub fn configured_servers() -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for file in CONFIG_FILES {
        let Ok(text) = std::fs::read_to_string(Path::new(file)) else {
            continue;
        };
        for s in servers_from_config(&text) {
            if !all.contains(&s) {
                all.push(s);
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::JoinHandle;

    const SERVER: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
        Ipv4Addr::new(127, 0, 0, 1),
        123,
    ));

    fn at(unix_secs: f64) -> SystemTime {
        if unix_secs >= 0.0 {
            UNIX_EPOCH + Duration::from_secs_f64(unix_secs)
        } else {
            UNIX_EPOCH - Duration::from_secs_f64(-unix_secs)
        }
    }

    /// A server packet answering a request sent at `t1`.
    fn server_packet(
        t1: SystemTime,
        t2: SystemTime,
        t3: SystemTime,
        leap: u8,
        stratum: u8,
        ref_id: &[u8; 4],
    ) -> [u8; 48] {
        let mut p = [0u8; 48];
        p[0] = (leap << 6) | (4 << 3) | 4;
        p[1] = stratum;
        p[12..16].copy_from_slice(ref_id);
        p[24..32].copy_from_slice(&ntp_timestamp(t1).to_be_bytes());
        p[32..40].copy_from_slice(&ntp_timestamp(t2).to_be_bytes());
        p[40..48].copy_from_slice(&ntp_timestamp(t3).to_be_bytes());
        p
    }

    #[test]
    fn timestamps() {
        assert_eq!(ntp_timestamp(UNIX_EPOCH), 2_208_988_800u64 << 32);
        assert_eq!(
            ntp_timestamp(at(0.5)),
            (2_208_988_800u64 << 32) | 0x8000_0000
        );
        // 1900-01-01 is zero, and before 1970 does not panic.
        assert_eq!(ntp_timestamp(at(-2_208_988_800.0)), 0);
        assert_eq!(
            ntp_timestamp(at(-2_208_988_801.0)),
            u64::MAX - (1u64 << 32) + 1
        );
        // Era 1 starts 2036-02-07T06:28:16Z.
        assert_eq!(ntp_timestamp(at(2_085_978_496.0)), 0);
        assert!(
            (diff_secs(
                ntp_timestamp(at(2_085_978_497.0)),
                ntp_timestamp(at(2_085_978_495.0))
            ) - 2.0)
                .abs()
                < 1e-9
        );
    }

    #[test]
    fn request_layout() {
        let t1 = at(1_700_000_000.25);
        let r = encode_request(t1);
        assert_eq!(r[0], 0x23, "LI 0, version 4, mode 3");
        assert!(r[1..40].iter().all(|b| *b == 0));
        assert_eq!(
            u64::from_be_bytes(r[40..48].try_into().unwrap()),
            ntp_timestamp(t1)
        );
    }

    #[test]
    fn offset_and_delay() {
        // Local clock 10.5 s behind, 20 ms each way, 1 ms in the server.
        let t1 = at(1_700_000_000.0);
        let t2 = at(1_700_000_000.0 + 10.5 + 0.020);
        let t3 = at(1_700_000_000.0 + 10.5 + 0.021);
        let t4 = at(1_700_000_000.0 + 0.041);
        let p = server_packet(t1, t2, t3, 0, 2, b"LAB\0");
        let s = parse_response(SERVER, &p, t1, t4).unwrap();
        assert!((s.offset_secs - 10.5).abs() < 1e-6, "{}", s.offset_secs);
        assert!((s.delay_secs - 0.040).abs() < 1e-6, "{}", s.delay_secs);
        assert_eq!((s.stratum, s.leap, s.version), (2, 0, 4));
        assert_eq!(s.reference_id, "LAB");
        // A local clock ahead gives a negative offset.
        let p = server_packet(
            t1,
            at(1_699_999_400.01),
            at(1_699_999_400.011),
            0,
            1,
            b"GPS\0",
        );
        let s = parse_response(SERVER, &p, t1, at(1_700_000_000.021)).unwrap();
        assert!((s.offset_secs + 600.0).abs() < 1e-6, "{}", s.offset_secs);
        assert_eq!(s.reference_id, "GPS");
    }

    #[test]
    fn offset_across_the_era_wrap() {
        // Local clock just before the 2036 wrap, server just after.
        let t1 = at(2_085_978_495.0);
        let p = server_packet(
            t1,
            at(2_085_978_497.0),
            at(2_085_978_497.0),
            0,
            2,
            &[192, 0, 2, 1],
        );
        let s = parse_response(SERVER, &p, t1, at(2_085_978_495.0)).unwrap();
        assert!((s.offset_secs - 2.0).abs() < 1e-6, "{}", s.offset_secs);
        assert_eq!(s.reference_id, "192.0.2.1");
    }

    #[test]
    fn refusals_and_mismatches() {
        let t1 = at(1_700_000_000.0);
        let t = at(1_700_000_000.01);
        let kod = server_packet(t1, t, t, 3, 0, b"RATE");
        assert_eq!(
            parse_response(SERVER, &kod, t1, t),
            Err(SntpError::KissOfDeath {
                code: "RATE".into()
            })
        );
        let unsync = server_packet(t1, t, t, 3, 2, b"LAB\0");
        assert_eq!(
            parse_response(SERVER, &unsync, t1, t),
            Err(SntpError::Unsynchronised {
                leap: 3,
                stratum: 2
            })
        );
        let s16 = server_packet(t1, t, t, 0, 16, b"LAB\0");
        assert!(matches!(
            parse_response(SERVER, &s16, t1, t),
            Err(SntpError::Unsynchronised { .. })
        ));
        // Someone else's answer (origin is not our transmit time), also a
        // forged kiss-o'-death.
        let other = server_packet(at(1_600_000_000.0), t, t, 3, 0, b"DENY");
        assert!(matches!(
            parse_response(SERVER, &other, t1, t),
            Err(SntpError::Unmatched { .. })
        ));
        let mut client_mode = server_packet(t1, t, t, 0, 2, b"LAB\0");
        client_mode[0] = 0x23;
        assert!(matches!(
            parse_response(SERVER, &client_mode, t1, t),
            Err(SntpError::Malformed { .. })
        ));
        let mut v0 = server_packet(t1, t, t, 0, 2, b"LAB\0");
        v0[0] = 0x04;
        assert!(matches!(
            parse_response(SERVER, &v0, t1, t),
            Err(SntpError::Malformed { .. })
        ));
        let mut no_transmit = server_packet(t1, t, t, 0, 2, b"LAB\0");
        no_transmit[40..48].fill(0);
        assert!(matches!(
            parse_response(SERVER, &no_transmit, t1, t),
            Err(SntpError::Malformed { .. })
        ));
        let good = server_packet(t1, t, t, 0, 2, b"LAB\0");
        for cut in 0..48 {
            assert!(matches!(
                parse_response(SERVER, &good[..cut], t1, t),
                Err(SntpError::Malformed { .. })
            ));
        }
        // Extension fields / MAC after the header are tolerated.
        let mut long = good.to_vec();
        long.extend_from_slice(&[0u8; 20]);
        assert!(parse_response(SERVER, &long, t1, t).is_ok());
    }

    #[test]
    fn error_json_and_text() {
        let e = SntpError::KissOfDeath {
            code: "DENY".into(),
        };
        assert_eq!(
            e.to_string(),
            "kiss-o'-death DENY: the server refuses to give the time"
        );
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(j["kind"], "kiss-of-death");
        assert_eq!(j["code"], "DENY");
        let t = SntpError::Timeout {
            server: SERVER,
            tries: 2,
            timeout_ms: 2000,
        };
        assert_eq!(
            t.to_string(),
            "no answer from 127.0.0.1:123 (2 tries, 2000 ms each)"
        );
    }

    #[test]
    fn config_servers() {
        let chrony = "# comment\npool 2.debian.pool.ntp.org iburst maxsources 4\nserver ntp1.corp.example iburst\n\
                      ! also a comment\nserver ntp1.corp.example\npeer 10.0.0.5\nrefclock PHC /dev/ptp0\nmakestep 1 3\n";
        assert_eq!(
            servers_from_config(chrony),
            vec!["2.debian.pool.ntp.org", "ntp1.corp.example", "10.0.0.5"]
        );
        let ntp = "server -4 ntp2.corp.example iburst\nserver 127.127.1.0\nrestrict default nomodify\n#server old.example\n";
        assert_eq!(servers_from_config(ntp), vec!["ntp2.corp.example"]);
        let timesyncd = "[Time]\nNTP=a.example b.example\n#NTP=c.example\nFallbackNTP=time.example\nRootDistanceMaxSec=5\n";
        assert_eq!(
            servers_from_config(timesyncd),
            vec!["a.example", "b.example", "time.example"]
        );
        assert!(servers_from_config("server\npool\n").is_empty());
        // Reading this host's files does not fail, whatever they hold.
        let _ = configured_servers();
    }

    // --- loopback responder -------------------------------------------------

    #[derive(Clone, Copy)]
    enum Behaviour {
        /// Answer with server time = now + offset, after a forged answer.
        Good {
            offset_secs: f64,
        },
        KissOfDeath,
        Silent,
        Garbage,
    }

    struct Responder {
        addr: SocketAddr,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Drop for Responder {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn shifted(offset_secs: f64) -> SystemTime {
        let now = SystemTime::now();
        if offset_secs >= 0.0 {
            now + Duration::from_secs_f64(offset_secs)
        } else {
            now - Duration::from_secs_f64(-offset_secs)
        }
    }

    fn responder(behaviour: Behaviour) -> Responder {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !s.load(Ordering::SeqCst) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if n < 48 {
                    continue;
                }
                let origin: [u8; 8] = buf[40..48].try_into().unwrap();
                let mut p = [0u8; 48];
                p[24..32].copy_from_slice(&origin);
                match behaviour {
                    Behaviour::Silent => continue,
                    Behaviour::Garbage => {
                        let _ = sock.send_to(b"hello", from);
                        continue;
                    }
                    Behaviour::KissOfDeath => {
                        p[0] = (3 << 6) | (4 << 3) | 4;
                        p[12..16].copy_from_slice(b"RATE");
                    }
                    Behaviour::Good { offset_secs } => {
                        // A forged answer first: wrong origin.
                        let mut forged = [0u8; 48];
                        forged[0] = (4 << 3) | 4;
                        forged[1] = 1;
                        forged[40..48]
                            .copy_from_slice(&ntp_timestamp(SystemTime::now()).to_be_bytes());
                        let _ = sock.send_to(&forged, from);
                        p[0] = (4 << 3) | 4;
                        p[1] = 2;
                        p[12..16].copy_from_slice(b"LAB\0");
                        let t = ntp_timestamp(shifted(offset_secs)).to_be_bytes();
                        p[32..40].copy_from_slice(&t);
                        p[40..48].copy_from_slice(&t);
                    }
                }
                let _ = sock.send_to(&p, from);
            }
        });
        Responder {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    #[test]
    fn query_against_loopback_responder() {
        let r = responder(Behaviour::Good { offset_secs: 360.0 });
        let s = query(r.addr, Duration::from_secs(2), 2).unwrap();
        assert!((s.offset_secs - 360.0).abs() < 0.5, "{s:?}");
        assert!(s.delay_secs >= 0.0 && s.delay_secs < 0.5, "{s:?}");
        assert_eq!(s.server, r.addr);
        assert_eq!(s.reference_id, "LAB");
    }

    #[test]
    fn fake_local_clock() {
        // Server right, local clock 6 minutes behind: offset +360 s.
        let r = responder(Behaviour::Good { offset_secs: 0.0 });
        let behind = || SystemTime::now() - Duration::from_secs(360);
        let s = query_with_clock(r.addr, Duration::from_secs(2), 1, &behind).unwrap();
        assert!((s.offset_secs - 360.0).abs() < 0.5, "{s:?}");
    }

    #[test]
    fn query_failures() {
        let r = responder(Behaviour::KissOfDeath);
        assert_eq!(
            query(r.addr, Duration::from_secs(2), 2),
            Err(SntpError::KissOfDeath {
                code: "RATE".into()
            })
        );
        let r = responder(Behaviour::Silent);
        let start = Instant::now();
        assert_eq!(
            query(r.addr, Duration::from_millis(100), 2),
            Err(SntpError::Timeout {
                server: r.addr,
                tries: 2,
                timeout_ms: 100
            })
        );
        assert!(start.elapsed() >= Duration::from_millis(200));
        let r = responder(Behaviour::Garbage);
        assert!(matches!(
            query(r.addr, Duration::from_millis(100), 1),
            Err(SntpError::Malformed { .. })
        ));
        // Nothing listening: ICMP port unreachable.
        let closed = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let Err(SntpError::Io { error, .. }) = query(closed, Duration::from_millis(300), 1) else {
            panic!("expected an I/O error");
        };
        assert!(error.starts_with("port unreachable"), "{error}");
    }
}
