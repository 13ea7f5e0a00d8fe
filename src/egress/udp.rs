//! The UDP probes of `egress`: a DTLS ClientHello to the broker's UDP 443
//! (the connector's tunnel can run over DTLS) and the SNTP exchange, both
//! reported as what came back ([`DatagramAnswer`]) for the rules to judge.

use crate::analysis::rules::egress::DatagramAnswer;
use crate::check::sntp::{self, SntpError, SntpSample};
use crate::packet::dtls::{self, DtlsAnswer};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Sends a DTLS 1.2 ClientHello (with `sni`) to `addr` up to `tries`
/// times, waiting `per_try` for the first datagram back.
pub fn dtls_probe(
    addr: SocketAddr,
    sni: Option<&str>,
    per_try: Duration,
    tries: u32,
) -> DatagramAnswer {
    let started = Instant::now();
    let bind: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = match UdpSocket::bind(bind).and_then(|s| s.connect(addr).map(|()| s)) {
        Ok(s) => s,
        Err(e) => return DatagramAnswer::Error(e.to_string()),
    };
    let mut random = [0u8; 32];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).is_err() {
        return DatagramAnswer::Error("no randomness for the ClientHello".into());
    }
    // The same hello each try, as a DTLS client retransmits its flight.
    let hello = dtls::client_hello(random, sni);
    let mut buf = vec![0u8; 4096];
    for _ in 0..tries.max(1) {
        if let Err(e) = sock.send(&hello) {
            if e.kind() == io::ErrorKind::ConnectionRefused {
                return DatagramAnswer::PortUnreachable;
            }
            return DatagramAnswer::Error(e.to_string());
        }
        let deadline = Instant::now() + per_try;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || sock.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match sock.recv(&mut buf) {
                Ok(n) => {
                    return match dtls::answer(&buf[..n]) {
                        Some(DtlsAnswer::HelloVerifyRequest) => {
                            DatagramAnswer::Answered("HelloVerifyRequest (cookie exchange)".into())
                        }
                        Some(DtlsAnswer::ServerHello) => {
                            DatagramAnswer::Answered("ServerHello".into())
                        }
                        Some(DtlsAnswer::OtherHandshake(t)) => {
                            DatagramAnswer::Answered(format!("DTLS handshake message type {t}"))
                        }
                        Some(DtlsAnswer::Alert { level, description }) => DatagramAnswer::Other(
                            format!("a DTLS alert (level {level}, description {description})"),
                        ),
                        Some(DtlsAnswer::OtherRecord(t)) => {
                            DatagramAnswer::Other(format!("a DTLS record of content type {t}"))
                        }
                        None => DatagramAnswer::Other(format!("{n} bytes that are not DTLS")),
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    return DatagramAnswer::PortUnreachable;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => return DatagramAnswer::Error(e.to_string()),
            }
        }
    }
    DatagramAnswer::Silence {
        tries: tries.max(1),
        waited: started.elapsed(),
    }
}

/// The SNTP exchange: the sample, or what came back instead.
pub fn sntp_probe(
    addr: SocketAddr,
    per_try: Duration,
    tries: u32,
) -> Result<SntpSample, DatagramAnswer> {
    let started = Instant::now();
    sntp::query(addr, per_try, tries).map_err(|e| match e {
        SntpError::Timeout { tries, .. } => DatagramAnswer::Silence {
            tries,
            waited: started.elapsed(),
        },
        SntpError::Io { error, .. } if error.starts_with("port unreachable") => {
            DatagramAnswer::PortUnreachable
        }
        SntpError::Io { error, .. } => DatagramAnswer::Error(error),
        other => DatagramAnswer::Other(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback UDP server answering each datagram with `answer`.
    fn server(answer: Option<&'static [u8]>) -> SocketAddr {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = s.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                assert!(dtls::answer(&buf[..n]).is_some(), "a DTLS hello was sent");
                if let Some(a) = answer {
                    let _ = s.send_to(a, from);
                }
            }
        });
        addr
    }

    #[test]
    fn dtls_answers_silence_and_refusal() {
        let t = Duration::from_millis(300);
        let hvr: &'static [u8] = &[
            22, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 3, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3,
            0xfe, 0xff, 0,
        ];
        let a = dtls_probe(server(Some(hvr)), Some("co2br.lab1.test"), t, 2);
        assert!(
            matches!(a, DatagramAnswer::Answered(ref w) if w.contains("HelloVerifyRequest")),
            "{a:?}"
        );
        let a = dtls_probe(server(Some(b"hello")), None, t, 1);
        assert!(matches!(a, DatagramAnswer::Other(_)), "{a:?}");
        let a = dtls_probe(server(None), None, t, 2);
        assert!(
            matches!(a, DatagramAnswer::Silence { tries: 2, .. }),
            "{a:?}"
        );
        // A closed loopback port answers ICMP port unreachable.
        let closed = {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap()
        };
        let a = dtls_probe(closed, None, t, 2);
        assert_eq!(a, DatagramAnswer::PortUnreachable);
    }
}
