//! TLS records and handshake messages of one direction, read with tls-parser
//! from the reassembled bytes, turned into the facts of a [`TlsObservation`].
//!
//! Records are read as soon as they are complete; handshake messages are
//! collected across records (a Certificate message may span several) and
//! parsed once whole. The frame recorded for a message is the frame of the
//! segment whose arrival completed it.

use super::reassembly::MAX_STREAM;
use super::shared::ByBytes;
use super::{
    AlertInfo, CertSummary, ClientCertificate, ClientHelloInfo, DowngradeSentinel, FrameRef,
    HandshakeStep, LastStep, NonTlsBytes, ServerHelloInfo, Side, StopReason, TlsObservation,
    UndecodableCert, bounded, cert,
};
use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;
use tls_parser::{
    MAX_RECORD_LEN, TlsAlertDescription, TlsAlertSeverity, TlsMessage, TlsMessageHandshake,
    TlsRawRecord, TlsRecordType, TlsServerHelloContents, parse_tls_message_handshake,
    parse_tls_raw_record, parse_tls_record_header, parse_tls_record_with_header,
};

/// Certificates decoded per chain; the chain length is always counted.
const MAX_CERTS: usize = 10;
/// Alerts and parse errors kept.
const MAX_ALERTS: usize = 8;
const MAX_ERRORS: usize = 4;
/// SNI, ALPN and such: cut beyond this.
const MAX_NAME: usize = 256;
const MAX_ALPN: usize = 4;
/// Bytes shown of a stream that is not TLS.
const PREVIEW: usize = 32;

/// Length of a TLS 1.3 encrypted alert record: 2-byte alert, 1-byte inner
/// content type, 16-byte AEAD tag.
pub(super) const ENCRYPTED_ALERT_LEN: u16 = 19;
/// Smallest encrypted Finished of TLS 1.3: 4-byte header, 32-byte
/// verify_data (SHA-256), inner type and 16-byte tag.
const MIN_ENCRYPTED_FINISHED_LEN: u16 = 53;

/// The random of a HelloRetryRequest (RFC 8446 §4.1.3): SHA-256("HelloRetryRequest").
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Where parsing of one direction stands.
#[derive(Clone, Debug, Default)]
pub(super) struct RecordParser {
    /// Stream offset of the next record.
    pub pos: usize,
    /// Stream offset of the first record: 0, or the end of an HTTP CONNECT
    /// head that precedes the tunnel's TLS.
    pub start: usize,
    /// Handshake bytes of a message not yet complete (it continues in the
    /// next record).
    hs: Vec<u8>,
    /// This side sent ChangeCipherSpec under TLS ≤ 1.2: its records are
    /// encrypted from here on.
    ccs: bool,
    pub stopped: Option<StopReason>,
    /// Bytes left after the last complete record when parsing stopped.
    pub unparsed_at_stop: u64,
    /// Keep framing the encrypted records after the handshake instead of
    /// stopping ([`read_stream`]: a probe's bytes, where how far the
    /// server's encrypted flight got is the question).
    follow_encrypted: bool,
}

impl RecordParser {
    pub fn stop(&mut self, why: StopReason) {
        if self.stopped.is_none() {
            self.stopped = Some(why);
        }
    }

    /// This side's records are encrypted from here on.
    fn handshake_over(&mut self) {
        if !self.follow_encrypted {
            self.stop(StopReason::HandshakeOver);
        }
    }

    pub fn release(&mut self) {
        self.hs = Vec::new();
    }

    /// Bytes held in memory (for the bound test).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.hs.capacity()
    }
}

/// What both directions learn, shared.
#[derive(Clone, Debug, Default)]
pub(super) struct State {
    /// Boxed so that the finished observation leaves the tracker without
    /// copying (it is most of a tracker's size, and every TLS connection
    /// of a capture hands one over).
    pub obs: Box<TlsObservation>,
    /// The ServerHello selected TLS 1.3: records after it are encrypted.
    pub tls13: bool,
    /// TLS 1.3: the client's first encrypted record was alert-sized; its
    /// frame and the stream offset where it ends (see `TlsTracker`).
    pub alert_candidate: Option<(FrameRef, u64)>,
    /// TLS 1.3: length of the client's first encrypted record.
    client_first_encrypted_len: Option<u16>,
    /// IP TTL and IP ID of the segment being read (see `TlsTracker::ip_fields`).
    pub seg_ip: Option<(u8, Option<u16>)>,
}

