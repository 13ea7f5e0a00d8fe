//! The active TLS probe: one TCP connection and one rustls handshake to a
//! broker, driven by hand so that we see exactly where the exchange stops
//! (reset, close or silence, before or after the server's first byte), which
//! chain was presented and by whom it was issued. Plus [`sni_replay`], the
//! TTL-limited ClientHello replay that localises an SNI filter.
//!
//! Safety of the probe: it accepts any certificate (it is a diagnostic and
//! never sends application data), but still verifies handshake signatures,
//! and it ends a completed handshake with close_notify.
//!
//! Use from the orchestrator:
//! ```text
//! let mut probe = tls::handshake(&TlsProbeConfig::new(addr, Some(sni)));
//! if matches!(probe.outcome, Some(HandshakeOutcome::ResetAfterClientHello
//!     | HandshakeOutcome::ClosedAfterClientHello
//!     | HandshakeOutcome::SilenceAfterClientHello)) {
//!     let replay = tls::sni_replay(&SniReplayConfig::new(addr, sni, broker_hop));
//! }
//! probe.judge_issuer(&expectation); // the analysis' issuer rule
//! let problems = rules::validity::validity_at(&probe.certificates, now_unix);
//! ```

mod cert;
mod describe;
mod progress;
mod replay;
#[cfg(test)]
mod tests;
mod verifier;

pub use cert::{CertInfo, decode_chain};
pub use progress::{ServerProgress, server_progress};
pub use replay::{
    ReplayAttempt, ReplayOutcome, SniReplay, SniReplayConclusion, SniReplayConfig,
    filter_hop_from_first_reset_ttl, sni_replay, sni_replay_conclusion,
};

use crate::analysis::rules::issuer::{self, IssuerExpectation, IssuerJudgement};
use crate::analysis::tls::CertSummary;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ProtocolVersion};
use serde::Serialize;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to probe and how long to wait.
#[derive(Clone, Debug)]
pub struct TlsProbeConfig {
    pub addr: SocketAddr,
    /// Server name to send; `None` (or an IP address) sends no SNI extension.
    pub sni: Option<String>,
    pub connect_timeout: Duration,
    /// For the whole TLS exchange after the TCP handshake.
    pub handshake_timeout: Duration,
    /// ALPN protocols to offer (the connector offers none).
    pub alpn: Vec<String>,
}

impl TlsProbeConfig {
    pub fn new(addr: SocketAddr, sni: Option<String>) -> TlsProbeConfig {
        TlsProbeConfig {
            addr,
            sni,
            connect_timeout: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(5),
            alpn: Vec::new(),
        }
    }
}

/// How the TCP connection went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum ConnectOutcome {
    Connected,
    /// A RST answered the SYN (ECONNREFUSED).
    Refused,
    /// No answer within the connect timeout.
    Timeout,
    /// An ICMP error (or no route): EHOSTUNREACH, ENETUNREACH.
    Unreachable {
        reason: String,
    },
    Error {
        reason: String,
    },
    /// The probe could not be set up (an SNI that is not a DNS name, a TLS
    /// configuration error): nothing was sent.
    NotAttempted {
        reason: String,
    },
}

/// How the TLS exchange ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum HandshakeOutcome {
    Completed,
    /// ECONNRESET before any server byte.
    ResetAfterClientHello,
    /// EOF before any server byte.
    ClosedAfterClientHello,
    /// Nothing from the server within the handshake timeout.
    SilenceAfterClientHello,
    ResetDuringHandshake {
        server: ServerProgress,
    },
    ClosedDuringHandshake {
        server: ServerProgress,
    },
    TimeoutDuringHandshake {
        server: ServerProgress,
    },
    /// The server sent a fatal alert (`description` as in the capture
    /// analysis: `unknown_ca`, `handshake_failure`, ...).
    AlertReceived {
        description: String,
        code: u8,
    },
    /// Any other TLS error (bad signature, protocol violation, not TLS).
    Failed {
        reason: String,
        server: ServerProgress,
    },
}

