//! X.509 certificates seen in clear (TLS ≤ 1.2 server flight), summarised
//! with x509-parser: who issued them is the question an inspecting proxy
//! answers by itself.

use super::bounded;
use serde::Serialize;
use std::sync::Arc;
use x509_parser::extensions::GeneralName;
use x509_parser::objects::{oid_registry, oid2sn};
use x509_parser::oid_registry::{OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, Oid};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};
use x509_parser::public_key::PublicKey;

/// SAN DNS names kept per certificate (the count is kept too).
const MAX_SAN: usize = 8;
/// Names and subjects longer than this are cut.
const MAX_TEXT: usize = 256;

/// One decoded certificate of a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    /// Position in the chain as sent (0 = the server's own certificate).
    pub index: usize,
    /// Subject, RFC 4514-like (`C=US, O=..., CN=...`).
    pub subject: String,
    pub subject_cn: Option<String>,
    pub issuer: String,
    pub issuer_cn: Option<String>,
    /// Organisation (O=) values of the issuer.
    pub issuer_orgs: Vec<String>,
    /// Validity, Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// Key type: `RSA`, `EC prime256v1`, `ed25519`, ... (`key_bits` for RSA).
    pub key: String,
    pub key_bits: Option<u32>,
    /// Signature algorithm short name (`sha256WithRSAEncryption`) or OID.
    pub signature_algorithm: String,
    /// Subject and issuer names are identical (self-issued; the signature
    /// is not verified).
    pub self_signed: bool,
    /// Basic constraints say CA.
    pub is_ca: bool,
    /// Serial number, hex.
    pub serial: String,
    /// First SAN DNS names.
    pub san_dns: Vec<String>,
    pub san_dns_total: usize,
    /// The certificate itself (DER), for the pinned-CA check
    /// ([`crate::analysis::rules::issuer`]); not reported.
    #[serde(skip)]
    pub der: Arc<[u8]>,
}

/// A certificate x509-parser could not decode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UndecodableCert {
    pub index: usize,
    pub der_len: usize,
    pub error: String,
}

/// Certificates remembered per thread: a capture shows the same broker (or
/// interceptor) chain in every connection, so each DER is parsed once.
const CACHE_ENTRIES: usize = 1_024;

/// Decoded certificates by their DER (shared with the summaries).
type Cache = rustc_hash::FxHashMap<Arc<[u8]>, Result<CertSummary, UndecodableCert>>;

thread_local! {
    static CACHE: std::cell::RefCell<Cache> = std::cell::RefCell::new(Cache::default());
}

/// Decodes one DER certificate (through the cache); never panics on bad input.
pub(crate) fn decode(index: usize, der: &[u8]) -> Result<CertSummary, UndecodableCert> {
    let cached = CACHE.with(|c| c.borrow().get(der).cloned());
    let mut result = match cached {
        Some(r) => r,
        None => {
            let r = decode_uncached(index, der);
            CACHE.with(|c| {
                let mut c = c.borrow_mut();
                if c.len() < CACHE_ENTRIES {
                    // The key shares the summary's copy of the DER.
                    let key = match &r {
                        Ok(s) => s.der.clone(),
                        Err(_) => Arc::from(der),
                    };
                    c.insert(key, r.clone());
                }
            });
            r
        }
    };
    // The position in the chain is the caller's, not the cached one's.
    match &mut result {
        Ok(s) => s.index = index,
        Err(e) => e.index = index,
    }
    result
}

fn decode_uncached(index: usize, der: &[u8]) -> Result<CertSummary, UndecodableCert> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| UndecodableCert {
        index,
        der_len: der.len(),
        error: bounded(format!("undecodable certificate: {e}"), MAX_TEXT),
    })?;
    let issuer = cert.issuer();
    let subject = cert.subject();
    let issuer_orgs = issuer
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .take(4)
        .map(|s| bounded(s.to_string(), MAX_TEXT))
        .collect();
    let (key, key_bits) = key_type(&cert);
    let mut san_dns = Vec::new();
    let mut san_dns_total = 0;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(d) = name {
                san_dns_total += 1;
                if san_dns.len() < MAX_SAN {
                    san_dns.push(bounded(d.to_string(), MAX_TEXT));
                }
            }
        }
    }
    Ok(CertSummary {
        index,
        subject: bounded(subject.to_string(), MAX_TEXT),
        subject_cn: first_cn(subject),
        issuer: bounded(issuer.to_string(), MAX_TEXT),
        issuer_cn: first_cn(issuer),
        issuer_orgs,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        key,
        key_bits,
        signature_algorithm: oid_name(&cert.signature_algorithm.algorithm),
        self_signed: subject.as_raw() == issuer.as_raw(),
        is_ca: cert.is_ca(),
        serial: bounded(cert.raw_serial_as_string(), 64),
        san_dns,
        san_dns_total,
        der: Arc::from(der),
    })
}

