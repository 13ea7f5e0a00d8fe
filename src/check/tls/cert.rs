//! The chain our handshake recorded, summarised for the report: who issued it
//! (the broker's CA or an inspecting proxy's) and whether the local clock
//! agrees with its validity. Decoding is the capture analysis' own
//! ([`crate::analysis::tls::decode_certificate`]) so `check` and `pcap` read
//! certificates the same way.

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

impl CertInfo {
    /// Summarises one DER certificate; never panics on bad bytes.
    pub fn from_der(index: usize, der: &[u8]) -> CertInfo {
        let sha256 = hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
        match decode_certificate(index, der) {
            Ok(s) => CertInfo::from_summary(&s, sha256),
            Err(e) => CertInfo {
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

/// Who issued the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "class")]
pub enum IssuerClass {
    /// Some certificate's issuer organisation names the expected CA.
    Genuine { issuer_org: String },
    /// No certificate does: `issuer` names the foreign CA (the top
    /// certificate's issuer O, else CN, else the whole issuer name).
    Foreign { issuer: String },
}

/// Classifies a chain the way the capture rules do
/// (`analysis::tls_rules`): genuine when any certificate's issuer
/// organisation contains `expect_issuer`, case-insensitively. `None` for an
/// empty chain (nothing was presented).
pub fn classify_issuer(chain: &[CertInfo], expect_issuer: &str) -> Option<IssuerClass> {
    let top = chain.last()?;
    let expected = expect_issuer.to_lowercase();
    let genuine = chain.iter().find_map(|c| {
        c.issuer_org
            .as_ref()
            .filter(|o| o.to_lowercase().contains(&expected))
    });
    Some(match genuine {
        Some(org) => IssuerClass::Genuine {
            issuer_org: org.clone(),
        },
        None => IssuerClass::Foreign {
            issuer: top
                .issuer_org
                .clone()
                .or_else(|| top.issuer_cn.clone())
                .unwrap_or_else(|| top.issuer.clone()),
        },
    })
}

/// A certificate that is not valid at the local clock's time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "problem")]
pub enum ValidityProblem {
    /// notBefore is `by_s` seconds after now: the local clock is behind by
    /// at least that much (minus the issuer's backdating), or the
    /// certificate was minted in the future.
    NotYetValid {
        index: usize,
        subject: String,
        by_s: i64,
    },
    /// notAfter was `ago_s` seconds before now.
    Expired {
        index: usize,
        subject: String,
        ago_s: i64,
    },
}

/// Validity problems of each certificate at `now_unix`, leaf first.
/// Undecodable certificates are skipped (they have no dates).
pub fn validity_at(chain: &[CertInfo], now_unix: i64) -> Vec<ValidityProblem> {
    chain
        .iter()
        .enumerate()
        .filter(|(_, c)| c.undecodable.is_none())
        .filter_map(|(index, c)| {
            let subject = c.subject_cn.clone().unwrap_or_else(|| c.subject.clone());
            if now_unix < c.not_before_unix {
                Some(ValidityProblem::NotYetValid {
                    index,
                    subject,
                    by_s: c.not_before_unix.saturating_sub(now_unix),
                })
            } else if now_unix > c.not_after_unix {
                Some(ValidityProblem::Expired {
                    index,
                    subject,
                    ago_s: now_unix.saturating_sub(c.not_after_unix),
                })
            } else {
                None
            }
        })
        .collect()
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

    fn cert(issuer_org: Option<&str>, issuer_cn: Option<&str>, nb: i64, na: i64) -> CertInfo {
        CertInfo {
            subject: "CN=x".into(),
            subject_cn: Some("x".into()),
            issuer: "CN=issuer".into(),
            issuer_org: issuer_org.map(str::to_string),
            issuer_cn: issuer_cn.map(str::to_string),
            not_before: rfc3339_secs(nb),
            not_after: rfc3339_secs(na),
            not_before_unix: nb,
            not_after_unix: na,
            key: "EC P-256".into(),
            signature_algorithm: "ecdsa-with-SHA256".into(),
            is_ca: false,
            self_signed: false,
            sha256: String::new(),
            undecodable: None,
        }
    }

    #[test]
    fn issuer_genuine_when_any_certificate_names_it() {
        let chain = [
            cert(Some("Zscaler Inc."), None, 0, 10),
            cert(Some("Zscaler Inc."), None, 0, 10),
        ];
        assert_eq!(
            classify_issuer(&chain, "zscaler"),
            Some(IssuerClass::Genuine {
                issuer_org: "Zscaler Inc.".into()
            })
        );
        // An intermediate issued by the expected CA is enough (the leaf's
        // issuer may be a sub-CA with another O=).
        let chain = [
            cert(Some("Sub CA Ltd"), None, 0, 10),
            cert(Some("ZSCALER"), None, 0, 10),
        ];
        assert!(matches!(
            classify_issuer(&chain, "Zscaler"),
            Some(IssuerClass::Genuine { .. })
        ));
    }

    #[test]
    fn issuer_foreign_names_the_top_issuer() {
        let chain = [
            cert(Some("Safemarch Inc"), None, 0, 10),
            cert(None, Some("Safemarch Root"), 0, 10),
        ];
        assert_eq!(
            classify_issuer(&chain, "Zscaler"),
            Some(IssuerClass::Foreign {
                issuer: "Safemarch Root".into()
            })
        );
        assert_eq!(classify_issuer(&[], "Zscaler"), None);
    }

    #[test]
    fn validity_problems_leaf_first() {
        let chain = [cert(None, None, 1_000, 2_000), cert(None, None, 0, 1_200)];
        assert_eq!(validity_at(&chain, 1_500).len(), 1);
        assert_eq!(
            validity_at(&chain, 400),
            vec![ValidityProblem::NotYetValid {
                index: 0,
                subject: "x".into(),
                by_s: 600
            }]
        );
        assert_eq!(
            validity_at(&chain, 1_500)[0],
            ValidityProblem::Expired {
                index: 1,
                subject: "x".into(),
                ago_s: 300
            }
        );
        assert!(validity_at(&chain, 1_100).is_empty());
    }

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
        let c = CertInfo::from_der(0, b"not a certificate");
        assert!(c.undecodable.is_some());
        assert_eq!(c.sha256.len(), 64);
        assert!(validity_at(&[c], 0).is_empty());
    }
}
