//! Where a failing destination fails: the hop, named by the engines `check`
//! and `trace` use, through the same rules.
//!
//! - TCP or TLS: a short `check` of that one address (a TCP trace with its
//!   ICMP control, the TLS handshake, the packets recorded and analysed),
//!   without the host checks: the verdict `check ADDRESS` would give.
//! - UDP (DTLS on 443, SNTP on 123): a short UDP trace to the port with an
//!   ICMP control trace, judged by the path rules.
//!
//! Both need raw sockets; without them the row keeps its unplaced verdict
//! and says why.

use crate::analysis::rules::issuer::PinnedCas;
use crate::analysis::{Verdict, judge_trace};
use crate::app::evidence::EvidenceSummary;
use crate::check::{CheckConfig, run_check};
use crate::trace::live::{LiveJob, run_live};
use crate::trace::{TraceConfig, TraceProtocol};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Trace rounds of a localisation: enough to see a hop that drops, few
/// enough to stay within seconds.
const ROUNDS: u32 = 5;
const INTERVAL: Duration = Duration::from_millis(200);

/// What a localisation found.
pub enum Located {
    /// The rules' verdict with the hop (or the reason it has none), and the
    /// evidence capture written for it (`evidence` asked).
    Verdict(Verdict, Option<EvidenceSummary>),
    /// The probing could not run (no raw sockets, no route).
    NotRun(String),
}

/// A short check of one address on `port` with `sni`.
pub fn tcp(
    address: IpAddr,
    port: u16,
    sni: Option<String>,
    expect_issuer: &str,
    expect_ca: Option<Arc<PinnedCas>>,
    evidence: Option<PathBuf>,
    stop: Option<Arc<AtomicBool>>,
) -> Located {
    let cfg = CheckConfig {
        targets: vec![address.to_string()],
        sni,
        port,
        expect_issuer: expect_issuer.to_string(),
        expect_ca,
        max_brokers: 1,
        trace_rounds: ROUNDS,
        trace_interval: INTERVAL,
        pmtu: false,
        host_checks: false,
        evidence,
        stop,
        ..CheckConfig::default()
    };
    match run_check(&cfg, |_| {}) {
        Ok(r) if r.recording.recorded => {
            let evidence = r.capture.and_then(|c| c.evidence);
            Located::Verdict(r.verdict, evidence)
        }
        Ok(r) => Located::NotRun(
            r.recording
                .error
                .unwrap_or_else(|| "the packets could not be recorded".into()),
        ),
        Err(e) => Located::NotRun(e.to_string()),
    }
}

/// A short UDP trace to `address:port`, with its ICMP control.
pub fn udp(address: IpAddr, port: u16, stop: Option<Arc<AtomicBool>>) -> Located {
    let mut config = TraceConfig::new(address, TraceProtocol::Udp { port });
    config.rounds = ROUNDS;
    config.interval = INTERVAL;
    config.fit_inflight();
    let job = LiveJob {
        config,
        control: true,
        save: None,
        stop,
    };
    match run_live(job, |_| {}) {
        Ok(t) => Located::Verdict(judge_trace(&t.trace, t.control.as_ref()).verdict, None),
        Err(e) => Located::NotRun(e.to_string()),
    }
}
