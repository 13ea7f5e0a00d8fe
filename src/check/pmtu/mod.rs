//! Active path-MTU discovery toward the broker (detection.md §4), on the
//! tracer's [`Network`] and [`Clock`] so that it runs on raw sockets live
//! and on a simulated network in the tests.
//!
//! Probes are IPv4 packets with DF set (IPv6: routers never fragment) of an
//! exact total length ([`emit_sized`]): ICMP echo requests, or TCP SYNs to
//! the broker port carrying padding as SYN data. The receiver answers the
//! SYN (SYN-ACK or RST) and ignores the data, so any answer proves that the
//! full-size packet arrived.
//!
//! 1. **Search** ([`search::SizeSearch`]): `high` first, then `low` (and
//!    576 if even `low` fails, to tell "nothing passes" from a small MTU),
//!    then a 1-byte binary search between the largest size that passed and
//!    the smallest that failed. A size passes on the first answer and fails
//!    after `tries_per_size` unanswered probes (RFC 8899's MAX_PROBES) or at
//!    once on a fragmentation-needed / packet-too-big quoting the probe,
//!    whose MTU is tested next.
//! 2. **Localisation** ([`search::localise`]): when the smallest failing
//!    size failed silently (a black hole), probes of that size at TTL
//!    1..=target hop show the last router the big packet reaches; a
//!    passing-size probe at the next TTL confirms that the next router
//!    answers at all.
//!
//! Probes are sent one at a time: the search is sequential by nature, and a
//! reply is tied to its probe by the echo sequence / TCP sequence number
//! ([`Matcher`]).

pub mod search;
#[cfg(test)]
mod tests;

use crate::analysis::HopEstimate;
use crate::analysis::rules::pmtu::{SizeCount, black_hole};
use crate::packet::emit::{ProbeKind, ProbeSpec, emit_sized, tcp_seq};
use crate::packet::{Direction, Transport, decode_ip};
use crate::trace::probe::{Matcher, ProbeRef};
use crate::trace::{
    Clock, Instant, Network, Probe, ProbeRequest, ReplyKind, TraceError, TraceProtocol,
};
use search::{FailReason, Localisation, SizeSearch, TtlAnswer, TtlProbe};
use serde::{Serialize, Serializer};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// Size tried when even `low` fails: the IPv4 minimum every host must
/// accept (RFC 791), so silence there means nothing passes at all.
pub const FLOOR_SIZE: u16 = 576;

/// TTL of the search probes (not TTL-limited).
const SEARCH_TTL: u8 = 64;
/// Verification rounds after a silent failure (each: the smallest failing
/// size, the largest silent size and the largest passing one, one try each). On a
/// path that loses half the round trips, a larger size stays silent through
/// 4 rounds of two sizes with probability 0.5⁸ ≈ 0.4 %.
const VERIFY_ROUNDS: usize = 4;

/// Probes per size at the search TTL, as a capture of them counts them:
/// every send, and every answer (late ones too).
fn size_counts(steps: &[PmtuStep]) -> Vec<SizeCount> {
    let mut counts: Vec<SizeCount> = Vec::new();
    for s in steps.iter().filter(|s| s.ttl == SEARCH_TTL) {
        let late = s.outcome.starts_with("late ");
        let sent = !late && !s.outcome.starts_with("not sent");
        let answered = s.outcome == "passed" || s.outcome == "late passed";
        if !sent && !answered {
            continue;
        }
        let size = u32::from(s.size);
        let i = match counts.iter().position(|c| c.size == size) {
            Some(i) => i,
            None => {
                counts.push(SizeCount {
                    size,
                    sent: 0,
                    answered: 0,
                });
                counts.len() - 1
            }
        };
        counts[i].sent += u32::from(sent);
        counts[i].answered += u32::from(answered);
    }
    counts
}

/// Empty returns from the network before the deadline tolerated in a row
/// (signals); more means a broken network implementation.
const MAX_STALLS: u32 = 8;

/// `EMSGSIZE`: the kernel refuses a packet larger than the interface MTU.
const EMSGSIZE: i32 = nix::errno::Errno::EMSGSIZE as i32;

/// What the probes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PmtuProtocol {
    /// ICMP / ICMPv6 echo requests.
    Icmp,
    /// TCP SYNs with padding data to this port.
    Tcp { port: u16 },
}

