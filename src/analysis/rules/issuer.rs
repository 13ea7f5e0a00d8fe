//! The certificate-issuer rule: is the chain a server presented the
//! broker's, or another CA's (an inspecting proxy re-signing the broker's
//! certificate)? One rule for `pcap` (a TLS ≤ 1.2 chain in clear in the
//! capture) and `check` (the chain the live handshake recorded).
//!
//! The chain is judged as sent, leaf (the server's own certificate) first.
//! Two checks, and the report says which one was made:
//!
//! - **By name only** (the default, `--expect-issuer ORG`, `Zscaler` unless
//!   told otherwise). A certificate's issuer "names the organisation" when
//!   one of the issuer's O= values contains ORG, case-insensitively. The
//!   chain is genuine when the leaf's issuer and the issuer of every
//!   certificate above it name the organisation. Otherwise the first issuer,
//!   from the leaf up, that does not is the foreign CA, and it is named: its
//!   first O= value, else its CN, else its whole name, with its depth
//!   (0 = the leaf's issuer). Any CA can write any name, so this check only
//!   catches interceptors that do not pretend; a self-signed leaf that
//!   claims the organisation is never passed as genuine
//!   ([`IssuerJudgement::SelfSignedClaim`]): the genuine broker never
//!   presents one, and a name cannot tell an impostor from it.
//! - **Pinned CA** (`--expect-ca FILE`, one or more PEM CA certificates).
//!   The chain is genuine when it verifies up to one of those CAs:
//!   signatures, and issuer/subject linkage, with rustls-webpki (the
//!   verifier rustls itself uses), in any order the server sent the
//!   certificates. A CA in the file may be a root or an intermediate; an
//!   intermediate the server does not send must be in the file. Names are
//!   not consulted, so a CA with the same organisation name but another key
//!   fails. A chain that does not verify is foreign; the CA named is the
//!   first issuer, from the leaf up, that does not name the organisation, or
//!   when they all do (an impostor copying the name), the issuer where the
//!   link to the pinned CAs breaks. What the check leaves out: validity
//!   dates (the [`super::validity`] rule judges them, as clock skew, so the
//!   chain is verified at a time inside every certificate's validity),
//!   extended key usage and host names (the connector's business, not the
//!   path's). When the chain cannot be verified for another reason (an
//!   algorithm the verifier does not support, certificates that could not be
//!   decoded) the result is [`IssuerJudgement::Unverifiable`], never
//!   foreign: a false "intercepted" sends a network team to the wrong
//!   firewall.

use crate::analysis::tls::{CertSummary, decode_certificate};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// Which check judged the issuer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IssuerCheck {
    /// The issuers' organisation names were compared with the expected one.
    ByName,
    /// The chain was verified up to a CA given with `--expect-ca`.
    PinnedCa,
}

impl IssuerCheck {
    /// `by name only` / `pinned CA`: how reports say it.
    pub fn label(self) -> &'static str {
        match self {
            IssuerCheck::ByName => "by name only",
            IssuerCheck::PinnedCa => "pinned CA",
        }
    }
}

/// The rule's verdict on one presented chain. Serialised as `check`'s
/// `issuer_class` (`class`: `genuine`, `foreign`, `self-signed-claim`,
/// `unverifiable`; `by`: `by-name` or `pinned-ca`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "class")]
pub enum IssuerJudgement {
    /// The chain is the expected CA's. `org`: the leaf issuer's O= value
    /// that names the organisation (by name), or the leaf's issuer (pinned).
    Genuine {
        #[serde(rename = "issuer_org")]
        org: String,
        by: IssuerCheck,
    },
    /// Another CA issued the chain: `issuer_named` is that CA (its first
    /// O=, else CN, else whole name); `depth` is the position of the
    /// certificate it issued (0: it issued the leaf).
    Foreign {
        #[serde(rename = "issuer")]
        issuer_named: String,
        depth: usize,
        by: IssuerCheck,
    },
    /// By name only: the leaf is self-signed (subject = issuer) and claims
    /// the expected organisation. Not genuine (the broker never presents a
    /// self-signed certificate), not provably foreign either (a name check
    /// cannot tell who made it): reported as unverified, `--expect-ca`
    /// decides.
    SelfSignedClaim {
        #[serde(rename = "issuer_org")]
        org: String,
        subject: String,
    },
    /// The check could not be made: `reason` says why.
    Unverifiable { reason: String, by: IssuerCheck },
}

