//! A fatal TLS alert from the server's side that ends a handshake: who sent
//! it, and what it says.
//!
//! A server that cannot or will not accept the connector's offer answers
//! with a fatal alert (RFC 8446 §6.2): `protocol_version` (no common
//! version), `handshake_failure` / `insufficient_security` (no common
//! cipher or group), `certificate_required` / `bad_certificate` (the client
//! certificate), `unrecognized_name` (the SNI is not served). That is the
//! server refusing the offer, not a filter on the way. An alert is called
//! the server's when its packet's TTL places it at the server's own hop (the
//! same initial TTL as the server's SYN-ACK and at most one hop apart, the
//! tolerance the reset rules give an asymmetric return path). When its TTL
//! places it before the server's hop (two hops or more, or another initial
//! TTL: another network stack), a device on the way answered in the
//! server's name: that stays a blocking case ([`super::tls`]).
//!
//! The alert's IP ID is reported, not judged: an alert answering the
//! ClientHello is usually the server's first data packet, and its SYN-ACK's
//! IP ID (0 from Linux) says nothing about the counter that follows.

use crate::analysis::flows::FlowRecord;
use crate::analysis::tls::{AlertInfo, Side, TlsObservation};
use crate::vocab::HopEstimate;

/// Alert descriptions that end nothing (close_notify, user_canceled).
const NOT_A_REFUSAL: [u8; 2] = [0, 90];

/// Who sent a server-side fatal alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AlertOrigin {
    /// Its TTL is the server's (or nothing to compare it with: the SYN-ACK
    /// is not in the capture).
    Server { compared: bool },
    /// Its TTL places it at `hop`, before the server's `server_hop`.
    BeforeServer { hop: u8, server_hop: u8 },
}

/// The fatal alert the server's side sent, and where it came from.
#[derive(Clone, Copy, Debug)]
pub(super) struct ServerAlert<'a> {
    pub alert: &'a AlertInfo,
    pub origin: AlertOrigin,
    /// The alert's TTL and the hop it implies.
    pub ttl: Option<u8>,
    pub hop: Option<u8>,
    /// The server's SYN-ACK TTL and hop (the baseline).
    pub server_ttl: Option<u8>,
    pub server_hop: Option<u8>,
}

/// The first fatal alert in clear from the server's side of a handshake
/// that did not complete, with its origin.
pub(super) fn server_alert<'a>(f: &FlowRecord, obs: &'a TlsObservation) -> Option<ServerAlert<'a>> {
    if obs.handshake_complete {
        return None;
    }
    let alert = obs.alerts.iter().find(|a| {
        a.from == Side::Server
            && !a.encrypted
            && a.level == Some(2)
            && a.description.is_some_and(|d| !NOT_A_REFUSAL.contains(&d))
    })?;
    let server_ttl = f.syn_ack.map(|s| s.ttl);
    let mine = alert.ttl.map(HopEstimate::from_ttl);
    let theirs = server_ttl.map(HopEstimate::from_ttl);
    let origin = match (mine, theirs) {
        (Some(m), Some(s)) => {
            let other_stack = m.initial_ttl != s.initial_ttl;
            if other_stack || m.hop.saturating_add(2) <= s.hop {
                AlertOrigin::BeforeServer {
                    hop: m.hop,
                    server_hop: s.hop,
                }
            } else {
                AlertOrigin::Server { compared: true }
            }
        }
        _ => AlertOrigin::Server { compared: false },
    };
    Some(ServerAlert {
        alert,
        origin,
        ttl: alert.ttl,
        hop: mine.map(|m| m.hop),
        server_ttl,
        server_hop: theirs.map(|s| s.hop),
    })
}

/// The alert's name (`handshake_failure`), or its number.
pub(super) fn alert_label(a: &AlertInfo) -> String {
    match (&a.description_name, a.description) {
        (Some(n), _) => n.clone(),
        (None, Some(d)) => format!("alert {d}"),
        (None, None) => "an alert".into(),
    }
}

/// What a refusal means and what to do, per alert (RFC 8446 §6.2 names).
pub(super) fn refusal_advice(a: &AlertInfo, sni: Option<&str>) -> (String, String) {
    let name = sni.map_or_else(
        || "the name it was asked for (the ClientHello has no SNI)".to_string(),
        |s| format!("\"{s}\""),
    );
    match a.description {
        // protocol_version, handshake_failure, insufficient_security,
        // inappropriate_fallback, illegal_parameter.
        Some(70) => (
            "no TLS version the client offered is one the server accepts".into(),
            "Check the TLS versions the connector offers against the broker's (the connector software or its host's crypto policy may be too old or too strict).".into(),
        ),
        Some(40 | 71 | 47 | 86) => (
            "the server accepts none of the offered cipher suites, groups or parameters".into(),
            "Check the cipher suites and key-exchange groups the connector offers (its version, the host's crypto policy, FIPS mode) against what the broker accepts.".into(),
        ),
        // bad_certificate, certificate_required, unsupported_certificate,
        // certificate_revoked, certificate_expired, certificate_unknown,
        // unknown_ca, access_denied.
        Some(42 | 116 | 43 | 44 | 45 | 46 | 48 | 49) => (
            "the server rejects the client certificate (missing, expired, revoked or unknown)".into(),
            "The broker wants a valid client certificate: check the connector's enrollment (provisioning key, certificate not expired or revoked) and re-enroll it if needed.".into(),
        ),
        // unrecognized_name.
        Some(112) => (
            format!("the server does not serve {name}"),
            "Check the name the connector asks for (its cloud and broker name) and that it reaches the broker for that cloud.".into(),
        ),
        _ => (
            "the server refused the handshake".into(),
            "Look at the broker side's reason for the alert; the network delivered the handshake.".into(),
        ),
    }
}
