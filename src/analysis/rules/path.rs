//! Rules for traces: what the per-hop numbers mean. The tracer
//! ([`crate::trace`]) only measures; these rules judge, for a live `trace`,
//! for `check`'s traces and for pathproof's traceroutes found in a capture.
//!
//! [`interpret`] takes the trace under study and, optionally, a control
//! trace with another protocol to the same target (usually ICMP beside a
//! TCP/443 trace). Rules, after Steenbergen (NANOG 47) and the project's
//! detection notes (§5). "End hop" = the target's hop, or the last hop that
//! answered when the target did not. Silent hops (`???`) carry no loss
//! information and are skipped by the loss rules.
//!
//! - **Real loss** (`path-loss`): the end hop lost at least 2 probes (one
//!   lost probe is never a verdict). The loss starts at the lowest hop k
//!   such that every answering hop from k to the end lost probes and could
//!   carry the end hop's loss: their 95% Wilson intervals overlap (the upper
//!   bound of hop k's ≥ the lower bound of the end hop's). The walk back
//!   stops at a hop that lost nothing or significantly less, or at a hop
//!   that lost significantly *more* (the lower bound of its interval above
//!   the upper bound of the end hop's: rate limiting on top). Critical when
//!   the lower bound of the end hop's interval is ≥ 5%, warning otherwise.
//!   A target that rations its own answers looks the same: confirm by
//!   probing slower. (Comparing one hop's point estimate with the other's
//!   interval instead makes two hops behind the same lossy link disagree by
//!   chance in about one run in ten.)
//! - **ICMP rate limiting** (`icmp-rate-limit`, info): loss at hop k that
//!   does not carry on to the end hop: the router forwards fine and only
//!   rations its own ICMP answers; not forwarding loss. Hop k (answering,
//!   before the end, not in the real-loss run above) is flagged when its
//!   interval lies above the end hop's; or when its loss ratio is above the
//!   upper bound of the end hop's interval; or when it lost at least 2
//!   probes while the end hop lost none of at least 5 (Steenbergen's rule:
//!   forwarding loss at k would show at every later hop).
//! - **Loss unconfirmed** (`loss-unconfirmed`, warning): two or more
//!   answering hops in a row just before the end hop all lost probes
//!   (together significantly: the lower bound ≥ 5%), while the end hop lost
//!   at most one. Rate limiting at each of them, or real loss the end hop's
//!   few probes missed: the finding asks for more probes; those hops are
//!   not called rate-limited.
//! - **Protocol blocked** (`tcp-blocked` / `udp-blocked`, critical): the TCP
//!   (UDP) trace never reached the target while the control trace did: the
//!   probes are dropped after the last hop that answered them.
//! - **Middlebox answering for the target** (`rst-injected` for a RST,
//!   `tcp-proxy` for a SYN-ACK, `middlebox-answer` otherwise): the target's
//!   address answered at probe TTL t, and either the reply's TTL implies a
//!   hop h < t ([`HopEstimate`]: a device h hops away made the answer), or
//!   the control trace reaches the real target farther than t. Reported at
//!   hop min(h, t) with the reply TTL. Critical when the control trace
//!   confirms it or h ≤ t − 2; a one-hop shortfall alone is a warning (a
//!   shorter return path does the same).
//! - **Unreachable** (`icmp-admin-prohibited` / `icmp-unreachable`): the hop
//!   that rejects, per answering address, at the lowest TTL it answered.
//! - Information: `target-reached`, `target-not-reached`, `silent-hop`,
//!   `ecmp` (several addresses at one hop), `path-mtu` (packet too big).
//!
//! Findings are [`Finding`]s (kind, severity, hop, address, summary, evidence
//! frames numbered as in [`Trace::packets`]) plus a typed [`Detail`].

use crate::trace::{HopStats, ProbeStatus, ReplyKind, Trace, TraceProtocol};
use crate::vocab::FindingKind;
use crate::vocab::{Finding, HopEstimate, Severity};
use std::net::IpAddr;

