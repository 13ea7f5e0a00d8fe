//! TlsTracker on real handshakes (testdata/, see its README) cut into
//! segments every which way, on crafted messages, and on garbage.

use super::*;
use crate::packet::TcpFlags;

const C12: &[u8] = include_bytes!("testdata/tls12_ok_client.bin");
const S12: &[u8] = include_bytes!("testdata/tls12_ok_server.bin");
const C12R: &[u8] = include_bytes!("testdata/tls12_reject_client.bin");
const S12R: &[u8] = include_bytes!("testdata/tls12_reject_server.bin");
const C13: &[u8] = include_bytes!("testdata/tls13_ok_client.bin");
const S13: &[u8] = include_bytes!("testdata/tls13_ok_server.bin");
const C13R: &[u8] = include_bytes!("testdata/tls13_reject_client.bin");
const S13R: &[u8] = include_bytes!("testdata/tls13_reject_server.bin");

const PSH_ACK: u8 = TcpFlags::PSH | TcpFlags::ACK;
const FIN_ACK: u8 = TcpFlags::FIN | TcpFlags::ACK;
const RST_ACK: u8 = TcpFlags::RST | TcpFlags::ACK;

/// The records of a stream, cut by their headers (test helper only).
fn records(b: &[u8]) -> Vec<&[u8]> {
    let mut v = Vec::new();
    let mut i = 0;
    while i + 5 <= b.len() {
        let l = usize::from(b[i + 3]) << 8 | usize::from(b[i + 4]);
        v.push(&b[i..i + 5 + l]);
        i += 5 + l;
    }
    v
}

/// Records `from..to` of a stream, concatenated: one flight.
fn flight(b: &[u8], from: usize, to: usize) -> Vec<u8> {
    records(b)[from..to.min(records(b).len())].concat()
}

fn tcp(from_client: bool, seq: u32, flags: u8, len: usize) -> TcpInfo {
    let (src_port, dst_port) = if from_client {
        (40000, 443)
    } else {
        (443, 40000)
    };
    TcpInfo {
        src_port,
        dst_port,
        seq,
        ack: 0,
        flags: TcpFlags(flags),
        window: 0,
        mss: None,
        options_len: 0,
        payload_len: len as u32,
        reserved: 0,
    }
}

/// A TCP conversation driving a tracker: handshake done, then data.
struct Conv {
    t: TlsTracker,
    frame: u64,
    /// Next sequence number of [client, server].
    next: [u32; 2],
}

impl Conv {
    fn new(c_isn: u32, s_isn: u32) -> Conv {
        let mut c = Conv {
            t: TlsTracker::new(),
            frame: 0,
            next: [c_isn.wrapping_add(1), s_isn.wrapping_add(1)],
        };
        c.raw(true, c_isn, TcpFlags::SYN, b"");
        c.raw(false, s_isn, TcpFlags::SYN | TcpFlags::ACK, b"");
        c.raw(true, c.next[0], TcpFlags::ACK, b"");
        c
    }

    /// One segment as given; returns its frame.
    fn raw(&mut self, from_client: bool, seq: u32, flags: u8, bytes: &[u8]) -> u64 {
        self.frame += 1;
        let info = tcp(from_client, seq, flags, bytes.len());
        self.t.on_segment(
            from_client,
            self.frame,
            self.frame as i64 * 1000,
            &info,
            bytes,
        );
        self.frame
    }

    /// The next bytes of one side, in one segment.
    fn send(&mut self, from_client: bool, bytes: &[u8]) -> u64 {
        let i = usize::from(!from_client);
        let seq = self.next[i];
        self.next[i] = seq.wrapping_add(bytes.len() as u32);
        self.raw(from_client, seq, PSH_ACK, bytes)
    }

    /// The next bytes of one side in segments of `mss`; returns the frames.
    fn send_chunks(&mut self, from_client: bool, bytes: &[u8], mss: usize) -> Vec<u64> {
        bytes
            .chunks(mss)
            .map(|c| self.send(from_client, c))
            .collect()
    }

    /// Sequence number of stream offset `off` of one side.
    fn seq_at(&self, from_client: bool, off: usize) -> u32 {
        // Valid only before anything beyond `off` was sent with `send`.
        let i = usize::from(!from_client);
        self.next[i].wrapping_add(off as u32)
    }