impl PmtuProtocol {
    /// The tracer's protocol (for [`crate::trace::socket::RawNetwork::open`]).
    pub fn trace_protocol(self) -> TraceProtocol {
        match self {
            PmtuProtocol::Icmp => TraceProtocol::Icmp,
            PmtuProtocol::Tcp { port } => TraceProtocol::Tcp { port },
        }
    }
}

impl fmt::Display for PmtuProtocol {
    /// `icmp`, `tcp/443`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.trace_protocol().fmt(f)
    }
}

impl Serialize for PmtuProtocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What to probe and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PmtuConfig {
    pub target: IpAddr,
    /// Source address of the probes (the replies are matched to it).
    pub source: IpAddr,
    pub protocol: PmtuProtocol,
    /// Smallest size searched (1200); if it fails, [`FLOOR_SIZE`] is tried.
    pub low: u16,
    /// Largest size searched (1500, or the outgoing interface's MTU).
    pub high: u16,
    /// Unanswered probes after which a size fails (3: RFC 8899 MAX_PROBES).
    pub tries_per_size: u8,
    /// Tries per TTL and size while localising a black hole (2).
    pub localise_tries: u8,
    /// How long a probe waits for its answer (1 s).
    pub timeout: Duration,
    /// The target's hop (from the trace): last TTL of localisation;
    /// `None`: up to 16.
    pub target_hop: Option<u8>,
    /// Echo id / TCP sequence high half / IPv6 flow label of the probes.
    pub ident: u16,
    /// TCP source port.
    pub src_port: u16,
    /// Probes sent at most (128).
    pub max_probes: u32,
    /// Time the whole run may take, at most (60 s; checked before each probe).
    pub max_duration: Duration,
}

/// Localisation probes up to this TTL when the target's hop is unknown.
pub const DEFAULT_MAX_TTL: u8 = 16;

impl PmtuConfig {
    /// Defaults as documented on each field; ident from the process id
    /// (as the tracer's, plus one so that a concurrent trace stays apart).
    pub fn new(target: IpAddr, source: IpAddr) -> PmtuConfig {
        let ident = ((std::process::id().wrapping_add(1)) & 0xffff) as u16;
        PmtuConfig {
            target,
            source,
            protocol: PmtuProtocol::Icmp,
            low: 1200,
            high: 1500,
            tries_per_size: 3,
            localise_tries: 2,
            timeout: Duration::from_secs(1),
            target_hop: None,
            ident,
            // Within the dynamic range 49152–65535.
            src_port: 49152 | (ident & 0x3fff),
            max_probes: 128,
            max_duration: Duration::from_secs(60),
        }
    }

    pub fn validate(&self) -> Result<(), TraceError> {
        let bad = |field, reason| Err(TraceError::Config { field, reason });
        if self.source.is_ipv6() != self.target.is_ipv6() {
            return bad("source", "must be of the target's IP version");
        }
        if self.low > self.high {
            return bad("low", "must not exceed high");
        }
        if self.low < 128 {
            return bad("low", "must be at least 128 bytes");
        }
        if self.tries_per_size == 0 || self.tries_per_size > 10 {
            return bad("tries_per_size", "must be between 1 and 10");
        }
        if self.localise_tries == 0 || self.localise_tries > 10 {
            return bad("localise_tries", "must be between 1 and 10");
        }
        if self.timeout < Duration::from_millis(1) || self.timeout > Duration::from_secs(60) {
            return bad("timeout", "must be between 1 ms and 60 s");
        }
        if self.target_hop == Some(0) || self.target_hop.is_some_and(|h| h > 64) {
            return bad("target_hop", "must be between 1 and 64");
        }
        if self.src_port == 0 || self.protocol == (PmtuProtocol::Tcp { port: 0 }) {
            return bad("port", "must not be 0");
        }
        if self.max_probes == 0 {
            return bad("max_probes", "must be at least 1");
        }
        Ok(())
    }
}