/// The numbers behind a finding.
#[derive(Clone, Debug, PartialEq)]
pub enum Detail {
    TargetReached {
        hop: u8,
    },
    TargetNotReached {
        last_hop: Option<u8>,
    },
    SilentHop {
        hop: u8,
    },
    RateLimited {
        hop: u8,
        sent: u32,
        received: u32,
        end_hop: u8,
        end_loss_pct: f64,
    },
    RealLoss {
        from_hop: u8,
        end_hop: u8,
        /// The end hop is the target (not just the last answering hop).
        to_target: bool,
        lost: u32,
        sent: u32,
        loss_pct: f64,
        ci_low_pct: f64,
        ci_high_pct: f64,
    },
    LossUnconfirmed {
        from_hop: u8,
        to_hop: u8,
        /// Lost / sent, over hops `from_hop..=to_hop` together.
        lost: u32,
        sent: u32,
        end_hop: u8,
        end_lost: u32,
    },
    ProtocolBlocked {
        protocol: TraceProtocol,
        /// Last hop that answered the blocked protocol (`None`: not even hop 1).
        last_hop: Option<u8>,
        /// The target's hop in the control trace.
        control_target_hop: u8,
        /// The hop after `last_hop` per the control trace.
        next_hop_addr: Option<IpAddr>,
    },
    MiddleboxAnswer {
        /// Where the answer was made: min(implied hop, probe TTL).
        hop: u8,
        kind: ReplyKind,
        /// Smallest probe TTL the target's address answered.
        probe_ttl: u8,
        /// TTL of that answer (most frequent).
        reply_ttl: u8,
        /// The hop the reply TTL implies.
        implied_hop: u8,
        /// The target's hop in the control trace, when it reached it.
        control_target_hop: Option<u8>,
        /// The router at `hop` per the traces, if known.
        router: Option<IpAddr>,
    },
    Unreachable {
        hop: u8,
        code: u8,
        admin_prohibited: bool,
    },
    Ecmp {
        hop: u8,
        addrs: Vec<IpAddr>,
    },
    PathMtu {
        hop: u8,
        mtu: u32,
    },
    /// The target itself refuses the TCP port: it answers every probe that
    /// reaches it with a reset, never a SYN-ACK, from its own hop.
    Refused {
        hop: u8,
        port: u16,
    },
}

/// A finding with its numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceFinding {
    pub finding: Finding,
    pub detail: Detail,
}

impl TraceFinding {
    pub fn kind(&self) -> FindingKind {
        self.finding.kind
    }
}

fn finding(
    kind: FindingKind,
    severity: Severity,
    summary: String,
    frames: Vec<u64>,
    hop: Option<u8>,
    addr: Option<IpAddr>,
    detail: Detail,
) -> TraceFinding {
    TraceFinding {
        finding: Finding::new(kind, severity, summary, frames, None).at(hop, addr),
        detail,
    }
}

fn show(addr: Option<IpAddr>) -> String {
    addr.map_or_else(|| "???".to_string(), |a| a.to_string())
}

/// Findings of `trace`, using `control` (another protocol to the same
/// target) when given. Most severe first.
pub fn interpret(trace: &Trace, control: Option<&Trace>) -> Vec<TraceFinding> {
    let mut out = Vec::new();
    let end = trace.target_hop.or(trace.last_answering_hop());
    let middlebox = middlebox(trace, control);
    let middlebox_found = middlebox.is_some();
    out.extend(middlebox);
    if let Some(end) = end {
        let origin = loss_origin(trace, end);
        let unconfirmed = match origin {
            None => unconfirmed_loss(trace, end, &mut out),
            Some(_) => Vec::new(),
        };
        rate_limiting(trace, end, origin, &unconfirmed, &mut out);
        if let Some(origin) = origin {
            real_loss(trace, end, origin, &mut out);
        }
        for h in trace.hops.iter().filter(|h| h.hop < end && h.is_silent()) {
            out.push(finding(
                FindingKind::SilentHop,
                Severity::Info,
                format!(
                    "hop {} does not answer (???); later hops do, so it forwards the probes",
                    h.hop
                ),
                h.probe_frames.clone(),
                Some(h.hop),
                None,
                Detail::SilentHop { hop: h.hop },
            ));
        }
    }
    unreachable(trace, &mut out);
    for h in &trace.hops {
        if h.addrs.len() > 1 {
            let addrs: Vec<IpAddr> = h.addrs.iter().map(|a| a.addr).collect();
            let list: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
            out.push(finding(
                FindingKind::Ecmp,
                Severity::Info,
                format!(
                    "hop {} answered from {} addresses ({}): load balancing or a route change",
                    h.hop,
                    addrs.len(),
                    list.join(", ")
                ),
                h.reply_frames.clone(),
                Some(h.hop),
                addrs.first().copied(),
                Detail::Ecmp { hop: h.hop, addrs },
            ));
        }
        for k in &h.kinds {
            if let ReplyKind::PacketTooBig { mtu } = k.kind {
                out.push(finding(
                    FindingKind::PathMtu,
                    Severity::Info,
                    format!("hop {} reports a next-hop MTU of {mtu}", h.hop),
                    h.reply_frames.clone(),
                    Some(h.hop),
                    h.addr(),
                    Detail::PathMtu { hop: h.hop, mtu },
                ));
            }
        }
    }
    if !middlebox_found {
        out.extend(refused(trace, control));
    }
    match trace.target_hop {
        Some(t) if !middlebox_found => out.push(finding(
            FindingKind::TargetReached,
            Severity::Info,
            format!(
                "{} answers {} probes at hop {t}",
                trace.target, trace.protocol
            ),
            trace
                .hop(t)
                .map(|h| h.reply_frames.clone())
                .unwrap_or_default(),
            Some(t),
            Some(trace.target),
            Detail::TargetReached { hop: t },
        )),
        Some(_) => {}
        None => not_reached(trace, control, &mut out),
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.finding.severity));
    out
}