    fn flag(&mut self, from_client: bool, flags: u8) -> u64 {
        let seq = self.next[usize::from(!from_client)];
        self.raw(from_client, seq, flags, b"")
    }

    fn obs(&self) -> TlsObservation {
        self.t.observation()
    }
}

/// The TLS 1.2 accepted handshake, flight by flight, each flight in
/// segments of `mss`. Returns the conversation and the frame that
/// completed the server's first flight.
fn tls12(mss: usize) -> (Conv, u64) {
    let mut c = Conv::new(1000, 50_000);
    c.send_chunks(true, &flight(C12, 0, 1), mss);
    let f = c.send_chunks(false, &flight(S12, 0, 4), mss);
    c.send_chunks(true, &flight(C12, 1, 4), mss);
    c.send_chunks(false, &flight(S12, 4, 7), mss);
    c.send_chunks(true, &flight(C12, 4, 5), mss);
    c.send_chunks(false, &flight(S12, 7, 9), mss);
    c.send_chunks(true, &flight(C12, 5, 6), mss);
    c.flag(true, FIN_ACK);
    c.flag(false, FIN_ACK);
    (c, *f.last().unwrap())
}

fn assert_tls12_ok(o: &TlsObservation) {
    assert!(!o.not_tls);
    let ch = o.client_hello.as_ref().unwrap();
    assert_eq!(ch.sni.as_deref(), Some("co2br.prod.zpath.net"));
    assert!(
        ch.offered_versions.contains(&"TLS 1.2".to_string()),
        "{ch:?}"
    );
    assert!(ch.cipher_count > 1);
    assert_eq!(o.client_hellos, 1);
    let sh = o.server_hello.as_ref().unwrap();
    assert_eq!(sh.version, "TLS 1.2");
    assert_eq!(sh.version_code, 0x0303);
    assert!(sh.cipher_name.is_some(), "{sh:?}");
    assert_eq!(sh.downgrade_sentinel, None);
    assert!(!o.certificates_encrypted);
    assert_eq!(o.certificates_total, 2);
    assert_eq!(o.certificates.len(), 2);
    let leaf = &o.certificates[0];
    assert_eq!(leaf.subject_cn.as_deref(), Some("co2br.prod.zpath.net"));
    assert_eq!(leaf.issuer_orgs, vec!["Zscaler Inc.".to_string()]);
    assert_eq!(leaf.key_bits, Some(2048));
    let ca = &o.certificates[1];
    assert!(ca.self_signed && ca.is_ca);
    assert_eq!(ca.index, 1);
    assert!(o.undecodable_certificates.is_empty());
    assert!(o.server_hello_done.is_some());
    assert!(o.certificate_request.is_none());
    assert!(o.client_change_cipher_spec.is_some());
    assert!(o.server_change_cipher_spec.is_some());
    assert!(o.client_encrypted_handshake.is_some());
    assert!(o.server_encrypted_handshake.is_some());
    assert!(o.handshake_complete);
    assert!(o.alerts.is_empty());
    assert!(o.likely_encrypted_alert.is_none());
    assert!(o.parse_errors.is_empty(), "{:?}", o.parse_errors);
    for s in [&o.client_stream, &o.server_stream] {
        assert!(s.syn_seen);
        assert_eq!(s.stopped, Some(StopReason::HandshakeOver));
        assert_eq!(s.conflicting_overlaps_total, 0);
        assert!(s.gap.is_none());
    }
}

#[test]
fn tls12_in_order_one_segment_per_flight() {
    let (c, server_flight_frame) = tls12(100_000);
    let o = c.obs();
    assert_tls12_ok(&o);
    // Frames 1-3: TCP handshake; 4: ClientHello; 5: the whole server flight
    // (several records in one segment).
    assert_eq!(o.client_hello.as_ref().unwrap().frame, 4);
    assert_eq!(server_flight_frame, 5);
    assert_eq!(o.server_hello.as_ref().unwrap().frame, 5);
    assert_eq!(o.certificate.unwrap().frame, 5);
    assert_eq!(o.server_hello_done.unwrap().frame, 5);
    assert_eq!(o.client_change_cipher_spec.unwrap().frame, 6);
    assert_eq!(o.server_encrypted_handshake.unwrap().frame, 7);
    assert_eq!(o.client_stream.retransmitted_bytes, 0);
    // The client's close_notify (frame 10) is its last data segment.
    assert_eq!(o.last_client_data_frame, Some(10));
    assert_eq!(o.last_server_data_frame, Some(9));
    assert_eq!(
        o.last_step,
        Some(LastStep {
            step: HandshakeStep::EncryptedHandshake,
            from: Side::Server,
            frame: 7
        })
    );
    // The whole report serialises.
    let json = serde_json::to_string(&o).unwrap();
    assert!(
        json.contains("\"last_step\":{\"step\":\"encrypted-handshake\""),
        "{json}"
    );
}

