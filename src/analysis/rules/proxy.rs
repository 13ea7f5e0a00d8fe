//! An explicit proxy's answer to `CONNECT broker:443` when it is not 2xx:
//! the tunnel to the broker never opened, so no TLS follows.
//!
//! - **4xx** (403 Forbidden, 407 Proxy Authentication Required, ...): the
//!   proxy itself refuses to connect the connector to its broker. That is
//!   `tcp-blocked` at the proxy: the TCP connection to the broker is what the
//!   proxy will not make. The hop is the proxy's (its SYN-ACK's TTL: it is
//!   the TCP peer), the address the proxy's.
//! - **5xx** (502 Bad Gateway, 503, 504): the proxy tried and could not
//!   reach the broker. The failure lies beyond the proxy, where the
//!   connector's capture cannot see: `inconclusive`, saying so, and where
//!   to look next. (A 5xx can be a policy page too; the status alone does
//!   not tell, and a false block is worse than an undecided verdict.)
//! - Anything else that is not 2xx (1xx, 3xx): treated as 4xx, the proxy
//!   did not open the tunnel.

use super::server::Server;
use crate::vocab::{
    Confidence, Finding, FindingKind, HopEstimate, Severity, Verdict, VerdictClass,
};

/// The first refused tunnel of the server (a proxy), as a verdict; every
/// refused tunnel's frames go to its finding.
pub(super) fn refused(s: &Server<'_>, findings: &mut Vec<Finding>) -> Option<Verdict> {
    let mut refusals = s.flows.iter().filter_map(|f| {
        let t = f.tunnel()?;
        let a = t
            .answer
            .as_ref()
            .filter(|a| !(200..300).contains(&a.status))?;
        Some((f, t, a))
    });
    let (f, t, a) = refusals.next()?;
    let mut frames = vec![t.request_frame, a.frame];
    let mut more = 0usize;
    for (_, t2, a2) in refusals {
        frames.extend([t2.request_frame, a2.frame]);
        more += 1;
    }
    let proxy = f.server;
    let hop = f.syn_ack.map(|sa| HopEstimate::from_ttl(sa.ttl).hop);
    let at = hop.map(|h| format!(" at hop {h}")).unwrap_or_default();
    let others = if more > 0 {
        format!(
            " ({more} more tunnel request{} refused)",
            if more == 1 { "" } else { "s" }
        )
    } else {
        String::new()
    };
    let answered = format!(
        "the explicit proxy {proxy}{at} answered CONNECT {} with \"{}\" (frame {}){others}",
        t.target, a.status_line, a.frame
    );
    let server_error = beyond_the_proxy(a.status);
    if server_error {
        let text = format!(
            "{answered}: the proxy could not reach the broker; what fails lies beyond the proxy, which this capture does not show"
        );
        findings.push(
            Finding::new(
                FindingKind::ProxyRefused,
                Severity::Warning,
                text.clone(),
                frames,
                None,
            )
            .at(hop, Some(proxy.ip())),
        );
        return Some(Verdict {
            class: VerdictClass::Inconclusive,
            hop: None,
            address: None,
            confidence: Confidence::Low,
            summary: format!("Connections to the broker through the proxy fail: {text}."),
            next_steps: vec![format!(
                "Diagnose from the proxy ({proxy}): its log for CONNECT {} says why it could not connect; run `pathproof check` or capture on the proxy host toward the broker.",
                t.target
            )],
        });
    }
    let text = format!("{answered}: the proxy refuses to open the tunnel to the broker");
    findings.push(
        Finding::new(
            FindingKind::TcpBlocked,
            Severity::Critical,
            text.clone(),
            frames,
            None,
        )
        .at(hop, Some(proxy.ip())),
    );
    let step = refusal_step(a.status, t.port);
    Some(Verdict {
        class: VerdictClass::TcpBlocked,
        hop,
        address: Some(proxy.ip()),
        confidence: Confidence::High,
        summary: format!("The connector cannot reach its broker through the proxy: {text}."),
        next_steps: vec![step],
    })
}

/// A non-2xx answer to CONNECT that says the proxy tried and could not
/// reach the destination (5xx): the failure lies beyond the proxy.
/// Anything else not 2xx is the proxy refusing to open the tunnel.
pub fn beyond_the_proxy(status: u16) -> bool {
    (500..600).contains(&status)
}

/// What to do about a proxy that refuses (4xx and the rest) the tunnel to
/// `port`.
pub fn refusal_step(status: u16, port: u16) -> String {
    match status {
        407 => "The proxy wants the connector to authenticate: give the connector the proxy's credentials, or exempt the broker names from proxy authentication.".to_string(),
        403 => format!(
            "The proxy's policy forbids the broker: allow CONNECT to the broker names (port {port}) on the proxy."
        ),
        _ => format!(
            "Allow CONNECT to the broker names (port {port}) on the proxy; the status line says what it objects to."
        ),
    }
}