impl State {
    pub fn handshake_complete(&self) -> bool {
        let o = &self.obs;
        if self.tls13 {
            o.server_encrypted_handshake.is_some()
                && self
                    .client_first_encrypted_len
                    .is_some_and(|l| l >= MIN_ENCRYPTED_FINISHED_LEN)
        } else {
            (o.client_encrypted_handshake.is_some() && o.server_encrypted_handshake.is_some())
                || (o.client_application_data.is_some() && o.server_application_data.is_some())
        }
    }

    fn step(&mut self, step: HandshakeStep, from: Side, at: FrameRef) {
        self.obs.last_step = Some(LastStep {
            step,
            from,
            frame: at.frame,
        });
    }

    fn error(&mut self, what: String) {
        if self.obs.parse_errors.len() < MAX_ERRORS {
            self.obs.parse_errors.push(bounded(what, MAX_NAME));
        }
    }
}

/// Reads every complete record of `data` (the contiguous stream of `side`)
/// from `p.pos` on; `at` is the segment that just arrived.
pub(super) fn parse(
    side: Side,
    data: &[u8],
    syn_seen: bool,
    p: &mut RecordParser,
    st: &mut State,
    at: FrameRef,
) {
    while p.stopped.is_none() {
        let rest = data.get(p.pos..).unwrap_or_default();
        let Some(&first) = rest.first() else { return };
        // The content type is checked by hand on the first byte so that a
        // stream that is not TLS is recognised without waiting for a
        // 5-byte header (and without waiting for a "length" read from text).
        if !(0x14..=0x18).contains(&first) {
            bad_header(side, data, syn_seen, p, st, at);
            return;
        }
        let Ok((_, hdr)) = parse_tls_record_header(rest) else {
            return; // fewer than 5 bytes
        };
        if hdr.version.0 >> 8 != 3 || hdr.len > MAX_RECORD_LEN {
            bad_header(side, data, syn_seen, p, st, at);
            return;
        }
        let total = 5 + usize::from(hdr.len);
        if rest.len() < total {
            if p.pos + total > MAX_STREAM {
                p.stop(StopReason::TooLarge);
            }
            return;
        }
        match parse_tls_raw_record(rest) {
            Ok((_, rec)) => {
                p.pos += total;
                record(side, &rec, p, st, at);
            }
            Err(_) => {
                st.error(format!("{side:?} record at offset {}: unreadable", p.pos));
                p.stop(StopReason::Malformed);
            }
        }
    }
}

/// Bytes where a record header should be and is not.
fn bad_header(
    side: Side,
    data: &[u8],
    syn_seen: bool,
    p: &mut RecordParser,
    st: &mut State,
    at: FrameRef,
) {
    if p.pos > p.start {
        st.error(format!(
            "{side:?} stream at offset {}: not a TLS record header",
            p.pos
        ));
        p.stop(StopReason::Malformed);
    } else if syn_seen {
        st.obs.not_tls = true;
        if st.obs.non_tls.is_none() {
            st.obs.non_tls = Some(NonTlsBytes {
                from: side,
                frame: at.frame,
                preview: preview(data.get(p.start..).unwrap_or_default()),
            });
        }
        p.stop(StopReason::NotTls);
    } else {
        p.stop(StopReason::MidStream);
    }
}

