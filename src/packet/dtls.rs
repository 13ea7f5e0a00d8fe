//! DTLS 1.2 (RFC 6347) as far as a reachability probe needs it: a
//! ClientHello to send to UDP 443, and what the first answer datagram is.
//!
//! The ClientHello is built by hand: rustls has no DTLS, and a probe that
//! never completes the handshake needs only the first flight. Answers are
//! read with tls-parser's DTLS parser; a record whose message tls-parser
//! does not decode still tells its content type and handshake type from its
//! fixed headers.

use tls_parser::{
    DTLSMessage, DTLSMessageHandshakeBody, TlsRecordType, parse_dtls_plaintext_record,
    parse_dtls_record_header,
};

/// DTLS 1.0 on the record layer of a first ClientHello (what OpenSSL and
/// browsers send; servers of any DTLS 1.x read it), DTLS 1.2 in the hello.
const RECORD_VERSION: [u8; 2] = [0xfe, 0xff];
const HELLO_VERSION: [u8; 2] = [0xfe, 0xfd];

/// Cipher suites a DTLS 1.2 server of either key type accepts: ECDHE with
/// AES-GCM and AES-CBC, then plain RSA as the last resort.
const SUITES: [u16; 8] = [
    0xc02b, 0xc02f, 0xc02c, 0xc030, 0xc009, 0xc013, 0x009c, 0x002f,
];

/// A DTLS 1.2 ClientHello record with `random`, an empty cookie and the
/// server name `sni` (none when `None`), ready to send in one datagram.
pub fn client_hello(random: [u8; 32], sni: Option<&str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(256);
    body.extend_from_slice(&HELLO_VERSION);
    body.extend_from_slice(&random);
    body.push(0); // session id
    body.push(0); // cookie
    push_u16(&mut body, (SUITES.len() * 2) as u16);
    for s in SUITES {
        push_u16(&mut body, s);
    }
    body.extend_from_slice(&[1, 0]); // compression: null

    let mut ext = Vec::with_capacity(128);
    if let Some(name) = sni.filter(|n| !n.is_empty() && n.len() < 256) {
        let n = name.as_bytes();
        let mut sn = Vec::with_capacity(n.len() + 5);
        push_u16(&mut sn, (n.len() + 3) as u16);
        sn.push(0); // host_name
        push_u16(&mut sn, n.len() as u16);
        sn.extend_from_slice(n);
        push_ext(&mut ext, 0x0000, &sn);
    }
    // supported_groups: x25519, secp256r1, secp384r1.
    push_ext(&mut ext, 0x000a, &[0, 6, 0, 0x1d, 0, 0x17, 0, 0x18]);
    // ec_point_formats: uncompressed.
    push_ext(&mut ext, 0x000b, &[1, 0]);
    // signature_algorithms: ECDSA, RSA-PSS and RSA with SHA-256/384/512.
    let sig: [u16; 8] = [
        0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ];
    let mut s = Vec::with_capacity(18);
    push_u16(&mut s, (sig.len() * 2) as u16);
    for a in sig {
        push_u16(&mut s, a);
    }
    push_ext(&mut ext, 0x000d, &s);
    push_ext(&mut ext, 0x0017, &[]); // extended_master_secret
    push_ext(&mut ext, 0xff01, &[0]); // renegotiation_info
    push_u16(&mut body, ext.len() as u16);
    body.extend_from_slice(&ext);

    // Handshake header: type, length, message_seq 0, one whole fragment.
    let len = body.len() as u32;
    let mut hs = Vec::with_capacity(body.len() + 12);
    hs.push(1);
    hs.extend_from_slice(&len.to_be_bytes()[1..]);
    hs.extend_from_slice(&[0, 0]);
    hs.extend_from_slice(&[0, 0, 0]);
    hs.extend_from_slice(&len.to_be_bytes()[1..]);
    hs.extend_from_slice(&body);

    // Record header: handshake, version, epoch 0, sequence 0, length.
    let mut rec = Vec::with_capacity(hs.len() + 13);
    rec.push(22);
    rec.extend_from_slice(&RECORD_VERSION);
    rec.extend_from_slice(&[0; 8]);
    push_u16(&mut rec, hs.len() as u16);
    rec.extend_from_slice(&hs);
    rec
}

fn push_u16(v: &mut Vec<u8>, n: u16) {
    v.extend_from_slice(&n.to_be_bytes());
}

fn push_ext(v: &mut Vec<u8>, kind: u16, data: &[u8]) {
    push_u16(v, kind);
    push_u16(v, data.len() as u16);
    v.extend_from_slice(data);
}

/// What the first record of an answer datagram is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DtlsAnswer {
    /// The server asks for a cookie round (stateless DoS protection).
    HelloVerifyRequest,
    /// The server goes on with the handshake.
    ServerHello,
    /// Another handshake message (a server whose flight starts elsewhere).
    OtherHandshake(u8),
    /// An alert: level and description.
    Alert { level: u8, description: u8 },
    /// A DTLS record of another content type.
    OtherRecord(u8),
}

