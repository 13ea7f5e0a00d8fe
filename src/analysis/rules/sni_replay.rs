//! Where a ClientHello filter sits, from TTL-limited replays of the
//! ClientHello (detection.md §1.7, §5.6): the broker's name against a
//! harmless control name, at TTL 1, 2, … (`check` sends them; this judges
//! what they drew). The hop arithmetic is [`filter_hop_from_first_reset_ttl`].

use serde::Serialize;

/// What one TTL-limited ClientHello drew.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum ReplayOutcome {
    /// ECONNRESET.
    Reset,
    /// Bytes came back (the server, or a proxy, answered).
    Answered { bytes: usize },
    /// EOF.
    Closed,
    /// Nothing within `wait` (the ClientHello expired on the way, or was
    /// dropped).
    Silent,
    /// The TCP connection itself failed: this attempt says nothing.
    ConnectFailed { reason: String },
    /// Setting the TTL, building or sending the ClientHello failed.
    Error { reason: String },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplayAttempt {
    pub ttl: u8,
    pub sni: String,
    /// This attempt carried the control name.
    pub control: bool,
    pub outcome: ReplayOutcome,
    pub elapsed_ms: f64,
}

/// What the attempts show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "conclusion")]
pub enum SniReplayConclusion {
    /// The real name draws a reset from `first_reset_ttl` on, the control
    /// name never: a filter on the name at `filter_hop`
    /// (see [`filter_hop_from_first_reset_ttl`]; 0 = this host).
    SniFilter { first_reset_ttl: u8, filter_hop: u8 },
    /// The control name is reset too: the device resets ClientHellos to this
    /// address whatever the name (or keeps blocking the address for a while
    /// after a first reset: residual blocking).
    NotSniSpecific {
        first_reset_ttl: u8,
        control_first_reset_ttl: u8,
        filter_hop: u8,
    },
    /// No reset, but at `ttl` the control name was answered while the real
    /// one was not (`real` says what it drew): a dropping or closing filter,
    /// which TTLs cannot place.
    SniDropped { ttl: u8, real: ReplayOutcome },
    /// Both names fared the same at every TTL.
    NoDifference,
    /// Not enough attempts got a TCP connection.
    Inconclusive { reason: String },
}

/// The hop whose filter resets a ClientHello first drawing a reset at
/// TTL `first_reset_ttl`.
///
/// Hops are numbered as traceroute numbers them: hop h is the router that
/// drops a packet sent with TTL h (and says so with Time Exceeded). Router k
/// receives our packet with TTL t − (k − 1) and, Linux `ip_forward` checking
/// "TTL ≤ 1 → drop" *before* the netfilter FORWARD hook, forwards (and so
/// inspects, in FORWARD) only packets sent with t ≥ k + 1. The smallest TTL
/// that draws the reset is therefore k + 1, and the filter is at hop
/// `first_reset_ttl − 1`; 0 means this host (its OUTPUT chain sees TTL 1).
/// A device acting before the TTL check (PREROUTING, an on-path tap) already
/// sees t ≥ k: it may sit one hop further, at hop `first_reset_ttl`.
pub fn filter_hop_from_first_reset_ttl(first_reset_ttl: u8) -> u8 {
    first_reset_ttl.saturating_sub(1)
}

/// The conclusion from the attempts (any order, both names at each TTL).
pub fn sni_replay_conclusion(attempts: &[ReplayAttempt]) -> SniReplayConclusion {
    let connected: Vec<&ReplayAttempt> = attempts
        .iter()
        .filter(|a| !matches!(a.outcome, ReplayOutcome::ConnectFailed { .. }))
        .collect();
    let first_reset = |control: bool| {
        connected
            .iter()
            .filter(|a| a.control == control && a.outcome == ReplayOutcome::Reset)
            .map(|a| a.ttl)
            .min()
    };
    match (first_reset(false), first_reset(true)) {
        (Some(first), None) => SniReplayConclusion::SniFilter {
            first_reset_ttl: first,
            filter_hop: filter_hop_from_first_reset_ttl(first),
        },
        (Some(first), Some(control_first)) => SniReplayConclusion::NotSniSpecific {
            first_reset_ttl: first,
            control_first_reset_ttl: control_first,
            filter_hop: filter_hop_from_first_reset_ttl(first.min(control_first)),
        },
        (None, _) => {
            if !connected.iter().any(|a| a.control) || !connected.iter().any(|a| !a.control) {
                return SniReplayConclusion::Inconclusive {
                    reason: format!(
                        "{} of {} attempts got a TCP connection",
                        connected.len(),
                        attempts.len()
                    ),
                };
            }
            let mut ttls: Vec<u8> = connected.iter().map(|a| a.ttl).collect();
            ttls.sort_unstable();
            ttls.dedup();
            for ttl in ttls {
                let at = |control: bool| {
                    connected
                        .iter()
                        .find(|a| a.ttl == ttl && a.control == control)
                        .map(|a| &a.outcome)
                };
                if let (Some(real), Some(ReplayOutcome::Answered { .. })) = (at(false), at(true))
                    && matches!(real, ReplayOutcome::Silent | ReplayOutcome::Closed)
                {
                    return SniReplayConclusion::SniDropped {
                        ttl,
                        real: real.clone(),
                    };
                }
            }
            SniReplayConclusion::NoDifference
        }
    }
}