pub(super) fn preview(data: &[u8]) -> String {
    let mut s = String::new();
    for &b in data.iter().take(PREVIEW) {
        if b == b' ' || b.is_ascii_graphic() {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

fn record(side: Side, rec: &TlsRawRecord<'_>, p: &mut RecordParser, st: &mut State, at: FrameRef) {
    match rec.hdr.record_type {
        TlsRecordType::ChangeCipherSpec => {
            let first = match side {
                Side::Client => &mut st.obs.client_change_cipher_spec,
                Side::Server => &mut st.obs.server_change_cipher_spec,
            };
            first.get_or_insert(at);
            st.step(HandshakeStep::ChangeCipherSpec, side, at);
            // Under TLS 1.3 it is only a middlebox-compatibility record.
            if !st.tls13 {
                p.ccs = true;
            }
        }
        TlsRecordType::Alert => alert(side, rec, p, st, at),
        TlsRecordType::Handshake if p.ccs => {
            // The Finished, encrypted: this side's handshake is done.
            encrypted_handshake(side, st, at);
            p.handshake_over();
        }
        TlsRecordType::Handshake => handshake_fragment(side, rec.data, p, st, at),
        TlsRecordType::ApplicationData => {
            application_data(side, rec.hdr.len, p, st, at);
            p.handshake_over();
        }
        _ => {} // heartbeat
    }
}

fn encrypted_handshake(side: Side, st: &mut State, at: FrameRef) {
    let first = match side {
        Side::Client => &mut st.obs.client_encrypted_handshake,
        Side::Server => &mut st.obs.server_encrypted_handshake,
    };
    first.get_or_insert(at);
    st.step(HandshakeStep::EncryptedHandshake, side, at);
}

fn application_data(side: Side, len: u16, p: &RecordParser, st: &mut State, at: FrameRef) {
    if st.tls13 {
        // TLS 1.3 hides handshake records as application data: the first
        // one of each side is its encrypted handshake.
        encrypted_handshake(side, st, at);
        if side == Side::Client {
            st.client_first_encrypted_len = Some(len);
            if len == ENCRYPTED_ALERT_LEN && st.obs.server_encrypted_handshake.is_some() {
                st.alert_candidate = Some((at, p.pos as u64));
            }
        }
        return;
    }
    let first = match side {
        Side::Client => &mut st.obs.client_application_data,
        Side::Server => &mut st.obs.server_application_data,
    };
    first.get_or_insert(at);
    st.step(HandshakeStep::ApplicationData, side, at);
}

fn alert(side: Side, rec: &TlsRawRecord<'_>, p: &mut RecordParser, st: &mut State, at: FrameRef) {
    let push = |st: &mut State, a: AlertInfo| {
        if st.obs.alerts.len() < MAX_ALERTS {
            st.obs.alerts.push(a);
        }
    };
    let (ttl, ip_id) = match st.seg_ip {
        Some((t, id)) => (Some(t), id),
        None => (None, None),
    };
    let encrypted_alert = AlertInfo {
        frame: at.frame,
        from: side,
        level: None,
        description: None,
        description_name: None,
        encrypted: true,
        ttl,
        ip_id,
    };
    // After ChangeCipherSpec (TLS ≤ 1.2) an alert record is encrypted; a
    // clear alert is 2 bytes (several may share a record).
    if p.ccs || rec.data.is_empty() || !rec.data.len().is_multiple_of(2) {
        push(st, encrypted_alert);
        p.stop(StopReason::Alert);
        return;
    }
    match parse_tls_record_with_header(rec.data, &rec.hdr) {
        Ok((_, msgs)) => {
            let mut ends = false;
            for m in msgs {
                if let TlsMessage::Alert(a) = m {
                    ends |= a.severity == TlsAlertSeverity::Fatal
                        || a.code == TlsAlertDescription::CloseNotify;
                    push(
                        st,
                        AlertInfo {
                            frame: at.frame,
                            from: side,
                            level: Some(a.severity.0),
                            description: Some(a.code.0),
                            description_name: alert_name(a.code),
                            encrypted: false,
                            ttl,
                            ip_id,
                        },
                    );
                }
            }
            if ends {
                p.stop(StopReason::Alert);
            }
        }
        Err(_) => {
            push(st, encrypted_alert);
            p.stop(StopReason::Alert);
        }
    }
}

/// `unknown_ca` for `UnknownCa`: the names of RFC 8446 from tls-parser's.
pub(crate) fn alert_name(code: TlsAlertDescription) -> Option<String> {
    let camel = code.to_string();
    if !camel.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None; // "TlsAlertDescription(129 / 0x81)": unknown
    }
    let mut s = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    Some(s)
}

fn handshake_fragment(side: Side, data: &[u8], p: &mut RecordParser, st: &mut State, at: FrameRef) {
    // Messages are read straight from the record; only a message that
    // continues in the next record is copied (most records hold whole
    // messages: no copy, no allocation).
    let (used, too_large) = if p.hs.is_empty() {
        let (used, too_large) = messages(side, data, st, at);
        p.hs.extend_from_slice(&data[used..]);
        (0, too_large)
    } else {
        p.hs.extend_from_slice(data);
        let hs = std::mem::take(&mut p.hs);
        let result = messages(side, &hs, st, at);
        p.hs = hs;
        result
    };
    p.hs.drain(..used);
    if too_large {
        p.stop(StopReason::TooLarge);
    }
}

/// Reads the whole handshake messages at the start of `bytes`: how many
/// bytes they took, and whether a message announced is larger than the
/// stream window.
fn messages(side: Side, bytes: &[u8], st: &mut State, at: FrameRef) -> (usize, bool) {
    let mut used = 0;
    loop {
        let rest = &bytes[used..];
        let Some((_, len)) = message_header(rest) else {
            return (used, false);
        };
        if len > MAX_STREAM {
            return (used, true);
        }
        if rest.len() < 4 + len {
            return (used, false);
        }
        let msg = &rest[..4 + len];
        let read = match (msg[0], side) {
            (1, Side::Client) => client_hello_message(&msg[4..], st, at),
            (11, Side::Server) => server_certificate(msg, st, at),
            _ => match parse_tls_message_handshake(msg) {
                Ok((_, TlsMessage::Handshake(m))) => {
                    message(side, &m, st, at);
                    true
                }
                _ => false,
            },
        };
        if !read {
            st.error(format!(
                "{side:?} handshake message type {} ({len} bytes): unreadable",
                msg[0]
            ));
        }
        used += 4 + len;
    }
}

/// A handshake message header: type and body length. Message framing
/// (type: u8, length: u24) is read by hand: tls-parser's streaming parsers
/// answer "incomplete" both for a message cut by a record boundary and for a
/// malformed one, and only the length says whether to wait for the next
/// record or to skip the message.
fn message_header(bytes: &[u8]) -> Option<(u8, usize)> {
    let &[t, a, b, c, ..] = bytes else {
        return None;
    };
    Some((
        t,
        usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c),
    ))
}

/// The step a handshake message type stands for, from its header alone (a
/// message whose body has not all arrived).
fn step_of_type(handshake_type: u8) -> HandshakeStep {
    use HandshakeStep as S;
    match handshake_type {
        1 => S::ClientHello,
        2 => S::ServerHello,
        4 => S::NewSessionTicket,
        11 => S::Certificate,
        12 => S::ServerKeyExchange,
        13 => S::CertificateRequest,
        14 => S::ServerHelloDone,
        15 => S::CertificateVerify,
        16 => S::ClientKeyExchange,
        22 => S::CertificateStatus,
        _ => S::OtherHandshake,
    }
}

/// What one side's bytes show when read from their first byte
/// ([`super::read_stream`]): the reader's facts, and where the bytes stop.
pub(super) fn read_stream(side: Side, data: &[u8]) -> (State, RecordParser, Option<CutShort>) {
    let mut p = RecordParser {
        follow_encrypted: true,
        ..RecordParser::default()
    };
    let mut st = State::default();
    // A socket's bytes start at the stream's first byte: syn_seen.
    parse(
        side,
        data,
        true,
        &mut p,
        &mut st,
        FrameRef { frame: 0, ts_ns: 0 },
    );
    let cut = cut_short(data, &p, &st);
    (st, p, cut)
}

/// The record or handshake message the bytes end inside of, when they end
/// after its header: its step, and whether the message itself is whole
/// (it may be, in a record cut after it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CutShort {
    pub step: HandshakeStep,
    pub message_complete: bool,
}

