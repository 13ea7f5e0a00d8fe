//! How far the server's side of the handshake got, from the raw bytes it
//! sent: rustls says *that* a handshake failed, not which server message was
//! the last to arrive, and "reset after ServerHello, Certificate cut short"
//! is the difference between a filter and a path-MTU black hole.
//!
//! The bytes are read by the capture analysis' TLS reader
//! ([`crate::analysis::tls::read_stream`]): one reader of TLS records for
//! captured and probed bytes.

use crate::analysis::tls::{HandshakeStep, MAX_STREAM, Side, read_stream};
use serde::Serialize;

/// Server bytes kept for the reader (its window, as for a capture): a
/// server flight larger than this is summarised by its first 64 KiB.
pub(super) const MAX_KEPT: usize = MAX_STREAM;

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

/// Reads the start of the server's byte stream (`total_bytes` counts all
/// that arrived, kept or not).
pub fn server_progress(stream: &[u8], total_bytes: u64) -> ServerProgress {
    let reading = read_stream(Side::Server, stream);
    let last = reading.last_step();
    ServerProgress {
        bytes: total_bytes,
        last_step: last.map(|(step, _)| step),
        last_step_complete: last.is_some_and(|(_, whole)| whole),
        not_tls: reading.not_tls,
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

    /// A handshake message of type `t` with a body of `len` bytes that the
    /// reader cannot parse as that message (its step still shows from the
    /// header when it is cut short).
    fn message(t: u8, len: usize) -> Vec<u8> {
        let mut m = vec![t, (len >> 16) as u8, (len >> 8) as u8, len as u8];
        m.resize(4 + len, 0xab);
        m
    }

    /// A ServerHello the reader parses: TLS 1.2, no session id, cipher
    /// 0xc02f, no extensions.
    fn server_hello() -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[0, 0xc0, 0x2f, 0]);
        let mut m = vec![2, 0, 0, body.len() as u8];
        m.extend(body);
        m
    }

    /// A ServerHello selecting TLS 1.3 (supported_versions).
    fn server_hello_13() -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[0, 0x13, 0x01, 0]);
        body.extend_from_slice(&[0, 6, 0, 43, 0, 2, 3, 4]);
        let mut m = vec![2, 0, 0, body.len() as u8];
        m.extend(body);
        m
    }

    #[test]
    fn tls12_flight_cut_inside_the_certificate() {
        let mut hs = server_hello();
        let sh_len = hs.len();
        hs.extend(message(11, 3000));
        hs.extend(message(14, 0));
        let mut stream = record(22, &hs);
        let full = server_progress(&stream, stream.len() as u64);
        assert_eq!(full.last_step, Some(HandshakeStep::ServerHelloDone));
        assert!(full.last_step_complete);
        assert!(!full.not_tls);

        // The one record is cut inside the Certificate message.
        stream.truncate(5 + sh_len + 1200);
        let cut = server_progress(&stream, 9999);
        assert_eq!(cut.last_step, Some(HandshakeStep::Certificate));
        assert!(!cut.last_step_complete);
        assert_eq!(cut.bytes, 9999);

        // Cut in the ServerHello's own record, after the ServerHello.
        let mut stream = record(22, &server_hello());
        stream.extend(record(22, &message(11, 3000)));
        stream.truncate(stream.len() - 2000);
        let cut = server_progress(&stream, 0);
        assert_eq!(cut.last_step, Some(HandshakeStep::Certificate));
        assert!(!cut.last_step_complete);
    }

    #[test]
    fn messages_split_across_records() {
        let hs = message(11, 100);
        let stream = record(22, &hs[..50]);
        let half = server_progress(&stream, 0);
        assert_eq!(half.last_step, Some(HandshakeStep::Certificate));
        assert!(!half.last_step_complete);
        // A whole (empty) Certificate message in two records.
        let cert = [11, 0, 0, 3, 0, 0, 0];
        let mut good = record(22, &server_hello());
        good.extend(record(22, &cert[..2]));
        good.extend(record(22, &cert[2..]));
        let p = server_progress(&good, 0);
        assert_eq!(p.last_step, Some(HandshakeStep::Certificate));
        assert!(p.last_step_complete);
    }

    #[test]
    fn tls13_encrypted_flight() {
        let mut stream = record(22, &server_hello_13());
        stream.extend(record(20, &[1]));
        stream.extend(record(23, &[0; 300]));
        stream.extend(record(23, &[0; 300]));
        let whole = server_progress(&stream, 0);
        assert_eq!(whole.last_step, Some(HandshakeStep::EncryptedHandshake));
        assert!(whole.last_step_complete);
        // The second encrypted record is cut: framing goes on past the first.
        let p = server_progress(&stream[..stream.len() - 10], 0);
        assert_eq!(p.last_step, Some(HandshakeStep::EncryptedHandshake));
        assert!(!p.last_step_complete);
        // TLS 1.2: the handshake record after CCS is the encrypted Finished.
        let mut s12 = record(22, &server_hello());
        s12.extend(record(20, &[1]));
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
        // A record announcing more than TLS allows: not TLS.
        let big = server_progress(&[22, 3, 3, 0xff, 0xff, 2, 0], 7);
        assert_eq!(big.last_step, None);
        assert!(big.not_tls);
        // A whole record holding a message header cut short.
        let p = server_progress(&[22, 3, 3, 0, 4, 2, 0, 0, 9], 9);
        assert_eq!(p.last_step, Some(HandshakeStep::ServerHello));
        assert!(!p.last_step_complete);
        // Valid records, then bytes that are not a record header.
        let mut s = record(22, &server_hello());
        s.extend_from_slice(b"garbage");
        let p = server_progress(&s, 0);
        assert!(p.not_tls);
        assert_eq!(p.last_step, Some(HandshakeStep::ServerHello));
    }
}
