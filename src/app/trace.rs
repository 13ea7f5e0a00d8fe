//! The `trace` job: resolve the target, size the trace, run it with its
//! control trace, and have the analysis judge it.

use crate::analysis::{TraceJudgement, judge_trace};
use crate::trace::live::{LiveError, LiveJob, LiveTrace, run_live};
use crate::trace::{Progress, TraceConfig, TraceProtocol};
use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// What `pathproof trace` was asked to do.
#[derive(Clone, Debug)]
pub struct TraceJob {
    /// An address, or a name resolved once through the system resolver.
    pub target: String,
    pub protocol: TraceProtocol,
    pub rounds: u32,
    pub interval: Duration,
    pub max_ttl: u8,
    /// How long a probe waits for its answer (the tracer's default when
    /// `None`).
    pub timeout: Option<Duration>,
    /// Run the ICMP control trace beside a TCP trace (`--no-control` turns
    /// it off); beside a UDP trace only when asked (`--control-icmp`).
    pub no_control: bool,
    pub control_icmp: bool,
    pub save: Option<PathBuf>,
    /// Set from outside (SIGINT, SIGTERM) to end the trace early.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// Why a trace could not run (bad input or usage: exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum TraceJobError {
    #[error("cannot resolve {target}: {reason}")]
    Resolve { target: String, reason: String },
    #[error(transparent)]
    Config(#[from] crate::trace::TraceError),
    #[error(transparent)]
    Live(#[from] LiveError),
}

impl TraceJob {
    /// The target's address: as given, or the system resolver's first.
    pub fn resolve(&self) -> Result<IpAddr, TraceJobError> {
        if let Ok(a) = self.target.parse::<IpAddr>() {
            return Ok(a);
        }
        let err = |reason: String| TraceJobError::Resolve {
            target: self.target.clone(),
            reason,
        };
        (self.target.as_str(), 0)
            .to_socket_addrs()
            .map_err(|e| err(e.to_string()))?
            .map(|a| a.ip())
            .next()
            .ok_or_else(|| err("no address".into()))
    }

    /// The tracer's configuration (validated) and whether a control trace
    /// runs, for a target.
    pub fn plan(&self, target: IpAddr) -> Result<LiveJob, TraceJobError> {
        let mut config = TraceConfig::new(target, self.protocol);
        config.rounds = self.rounds;
        config.interval = self.interval;
        config.max_ttl = self.max_ttl;
        if let Some(t) = self.timeout {
            config.timeout = t;
        }
        config.fit_inflight();
        config.validate()?;
        let control = !self.no_control
            && match self.protocol {
                TraceProtocol::Tcp { .. } => true,
                TraceProtocol::Udp { .. } => self.control_icmp,
                TraceProtocol::Icmp => false,
            };
        Ok(LiveJob {
            config,
            control,
            save: self.save.clone(),
            stop: self.stop.clone(),
        })
    }
}

/// Runs a planned trace; `on_round` sees each round's progress.
pub fn run_trace(
    job: LiveJob,
    on_round: impl FnMut(&Progress<'_>),
) -> Result<(LiveTrace, TraceJudgement), TraceJobError> {
    let live = run_live(job, on_round)?;
    let judged = judge_trace(&live.trace, live.control.as_ref());
    Ok((live, judged))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(protocol: TraceProtocol) -> TraceJob {
        TraceJob {
            target: "192.0.2.7".into(),
            protocol,
            rounds: 10,
            interval: Duration::from_millis(200),
            max_ttl: 30,
            timeout: Some(Duration::from_secs(1)),
            no_control: false,
            control_icmp: false,
            save: None,
            stop: None,
        }
    }

    #[test]
    fn plan_sizes_the_window_and_picks_the_control() {
        let j = job(TraceProtocol::Tcp { port: 443 });
        let a = j.resolve().unwrap();
        let p = j.plan(a).unwrap();
        // 1 s timeout over 0.2 s rounds: 5 rounds awaited at once × 30 TTLs.
        assert_eq!(p.config.max_inflight, 150);
        assert!(p.control);
        assert!(
            !job(TraceProtocol::Udp { port: 33434 })
                .plan(a)
                .unwrap()
                .control
        );
        assert!(!job(TraceProtocol::Icmp).plan(a).unwrap().control);
        let mut bad = job(TraceProtocol::Icmp);
        bad.max_ttl = 0;
        assert!(bad.plan(a).is_err());
    }
}