/// How the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PmtuOutcome {
    /// `high` passes.
    FullSizePasses,
    /// Everything this host will send toward the target passes, but it
    /// refuses sizes below `high`: a smaller interface MTU, or a path MTU
    /// the kernel cached from an earlier fragmentation-needed (Linux then
    /// refuses larger DF packets on every socket, raw ones included).
    HostLimited,
    /// A router reported a smaller MTU and that size passes: path-MTU
    /// discovery works.
    Reported,
    /// Larger sizes vanish without ICMP while smaller ones pass.
    Blackhole,
    /// No size, down to [`FLOOR_SIZE`], was answered: the target is down or
    /// the protocol is filtered; says nothing about the MTU.
    NoAnswer,
    /// Contradictory answers, or the probe/time budget ran out.
    Inconclusive,
}

/// One probe and what it drew.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PmtuStep {
    /// IP total length of the probe.
    pub size: u16,
    pub ttl: u8,
    /// `passed`, `frag-needed <mtu> from <addr>`, `silent`,
    /// `time-exceeded from <addr>`, `unreachable code <c> from <addr>`,
    /// `not sent: …`; prefixed `late ` for an answer after the timeout
    /// (such a step does not change the search).
    pub outcome: String,
    pub rtt_ms: Option<f64>,
}

/// The result of [`discover`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PmtuResult {
    pub protocol: PmtuProtocol,
    pub target: IpAddr,
    pub source: IpAddr,
    pub outcome: PmtuOutcome,
    /// The range searched.
    pub low: u16,
    pub high: u16,
    pub largest_passing: Option<u16>,
    pub smallest_failing: Option<u16>,
    /// From the last fragmentation-needed / packet-too-big with an MTU.
    pub reported_mtu: Option<u16>,
    pub reported_by: Option<IpAddr>,
    /// Hop of the reporting router, from the TTL of its ICMP message.
    pub reported_hop: Option<u8>,
    /// TTL of that ICMP message as received.
    pub reported_ttl: Option<u8>,
    pub blackhole: bool,
    /// The constriction is on the link after this hop (traceroute numbering;
    /// 0: this host's first link). See [`search::localise`].
    pub blackhole_after_hop: Option<u8>,
    pub blackhole_after_address: Option<IpAddr>,
    /// A passing-size probe reached the hop after the constriction while
    /// the failing size did not.
    pub blackhole_confirmed: bool,
    /// The MTU this host itself applies toward the target, when it refused
    /// a probe and said so (see [`PmtuOutcome::HostLimited`]).
    pub host_mtu: Option<u16>,
    pub probes_sent: u32,
    pub elapsed_ms: f64,
    pub steps: Vec<PmtuStep>,
    /// Caveats in words (budget exhausted, contradictions, unconfirmed hop).
    pub notes: Vec<String>,
}

impl PmtuResult {
    /// One line for people.
    pub fn summary(&self) -> String {
        let (t, proto) = (self.target, self.protocol);
        let pass = self.largest_passing.unwrap_or(0);
        let fail = self.smallest_failing.unwrap_or(0);
        match self.outcome {
            PmtuOutcome::FullSizePasses => format!(
                "path MTU to {t} ({proto}): {pass}-byte packets pass (the largest size tested)"
            ),
            PmtuOutcome::HostLimited => format!(
                "path MTU to {t} ({proto}): {pass}-byte packets pass, but this host refuses to send {fail} bytes toward {t}{}",
                match self.host_mtu {
                    Some(m) => format!(
                        " (route MTU {m}: its interface's, or cached from an earlier fragmentation-needed)"
                    ),
                    None => " (its interface MTU)".into(),
                }
            ),
            PmtuOutcome::Reported => format!(
                "path MTU to {t} ({proto}) is {pass}: {} (hop {}) reports fragmentation-needed with MTU {}, and {pass}-byte packets pass",
                self.reported_by
                    .map_or("a router".into(), |a| a.to_string()),
                self.reported_hop.map_or("?".into(), |h| h.to_string()),
                self.reported_mtu.unwrap_or(pass)
            ),
            PmtuOutcome::Blackhole => format!(
                "path-MTU black hole toward {t} ({proto}): {fail}-byte packets vanish without ICMP fragmentation-needed while {pass}-byte packets pass{}",
                match (self.blackhole_after_hop, self.blackhole_after_address) {
                    (Some(0), _) => " — on this host's first link (before hop 1)".to_string(),
                    (Some(h), Some(a)) => format!(
                        " — on the link after hop {h} ({a}){}",
                        if self.blackhole_confirmed {
                            ""
                        } else {
                            " or further on"
                        }
                    ),
                    (Some(h), None) => format!(" — after hop {h}"),
                    (None, _) => String::new(),
                }
            ),
            PmtuOutcome::NoAnswer => format!(
                "no {proto} probe to {t} was answered at any size ({} down to {} bytes): the target is down or filters {proto}; this says nothing about the path MTU",
                self.high,
                self.smallest_failing.unwrap_or(FLOOR_SIZE)
            ),
            PmtuOutcome::Inconclusive => format!(
                "path MTU to {t} ({proto}) inconclusive: largest passing {}, smallest failing {}{}",
                self.largest_passing
                    .map_or("none".into(), |s| s.to_string()),
                self.smallest_failing
                    .map_or("none".into(), |s| s.to_string()),
                self.notes
                    .first()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ),
        }
    }
}