/// Everything one handshake showed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TlsProbe {
    pub addr: SocketAddr,
    pub sni: Option<String>,
    pub connect: ConnectOutcome,
    /// `None` when TCP did not connect.
    pub outcome: Option<HandshakeOutcome>,
    /// `TLS 1.2` / `TLS 1.3` once the ServerHello was processed.
    pub version: Option<String>,
    /// IANA cipher suite name.
    pub cipher: Option<String>,
    /// Whether the server sent a CertificateRequest (`None`: the handshake
    /// did not get far enough to know).
    pub client_cert_requested: Option<bool>,
    pub alpn: Option<String>,
    /// Certificates as sent, leaf first.
    pub chain: Vec<CertInfo>,
    /// Those that decoded, as the analysis' rules read them.
    #[serde(skip)]
    pub certificates: Vec<CertSummary>,
    /// The issuer rule's verdict on the chain ([`TlsProbe::judge_issuer`]);
    /// `None` until judged, or when no certificate was presented.
    pub issuer_class: Option<IssuerJudgement>,
    /// TLS 1.3 with a CertificateRequest: the server judges our (empty)
    /// certificate after our Finished, so its alert comes after the
    /// handshake completed; we wait briefly for it.
    pub post_handshake_alert: Option<String>,
    pub connect_ms: Option<f64>,
    pub handshake_ms: Option<f64>,
}

/// How long to wait after a completed TLS 1.3 handshake for the server's
/// verdict on our missing client certificate.
const POST_HANDSHAKE_WAIT: Duration = Duration::from_millis(500);

/// Connects and performs one TLS handshake. Never panics; every failure is
/// a value in the result.
pub fn handshake(cfg: &TlsProbeConfig) -> TlsProbe {
    let mut probe = TlsProbe::new(cfg);
    let conn = match client_connection(cfg.addr, cfg.sni.as_deref(), &cfg.alpn) {
        Ok(c) => c,
        Err(reason) => {
            probe.connect = ConnectOutcome::NotAttempted { reason };
            return probe;
        }
    };
    let started = Instant::now();
    let tcp = TcpStream::connect_timeout(&cfg.addr, cfg.connect_timeout);
    probe.connect_ms = Some(ms(started.elapsed()));
    match tcp {
        Ok(t) => handshake_with(probe, conn, t, cfg),
        Err(e) => {
            probe.connect = connect_outcome(&e);
            probe
        }
    }
}

/// One TLS handshake over a connection that is already open (a tunnel
/// through an explicit proxy): `cfg.addr` is the destination the tunnel
/// leads to, `cfg.connect_timeout` is not used.
pub fn handshake_over(tcp: TcpStream, cfg: &TlsProbeConfig) -> TlsProbe {
    let mut probe = TlsProbe::new(cfg);
    match client_connection(cfg.addr, cfg.sni.as_deref(), &cfg.alpn) {
        Ok(conn) => handshake_with(probe, conn, tcp, cfg),
        Err(reason) => {
            probe.connect = ConnectOutcome::NotAttempted { reason };
            probe
        }
    }
}

fn handshake_with(
    mut probe: TlsProbe,
    conn: (ClientConnection, Arc<verifier::Recorded>),
    mut tcp: TcpStream,
    cfg: &TlsProbeConfig,
) -> TlsProbe {
    let (mut conn, recorded) = conn;
    let _ = tcp.set_nodelay(true);

    let started = Instant::now();
    let deadline = started + cfg.handshake_timeout;
    let outcome = drive_handshake(&mut conn, &mut tcp, deadline);
    probe.handshake_ms = Some(ms(started.elapsed()));

    if outcome == HandshakeOutcome::Completed {
        if recorded.client_cert_requested()
            && conn.protocol_version() == Some(ProtocolVersion::TLSv1_3)
        {
            probe.post_handshake_alert = wait_for_alert(&mut conn, &mut tcp);
        }
        conn.send_close_notify();
        let _ = tcp.set_write_timeout(Some(Duration::from_secs(1)));
        while conn.wants_write() {
            if conn.write_tls(&mut tcp).is_err() {
                break;
            }
        }
        let _ = tcp.shutdown(Shutdown::Write);
    }

    probe.version = conn.protocol_version().map(version_name);
    probe.cipher = conn
        .negotiated_cipher_suite()
        .map(|s| cipher_name(u16::from(s.suite())));
    probe.alpn = conn
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    // Known once the server's flight up to ServerHelloDone / Finished was
    // processed: on completion, or when we got as far as a recorded chain.
    let chain_der = recorded.chain();
    if outcome == HandshakeOutcome::Completed
        || recorded.client_cert_requested()
        || !chain_der.is_empty()
    {
        probe.client_cert_requested = Some(recorded.client_cert_requested());
    }
    (probe.chain, probe.certificates) = decode_chain(&chain_der);
    probe.outcome = Some(outcome);
    probe
}

