//! Reads `pathproof trace --json` back as a [`Path`], so a trace taken on
//! the connector can place the resets of a capture taken there too.

use super::{Hop, HopStats, Path, PathSource};
use serde::Deserialize;
use std::net::IpAddr;

#[derive(Deserialize)]
struct TraceDoc {
    command: String,
    target: Option<IpAddr>,
    target_hop: Option<u8>,
    hops: Vec<TraceHop>,
    control: Option<ControlDoc>,
}

#[derive(Deserialize)]
struct ControlDoc {
    target_hop: Option<u8>,
    hops: Vec<TraceHop>,
}

#[derive(Deserialize)]
struct TraceHop {
    ttl: u8,
    addresses: Vec<IpAddr>,
    #[serde(default)]
    names: Vec<Option<String>>,
    loss_pct: f64,
    sent: u32,
    rtt_ms: Option<Rtt>,
}

#[derive(Deserialize)]
struct Rtt {
    last: f64,
    avg: f64,
    best: f64,
    worst: f64,
    stdev: f64,
}

/// Whether `text` looks like `pathproof trace --json` output.
pub fn looks_like_trace(text: &str) -> bool {
    let head: String = text.chars().take(512).collect();
    head.trim_start().starts_with('{') && head.contains("\"command\"") && head.contains("\"trace\"")
}

/// Parses `pathproof trace --json`. When the trace's own protocol did not
/// reach the target (TCP blocked) but its ICMP control trace did, the
/// control's hops give the path.
pub fn parse(text: &str) -> Result<Path, String> {
    let doc: TraceDoc =
        serde_json::from_str(text).map_err(|e| format!("pathproof trace JSON: {e}"))?;
    if doc.command != "trace" {
        return Err(format!(
            "pathproof JSON of command {:?}, not trace",
            doc.command
        ));
    }
    let (hops, target_hop) = match (doc.target_hop, doc.control) {
        (Some(h), _) => (doc.hops, Some(h)),
        (None, Some(c)) if c.target_hop.is_some() => (c.hops, c.target_hop),
        (None, _) => (doc.hops, None),
    };
    Ok(Path {
        source: PathSource::PathproofTrace,
        target: doc.target,
        target_hop,
        hops: hops
            .into_iter()
            .map(|h| Hop {
                hop: h.ttl,
                addresses: h.addresses,
                names: h.names.into_iter().flatten().collect(),
                asn: None,
                stats: h.rtt_ms.map(|r| HopStats {
                    loss_pct: h.loss_pct,
                    sent: h.sent,
                    last_ms: r.last,
                    avg_ms: r.avg,
                    best_ms: r.best,
                    worst_ms: r.worst,
                    stdev_ms: r.stdev,
                }),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP_BLOCKED: &str = r#"{"schema_version":1,"command":"trace","target":"198.18.4.2",
      "target_hop":null,
      "hops":[{"ttl":1,"addresses":["198.18.1.2"],"names":[null],"loss_pct":0.0,"sent":3,
               "rtt_ms":{"last":0.1,"avg":0.1,"best":0.1,"worst":0.1,"stdev":0.0}}],
      "control":{"protocol":"icmp","target_hop":4,"hops":[
        {"ttl":1,"addresses":["198.18.1.2"],"loss_pct":0.0,"sent":3,"rtt_ms":null},
        {"ttl":2,"addresses":["198.18.2.2"],"loss_pct":0.0,"sent":3,"rtt_ms":null},
        {"ttl":3,"addresses":[],"loss_pct":100.0,"sent":3,"rtt_ms":null},
        {"ttl":4,"addresses":["198.18.4.2"],"loss_pct":0.0,"sent":3,"rtt_ms":null}]}}"#;

    #[test]
    fn blocked_tcp_trace_takes_the_icmp_control_path() {
        assert!(looks_like_trace(TCP_BLOCKED));
        let p = parse(TCP_BLOCKED).unwrap();
        assert_eq!(p.source, PathSource::PathproofTrace);
        assert_eq!(p.target_hop, Some(4));
        assert_eq!(p.address_at(2), Some("198.18.2.2".parse().unwrap()));
        assert_eq!(p.address_at(3), None);
    }

    #[test]
    fn other_json_is_refused() {
        assert!(parse(r#"{"command":"pcap","hops":[]}"#).is_err());
        assert!(parse("{").is_err());
        assert!(!looks_like_trace(r#"{"report":{"mtr":{}}}"#));
    }
}