impl IssuerJudgement {
    pub fn check(&self) -> IssuerCheck {
        match self {
            IssuerJudgement::Genuine { by, .. }
            | IssuerJudgement::Foreign { by, .. }
            | IssuerJudgement::Unverifiable { by, .. } => *by,
            IssuerJudgement::SelfSignedClaim { .. } => IssuerCheck::ByName,
        }
    }
}

/// What the chain must show.
#[derive(Clone, Copy, Debug)]
pub struct IssuerExpectation<'a> {
    /// The organisation the issuers must name (by name).
    pub org: &'a str,
    /// The CAs the chain must verify up to; when given, names are not
    /// consulted for the verdict.
    pub pinned: Option<&'a PinnedCas>,
}

/// The CAs of `--expect-ca`.
#[derive(Clone, Debug)]
pub struct PinnedCas {
    anchors: Vec<TrustAnchor<'static>>,
    /// The CAs' subjects as the certificate decoder writes them.
    pub subjects: Vec<String>,
}

/// A `--expect-ca` file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ExpectCaError {
    #[error("cannot read --expect-ca file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("--expect-ca file {path}: not valid PEM: {reason}")]
    Pem { path: String, reason: String },
    #[error("--expect-ca file {path}: no CERTIFICATE in it (PEM, `-----BEGIN CERTIFICATE-----`)")]
    Empty { path: String },
    #[error("--expect-ca file {path}: certificate {number} cannot be used as a CA: {reason}")]
    BadCertificate {
        path: String,
        number: usize,
        reason: String,
    },
}

impl PinnedCas {
    /// Reads a PEM file of one or more CA certificates.
    pub fn load(path: &Path) -> Result<PinnedCas, ExpectCaError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ExpectCaError::Read {
            path: shown.clone(),
            source,
        })?;
        PinnedCas::from_pem(&bytes, &shown)
    }

    /// The CA certificates of a PEM text (other sections, a key say, are
    /// ignored); `shown` names it in errors.
    pub fn from_pem(bytes: &[u8], shown: &str) -> Result<PinnedCas, ExpectCaError> {
        let mut anchors = Vec::new();
        let mut subjects = Vec::new();
        for (i, item) in CertificateDer::pem_slice_iter(bytes).enumerate() {
            let der = item.map_err(|e: pem::Error| ExpectCaError::Pem {
                path: shown.to_string(),
                reason: e.to_string(),
            })?;
            let bad = |reason: String| ExpectCaError::BadCertificate {
                path: shown.to_string(),
                number: i + 1,
                reason,
            };
            let summary = decode_certificate(i, der.as_ref()).map_err(|e| bad(e.error))?;
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|e| bad(format!("{e:?}")))?
                .to_owned();
            anchors.push(anchor);
            subjects.push(summary.subject);
        }
        if anchors.is_empty() {
            return Err(ExpectCaError::Empty {
                path: shown.to_string(),
            });
        }
        Ok(PinnedCas { anchors, subjects })
    }

    /// `O=..., CN=...` of each CA, for reports.
    pub fn describe(&self) -> String {
        self.subjects.join("; ")
    }
}