impl TlsProbe {
    /// Nothing seen yet: connected, no outcome.
    fn new(cfg: &TlsProbeConfig) -> TlsProbe {
        TlsProbe {
            addr: cfg.addr,
            sni: cfg.sni.clone(),
            connect: ConnectOutcome::Connected,
            outcome: None,
            version: None,
            cipher: None,
            client_cert_requested: None,
            alpn: None,
            chain: Vec::new(),
            certificates: Vec::new(),
            issuer_class: None,
            post_handshake_alert: None,
            connect_ms: None,
            handshake_ms: None,
        }
    }

    /// Judges the recorded chain with the analysis' issuer rule (the one
    /// `pcap` applies to chains in a capture) and keeps the verdict in
    /// `issuer_class`.
    pub fn judge_issuer(&mut self, expect: &IssuerExpectation<'_>) {
        self.issuer_class = issuer::judge(&self.certificates, self.chain.len(), expect);
    }
}

/// A rustls client for `sni` (no SNI extension when `None` or an IP
/// address) with the recording verifier.
fn client_connection(
    addr: SocketAddr,
    sni: Option<&str>,
    alpn: &[String],
) -> Result<(ClientConnection, Arc<verifier::Recorded>), String> {
    let (mut config, recorded) =
        verifier::recording_config(alpn).map_err(|e| format!("TLS configuration: {e}"))?;
    let name = match sni {
        Some(s) => ServerName::try_from(s.to_string())
            .map_err(|e| format!("SNI {s:?} is not a DNS name or IP address: {e}"))?,
        None => {
            // rustls needs a name; an IP address is never sent as SNI.
            config.enable_sni = false;
            ServerName::IpAddress(addr.ip().into())
        }
    };
    let conn =
        ClientConnection::new(Arc::new(config), name).map_err(|e| format!("TLS client: {e}"))?;
    Ok((conn, recorded))
}

/// Reads and writes until the handshake completes or stops; keeps the
/// server's bytes to say how far it got.
fn drive_handshake(
    conn: &mut ClientConnection,
    tcp: &mut TcpStream,
    deadline: Instant,
) -> HandshakeOutcome {
    let mut seen: Vec<u8> = Vec::new();
    let mut total: u64 = 0;
    let mut buf = vec![0u8; 16 * 1024];
    let progress = |seen: &[u8], total| progress::server_progress(seen, total);
    loop {
        if let Err(e) = flush(conn, tcp, deadline) {
            return stopped(&e, &seen, total);
        }
        if !conn.is_handshaking() {
            return HandshakeOutcome::Completed;
        }
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return timed_out(&seen, total);
        };
        let _ = tcp.set_read_timeout(Some(left));
        let n = match tcp.read(&mut buf) {
            Ok(0) if total == 0 => return HandshakeOutcome::ClosedAfterClientHello,
            Ok(0) => {
                return HandshakeOutcome::ClosedDuringHandshake {
                    server: progress(&seen, total),
                };
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return stopped(&e, &seen, total),
        };
        total += n as u64;
        let keep = n.min(progress::MAX_KEPT.saturating_sub(seen.len()));
        seen.extend_from_slice(&buf[..keep]);
        let mut input = &buf[..n];
        while !input.is_empty() {
            let fed = conn.read_tls(&mut input);
            let processed = conn.process_new_packets();
            if let Err(e) = processed {
                // Let our alert go out, as a real client's would.
                let _ = flush(conn, tcp, deadline);
                return tls_error(e, progress(&seen, total));
            }
            if let Err(e) = fed {
                return HandshakeOutcome::Failed {
                    reason: format!("reading TLS records: {e}"),
                    server: progress(&seen, total),
                };
            }
        }
    }
}