#[test]
fn final_observation_is_the_running_one() {
    // The flow table takes the tracker's observation by value once it is
    // done; it must say what the running one says (handshake complete
    // included, which is judged from the collected facts).
    let (c, _) = tls12(100_000);
    let running = c.obs();
    assert!(running.handshake_complete);
    assert_eq!(*Box::new(c.t).into_observation(), running);
}

#[test]
fn tls12_mss_and_one_byte_segments() {
    for mss in [1, 7, 536, 1448] {
        let (c, last) = tls12(mss);
        let o = c.obs();
        assert_tls12_ok(&o);
        // The message completes with the flight's last segment (ServerHelloDone
        // is the flight's last record).
        assert_eq!(o.server_hello_done.unwrap().frame, last, "mss {mss}");
        assert_eq!(o, tls12(mss).0.obs());
    }
}

#[test]
fn record_split_across_three_segments() {
    let mut c = Conv::new(1, 2);
    c.send(true, &flight(C12, 0, 1));
    let recs = records(S12);
    c.send(false, recs[0]); // ServerHello
    let cert = recs[1];
    let third = cert.len() / 3;
    let f1 = c.send(false, &cert[..third]);
    c.send(false, &cert[third..2 * third]);
    assert!(c.obs().certificate.is_none());
    let f3 = c.send(false, &cert[2 * third..]);
    let o = c.obs();
    assert_eq!(o.server_hello.unwrap().frame, f1 - 1);
    assert_eq!(o.certificate.unwrap().frame, f3);
    assert_eq!(o.certificates.len(), 2);
    assert_eq!(
        o.last_step.unwrap(),
        LastStep {
            step: HandshakeStep::Certificate,
            from: Side::Server,
            frame: f3
        }
    );
    assert!(o.server_stream.stopped.is_none());
}

#[test]
fn handshake_message_spanning_records() {
    // The server's handshake bytes re-framed into 700-byte records: the
    // Certificate message spans five of them.
    let mut hs = Vec::new();
    for r in records(S12).iter().take(4) {
        hs.extend_from_slice(&r[5..]);
    }
    let mut reframed = Vec::new();
    for part in hs.chunks(700) {
        reframed.extend_from_slice(&[0x16, 3, 3]);
        reframed.extend_from_slice(&(part.len() as u16).to_be_bytes());
        reframed.extend_from_slice(part);
    }
    let mut c = Conv::new(1, 2);
    c.send(true, &flight(C12, 0, 1));
    c.send_chunks(false, &reframed, 1000);
    let o = c.obs();
    assert_eq!(o.certificates.len(), 2);
    assert!(o.server_hello_done.is_some());
    assert!(o.parse_errors.is_empty(), "{:?}", o.parse_errors);
}

#[test]
fn reverse_order_and_duplicates() {
    let mut c = Conv::new(7, 9);
    c.send(true, &flight(C12, 0, 1));
    let sf = flight(S12, 0, 4);
    let chunks: Vec<(usize, &[u8])> = sf.chunks(300).enumerate().collect();
    let base = c.seq_at(false, 0);
    let mut frames = Vec::new();
    for (i, ch) in chunks.iter().rev() {
        frames.push(c.raw(false, base.wrapping_add((i * 300) as u32), PSH_ACK, ch));
    }
    let o = c.obs();
    // Completed by the last segment to arrive: the flight's first chunk.
    assert_eq!(o.server_hello_done.unwrap().frame, *frames.last().unwrap());
    assert_eq!(o.certificate.unwrap().frame, *frames.last().unwrap());
    assert_eq!(o.certificates.len(), 2);
    assert!(o.server_stream.gap.is_none());
    // Everything again (retransmissions): identical, so no conflict.
    for (i, ch) in &chunks {
        c.raw(false, base.wrapping_add((i * 300) as u32), PSH_ACK, ch);
    }
    let o2 = c.obs();
    assert_eq!(o2.server_stream.retransmitted_bytes, sf.len() as u64);
    assert_eq!(o2.server_stream.conflicting_overlaps_total, 0);
    assert_eq!(o2.certificates, o.certificates);
}