/// Describes the bytes after the last whole record (`parse` waits for whole
/// records; these are what a reset or a black hole cut short): the record's
/// header, and the headers of the handshake messages not yet read (carried
/// over from whole records, or in the cut record).
fn cut_short(data: &[u8], p: &RecordParser, st: &State) -> Option<CutShort> {
    // Stopped for another reason than a record too large to wait for: the
    // bytes after it are not this side's handshake (an alert ended it, or
    // they are not TLS).
    if !matches!(p.stopped, None | Some(StopReason::TooLarge)) {
        return None;
    }
    let rest = data.get(p.pos..).unwrap_or_default();
    let mut hs: Cow<'_, [u8]> = Cow::Borrowed(&p.hs);
    if let Ok((body, hdr)) = parse_tls_record_header(rest) {
        let body = &body[..body.len().min(usize::from(hdr.len))];
        let encrypted = match hdr.record_type {
            TlsRecordType::ChangeCipherSpec => Some(HandshakeStep::ChangeCipherSpec),
            TlsRecordType::Handshake if !p.ccs => {
                hs.to_mut().extend_from_slice(body);
                None
            }
            TlsRecordType::Handshake => Some(HandshakeStep::EncryptedHandshake),
            TlsRecordType::ApplicationData if st.tls13 => Some(HandshakeStep::EncryptedHandshake),
            TlsRecordType::ApplicationData => Some(HandshakeStep::ApplicationData),
            _ => None, // alerts and heartbeats are not steps
        };
        if let Some(step) = encrypted {
            return Some(CutShort {
                step,
                message_complete: false,
            });
        }
    }
    let mut last = None;
    let mut at = 0;
    while let Some((t, len)) = hs.get(at..).and_then(message_header) {
        let end = at + 4 + len;
        last = Some(CutShort {
            step: step_of_type(t),
            message_complete: end <= hs.len(),
        });
        if end > hs.len() {
            break;
        }
        at = end;
    }
    last
}