impl DtlsAnswer {
    /// The server speaks DTLS: the path carried our hello and its answer.
    pub fn is_dtls_server(&self) -> bool {
        !matches!(self, DtlsAnswer::OtherRecord(_))
    }
}

/// Reads the first record of `datagram`; `None` when it is no DTLS record.
pub fn answer(datagram: &[u8]) -> Option<DtlsAnswer> {
    let (_, header) = parse_dtls_record_header(datagram).ok()?;
    // DTLS versions are 0xfexx (1's complement of the TLS minor).
    if header.version.0 >> 8 != 0xfe {
        return None;
    }
    if let Ok((_, record)) = parse_dtls_plaintext_record(datagram) {
        match record.messages.first() {
            Some(DTLSMessage::Handshake(h)) => {
                return Some(match h.body {
                    DTLSMessageHandshakeBody::HelloVerifyRequest(_) => {
                        DtlsAnswer::HelloVerifyRequest
                    }
                    DTLSMessageHandshakeBody::ServerHello(_) => DtlsAnswer::ServerHello,
                    _ => DtlsAnswer::OtherHandshake(h.msg_type.0),
                });
            }
            Some(DTLSMessage::Alert(a)) => {
                return Some(DtlsAnswer::Alert {
                    level: a.severity.0,
                    description: a.code.0,
                });
            }
            _ => {}
        }
    }
    // A message tls-parser does not decode: its fixed headers still say
    // what it is (record header 13 bytes, then the handshake type, or the
    // alert's level and description).
    let body = datagram.get(13..)?;
    Some(match header.content_type {
        TlsRecordType::Handshake => match body.first()? {
            3 => DtlsAnswer::HelloVerifyRequest,
            2 => DtlsAnswer::ServerHello,
            t => DtlsAnswer::OtherHandshake(*t),
        },
        TlsRecordType::Alert => DtlsAnswer::Alert {
            level: *body.first()?,
            description: *body.get(1)?,
        },
        other => DtlsAnswer::OtherRecord(other.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_hello_parses_as_dtls_1_2_with_its_sni() {
        let rec = client_hello([7; 32], Some("co2br.lab1.test"));
        let (rest, r) = parse_dtls_plaintext_record(&rec).unwrap();
        assert!(rest.is_empty());
        let Some(DTLSMessage::Handshake(h)) = r.messages.first() else {
            panic!("{r:?}")
        };
        let DTLSMessageHandshakeBody::ClientHello(ch) = &h.body else {
            panic!("{h:?}")
        };
        assert_eq!(ch.version.0, 0xfefd);
        assert_eq!(ch.random, &[7; 32]);
        assert_eq!(ch.ciphers.len(), SUITES.len());
        let ext = ch.ext.unwrap();
        let (_, exts) = tls_parser::parse_tls_client_hello_extensions(ext).unwrap();
        assert!(exts.iter().any(|e| matches!(e,
            tls_parser::TlsExtension::SNI(v) if v[0].1 == b"co2br.lab1.test")));
        // Without SNI: no server_name extension.
        let rec = client_hello([0; 32], None);
        assert!(!rec.windows(15).any(|w| w == b"co2br.lab1.test"));
        assert!(answer(&rec).is_some());
    }

    /// A record with one handshake message of `kind` carrying `body`.
    fn record(content: u8, msg: &[u8]) -> Vec<u8> {
        let mut r = vec![content, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0];
        r.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        r.extend_from_slice(msg);
        r
    }

    fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
        let len = (body.len() as u32).to_be_bytes();
        let mut m = vec![
            kind, len[1], len[2], len[3], 0, 0, 0, 0, 0, len[1], len[2], len[3],
        ];
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn answers_are_told_apart() {
        let hvr = record(22, &handshake(3, &[0xfe, 0xff, 4, 1, 2, 3, 4]));
        assert_eq!(answer(&hvr), Some(DtlsAnswer::HelloVerifyRequest));
        let mut sh = vec![0xfe, 0xfd];
        sh.extend_from_slice(&[9; 32]);
        sh.extend_from_slice(&[0, 0xc0, 0x2f, 0]);
        let sh = record(22, &handshake(2, &sh));
        assert_eq!(answer(&sh), Some(DtlsAnswer::ServerHello));
        // A ServerHello tls-parser cannot read (truncated body): the type
        // byte still says what it is.
        let short = record(22, &handshake(2, &[0xfe]));
        assert_eq!(answer(&short), Some(DtlsAnswer::ServerHello));
        let alert = record(21, &[2, 40]);
        assert_eq!(
            answer(&alert),
            Some(DtlsAnswer::Alert {
                level: 2,
                description: 40
            })
        );
        // TLS (not DTLS) bytes, DNS, nothing: not an answer.
        assert_eq!(answer(&[22, 3, 3, 0, 5, 1, 2, 3, 4, 5]), None);
        assert_eq!(answer(b""), None);
        assert_eq!(answer(&[0x12, 0x34, 0x81, 0x80, 0, 1]), None);
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..200usize {
            let mut b = Vec::with_capacity(len);
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                b.push(seed as u8);
            }
            if len > 3 {
                b[0] = 22;
                b[1] = 0xfe;
            }
            let _ = answer(&b);
        }
    }
}