/// Judges a presented chain. `chain`: its decoded certificates, leaf first
/// (`index` = position as sent); `total`: how many certificates were sent,
/// decoded or not. `None` when no certificate was presented.
pub fn judge(
    chain: &[CertSummary],
    total: usize,
    expect: &IssuerExpectation<'_>,
) -> Option<IssuerJudgement> {
    if total == 0 && chain.is_empty() {
        return None;
    }
    let by = if expect.pinned.is_some() {
        IssuerCheck::PinnedCa
    } else {
        IssuerCheck::ByName
    };
    let Some(leaf) = chain.first().filter(|c| c.index == 0) else {
        return Some(IssuerJudgement::Unverifiable {
            reason: "the server's own certificate could not be decoded".into(),
            by,
        });
    };
    let expected = expect.org.to_lowercase();
    let names = |c: &CertSummary| {
        c.issuer_orgs
            .iter()
            .find(|o| o.to_lowercase().contains(&expected))
            .cloned()
    };
    let first_foreign = chain.iter().position(|c| names(c).is_none());
    let Some(pinned) = expect.pinned else {
        return Some(match first_foreign {
            Some(depth) => IssuerJudgement::Foreign {
                issuer_named: issuer_label(&chain[depth]),
                depth,
                by,
            },
            None if leaf.self_signed => IssuerJudgement::SelfSignedClaim {
                org: names(leaf).unwrap_or_default(),
                subject: leaf.subject.clone(),
            },
            None => IssuerJudgement::Genuine {
                org: names(leaf).unwrap_or_default(),
                by,
            },
        });
    };
    Some(match verify_pinned(chain, pinned) {
        Ok(()) => IssuerJudgement::Genuine {
            org: issuer_label(leaf),
            by,
        },
        Err(Failure::NotChained) if chain.len() < total => IssuerJudgement::Unverifiable {
            reason: format!(
                "the chain does not verify up to the pinned CA, but {} of its {total} certificates could not be decoded",
                total - chain.len()
            ),
            by,
        },
        Err(Failure::NotChained) => {
            let depth = first_foreign.unwrap_or_else(|| break_depth(chain, pinned));
            IssuerJudgement::Foreign {
                issuer_named: issuer_label(&chain[depth]),
                depth,
                by,
            }
        }
        Err(Failure::Cannot(reason)) => IssuerJudgement::Unverifiable { reason, by },
    })
}

impl IssuerJudgement {
    /// What the rule found, as one clause for findings and verdicts (the
    /// same words for `pcap` and `check`); `None` for a genuine chain.
    /// `chain` and `expect` are those the judgement was made on.
    pub fn explain(&self, chain: &[CertSummary], expect: &IssuerExpectation<'_>) -> Option<String> {
        let leaf = chain.first();
        let leaf_name = leaf.map_or("the server", |l| {
            l.subject_cn.as_deref().unwrap_or(&l.subject)
        });
        Some(match self {
            IssuerJudgement::Genuine { .. } => return None,
            IssuerJudgement::Foreign {
                issuer_named,
                depth,
                by,
            } => {
                let c = chain.get(*depth)?;
                let mut text = if *depth == 0 {
                    format!(
                        "the certificate for {leaf_name} is issued by \"{issuer_named}\" ({})",
                        c.issuer
                    )
                } else {
                    format!(
                        "the certificate for {leaf_name} chains to \"{issuer_named}\": certificate {depth} of the chain ({}) is issued by {}",
                        c.subject, c.issuer
                    )
                };
                match (by, expect.pinned) {
                    (IssuerCheck::PinnedCa, Some(p)) => {
                        text.push_str(&format!(
                            ", which does not chain to the pinned CA ({})",
                            p.describe()
                        ));
                        let sent = chain.iter().any(|s| s.subject == c.issuer);
                        let pinned = p.subjects.contains(&c.issuer);
                        if !sent && !pinned {
                            text.push_str(
                                "; that issuer's certificate was not sent: if it is one of the broker's intermediates, add it to the --expect-ca file",
                            );
                        }
                    }
                    _ => text.push_str(&format!(
                        ", not {} (issuer checked {})",
                        expect.org,
                        by.label()
                    )),
                }
                text
            }
            IssuerJudgement::SelfSignedClaim { org, .. } => format!(
                "the certificate for {leaf_name} is self-signed and claims to come from \"{org}\": the genuine broker never presents a self-signed certificate, yet a name check cannot tell who made this one (give the broker's CA with --expect-ca FILE to verify the chain)"
            ),
            IssuerJudgement::Unverifiable { reason, by } => format!(
                "the issuer of the certificate for {leaf_name} could not be checked ({}): {reason}",
                by.label()
            ),
        })
    }
}

/// The issuer of `c` in a few words: its first O=, else its CN, else its
/// whole name.
pub fn issuer_label(c: &CertSummary) -> String {
    c.issuer_orgs
        .first()
        .cloned()
        .or_else(|| c.issuer_cn.clone())
        .unwrap_or_else(|| c.issuer.clone())
}

enum Failure {
    /// No path to a pinned CA: an unknown issuer, or a signature that does
    /// not verify under the key of the CA the chain names.
    NotChained,
    /// Anything else the verifier refused (an unsupported algorithm, a
    /// malformed certificate): no conclusion.
    Cannot(String),
}