fn message(side: Side, m: &TlsMessageHandshake<'_>, st: &mut State, at: FrameRef) {
    use HandshakeStep as S;
    use TlsMessageHandshake as M;
    let step = match (m, side) {
        (M::ServerHello(sh), Side::Server) => server_hello(sh, st, at),
        (M::ServerHelloV13Draft18(sh), Side::Server) => {
            // A TLS 1.3 draft server: encrypted from here on.
            if st.obs.server_hello.is_none() {
                st.tls13 = true;
                st.obs.certificates_encrypted = true;
                st.obs.server_hello = Some(ServerHelloInfo {
                    frame: at.frame,
                    version: version_name(sh.version.0),
                    version_code: sh.version.0,
                    cipher_suite: sh.cipher.0,
                    cipher_name: sh.cipher.get_ciphersuite().map(|c| c.name),
                    downgrade_sentinel: None,
                });
            }
            S::ServerHello
        }
        (M::HelloRetryRequest(_), Side::Server) => {
            st.obs.hello_retry_request.get_or_insert(at);
            S::HelloRetryRequest
        }
        (M::Certificate(c), Side::Client) => {
            st.obs.client_certificate.get_or_insert(ClientCertificate {
                frame: at.frame,
                count: c.cert_chain.len(),
            });
            S::Certificate
        }
        (M::CertificateRequest(_), Side::Server) => {
            st.obs.certificate_request.get_or_insert(at);
            S::CertificateRequest
        }
        (M::ServerDone(_), Side::Server) => {
            st.obs.server_hello_done.get_or_insert(at);
            S::ServerHelloDone
        }
        (M::ServerKeyExchange(_), _) => S::ServerKeyExchange,
        (M::ClientKeyExchange(_), _) => S::ClientKeyExchange,
        (M::CertificateVerify(_), _) => S::CertificateVerify,
        (M::NewSessionTicket(_), _) => S::NewSessionTicket,
        (M::CertificateStatus(_), _) => S::CertificateStatus,
        _ => S::OtherHandshake,
    };
    st.step(step, side, at);
}

/// A chain as decoded from one Certificate message.
#[derive(Clone)]
struct DecodedChain {
    total: usize,
    certificates: Arc<[CertSummary]>,
    undecodable: Arc<[UndecodableCert]>,
}

thread_local! {
    /// Chains by their Certificate message bytes (at most 4 MiB of them).
    static CHAINS: RefCell<ByBytes<Option<DecodedChain>>> = RefCell::new(ByBytes::new(4 << 20));
    /// ALPN lists and offered versions by their extension bytes.
    static ALPNS: RefCell<ByBytes<Arc<[String]>>> = RefCell::new(ByBytes::new(64 << 10));
    static VERSIONS: RefCell<ByBytes<Arc<[String]>>> = RefCell::new(ByBytes::new(64 << 10));
}