#[test]
fn overlapping_retransmission_with_different_bytes() {
    let mut c = Conv::new(100, 200);
    c.send(true, &flight(C12, 0, 1));
    let sf = flight(S12, 0, 4);
    let base = c.seq_at(false, 0);
    c.raw(false, base, PSH_ACK, &sf[..1000]);
    // A "retransmission" of 500..1500 whose first 500 bytes differ from
    // what was kept (an injector's copy): the first copy wins.
    let mut forged = sf[500..1500].to_vec();
    for b in &mut forged[100..150] {
        *b ^= 0x55;
    }
    let f = c.raw(false, base.wrapping_add(500), PSH_ACK, &forged);
    c.raw(false, base.wrapping_add(1500), PSH_ACK, &sf[1500..]);
    let o = c.obs();
    let s = &o.server_stream;
    assert_eq!(s.conflicting_overlaps_total, 1);
    assert_eq!(
        s.conflicting_overlaps[0],
        OverlapConflict {
            frame: f,
            offset: 600,
            len: 50
        }
    );
    assert_eq!(s.retransmitted_bytes, 500);
    assert_eq!(o.certificates.len(), 2);
    assert_eq!(
        o.certificates[0].subject_cn.as_deref(),
        Some("co2br.prod.zpath.net")
    );
}

#[test]
fn sequence_numbers_wrap_around() {
    // Both streams cross 2^32 inside the handshake.
    let (mut c, _) = (Conv::new(u32::MAX - 50, u32::MAX - 1000), 0);
    c.send_chunks(true, &flight(C12, 0, 1), 100);
    c.send_chunks(false, &flight(S12, 0, 4), 500);
    c.send_chunks(true, &flight(C12, 1, 4), 100);
    c.send_chunks(false, &flight(S12, 4, 7), 100);
    let o = c.obs();
    assert!(o.handshake_complete);
    assert_eq!(o.certificates.len(), 2);
    assert!(o.client_stream.gap.is_none() && o.server_stream.gap.is_none());
}

#[test]
fn missing_segment_is_a_gap() {
    let mut c = Conv::new(1, 2);
    c.send(true, &flight(C12, 0, 1));
    let sf = flight(S12, 0, 4);
    let base = c.seq_at(false, 0);
    c.raw(false, base, PSH_ACK, &sf[..1000]);
    // 1000..2000 never arrives.
    let after = c.raw(false, base.wrapping_add(2000), PSH_ACK, &sf[2000..]);
    c.raw(true, c.seq_at(true, 0), RST_ACK, b"");
    let o = c.obs();
    assert!(o.server_hello.is_some());
    assert!(o.certificate.is_none());
    assert_eq!(o.last_step.unwrap().step, HandshakeStep::ServerHello);
    let s = &o.server_stream;
    assert_eq!(
        s.gap,
        Some(Gap {
            offset: 1000,
            missing_bytes: Some(1000),
            next_frame: Some(after)
        })
    );
    assert_eq!(s.stopped, None);
    // The Certificate record started at 70 and is waiting.
    assert_eq!(s.unparsed_bytes, 1000 - 70);
}

#[test]
fn snapshot_cut_segment_is_a_gap() {
    let mut c = Conv::new(1, 2);
    c.send(true, &flight(C12, 0, 1));
    let sf = flight(S12, 0, 4);
    let base = c.seq_at(false, 0);
    // Captured with a 200-byte payload snapshot: 1448 on the wire.
    c.frame += 1;
    let info = tcp(false, base, PSH_ACK, 1448);
    c.t.on_segment(false, c.frame, 0, &info, &sf[..200]);
    c.frame += 1;
    let info = tcp(false, base.wrapping_add(1448), PSH_ACK, 1448);
    c.t.on_segment(false, c.frame, 0, &info, &sf[1448..1648]);
    let o = c.obs();
    assert_eq!(o.server_stream.truncated_segments, 2);
    assert_eq!(o.server_stream.gap.unwrap().offset, 200);
    assert_eq!(o.server_stream.gap.unwrap().missing_bytes, Some(1248));
    assert!(o.server_hello.is_some());
}

