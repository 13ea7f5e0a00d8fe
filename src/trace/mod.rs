//! `pathproof trace`: an MTR-style tracer (ICMP, TCP, UDP; IPv4 and IPv6)
//! separated from its I/O.
//!
//! - [`probe`]: probes, their lifecycle ([`ProbeStatus`]), replies and how a
//!   reply is matched to its probe;
//! - [`net`]: the [`Network`] and [`Clock`] traits the engine runs on;
//! - [`engine`]: [`Tracer`], rounds of probes bounded by count and time,
//!   recording every packet for `--save`;
//! - [`stats`]: per-hop [`HopStats`] (loss, RTTs, addresses, reply TTLs);
//!
//! What the numbers mean (rate limiting vs loss, a protocol blocked, a
//! middlebox answering for the target) is judged by the analysis
//! (`crate::analysis::rules::path`); the tracer imports none of it.
//!
//! Probe bytes come from [`crate::packet::emit`] and every received packet is
//! decoded by [`crate::packet::decode_ip`]: the tracer reads no bytes itself.
//!
//! ```
//! use pathproof::trace::{TraceConfig, TraceProtocol};
//! let mut config = TraceConfig::new("192.0.2.7".parse().unwrap(), TraceProtocol::Tcp { port: 443 });
//! config.rounds = 5;
//! assert!(config.validate().is_ok());
//! assert_eq!(config.max_duration(), std::time::Duration::from_secs(5));
//! ```

pub mod engine;
pub mod live;
pub mod net;
pub mod probe;
pub mod socket;
pub mod stats;

pub use engine::{
    MAX_ROUNDS, MIN_INTERVAL, Progress, RECORD_LIMIT, Recorded, Round, Trace, TraceConfig,
    TraceCounters, Tracer,
};
pub use net::{Clock, Instant, ManualClock, Network, ProbeRequest, RecvPacket, SystemClock};
pub use probe::{Probe, ProbeComplete, ProbeLost, ProbeStatus, Reply, ReplyKind, TraceProtocol};
pub use stats::{AddrSeen, HopStats, KindSeen, RttStats, TtlSeen};

use crate::packet::emit::EmitError;
use std::fmt;
use std::net::IpAddr;

/// What the I/O layer was doing when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoOp {
    /// Opening or configuring a socket.
    Open,
    /// Finding the source address toward a target.
    SourceAddr {
        target: IpAddr,
    },
    Send {
        dst: IpAddr,
        ttl: u8,
    },
    Recv,
}

impl fmt::Display for IoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoOp::Open => f.write_str("opening the probe socket"),
            IoOp::SourceAddr { target } => write!(f, "finding the source address toward {target}"),
            IoOp::Send { dst, ttl } => write!(f, "sending a probe to {dst} with TTL {ttl}"),
            IoOp::Recv => f.write_str("receiving replies"),
        }
    }
}

/// Why a trace could not run.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("invalid trace option {field}: {reason}")]
    Config {
        field: &'static str,
        reason: &'static str,
    },
    #[error("cannot build a probe: {0}")]
    Emit(#[from] EmitError),
    #[error("{op}: {source}")]
    Io {
        op: IoOp,
        #[source]
        source: std::io::Error,
    },
    #[error("every probe of round {round} failed to send")]
    SendFailed {
        round: u32,
        #[source]
        source: Box<TraceError>,
    },
    #[error(
        "the network returned {times} times in a row before the deadline without a packet \
         (it must block until a packet or the deadline)"
    )]
    Stalled { times: u32 },
}