fn flush(conn: &mut ClientConnection, tcp: &mut TcpStream, deadline: Instant) -> io::Result<()> {
    let left = deadline
        .checked_duration_since(Instant::now())
        .unwrap_or(Duration::from_millis(1))
        .max(Duration::from_millis(1));
    tcp.set_write_timeout(Some(left))?;
    while conn.wants_write() {
        conn.write_tls(tcp)?;
    }
    Ok(())
}

/// A socket error during the handshake, before or after the server's first
/// byte.
fn stopped(e: &io::Error, seen: &[u8], total: u64) -> HandshakeOutcome {
    let server = progress::server_progress(seen, total);
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => {
            if total == 0 {
                HandshakeOutcome::ResetAfterClientHello
            } else {
                HandshakeOutcome::ResetDuringHandshake { server }
            }
        }
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => timed_out(seen, total),
        _ => HandshakeOutcome::Failed {
            reason: format!("socket: {e}"),
            server,
        },
    }
}

fn timed_out(seen: &[u8], total: u64) -> HandshakeOutcome {
    if total == 0 {
        HandshakeOutcome::SilenceAfterClientHello
    } else {
        HandshakeOutcome::TimeoutDuringHandshake {
            server: progress::server_progress(seen, total),
        }
    }
}

fn tls_error(e: rustls::Error, server: ServerProgress) -> HandshakeOutcome {
    match e {
        rustls::Error::AlertReceived(d) => {
            let code = u8::from(d);
            HandshakeOutcome::AlertReceived {
                description: alert_name(code),
                code,
            }
        }
        other => HandshakeOutcome::Failed {
            reason: other.to_string(),
            server,
        },
    }
}

/// After a completed handshake, reads for a short while to catch a fatal
/// alert (TLS 1.3 client-certificate rejection).
fn wait_for_alert(conn: &mut ClientConnection, tcp: &mut TcpStream) -> Option<String> {
    let until = Instant::now() + POST_HANDSHAKE_WAIT;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let left = until.checked_duration_since(Instant::now())?;
        if left.is_zero() || tcp.set_read_timeout(Some(left)).is_err() {
            return None;
        }
        let n = match tcp.read(&mut buf) {
            Ok(0) => return Some("connection closed without an alert".to_string()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                return Some("connection reset".to_string());
            }
            Err(_) => return None,
        };
        let mut input = &buf[..n];
        while !input.is_empty() {
            let fed = conn.read_tls(&mut input);
            match conn.process_new_packets() {
                Err(rustls::Error::AlertReceived(d)) => return Some(alert_name(u8::from(d))),
                Err(e) => return Some(e.to_string()),
                Ok(state) if state.peer_has_closed() => {
                    return Some("close_notify".to_string());
                }
                Ok(_) => {}
            }
            fed.ok()?;
        }
    }
}

fn connect_outcome(e: &io::Error) -> ConnectOutcome {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ConnectOutcome::Refused,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ConnectOutcome::Timeout,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            ConnectOutcome::Unreachable {
                reason: e.to_string(),
            }
        }
        _ => ConnectOutcome::Error {
            reason: e.to_string(),
        },
    }
}

/// Alert names as the capture analysis writes them (`unknown_ca`).
fn alert_name(code: u8) -> String {
    crate::analysis::tls::alert_name(tls_parser::TlsAlertDescription(code))
        .unwrap_or_else(|| format!("alert {code}"))
}

fn version_name(v: ProtocolVersion) -> String {
    match v {
        ProtocolVersion::TLSv1_3 => "TLS 1.3".to_string(),
        ProtocolVersion::TLSv1_2 => "TLS 1.2".to_string(),
        other => format!("{other:?}"),
    }
}

/// IANA name from tls-parser's registry table (rustls spells TLS 1.3 suites
/// `TLS13_...`).
fn cipher_name(id: u16) -> String {
    tls_parser::TlsCipherSuite::from_id(id)
        .map(|c| c.name.to_string())
        .unwrap_or_else(|| format!("0x{id:04x}"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