/// Accepts any extended key usage: the question is who signed the chain,
/// not what the certificate may be used for.
struct AnyUsage;

impl webpki::ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, _: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

fn verify_pinned(chain: &[CertSummary], pinned: &PinnedCas) -> Result<(), Failure> {
    let leaf = CertificateDer::from(&chain[0].der[..]);
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .map(|c| CertificateDer::from(&c.der[..]))
        .collect();
    let ee = webpki::EndEntityCert::try_from(&leaf)
        .map_err(|e| Failure::Cannot(format!("the leaf cannot be verified: {e:?}")))?;
    // Validity is the validity rule's: verify at a time every presented
    // certificate is valid at, when there is one.
    let at = chain.iter().map(|c| c.not_before).max().unwrap_or(0);
    let overlap = chain.iter().all(|c| c.not_after >= at);
    let time = UnixTime::since_unix_epoch(Duration::from_secs(at.max(0).unsigned_abs()));
    let result = ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &pinned.anchors,
        &intermediates,
        time,
        AnyUsage,
        None,
        None,
    );
    match result {
        Ok(_) => Ok(()),
        Err(webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey) => {
            Err(Failure::NotChained)
        }
        Err(webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. })
            if !overlap =>
        {
            Err(Failure::Cannot(
                "the presented certificates' validity periods do not overlap".into(),
            ))
        }
        Err(e) => Err(Failure::Cannot(format!(
            "the verifier refused the chain: {e:?}"
        ))),
    }
}

