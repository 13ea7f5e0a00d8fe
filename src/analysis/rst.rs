//! Where did a TCP reset come from? Injected by a middlebox, or sent by the
//! server itself.
//!
//! Signals, strongest first: the reset's TTL against the TTL of genuine
//! packets from the same address (same flow first, then the rest of the
//! capture: SYN-ACKs, data, ping replies); against the target's hop from the
//! path; then supporting signs (IP ID 0, no options, window 0: the Linux
//! `REJECT --reject-with tcp-reset` fingerprint; a delay shorter than the
//! server's round trip).

use super::flows::{FlowRecord, RstAcks, RstEvent, SegmentKind, TcpStage};
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

/// A sign that a reset was forged, independent of its TTL. Each has a
/// weight (README "How a reset is placed"); together they can prove a
/// forgery that the TTL cannot, but they never place a hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForgingSign {
    /// IP ID equal to (or one more than) the connector's segment it answers:
    /// the injector copied it. Weight 3.
    IpIdCopied,
    /// The server went on sending new data (or its FIN) from where the
    /// reset put its stream: it never reset the connection. Weight 3.
    ServerContinued,
    /// Reserved TCP bits set: no server's stack sends them. Weight 2.
    ReservedBits,
    /// Copies of the same reset (same sequence and acknowledgment numbers)
    /// with different TTLs: a burst from a device that varies its TTL (a
    /// server sends one reset, with one TTL). Weight 3.
    TtlVariesInBurst,
    /// It acknowledges a SYN the server never answered, while the server
    /// accepts the port in other connections of the capture. Weight 2.
    SynResetWhileListening,
    /// Window equal to the connector's segment it answers. Weight 1.
    WindowCopied,
    /// It came faster than half the server's round trip. Weight 1.
    FasterThanServer,
    /// IP ID 0, window 0, no options while the server's IP IDs are not 0
    /// (Linux `REJECT --reject-with tcp-reset`). Weight 1.
    RejectFingerprint,
}

impl ForgingSign {
    pub fn weight(self) -> u8 {
        match self {
            ForgingSign::IpIdCopied
            | ForgingSign::TtlVariesInBurst
            | ForgingSign::ServerContinued => 3,
            ForgingSign::ReservedBits | ForgingSign::SynResetWhileListening => 2,
            ForgingSign::WindowCopied
            | ForgingSign::FasterThanServer
            | ForgingSign::RejectFingerprint => 1,
        }
    }
}

/// Total weight of signs from which a reset counts as forged without TTL
/// evidence: one strong sign, or a medium one with another.
pub const FORGED_WEIGHT: u8 = 3;

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
    /// Hop the TTL implies (if the sender's initial TTL is the usual one).
    pub hop: u8,
    /// Where the evidence places the sender: a TTL-limited probe first, then
    /// the TTL when it is plausible; `None` when nothing places it.
    pub placed_hop: Option<u8>,
    pub ip_id: Option<u16>,
    pub window: u16,
    pub options_len: u8,
    /// How far the connection had got, and what the reset acknowledges.
    pub stage: TcpStage,
    pub acks: RstAcks,
    /// The connector's segment the reset answers, and the delay after it.
    pub answers_frame: Option<u64>,
    pub answers: Option<SegmentKind>,
    /// The segment it answers was a TTL-limited probe with this TTL.
    pub answers_probe_ttl: Option<u8>,
    pub delay_ms: Option<f64>,
    /// Genuine TTL of the server and the hop it implies.
    pub genuine_ttl: Option<u8>,
    pub genuine_hop: Option<u8>,
    pub baseline: Baseline,
    /// The target's hop from the path, if given.
    pub target_hop: Option<u8>,
    pub signs: Vec<ForgingSign>,
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
    /// The server answered SYNs to this port with SYN-ACKs elsewhere.
    pub port_listening: bool,
    /// IP ID copies among this server's resets are more than chance
    /// ([`ip_id_copies_systematic`]).
    pub ip_id_copies_systematic: bool,
    /// Where the capture's TTL-limited probes place a filter, as
    /// (hop, probe frame, why the probe did not reach the server).
    pub probe_hop: Option<(u8, u64, &'a str)>,
}

