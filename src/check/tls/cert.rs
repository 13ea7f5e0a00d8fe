//! The chain our handshake recorded, as the report shows it. Decoding is the
//! capture analysis' own ([`crate::analysis::tls::decode_certificate`]), and
//! who issued the chain and whether it is valid by the local clock are the
//! analysis' rules ([`crate::analysis::rules::issuer`],
//! [`crate::analysis::rules::validity`]), judged on the same
//! [`CertSummary`]s: `check` and `pcap` read and judge certificates the same
//! way.

use crate::analysis::tls::{CertSummary, decode_certificate};
use crate::vocab::time::rfc3339_secs;
use serde::Serialize;

/// One certificate of the server's chain, as sent (leaf first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// RFC 4514-like subject (`C=US, O=..., CN=...`).
    pub subject: String,
    pub subject_cn: Option<String>,
    pub issuer: String,
    /// First organisation (O=) of the issuer.
    pub issuer_org: Option<String>,
    pub issuer_cn: Option<String>,
    /// Validity, RFC 3339 UTC.
    pub not_before: String,
    pub not_after: String,
    pub not_before_unix: i64,
    pub not_after_unix: i64,
    /// Key type and size: `RSA 2048`, `EC P-256`, `ed25519`.
    pub key: String,
    pub signature_algorithm: String,
    pub is_ca: bool,
    pub self_signed: bool,
    /// SHA-256 of the DER, lower-case hex (the usual certificate fingerprint).
    pub sha256: String,
    /// Set when x509-parser could not decode the DER (the other fields are
    /// then empty / zero, except `sha256`).
    pub undecodable: Option<String>,
}

/// Decodes a chain as sent (leaf first): the report's view of every
/// certificate, and the analysis' summaries of those that decoded (what the
/// rules judge). Never panics on bad bytes.
pub fn decode_chain(ders: &[Vec<u8>]) -> (Vec<CertInfo>, Vec<CertSummary>) {
    let mut infos = Vec::with_capacity(ders.len());
    let mut summaries = Vec::with_capacity(ders.len());
    for (i, der) in ders.iter().enumerate() {
        let (info, summary) = CertInfo::from_der(i, der);
        infos.push(info);
        summaries.extend(summary);
    }
    (infos, summaries)
}

impl CertInfo {
    /// Summarises one DER certificate, and gives the analysis' summary when
    /// it decodes; never panics on bad bytes.
    pub fn from_der(index: usize, der: &[u8]) -> (CertInfo, Option<CertSummary>) {
        let sha256 = hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
        match decode_certificate(index, der) {
            Ok(s) => (CertInfo::from_summary(&s, sha256), Some(s)),
            Err(e) => (
                CertInfo {
                    subject: String::new(),
                    subject_cn: None,
                    issuer: String::new(),
                    issuer_org: None,
                    issuer_cn: None,
                    not_before: String::new(),
                    not_after: String::new(),
                    not_before_unix: 0,
                    not_after_unix: 0,
                    key: String::new(),
                    signature_algorithm: String::new(),
                    is_ca: false,
                    self_signed: false,
                    sha256,
                    undecodable: Some(e.error),
                },
                None,
            ),
        }
    }

    fn from_summary(s: &CertSummary, sha256: String) -> CertInfo {
        CertInfo {
            subject: s.subject.clone(),
            subject_cn: s.subject_cn.clone(),
            issuer: s.issuer.clone(),
            issuer_org: s.issuer_orgs.first().cloned(),
            issuer_cn: s.issuer_cn.clone(),
            not_before: rfc3339_secs(s.not_before),
            not_after: rfc3339_secs(s.not_after),
            not_before_unix: s.not_before,
            not_after_unix: s.not_after,
            key: key_label(&s.key, s.key_bits),
            signature_algorithm: s.signature_algorithm.clone(),
            is_ca: s.is_ca,
            self_signed: s.self_signed,
            sha256,
            undecodable: None,
        }
    }
}

/// `RSA` + 2048 → `RSA 2048`; `EC prime256v1` → `EC P-256` (the NIST names
/// people compare against); anything else as the decoder named it.
fn key_label(key: &str, bits: Option<u32>) -> String {
    let key = match key {
        "EC prime256v1" => "EC P-256",
        "EC secp384r1" => "EC P-384",
        "EC secp521r1" => "EC P-521",
        other => other,
    };
    match bits {
        Some(b) => format!("{key} {b}"),
        None => key.to_string(),
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_labels() {
        assert_eq!(rfc3339_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_secs(2_082_758_400), "2036-01-01T00:00:00Z");
        assert_eq!(rfc3339_secs(-86_400), "1969-12-31T00:00:00Z");
        assert!(!rfc3339_secs(i64::MAX).is_empty());
        assert_eq!(key_label("RSA", Some(2048)), "RSA 2048");
        assert_eq!(key_label("EC prime256v1", None), "EC P-256");
        assert_eq!(key_label("ed25519", None), "ed25519");
    }

    #[test]
    fn undecodable_der_is_kept_with_its_hash() {
        let (infos, summaries) = decode_chain(&[b"not a certificate".to_vec()]);
        assert!(infos[0].undecodable.is_some());
        assert_eq!(infos[0].sha256.len(), 64);
        assert!(summaries.is_empty(), "nothing for the rules to judge");
    }
}
