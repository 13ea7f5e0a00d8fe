//! TTL-limited ClientHello replay (detection.md §1.7, §5.6): which hop
//! resets a ClientHello carrying the broker's name, and does it also reset a
//! harmless control name?
//!
//! Each attempt opens a fresh TCP connection with the normal TTL (the
//! handshake must reach the server, or whatever answers for it), then lowers
//! the socket's TTL and sends a ClientHello, so that only the ClientHello is
//! TTL-limited. The decision is the analysis's rule over the attempts
//! ([`crate::analysis::rules::sni_replay`]); this is the I/O loop.

use super::verifier;
pub use crate::analysis::rules::sni_replay::{
    ReplayAttempt, ReplayOutcome, SniReplayConclusion, filter_hop_from_first_reset_ttl,
    sni_replay_conclusion,
};
use rustls::ClientConnection;
use rustls::pki_types::ServerName;
use serde::Serialize;
use socket2::SockRef;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to replay where.
#[derive(Clone, Debug)]
pub struct SniReplayConfig {
    pub addr: SocketAddr,
    /// The name under test (the broker's).
    pub sni: String,
    /// A name no broker rule matches, harmless to send anywhere.
    pub control_sni: String,
    /// The broker's hop from the trace: TTLs 1..=max_ttl are tried.
    pub max_ttl: u8,
    /// How long to wait for an answer to each ClientHello.
    pub wait: Duration,
    pub connect_timeout: Duration,
}

impl SniReplayConfig {
    pub fn new(addr: SocketAddr, sni: String, max_ttl: u8) -> SniReplayConfig {
        SniReplayConfig {
            addr,
            sni,
            control_sni: "pathproof-control.invalid".to_string(),
            max_ttl,
            wait: Duration::from_millis(1500),
            connect_timeout: Duration::from_secs(3),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SniReplay {
    pub attempts: Vec<ReplayAttempt>,
    /// Smallest TTL at which the real name drew a reset.
    pub first_reset_ttl: Option<u8>,
    /// The control name drew a reset at some TTL.
    pub control_reset: bool,
    pub conclusion: SniReplayConclusion,
}

/// Replays the ClientHello for both names at each TTL 1..=max_ttl (the order
/// of the two alternates per TTL), stopping early once both are answered
/// (the server is reached: higher TTLs add nothing).
pub fn sni_replay(cfg: &SniReplayConfig) -> SniReplay {
    let mut attempts = Vec::new();
    for ttl in 1..=cfg.max_ttl {
        let names = [(&cfg.sni, false), (&cfg.control_sni, true)];
        let order = if ttl % 2 == 1 { [0, 1] } else { [1, 0] };
        let mut answered = 0;
        for i in order {
            let (sni, control) = names[i];
            let started = Instant::now();
            let outcome = attempt(cfg, ttl, sni);
            answered += usize::from(matches!(outcome, ReplayOutcome::Answered { .. }));
            attempts.push(ReplayAttempt {
                ttl,
                sni: sni.clone(),
                control,
                outcome,
                elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
            });
        }
        if answered == 2 {
            break;
        }
    }
    let first_reset_ttl = attempts
        .iter()
        .filter(|a| !a.control && a.outcome == ReplayOutcome::Reset)
        .map(|a| a.ttl)
        .min();
    let control_reset = attempts
        .iter()
        .any(|a| a.control && a.outcome == ReplayOutcome::Reset);
    let conclusion = sni_replay_conclusion(&attempts);
    SniReplay {
        attempts,
        first_reset_ttl,
        control_reset,
        conclusion,
    }
}

/// One connection: normal-TTL TCP handshake, ClientHello at `ttl`, wait.
fn attempt(cfg: &SniReplayConfig, ttl: u8, sni: &str) -> ReplayOutcome {
    let hello = match client_hello(sni) {
        Ok(h) => h,
        Err(reason) => return ReplayOutcome::Error { reason },
    };
    let tcp = match TcpStream::connect_timeout(&cfg.addr, cfg.connect_timeout) {
        Ok(t) => t,
        Err(e) => {
            return ReplayOutcome::ConnectFailed {
                reason: e.to_string(),
            };
        }
    };
    let sock = SockRef::from(&tcp);
    let v4 = cfg.addr.is_ipv4();
    let normal_ttl = if v4 {
        sock.ttl_v4()
    } else {
        sock.unicast_hops_v6()
    };
    let set_ttl = |t: u32| {
        if v4 {
            sock.set_ttl_v4(t)
        } else {
            sock.set_unicast_hops_v6(t)
        }
    };
    let outcome = match set_ttl(u32::from(ttl)) {
        Err(e) => ReplayOutcome::Error {
            reason: format!("setting TTL {ttl}: {e}"),
        },
        Ok(()) => send_and_wait(&tcp, &hello, cfg.wait),
    };
    // The abortive close's RST must reach the server, which would otherwise
    // keep a half-open connection: back to the normal TTL first. SO_LINGER 0
    // so that no FIN is retransmitted at us between attempts.
    if let Ok(t) = normal_ttl {
        let _ = set_ttl(t);
    }
    let _ = sock.set_linger(Some(Duration::ZERO));
    outcome
}

fn send_and_wait(mut tcp: &TcpStream, hello: &[u8], wait: Duration) -> ReplayOutcome {
    if let Err(e) = tcp.write_all(hello) {
        return match e.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => ReplayOutcome::Reset,
            _ => ReplayOutcome::Error {
                reason: format!("sending the ClientHello: {e}"),
            },
        };
    }
    if let Err(e) = tcp.set_read_timeout(Some(wait.max(Duration::from_millis(1)))) {
        return ReplayOutcome::Error {
            reason: e.to_string(),
        };
    }
    let mut buf = [0u8; 4096];
    loop {
        return match tcp.read(&mut buf) {
            Ok(0) => ReplayOutcome::Closed,
            Ok(bytes) => ReplayOutcome::Answered { bytes },
            Err(e) => match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                    ReplayOutcome::Reset
                }
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ReplayOutcome::Silent,
                _ => ReplayOutcome::Error {
                    reason: e.to_string(),
                },
            },
        };
    }
}

