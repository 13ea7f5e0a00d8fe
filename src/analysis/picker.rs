//! The one picker: candidate verdicts from every rule, of every command
//! (`pcap`, `check`, `trace`), become one verdict.
//!
//! Order of decision (README, "How the verdict is chosen"):
//!
//! 1. **Host facts** outrank the network: a resolv.conf the service user
//!    cannot read (the connector cannot resolve its broker at all), then a
//!    local clock off by more than the threshold (it rejects genuine
//!    certificates; detection.md §6). A capture's own clock-skew verdict
//!    (a certificate not yet valid, with frames) carries the offset along.
//! 2. **Correlation**: a cause explains its effect, and the verdict names
//!    the cause with the effect kept as support (see [`explain`]).
//! 3. **Rank**: the most specific proof of a failure first
//!    ([`crate::vocab::RANKING`]); among equals, one that places the hop,
//!    then the first candidate given (callers list their strongest
//!    evidence first).
//! 4. Nothing at all: inconclusive, with what is missing.

use crate::vocab::{Confidence, Verdict, VerdictClass};
use std::net::IpAddr;

/// A verdict one rule proposes, with what the picker needs to weigh it.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub verdict: Verdict,
    pub basis: Basis,
    /// The server (broker address) the candidate is about, when one.
    pub server: Option<IpAddr>,
}

/// What a candidate rests on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// The service user cannot read resolv.conf.
    ResolvUnreadable,
    /// The SNTP offset is above the threshold.
    ClockOffset,
    /// A TLS handshake stalled after the ClientHello: no answer at all (no
    /// reset, no FIN, no alert). Something else may explain it.
    TlsSilence,
    /// A resolver answered a broker name with an address no broker has
    /// (the candidate is about that address): what the connections to that
    /// address show is explained by it.
    DnsHijack,
    /// Packets or probe results of any other kind.
    Evidence,
}

impl Candidate {
    pub fn new(verdict: Verdict) -> Candidate {
        Candidate {
            verdict,
            basis: Basis::Evidence,
            server: None,
        }
    }

    pub fn basis(mut self, basis: Basis) -> Candidate {
        self.basis = basis;
        self
    }

    pub fn about(mut self, server: Option<IpAddr>) -> Candidate {
        self.server = server;
        self
    }
}

/// What the verdict says when no rule proposed anything.
pub struct NoEvidence {
    pub summary: String,
    pub next_steps: Vec<String>,
}

/// The verdict.
pub fn pick(mut candidates: Vec<Candidate>, none: impl FnOnce() -> NoEvidence) -> Verdict {
    if let Some(v) = host_fact(&candidates) {
        return v;
    }
    explain(&mut candidates);
    // At equal rank a candidate that places the hop beats one that cannot
    // (a capture alone cannot place a black hole; the check's TTL-limited
    // probes can); otherwise the first given wins.
    match candidates
        .into_iter()
        .min_by_key(|c| (c.verdict.class.rank(), c.verdict.hop.is_none()))
    {
        Some(c) => c.verdict,
        None => {
            let n = none();
            Verdict {
                class: VerdictClass::Inconclusive,
                hop: None,
                address: None,
                confidence: Confidence::Low,
                summary: n.summary,
                next_steps: n.next_steps,
            }
        }
    }
}

fn host_fact(candidates: &[Candidate]) -> Option<Verdict> {
    if let Some(c) = candidates
        .iter()
        .find(|c| c.basis == Basis::ResolvUnreadable)
    {
        return Some(c.verdict.clone());
    }
    let clock = candidates.iter().find(|c| c.basis == Basis::ClockOffset)?;
    // When the packets prove it too (a certificate not yet valid), their
    // verdict carries the frames; the offset is added to its summary.
    if let Some(packets) = candidates
        .iter()
        .find(|c| c.basis != Basis::ClockOffset && c.verdict.class == VerdictClass::ClockSkew)
    {
        let mut v = packets.verdict.clone();
        v.summary = format!("{} {}", v.summary, clock.verdict.summary);
        return Some(v);
    }
    Some(clock.verdict.clone())
}