#[test]
fn http_is_not_tls_and_costs_nothing_after() {
    let mut c = Conv::new(1, 2);
    let f = c.send(true, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let o = c.obs();
    assert!(o.not_tls);
    let n = o.non_tls.unwrap();
    assert_eq!((n.from, n.frame), (Side::Client, f));
    assert_eq!(
        n.preview,
        "GET / HTTP/1.1\\x0d\\x0aHost: x\\x0d\\x0a\\x0d\\x0a"
    );
    assert_eq!(o.client_stream.stopped, Some(StopReason::NotTls));
    assert_eq!(o.server_stream.stopped, Some(StopReason::NotTls));
    assert!(!c.t.active);
    for d in &c.t.dirs {
        assert_eq!(d.reasm.held(), 0);
    }
    // Later segments: no buffering, only the data frames move.
    let last = c.send(false, &[0x16; 5000]);
    assert_eq!(c.t.dirs[1].reasm.held(), 0);
    assert_eq!(c.obs().last_server_data_frame, Some(last));
}

#[test]
fn server_answering_in_another_protocol() {
    let mut c = Conv::new(1, 2);
    c.send(true, &flight(C12, 0, 1));
    c.send(false, b"HTTP/1.1 403 Forbidden\r\n\r\n");
    let o = c.obs();
    assert!(o.not_tls);
    assert_eq!(o.non_tls.as_ref().unwrap().from, Side::Server);
    assert!(o.non_tls.unwrap().preview.starts_with("HTTP/1.1 403"));
    assert!(o.client_hello.is_some());
    assert_eq!(o.last_step.unwrap().step, HandshakeStep::ClientHello);
}

#[test]
fn client_hello_answered_by_nothing_then_reset() {
    let mut c = Conv::new(1, 2);
    let ch = c.send(true, &flight(C12, 0, 1));
    // Retransmitted once, then the server side resets.
    let seq = c
        .seq_at(true, 0)
        .wrapping_sub(flight(C12, 0, 1).len() as u32);
    let again = c.raw(true, seq, PSH_ACK, &flight(C12, 0, 1));
    c.flag(false, RST_ACK);
    let o = c.obs();
    assert_eq!(o.client_hello.as_ref().unwrap().frame, ch);
    assert!(o.server_hello.is_none());
    assert_eq!(
        o.last_step,
        Some(LastStep {
            step: HandshakeStep::ClientHello,
            from: Side::Client,
            frame: ch
        })
    );
    assert_eq!(o.last_client_data_frame, Some(again));
    assert_eq!(o.last_server_data_frame, None);
    assert!(!o.handshake_complete);
    assert_eq!(o.client_stream.retransmitted_bytes, 212 + 5);
}

#[test]
fn tls12_rejected_with_alert_in_clear() {
    let mut c = Conv::new(1, 2);
    c.send(true, &flight(C12R, 0, 1));
    let sf = c.send(false, &flight(S12R, 0, 4));
    let a = c.send(true, &flight(C12R, 1, 2));
    c.flag(true, FIN_ACK);
    let o = c.obs();
    assert_eq!(
        o.alerts,
        vec![AlertInfo {
            frame: a,
            from: Side::Client,
            level: Some(2),
            description: Some(48),
            description_name: Some("unknown_ca".to_string()),
            encrypted: false,
            ttl: None,
            ip_id: None,
        }]
    );
    assert_eq!(o.client_stream.stopped, Some(StopReason::Alert));
    assert_eq!(o.last_step.unwrap().step, HandshakeStep::ServerHelloDone);
    assert_eq!(o.last_step.unwrap().frame, sf);
    assert!(!o.handshake_complete);
    // The inspecting proxy's certificate: issuer Safemarch, valid from 2036.
    let leaf = &o.certificates[0];
    assert_eq!(leaf.issuer_orgs, vec!["Safemarch Inc".to_string()]);
    assert_eq!(leaf.not_before, 2_082_758_400);
    assert_eq!(leaf.key, "EC prime256v1");
    assert_eq!(o.certificates[1].key, "ed25519");
    let json = serde_json::to_string(&o).unwrap();
    assert!(
        json.contains("\"description_name\":\"unknown_ca\""),
        "{json}"
    );
}

#[test]
fn tls13_certificates_are_encrypted() {
    let mut c = Conv::new(1, 2);
    c.send(true, &flight(C13, 0, 1));
    let sf = c.send_chunks(false, &flight(S13, 0, 6), 1448);
    let fin = c.send(true, &flight(C13, 1, 3));
    c.send(true, &flight(C13, 3, 4));
    c.send(false, &flight(S13, 6, 9));
    // The client's encrypted close_notify is also 19 bytes, then FIN: not
    // the first encrypted record, so not a rejection.
    c.send(true, &flight(C13, 4, 5));
    c.flag(true, FIN_ACK);
    let o = c.obs();
    let sh = o.server_hello.as_ref().unwrap();
    assert_eq!(sh.version, "TLS 1.3");
    assert_eq!(sh.version_code, 0x0304);
    assert!(sh.cipher_name.unwrap().contains("AES"), "{sh:?}");
    assert!(
        o.client_hello
            .unwrap()
            .offered_versions
            .contains(&"TLS 1.3".to_string())
    );
    assert!(o.certificates_encrypted);
    assert!(o.certificates.is_empty() && o.certificate.is_none());
    assert_eq!(o.server_encrypted_handshake.unwrap().frame, sf[0]);
    assert_eq!(o.client_encrypted_handshake.unwrap().frame, fin);
    assert!(o.handshake_complete);
    assert!(o.likely_encrypted_alert.is_none());
    assert!(o.alerts.is_empty());
    assert_eq!(o.client_stream.stopped, Some(StopReason::HandshakeOver));
}

#[test]
fn tls13_rejected_by_openssl_alert_in_clear() {
    let mut c = Conv::new(1, 2);
    c.send(true, &flight(C13R, 0, 1));
    let sf = c.send(false, &flight(S13R, 0, 6));
    let a = c.send(true, &flight(C13R, 1, 2));
    c.flag(true, RST_ACK);
    let o = c.obs();
    assert!(o.certificates_encrypted);
    assert_eq!(o.alerts.len(), 1);
    assert_eq!(o.alerts[0].frame, a);
    assert_eq!(o.alerts[0].description_name.as_deref(), Some("unknown_ca"));
    assert!(!o.handshake_complete);
    assert_eq!(
        o.last_step,
        Some(LastStep {
            step: HandshakeStep::EncryptedHandshake,
            from: Side::Server,
            frame: sf
        })
    );
}

/// The TLS 1.3 rejection as most stacks send it: one encrypted 19-byte
/// record, then the connection closes.
fn encrypted_alert_record() -> Vec<u8> {
    let mut r = vec![0x17, 3, 3, 0, 19];
    r.extend((0..19u8).map(|i| i.wrapping_mul(37)));
    r
}

#[test]
fn tls13_encrypted_alert_heuristic() {
    for close in [FIN_ACK, RST_ACK] {
        let mut c = Conv::new(1, 2);
        c.send(true, &flight(C13, 0, 1));
        c.send(false, &flight(S13, 0, 6));
        c.send(true, &flight(C13, 1, 2)); // compatibility CCS
        let a = c.send(true, &encrypted_alert_record());
        assert!(c.obs().likely_encrypted_alert.is_none());
        c.flag(true, close);
        let o = c.obs();
        assert_eq!(o.likely_encrypted_alert.unwrap().frame, a);
        assert!(!o.handshake_complete);
    }
    // FIN in the same segment as the record.
    let mut c = Conv::new(1, 2);
    c.send(true, &flight(C13, 0, 1));
    c.send(false, &flight(S13, 0, 6));
    let seq = c.seq_at(true, 0);
    let a = c.raw(
        true,
        seq,
        FIN_ACK | TcpFlags::PSH,
        &encrypted_alert_record(),
    );
    assert_eq!(c.obs().likely_encrypted_alert.unwrap().frame, a);
    // More client data after it: not an alert after all.
    let mut c = Conv::new(1, 2);
    c.send(true, &flight(C13, 0, 1));
    c.send(false, &flight(S13, 0, 6));
    c.send(true, &encrypted_alert_record());
    c.send(true, &flight(C13, 3, 4));
    c.flag(true, FIN_ACK);
    assert!(c.obs().likely_encrypted_alert.is_none());
    // Before the server's encrypted flight: no.
    let mut c = Conv::new(1, 2);
    c.send(true, &flight(C13, 0, 1));
    c.send(false, &flight(S13, 0, 1));
    c.send(true, &encrypted_alert_record());
    c.flag(true, FIN_ACK);
    assert!(c.obs().likely_encrypted_alert.is_none());
}

/// A TLS 1.2 ServerHello record with the given random.
fn server_hello(random: [u8; 32], extensions: &[u8]) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&random);
    body.push(0); // session id
    body.extend_from_slice(&[0xc0, 0x2f, 0]); // ECDHE-RSA-AES128-GCM-SHA256, no compression
    body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    body.extend_from_slice(extensions);
    let mut hs = vec![2, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend(body);
    let mut rec = vec![0x16, 3, 3];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend(hs);
    rec
}