/// The server's Certificate message (whole, with its header): decoded once
/// per distinct chain in the capture. False when it cannot be read.
fn server_certificate(msg: &[u8], st: &mut State, at: FrameRef) -> bool {
    let chain = CHAINS.with(|c| {
        c.borrow_mut().get_or_build(msg, || {
            let Ok((_, TlsMessage::Handshake(TlsMessageHandshake::Certificate(c)))) =
                parse_tls_message_handshake(msg)
            else {
                return None;
            };
            let mut certificates = Vec::new();
            let mut undecodable = Vec::new();
            for (i, raw) in c.cert_chain.iter().take(MAX_CERTS).enumerate() {
                match cert::decode(i, raw.data) {
                    Ok(s) => certificates.push(s),
                    Err(e) => undecodable.push(e),
                }
            }
            Some(DecodedChain {
                total: c.cert_chain.len(),
                certificates: certificates.into(),
                undecodable: undecodable.into(),
            })
        })
    });
    let Some(chain) = chain else { return false };
    if st.obs.certificate.is_none() {
        st.obs.certificate = Some(at);
        st.obs.certificates_total = chain.total;
        st.obs.certificates = chain.certificates;
        st.obs.undecodable_certificates = chain.undecodable;
    }
    st.step(HandshakeStep::Certificate, Side::Server, at);
    true
}

/// Big-endian reads over a message body: the ClientHello is read by hand
/// because tls-parser builds a vector of every cipher suite and every
/// extension of each one (all decoded) where pathproof keeps three
/// extensions; this runs once per connection.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    /// A vector with a `u8` length prefix.
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    /// A vector with a `u16` length prefix.
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// A ClientHello body (after the 4-byte message header), with the framing
/// tls-parser checks: false when it is cut short.
fn client_hello_message(body: &[u8], st: &mut State, at: FrameRef) -> bool {
    let mut c = Cursor(body);
    let Some((version, cipher_bytes)) = (|| {
        let version = c.u16()?;
        c.take(32)?; // random
        c.vec8()?; // session id
        let ciphers = c.vec16()?;
        c.vec8()?; // compression methods
        Some((version, ciphers.len()))
    })() else {
        return false;
    };
    // Extensions are optional (absent in SSL 3.0-style hellos); bytes that
    // do not form a length-prefixed block are ignored, as tls-parser does.
    let ext = if c.0.is_empty() { None } else { c.vec16() };
    st.obs.client_hellos = st.obs.client_hellos.saturating_add(1);
    if st.obs.client_hello.is_none() {
        st.obs.client_hello = Some(client_hello(version, cipher_bytes / 2, ext, st, at));
    }
    st.step(HandshakeStep::ClientHello, Side::Client, at);
    true
}

fn client_hello(
    legacy_version: u16,
    cipher_count: usize,
    ext: Option<&[u8]>,
    st: &mut State,
    at: FrameRef,
) -> ClientHelloInfo {
    let mut sni = None;
    let mut versions: Option<&[u8]> = None;
    let mut alpn: Option<&[u8]> = None;
    let mut c = Cursor(ext.unwrap_or_default());
    let mut readable = true;
    while !c.0.is_empty() {
        let Some((kind, data)) = c.u16().zip(c.vec16()) else {
            readable = false;
            break;
        };
        let mut d = Cursor(data);
        let ok = match kind {
            // server_name (RFC 6066 §3): the first host_name entry.
            0 if data.is_empty() => true,
            0 => d.vec16().is_some_and(|list| {
                let mut l = Cursor(list);
                while let Some(name_type) = l.u8() {
                    let Some(name) = l.vec16() else { return false };
                    if name_type == 0 && sni.is_none() {
                        sni = Some(name);
                    }
                }
                true
            }),
            // application_layer_protocol_negotiation (RFC 7301 §3.1).
            16 => d.vec16().map(|list| alpn = Some(list)).is_some(),
            // supported_versions (RFC 8446 §4.2.1).
            43 => d.vec8().map(|list| versions = Some(list)).is_some(),
            _ => true,
        };
        if !ok {
            readable = false;
            break;
        }
    }
    if !readable {
        st.error("ClientHello: extensions partly unreadable".to_string());
    }
    let legacy = legacy_version.to_be_bytes();
    let offered_versions = VERSIONS.with(|v| {
        // The legacy version stands in when the extension is absent; its
        // two bytes cannot be mistaken for a list (odd length marker).
        let key: &[u8] = match versions {
            Some(list) => list,
            None => &[legacy[0], legacy[1], 0],
        };
        v.borrow_mut().get_or_build(key, || {
            let codes: Vec<u16> = match versions {
                Some(list) => list
                    .chunks_exact(2)
                    .map(|p| u16::from_be_bytes([p[0], p[1]]))
                    .collect(),
                None => vec![legacy_version],
            };
            codes
                .into_iter()
                .filter(|&v| v & 0x0f0f != 0x0a0a) // GREASE (RFC 8701)
                .take(8)
                .map(|v| version_name(v).into_owned())
                .collect()
        })
    });
    let alpn = match alpn {
        None => Arc::from([]),
        Some(list) => ALPNS.with(|a| {
            a.borrow_mut().get_or_build(list, || {
                let mut names = Vec::new();
                let mut l = Cursor(list);
                while let Some(name) = l.vec8() {
                    if names.len() == MAX_ALPN {
                        break;
                    }
                    names.push(bounded(String::from_utf8_lossy(name).into_owned(), 64));
                }
                names.into()
            })
        }),
    };
    let offers_tls13 =
        versions.is_some_and(|list| list.chunks_exact(2).any(|p| p == [3, 4] || p[0] == 0x7f));
    ClientHelloInfo {
        frame: at.frame,
        sni: sni.map(|n| bounded(String::from_utf8_lossy(n).into_owned(), MAX_NAME)),
        offered_versions,
        offers_tls13,
        cipher_count,
        alpn,
    }
}

