//! How far the server's side of the handshake got, read from the raw bytes it
//! sent: rustls says *that* a handshake failed, not which server message was
//! the last to arrive, and "reset after ServerHello, Certificate cut short"
//! is the difference between a filter and a path-MTU black hole.
//!
//! Hand-written because it only needs record and handshake-message headers
//! (5 and 4 bytes); tls-parser's streaming parsers cannot tell a message cut
//! by the end of the bytes from a malformed one (the capture analysis frames
//! messages by hand for the same reason).

use crate::analysis::tls::HandshakeStep;
use serde::Serialize;

/// Server bytes kept for this walk: a server flight larger than this is
/// summarised by its first 64 KiB.
pub(super) const MAX_KEPT: usize = 64 * 1024;

/// What the server had sent when the exchange stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerProgress {
    /// Bytes received from the server.
    pub bytes: u64,
    /// The last handshake step whose header arrived (`None`: not even one
    /// record header).
    pub last_step: Option<HandshakeStep>,
    /// Whether that step's message (or encrypted record) arrived whole.
    pub last_step_complete: bool,
    /// The bytes stopped being TLS records.
    pub not_tls: bool,
}

/// Walks the records at the start of the server's byte stream.
pub fn server_progress(stream: &[u8], total_bytes: u64) -> ServerProgress {
    let mut p = ServerProgress {
        bytes: total_bytes,
        ..ServerProgress::default()
    };
    let mut handshake = Vec::new(); // plaintext handshake layer, records joined
    let mut hs_pos = 0;
    let mut encrypted = false;
    let mut rest = stream;
    while let [ctype, v_major, _, len_hi, len_lo, body @ ..] = rest {
        if !matches!(ctype, 20..=24) || *v_major != 3 {
            p.not_tls = true;
            break;
        }
        let len = usize::from(u16::from_be_bytes([*len_hi, *len_lo]));
        let payload = &body[..len.min(body.len())];
        let whole = payload.len() == len;
        match ctype {
            20 => {
                p.last_step = Some(HandshakeStep::ChangeCipherSpec);
                p.last_step_complete = whole;
                encrypted = true;
            }
            22 if !encrypted => {
                handshake.extend_from_slice(payload);
                // Every message header now in the handshake layer.
                while let Some(&[t, a, b, c]) = handshake.get(hs_pos..hs_pos + 4) {
                    let msg_len = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
                    p.last_step = Some(step_of(t));
                    let end = hs_pos + 4 + msg_len;
                    p.last_step_complete = end <= handshake.len();
                    if !p.last_step_complete {
                        break;
                    }
                    hs_pos = end;
                }
            }
            // TLS 1.3 sends its whole flight after ServerHello as application
            // data records; TLS 1.2's Finished is a handshake record after CCS.
            22 | 23 => {
                p.last_step = Some(HandshakeStep::EncryptedHandshake);
                p.last_step_complete = whole;
            }
            _ => {} // alerts (rustls reports them) and heartbeats: not steps
        }
        if !whole {
            break;
        }
        rest = &body[len..];
    }
    p
}

fn step_of(handshake_type: u8) -> HandshakeStep {
    match handshake_type {
        1 => HandshakeStep::ClientHello,
        2 => HandshakeStep::ServerHello,
        4 => HandshakeStep::NewSessionTicket,
        11 => HandshakeStep::Certificate,
        12 => HandshakeStep::ServerKeyExchange,
        13 => HandshakeStep::CertificateRequest,
        14 => HandshakeStep::ServerHelloDone,
        15 => HandshakeStep::CertificateVerify,
        16 => HandshakeStep::ClientKeyExchange,
        22 => HandshakeStep::CertificateStatus,
        _ => HandshakeStep::OtherHandshake,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ctype: u8, payload: &[u8]) -> Vec<u8> {
        let mut r = vec![ctype, 3, 3];
        r.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
        r.extend_from_slice(payload);
        r
    }

    fn message(t: u8, len: usize) -> Vec<u8> {
        let mut m = vec![t, (len >> 16) as u8, (len >> 8) as u8, len as u8];
        m.resize(4 + len, 0xab);
        m
    }

    #[test]
    fn tls12_flight_cut_inside_the_certificate() {
        let mut hs = message(2, 70);
        hs.extend(message(11, 3000));
        hs.extend(message(14, 0));
        let mut stream = record(22, &hs);
        let full = server_progress(&stream, stream.len() as u64);
        assert_eq!(full.last_step, Some(HandshakeStep::ServerHelloDone));
        assert!(full.last_step_complete);

        stream.truncate(5 + 74 + 1200);
        let cut = server_progress(&stream, 9999);
        assert_eq!(cut.last_step, Some(HandshakeStep::Certificate));
        assert!(!cut.last_step_complete);
        assert_eq!(cut.bytes, 9999);
    }

    #[test]
    fn messages_split_across_records() {
        let hs = message(11, 100);
        let mut stream = record(22, &hs[..50]);
        stream.extend(record(22, &hs[50..]));
        let p = server_progress(&stream, 0);
        assert_eq!(p.last_step, Some(HandshakeStep::Certificate));
        assert!(p.last_step_complete);
    }

    #[test]
    fn tls13_encrypted_flight() {
        let mut stream = record(22, &message(2, 90));
        stream.extend(record(20, &[1]));
        stream.extend(record(23, &[0; 300]));
        let p = server_progress(&stream[..stream.len() - 10], 0);
        assert_eq!(p.last_step, Some(HandshakeStep::EncryptedHandshake));
        assert!(!p.last_step_complete);
        // TLS 1.2: the handshake record after CCS is the encrypted Finished.
        let mut s12 = record(20, &[1]);
        s12.extend(record(22, &[0; 40]));
        assert_eq!(
            server_progress(&s12, 0).last_step,
            Some(HandshakeStep::EncryptedHandshake)
        );
    }

    #[test]
    fn garbage_and_fragments_do_not_panic() {
        assert_eq!(server_progress(&[], 0).last_step, None);
        assert_eq!(server_progress(&[22, 3], 2).last_step, None);
        let http = server_progress(b"HTTP/1.1 400 Bad Request\r\n", 26);
        assert!(http.not_tls);
        assert_eq!(http.last_step, None);
        // A record announcing more than it holds, a message header cut short.
        assert_eq!(
            server_progress(&[22, 3, 3, 0xff, 0xff, 2, 0], 7).last_step,
            None
        );
        let p = server_progress(&[22, 3, 3, 0, 4, 2, 0, 0, 9], 9);
        assert_eq!(p.last_step, Some(HandshakeStep::ServerHello));
        assert!(!p.last_step_complete);
    }
}