#[test]
fn downgrade_sentinel_in_server_random() {
    for (last, want) in [
        (1u8, Some(DowngradeSentinel::Tls12)),
        (0, Some(DowngradeSentinel::Tls11OrBelow)),
        (2, None),
    ] {
        let mut random = [0x42u8; 32];
        random[24..31].copy_from_slice(b"DOWNGRD");
        random[31] = last;
        let mut c = Conv::new(1, 2);
        c.send(true, &flight(C13, 0, 1)); // offers TLS 1.3
        let f = c.send(false, &server_hello(random, &[]));
        let o = c.obs();
        let sh = o.server_hello.unwrap();
        assert_eq!(sh.downgrade_sentinel, want);
        assert_eq!(sh.frame, f);
        assert_eq!(sh.version, "TLS 1.2");
        assert_eq!(sh.cipher_suite, 0xc02f);
        assert_eq!(
            sh.cipher_name,
            Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
        );
        assert!(!o.certificates_encrypted);
    }
}

#[test]
fn hello_retry_request_is_not_the_server_hello() {
    let hrr_random = [
        0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8,
        0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8,
        0x33, 0x9c,
    ];
    let mut c = Conv::new(1, 2);
    c.send(true, &flight(C13, 0, 1));
    // supported_versions: TLS 1.3
    let f = c.send(false, &server_hello(hrr_random, &[0, 0x2b, 0, 2, 3, 4]));
    c.send(true, &flight(C13, 0, 1));
    let o = c.obs();
    assert_eq!(o.hello_retry_request.unwrap().frame, f);
    assert!(o.server_hello.is_none());
    assert_eq!(o.client_hellos, 2);
    // The real ServerHello then selects TLS 1.3.
    c.send(false, &server_hello([7; 32], &[0, 0x2b, 0, 2, 3, 4]));
    let o = c.obs();
    assert_eq!(o.server_hello.unwrap().version, "TLS 1.3");
    assert!(o.certificates_encrypted);
}

