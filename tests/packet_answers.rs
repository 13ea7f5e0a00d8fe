//! What each reset, FIN and probe answers: the patterns real captures show
//! (forged and genuine resets after a close, refusals, TTL-limited
//! ClientHellos, forging signs, bursts), built packet by packet with real
//! sequence numbers and judged by the analysis. Each case asserts the
//! verdict class, the hop (or no hop and why) and the counts.

mod support;

use pathproof::analysis::{Analysis, RstOrigin, VerdictClass};
use pathproof::path::Path;
use pathproof::vocab::FindingKind;
use support::talk::{ACK, Capture, FIN, Seg, Talk};

/// The server at hop 6 with initial TTL 128 (TTL 123), as in a Windows or
/// load-balanced broker; its kernel's resets carry initial TTL 64.
const SERVER_TTL_128: u8 = 123;
/// The server at hop 6 with initial TTL 64.
const SERVER_TTL_64: u8 = 59;

fn injected(a: &Analysis) -> usize {
    a.rsts
        .iter()
        .filter(|r| r.origin == RstOrigin::Injected)
        .count()
}

/// How a connection ends, then what resets follow it.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// Both FINs sent and acknowledged, then two resets 10 ms later (the
    /// server's stack answering the connector's last ACK, retransmitted).
    CleanCloseThenResets,
    /// The server aborts after its data with a reset that acknowledges
    /// everything (an abortive close).
    Abortive,
    /// SO_LINGER 0 on the server: close() sends a reset instead of a FIN,
    /// right after the connector's FIN.
    LingerZero,
}

fn ended(ending: Ending, server_ttl: u8, rst_ttl: u8) -> Capture {
    let mut c = Capture::default();
    for k in 0..3u16 {
        let mut t = Talk::new(40000 + k, server_ttl);
        t.handshake(&mut c);
        t.client_hello(&mut c, Some("broker.example"), None);
        t.server_data(&mut c, 1200);
        t.client_data(&mut c, 300);
        t.server_data(&mut c, 500);
        t.client_ack(&mut c);
        match ending {
            Ending::CleanCloseThenResets => {
                t.client_fin(&mut c);
                t.server_fin(&mut c);
                t.client_ack(&mut c);
                for _ in 0..2 {
                    t.forged_rst(&mut c, rst_ttl, 0, |s| s.flags = support::talk::RST);
                }
            }
            Ending::Abortive => {
                t.forged_rst(&mut c, rst_ttl, 0, |_| {});
            }
            Ending::LingerZero => {
                t.client_fin(&mut c);
                t.forged_rst(&mut c, rst_ttl, 0, |_| {});
            }
        }
    }
    c
}

/// Never `rst-injected` for a reset from the server's own hop with the
/// server's own TTL family, however the connection ended; nor for one from
/// the server's own hop with another initial TTL after a clean close (the
/// server's kernel or its load balancer).
#[test]
fn resets_from_the_servers_own_hop_are_never_injected() {
    let cases = [
        (Ending::CleanCloseThenResets, SERVER_TTL_64, SERVER_TTL_64),
        (Ending::Abortive, SERVER_TTL_64, SERVER_TTL_64),
        (Ending::LingerZero, SERVER_TTL_64, SERVER_TTL_64),
        (Ending::CleanCloseThenResets, SERVER_TTL_128, SERVER_TTL_64),
        (Ending::Abortive, SERVER_TTL_128, SERVER_TTL_64),
        (Ending::LingerZero, SERVER_TTL_128, SERVER_TTL_64),
    ];
    for (ending, server_ttl, rst_ttl) in cases {
        for path in [None, Some(Path::from_hop_count(6))] {
            let a = ended(ending, server_ttl, rst_ttl).analyse(path.as_ref());
            let case =
                format!("{ending:?} server TTL {server_ttl} reset TTL {rst_ttl} path {path:?}");
            assert_eq!(
                a.verdict.class,
                VerdictClass::Healthy,
                "{case}: {}",
                a.verdict.summary
            );
            assert_eq!(a.verdict.hop, None, "{case}");
            assert_eq!(injected(&a), 0, "{case}: {:#?}", a.rsts);
            let resets = if matches!(ending, Ending::CleanCloseThenResets) {
                6
            } else {
                3
            };
            assert_eq!(a.rsts.len(), resets, "{case}");
            assert!(
                a.findings
                    .iter()
                    .all(|f| f.kind != FindingKind::RstInjected),
                "{case}"
            );
        }
    }
}