/// Where the link from the leaf to a pinned CA breaks: the first
/// certificate whose issuer is a pinned CA's name (its signature did not
/// verify) or is not the next certificate sent.
fn break_depth(chain: &[CertSummary], pinned: &PinnedCas) -> usize {
    for (i, c) in chain.iter().enumerate() {
        let names_pinned = pinned.subjects.contains(&c.issuer);
        let next_is_issuer = chain.get(i + 1).is_some_and(|n| n.subject == c.issuer);
        if names_pinned || !next_is_issuer {
            return i;
        }
    }
    chain.len() - 1
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa,
        KeyPair,
    };

    /// A summary built by hand (no DER: for the name check only).
    pub(crate) fn summary(
        index: usize,
        subject: &str,
        issuer: &str,
        self_signed: bool,
    ) -> CertSummary {
        let orgs = |dn: &str| -> Vec<String> {
            dn.split(", ")
                .filter_map(|p| p.strip_prefix("O="))
                .map(str::to_string)
                .collect()
        };
        let cn = |dn: &str| {
            dn.split(", ")
                .find_map(|p| p.strip_prefix("CN="))
                .map(str::to_string)
        };
        CertSummary {
            index,
            subject: subject.into(),
            subject_cn: cn(subject),
            issuer: issuer.into(),
            issuer_cn: cn(issuer),
            issuer_orgs: orgs(issuer),
            not_before: 0,
            not_after: i64::MAX / 2,
            key: "EC prime256v1".into(),
            key_bits: None,
            signature_algorithm: "ecdsa-with-SHA256".into(),
            self_signed,
            is_ca: false,
            serial: "01".into(),
            san_dns: Vec::new(),
            san_dns_total: 0,
            der: std::sync::Arc::from(&[][..]),
        }
    }

    fn dn(org: Option<&str>, cn: &str) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        if let Some(o) = org {
            dn.push(DnType::OrganizationName, o);
        }
        dn.push(DnType::CommonName, cn);
        dn
    }

    fn ca_params(org: Option<&str>, cn: &str) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = dn(org, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p
    }

    pub(crate) type Ca = CertifiedIssuer<'static, KeyPair>;

    pub(crate) fn root(org: Option<&str>, cn: &str) -> Ca {
        CertifiedIssuer::self_signed(ca_params(org, cn), KeyPair::generate().unwrap()).unwrap()
    }

    pub(crate) fn intermediate(org: Option<&str>, cn: &str, by: &Ca) -> Ca {
        CertifiedIssuer::signed_by(ca_params(org, cn), KeyPair::generate().unwrap(), by).unwrap()
    }

    pub(crate) fn leaf_by(by: &Ca) -> Vec<u8> {
        let mut p = CertificateParams::new(vec!["co2br.prod.zpath.net".to_string()]).unwrap();
        p.distinguished_name = dn(None, "co2br.prod.zpath.net");
        p.signed_by(&KeyPair::generate().unwrap(), by)
            .unwrap()
            .der()
            .to_vec()
    }

    /// Decodes a chain as sent (leaf first) with the one decoder.
    fn decoded(ders: &[&[u8]]) -> Vec<CertSummary> {
        ders.iter()
            .enumerate()
            .map(|(i, d)| decode_certificate(i, d).unwrap())
            .collect()
    }

    fn by_name(chain: &[CertSummary], org: &str) -> IssuerJudgement {
        judge(chain, chain.len(), &IssuerExpectation { org, pinned: None }).expect("a chain")
    }

    fn pinned(chain: &[CertSummary], cas: &[&Ca]) -> IssuerJudgement {
        let pem: String = cas.iter().map(|c| c.pem()).collect();
        let pinned = PinnedCas::from_pem(pem.as_bytes(), "test").unwrap();
        judge(
            chain,
            chain.len(),
            &IssuerExpectation {
                org: "Zscaler",
                pinned: Some(&pinned),
            },
        )
        .expect("a chain")
    }

    fn genuine(org: &str, by: IssuerCheck) -> IssuerJudgement {
        IssuerJudgement::Genuine {
            org: org.into(),
            by,
        }
    }

    fn foreign(name: &str, depth: usize, by: IssuerCheck) -> IssuerJudgement {
        IssuerJudgement::Foreign {
            issuer_named: name.into(),
            depth,
            by,
        }
    }

    #[test]
    fn genuine_chains_of_one_two_and_three_certificates() {
        let zroot = root(Some("Zscaler Inc."), "Zscaler Root CA");
        let zinter = intermediate(Some("Zscaler Inc."), "Zscaler Intermediate Root CA", &zroot);
        let leaf = leaf_by(&zinter);
        let one = decoded(&[&leaf]);
        let two = decoded(&[&leaf, zinter.der()]);
        let three = decoded(&[&leaf, zinter.der(), zroot.der()]);
        for chain in [&one, &two, &three] {
            assert_eq!(
                by_name(chain, "Zscaler"),
                genuine("Zscaler Inc.", IssuerCheck::ByName),
                "{} certificates",
                chain.len()
            );
        }
        // Pinned to the root: the leaf alone does not reach it (its issuer,
        // the intermediate, is not sent), the others do.
        assert_eq!(
            pinned(&one, &[&zroot]),
            foreign("Zscaler Inc.", 0, IssuerCheck::PinnedCa)
        );
        for chain in [&two, &three] {
            assert_eq!(
                pinned(chain, &[&zroot]),
                genuine("Zscaler Inc.", IssuerCheck::PinnedCa)
            );
        }
        // Pinning the intermediate as well lets the bare leaf verify.
        assert_eq!(
            pinned(&one, &[&zroot, &zinter]),
            genuine("Zscaler Inc.", IssuerCheck::PinnedCa)
        );
        // The order the server sent them in does not matter.
        let shuffled = decoded(&[&leaf, zroot.der(), zinter.der()]);
        assert_eq!(
            pinned(&shuffled, &[&zroot]),
            genuine("Zscaler Inc.", IssuerCheck::PinnedCa)
        );
    }

    #[test]
    fn a_foreign_leaf_issuer_is_named_at_depth_zero() {
        let sroot = root(Some("Safemarch Inc"), "Safemarch Root");
        let sca = intermediate(Some("Safemarch Inc"), "Safemarch Inc CA", &sroot);
        let leaf = leaf_by(&sca);
        let chain = decoded(&[&leaf, sca.der(), sroot.der()]);
        assert_eq!(
            by_name(&chain, "Zscaler"),
            foreign("Safemarch Inc", 0, IssuerCheck::ByName)
        );
        // An issuer without O= is named by its CN.
        let anon = root(None, "Corporate Inspection CA");
        let chain = decoded(&[&leaf_by(&anon)]);
        assert_eq!(
            by_name(&chain, "Zscaler"),
            foreign("Corporate Inspection CA", 0, IssuerCheck::ByName)
        );
        let zroot = root(Some("Zscaler Inc."), "Zscaler Root CA");
        assert_eq!(
            pinned(&chain, &[&zroot]),
            foreign("Corporate Inspection CA", 0, IssuerCheck::PinnedCa)
        );
    }

    #[test]
    fn a_foreign_intermediate_issuer_is_named_at_its_depth() {
        // The interceptor copies the broker CA's name into its own
        // intermediate, signed by its corporate root.
        let corp = root(Some("Acme Corp"), "Acme Root");
        let fake = intermediate(Some("Zscaler Inc."), "Zscaler Intermediate Root CA", &corp);
        let leaf = leaf_by(&fake);
        let chain = decoded(&[&leaf, fake.der()]);
        assert_eq!(
            by_name(&chain, "Zscaler"),
            foreign("Acme Corp", 1, IssuerCheck::ByName)
        );
        let zroot = root(Some("Zscaler Inc."), "Zscaler Root CA");
        assert_eq!(
            pinned(&chain, &[&zroot]),
            foreign("Acme Corp", 1, IssuerCheck::PinnedCa)
        );
        // The old rule ("any issuer names it") called a chain genuine whose
        // leaf is issued by a foreign CA under a Zscaler-named one.
        let zinter = intermediate(Some("Zscaler Inc."), "Zscaler Intermediate", &zroot);
        let sub = intermediate(Some("Sub CA Ltd"), "Sub CA", &zinter);
        let chain = decoded(&[&leaf_by(&sub), sub.der()]);
        assert_eq!(
            by_name(&chain, "Zscaler"),
            foreign("Sub CA Ltd", 0, IssuerCheck::ByName)
        );
    }

    #[test]
    fn a_self_signed_leaf_claiming_the_organisation_is_not_genuine() {
        let mut p = CertificateParams::new(vec!["co2br.prod.zpath.net".to_string()]).unwrap();
        p.distinguished_name = dn(Some("Zscaler Inc."), "co2br.prod.zpath.net");
        let leaf = p.self_signed(&KeyPair::generate().unwrap()).unwrap();
        let chain = decoded(&[leaf.der()]);
        assert!(chain[0].self_signed);
        assert_eq!(
            by_name(&chain, "zscaler"),
            IssuerJudgement::SelfSignedClaim {
                org: "Zscaler Inc.".into(),
                subject: "O=Zscaler Inc., CN=co2br.prod.zpath.net".into(),
            }
        );
        // Pinned, it simply does not chain to the broker's CA.
        let zroot = root(Some("Zscaler Inc."), "Zscaler Root CA");
        assert_eq!(
            pinned(&chain, &[&zroot]),
            foreign("Zscaler Inc.", 0, IssuerCheck::PinnedCa)
        );
        // A self-signed leaf that does not claim it is plainly foreign.
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = dn(Some("FortiGate"), "FGT60F");
        let other = p.self_signed(&KeyPair::generate().unwrap()).unwrap();
        assert_eq!(
            by_name(&decoded(&[other.der()]), "Zscaler"),
            foreign("FortiGate", 0, IssuerCheck::ByName)
        );
    }

    #[test]
    fn the_name_is_matched_case_insensitively_as_a_substring_of_an_o_value() {
        let chain = [
            summary(0, "CN=b", "O=ZSCALER, INC., CN=ca", false),
            summary(1, "O=ZSCALER, INC., CN=ca", "O=zscaler root", false),
        ];
        assert_eq!(
            by_name(&chain, "Zscaler"),
            genuine("ZSCALER", IssuerCheck::ByName)
        );
        assert_eq!(
            by_name(&chain, "zScAlEr"),
            genuine("ZSCALER", IssuerCheck::ByName)
        );
        // A CN is not an organisation.
        let cn_only = [summary(0, "CN=b", "CN=Zscaler Root", false)];
        assert_eq!(
            by_name(&cn_only, "Zscaler"),
            foreign("Zscaler Root", 0, IssuerCheck::ByName)
        );
    }

    #[test]
    fn a_same_name_ca_with_another_key_fails_the_pinned_check() {
        let zroot = root(Some("Zscaler Inc."), "Zscaler Root CA");
        // Same organisation, other CN: an unknown issuer.
        let impostor = root(Some("Zscaler Inc."), "Zscaler Inspection CA");
        let chain = decoded(&[&leaf_by(&impostor)]);
        assert_eq!(
            by_name(&chain, "Zscaler"),
            genuine("Zscaler Inc.", IssuerCheck::ByName)
        );
        assert_eq!(
            pinned(&chain, &[&zroot]),
            foreign("Zscaler Inc.", 0, IssuerCheck::PinnedCa)
        );
        // Same whole name as the pinned root, another key: the signature
        // does not verify.
        let twin = root(Some("Zscaler Inc."), "Zscaler Root CA");
        let chain = decoded(&[&leaf_by(&twin), twin.der()]);
        assert_eq!(chain[1].subject, decoded(&[zroot.der()])[0].subject);
        assert_eq!(
            pinned(&chain, &[&zroot]),
            foreign("Zscaler Inc.", 0, IssuerCheck::PinnedCa)
        );
        // And the genuine chain passes with the same pin.
        let genuine_chain = decoded(&[&leaf_by(&zroot)]);
        assert_eq!(
            pinned(&genuine_chain, &[&zroot]),
            genuine("Zscaler Inc.", IssuerCheck::PinnedCa)
        );
    }

    #[test]
    fn validity_dates_do_not_decide_the_pinned_check() {
        let zroot = root(Some("Zscaler Inc."), "Zscaler Root CA");
        let mut p = CertificateParams::new(vec!["co2br.prod.zpath.net".to_string()]).unwrap();
        p.not_before = rcgen::date_time_ymd(2099, 1, 1);
        p.not_after = rcgen::date_time_ymd(2100, 1, 1);
        let future = p.signed_by(&KeyPair::generate().unwrap(), &zroot).unwrap();
        let chain = decoded(&[future.der()]);
        assert_eq!(
            pinned(&chain, &[&zroot]),
            genuine("Zscaler Inc.", IssuerCheck::PinnedCa)
        );
    }

    #[test]
    fn undecodable_certificates_are_not_called_foreign() {
        let zroot = root(Some("Zscaler Inc."), "Zscaler Root CA");
        let zinter = intermediate(Some("Zscaler Inc."), "Zscaler Intermediate", &zroot);
        // The intermediate was sent but could not be decoded.
        let chain = decoded(&[&leaf_by(&zinter)]);
        let pin = PinnedCas::from_pem(zroot.pem().as_bytes(), "test").unwrap();
        let j = judge(
            &chain,
            2,
            &IssuerExpectation {
                org: "Zscaler",
                pinned: Some(&pin),
            },
        );
        assert!(
            matches!(&j, Some(IssuerJudgement::Unverifiable { reason, by: IssuerCheck::PinnedCa }) if reason.contains("1 of its 2")),
            "{j:?}"
        );
        // The leaf itself undecodable: nothing to judge by name either.
        let mut chain = decoded(&[zinter.der()]);
        chain[0].index = 1;
        assert!(matches!(
            judge(
                &chain,
                2,
                &IssuerExpectation {
                    org: "Zscaler",
                    pinned: None
                }
            ),
            Some(IssuerJudgement::Unverifiable { .. })
        ));
        assert_eq!(
            judge(
                &[],
                0,
                &IssuerExpectation {
                    org: "Zscaler",
                    pinned: None
                }
            ),
            None
        );
    }

    #[test]
    fn bad_expect_ca_files_are_clear_errors() {
        let e = PinnedCas::from_pem(b"hello", "ca.pem").unwrap_err();
        assert!(matches!(e, ExpectCaError::Empty { .. }), "{e}");
        assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
        let e = PinnedCas::from_pem(
            b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
            "ca.pem",
        )
        .unwrap_err();
        assert!(matches!(e, ExpectCaError::Pem { .. }), "{e}");
        let e = PinnedCas::from_pem(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "ca.pem",
        )
        .unwrap_err();
        assert!(
            matches!(e, ExpectCaError::BadCertificate { number: 1, .. }),
            "{e}"
        );
        let e = PinnedCas::load(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(matches!(e, ExpectCaError::Read { .. }), "{e}");
        // Two CAs, with a key between them: both kept.
        let a = root(Some("A"), "A root");
        let b = root(Some("B"), "B root");
        let key = KeyPair::generate().unwrap().serialize_pem();
        let text = format!("{}{key}{}", a.pem(), b.pem());
        let p = PinnedCas::from_pem(text.as_bytes(), "ca.pem").unwrap();
        assert_eq!(p.subjects, ["O=A, CN=A root", "O=B, CN=B root"]);
    }
}