/// Runs the search (and the localisation of a black hole) on `net`.
/// Errors: a bad config, or a network that fails (other than refusing a
/// too-large packet, which fails that size).
pub fn discover<N: Network, C: Clock>(
    net: &mut N,
    clock: &C,
    cfg: &PmtuConfig,
) -> Result<PmtuResult, TraceError> {
    cfg.validate()?;
    let mut run = Run::new(net, clock, cfg);
    let mut search = SizeSearch::new(cfg.low, cfg.high, FLOOR_SIZE.min(cfg.low));
    let mut reasons: Vec<(u16, FailReason)> = Vec::new();
    let mut budget_out = false;
    while let Some(size) = search.next() {
        match run.slot(size, SEARCH_TTL, cfg.tries_per_size)? {
            Slot::Budget => {
                budget_out = true;
                break;
            }
            Slot::Answer(Answer::Passed) => search.passed(size),
            Slot::Answer(Answer::FragNeeded { mtu, from, .. }) => {
                search.failed(size, mtu);
                reasons.push((size, FailReason::FragNeeded { mtu, from }));
            }
            Slot::Answer(Answer::Unreachable { code, from }) => {
                search.failed(size, None);
                reasons.push((size, FailReason::Unreachable { code, from }));
            }
            // Time exceeded at TTL 64: a loop; as good as lost.
            Slot::Answer(Answer::TimeExceeded { .. }) | Slot::Silent => {
                search.failed(size, None);
                reasons.push((size, FailReason::Silent));
            }
            Slot::Local => {
                search.failed(size, None);
                reasons.push((size, FailReason::Local));
            }
        }
    }
    let passing = search.largest_passing();
    let failing = search.smallest_failing();
    // Why the smallest failing size failed; a reported MTU's bound (m + 1)
    // fails for the reason of the size that reported it.
    let failing_reason = failing.and_then(|f| {
        reasons
            .iter()
            .filter(|(s, _)| *s >= f)
            .min_by_key(|(s, _)| *s)
            .map(|(_, r)| *r)
    });
    let mut outcome = match (passing, failing_reason) {
        _ if search.inconsistent() => {
            run.notes.push(
                "a size passed that had failed before (loss bursts or a route change): run again"
                    .into(),
            );
            PmtuOutcome::Inconclusive
        }
        _ if budget_out => {
            run.notes.push(format!(
                "stopped after {} probes / {:.0} s (the budget) before the search ended",
                run.probes_sent,
                run.elapsed().as_secs_f64()
            ));
            PmtuOutcome::Inconclusive
        }
        (None, Some(FailReason::Unreachable { code, from })) => {
            run.notes.push(format!(
                "{from} answers every size with ICMP unreachable (code {code})"
            ));
            PmtuOutcome::NoAnswer
        }
        (None, _) => PmtuOutcome::NoAnswer,
        (Some(_), None) => PmtuOutcome::FullSizePasses,
        (Some(_), Some(FailReason::Local)) => {
            run.notes.push(format!(
                "this host refuses to send {} bytes toward {}: {}; the path was tested up to that",
                failing.unwrap_or(0),
                cfg.target,
                match run.host_mtu {
                    Some(m) => format!(
                        "its route MTU is {m} (the interface's, or a path MTU cached from an earlier fragmentation-needed: `ip route get {}` shows it)",
                        cfg.target
                    ),
                    None => "its interface MTU is smaller".into(),
                }
            ));
            PmtuOutcome::HostLimited
        }
        (Some(_), Some(FailReason::FragNeeded { .. })) => PmtuOutcome::Reported,
        (Some(pass), Some(FailReason::Silent)) => {
            // Verification: the search probes a size until its first answer
            // and gives it up after its third silence, so on a lossy path it
            // can home in on a boundary that is not there. Unbiased samples
            // of the smallest failing size, the largest silent one and the
            // largest passing one, one try each, interleaved, then the one
            // black-hole rule over every probe at the search TTL (as the
            // capture's analysis counts them): a larger size answered even
            // once is loss, not a black hole.
            let fail = failing.unwrap_or(cfg.high);
            // The largest size that failed in silence (a larger one may be
            // bounded by an honest fragmentation-needed from an earlier hop).
            let largest_silent = reasons
                .iter()
                .filter(|(_, r)| matches!(r, FailReason::Silent))
                .map(|(size, _)| *size)
                .max()
                .unwrap_or(fail);
            let mut verify = vec![fail, largest_silent, pass];
            verify.dedup();
            let mut frag_needed = false;
            'verify: for _ in 0..VERIFY_ROUNDS {
                for &size in &verify {
                    match run.slot(size, SEARCH_TTL, 1)? {
                        Slot::Budget => break 'verify,
                        Slot::Answer(Answer::FragNeeded { .. }) => frag_needed = true,
                        _ => {}
                    }
                }
            }
            let counts = size_counts(&run.steps);
            if frag_needed {
                run.notes.push(format!(
                    "a router reported fragmentation-needed for {fail} bytes while verifying (its ICMP is rate-limited, not blocked)"
                ));
                PmtuOutcome::Reported
            } else if black_hole(&counts).is_some() {
                PmtuOutcome::Blackhole
            } else {
                let answered: Vec<String> = counts
                    .iter()
                    .filter(|c| c.size > u32::from(pass) && c.answered > 0)
                    .map(|c| format!("{} bytes {} of {}", c.size, c.answered, c.sent))
                    .collect();
                run.notes.push(if answered.is_empty() {
                    format!(
                        "the passing sizes lose probes too: at their loss rate the silence of the larger ones is likely loss, not a black hole ({})",
                        counts
                            .iter()
                            .map(|c| format!("{} bytes {} of {} answered", c.size, c.answered, c.sent))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                } else {
                    format!(
                        "larger sizes were answered when probed again ({}): the silence was loss, not a black hole",
                        answered.join(", ")
                    )
                });
                PmtuOutcome::Inconclusive
            }
        }
        (Some(_), Some(FailReason::Unreachable { code, from })) => {
            run.notes.push(format!(
                "{from} answers {}-byte probes with ICMP unreachable (code {code}) but not smaller ones: a size-dependent filter, not an MTU report",
                failing.unwrap_or(0)
            ));
            PmtuOutcome::Inconclusive
        }
    };
    let mut localisation: Option<Localisation> = None;
    if let (PmtuOutcome::Blackhole, Some(big), Some(small)) = (outcome, failing, passing) {
        let max_ttl = cfg.target_hop.unwrap_or(DEFAULT_MAX_TTL);
        let mut probes: Vec<TtlProbe> = Vec::new();
        let mut ran_out = false;
        while search::keep_localising(&probes, max_ttl) {
            let ttl = probes.last().map_or(1, |p| p.ttl + 1);
            let Some(big_answer) = run.ttl_slot(big, ttl)? else {
                ran_out = true;
                break;
            };
            let small_answer = match big_answer {
                TtlAnswer::Nothing => match run.ttl_slot(small, ttl)? {
                    Some(a) => Some(a),
                    None => {
                        ran_out = true;
                        None
                    }
                },
                _ => None,
            };
            probes.push(TtlProbe {
                ttl,
                big: big_answer,
                small: small_answer,
            });
            if ran_out {
                break;
            }
        }
        if ran_out {
            run.notes
                .push("the probe/time budget ran out while localising the black hole".into());
        }
        if probes
            .iter()
            .any(|p| matches!(p.big, TtlAnswer::FragNeeded(_)))
        {
            run.notes.push(format!(
                "a router reported fragmentation-needed for {big} bytes while localising (its ICMP is rate-limited, not blocked)"
            ));
            outcome = PmtuOutcome::Reported;
        } else {
            localisation = search::localise(&probes);
            match localisation {
                None => {
                    run.notes.push(format!(
                        "a {big}-byte probe reached the target while localising: intermittent"
                    ));
                    outcome = PmtuOutcome::Inconclusive;
                }
                Some(l) if !l.confirmed => run.notes.push(format!(
                    "hop {} did not answer TTL-limited probes of either size: the constriction is after hop {} at the earliest",
                    l.after_hop + 1,
                    l.after_hop
                )),
                Some(_) => {}
            }
        }
    }
    let report = run.last_ptb;
    let blackhole = outcome == PmtuOutcome::Blackhole;
    Ok(PmtuResult {
        protocol: cfg.protocol,
        target: cfg.target,
        source: cfg.source,
        outcome,
        low: cfg.low,
        high: cfg.high,
        largest_passing: passing,
        smallest_failing: failing,
        reported_mtu: report.and_then(|r| r.mtu),
        reported_by: report.map(|r| r.from),
        reported_hop: report.map(|r| HopEstimate::from_ttl(r.ttl).hop),
        reported_ttl: report.map(|r| r.ttl),
        blackhole,
        blackhole_after_hop: localisation.filter(|_| blackhole).map(|l| l.after_hop),
        blackhole_after_address: localisation
            .filter(|_| blackhole)
            .and_then(|l| l.after_address),
        blackhole_confirmed: blackhole && localisation.is_some_and(|l| l.confirmed),
        host_mtu: run.host_mtu,
        probes_sent: run.probes_sent,
        elapsed_ms: run.elapsed().as_secs_f64() * 1e3,
        steps: run.steps,
        notes: run.notes,
    })
}