/// Item 1's capture: the server's own hop, initial TTL 128 for its data and
/// 64 for two resets after a clean close: they are the server's.
#[test]
fn resets_after_a_clean_close_are_the_servers_stack() {
    let a = ended(Ending::CleanCloseThenResets, SERVER_TTL_128, SERVER_TTL_64).analyse(None);
    assert!(
        a.rsts.iter().all(|r| r.origin == RstOrigin::Target),
        "{:#?}",
        a.rsts
    );
    assert!(
        a.rsts[0].reasons.iter().any(|r| r.contains("clean close")),
        "{:?}",
        a.rsts[0].reasons
    );
}

/// Every SYN answered by RST/ACK with window 0, no SYN-ACK at all; the
/// tool still sends a ClientHello and a FIN, and a reset answers the FIN.
/// TCP never completed: not `tls-blocked`.
fn refused_then_hello() -> Capture {
    let mut c = Capture::default();
    for k in 0..3u16 {
        let mut t = Talk::new(41000 + k, 58);
        t.syn(&mut c);
        t.forged_rst(&mut c, 58, 0, |s| {
            s.seq = 0;
        });
        t.client_hello(&mut c, Some("broker.example"), None);
        t.client_fin(&mut c);
        t.forged_rst(&mut c, 58, 0, |_| {});
    }
    c
}

#[test]
fn a_refused_connection_never_completes_tcp() {
    let a = refused_then_hello().analyse(None);
    assert_ne!(
        a.verdict.class,
        VerdictClass::TlsBlocked,
        "{}",
        a.verdict.summary
    );
    assert!(
        !a.verdict.summary.contains("TCP completes"),
        "{}",
        a.verdict.summary
    );
    // Nothing genuine to compare with and no path: who sent them is open.
    assert_eq!(
        a.verdict.class,
        VerdictClass::Inconclusive,
        "{}",
        a.verdict.summary
    );
    assert_eq!(a.verdict.hop, None);
    assert_eq!(a.rsts.len(), 6);
    // With the server's hop known (TTL 58 = hop 7), they are its refusals.
    let a = refused_then_hello().analyse(Some(&Path::from_hop_count(7)));
    assert_eq!(
        a.verdict.class,
        VerdictClass::RstFromTarget,
        "{}",
        a.verdict.summary
    );
    assert_eq!(a.verdict.hop, Some(7));
}

/// A censorship measurement: after the handshake, the ClientHello is sent
/// with TTL 1, 2, 3, 4...; routers 1-3 answer with time-exceeded, and a
/// device at hop 4 answers with a reset whose TTL is random. The server is
/// at hop 10 (its SYN-ACK's TTL 55).
fn ttl_limited(with_icmp: bool, rst_ttls: &[u8]) -> Capture {
    let mut c = Capture::default();
    let mut t = Talk::new(42000, 55);
    t.handshake(&mut c);
    t.client_hello(&mut c, Some("blocked.example"), Some(1));
    for ttl in 1..=5u8 {
        let probe = if ttl == 1 {
            c.frames.len() as u64
        } else {
            t.resend_client_hello(&mut c, Some("blocked.example"), ttl)
        };
        if ttl < 4 && with_icmp {
            c.time_exceeded([192, 0, 2, ttl], 64 - ttl + 1, probe);
        } else if ttl >= 4 && !rst_ttls.is_empty() {
            let rst_ttl = rst_ttls[usize::from(ttl - 4) % rst_ttls.len()];
            t.forged_rst(&mut c, rst_ttl, 0, |_| {});
        }
    }
    // The measurement gives up. Its kernel never sent the ClientHello (a
    // raw socket did): its FIN carries the sequence number right after the
    // SYN, and the server's FIN acknowledges only that FIN.
    let isn_plus_1 = Talk::new(42000, 55).c_seq.wrapping_add(1);
    let server_seq = t.s_seq;
    for (out, flags, seq, ack) in [
        (true, FIN | ACK, isn_plus_1, server_seq),
        (false, FIN | ACK, server_seq, isn_plus_1.wrapping_add(1)),
        (
            true,
            ACK,
            isn_plus_1.wrapping_add(1),
            server_seq.wrapping_add(1),
        ),
    ] {
        let ttl = if out { 64 } else { 55 };
        c.seg(
            42000,
            443,
            &Seg {
                out,
                ttl,
                ip_id: 0,
                flags,
                seq,
                ack,
                window: 64240,
                payload: Vec::new(),
                reserved: 0,
            },
        );
    }
    c
}

