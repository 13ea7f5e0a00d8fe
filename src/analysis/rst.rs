//! Where did a TCP reset come from? Injected by a middlebox, or sent by the
//! server itself.
//!
//! Signals, strongest first: the reset's TTL against the TTL of genuine
//! packets from the same address (same flow first, then the rest of the
//! capture: SYN-ACKs, data, ping replies); against the target's hop from the
//! path; then supporting signs (IP ID 0, no options, window 0: the Linux
//! `REJECT --reject-with tcp-reset` fingerprint; a delay shorter than the
//! server's round trip).

use super::flows::{FlowRecord, RstEvent, SegmentKind};
use super::ttl::TtlCounts;
use crate::vocab::Confidence;
use crate::vocab::HopEstimate;
use serde::Serialize;
use std::net::SocketAddr;

/// Who sent a reset, as far as the evidence goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RstOrigin {
    /// A device between the connector and the server forged it.
    Injected,
    /// The server (the target) sent it.
    Target,
    /// The evidence does not decide.
    Unclear,
}

/// What the genuine-TTL comparison was made against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Baseline {
    /// Non-reset packets of the same flow (SYN-ACK, data).
    SameFlow,
    /// Non-reset packets from the same address elsewhere in the capture.
    SameAddress,
    /// The target's hop from `--hops` or the mtr report.
    Path,
    None,
}

/// The evidence about one reset sent toward the connector.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RstEvidence {
    pub frame: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// `RST` or `RST,ACK`.
    pub flags: String,
    pub ttl: u8,
    pub initial_ttl: u8,
    /// Hop the TTL implies.
    pub hop: u8,
    pub ip_id: Option<u16>,
    pub window: u16,
    pub options_len: u8,
    /// The connector's segment the reset answers, and the delay after it.
    pub answers_frame: Option<u64>,
    pub answers: Option<SegmentKind>,
    pub delay_ms: Option<f64>,
    /// Genuine TTL of the server and the hop it implies.
    pub genuine_ttl: Option<u8>,
    pub genuine_hop: Option<u8>,
    pub baseline: Baseline,
    /// The target's hop from the path, if given.
    pub target_hop: Option<u8>,
    pub origin: RstOrigin,
    pub confidence: Confidence,
    /// Why, in short sentences, strongest first.
    pub reasons: Vec<String>,
}

/// Context for classifying the resets of one flow.
pub struct RstContext<'a> {
    /// Genuine TTLs of the server address across the whole capture.
    pub address_ttls: Option<&'a TtlCounts>,
    /// The target's hop from the path.
    pub target_hop: Option<u8>,
    /// Inbound TTLs look rewritten by a normaliser: TTLs prove nothing.
    pub ttl_rewritten: bool,
    /// Fastest SYN → SYN-ACK round trip to this server, in the capture.
    pub server_rtt_ns: Option<i64>,
    /// The server's usual IP ID is not zero.
    pub server_ip_id_nonzero: bool,
}

