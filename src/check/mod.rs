//! `pathproof check`: the live diagnosis from the connector host.
//!
//! DNS ([`dns`], [`resolv`]) → traces (the tracer of [`crate::trace`]) →
//! TCP + TLS ([`tls`]) → clock ([`sntp`]) → path MTU ([`pmtu`]), while
//! [`recorder`] captures every packet of the run, so that one verdict comes
//! from the same analysis engine as `pathproof pcap` over those packets.

pub mod dns;
pub mod pmtu;
pub mod recorder;
pub mod resolv;
pub mod sntp;
pub mod tls;