#[test]
fn undecodable_certificate_and_client_certificate_request() {
    // Certificate message: one garbage "certificate" and one real one.
    let real = include_bytes!("testdata/zscaler_leaf.der");
    let garbage = [0x30, 0x82, 0x01, 0x00, 0xde, 0xad];
    let mut list = Vec::new();
    for c in [&garbage[..], &real[..]] {
        list.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
        list.extend_from_slice(c);
    }
    let mut body = (list.len() as u32).to_be_bytes()[1..].to_vec();
    body.extend(list);
    let mut hs = vec![11];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    // CertificateRequest: one type (rsa_sign), one sig alg, no CA names.
    hs.extend_from_slice(&[13, 0, 0, 8, 1, 1, 0, 2, 4, 1, 0, 0]);
    let mut rec = vec![0x16, 3, 3];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend(hs);
    let mut c = Conv::new(1, 2);
    c.send(true, &flight(C12, 0, 1));
    c.send(false, &server_hello([1; 32], &[]));
    let f = c.send(false, &rec);
    let o = c.obs();
    assert_eq!(o.certificates_total, 2);
    assert_eq!(o.undecodable_certificates.len(), 1);
    assert_eq!(o.undecodable_certificates[0].index, 0);
    assert!(
        o.undecodable_certificates[0]
            .error
            .starts_with("undecodable certificate")
    );
    assert_eq!(o.certificates[0].index, 1);
    assert_eq!(o.certificate_request.unwrap().frame, f);
    assert_eq!(o.last_step.unwrap().step, HandshakeStep::CertificateRequest);
}