/// Classifies one reset sent from the server's address.
pub fn classify(flow: &FlowRecord, rst: &RstEvent, ctx: &RstContext<'_>) -> RstEvidence {
    let est = HopEstimate::from_ttl(rst.packet.ttl);
    let (genuine_ttl, mut baseline) = match flow.server_ttls.mode() {
        Some(t) => (Some(t), Baseline::SameFlow),
        None => match ctx.address_ttls.and_then(TtlCounts::mode) {
            Some(t) => (Some(t), Baseline::SameAddress),
            None => (None, Baseline::None),
        },
    };
    let genuine = genuine_ttl.map(HopEstimate::from_ttl);
    let delay_ns = rst.answers.map(|a| rst.packet.ts_ns - a.ts_ns);
    let mut reasons = Vec::new();
    let basis = match baseline {
        Baseline::SameFlow => "the server's other packets in this connection",
        _ => "other packets from the server's address",
    };

    let (mut origin, mut confidence) = (RstOrigin::Unclear, Confidence::Low);
    if ctx.ttl_rewritten {
        reasons.push(
            "every inbound packet carries the same TTL: a device rewrites TTLs, so the TTL cannot place the sender"
                .to_string(),
        );
    } else if let Some(g) = genuine {
        if g.initial_ttl != est.initial_ttl {
            origin = RstOrigin::Injected;
            confidence = Confidence::High;
            reasons.push(format!(
                "initial TTL {} differs from the {} of {basis} (TTL {}): another network stack sent it",
                est.initial_ttl, g.initial_ttl, g.ttl
            ));
        } else if est.hop + 1 < g.hop {
            origin = RstOrigin::Injected;
            confidence = Confidence::High;
            reasons.push(format!(
                "TTL {} means hop {}, while {basis} arrive with TTL {} (hop {})",
                est.ttl, est.hop, g.ttl, g.hop
            ));
        } else if est.hop + 1 == g.hop {
            reasons.push(format!(
                "TTL {} means hop {}, one hop closer than {basis} (TTL {}, hop {}): an asymmetric return path can explain one hop",
                est.ttl, est.hop, g.ttl, g.hop
            ));
        } else if est.hop == g.hop {
            origin = RstOrigin::Target;
            confidence = Confidence::High;
            reasons.push(format!(
                "TTL {} is the TTL of {basis}: the server sent it (hop {})",
                est.ttl, est.hop
            ));
        } else {
            reasons.push(format!(
                "TTL {} means hop {}, farther than {basis} (hop {}): route change or asymmetric path",
                est.ttl, est.hop, g.hop
            ));
        }
    }

    // The path decides when the capture has no genuine packet to compare
    // with, and confirms or questions the comparison when it has one.
    if let (Some(target), false) = (ctx.target_hop, ctx.ttl_rewritten) {
        match origin {
            RstOrigin::Unclear if genuine.is_none() || est.hop + 1 == genuine.map_or(0, |g| g.hop) => {
                baseline = if genuine.is_none() { Baseline::Path } else { baseline };
                if est.hop < target {
                    origin = RstOrigin::Injected;
                    confidence = if target - est.hop >= 2 {
                        Confidence::High
                    } else {
                        Confidence::Medium
                    };
                    reasons.push(format!(
                        "TTL {} means hop {}, but the target is at hop {target} on the path",
                        est.ttl, est.hop
                    ));
                } else if est.hop == target {
                    origin = RstOrigin::Target;
                    confidence = Confidence::Medium;
                    reasons.push(format!(
                        "TTL {} means hop {}, the target's hop on the path",
                        est.ttl, est.hop
                    ));
                } else {
                    reasons.push(format!(
                        "TTL {} means hop {}, beyond the target's hop {target}: asymmetric return path?",
                        est.ttl, est.hop
                    ));
                }
            }
            RstOrigin::Target if est.hop < target => reasons.push(format!(
                "note: the server's packets come from hop {} but the path puts the target at hop {target}: a proxy may answer for it",
                est.hop
            )),
            _ => {}
        }
    }
    if origin == RstOrigin::Unclear
        && genuine.is_none()
        && ctx.target_hop.is_none()
        && !ctx.ttl_rewritten
    {
        reasons.push(format!(
            "TTL {} means hop {}, but the capture has no genuine packet from {} to compare and no path was given (use --hops N or --mtr FILE)",
            est.ttl,
            est.hop,
            flow.server.ip()
        ));
    }

    // Supporting signs: they never decide alone, but they raise or lower
    // confidence and they are what a firewall owner recognises.
    let injected_fingerprint =
        rst.packet.ip_id == Some(0) && rst.options_len == 0 && rst.window == 0;
    if injected_fingerprint && ctx.server_ip_id_nonzero {
        reasons.push(
            "IP ID 0 with window 0 and no options (the Linux REJECT --reject-with tcp-reset fingerprint), while the server's own packets carry IP IDs"
                .to_string(),
        );
        if origin == RstOrigin::Injected && confidence == Confidence::Medium {
            confidence = Confidence::High;
        }
    }
    if let (Some(d), Some(rtt)) = (delay_ns, ctx.server_rtt_ns)
        && d >= 0
        && d * 2 < rtt
    {
        reasons.push(format!(
                "it came {:.3} ms after the segment it answers, faster than half the server's round trip ({:.3} ms): something closer sent it",
                ms(d),
                ms(rtt)
            ));
    }
    if est.ambiguous {
        reasons.push(format!(
            "TTL {} ≤ 32: the initial TTL may be 32 or 64, so the hop is uncertain",
            est.ttl
        ));
        confidence = confidence.min(Confidence::Medium);
    }

    RstEvidence {
        frame: rst.packet.frame,
        client: flow.client,
        server: flow.server,
        flags: rst.flags.to_string(),
        ttl: est.ttl,
        initial_ttl: est.initial_ttl,
        hop: est.hop,
        ip_id: rst.packet.ip_id,
        window: rst.window,
        options_len: rst.options_len,
        answers_frame: rst.answers.map(|a| a.frame),
        answers: rst.answers.map(|a| a.kind),
        delay_ms: delay_ns.map(ms),
        genuine_ttl,
        genuine_hop: genuine.map(|g| g.hop),
        baseline,
        target_hop: ctx.target_hop,
        origin,
        confidence,
        reasons,
    }
}

fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::flows::{FlowLimits, FlowTable};
    use crate::packet::{Packet, TcpFlags, Transport, testing};

    fn pkt(frame: u64, ms: i64, src: &str, dst: &str, ttl: u8, flags: u8, id: u16) -> Packet {
        let mut t = testing::tcp_info(src, dst, flags, 1, 0);
        t.window = if flags & TcpFlags::RST != 0 { 0 } else { 500 };
        let mut p = testing::packet(frame, ms, src, dst, ttl, Transport::Tcp(t));
        p.ip_id = Some(id);
        p
    }

    const C: &str = "10.0.0.2:40000";
    const S: &str = "198.18.4.2:443";

    fn flow_of(packets: &[Packet]) -> FlowRecord {
        let mut t = FlowTable::new(vec![443], FlowLimits::default());
        for p in packets {
            t.push(p, &[]);
        }
        t.finish();
        t.finished.remove(0)
    }

    fn ctx(target_hop: Option<u8>) -> RstContext<'static> {
        RstContext {
            address_ttls: None,
            target_hop,
            ttl_rewritten: false,
            server_rtt_ns: None,
            server_ip_id_nonzero: false,
        }
    }

    #[test]
    fn same_flow_synack_at_hop4_and_rst_at_hop1_prove_injection_without_path() {
        // SYN-ACK with TTL 61 (hop 4), later an RST with TTL 64 (hop 1).
        let f = flow_of(&[
            pkt(1, 0, C, S, 64, TcpFlags::SYN, 1),
            pkt(2, 10, S, C, 61, TcpFlags::SYN | TcpFlags::ACK, 0),
            pkt(3, 10, C, S, 64, TcpFlags::ACK, 2),
            pkt(4, 11, C, S, 64, TcpFlags::ACK | TcpFlags::PSH, 3),
            pkt(5, 12, S, C, 64, TcpFlags::RST, 0),
        ]);
        let e = classify(&f, &f.rsts[0], &ctx(None));
        assert_eq!(
            (e.origin, e.hop, e.genuine_hop),
            (RstOrigin::Injected, 1, Some(4))
        );
        assert_eq!(e.baseline, Baseline::SameFlow);
        assert_eq!(e.confidence, Confidence::High);
    }

    #[test]
    fn path_places_rst_without_genuine_packets() {
        let f = flow_of(&[
            pkt(1, 0, C, S, 64, TcpFlags::SYN, 1),
            pkt(2, 1, S, C, 63, TcpFlags::RST | TcpFlags::ACK, 0),
        ]);
        let e = classify(&f, &f.rsts[0], &ctx(Some(4)));
        assert_eq!((e.origin, e.hop), (RstOrigin::Injected, 2));
        assert_eq!(e.baseline, Baseline::Path);
        assert_eq!(e.answers, Some(SegmentKind::Syn));
        assert_eq!(e.delay_ms, Some(1.0));

        let e = classify(&f, &f.rsts[0], &ctx(None));
        assert_eq!(e.origin, RstOrigin::Unclear);
    }

    #[test]
    fn genuine_reset_from_the_broker() {
        let f = flow_of(&[
            pkt(1, 0, C, S, 64, TcpFlags::SYN, 1),
            pkt(2, 3, S, C, 61, TcpFlags::RST | TcpFlags::ACK, 0),
        ]);
        let e = classify(&f, &f.rsts[0], &ctx(Some(4)));
        assert_eq!((e.origin, e.hop), (RstOrigin::Target, 4));
        // Ping replies from the broker agree.
        let mut ping = TtlCounts::default();
        ping.add(61);
        let c = RstContext {
            address_ttls: Some(&ping),
            ..ctx(None)
        };
        let e = classify(&f, &f.rsts[0], &c);
        assert_eq!(
            (e.origin, e.baseline),
            (RstOrigin::Target, Baseline::SameAddress)
        );
    }

    #[test]
    fn different_initial_ttl_is_another_stack() {
        let mut genuine = TtlCounts::default();
        genuine.add(120);
        let f = flow_of(&[
            pkt(1, 0, C, S, 64, TcpFlags::SYN, 1),
            pkt(2, 1, S, C, 60, TcpFlags::RST | TcpFlags::ACK, 0),
        ]);
        let c = RstContext {
            address_ttls: Some(&genuine),
            ..ctx(None)
        };
        assert_eq!(classify(&f, &f.rsts[0], &c).origin, RstOrigin::Injected);
    }

    #[test]
    fn one_hop_difference_is_not_enough_alone_and_rewritten_ttl_proves_nothing() {
        let mut genuine = TtlCounts::default();
        genuine.add(61);
        let f = flow_of(&[
            pkt(1, 0, C, S, 64, TcpFlags::SYN, 1),
            pkt(2, 1, S, C, 62, TcpFlags::RST | TcpFlags::ACK, 0),
        ]);
        let c = RstContext {
            address_ttls: Some(&genuine),
            ..ctx(None)
        };
        assert_eq!(classify(&f, &f.rsts[0], &c).origin, RstOrigin::Unclear);
        let c = RstContext {
            address_ttls: Some(&genuine),
            ttl_rewritten: true,
            ..ctx(Some(4))
        };
        assert_eq!(classify(&f, &f.rsts[0], &c).origin, RstOrigin::Unclear);
    }
}
