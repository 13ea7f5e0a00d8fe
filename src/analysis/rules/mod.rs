//! The rules: each judges one kind of observation, once, for every command
//! (`pcap`, `check`, `trace`, `egress`). A rule turns observations into
//! findings; [`super::picker`] turns findings and candidate verdicts into
//! the one verdict.

pub(super) mod dns;
pub mod dns_hijack;
pub mod dns_lookup;
pub mod egress;
pub mod host;
mod icmp;
pub mod issuer;
pub mod journal;
pub mod path;
pub mod pmtu;
pub mod probe;
mod proxy;
mod rst;
pub(super) mod server;
mod server_alert;
pub mod sni_replay;
mod syn;
mod tls;
#[cfg(test)]
mod tls_cases;
pub mod ttl_probe;
pub mod validity;