#[test]
fn mid_stream_capture() {
    // No SYN seen: application data records from the middle of a session.
    let mut t = TlsTracker::new();
    let app = flight(C12, 4, 5);
    t.on_segment(true, 1, 0, &tcp(true, 777, PSH_ACK, app.len()), &app);
    let o = t.observation();
    assert!(!o.client_stream.syn_seen);
    assert_eq!(o.client_application_data.unwrap().frame, 1);
    // Starting inside a record: nothing can be said, and it is not "not TLS".
    let mut t = TlsTracker::new();
    t.on_segment(false, 1, 0, &tcp(false, 5, PSH_ACK, 100), &S12[1000..1100]);
    let o = t.observation();
    assert!(!o.not_tls);
    assert_eq!(o.server_stream.stopped, Some(StopReason::MidStream));
}

#[test]
fn finished_handshake_costs_nothing_per_segment() {
    let (mut c, _) = tls12(1448);
    assert!(!c.t.active);
    for d in &c.t.dirs {
        assert_eq!(d.reasm.held(), 0);
    }
    let before = c.obs();
    for _ in 0..100 {
        c.send(false, &[0x17; 1400]);
    }
    let after = c.obs();
    assert_eq!(after.server_stream, before.server_stream);
    assert_eq!(after.alerts, before.alerts);
}

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn garbage_never_panics_and_memory_stays_bounded() {
    let fixtures = [C12, S12, C13, S13, C12R, S12R];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..300 {
        let mut t = TlsTracker::new();
        let isn = [rng.next() as u32, rng.next() as u32];
        let mut next = [isn[0].wrapping_add(1), isn[1].wrapping_add(1)];
        if round % 3 != 0 {
            t.on_segment(true, 0, 0, &tcp(true, isn[0], TcpFlags::SYN, 0), &[]);
            let sa = tcp(false, isn[1], TcpFlags::SYN | TcpFlags::ACK, 0);
            t.on_segment(false, 0, 0, &sa, &[]);
        }
        for frame in 1..200u64 {
            let from_client = rng.below(2) == 0;
            let i = usize::from(!from_client);
            let len = rng.below(1600) as usize;
            // Mostly real TLS bytes (mutated at times), sometimes noise.
            let src = fixtures[rng.below(fixtures.len() as u64) as usize];
            let mut bytes: Vec<u8> = if rng.below(4) == 0 {
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                let at = rng.below(src.len() as u64) as usize;
                src[at..(at + len).min(src.len())].to_vec()
            };
            if rng.below(5) == 0 && !bytes.is_empty() {
                let k = rng.below(bytes.len() as u64) as usize;
                bytes[k] = rng.next() as u8;
            }
            let seq = match rng.below(6) {
                0 => rng.next() as u32,
                1 => next[i].wrapping_sub(rng.below(3000) as u32),
                2 => next[i].wrapping_add(rng.below(3000) as u32),
                _ => next[i],
            };
            next[i] = seq.wrapping_add(bytes.len() as u32);
            let flags = match rng.below(20) {
                0 => FIN_ACK,
                1 => RST_ACK,
                2 => TcpFlags::SYN,
                _ => PSH_ACK,
            };
            // Sometimes claim more bytes than captured (snapshot cut).
            let wire = bytes.len() + if rng.below(8) == 0 { 100 } else { 0 };
            let info = tcp(from_client, seq, flags, wire);
            t.on_segment(from_client, frame, frame as i64, &info, &bytes);
            for d in &t.dirs {
                assert!(d.reasm.held() <= reassembly::MAX_STREAM + reassembly::MAX_PENDING_BYTES);
                assert!(d.parser.held() <= reassembly::MAX_STREAM);
            }
        }
        let o = t.observation();
        serde_json::to_string(&o).unwrap();
    }
}

#[test]
fn strings_are_bounded() {
    assert_eq!(bounded("abc".to_string(), 10), "abc");
    let long = "é".repeat(300);
    let b = bounded(long, 256);
    assert!(b.len() <= 256 && b.ends_with("..."));
}