/// Correlation: a cause explains another candidate, which then leaves the
/// race and is named in the cause's summary as support.
///
/// - A **path-MTU black hole** explains a TLS handshake that stalls in
///   silence after the ClientHello: the server's certificate flight is the
///   first large packet of the connection, and it is what vanishes. (A
///   reset, a FIN or an alert after the ClientHello is an answer, which a
///   black hole does not explain.)
///
/// - **Real loss** on the path explains a TLS stall in silence too (when no
///   black hole does): silence is what loss looks like.
/// - **Real loss** from a hop at or before a black hole's link explains the
///   black hole: its evidence is silence, and on that path silence is what
///   loss looks like (the lab's 30 % loss at r2 made the path-MTU search's
///   large probes vanish often enough to pass for one).
///
/// - A **DNS hijack** (a broker name answered with a private, loopback...
///   address) explains every other candidate about that address: the
///   connector was sent there by the resolver, so whatever its
///   connections meet (silence, resets, a foreign certificate) is not the
///   path to the cloud failing.
///
/// An injected reset and a genuine refusal of the same server are not
/// merged: each reset is judged on its own packets, so both may be true
/// (rank puts the injection first). A refusal seen only by connect(), with
/// no reset to judge, is evidence, not a candidate.
fn explain(candidates: &mut Vec<Candidate>) {
    let mut notes: Vec<(usize, String)> = Vec::new();
    let mut explained: Vec<usize> = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        let cause = |class: VerdictClass| {
            candidates.iter().position(|k| {
                k.verdict.class == class
                    && (k.server.is_none() || c.server.is_none() || k.server == c.server)
            })
        };
        let hijack = c
            .server
            .filter(|_| c.basis != Basis::DnsHijack)
            .and_then(|server| {
                candidates
                    .iter()
                    .position(|k| k.basis == Basis::DnsHijack && k.server == Some(server))
            });
        let by = match (c.verdict.class, c.basis) {
            _ if hijack.is_some() => hijack.map(|k| {
                (
                    k,
                    format!(
                        "It explains what the connections to that address show: {}",
                        c.verdict.summary
                    ),
                )
            }),
            (VerdictClass::TlsBlocked, Basis::TlsSilence) => cause(VerdictClass::PmtuBlackhole)
                .map(|k| {
                    (
                        k,
                        format!(
                            "It explains the TLS handshake that stalls after the ClientHello (the server's certificate flight does not fit through): {}",
                            c.verdict.summary
                        ),
                    )
                })
                .or_else(|| {
                    cause(VerdictClass::PathLoss).map(|k| {
                        (
                            k,
                            format!(
                                "It explains the TLS handshake that stalls in silence after the ClientHello (its packets were lost): {}",
                                c.verdict.summary
                            ),
                        )
                    })
                }),
            // Silence-based black-hole evidence on a path that loses
            // packets from the black hole's link or before it: the large
            // probes' silence may be that loss.
            (VerdictClass::PmtuBlackhole, _) => candidates
                .iter()
                .position(|k| {
                    k.verdict.class == VerdictClass::PathLoss
                        && (k.server.is_none() || c.server.is_none() || k.server == c.server)
                        && k.verdict.hop.unwrap_or(0) <= c.verdict.hop.map_or(u8::MAX, |h| h.saturating_add(1))
                })
                .map(|k| {
                    (
                        k,
                        format!(
                            "The path-MTU probes' silence is not taken for a black hole on a path this lossy (a black hole after the lossy link cannot be told from the loss): {}",
                            c.verdict.summary
                        ),
                    )
                }),
            _ => None,
        };
        if let Some((k, note)) = by {
            explained.push(i);
            notes.push((k, note));
        }
    }
    // One note per cause: the first effect in words, the others counted.
    let mut noted: Vec<usize> = Vec::new();
    for (k, note) in &notes {
        if noted.contains(k) {
            continue;
        }
        noted.push(*k);
        let more = notes.iter().filter(|(c, _)| c == k).count() - 1;
        let v = &mut candidates[*k].verdict;
        v.summary = match more {
            0 => format!("{} {note}", v.summary),
            n => format!(
                "{} {note} (and {n} more such observation{})",
                v.summary,
                if n == 1 { "" } else { "s" }
            ),
        };
    }
    let mut i = 0;
    candidates.retain(|_| {
        let keep = !explained.contains(&i);
        i += 1;
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(class: VerdictClass, hop: Option<u8>, summary: &str) -> Verdict {
        Verdict {
            class,
            hop,
            address: None,
            confidence: Confidence::Medium,
            summary: summary.into(),
            next_steps: vec![],
        }
    }

    fn none() -> NoEvidence {
        NoEvidence {
            summary: "nothing".into(),
            next_steps: vec![],
        }
    }

    #[test]
    fn rank_decides_and_the_first_of_equals_wins() {
        let got = pick(
            vec![
                Candidate::new(v(VerdictClass::Healthy, None, "ok")),
                Candidate::new(v(VerdictClass::TcpBlocked, Some(2), "trace")),
                Candidate::new(v(VerdictClass::TcpBlocked, None, "flows")),
                Candidate::new(v(VerdictClass::PathLoss, Some(3), "loss")),
            ],
            none,
        );
        assert_eq!((got.class, got.hop), (VerdictClass::TcpBlocked, Some(2)));
        assert_eq!(got.summary, "trace");
    }

    #[test]
    fn real_loss_explains_a_silent_black_hole_on_or_after_its_link() {
        let loss = Candidate::new(v(VerdictClass::PathLoss, Some(3), "loss from hop 3"));
        let hole = Candidate::new(v(VerdictClass::PmtuBlackhole, Some(3), "black hole"));
        let got = pick(vec![hole.clone(), loss.clone()], none);
        assert_eq!((got.class, got.hop), (VerdictClass::PathLoss, Some(3)));
        assert!(got.summary.contains("black hole"), "{}", got.summary);
        // Loss explains a silent TLS stall, not a reset.
        let stall = Candidate::new(v(VerdictClass::TlsBlocked, None, "silence after hello"))
            .basis(Basis::TlsSilence);
        let got = pick(vec![stall, loss.clone()], none);
        assert_eq!((got.class, got.hop), (VerdictClass::PathLoss, Some(3)));
        let reset = Candidate::new(v(VerdictClass::TlsBlocked, Some(1), "reset"));
        let got = pick(vec![reset, loss.clone()], none);
        assert_eq!(got.class, VerdictClass::TlsBlocked);
        // A black hole before the lossy part of the path stands.
        let early = Candidate::new(v(VerdictClass::PmtuBlackhole, Some(1), "black hole"));
        let got = pick(vec![early, loss], none);
        assert_eq!((got.class, got.hop), (VerdictClass::PmtuBlackhole, Some(1)));
    }

    #[test]
    fn nothing_is_inconclusive_with_the_callers_words() {
        let got = pick(vec![], none);
        assert_eq!(got.class, VerdictClass::Inconclusive);
        assert_eq!(got.summary, "nothing");
    }

    #[test]
    fn host_facts_outrank_the_network() {
        let resolv = Candidate::new(v(VerdictClass::DnsFailure, None, "resolv"))
            .basis(Basis::ResolvUnreadable);
        let clock =
            Candidate::new(v(VerdictClass::ClockSkew, None, "offset")).basis(Basis::ClockOffset);
        let rst = Candidate::new(v(VerdictClass::RstInjected, Some(2), "rst"));
        let got = pick(vec![rst.clone(), clock.clone(), resolv], none);
        assert_eq!(got.summary, "resolv");
        let got = pick(vec![rst.clone(), clock.clone()], none);
        assert_eq!(got.summary, "offset");
        // The packets' own clock-skew verdict keeps its frames' words and
        // gains the offset.
        let cert = Candidate::new(v(VerdictClass::ClockSkew, None, "not yet valid"));
        let got = pick(vec![rst, cert, clock], none);
        assert_eq!(got.summary, "not yet valid offset");
    }

    #[test]
    fn a_black_hole_explains_a_silent_tls_stall() {
        let server = Some("198.18.4.2".parse().unwrap());
        let stall = Candidate::new(v(VerdictClass::TlsBlocked, None, "silence after hello"))
            .basis(Basis::TlsSilence)
            .about(server);
        let hole =
            Candidate::new(v(VerdictClass::PmtuBlackhole, Some(2), "black hole")).about(server);
        let got = pick(vec![stall.clone(), hole.clone()], none);
        assert_eq!((got.class, got.hop), (VerdictClass::PmtuBlackhole, Some(2)));
        assert!(
            got.summary.contains("silence after hello"),
            "{}",
            got.summary
        );
        // Two stalls (the capture's and the live probe's): named once.
        let got = pick(vec![stall.clone(), stall.clone(), hole.clone()], none);
        assert_eq!(
            got.summary.matches("silence after hello").count(),
            1,
            "{}",
            got.summary
        );
        assert!(got.summary.contains("and 1 more"), "{}", got.summary);

        // A reset answering the ClientHello is not explained by a black hole.
        let reset = Candidate::new(v(VerdictClass::TlsBlocked, Some(1), "reset")).about(server);
        let got = pick(vec![reset, hole.clone()], none);
        assert_eq!(got.class, VerdictClass::TlsBlocked);

        // Another server's black hole explains nothing here.
        let other = hole.about(Some("198.18.9.9".parse().unwrap()));
        let got = pick(vec![stall, other], none);
        assert_eq!(got.class, VerdictClass::TlsBlocked);
    }

    /// A DNS hijack explains what the connections to the hijacked address
    /// show, and only those: another server's failure still outranks it.
    #[test]
    fn dns_hijack_explains_its_address_only() {
        let sink: IpAddr = "10.66.0.1".parse().unwrap();
        let other: IpAddr = "165.225.0.1".parse().unwrap();
        let hijack = Candidate::new(v(VerdictClass::DnsFailure, None, "hijack."))
            .basis(Basis::DnsHijack)
            .about(Some(sink));
        let blocked =
            Candidate::new(v(VerdictClass::TcpBlocked, None, "dropped.")).about(Some(sink));
        let got = pick(vec![blocked.clone(), hijack.clone()], none);
        assert_eq!(got.class, VerdictClass::DnsFailure);
        assert_eq!(
            got.summary,
            "hijack. It explains what the connections to that address show: dropped."
        );
        let elsewhere =
            Candidate::new(v(VerdictClass::RstInjected, Some(2), "forged.")).about(Some(other));
        let got = pick(vec![blocked, hijack, elsewhere], none);
        assert_eq!((got.class, got.hop), (VerdictClass::RstInjected, Some(2)));
    }
}