/// Classifies one reset sent from the server's address.
///
/// What the reset answers comes first: a reset after a clean close is the
/// server's stack answering a late segment, never a forgery; a reset that
/// answers a TTL-limited probe which could not reach the server was sent by
/// the device the probes place. Then the TTL against the server's genuine
/// TTL (or the path), then the forging signs.
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
    let server_hop = genuine.map(|g| g.hop).or(ctx.target_hop);
    let delay_ns = rst.answers.map(|a| rst.packet.ts_ns - a.ts_ns);
    let mut reasons = Vec::new();
    let basis = match baseline {
        Baseline::SameFlow => "the server's other packets in this connection",
        _ => "other packets from the server's address",
    };
    let signs = forging_signs(flow, rst, ctx, delay_ns);
    let weight: u8 = signs.iter().map(|s| s.weight()).sum();
    let mut placed_hop = None;

    let (mut origin, mut confidence) = (RstOrigin::Unclear, Confidence::Low);
    let after_close = rst.stage == TcpStage::Closed;
    let probe = rst
        .answers
        .and_then(|t| t.probe_ttl)
        .zip(ctx.probe_hop)
        .filter(|(ttl, (hop, _, _))| ttl >= hop && server_hop.is_none_or(|s| ttl < &s));
    if after_close {
        reasons.push(
            "it came after a clean close (both FINs sent and acknowledged): the server's stack answers late segments of a closed connection with a reset; a filter has no reason to"
                .to_string(),
        );
    }
    if let Some((ttl, (hop, probe_frame, why))) = probe {
        origin = RstOrigin::Injected;
        confidence = Confidence::High;
        placed_hop = Some(hop);
        reasons.push(format!(
            "it answers a copy of the connector's segment sent with TTL {ttl}, which expires before the server ({why}); the first such copy answered by a reset had TTL {hop} (frame {probe_frame}): the device is at hop {hop}"
        ));
    } else if ctx.ttl_rewritten {
        reasons.push(
            "every inbound packet carries the same TTL: a device rewrites TTLs, so the TTL cannot place the sender"
                .to_string(),
        );
    } else if let Some(g) = genuine {
        if g.initial_ttl != est.initial_ttl {
            if est.hop + 2 <= g.hop && !after_close {
                origin = RstOrigin::Injected;
                confidence = Confidence::High;
                placed_hop = Some(est.hop);
                reasons.push(format!(
                    "initial TTL {} (hop {}) differs from the {} of {basis} (TTL {}, hop {}): another network stack, {} hops before the server, sent it",
                    est.initial_ttl, est.hop, g.initial_ttl, g.ttl, g.hop, g.hop - est.hop
                ));
            } else if est.hop <= g.hop + 1 {
                origin = RstOrigin::Target;
                confidence = Confidence::Medium;
                reasons.push(format!(
                    "initial TTL {} differs from the {} of {basis} (TTL {}), but it means hop {}, the server's own hop {}: another stack at the server's site (its kernel for closed connections, a load balancer), not a device on the path",
                    est.initial_ttl, g.initial_ttl, g.ttl, est.hop, g.hop
                ));
            } else {
                reasons.push(format!(
                    "TTL {} means hop {} if its initial TTL is {}, beyond the server's hop {}: impossible for a device on the path, so the TTL does not place it",
                    est.ttl, est.hop, est.initial_ttl, g.hop
                ));
            }
        } else if est.hop + 1 < g.hop && !after_close {
            origin = RstOrigin::Injected;
            confidence = Confidence::High;
            placed_hop = Some(est.hop);
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
            placed_hop = Some(est.hop);
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
    if let (Some(target), false, None) = (ctx.target_hop, ctx.ttl_rewritten, probe) {
        match origin {
            RstOrigin::Unclear
                if genuine.is_none() || est.hop + 1 == genuine.map_or(0, |g| g.hop) =>
            {
                baseline = if genuine.is_none() {
                    Baseline::Path
                } else {
                    baseline
                };
                if est.hop < target && !after_close {
                    origin = RstOrigin::Injected;
                    placed_hop = Some(est.hop);
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
                    placed_hop = Some(est.hop);
                    confidence = Confidence::Medium;
                    reasons.push(format!(
                        "TTL {} means hop {}, the target's hop on the path",
                        est.ttl, est.hop
                    ));
                } else if est.hop > target {
                    reasons.push(format!(
                        "TTL {} means hop {}, beyond the target's hop {target}: impossible for a device on the path, so the TTL does not place it",
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

    // Forging signs: what a firewall owner recognises. They prove a
    // forgery the TTL cannot (never after a clean close, never against a
    // TTL that is the server's own), and raise confidence; they place no hop.
    for sign in &signs {
        reasons.push(describe(*sign, rst, delay_ns, ctx));
    }
    match origin {
        RstOrigin::Unclear if weight >= FORGED_WEIGHT && !after_close => {
            origin = RstOrigin::Injected;
            confidence = if weight >= 2 * FORGED_WEIGHT {
                Confidence::High
            } else {
                Confidence::Medium
            };
            reasons.push(format!(
                "forging signs of weight {weight} (≥ {FORGED_WEIGHT}): a device forged it; its TTL does not say where"
            ));
        }
        RstOrigin::Injected if weight > 0 && confidence == Confidence::Medium => {
            confidence = Confidence::High;
        }
        // Another initial TTL at the server's own hop, in a burst of copies
        // whose TTLs differ: the burst is one forger's, whatever one copy's
        // TTL happens to say.
        RstOrigin::Target
            if confidence == Confidence::Medium
                && signs.contains(&ForgingSign::TtlVariesInBurst)
                && !after_close =>
        {
            origin = RstOrigin::Injected;
            placed_hop = None;
            reasons.push(
                "its TTL matches the server's hop only by chance: the copies of this reset carry different TTLs"
                    .to_string(),
            );
        }
        RstOrigin::Target if weight >= FORGED_WEIGHT => {
            confidence = Confidence::Medium;
            reasons.push(
                "forging signs, but the reset comes from the server's own hop: a device at the server's site may send it, not one on the path"
                    .to_string(),
            );
        }
        _ => {}
    }
    if est.ambiguous {
        reasons.push(format!(
            "TTL {} ≤ 32: the initial TTL may be 32 or 64, so the hop is uncertain",
            est.ttl
        ));
        if probe.is_none() {
            confidence = confidence.min(Confidence::Medium);
        }
    }

    RstEvidence {
        frame: rst.packet.frame,
        client: flow.client,
        server: flow.server,
        flags: rst.flags.to_string(),
        ttl: est.ttl,
        initial_ttl: est.initial_ttl,
        hop: est.hop,
        placed_hop,
        ip_id: rst.packet.ip_id,
        window: rst.window,
        options_len: rst.options_len,
        stage: rst.stage,
        acks: rst.acks,
        answers_frame: rst.answers.map(|a| a.frame),
        answers: rst.answers.map(|a| a.kind),
        answers_probe_ttl: rst.answers.and_then(|a| a.probe_ttl),
        delay_ms: delay_ns.map(ms),
        genuine_ttl,
        genuine_hop: genuine.map(|g| g.hop),
        baseline,
        target_hop: ctx.target_hop,
        signs,
        origin,
        confidence,
        reasons,
    }
}

/// The reset's IP ID equals (or is one more than) the connector's segment
/// it answers.
pub fn copies_ip_id(rst: &RstEvent) -> bool {
    matches!(
        (rst.packet.ip_id, rst.answers.and_then(|t| t.ip_id)),
        (Some(id), Some(t)) if t != 0 && (id == t || id == t.wrapping_add(1))
    )
}

/// Whether IP ID copies among a server's resets are more than chance: two
/// values in 65,536 match by chance, so among thousands of genuine resets a
/// few match. Copies count as a sign when at least half the resets show
/// them, or far more of them than chance gives.
pub fn ip_id_copies_systematic<'a>(rsts: impl Iterator<Item = &'a RstEvent>) -> bool {
    let (mut n, mut k) = (0u64, 0u64);
    for r in rsts {
        if r.answers.and_then(|t| t.ip_id).is_some_and(|t| t != 0) {
            n += 1;
            k += u64::from(copies_ip_id(r));
        }
    }
    k > 0 && (2 * k >= n || k > 2 + 40 * n / 65_536)
}

/// The forging signs one reset shows.
fn forging_signs(
    flow: &FlowRecord,
    rst: &RstEvent,
    ctx: &RstContext<'_>,
    delay_ns: Option<i64>,
) -> Vec<ForgingSign> {
    let mut signs = Vec::new();
    let trigger = rst.answers;
    if ctx.ip_id_copies_systematic && copies_ip_id(rst) {
        signs.push(ForgingSign::IpIdCopied);
    }
    if flow.server_after_rst.is_some_and(|f| f > rst.packet.frame) && rst.seq != 0 {
        signs.push(ForgingSign::ServerContinued);
    }
    // The three reserved bits only: the fourth (AE, accurate ECN) is set by real stacks.
    if rst.reserved & 0x0e != 0 {
        signs.push(ForgingSign::ReservedBits);
    }
    let copies: Vec<u8> = flow
        .rsts
        .iter()
        .filter(|r| r.from_server && r.seq == rst.seq && r.ack == rst.ack)
        .map(|r| r.packet.ttl)
        .collect();
    if copies.len() >= 2 && copies.iter().any(|t| *t != copies[0]) {
        signs.push(ForgingSign::TtlVariesInBurst);
    }
    if rst.acks == RstAcks::Syn && flow.syn_ack.is_none() && ctx.port_listening {
        signs.push(ForgingSign::SynResetWhileListening);
    }
    if let Some(t) = trigger
        && rst.window != 0
        && rst.window == t.window
    {
        signs.push(ForgingSign::WindowCopied);
    }
    if let (Some(d), Some(rtt)) = (delay_ns, ctx.server_rtt_ns)
        && d >= 0
        && d * 2 < rtt
    {
        signs.push(ForgingSign::FasterThanServer);
    }
    if rst.packet.ip_id == Some(0)
        && rst.options_len == 0
        && rst.window == 0
        && ctx.server_ip_id_nonzero
    {
        signs.push(ForgingSign::RejectFingerprint);
    }
    signs
}

fn describe(
    sign: ForgingSign,
    rst: &RstEvent,
    delay_ns: Option<i64>,
    ctx: &RstContext<'_>,
) -> String {
    let id = rst.packet.ip_id.unwrap_or(0);
    match sign {
        ForgingSign::IpIdCopied => format!(
            "its IP ID {id} copies the IP ID of the connector's segment it answers (frame {}): a forger built it from that packet",
            rst.answers.map_or(0, |t| t.frame)
        ),
        ForgingSign::ServerContinued => {
            "the server went on sending new data from where this reset put its stream: the server never reset the connection".to_string()
        }
        ForgingSign::ReservedBits => format!(
            "reserved TCP bits set (0x{:x}): no server's stack sends them",
            rst.reserved
        ),
        ForgingSign::TtlVariesInBurst => {
            "copies of this reset (same sequence and acknowledgment numbers) arrived with different TTLs: a burst from a device that varies its TTL".to_string()
        }
        ForgingSign::SynResetWhileListening => {
            "it acknowledges a SYN the server never answered, while the server accepts the port in other connections".to_string()
        }
        ForgingSign::WindowCopied => format!(
            "its window {} copies the window of the connector's segment it answers",
            rst.window
        ),
        ForgingSign::FasterThanServer => format!(
            "it came {:.3} ms after the segment it answers, faster than half the server's round trip ({:.3} ms): something closer sent it",
            ms(delay_ns.unwrap_or(0)),
            ms(ctx.server_rtt_ns.unwrap_or(0))
        ),
        ForgingSign::RejectFingerprint => {
            "IP ID 0 with window 0 and no options (the Linux REJECT --reject-with tcp-reset fingerprint), while the server's own packets carry IP IDs".to_string()
        }
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
            port_listening: false,
            ip_id_copies_systematic: true,
            probe_hop: None,
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