/// What answered a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// The target answered (echo reply, SYN-ACK, RST, or an ICMP error
    /// from the target's own address): the probe arrived.
    Passed,
    FragNeeded {
        mtu: Option<u16>,
        from: IpAddr,
        ttl: u8,
    },
    TimeExceeded {
        from: IpAddr,
    },
    Unreachable {
        code: u8,
        from: IpAddr,
    },
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Passed => f.write_str("passed"),
            Answer::FragNeeded {
                mtu: Some(m), from, ..
            } => write!(f, "frag-needed {m} from {from}"),
            Answer::FragNeeded {
                mtu: None, from, ..
            } => {
                write!(f, "frag-needed (no MTU) from {from}")
            }
            Answer::TimeExceeded { from } => write!(f, "time-exceeded from {from}"),
            Answer::Unreachable { code, from } => write!(f, "unreachable code {code} from {from}"),
        }
    }
}

/// What all the tries of one (size, TTL) drew.
enum Slot {
    Answer(Answer),
    Silent,
    /// This host refused to send the size.
    Local,
    /// The probe or time budget is spent.
    Budget,
}

/// A probe that was sent.
#[derive(Clone, Copy, Debug)]
struct Sent {
    seq: u16,
    size: u16,
    ttl: u8,
    sent_at: Instant,
    /// TCP payload bytes (a RST to a SYN with data acknowledges them too).
    payload_len: u32,
    answered: bool,
}