/// Hop k lost significantly more than the end hop: the intervals do not
/// overlap, hop k's above.
fn significantly_more(h: &HopStats, end: &HopStats) -> bool {
    h.lost() > 0 && h.loss_interval().0 > end.loss_interval().1
}

/// Where the end hop's loss starts (see the module docs), when the end hop
/// lost at least 2 probes.
fn loss_origin(trace: &Trace, end: u8) -> Option<u8> {
    let e = trace.hop(end)?;
    if e.lost() < 2 {
        return None;
    }
    let (end_low, _) = e.loss_interval();
    let mut origin = end;
    for h in trace.hops.iter().rev().filter(|h| h.hop < end) {
        if h.is_silent() {
            continue;
        }
        if h.lost() == 0 || h.loss_interval().1 < end_low || significantly_more(h, e) {
            break;
        }
        origin = h.hop;
    }
    Some(origin)
}

/// Rate-limited hops before `end` (pushed as findings); hops from the real
/// loss's `origin` on are part of that loss and are not flagged.
/// Loss at several hops in a row up to the end hop, which itself lost at
/// most one probe: rate limiting at each of those routers, or real loss the
/// end hop's few probes happened to miss (10 probes at 30 % loss lose at
/// most one in 15 % of runs). Reported as a warning asking for more probes;
/// returns the hops, which are then not called rate-limited.
fn unconfirmed_loss(trace: &Trace, end: u8, out: &mut Vec<TraceFinding>) -> Vec<u8> {
    let Some(e) = trace.hop(end) else {
        return Vec::new();
    };
    let run: Vec<&HopStats> = trace
        .hops
        .iter()
        .rev()
        .filter(|h| h.hop < end && !h.is_silent())
        .take_while(|h| h.lost() > 0)
        .collect();
    if run.len() < 2 {
        return Vec::new();
    }
    let (lost, sent) = run
        .iter()
        .fold((0, 0), |(l, s), h| (l + h.lost(), s + h.sent));
    let (low, _) = crate::trace::stats::wilson_interval(lost, sent);
    if low < 0.05 {
        return Vec::new();
    }
    let (first, last) = (run[run.len() - 1].hop, run[0].hop);
    out.push(finding(
        FindingKind::LossUnconfirmed,
        Severity::Warning,
        format!(
            "hops {first}–{last} lost {lost} of {sent} probes ({:.0}%) but hop {end} only {} of {}: \
             either each of these routers rations its ICMP answers, or there is real loss from \
             hop {first} that hop {end}'s few probes missed; probe more (e.g. -c 50) to decide",
            100.0 * f64::from(lost) / f64::from(sent),
            e.lost(),
            e.sent
        ),
        run.iter().flat_map(|h| h.probe_frames.iter().copied()).collect(),
        Some(first),
        trace.hop(first).and_then(HopStats::addr),
        Detail::LossUnconfirmed {
            from_hop: first,
            to_hop: last,
            lost,
            sent,
            end_hop: end,
            end_lost: e.lost(),
        },
    ));
    run.iter().map(|h| h.hop).collect()
}