#[test]
fn ttl_limited_probes_place_the_filter() {
    // Without the reset (the filter stays silent), the probes' flow is no
    // "ClientHello answered by a FIN".
    let a = ttl_limited(true, &[]).analyse(None);
    assert_ne!(
        a.verdict.class,
        VerdictClass::TlsBlocked,
        "{}",
        a.verdict.summary
    );
    for with_icmp in [true, false] {
        // TTLs 170 and 250 mean hops 86 and 6 if taken at face value.
        let a = ttl_limited(with_icmp, &[170, 250]).analyse(None);
        let case = format!("icmp {with_icmp}");
        assert_eq!(
            a.verdict.class,
            VerdictClass::TlsBlocked,
            "{case}: {}",
            a.verdict.summary
        );
        assert_eq!(a.verdict.hop, Some(4), "{case}: {}", a.verdict.summary);
        assert!(a.verdict.summary.contains("TTL 4"), "{}", a.verdict.summary);
        assert_eq!(a.rsts.len(), 2);
        assert_eq!(injected(&a), 2, "{:#?}", a.rsts);
        assert!(a.rsts.iter().all(|r| r.placed_hop == Some(4)));
        // Never "answered by a FIN" or "silence".
        assert!(!a.verdict.summary.contains("FIN"), "{}", a.verdict.summary);
    }
}

/// A reset whose TTL puts it beyond the server is not placed there.
#[test]
fn a_hop_beyond_the_server_is_impossible() {
    let mut c = Capture::default();
    let mut t = Talk::new(42100, 55); // server at hop 10
    t.handshake(&mut c);
    t.client_hello(&mut c, Some("blocked.example"), None);
    t.forged_rst(&mut c, 170, t.c_id.wrapping_add(0), |_| {}); // hop 86 at face value
    let a = c.analyse(None);
    let r = &a.rsts[0];
    assert_eq!(r.placed_hop, None);
    assert!(
        r.reasons.iter().any(|x| x.contains("impossible")),
        "{:?}",
        r.reasons
    );
    assert_ne!(a.verdict.hop, Some(86));
}

/// Forging signs prove a forgery without any genuine packet or path:
/// each case is a refused connection on port 8443 (no SYN-ACK anywhere
/// unless said), judged with `--port 8443`.
#[test]
fn forging_signs_prove_a_forgery_without_ttl_evidence() {
    // The forger's choices, given the IP ID of the SYN it answers.
    type Forge = fn(&mut Seg, u16);
    let cases: [(&str, Forge, bool); 4] = [
        ("IP ID copied from the SYN", |s, id| s.ip_id = id, true),
        ("IP ID + 1", |s, id| s.ip_id = id.wrapping_add(1), true),
        (
            "reserved bits and window copied",
            |s, _| {
                s.reserved = 0x0e;
                s.window = 64240;
            },
            true,
        ),
        ("REJECT fingerprint alone", |_, _| {}, false),
    ];
    for (name, forge, forged) in cases {
        let mut c = Capture::default();
        for k in 0..2u16 {
            let mut t = Talk::new(43000 + k, 50);
            t.server_port = 8443;
            t.syn(&mut c);
            let syn_id = t.c_id;
            t.forged_rst(&mut c, 62, 0, |s| {
                s.seq = 0;
                forge(s, syn_id)
            });
        }
        let a = c.analyse_ports(None, &[8443]);
        assert_eq!(a.rsts.len(), 2, "{name}");
        if forged {
            assert_eq!(
                a.verdict.class,
                VerdictClass::RstInjected,
                "{name}: {}",
                a.verdict.summary
            );
            assert_eq!(a.verdict.hop, None, "{name}: no genuine packet, no path");
            assert!(
                a.verdict.summary.contains("no hop"),
                "{name}: {}",
                a.verdict.summary
            );
            assert_eq!(injected(&a), 2, "{name}");
        } else {
            assert_eq!(
                a.verdict.class,
                VerdictClass::Inconclusive,
                "{name}: {}",
                a.verdict.summary
            );
            assert_eq!(injected(&a), 0, "{name}");
        }
    }
}

