//! The certificate-validity rule: which certificates of a presented chain
//! are not yet valid, or no longer valid, at a given time. One rule for
//! `pcap` (the time is the capture's: the connector's clock stamped it) and
//! `check` (the time is the local clock's).
//!
//! A certificate counts as not yet valid when the time is before its
//! notBefore, and as expired when the time is after its notAfter (both
//! bounds are inclusive: valid at exactly notBefore and notAfter, as RFC 5280
//! §4.1.2.5 says). Every certificate of the chain is judged, leaf first;
//! certificates that could not be decoded have no dates and are not judged.
//! What a problem means is the caller's to say: a clock behind (not yet
//! valid) or ahead (expired), or a stale certificate.

use crate::analysis::tls::CertSummary;
use serde::Serialize;
use std::fmt;

/// A certificate that is not valid at the time given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "problem")]
pub enum ValidityProblem {
    /// notBefore is `by_s` seconds after the time: the clock is behind by
    /// at least that much (minus the issuer's backdating), or the
    /// certificate was minted in the future.
    NotYetValid {
        /// Position in the chain as sent (0 = the server's own certificate).
        index: usize,
        /// The subject's CN, else the whole subject.
        subject: String,
        by_s: i64,
        /// Unix seconds.
        not_before: i64,
    },
    /// notAfter was `ago_s` seconds before the time.
    Expired {
        index: usize,
        subject: String,
        ago_s: i64,
        not_after: i64,
    },
}

impl fmt::Display for ValidityProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let which = |i: &usize| {
            if *i == 0 {
                "the leaf".to_string()
            } else {
                format!("chain certificate {i}")
            }
        };
        match self {
            ValidityProblem::NotYetValid {
                index,
                subject,
                by_s,
                ..
            } => write!(
                f,
                "{} ({subject}) is not valid for another {} s (notBefore in the future)",
                which(index),
                by_s
            ),
            ValidityProblem::Expired {
                index,
                subject,
                ago_s,
                ..
            } => write!(f, "{} ({subject}) expired {} s ago", which(index), ago_s),
        }
    }
}

/// The validity problems of each certificate of `chain` at `now_unix`
/// (Unix seconds), leaf first.
pub fn validity_at(chain: &[CertSummary], now_unix: i64) -> Vec<ValidityProblem> {
    chain
        .iter()
        .filter_map(|c| {
            let subject = c.subject_cn.clone().unwrap_or_else(|| c.subject.clone());
            if now_unix < c.not_before {
                Some(ValidityProblem::NotYetValid {
                    index: c.index,
                    subject,
                    by_s: c.not_before.saturating_sub(now_unix),
                    not_before: c.not_before,
                })
            } else if now_unix > c.not_after {
                Some(ValidityProblem::Expired {
                    index: c.index,
                    subject,
                    ago_s: now_unix.saturating_sub(c.not_after),
                    not_after: c.not_after,
                })
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::rules::issuer::tests::summary;

    #[test]
    fn problems_leaf_first_with_positions_as_sent() {
        let mut leaf = summary(0, "CN=x", "O=CA", false);
        leaf.subject_cn = Some("x".into());
        (leaf.not_before, leaf.not_after) = (1_000, 2_000);
        let mut ca = summary(1, "O=CA", "O=CA", true);
        (ca.not_before, ca.not_after) = (0, 1_200);
        let chain = [leaf, ca];
        assert!(validity_at(&chain, 1_100).is_empty());
        assert!(validity_at(&chain, 1_000).is_empty(), "notBefore is valid");
        assert!(validity_at(&chain, 1_200).is_empty(), "notAfter is valid");
        assert_eq!(
            validity_at(&chain, 400),
            vec![ValidityProblem::NotYetValid {
                index: 0,
                subject: "x".into(),
                by_s: 600,
                not_before: 1_000,
            }]
        );
        assert_eq!(
            validity_at(&chain, 1_500),
            vec![ValidityProblem::Expired {
                index: 1,
                subject: "O=CA".into(),
                ago_s: 300,
                not_after: 1_200,
            }]
        );
        // Both at once: the leaf's first.
        assert_eq!(validity_at(&chain, 2_500).len(), 2);
        assert!(matches!(
            validity_at(&chain, 2_500)[0],
            ValidityProblem::Expired { index: 0, .. }
        ));
    }
}
