//! TTL-limited probes in a capture place the filter that answers them.
//!
//! Censorship measurements (and a careful engineer with `hping3`/`scapy`)
//! resend the ClientHello with IP TTL 1, 2, 3...: each copy expires at the
//! hop its TTL names, and that router's ICMP time-exceeded quotes it. A
//! device that filters on the ClientHello answers the first copy that
//! reaches it with a reset. So the smallest TTL whose copy is answered by a
//! reset places the device at that hop — provided the copy could not have
//! reached the server (its TTL is below the server's hop, or a router beyond
//! that TTL sent time-exceeded for a copy). This is the strongest hop
//! evidence a capture can hold: it does not depend on the TTL the reset
//! carries, which an injector may randomise.

use crate::analysis::flows::{FlowRecord, IcmpEvent, ProbeSegment};
use crate::packet::IcmpKind;
use std::net::IpAddr;

/// Where the capture's TTL-limited probes place a filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbePlacement {
    /// The hop: the smallest probe TTL answered by a reset.
    pub hop: u8,
    /// The probe that reached the filter and the reset that answered it.
    pub probe_frame: u64,
    pub reset_frame: u64,
    /// The hop's address, when a router there also sent time-exceeded.
    pub address: Option<IpAddr>,
    /// The largest TTL below `hop` whose probe expired at a router
    /// (time-exceeded, with its frame and address) without a reset: the
    /// device is after that router.
    pub below: Option<(u8, u64, IpAddr)>,
    /// Why the probe cannot have reached the server.
    pub why_not_server: String,
    /// Probes sent and time-exceeded answers seen, for the report.
    pub probes: usize,
    pub expired: usize,
}

/// A time-exceeded answer matched to the probe it quotes.
struct Expired {
    ttl: u8,
    frame: u64,
    from: IpAddr,
}

/// Matches each time-exceeded error of a flow to the probe it quotes: by
/// the quoted IP ID when both carry one, else the last probe with the
/// quoted sequence number sent before the error.
fn expired(f: &FlowRecord) -> Vec<Expired> {
    let quotes = |e: &IcmpEvent, p: &ProbeSegment| {
        p.frame < e.packet.frame
            && e.quoted_seq.is_none_or(|s| s == p.seq)
            && match (e.quoted_ip_id, p.ip_id) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    };
    f.icmp_errors
        .iter()
        .filter(|e| e.kind == IcmpKind::TimeExceeded)
        .filter_map(|e| {
            let p = f.probes.iter().rev().find(|p| quotes(e, p))?;
            Some(Expired {
                ttl: p.ttl,
                frame: e.packet.frame,
                from: e.from,
            })
        })
        .collect()
}

/// Places the filter from the probes of one server's flows, if they show it.
/// `server_hop` is the server's hop from its genuine packets or the path.
pub fn place(flows: &[&FlowRecord], server_hop: Option<u8>) -> Option<ProbePlacement> {
    let mut answered: Vec<(u8, u64, u64)> = Vec::new();
    let mut expired_all: Vec<Expired> = Vec::new();
    let mut probes = 0;
    for f in flows {
        if f.probes.is_empty() {
            continue;
        }
        probes += f.probes.len();
        expired_all.extend(expired(f));
        for r in f.rsts.iter().filter(|r| r.from_server) {
            if let Some(t) = r.answers.filter(|t| t.probe_ttl.is_some()) {
                answered.push((t.probe_ttl.unwrap_or(0), t.frame, r.packet.frame));
            }
        }
    }
    let farthest_expired = expired_all.iter().map(|e| e.ttl).max();
    let (hop, probe_frame, reset_frame) = answered
        .into_iter()
        .filter(|(ttl, _, _)| {
            server_hop.is_some_and(|s| *ttl < s) || farthest_expired.is_some_and(|e| e >= *ttl)
        })
        .min()?;
    let why_not_server = match (server_hop, farthest_expired) {
        (Some(s), _) if hop < s => format!("the server is at hop {s}"),
        (_, Some(e)) => format!("copies with TTL up to {e} expired at routers on the way"),
        _ => String::new(),
    };
    let address = expired_all.iter().find(|e| e.ttl == hop).map(|e| e.from);
    let below = expired_all
        .iter()
        .filter(|e| e.ttl < hop)
        .max_by_key(|e| (e.ttl, std::cmp::Reverse(e.frame)))
        .map(|e| (e.ttl, e.frame, e.from));
    Some(ProbePlacement {
        hop,
        probe_frame,
        reset_frame,
        address,
        below,
        why_not_server,
        probes,
        expired: expired_all.len(),
    })
}
