//! Observations from live sources (`check`, and `egress` next): what the
//! host and the active probes saw, in the analysis's own terms. The sources
//! fill these in; the rules in [`super::rules`] judge them. Packets have
//! their own path ([`super::Analyzer`]); these are the facts a capture
//! cannot hold.

use std::net::IpAddr;
use std::time::Duration;

/// Everything a check observed beside its recording.
#[derive(Clone, Debug, Default)]
pub struct HostObservations {
    pub resolv: Option<ResolvObservation>,
    /// DNS lookups that failed (NXDOMAIN, SERVFAIL, silence, no address).
    pub lookup_failures: Vec<LookupFailure>,
    pub clock: Option<ClockObservation>,
    pub brokers: Vec<BrokerObservation>,
    /// Whether the probes' packets were recorded (and so analysed as a
    /// capture); without a recording the probes' own results are all.
    pub recorded: bool,
    /// The local clock (Unix seconds) certificates are judged against.
    pub now_unix: i64,
}

/// Whether the connector's service user can read resolv.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolvAccess {
    Readable,
    Unreadable { reason: String },
    NoSuchUser,
    Unknown { reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvObservation {
    pub path: String,
    pub service_user: String,
    pub access: ResolvAccess,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LookupFailure {
    /// What failed (judged from the lookup by [`super::rules::dns_lookup`]).
    pub failure: super::rules::dns_lookup::DnsFailure,
    pub elapsed: Duration,
}

/// SNTP samples and the threshold above which the offset is skew.
#[derive(Clone, Debug, PartialEq)]
pub struct ClockObservation {
    pub samples: Vec<ClockSample>,
    pub threshold: Duration,
}

/// One SNTP answer (RFC 5905 offset θ and delay δ; positive offset: the
/// local clock is behind).
#[derive(Clone, Debug, PartialEq)]
pub struct ClockSample {
    pub server: String,
    pub offset_secs: f64,
    pub delay_secs: f64,
}

/// What the probes of one broker address saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BrokerObservation {
    pub address: Option<IpAddr>,
    pub port: u16,
    pub tls: Option<TlsProbeObservation>,
    pub pmtu: Option<PmtuObservation>,
    /// Probes that could not run, in words.
    pub errors: Vec<String>,
}

/// How the TCP connect of the TLS probe ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectResult {
    Connected,
    /// A reset answered the SYN (the reset's TTL is not visible to connect()).
    Refused,
    /// No answer within the connect timeout.
    Timeout,
    /// Unreachable, or any other error.
    Failed,
}

/// What answered the ClientHello when no ServerHello came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloAnswer {
    Reset,
    Fin,
    /// Nothing: no reset, no FIN, no byte within the timeout.
    Silence,
}

/// A live TLS handshake, as the prober saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct TlsProbeObservation {
    pub sni: Option<String>,
    pub connect: ConnectResult,
    /// The handshake completed.
    pub completed: bool,
    /// The ClientHello got no ServerHello: what answered it, in words too.
    pub hello_answer: Option<(HelloAnswer, String)>,
    /// The certificates the server presented, decoded (the issuer and the
    /// validity rules judge them), and how many it sent (some may not
    /// decode).
    pub certificates: Vec<crate::analysis::tls::CertSummary>,
    pub chain_len: usize,
    /// The handshake in one line (version, cipher, chain).
    pub summary: String,
    /// The ClientHello replayed with growing TTLs: its conclusion in words
    /// and the hop of the filter it places.
    pub replay: Option<(String, Option<u8>)>,
}

/// A path-MTU search toward a broker.
#[derive(Clone, Debug, PartialEq)]
pub struct PmtuObservation {
    /// Large packets vanished without ICMP while smaller ones passed.
    pub blackhole: bool,
    /// The last hop the failing size still reaches (TTL-limited probes).
    pub blackhole_after_hop: Option<u8>,
    pub blackhole_after_address: Option<IpAddr>,
    /// A fragmentation-needed / packet-too-big: MTU, sender and its hop.
    pub reported_mtu: Option<u16>,
    pub reported_by: Option<IpAddr>,
    pub reported_hop: Option<u8>,
    pub largest_passing: Option<u16>,
    /// The search in one sentence.
    pub summary: String,
}