fn rate_limiting(
    trace: &Trace,
    end: u8,
    origin: Option<u8>,
    unconfirmed: &[u8],
    out: &mut Vec<TraceFinding>,
) {
    let Some(e) = trace.hop(end) else {
        return;
    };
    let (_, end_high) = e.loss_interval();
    let run_start = origin.unwrap_or(end);
    for h in trace.hops.iter().filter(|h| h.hop < end && !h.is_silent()) {
        if h.lost() == 0 || unconfirmed.contains(&h.hop) {
            continue;
        }
        let ratio = f64::from(h.lost()) / f64::from(h.sent);
        let limited = significantly_more(h, e)
            || (h.hop < run_start
                && (ratio > end_high || (h.lost() >= 2 && e.lost() == 0 && e.sent >= 5)));
        if !limited {
            continue;
        }
        out.push(finding(
            FindingKind::IcmpRateLimit,
            Severity::Info,
            format!(
                "hop {} ({}) answered {} of {} probes ({:.0}% loss) but hop {end} lost {:.0}%: \
                 the router rations its ICMP answers; this is not forwarding loss",
                h.hop,
                show(h.addr()),
                h.received,
                h.sent,
                h.loss_pct,
                e.loss_pct
            ),
            h.probe_frames.clone(),
            Some(h.hop),
            h.addr(),
            Detail::RateLimited {
                hop: h.hop,
                sent: h.sent,
                received: h.received,
                end_hop: end,
                end_loss_pct: e.loss_pct,
            },
        ));
    }
}

