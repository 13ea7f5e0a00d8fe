//! TLS records and handshake messages of one direction, read with tls-parser
//! from the reassembled bytes, turned into the facts of a [`TlsObservation`].
//!
//! Records are read as soon as they are complete; handshake messages are
//! collected across records (a Certificate message may span several) and
//! parsed once whole. The frame recorded for a message is the frame of the
//! segment whose arrival completed it.

use super::reassembly::MAX_STREAM;
use super::{
    AlertInfo, ClientCertificate, ClientHelloInfo, DowngradeSentinel, FrameRef, HandshakeStep,
    LastStep, NonTlsBytes, ServerHelloInfo, Side, StopReason, TlsObservation, bounded, cert,
};
use tls_parser::{
    MAX_RECORD_LEN, SNIType, TlsAlertDescription, TlsAlertSeverity, TlsExtension, TlsMessage,
    TlsMessageHandshake, TlsRawRecord, TlsRecordType, TlsServerHelloContents,
    parse_tls_client_hello_extensions, parse_tls_message_handshake, parse_tls_raw_record,
    parse_tls_record_header, parse_tls_record_with_header, parse_tls_server_hello_extensions,
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
#[derive(Debug, Default)]
pub(super) struct RecordParser {
    /// Stream offset of the next record.
    pub pos: usize,
    /// Handshake bytes of a message not yet complete (it continues in the
    /// next record).
    hs: Vec<u8>,
    /// This side sent ChangeCipherSpec under TLS ≤ 1.2: its records are
    /// encrypted from here on.
    ccs: bool,
    pub stopped: Option<StopReason>,
    /// Bytes left after the last complete record when parsing stopped.
    pub unparsed_at_stop: u64,
}

impl RecordParser {
    pub fn stop(&mut self, why: StopReason) {
        if self.stopped.is_none() {
            self.stopped = Some(why);
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
#[derive(Debug, Default)]
pub(super) struct State {
    pub obs: TlsObservation,
    /// The ServerHello selected TLS 1.3: records after it are encrypted.
    pub tls13: bool,
    /// TLS 1.3: the client's first encrypted record was alert-sized; its
    /// frame and the stream offset where it ends (see `TlsTracker`).
    pub alert_candidate: Option<(FrameRef, u64)>,
    /// TLS 1.3: length of the client's first encrypted record.
    client_first_encrypted_len: Option<u16>,
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
        let rest = &data[p.pos..];
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
    if p.pos > 0 {
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
                preview: preview(data),
            });
        }
        p.stop(StopReason::NotTls);
    } else {
        p.stop(StopReason::MidStream);
    }
}

fn preview(data: &[u8]) -> String {
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
            p.stop(StopReason::HandshakeOver);
        }
        TlsRecordType::Handshake => handshake_fragment(side, rec.data, p, st, at),
        TlsRecordType::ApplicationData => {
            application_data(side, rec.hdr.len, p, st, at);
            p.stop(StopReason::HandshakeOver);
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
    let encrypted_alert = AlertInfo {
        frame: at.frame,
        from: side,
        level: None,
        description: None,
        description_name: None,
        encrypted: true,
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
    p.hs.extend_from_slice(data);
    let mut used = 0;
    let mut too_large = false;
    loop {
        let rest = &p.hs[used..];
        if rest.len() < 4 {
            break;
        }
        // Message framing (type: u8, length: u24) is read by hand: tls-parser's
        // streaming parsers answer "incomplete" both for a message cut by a
        // record boundary and for a malformed one, and only the length says
        // whether to wait for the next record or to skip the message.
        let len = usize::from(rest[1]) << 16 | usize::from(rest[2]) << 8 | usize::from(rest[3]);
        if len > MAX_STREAM {
            too_large = true;
            break;
        }
        if rest.len() < 4 + len {
            break;
        }
        match parse_tls_message_handshake(&rest[..4 + len]) {
            Ok((_, TlsMessage::Handshake(m))) => message(side, &m, st, at),
            _ => st.error(format!(
                "{side:?} handshake message type {} ({len} bytes): unreadable",
                rest[0]
            )),
        }
        used += 4 + len;
    }
    p.hs.drain(..used);
    if too_large {
        p.stop(StopReason::TooLarge);
    }
}

fn message(side: Side, m: &TlsMessageHandshake<'_>, st: &mut State, at: FrameRef) {
    use HandshakeStep as S;
    use TlsMessageHandshake as M;
    let step = match (m, side) {
        (M::ClientHello(ch), Side::Client) => {
            st.obs.client_hellos = st.obs.client_hellos.saturating_add(1);
            if st.obs.client_hello.is_none() {
                st.obs.client_hello = Some(client_hello(ch, st, at));
            }
            S::ClientHello
        }
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
                    cipher_name: sh.cipher.get_ciphersuite().map(|c| c.name.to_string()),
                    downgrade_sentinel: None,
                });
            }
            S::ServerHello
        }
        (M::HelloRetryRequest(_), Side::Server) => {
            st.obs.hello_retry_request.get_or_insert(at);
            S::HelloRetryRequest
        }
        (M::Certificate(c), Side::Server) => {
            if st.obs.certificate.is_none() {
                st.obs.certificate = Some(at);
                st.obs.certificates_total = c.cert_chain.len();
                for (i, raw) in c.cert_chain.iter().take(MAX_CERTS).enumerate() {
                    match cert::decode(i, raw.data) {
                        Ok(s) => st.obs.certificates.push(s),
                        Err(e) => st.obs.undecodable_certificates.push(e),
                    }
                }
            }
            S::Certificate
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

fn client_hello(
    ch: &tls_parser::TlsClientHelloContents<'_>,
    st: &mut State,
    at: FrameRef,
) -> ClientHelloInfo {
    let mut info = ClientHelloInfo {
        frame: at.frame,
        sni: None,
        offered_versions: Vec::new(),
        cipher_count: ch.ciphers.len(),
        alpn: Vec::new(),
    };
    let mut versions: Option<Vec<u16>> = None;
    if let Some(ext) = ch.ext {
        match parse_tls_client_hello_extensions(ext) {
            Ok((rest, exts)) => {
                if !rest.is_empty() {
                    st.error("ClientHello: extensions partly unreadable".to_string());
                }
                for e in &exts {
                    match e {
                        TlsExtension::SNI(names) => {
                            info.sni = names.iter().find(|(t, _)| *t == SNIType::HostName).map(
                                |(_, n)| bounded(String::from_utf8_lossy(n).into_owned(), MAX_NAME),
                            );
                        }
                        TlsExtension::SupportedVersions(v) => {
                            versions = Some(v.iter().map(|x| x.0).collect());
                        }
                        TlsExtension::ALPN(protos) => {
                            info.alpn = protos
                                .iter()
                                .take(MAX_ALPN)
                                .map(|a| bounded(String::from_utf8_lossy(a).into_owned(), 64))
                                .collect();
                        }
                        _ => {}
                    }
                }
            }
            Err(_) => st.error("ClientHello: extensions unreadable".to_string()),
        }
    }
    info.offered_versions = versions
        .unwrap_or_else(|| vec![ch.version.0])
        .into_iter()
        .filter(|&v| v & 0x0f0f != 0x0a0a) // GREASE (RFC 8701)
        .take(8)
        .map(version_name)
        .collect();
    info
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
    if let Some(ext) = sh.ext {
        match parse_tls_server_hello_extensions(ext) {
            Ok((_, exts)) => {
                for e in &exts {
                    if let TlsExtension::SupportedVersions(v) = e
                        && let Some(sel) = v.first()
                    {
                        version = sel.0;
                    }
                }
            }
            Err(_) => st.error("ServerHello: extensions unreadable".to_string()),
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
        cipher_name: sh.cipher.get_ciphersuite().map(|c| c.name.to_string()),
        downgrade_sentinel,
    });
    HandshakeStep::ServerHello
}

pub(super) fn version_name(v: u16) -> String {
    match v {
        0x0300 => "SSL 3.0".to_string(),
        0x0301 => "TLS 1.0".to_string(),
        0x0302 => "TLS 1.1".to_string(),
        0x0303 => "TLS 1.2".to_string(),
        0x0304 => "TLS 1.3".to_string(),
        v if v >> 8 == 0x7f => format!("TLS 1.3 draft {}", v & 0xff),
        v => format!("0x{v:04x}"),
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

    #[test]
    fn preview_escapes() {
        assert_eq!(preview(b"HTTP/1.1 403\r\n"), "HTTP/1.1 403\\x0d\\x0a");
        assert_eq!(preview(&[b'a'; 100]).len(), PREVIEW);
    }
}
