//! The path toward the target: hops with addresses and statistics.
//!
//! A path comes from a hop count given by the user (`--hops N`), from a
//! customer's mtr report (`--mtr FILE`, text or JSON, see [`mtr`]), or, later,
//! from pathproof's own trace.

pub mod mtr;
pub mod trace_json;

use serde::Serialize;
use std::net::IpAddr;

/// Where the path came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathSource {
    /// `--hops N`: only the target's hop is known.
    HopCount,
    /// An mtr text report (`mtr -r`, `-rw`, `-rwbzc N`, ...).
    MtrReport,
    /// `mtr --json`.
    MtrJson,
    /// `pathproof trace --json`.
    PathproofTrace,
    /// pathproof's own traceroute probes found in the capture.
    CaptureTrace,
}

/// Latency and loss of one hop, as mtr reports them (milliseconds, percent).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HopStats {
    pub loss_pct: f64,
    pub sent: u32,
    pub last_ms: f64,
    pub avg_ms: f64,
    pub best_ms: f64,
    pub worst_ms: f64,
    pub stdev_ms: f64,
}

/// One hop (traceroute TTL) of the path.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hop {
    /// Traceroute hop number: the first router is 1.
    pub hop: u8,
    /// Every address that answered at this hop (several under ECMP); empty for `???`.
    pub addresses: Vec<IpAddr>,
    /// Reverse names as the report printed them, parallel to nothing: may be empty.
    pub names: Vec<String>,
    /// AS number as printed by `mtr -z` (`AS16509`), `None` for `AS???` or absent.
    pub asn: Option<u32>,
    pub stats: Option<HopStats>,
}

/// Hops toward a target, and the hop at which the target itself answers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Path {
    pub source: PathSource,
    /// The destination the path was traced to, when known.
    pub target: Option<IpAddr>,
    /// The target's hop number, when known (the broker's hop count).
    pub target_hop: Option<u8>,
    pub hops: Vec<Hop>,
}

impl Path {
    /// A path of which only the target's hop count is known (`--hops N`).
    pub fn from_hop_count(target_hop: u8) -> Path {
        Path {
            source: PathSource::HopCount,
            target: None,
            target_hop: Some(target_hop),
            hops: Vec::new(),
        }
    }

    /// The first address seen at `hop`, if the path knows it.
    pub fn address_at(&self, hop: u8) -> Option<IpAddr> {
        self.hops
            .iter()
            .find(|h| h.hop == hop)
            .and_then(|h| h.addresses.first().copied())
    }

    /// The hop at which `addr` answered, if it appears in the path.
    pub fn hop_of(&self, addr: IpAddr) -> Option<u8> {
        self.hops
            .iter()
            .find(|h| h.addresses.contains(&addr))
            .map(|h| h.hop)
    }
}