fn first_cn(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .find_map(|a| a.as_str().ok())
        .map(|s| bounded(s.to_string(), MAX_TEXT))
}

fn oid_name(oid: &Oid<'_>) -> String {
    oid2sn(oid, oid_registry())
        .map(str::to_string)
        .unwrap_or_else(|_| oid.to_id_string())
}

/// Key algorithm and size. RSA bits are counted from the modulus itself
/// (x509-parser's `key_size` reports 0 when the modulus has no leading zero).
fn key_type(cert: &X509Certificate<'_>) -> (String, Option<u32>) {
    let spki = cert.public_key();
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_PKCS1_RSAENCRYPTION {
        let bits = match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => Some(significant_bits(rsa.modulus)),
            _ => None,
        };
        return ("RSA".to_string(), bits);
    }
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|o| oid_name(&o))
            .unwrap_or_else(|| "unknown curve".to_string());
        return (bounded(format!("EC {curve}"), 64), None);
    }
    (bounded(oid_name(alg), 64), None)
}

fn significant_bits(be: &[u8]) -> u32 {
    let be = match be.iter().position(|&b| b != 0) {
        Some(i) => &be[i..],
        None => return 0,
    };
    let len = u32::try_from(be.len()).unwrap_or(u32::MAX / 8);
    len.saturating_mul(8) - be[0].leading_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZSCALER: &[u8] = include_bytes!("testdata/zscaler_leaf.der");
    const SAFEMARCH: &[u8] = include_bytes!("testdata/safemarch_future_leaf.der");

    #[test]
    fn broker_like_rsa_leaf() {
        let c = decode(0, ZSCALER).unwrap();
        assert_eq!(c.subject_cn.as_deref(), Some("co2br.prod.zpath.net"));
        assert_eq!(c.issuer_orgs, vec!["Zscaler Inc.".to_string()]);
        assert_eq!(
            c.issuer_cn.as_deref(),
            Some("Test Zscaler Intermediate Root CA")
        );
        assert!(c.issuer.contains("O=Zscaler Inc."), "{}", c.issuer);
        assert_eq!(c.key, "RSA");
        assert_eq!(c.key_bits, Some(2048));
        assert_eq!(c.signature_algorithm, "sha256WithRSAEncryption");
        assert!(!c.self_signed);
        assert!(!c.is_ca);
        assert_eq!(c.san_dns, vec!["co2br.prod.zpath.net", "*.prod.zpath.net"]);
        assert_eq!(c.san_dns_total, 2);
        // 825 days of validity.
        assert_eq!(c.not_after - c.not_before, 825 * 86_400);
    }

    #[test]
    fn inspection_leaf_from_the_future() {
        let c = decode(0, SAFEMARCH).unwrap();
        assert_eq!(c.issuer_orgs, vec!["Safemarch Inc".to_string()]);
        assert_eq!(c.key, "EC prime256v1");
        assert_eq!(c.signature_algorithm, "ed25519");
        // 2036-01-01T00:00:00Z
        assert_eq!(c.not_before, 2_082_758_400);
        assert_eq!(c.subject, "CN=co2br.prod.zpath.net");
    }

    #[test]
    fn bad_der_is_reported_not_panicked() {
        let e = decode(3, &ZSCALER[..100]).unwrap_err();
        assert_eq!(e.index, 3);
        assert_eq!(e.der_len, 100);
        assert!(
            e.error.starts_with("undecodable certificate"),
            "{}",
            e.error
        );
        assert!(decode(0, &[]).is_err());
        let mut bad = ZSCALER.to_vec();
        bad[200] ^= 0xff;
        let _ = decode(0, &bad);
    }

    #[test]
    fn bits_of_a_modulus() {
        assert_eq!(significant_bits(&[0, 0x80, 0]), 16);
        assert_eq!(significant_bits(&[0x01, 0]), 9);
        assert_eq!(significant_bits(&[0, 0]), 0);
    }
}