/// A reset acknowledging a SYN the server never answered, while the
/// server accepts the port in other connections: a forging sign, decisive
/// with another one, never against the server's own TTL.
#[test]
fn a_syn_reset_while_the_port_listens_is_a_forging_sign() {
    use pathproof::analysis::ForgingSign;
    // (reset TTL, window copied, expected origin): the server is at hop 10
    // (TTL 55); TTL 56 is one hop closer, which TTL alone cannot judge.
    let cases = [
        (56, false, RstOrigin::Unclear),
        (56, true, RstOrigin::Injected),
        (55, true, RstOrigin::Target),
    ];
    for (ttl, window_copied, origin) in cases {
        let mut c = Capture::default();
        let mut ok = Talk::new(44000, 55);
        ok.handshake(&mut c);
        ok.client_hello(&mut c, None, None);
        ok.server_data(&mut c, 900);
        let mut t = Talk::new(44001, 55);
        t.syn(&mut c);
        // IP ID 4242: not the REJECT fingerprint (IP ID 0), one sign at a time.
        t.forged_rst(&mut c, ttl, 4242, |s| {
            s.seq = 0;
            if window_copied {
                s.window = 64240;
            }
        });
        let a = c.analyse(None);
        let r = a.rsts.iter().find(|r| r.client.port() == 44001).unwrap();
        let case = format!("TTL {ttl} window copied {window_copied}");
        assert!(
            r.signs.contains(&ForgingSign::SynResetWhileListening),
            "{case}: {:?}",
            r.signs
        );
        assert_eq!(r.origin, origin, "{case}: {:?}", r.reasons);
        assert_eq!(
            r.placed_hop,
            if origin == RstOrigin::Target {
                Some(10)
            } else {
                None
            },
            "{case}"
        );
    }
}

/// A burst of three identical resets with varying TTLs, in 23 flows with
/// randomised TTLs: every reset counted, every copy in the evidence, no hop
/// from TTLs that spread over the whole path.
#[test]
fn bursts_and_randomised_ttls_are_counted_and_not_placed() {
    let mut c = Capture::default();
    // Random-looking TTLs, none of them the server's own (55).
    const TTLS: [u8; 8] = [30, 97, 170, 201, 250, 120, 45, 77];
    let ttl_of = |k: u16, copy: u16| TTLS[usize::from(k + copy * 3) % TTLS.len()];
    let mut burst_frames = Vec::new();
    for k in 0..23u16 {
        let mut t = Talk::new(45000 + k, 55);
        t.handshake(&mut c);
        t.client_hello(&mut c, Some("blocked.example"), None);
        for copy in 0..3u16 {
            let f = t.forged_rst(&mut c, ttl_of(k, copy), 0, |_| {});
            if k == 0 {
                burst_frames.push(f);
            }
        }
    }
    let a = c.analyse(None);
    assert_eq!(a.rsts.len(), 69);
    assert_eq!(
        injected(&a),
        69,
        "{:#?}",
        a.rsts
            .iter()
            .filter(|r| r.origin != RstOrigin::Injected)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        a.verdict.class,
        VerdictClass::TlsBlocked,
        "{}",
        a.verdict.summary
    );
    assert_eq!(a.verdict.hop, None, "{}", a.verdict.summary);
    let f = a
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::TlsBlocked)
        .unwrap();
    assert!(
        a.verdict.summary.contains("3 resets"),
        "{}",
        a.verdict.summary
    );
    for b in &burst_frames {
        assert!(f.frames.contains(b), "{b} missing from {:?}", f.frames);
    }
}

/// Forged resets of a TCP filter (answering SYNs) in 23 connections, each
/// a burst of copies: the verdict counts all of them.
#[test]
fn the_verdict_counts_every_forged_reset() {
    let mut c = Capture::default();
    let mut frames = Vec::new();
    for k in 0..23u16 {
        let mut t = Talk::new(46000 + k, 55);
        t.syn(&mut c);
        let id = t.c_id;
        frames.push(t.forged_rst(&mut c, 62, id, |s| s.seq = 0));
    }
    let a = c.analyse(Some(&Path::from_hop_count(10)));
    assert_eq!(
        a.verdict.class,
        VerdictClass::RstInjected,
        "{}",
        a.verdict.summary
    );
    assert_eq!(a.verdict.hop, Some(3));
    assert_eq!(injected(&a), 23);
    assert!(
        a.verdict.summary.contains("23 resets were forged"),
        "{}",
        a.verdict.summary
    );
    let f = a
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::RstInjected)
        .unwrap();
    assert_eq!(f.frames_total, 46, "each reset and the SYN it answers");
    assert!(frames.iter().all(|r| f.frames.contains(r)));
}