fn server_hello(sh: &TlsServerHelloContents<'_>, st: &mut State, at: FrameRef) -> HandshakeStep {
    if sh.random == HRR_RANDOM {
        st.obs.hello_retry_request.get_or_insert(at);
        return HandshakeStep::HelloRetryRequest;
    }
    if st.obs.server_hello.is_some() {
        return HandshakeStep::ServerHello;
    }
    let mut version = sh.version.0;
    // The selected version is the only extension read (by hand, like the
    // ClientHello's: tls-parser would decode and collect all of them).
    let mut c = Cursor(sh.ext.unwrap_or_default());
    while !c.0.is_empty() {
        let Some((kind, data)) = c.u16().zip(c.vec16()) else {
            st.error("ServerHello: extensions unreadable".to_string());
            break;
        };
        if kind == 43
            && let [hi, lo] = *data
        {
            version = u16::from_be_bytes([hi, lo]);
        }
    }
    // 0x7fXX: TLS 1.3 drafts.
    let tls13 = version == 0x0304 || version >> 8 == 0x7f;
    st.tls13 = tls13;
    st.obs.certificates_encrypted = tls13;
    let downgrade_sentinel = match sh.random.get(24..) {
        Some([b'D', b'O', b'W', b'N', b'G', b'R', b'D', 1]) => Some(DowngradeSentinel::Tls12),
        Some([b'D', b'O', b'W', b'N', b'G', b'R', b'D', 0]) => {
            Some(DowngradeSentinel::Tls11OrBelow)
        }
        _ => None,
    };
    st.obs.server_hello = Some(ServerHelloInfo {
        frame: at.frame,
        version: version_name(version),
        version_code: version,
        cipher_suite: sh.cipher.0,
        cipher_name: sh.cipher.get_ciphersuite().map(|c| c.name),
        downgrade_sentinel,
    });
    HandshakeStep::ServerHello
}

