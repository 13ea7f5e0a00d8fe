//! TTL → hop arithmetic.
//!
//! A packet sent by the device at traceroute hop k crossed k−1 routers before
//! it reached us. With initial TTL T (the smallest of 32, 64, 128, 255 that is
//! ≥ the observed TTL t), k = T − t + 1. TTL 63 therefore means hop 2, not 1
//! (the runbook's "64 − TTL" counts routers crossed, one less than the hop).

use serde::Serialize;

/// Initial TTLs in use by common stacks: rare 32, Linux/BSD/macOS 64,
/// Windows 128, router control planes 255.
const INITIAL_TTLS: [u8; 4] = [32, 64, 128, 255];

/// The hop a packet came from, inferred from its TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct HopEstimate {
    /// Observed TTL (or hop limit).
    pub ttl: u8,
    /// Inferred initial TTL of the sender.
    pub initial_ttl: u8,
    /// Traceroute hop of the sender: initial − observed + 1.
    pub hop: u8,
    /// True when the initial TTL is a guess between two candidates (TTL ≤ 32
    /// may be 32 or 64 far away).
    pub ambiguous: bool,
}

impl HopEstimate {
    pub fn from_ttl(ttl: u8) -> HopEstimate {
        // 255 is the last candidate, so this always finds one.
        let initial_ttl = INITIAL_TTLS
            .iter()
            .copied()
            .find(|&t| t >= ttl)
            .unwrap_or(255);
        HopEstimate {
            ttl,
            initial_ttl,
            hop: initial_ttl - ttl + 1,
            ambiguous: ttl <= 32,
        }
    }

    /// The hop assuming a given initial TTL (e.g. the one genuine packets of
    /// the same sender use); `None` when the TTL is above it.
    pub fn hop_with_initial(ttl: u8, initial_ttl: u8) -> Option<u8> {
        (ttl <= initial_ttl).then(|| initial_ttl - ttl + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_examples() {
        // A genuine RST from a broker at hop 6 with initial TTL 64 arrives with 59.
        assert_eq!(HopEstimate::from_ttl(59).hop, 6);
        // An RST with TTL 63 came from hop 2; with 64 from hop 1.
        assert_eq!(HopEstimate::from_ttl(63).hop, 2);
        assert_eq!(HopEstimate::from_ttl(64).hop, 1);
        // Windows-like 128 and router-like 255.
        assert_eq!(HopEstimate::from_ttl(126).hop, 3);
        assert_eq!(HopEstimate::from_ttl(126).initial_ttl, 128);
        assert_eq!(HopEstimate::from_ttl(255).hop, 1);
        assert_eq!(HopEstimate::from_ttl(250).hop, 6);
    }

    #[test]
    fn boundaries_and_ambiguity() {
        let e = HopEstimate::from_ttl(65);
        assert_eq!((e.initial_ttl, e.hop), (128, 64));
        assert!(HopEstimate::from_ttl(30).ambiguous);
        assert!(!HopEstimate::from_ttl(33).ambiguous);
        assert_eq!(HopEstimate::from_ttl(33).initial_ttl, 64);
        assert_eq!(HopEstimate::from_ttl(0).hop, 33);
        assert_eq!(HopEstimate::hop_with_initial(61, 64), Some(4));
        assert_eq!(HopEstimate::hop_with_initial(70, 64), None);
    }
}