fn real_loss(trace: &Trace, end: u8, origin: u8, out: &mut Vec<TraceFinding>) {
    let Some(e) = trace.hop(end) else {
        return;
    };
    let (low, high) = e.loss_interval();
    let o = trace.hop(origin);
    let to_target = trace.target_hop == Some(end);
    let severity = if low >= 0.05 {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let frames = trace
        .hops
        .iter()
        .filter(|h| h.hop >= origin)
        .flat_map(|h| h.probe_frames.iter().copied())
        .collect();
    out.push(finding(
        FindingKind::PathLoss,
        severity,
        format!(
            "{:.0}% loss from hop {origin} ({}) to {} (hop {end}): {} of {} probes lost, \
             95% interval {:.0}–{:.0}%",
            e.loss_pct,
            show(o.and_then(HopStats::addr)),
            if to_target {
                "the target"
            } else {
                "the last answering hop"
            },
            e.lost(),
            e.sent,
            low * 100.0,
            high * 100.0
        ),
        frames,
        Some(origin),
        o.and_then(HopStats::addr),
        Detail::RealLoss {
            from_hop: origin,
            end_hop: end,
            to_target,
            lost: e.lost(),
            sent: e.sent,
            loss_pct: e.loss_pct,
            ci_low_pct: low * 100.0,
            ci_high_pct: high * 100.0,
        },
    ));
}

/// The target refuses the port: a TCP trace whose target answers at its hop
/// with resets only (no SYN-ACK in any round), and no middlebox finding
/// (the resets' TTL and the control trace put their sender at the target).
/// A SYN-ACK in one round means the port is open: a reset in another round
/// then meets the half-open connection the first left (RFC 9293 §3.10.7.4).
/// Critical only when the control trace reaches the target at the same
/// hop; without that confirmation a device answering in the target's name
/// before its TTL check looks the same, so it is a warning.
fn refused(trace: &Trace, control: Option<&Trace>) -> Option<TraceFinding> {
    let TraceProtocol::Tcp { port } = trace.protocol else {
        return None;
    };
    let t = trace.target_hop?;
    let h = trace.hop(t)?;
    if !h.saw(|k| k == ReplyKind::TcpRst) || h.saw(|k| k == ReplyKind::TcpSynAck) {
        return None;
    }
    let confirmed = control
        .filter(|c| c.target == trace.target)
        .and_then(|c| c.target_hop)
        == Some(t);
    let (severity, why) = if confirmed {
        (
            Severity::Critical,
            "the control trace reaches it at the same hop".to_string(),
        )
    } else {
        (
            Severity::Warning,
            "without a control trace that reaches it at the same hop, a device answering in its name cannot be ruled out".to_string(),
        )
    };
    Some(finding(
        FindingKind::RstFromTarget,
        severity,
        format!(
            "{} refuses TCP {port}: every probe that reached it (hop {t}) was answered by a reset, never by a SYN-ACK; {why}",
            trace.target
        ),
        h.reply_frames.clone(),
        Some(t),
        Some(trace.target),
        Detail::Refused { hop: t, port },
    ))
}

/// A middlebox answering in the target's name.
fn middlebox(trace: &Trace, control: Option<&Trace>) -> Option<TraceFinding> {
    let t = trace.target_hop?;
    // The target's answers at its hop: (reply TTL, kind, frame).
    let mut answers: Vec<(u8, ReplyKind, Option<u64>)> = Vec::new();
    for round in &trace.rounds {
        if let Some(ProbeStatus::Complete(c)) = round.status(t)
            && c.reply.is_target_answer(trace.target)
        {
            answers.push((c.reply.ttl, c.reply.kind, c.reply.frame));
        }
        if let Some(ProbeStatus::Lost(l)) = round.status(t)
            && let Some(r) = l.late.filter(|r| r.is_target_answer(trace.target))
        {
            answers.push((r.ttl, r.kind, r.frame));
        }
    }
    // Most frequent reply TTL, and the kind it came with.
    let (reply_ttl, kind) = answers
        .iter()
        .map(|&(ttl, kind, _)| {
            let n = answers.iter().filter(|a| a.0 == ttl).count();
            (n, ttl, kind)
        })
        .max_by_key(|&(n, ttl, _)| (n, std::cmp::Reverse(ttl)))
        .map(|(_, ttl, kind)| (ttl, kind))?;
    let estimate = HopEstimate::from_ttl(reply_ttl);
    let implied = estimate.hop;
    let control_hop = control
        .filter(|c| c.target == trace.target)
        .and_then(|c| c.target_hop);
    let short_ttl = implied < t;
    let beyond = control_hop.is_some_and(|n| t < n);
    if !short_ttl && !beyond {
        return None;
    }
    let hop = implied.min(t);
    let router = control
        .and_then(|c| c.hop(hop))
        .and_then(HopStats::addr)
        .or_else(|| {
            trace
                .hop(hop)
                .and_then(HopStats::addr)
                .filter(|&a| a != trace.target)
        });
    let severity = if beyond || t - implied.min(t) >= 2 {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let (name, what) = match kind {
        ReplyKind::TcpRst => (FindingKind::RstInjected, "a TCP RST"),
        ReplyKind::TcpSynAck => (FindingKind::TcpProxy, "a SYN-ACK"),
        _ => (FindingKind::MiddleboxAnswer, "an answer"),
    };
    let mut why = Vec::new();
    if short_ttl {
        why.push(format!(
            "its TTL {reply_ttl} means it was sent {implied} hop(s) away (initial TTL {}{})",
            estimate.initial_ttl,
            if estimate.ambiguous {
                ", ambiguous"
            } else {
                ""
            }
        ));
    }
    if let Some(n) = control_hop.filter(|_| beyond) {
        why.push(format!(
            "the control trace reaches {} at hop {n}",
            trace.target
        ));
    }
    let summary = format!(
        "{what} in the name of {} came back at probe TTL {t}: {}; it was made at hop {hop}{}, not by the target",
        trace.target,
        why.join(", and "),
        router.map(|a| format!(" ({a})")).unwrap_or_default()
    );
    let frames = answers.iter().filter_map(|a| a.2).collect();
    Some(finding(
        name,
        severity,
        summary,
        frames,
        Some(hop),
        Some(trace.target),
        Detail::MiddleboxAnswer {
            hop,
            kind,
            probe_ttl: t,
            reply_ttl,
            implied_hop: implied,
            control_target_hop: control_hop,
            router,
        },
    ))
}

fn unreachable(trace: &Trace, out: &mut Vec<TraceFinding>) {
    let mut seen: Vec<IpAddr> = Vec::new();
    for round in &trace.rounds {
        for status in &round.probes {
            let (Some(probe), Some(reply)) = (status.probe(), status.reply()) else {
                continue;
            };
            let ReplyKind::DestUnreachable {
                code,
                admin_prohibited,
            } = reply.kind
            else {
                continue;
            };
            if seen.contains(&reply.from) {
                continue;
            }
            seen.push(reply.from);
            // The router's hop: where its own time-exceeded put it, else the
            // lowest probe TTL it rejected at (a router rejects probes that
            // would have gone past it) or the hop its reply TTL implies.
            let lowest_ttl = trace
                .rounds
                .iter()
                .flat_map(|r| r.probes.iter())
                .filter_map(|s| Some((s.probe()?.ttl, s.reply()?)))
                .filter(|(_, r)| r.from == reply.from && r.kind == reply.kind)
                .map(|(ttl, _)| ttl)
                .min()
                .unwrap_or(probe.ttl);
            let hop = trace
                .hops
                .iter()
                .find(|h| {
                    h.addrs.iter().any(|a| a.addr == reply.from)
                        && h.saw(|k| k == ReplyKind::TimeExceeded)
                })
                .map_or_else(|| lowest_ttl.min(reply.hop_estimate().hop), |h| h.hop);
            let frames = trace
                .rounds
                .iter()
                .flat_map(|r| r.probes.iter())
                .filter_map(|s| s.reply())
                .filter(|r| r.from == reply.from && r.kind == reply.kind)
                .filter_map(|r| r.frame)
                .collect();
            let (name, severity) = match (admin_prohibited, trace.reached()) {
                (true, false) => (FindingKind::IcmpAdminProhibited, Severity::Critical),
                (true, true) => (FindingKind::IcmpAdminProhibited, Severity::Warning),
                (false, false) => (FindingKind::IcmpUnreachable, Severity::Critical),
                (false, true) => (FindingKind::IcmpUnreachable, Severity::Warning),
            };
            out.push(finding(
                name,
                severity,
                format!(
                    "{} at hop {hop} rejects {} probes: ICMP unreachable code {code}{}",
                    reply.from,
                    trace.protocol,
                    if admin_prohibited {
                        " (administratively prohibited)"
                    } else {
                        ""
                    }
                ),
                frames,
                Some(hop),
                Some(reply.from),
                Detail::Unreachable {
                    hop,
                    code,
                    admin_prohibited,
                },
            ));
        }
    }
}

fn not_reached(trace: &Trace, control: Option<&Trace>, out: &mut Vec<TraceFinding>) {
    // The last router that passed the probes on far enough to expire them
    // (a router that rejects them answers at TTLs past itself).
    let last = trace
        .hops
        .iter()
        .rev()
        .find(|h| h.saw(|k| k == ReplyKind::TimeExceeded))
        .or_else(|| trace.hops.iter().rev().find(|h| !h.is_silent()))
        .map(|h| h.hop);
    let last_addr = last.and_then(|h| trace.hop(h)).and_then(HopStats::addr);
    let control = control.filter(|c| c.target == trace.target && c.protocol != trace.protocol);
    let blocked_name = match trace.protocol {
        TraceProtocol::Tcp { .. } => Some(FindingKind::TcpBlocked),
        TraceProtocol::Udp { .. } => Some(FindingKind::UdpBlocked),
        TraceProtocol::Icmp => None,
    };
    if let (Some(name), Some(c), Some(n)) =
        (blocked_name, control, control.and_then(|c| c.target_hop))
    {
        let next = last.map_or(1, |l| l.saturating_add(1));
        let next_hop_addr = c.hop(next).and_then(HopStats::addr);
        let after = match last {
            Some(l) => format!("after hop {l} ({})", show(last_addr)),
            None => "before hop 1 answers".to_string(),
        };
        let frames = last
            .and_then(|l| trace.hop(l))
            .map(|h| h.reply_frames.clone())
            .unwrap_or_default();
        out.push(finding(
            name,
            Severity::Critical,
            format!(
                "{} probes get no answer {after} while {} probes reach {} at hop {n}: \
                 {} is dropped at hop {} or at the next hop ({})",
                trace.protocol,
                c.protocol,
                trace.target,
                trace.protocol,
                last.map_or_else(|| "1".to_string(), |l| l.to_string()),
                show(next_hop_addr)
            ),
            frames,
            last,
            last_addr,
            Detail::ProtocolBlocked {
                protocol: trace.protocol,
                last_hop: last,
                control_target_hop: n,
                next_hop_addr,
            },
        ));
        return;
    }
    out.push(finding(
        FindingKind::TargetNotReached,
        Severity::Warning,
        format!(
            "{} never answered {} probes; the last hop that answered is {}",
            trace.target,
            trace.protocol,
            last.map_or_else(
                || "none".to_string(),
                |l| format!("{l} ({})", show(last_addr))
            )
        ),
        Vec::new(),
        last,
        last_addr,
        Detail::TargetNotReached { last_hop: last },
    ));
}