/// A FIN retransmitted after the close, late enough that the connection
/// left the table, is not a new connection; a connection the capture
/// joined mid-stream is not counted as a completed handshake.
#[test]
fn late_fins_and_mid_stream_connections_are_not_handshakes() {
    let mut c = Capture::default();
    let mut t = Talk::new(47000, 55);
    t.handshake(&mut c);
    t.client_hello(&mut c, None, None);
    t.server_data(&mut c, 900);
    t.client_fin(&mut c);
    t.server_fin(&mut c);
    t.client_ack(&mut c);
    c.wait_ms(8_000);
    t.client_fin_again(&mut c);
    c.wait_ms(8_000);
    t.client_fin_again(&mut c);
    // Joined mid-stream: data both ways, no SYN.
    let mut m = Talk::new(47001, 55);
    m.client_data(&mut c, 100);
    m.server_data(&mut c, 100);
    let a = c.analyse(None);
    assert_eq!(
        a.verdict.class,
        VerdictClass::Healthy,
        "{}",
        a.verdict.summary
    );
    assert_eq!(a.flows_total, 2, "the late FINs are no connection");
    let est = a
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::TcpEstablished)
        .unwrap();
    assert!(
        est.summary.starts_with("1 of 2 connections") && est.summary.contains("1 was already open"),
        "{}",
        est.summary
    );
}

/// Two hundred refusals with the server's own IP ID counter, one of which
/// equals the IP ID of the SYN it answers by chance (two values in 65,536
/// do): chance is not a forging sign.
#[test]
fn an_ip_id_match_by_chance_is_no_sign() {
    use pathproof::analysis::ForgingSign;
    let mut c = Capture::default();
    for k in 0..200u16 {
        let mut t = Talk::new(49000 + k, 55);
        t.syn(&mut c);
        let id = if k == 77 { t.c_id } else { 30_000 + k };
        t.forged_rst(&mut c, 55, id, |s| s.seq = 0);
    }
    let a = c.analyse(None);
    assert_eq!(a.rsts.len(), 200);
    assert!(
        a.rsts
            .iter()
            .all(|r| !r.signs.contains(&ForgingSign::IpIdCopied))
    );
    assert_eq!(injected(&a), 0);
    assert_eq!(
        a.verdict.class,
        VerdictClass::Inconclusive,
        "{}",
        a.verdict.summary
    );
}

/// A reset injected into a transfer: the server goes on sending new data
/// from where the reset put its stream, which a server that reset the
/// connection cannot do. With a TTL one hop closer than the server's
/// (which TTL alone cannot judge) it is forged; with the server's own TTL
/// it stays the server's side (never injected from its own hop).
#[test]
fn a_server_that_goes_on_after_the_reset_never_sent_it() {
    use pathproof::analysis::ForgingSign;
    for (rst_ttl, origin) in [(56, RstOrigin::Injected), (55, RstOrigin::Target)] {
        let mut c = Capture::default();
        let mut t = Talk::new(49500, 55);
        t.handshake(&mut c);
        t.client_hello(&mut c, None, None);
        t.server_data(&mut c, 1400);
        t.client_ack(&mut c);
        t.forged_rst(&mut c, rst_ttl, 4242, |_| {});
        t.server_data(&mut c, 1400);
        t.server_data(&mut c, 1400);
        let a = c.analyse(None);
        let case = format!("reset TTL {rst_ttl}");
        assert_eq!(a.rsts.len(), 1, "{case}");
        let r = &a.rsts[0];
        assert!(
            r.signs.contains(&ForgingSign::ServerContinued),
            "{case}: {:?}",
            r.signs
        );
        assert_eq!(r.origin, origin, "{case}: {:?}", r.reasons);
        if origin == RstOrigin::Injected {
            assert_eq!(
                a.verdict.class,
                VerdictClass::RstInjected,
                "{case}: {}",
                a.verdict.summary
            );
            assert_eq!(a.verdict.hop, None, "{case}: one hop closer places nothing");
        } else {
            assert_ne!(a.verdict.class, VerdictClass::RstInjected, "{case}");
        }
    }
}