#[derive(Clone, Copy, Debug)]
struct PtbReport {
    mtu: Option<u16>,
    from: IpAddr,
    ttl: u8,
}

/// The I/O side: sends probes one at a time and waits for their answers.
struct Run<'a, N, C> {
    net: &'a mut N,
    clock: &'a C,
    cfg: &'a PmtuConfig,
    matcher: Matcher,
    started: Instant,
    sent: Vec<Sent>,
    probes_sent: u32,
    steps: Vec<PmtuStep>,
    notes: Vec<String>,
    last_ptb: Option<PtbReport>,
    next_seq: u16,
    /// MTU in the fragmentation-needed this host sent itself for a probe
    /// it refused (its cached path MTU or interface MTU).
    host_mtu: Option<u16>,
}

impl<'a, N: Network, C: Clock> Run<'a, N, C> {
    fn new(net: &'a mut N, clock: &'a C, cfg: &'a PmtuConfig) -> Run<'a, N, C> {
        Run {
            net,
            clock,
            cfg,
            matcher: Matcher {
                source: cfg.source,
                target: cfg.target,
                protocol: cfg.protocol.trace_protocol(),
                ident: cfg.ident,
                src_port: cfg.src_port,
            },
            started: clock.now(),
            sent: Vec::new(),
            probes_sent: 0,
            steps: Vec::new(),
            notes: Vec::new(),
            last_ptb: None,
            next_seq: 0,
            host_mtu: None,
        }
    }

    fn elapsed(&self) -> Duration {
        self.clock.now() - self.started
    }

    fn budget_left(&self) -> bool {
        self.probes_sent < self.cfg.max_probes && self.elapsed() < self.cfg.max_duration
    }

    /// A localisation probe: `None` when the budget is spent.
    fn ttl_slot(&mut self, size: u16, ttl: u8) -> Result<Option<TtlAnswer>, TraceError> {
        Ok(match self.slot(size, ttl, self.cfg.localise_tries)? {
            Slot::Budget => None,
            Slot::Answer(Answer::Passed) => Some(TtlAnswer::Target),
            Slot::Answer(Answer::TimeExceeded { from }) => Some(TtlAnswer::TimeExceeded(from)),
            Slot::Answer(Answer::FragNeeded { from, .. }) => Some(TtlAnswer::FragNeeded(from)),
            Slot::Answer(Answer::Unreachable { .. }) | Slot::Silent | Slot::Local => {
                Some(TtlAnswer::Nothing)
            }
        })
    }

    /// Up to `tries` probes of `size` at `ttl`, each waiting `timeout`,
    /// until one is answered.
    fn slot(&mut self, size: u16, ttl: u8, tries: u8) -> Result<Slot, TraceError> {
        for _ in 0..tries {
            if !self.budget_left() {
                return Ok(Slot::Budget);
            }
            let Some(seq) = self.send(size, ttl)? else {
                return Ok(Slot::Local);
            };
            let deadline = self.clock.now() + self.cfg.timeout;
            if let Some(answer) = self.wait_for(seq, deadline)? {
                if let Answer::FragNeeded { mtu, from, ttl } = answer {
                    let known = self.last_ptb.is_some_and(|p| p.mtu.is_some());
                    if mtu.is_some() || !known {
                        self.last_ptb = Some(PtbReport { mtu, from, ttl });
                    }
                }
                return Ok(Slot::Answer(answer));
            }
        }
        Ok(Slot::Silent)
    }

    /// Sends one probe; `None` when this host refuses the size.
    fn send(&mut self, size: u16, ttl: u8) -> Result<Option<u16>, TraceError> {
        let cfg = self.cfg;
        // Never 0 (the kernel rewrites an IPv4 ID of 0), and a new one even
        // for a probe the host refused: its local ICMP error names it.
        self.next_seq = self.next_seq % 0xfffe + 1;
        let seq = self.next_seq;
        let kind = match cfg.protocol {
            PmtuProtocol::Icmp => ProbeKind::IcmpEcho,
            PmtuProtocol::Tcp { port } => ProbeKind::TcpSyn {
                src_port: cfg.src_port,
                dst_port: port,
                mss: if cfg.target.is_ipv6() { 1440 } else { 1460 },
            },
        };
        let emitted = emit_sized(
            &ProbeSpec {
                src: cfg.source,
                dst: cfg.target,
                ttl,
                ident: cfg.ident,
                seq,
                kind,
            },
            size,
        )?;
        let payload_len = match kind {
            ProbeKind::TcpSyn { .. } => (emitted.bytes.len() - emitted.ip_header_len - 24) as u32,
            _ => 0,
        };
        let now = self.clock.now();
        let request = ProbeRequest {
            probe: Probe {
                seq,
                round: 0,
                ttl,
                protocol: cfg.protocol.trace_protocol(),
                sent_at: now,
                frame: None,
            },
            dst: cfg.target,
            ttl,
            bytes: emitted.bytes,
            ip_header_len: emitted.ip_header_len,
        };
        match self.net.send(&request) {
            Ok(()) => {}
            Err(TraceError::Io { source, .. }) if source.raw_os_error() == Some(EMSGSIZE) => {
                self.steps.push(PmtuStep {
                    size,
                    ttl,
                    outcome: "not sent: larger than this host's route MTU (EMSGSIZE)".into(),
                    rtt_ms: None,
                });
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        self.probes_sent += 1;
        self.sent.push(Sent {
            seq,
            size,
            ttl,
            sent_at: now,
            payload_len,
            answered: false,
        });
        Ok(Some(seq))
    }

    /// Receives until the answer to probe `seq` (or to an earlier try of
    /// the same size and TTL) or `deadline`; answers to other earlier
    /// probes are recorded as late steps and change nothing.
    fn wait_for(&mut self, seq: u16, deadline: Instant) -> Result<Option<Answer>, TraceError> {
        let mut stalls = 0;
        loop {
            let Some(packet) = self.net.recv(deadline)? else {
                if self.clock.now() >= deadline {
                    self.record_silent(seq);
                    return Ok(None);
                }
                stalls += 1;
                if stalls >= MAX_STALLS {
                    return Err(TraceError::Stalled { times: stalls });
                }
                continue;
            };
            stalls = 0;
            let Some((of, answer)) = self.classify(&packet.bytes) else {
                continue;
            };
            // Linux answers a DF packet larger than the route's MTU (a path
            // MTU cached from an earlier fragmentation-needed, or the
            // interface's) with EMSGSIZE *and* a fragmentation-needed from
            // this host to itself: not a router's report.
            if let Answer::FragNeeded { mtu, from, .. } = answer
                && from == self.cfg.source
            {
                self.host_mtu = mtu.or(self.host_mtu);
                continue;
            }
            let Some(i) = self.sent.iter().rposition(|s| s.seq == of) else {
                continue;
            };
            let s = self.sent[i];
            if s.answered {
                continue; // duplicate
            }
            self.sent[i].answered = true;
            let rtt = packet.received_at - s.sent_at;
            // An earlier try of the same size and TTL answering now still
            // counts for this slot (it is within the slot's total wait).
            let current = self.sent.iter().rev().find(|p| p.seq == seq);
            let late = !current.is_some_and(|c| c.size == s.size && c.ttl == s.ttl);
            self.steps.push(PmtuStep {
                size: s.size,
                ttl: s.ttl,
                outcome: if late {
                    format!("late {answer}")
                } else {
                    answer.to_string()
                },
                rtt_ms: Some(rtt.as_secs_f64() * 1e3),
            });
            if !late {
                return Ok(Some(answer));
            }
        }
    }

    fn record_silent(&mut self, seq: u16) {
        if let Some(s) = self.sent.iter().rev().find(|s| s.seq == seq) {
            self.steps.push(PmtuStep {
                size: s.size,
                ttl: s.ttl,
                outcome: "silent".into(),
                rtt_ms: None,
            });
        }
    }

    /// Which probe a received packet answers, and how.
    fn classify(&self, raw: &[u8]) -> Option<(u16, Answer)> {
        let packet = decode_ip(0, 0, Direction::In, raw).ok()?.packet;
        if let (Transport::Tcp(t), PmtuProtocol::Tcp { port }) =
            (&packet.transport, self.cfg.protocol)
        {
            // The tracer's matcher reads the probe from ack − 1; a RST to a
            // SYN with data acknowledges the data too (RFC 9293 §3.10.7.1).
            if packet.src != self.cfg.target
                || packet.dst != self.cfg.source
                || t.src_port != port
                || t.dst_port != self.cfg.src_port
                || !t.flags.ack()
            {
                return None;
            }
            let probe = self.sent.iter().rev().find(|s| {
                let isn = tcp_seq(self.cfg.ident, s.seq).wrapping_add(1);
                t.ack == isn || t.ack == isn.wrapping_add(s.payload_len)
            })?;
            return Some((probe.seq, Answer::Passed));
        }
        let (ProbeRef::Seq(seq), kind) = self.matcher.classify(&packet, raw)? else {
            return None;
        };
        let from = packet.src;
        let answer = match kind {
            ReplyKind::PacketTooBig { mtu } => Answer::FragNeeded {
                // 0: a router older than RFC 1191 that does not say.
                mtu: u16::try_from(mtu).ok().filter(|&m| m >= 68),
                from,
                ttl: packet.ttl,
            },
            ReplyKind::TimeExceeded => Answer::TimeExceeded { from },
            ReplyKind::DestUnreachable { code, .. } if from != self.cfg.target => {
                Answer::Unreachable { code, from }
            }
            _ => Answer::Passed,
        };
        Some((seq, answer))
    }
}