pub(super) fn version_name(v: u16) -> Cow<'static, str> {
    match v {
        0x0300 => "SSL 3.0".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v if v >> 8 == 0x7f => format!("TLS 1.3 draft {}", v & 0xff).into(),
        v => format!("0x{v:04x}").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_names() {
        assert_eq!(
            alert_name(TlsAlertDescription(48)).as_deref(),
            Some("unknown_ca")
        );
        assert_eq!(
            alert_name(TlsAlertDescription(42)).as_deref(),
            Some("bad_certificate")
        );
        assert_eq!(
            alert_name(TlsAlertDescription(0)).as_deref(),
            Some("close_notify")
        );
        assert_eq!(alert_name(TlsAlertDescription(200)), None);
    }

    #[test]
    fn version_names() {
        assert_eq!(version_name(0x0304), "TLS 1.3");
        assert_eq!(version_name(0x7f17), "TLS 1.3 draft 23");
        assert_eq!(version_name(0x1234), "0x1234");
    }

    /// A ClientHello body: legacy version, random, empty session id, two
    /// cipher suites, null compression, then `ext` (the extensions block,
    /// with its length) when given.
    fn hello_body(legacy: u16, ext: Option<&[u8]>) -> Vec<u8> {
        let mut b = legacy.to_be_bytes().to_vec();
        b.extend_from_slice(&[7; 32]);
        b.extend_from_slice(&[0, 0, 4, 0x13, 0x01, 0xc0, 0x2f, 1, 0]);
        if let Some(ext) = ext {
            b.extend_from_slice(&(ext.len() as u16).to_be_bytes());
            b.extend_from_slice(ext);
        }
        b
    }

    fn extension(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut e = kind.to_be_bytes().to_vec();
        e.extend_from_slice(&(data.len() as u16).to_be_bytes());
        e.extend_from_slice(data);
        e
    }

    const AT: FrameRef = FrameRef { frame: 3, ts_ns: 0 };

    #[test]
    fn client_hello_read_by_hand() {
        let mut ext = extension(0, b"\x00\x0e\x00\x00\x0bexample.net");
        ext.extend(extension(16, b"\x00\x0c\x02h2\x08http/1.1"));
        // GREASE first, then TLS 1.3 and 1.2.
        ext.extend(extension(43, b"\x06\x7a\x7a\x03\x04\x03\x03"));
        ext.extend(extension(51, b"\x00\x00")); // key_share: skipped
        let body = hello_body(0x0303, Some(&ext));
        let mut st = State::default();
        assert!(client_hello_message(&body, &mut st, AT));
        let ch = st.obs.client_hello.clone().expect("client hello");
        assert_eq!(ch.frame, 3);
        assert_eq!(ch.sni.as_deref(), Some("example.net"));
        assert_eq!(&ch.offered_versions[..], ["TLS 1.3", "TLS 1.2"]);
        assert!(ch.offers_tls13);
        assert_eq!(&ch.alpn[..], ["h2", "http/1.1"]);
        assert_eq!(ch.cipher_count, 2);
        assert!(st.obs.parse_errors.is_empty());
        // Another connection with the same extensions shares their lists.
        let mut again = State::default();
        assert!(client_hello_message(&body, &mut again, AT));
        let ch2 = again.obs.client_hello.expect("client hello");
        assert!(Arc::ptr_eq(&ch.offered_versions, &ch2.offered_versions));
        assert!(Arc::ptr_eq(&ch.alpn, &ch2.alpn));
    }

    #[test]
    fn client_hello_without_extensions_offers_its_legacy_version() {
        let mut st = State::default();
        assert!(client_hello_message(&hello_body(0x0301, None), &mut st, AT));
        let ch = st.obs.client_hello.expect("client hello");
        assert_eq!(&ch.offered_versions[..], ["TLS 1.0"]);
        assert!(
            !ch.offers_tls13,
            "no supported_versions: TLS 1.3 not offered"
        );
        assert!(ch.sni.is_none() && ch.alpn.is_empty());
    }

    #[test]
    fn cut_client_hello_is_unreadable_and_bad_extension_is_reported() {
        let body = hello_body(0x0303, None);
        for cut in [0, 1, 20, 34, 36, body.len() - 1] {
            let mut st = State::default();
            assert!(!client_hello_message(&body[..cut], &mut st, AT), "{cut}");
            assert!(st.obs.client_hello.is_none());
        }
        // The SNI is read; the next extension claims more bytes than follow.
        let mut ext = extension(0, b"\x00\x06\x00\x00\x03a.b");
        ext.extend_from_slice(&[0, 16, 0, 40, 0, 2]);
        let mut st = State::default();
        assert!(client_hello_message(
            &hello_body(0x0303, Some(&ext)),
            &mut st,
            AT
        ));
        assert_eq!(
            st.obs.client_hello.expect("client hello").sni.as_deref(),
            Some("a.b")
        );
        assert_eq!(
            st.obs.parse_errors,
            ["ClientHello: extensions partly unreadable"]
        );
    }

    #[test]
    fn preview_escapes() {
        assert_eq!(preview(b"HTTP/1.1 403\r\n"), "HTTP/1.1 403\\x0d\\x0a");
        assert_eq!(preview(&[b'a'; 100]).len(), PREVIEW);
    }
}