/// The ClientHello rustls sends for `sni` (the bytes of its first flight),
/// so the replay offers what [`super::handshake`] offers.
pub(super) fn client_hello(sni: &str) -> Result<Vec<u8>, String> {
    let (config, _) =
        verifier::recording_config(&[]).map_err(|e| format!("TLS configuration: {e}"))?;
    let name = ServerName::try_from(sni.to_string())
        .map_err(|e| format!("SNI {sni:?} is not a DNS name: {e}"))?;
    let mut conn =
        ClientConnection::new(Arc::new(config), name).map_err(|e| format!("TLS client: {e}"))?;
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello)
            .map_err(|e| format!("ClientHello: {e}"))?;
    }
    Ok(hello)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(ttl: u8, control: bool, outcome: ReplayOutcome) -> ReplayAttempt {
        ReplayAttempt {
            ttl,
            sni: if control { "ctl" } else { "real" }.to_string(),
            control,
            outcome,
            elapsed_ms: 1.0,
        }
    }

    use ReplayOutcome::{Answered, Closed, Reset, Silent};

    #[test]
    fn hop_arithmetic() {
        // r2 filtering in FORWARD: TTL 2 expires at r2 before FORWARD, TTL 3
        // is the first it inspects.
        assert_eq!(filter_hop_from_first_reset_ttl(3), 2);
        assert_eq!(filter_hop_from_first_reset_ttl(1), 0);
        assert_eq!(filter_hop_from_first_reset_ttl(0), 0);
    }

    #[test]
    fn sni_filter_at_hop_two() {
        let attempts = [
            a(1, false, Silent),
            a(1, true, Silent),
            a(2, true, Silent),
            a(2, false, Silent),
            a(3, false, Reset),
            a(3, true, Silent),
            a(4, false, Reset),
            a(4, true, Silent),
            a(5, false, Reset),
            a(5, true, Answered { bytes: 1400 }),
        ];
        assert_eq!(
            sni_replay_conclusion(&attempts),
            SniReplayConclusion::SniFilter {
                first_reset_ttl: 3,
                filter_hop: 2
            }
        );
    }

    #[test]
    fn control_reset_too_is_not_sni_specific() {
        let attempts = [
            a(1, false, Silent),
            a(1, true, Silent),
            a(2, false, Reset),
            a(2, true, Reset),
        ];
        assert_eq!(
            sni_replay_conclusion(&attempts),
            SniReplayConclusion::NotSniSpecific {
                first_reset_ttl: 2,
                control_first_reset_ttl: 2,
                filter_hop: 1
            }
        );
    }

    #[test]
    fn silent_drop_of_the_real_name() {
        let attempts = [
            a(1, false, Silent),
            a(1, true, Silent),
            a(2, false, Closed),
            a(2, true, Answered { bytes: 100 }),
        ];
        assert_eq!(
            sni_replay_conclusion(&attempts),
            SniReplayConclusion::SniDropped {
                ttl: 2,
                real: Closed
            }
        );
    }

    #[test]
    fn healthy_and_inconclusive() {
        let healthy = [
            a(1, false, Silent),
            a(1, true, Silent),
            a(2, false, Answered { bytes: 90 }),
            a(2, true, Answered { bytes: 90 }),
        ];
        assert_eq!(
            sni_replay_conclusion(&healthy),
            SniReplayConclusion::NoDifference
        );
        let refused = ReplayOutcome::ConnectFailed {
            reason: "refused".into(),
        };
        assert!(matches!(
            sni_replay_conclusion(&[a(1, false, refused.clone()), a(1, true, refused)]),
            SniReplayConclusion::Inconclusive { .. }
        ));
        assert!(matches!(
            sni_replay_conclusion(&[]),
            SniReplayConclusion::Inconclusive { .. }
        ));
    }

    #[test]
    fn client_hello_carries_the_name() {
        let hello = client_hello("broker1a.lab1.test").unwrap();
        assert_eq!(hello[0], 22, "a handshake record");
        assert!(
            hello
                .windows("broker1a.lab1.test".len())
                .any(|w| w == b"broker1a.lab1.test")
        );
        assert!(client_hello("bad name!").is_err());
    }
}
