//! DNS lookups of the broker names: queries, their retransmissions and the
//! answers, from port-53 traffic in a capture, in bounded memory.
//!
//! A connector that cannot resolve its broker never opens a TCP flow, so the
//! flow rules see nothing; the evidence is in the DNS exchanges. Only broker
//! names (see [`is_broker_name`]) and the CNAME targets their answers point to
//! are kept; every other message is parsed just far enough to be counted.
//!
//! An *exchange* is one question (name and type) from one client address to
//! one resolver over one transport, with its retransmissions (same id, or a
//! new id for the same question within [`RETRANSMIT_WINDOW_NS`] while no
//! answer has come) and the responses that match it by client address and
//! port, resolver address and port, transaction id and question. Exchanges are
//! retired once answered (after a short linger that catches a second, forged
//! answer) or idle, and folded into one aggregate per name, so the per-name
//! counts cover the whole capture even when the list of kept exchanges is
//! full.

pub mod chain;
pub mod message;

pub use message::rcode_name;

use crate::packet::{Packet, Transport};
use hickory_proto::op::OpCode;
use hickory_proto::rr::{Name, RecordType};
use message::{MessageReader, qtype_name};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// Exchanges of broker names kept for the report; more are counted only.
pub const MAX_EXCHANGES_KEPT: usize = 1_000;
/// Exchanges waiting for an answer at once; above it the oldest are retired.
pub const MAX_ACTIVE: usize = 1_024;
/// Names aggregated (broker names are few; this caps a random-subdomain flood).
pub const MAX_NAMES: usize = 256;
/// CNAME targets followed (queried like broker names).
pub const MAX_FOLLOWED: usize = 256;
/// TCP directions whose sequence numbers (and a split message) are remembered.
pub const MAX_TCP_STREAMS: usize = 64;

/// Same question again, no answer yet, within this long after the previous
/// query: a retransmission. 12 s covers glibc's 5 s timeout and its second
/// round with two resolvers configured.
pub const RETRANSMIT_WINDOW_NS: i64 = 12_000_000_000;
/// Capture time after a lone query before its silence counts as unanswered.
pub const UNANSWERED_AFTER_NS: i64 = 1_000_000_000;
/// An answered exchange stays matchable this long: a second response (a
/// forged one racing the resolver, or the answer to a retransmission) is kept.
const LINGER_NS: i64 = 5_000_000_000;
/// An unanswered exchange is retired after this long without a query.
const IDLE_NS: i64 = 30_000_000_000;
/// How often active exchanges are checked for retirement (capture time).
const SWEEP_EVERY_NS: i64 = 5_000_000_000;

const MAX_QUERY_FRAMES: usize = 8;
/// Distinct (client port, id) pairs per exchange; a retransmission beyond
/// them starts a new exchange.
const MAX_KEYS: usize = 8;
const MAX_RESPONSES: usize = 3;
const MAX_ADDRESSES: usize = 16;
/// CNAME targets remembered per name for following its CNAME-only answers
/// across exchanges (one response's chain is bounded by
/// [`chain::MAX_CNAME_CHAIN`]).
const MAX_CHAIN: usize = 8;
const MAX_RESOLVERS: usize = 8;
const MAX_EVIDENCE_FRAMES: usize = 16;
/// Record types remembered per name (A, AAAA, HTTPS... a client asks few).
const MAX_TYPES: usize = 8;
/// Segments a DNS-over-TCP message may span before it is given up.
const MAX_TCP_SEGMENTS: u8 = 3;

const DNS_PORT: u16 = 53;
const BROKER_SUFFIXES: [&str; 4] = ["zpath.net", "zscaler.net", "zscaler.com", "zpatwo.net"];

/// Lower case, without the trailing dot: the form names are compared in.
fn normalize(name: &str) -> String {
    let n = name.trim();
    n.strip_suffix('.').unwrap_or(n).to_ascii_lowercase()
}

/// Whether `name` is one a connector resolves to reach its broker: first label
/// `co2br`, or under zpath.net, zscaler.net, zscaler.com or zpatwo.net (on a
/// label boundary), or one of `extra` (exact). Case-insensitive; a trailing
/// dot is optional on both sides.
pub fn is_broker_name(name: &str, extra: &[String]) -> bool {
    let n = normalize(name);
    is_broker_normalized(&n) || extra.iter().any(|e| normalize(e) == n)
}

fn is_broker_normalized(n: &str) -> bool {
    if n.is_empty() {
        return false;
    }
    n.split('.').next() == Some("co2br") || under_broker_domain(n)
}

/// `n` (normalized) is one of the broker domains or under one, on a label boundary.
fn under_broker_domain(n: &str) -> bool {
    BROKER_SUFFIXES.iter().any(|s| {
        n.strip_suffix(s)
            .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
    })
}

/// Which transport carried an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsTransport {
    Udp,
    Tcp,
}

/// What one exchange ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExchangeOutcome {
    /// NOERROR with an address for the name (through its CNAMEs).
    Resolved,
    /// NOERROR for A/AAAA with a CNAME chain that ends without an address:
    /// the client must ask for the last target next.
    Alias,
    /// NOERROR for A/AAAA, no address and no CNAME ("no answer", NODATA).
    NoAddress,
    /// NOERROR for another record type (HTTPS, TXT...): says nothing about addresses.
    Answered,
    NxDomain,
    ServFail,
    Refused,
    /// Another response code (FORMERR, NOTIMP...).
    OtherRcode,
    /// The TC bit without an address: the client must retry over TCP.
    Truncated,
    /// NOERROR whose records could not be read (cut by the snapshot length
    /// or malformed after the question): resolved or not, unknown.
    Unreadable,
    /// Queries and no response, with at least [`UNANSWERED_AFTER_NS`] of
    /// capture after the first query, or a retransmission.
    Unanswered,
    /// No response yet when the capture (or the tracker's memory) ended: proves nothing.
    Pending,
}

/// One response to an exchange.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DnsResponse {
    pub frame: u64,
    #[serde(skip)]
    pub ts_ns: i64,
    pub id: u16,
    /// `NOERROR`, `NXDOMAIN`, `SERVFAIL`, `REFUSED`... (header RCODE, 4 bits).
    pub rcode: String,
    #[serde(skip)]
    pub rcode_value: u8,
    /// TC bit.
    pub truncated: bool,
    pub authoritative: bool,
    /// False when the answer section could not be read in full (snapshot cut
    /// or malformed): `addresses` and `cname_chain` hold what could be read.
    pub complete: bool,
    /// A and AAAA addresses of the canonical name (the end of the CNAME
    /// chain, or the name itself), in answer order, at most 16; none when
    /// the chain loops (the rule: [`chain`]).
    pub addresses: Vec<IpAddr>,
    /// CNAME targets in chain order, without the queried name.
    pub cname_chain: Vec<String>,
    /// Smallest DNS TTL (seconds) of the records used (chain and addresses).
    pub dns_ttl: Option<u32>,
    /// IP TTL / hop limit of the response packet: hop evidence for the resolver.
    pub ip_ttl: u8,
    /// Time since the last query with the same client port and id; `None`
    /// when that query is not in the capture.
    pub rtt_ms: Option<f64>,
}

/// One question to one resolver, its retransmissions and responses.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DnsExchange {
    /// Queried name, lower case, without the trailing dot.
    pub qname: String,
    /// `A`, `AAAA`, `HTTPS`... or `TYPEnnn`.
    pub qtype: String,
    pub transport: DnsTransport,
    /// Client address and port of the first query (retransmissions may use other ports).
    pub client: SocketAddr,
    /// The resolver.
    pub server: SocketAddr,
    /// Transaction id of the first query (or of the response when no query was captured).
    pub id: u16,
    /// Queries sent, retransmissions included (0: only the response was captured).
    pub queries: u32,
    /// Frames of the first queries (up to 8).
    pub query_frames: Vec<u64>,
    #[serde(skip)]
    pub first_ts_ns: i64,
    #[serde(skip)]
    pub last_query_ts_ns: Option<i64>,
    /// The responses, first one (the one a client accepts) first.
    pub responses: Vec<DnsResponse>,
    /// Responses beyond the kept ones.
    pub responses_not_kept: u32,
    pub outcome: ExchangeOutcome,
}

impl DnsExchange {
    /// The first frame of the exchange (query, or response when no query was captured).
    pub fn first_frame(&self) -> u64 {
        self.query_frames
            .first()
            .copied()
            .or_else(|| self.responses.first().map(|r| r.frame))
            .unwrap_or(0)
    }

    /// Query retransmissions (queries after the first).
    pub fn retransmissions(&self) -> u32 {
        self.queries.saturating_sub(1)
    }
}

/// Counters over every DNS message seen on port 53, broker or not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DnsCounters {
    /// Messages whose header and question could be read (UDP and TCP).
    pub messages: u64,
    pub queries: u64,
    pub responses: u64,
    /// Payloads that are not a DNS message (header or question unreadable,
    /// not explained by the snapshot length).
    pub malformed: u64,
    /// Payloads shorter than their UDP or TCP header says: cut by the
    /// snapshot length, or the first fragment of a fragmented datagram.
    pub incomplete_payloads: u64,
    /// Messages about other names: counted, not kept.
    pub non_broker: u64,
    /// Messages without a question or with another opcode (NOTIFY, UPDATE...).
    pub ignored: u64,
    /// Responses of tracked names (or without a question) matching no captured query.
    pub unmatched_responses: u64,
    /// Exchanges of broker names (and followed CNAME targets).
    pub exchanges: u64,
    pub exchanges_not_kept: u64,
    /// Names beyond [`MAX_NAMES`]: their exchanges are not aggregated.
    pub names_not_kept: u64,
    /// TCP segments on port 53 not decoded: retransmissions, gaps, or a
    /// message spread over more segments than reassembled.
    pub tcp_segments_skipped: u64,
}

/// The evidence behind one outcome of a name: who answered, and the frames.
#[derive(Clone, Debug, Default, PartialEq)]
struct Evidence {
    resolver: Option<IpAddr>,
    frames: Vec<u64>,
    /// The CNAME chain of the response (for `Alias`: the targets to follow).
    chain: Vec<String>,
    rcode: Option<String>,
}

/// Everything the capture says about one name, over all its exchanges.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NameSummary {
    pub name: String,
    /// Set when the name is not a broker name but the CNAME target of one.
    pub cname_of: Option<String>,
    pub first_frame: u64,
    pub exchanges: u32,
    /// Query packets, retransmissions included.
    pub queries: u32,
    pub resolved: u32,
    /// Exchanges with no response at all: the resolver is not answering.
    pub unanswered: u32,
    pub nxdomain: u32,
    pub servfail: u32,
    pub refused: u32,
    /// NOERROR for A/AAAA without an address ("no answer"); CNAME-only answers included.
    pub no_address: u32,
    pub truncated: u32,
    /// Other response codes, unreadable answers, other record types, pending queries.
    pub other: u32,
    /// Addresses of the resolved answers (up to 16, first seen first).
    pub addresses: Vec<IpAddr>,
    /// The CNAME chain of the first resolved answer.
    pub cname_chain: Vec<String>,
    /// Resolvers asked (up to 8).
    pub resolvers: Vec<IpAddr>,
    #[serde(skip)]
    evidence: Vec<(ExchangeOutcome, Evidence)>,
    /// Record types with an untruncated response (from any resolver, over
    /// any transport), and those left with only a truncated one or none:
    /// a TC answer retried over TCP, or a silent resolver after which
    /// another answered, is no failure of the name.
    #[serde(skip)]
    answered_types: Vec<String>,
    #[serde(skip)]
    truncated_types: Vec<String>,
    #[serde(skip)]
    silent_types: Vec<String>,
}

impl NameSummary {
    fn new(name: String, cname_of: Option<String>, first_frame: u64) -> NameSummary {
        NameSummary {
            name,
            cname_of,
            first_frame,
            exchanges: 0,
            queries: 0,
            resolved: 0,
            unanswered: 0,
            nxdomain: 0,
            servfail: 0,
            refused: 0,
            no_address: 0,
            truncated: 0,
            other: 0,
            addresses: Vec::new(),
            cname_chain: Vec::new(),
            resolvers: Vec::new(),
            evidence: Vec::new(),
            answered_types: Vec::new(),
            truncated_types: Vec::new(),
            silent_types: Vec::new(),
        }
    }

    fn add(&mut self, ex: &DnsExchange) {
        self.exchanges += 1;
        self.queries = self.queries.saturating_add(ex.queries);
        self.first_frame = self.first_frame.min(ex.first_frame());
        push_unique(&mut self.resolvers, ex.server.ip(), MAX_RESOLVERS);
        let counter = match ex.outcome {
            ExchangeOutcome::Resolved => &mut self.resolved,
            ExchangeOutcome::Unanswered => &mut self.unanswered,
            ExchangeOutcome::NxDomain => &mut self.nxdomain,
            ExchangeOutcome::ServFail => &mut self.servfail,
            ExchangeOutcome::Refused => &mut self.refused,
            ExchangeOutcome::NoAddress | ExchangeOutcome::Alias => &mut self.no_address,
            ExchangeOutcome::Truncated => &mut self.truncated,
            ExchangeOutcome::OtherRcode
            | ExchangeOutcome::Unreadable
            | ExchangeOutcome::Answered
            | ExchangeOutcome::Pending => &mut self.other,
        };
        *counter += 1;
        let first = ex.responses.first();
        let types = match ex.outcome {
            ExchangeOutcome::Truncated => &mut self.truncated_types,
            ExchangeOutcome::Unanswered => &mut self.silent_types,
            _ if first.is_some_and(|r| !r.truncated) => &mut self.answered_types,
            _ => &mut self.silent_types, // pending: still nothing
        };
        push_unique(types, ex.qtype.clone(), MAX_TYPES);
        if ex.outcome == ExchangeOutcome::Resolved
            && let Some(r) = first
        {
            if self.cname_chain.is_empty() {
                self.cname_chain = r.cname_chain.clone();
            }
            for a in &r.addresses {
                push_unique(&mut self.addresses, *a, MAX_ADDRESSES);
            }
        }
        // The first exchange of each outcome is its evidence; silent ones
        // accumulate, since many unanswered queries make the stronger case.
        let idx = match self.evidence.iter().position(|(o, _)| *o == ex.outcome) {
            Some(i) if ex.outcome != ExchangeOutcome::Unanswered => {
                // A CNAME-only answer with new targets is worth following too.
                if ex.outcome == ExchangeOutcome::Alias
                    && let Some(t) = first.and_then(|r| r.cname_chain.last())
                    && !self.evidence[i].1.chain.contains(t)
                    && self.evidence[i].1.chain.len() < MAX_CHAIN
                {
                    self.evidence[i].1.chain.push(t.clone());
                }
                return;
            }
            Some(i) => i,
            None => {
                self.evidence.push((
                    ex.outcome,
                    Evidence {
                        resolver: Some(ex.server.ip()),
                        frames: Vec::new(),
                        chain: first.map(|r| r.cname_chain.clone()).unwrap_or_default(),
                        rcode: first.map(|r| r.rcode.clone()),
                    },
                ));
                self.evidence.len() - 1
            }
        };
        let frames = &mut self.evidence[idx].1.frames;
        let mine = ex
            .query_frames
            .iter()
            .chain(first.map(|r| &r.frame))
            .copied();
        for f in mine {
            if frames.len() < MAX_EVIDENCE_FRAMES {
                frames.push(f);
            }
        }
    }

    fn evidence(&self, o: ExchangeOutcome) -> Option<&Evidence> {
        let unsettled = |types: &[String]| types.iter().any(|t| !self.answered_types.contains(t));
        let applies = match o {
            ExchangeOutcome::Truncated => unsettled(&self.truncated_types),
            ExchangeOutcome::Unanswered => unsettled(&self.silent_types),
            _ => true,
        };
        if !applies {
            return None;
        }
        self.evidence.iter().find(|(k, _)| *k == o).map(|(_, e)| e)
    }
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T, max: usize) {
    if v.len() < max && !v.contains(&x) {
        v.push(x);
    }
}

/// Why a broker name did or did not resolve, as a verdict states it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// Some NOERROR answer gave addresses (following CNAMEs, also across queries).
    Resolved {
        addresses: Vec<IpAddr>,
        cname_chain: Vec<String>,
    },
    NxDomain,
    ServFail,
    Refused,
    /// The answer was truncated (TC) and no TCP retry answered.
    Truncated,
    /// Queries only, no response at all: the resolver is not answering.
    Unanswered,
    /// NOERROR without an address ("no answer"), or a CNAME chain to nothing.
    NoAddress,
    /// Another response code.
    OtherRcode {
        rcode: String,
    },
    /// Nothing decisive: queries at the very end of the capture, answers that
    /// could not be read, or only other record types.
    Inconclusive,
}

/// The outcome of one broker name, with the frames that prove it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NameOutcome {
    pub name: String,
    pub outcome: Outcome,
    /// The resolver whose answer (or silence) decided the outcome.
    pub resolver: Option<IpAddr>,
    /// Every resolver asked for the name.
    pub resolvers: Vec<IpAddr>,
    /// Frames behind the outcome: its queries and response (up to 16 per name,
    /// plus those of a followed CNAME target).
    pub frames: Vec<u64>,
    /// Query packets for the name, retransmissions included.
    pub queries: u32,
    /// Set when the name is another broker name with a search domain
    /// appended (`co2br.prod.zpath.net.corp.example`): its failure is expected
    /// and says nothing about the broker name itself.
    pub search_expansion_of: Option<String>,
}

/// What the tracker found.
#[derive(Clone, Debug, Serialize)]
pub struct DnsSummary {
    pub counters: DnsCounters,
    /// Exchanges of broker names (and followed CNAME targets), in order of
    /// first frame; the first [`MAX_EXCHANGES_KEPT`] retired.
    pub exchanges: Vec<DnsExchange>,
    /// One aggregate per name, in order of first frame; CNAME targets
    /// followed have `cname_of` set.
    pub names: Vec<NameSummary>,
}

/// Ranks the reasons a name failed, most telling first. `Alias` and
/// `Unreadable` are handled separately.
const FAILURE_ORDER: [ExchangeOutcome; 6] = [
    ExchangeOutcome::NxDomain,
    ExchangeOutcome::ServFail,
    ExchangeOutcome::Refused,
    ExchangeOutcome::Truncated,
    ExchangeOutcome::Unanswered,
    ExchangeOutcome::NoAddress,
];

fn failure(o: ExchangeOutcome, rcode: Option<&str>) -> Outcome {
    match o {
        ExchangeOutcome::NxDomain => Outcome::NxDomain,
        ExchangeOutcome::ServFail => Outcome::ServFail,
        ExchangeOutcome::Refused => Outcome::Refused,
        ExchangeOutcome::Truncated => Outcome::Truncated,
        ExchangeOutcome::Unanswered => Outcome::Unanswered,
        ExchangeOutcome::NoAddress | ExchangeOutcome::Alias => Outcome::NoAddress,
        ExchangeOutcome::OtherRcode => Outcome::OtherRcode {
            rcode: rcode.unwrap_or("?").to_string(),
        },
        _ => Outcome::Inconclusive,
    }
}

impl DnsSummary {
    /// One outcome per broker name (CNAME targets are followed, not listed),
    /// in order of first frame: what a `dns-failure` verdict is built from.
    pub fn broker_name_outcomes(&self) -> Vec<NameOutcome> {
        let by_name: HashMap<&str, &NameSummary> =
            self.names.iter().map(|n| (n.name.as_str(), n)).collect();
        self.names
            .iter()
            .filter(|n| n.cname_of.is_none())
            .map(|n| {
                let mut visited = vec![n.name.as_str()];
                let (outcome, resolver, frames) = self.outcome_of(n, &by_name, &mut visited);
                // Only a name outside the broker domains can be an expansion
                // (it is tracked for its `co2br` first label), and only of a
                // name with a domain (a bare `co2br` is no base).
                let search_expansion_of = by_name
                    .keys()
                    .filter(|other| {
                        !under_broker_domain(&n.name)
                            && other.contains('.')
                            && n.name.len() > other.len() + 1
                            && n.name.starts_with(*other)
                            && n.name.as_bytes()[other.len()] == b'.'
                    })
                    .max_by_key(|other| other.len())
                    .map(|s| s.to_string());
                NameOutcome {
                    name: n.name.clone(),
                    outcome,
                    resolver,
                    resolvers: n.resolvers.clone(),
                    frames,
                    queries: n.queries,
                    search_expansion_of,
                }
            })
            .collect()
    }

    /// The outcome of `n`, following CNAME-only answers to targets not in
    /// `visited` (each name is looked at once per broker name, so a CNAME
    /// loop or a web of aliases costs no more than the names themselves).
    fn outcome_of<'a>(
        &'a self,
        n: &'a NameSummary,
        by_name: &HashMap<&str, &'a NameSummary>,
        visited: &mut Vec<&'a str>,
    ) -> (Outcome, Option<IpAddr>, Vec<u64>) {
        let found = |o: ExchangeOutcome| n.evidence(o);
        if let Some(e) = found(ExchangeOutcome::Resolved) {
            let outcome = Outcome::Resolved {
                addresses: n.addresses.clone(),
                cname_chain: n.cname_chain.clone(),
            };
            return (outcome, e.resolver, e.frames.clone());
        }
        // A CNAME-only answer: the name resolves if its target does.
        let mut via_alias = None;
        if let Some(alias) = found(ExchangeOutcome::Alias) {
            for target in &alias.chain {
                let Some(t) = by_name.get(target.as_str()).copied() else {
                    continue;
                };
                if visited.contains(&t.name.as_str()) {
                    continue;
                }
                visited.push(t.name.as_str());
                let (o, r, f) = self.outcome_of(t, by_name, visited);
                let mut frames = alias.frames.clone();
                frames.extend(f);
                if let Outcome::Resolved {
                    addresses,
                    cname_chain,
                } = o
                {
                    let mut chain = alias.chain.clone();
                    if let Some(pos) = chain.iter().position(|c| c == target) {
                        chain.truncate(pos + 1);
                    }
                    for c in cname_chain {
                        push_unique(&mut chain, c, MAX_CHAIN * 2);
                    }
                    let outcome = Outcome::Resolved {
                        addresses,
                        cname_chain: chain,
                    };
                    return (outcome, r, frames);
                }
                if via_alias.is_none() && o != Outcome::Inconclusive {
                    via_alias = Some((o, r, frames));
                }
            }
        }
        // An answer that could not be read may have held addresses: no failure is proven.
        if let Some(e) = found(ExchangeOutcome::Unreadable) {
            return (Outcome::Inconclusive, e.resolver, e.frames.clone());
        }
        for o in FAILURE_ORDER {
            // What the target of a CNAME-only answer got outranks the
            // name's own silence: the client moved on to the target.
            if o == ExchangeOutcome::Unanswered
                && let Some(v) = via_alias
            {
                return v;
            }
            if let Some(e) = found(o) {
                return (failure(o, None), e.resolver, e.frames.clone());
            }
        }
        if let Some(v) = via_alias {
            return v;
        }
        if let Some(e) = found(ExchangeOutcome::Alias) {
            return (Outcome::NoAddress, e.resolver, e.frames.clone());
        }
        if let Some(e) = found(ExchangeOutcome::OtherRcode) {
            return (
                failure(ExchangeOutcome::OtherRcode, e.rcode.as_deref()),
                e.resolver,
                e.frames.clone(),
            );
        }
        let e = found(ExchangeOutcome::Answered)
            .or_else(|| found(ExchangeOutcome::Pending))
            .or_else(|| n.evidence.first().map(|(_, e)| e));
        (
            Outcome::Inconclusive,
            e.and_then(|e| e.resolver),
            e.map(|e| e.frames.clone()).unwrap_or_default(),
        )
    }
}

/// Finds an exchange from a query or response: one (client port, id) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct IdKey {
    transport: DnsTransport,
    client: SocketAddr,
    server: SocketAddr,
    id: u16,
}

/// Finds the open exchange a retransmission with a new id or port belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct QuestionKey {
    transport: DnsTransport,
    client: IpAddr,
    server: SocketAddr,
    qname: String,
    qtype: u16,
}
#[derive(Clone)]

struct Live {
    ex: DnsExchange,
    qtype: u16,
    /// Every (client port, id) the exchange was queried with, and when last.
    keys: Vec<(IdKey, i64)>,
    answered_ns: Option<i64>,
    last_ts_ns: i64,
}

/// Per-direction TCP state: where the next segment starts, and a message
/// still incomplete.
#[derive(Clone)]
struct TcpStream {
    next_seq: u32,
    buf: Vec<u8>,
    /// Bytes still to pass over: the rest of a message given up.
    skip: u32,
    segments: u8,
    last_ts_ns: i64,
}

/// The parts of a message the tracker decides on, its question normalized.
struct Head {
    id: u16,
    response: bool,
    opcode: OpCode,
    rcode: u8,
    truncated: bool,
    authoritative: bool,
    /// First question: normalized name and type.
    question: Option<(String, RecordType)>,
}

impl Head {
    fn of(h: &message::Head) -> Head {
        Head {
            id: h.id,
            response: h.response,
            opcode: h.opcode,
            rcode: h.rcode,
            truncated: h.truncated,
            authoritative: h.authoritative,
            question: h
                .question
                .as_ref()
                .map(|q| (normalize(&q.name.to_ascii()), q.qtype)),
        }
    }
}

fn is_address_type(t: u16) -> bool {
    t == u16::from(RecordType::A) || t == u16::from(RecordType::AAAA)
}

fn classify(r: &DnsResponse, qtype: u16) -> ExchangeOutcome {
    match r.rcode_value {
        0 if !r.addresses.is_empty() => ExchangeOutcome::Resolved,
        0 if r.truncated => ExchangeOutcome::Truncated,
        0 if !r.complete => ExchangeOutcome::Unreadable,
        0 if !is_address_type(qtype) => ExchangeOutcome::Answered,
        0 if !r.cname_chain.is_empty() => ExchangeOutcome::Alias,
        0 => ExchangeOutcome::NoAddress,
        2 => ExchangeOutcome::ServFail,
        3 => ExchangeOutcome::NxDomain,
        5 => ExchangeOutcome::Refused,
        _ => ExchangeOutcome::OtherRcode,
    }
}

/// Streaming DNS state for one capture.
#[derive(Clone)]
pub struct DnsTracker {
    extra: Vec<String>,
    counters: DnsCounters,
    next_serial: u64,
    // Fx, not SipHash: keys come from the capture, but every map is bounded
    // and only looked up or iterated into a sorted order, so a collision
    // flood costs time, never a wrong answer (nor a different one per run,
    // as a random seed did where the order broke a tie).
    active: FxHashMap<u64, Live>,
    by_id: FxHashMap<IdKey, Vec<u64>>,
    by_question: FxHashMap<QuestionKey, u64>,
    /// CNAME targets of broker names, and the broker name that led to each.
    followed: FxHashMap<String, String>,
    names: FxHashMap<String, NameSummary>,
    kept: Vec<DnsExchange>,
    tcp: FxHashMap<(SocketAddr, SocketAddr), TcpStream>,
    last_ts_ns: i64,
    next_sweep_ns: Option<i64>,
}

impl DnsTracker {
    /// `extra_names`: names given with --broker-name (exact match,
    /// case-insensitive, trailing dot optional).
    pub fn new(extra_names: &[String]) -> DnsTracker {
        DnsTracker {
            extra: extra_names
                .iter()
                .map(|n| normalize(n))
                .filter(|n| !n.is_empty())
                .collect(),
            counters: DnsCounters::default(),
            next_serial: 0,
            active: FxHashMap::default(),
            by_id: FxHashMap::default(),
            by_question: FxHashMap::default(),
            followed: FxHashMap::default(),
            names: FxHashMap::default(),
            kept: Vec::new(),
            tcp: FxHashMap::default(),
            last_ts_ns: i64::MIN,
            next_sweep_ns: None,
        }
    }

    fn is_tracked(&self, name: &str) -> bool {
        is_broker_normalized(name)
            || self.extra.iter().any(|e| e == name)
            || self.followed.contains_key(name)
    }

    /// A UDP datagram to or from port 53 with its captured payload (other
    /// packets are ignored).
    pub fn on_udp(&mut self, p: &Packet, payload: &[u8]) {
        let Transport::Udp {
            src_port,
            dst_port,
            len,
        } = p.transport
        else {
            return;
        };
        if src_port != DNS_PORT && dst_port != DNS_PORT {
            return;
        }
        let cut = payload.len() < usize::from(len).saturating_sub(8);
        self.on_message(p, src_port, dst_port, DnsTransport::Udp, payload, cut);
    }

    /// A TCP segment to or from port 53 with its captured payload. Messages
    /// (2-byte length prefix) are read when they fit in one segment or span
    /// up to 3 in-order segments; retransmissions and anything after a gap
    /// are skipped (counted).
    pub fn on_tcp(&mut self, p: &Packet, payload: &[u8]) {
        let Transport::Tcp(t) = p.transport else {
            return;
        };
        if t.src_port != DNS_PORT && t.dst_port != DNS_PORT {
            return;
        }
        let key = (
            SocketAddr::new(p.src, t.src_port),
            SocketAddr::new(p.dst, t.dst_port),
        );
        if t.flags.syn() {
            self.tcp.remove(&key);
            self.tcp_state(key, t.seq.wrapping_add(1), p.ts_ns);
        }
        let closing = t.flags.rst() || t.flags.fin();
        if !payload.is_empty() && !t.flags.rst() {
            self.tcp_payload(p, key, t.seq, t.payload_len, payload);
        }
        if closing {
            self.tcp.remove(&key);
        }
    }

    /// The state of one TCP direction, created (evicting the stalest when
    /// full) if needed.
    fn tcp_state(&mut self, key: (SocketAddr, SocketAddr), seq: u32, ts: i64) -> &mut TcpStream {
        if !self.tcp.contains_key(&key) && self.tcp.len() >= MAX_TCP_STREAMS {
            let stalest = self
                .tcp
                .iter()
                // The key breaks a tie, not the map's order.
                .min_by_key(|(k, s)| (s.last_ts_ns, **k))
                .map(|(k, _)| *k);
            if let Some(k) = stalest {
                self.tcp.remove(&k);
            }
        }
        self.tcp.entry(key).or_insert(TcpStream {
            next_seq: seq,
            buf: Vec::new(),
            skip: 0,
            segments: 0,
            last_ts_ns: ts,
        })
    }

    fn tcp_payload(
        &mut self,
        p: &Packet,
        key: (SocketAddr, SocketAddr),
        seq: u32,
        payload_len: u32,
        payload: &[u8],
    ) {
        let known = self.tcp.contains_key(&key);
        let st = self.tcp_state(key, seq, p.ts_ns);
        st.last_ts_ns = p.ts_ns;
        // Sequence distance from where this direction should continue.
        let ahead = seq.wrapping_sub(st.next_seq) as i32;
        if known && ahead < 0 {
            // Data already seen: a retransmission.
            self.counters.tcp_segments_skipped += 1;
            return;
        }
        st.next_seq = seq.wrapping_add(payload_len);
        if ahead > 0 && !st.buf.is_empty() {
            // A gap in the middle of a message: this segment continues a
            // message whose middle is missing. Give it up.
            st.buf.clear();
            st.segments = 0;
            st.skip = 0;
            self.counters.tcp_segments_skipped += 1;
            return;
        }
        // Bytes lost to a gap count against the rest of a message given up.
        st.skip = st.skip.saturating_sub(ahead.max(0) as u32);
        // The rest of a message given up earlier (too many segments, or cut
        // by the snapshot) is passed over to find the next message start.
        let mut full = payload_len as usize;
        let mut payload = payload;
        if st.skip > 0 {
            let n = (st.skip as usize).min(full);
            st.skip -= n as u32;
            if n >= payload.len() {
                if n < full {
                    // A message starts in bytes the capture does not hold.
                    st.skip = 0;
                }
                self.counters.tcp_segments_skipped += 1;
                return;
            }
            payload = &payload[n..];
            full -= n;
        }
        let mut data = std::mem::take(&mut st.buf);
        let segments = st.segments + 1;
        st.segments = 0;
        let uncaptured = full - payload.len().min(full);
        data.extend_from_slice(payload);
        let (sp, dp) = (key.0.port(), key.1.port());
        let mut rest: &[u8] = &data;
        while rest.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            if rest.len() < 2 + len {
                break;
            }
            let (msg, more) = rest[2..].split_at(len);
            self.on_message(p, sp, dp, DnsTransport::Tcp, msg, false);
            rest = more;
        }
        let mut keep = None;
        let mut skip = 0;
        if rest.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            // What the message still lacks after this segment, on the wire.
            let missing = (2 + len).saturating_sub(rest.len() + uncaptured);
            if uncaptured > 0 {
                // The capture holds only the start of the message: read what it has.
                self.on_message(p, sp, dp, DnsTransport::Tcp, &rest[2..], true);
                skip = missing;
            } else if segments < MAX_TCP_SEGMENTS {
                keep = Some(rest.to_vec());
            } else {
                self.counters.tcp_segments_skipped += 1;
                skip = missing;
            }
        } else if rest.len() == 1 && uncaptured == 0 {
            // A lone length byte: keep it for the next segment.
            keep = Some(rest.to_vec());
        }
        if let Some(st) = self.tcp.get_mut(&key) {
            st.skip = skip as u32;
            if let Some(buf) = keep {
                st.buf = buf;
                st.segments = segments;
            }
        }
    }

    fn on_message(
        &mut self,
        p: &Packet,
        src_port: u16,
        dst_port: u16,
        transport: DnsTransport,
        bytes: &[u8],
        cut: bool,
    ) {
        self.last_ts_ns = self.last_ts_ns.max(p.ts_ns);
        self.maybe_sweep();
        if cut {
            self.counters.incomplete_payloads += 1;
        }
        let Ok(reader) = MessageReader::new(bytes) else {
            if !cut {
                self.counters.malformed += 1;
            }
            return;
        };
        let head = Head::of(&reader.head);
        self.counters.messages += 1;
        if head.response {
            self.counters.responses += 1;
        } else {
            self.counters.queries += 1;
        }
        if head.opcode != OpCode::Query {
            self.counters.ignored += 1;
            return;
        }
        let src = SocketAddr::new(p.src, src_port);
        let dst = SocketAddr::new(p.dst, dst_port);
        match (&head.question, head.response) {
            (None, false) => self.counters.ignored += 1,
            (Some((name, _)), _) if !self.is_tracked(name) => self.counters.non_broker += 1,
            (_, false) => self.on_query(p, transport, src, dst, &head),
            (_, true) => self.on_response(p, transport, dst, src, &head, reader),
        }
    }

    fn on_query(
        &mut self,
        p: &Packet,
        transport: DnsTransport,
        client: SocketAddr,
        server: SocketAddr,
        head: &Head,
    ) {
        let Some((qname, qtype)) = &head.question else {
            return;
        };
        let qtype = u16::from(*qtype);
        let id_key = IdKey {
            transport,
            client,
            server,
            id: head.id,
        };
        let q_key = QuestionKey {
            transport,
            client: client.ip(),
            server,
            qname: qname.clone(),
            qtype,
        };
        let recent = |l: &Live| {
            l.ex.last_query_ts_ns
                .is_some_and(|t| p.ts_ns.saturating_sub(t) <= RETRANSMIT_WINDOW_NS)
        };
        // The same id and port again, or the same question with a new id
        // while no answer has come: a retransmission.
        let same_id = self.by_id.get(&id_key).and_then(|serials| {
            serials.iter().rev().copied().find(|s| {
                self.active
                    .get(s)
                    .is_some_and(|l| l.ex.qname == *qname && l.qtype == qtype && recent(l))
            })
        });
        let same_question = || {
            self.by_question.get(&q_key).copied().filter(|s| {
                self.active.get(s).is_some_and(|l| {
                    l.answered_ns.is_none() && recent(l) && l.keys.len() < MAX_KEYS
                })
            })
        };
        let serial = match same_id.or_else(same_question) {
            Some(s) => s,
            None => {
                let ex = DnsExchange {
                    qname: qname.clone(),
                    qtype: qtype_name(RecordType::from(qtype)),
                    transport,
                    client,
                    server,
                    id: head.id,
                    queries: 0,
                    query_frames: Vec::new(),
                    first_ts_ns: p.ts_ns,
                    last_query_ts_ns: None,
                    responses: Vec::new(),
                    responses_not_kept: 0,
                    outcome: ExchangeOutcome::Pending,
                };
                self.insert(ex, qtype, q_key)
            }
        };
        let live = self.active.get_mut(&serial).expect("exchange is active");
        live.ex.queries += 1;
        if live.ex.query_frames.len() < MAX_QUERY_FRAMES {
            live.ex.query_frames.push(p.frame);
        }
        live.ex.last_query_ts_ns = Some(p.ts_ns);
        live.last_ts_ns = p.ts_ns;
        match live.keys.iter_mut().find(|(k, _)| *k == id_key) {
            Some((_, ts)) => *ts = p.ts_ns,
            None => {
                live.keys.push((id_key, p.ts_ns));
                let serials = self.by_id.entry(id_key).or_default();
                if !serials.contains(&serial) {
                    serials.push(serial);
                }
            }
        }
    }

    /// Starts an exchange (retiring old ones when full) and indexes it by question.
    fn insert(&mut self, ex: DnsExchange, qtype: u16, q_key: QuestionKey) -> u64 {
        if self.active.len() >= MAX_ACTIVE {
            self.evict();
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        self.counters.exchanges += 1;
        let last_ts_ns = ex.first_ts_ns;
        self.active.insert(
            serial,
            Live {
                ex,
                qtype,
                keys: Vec::new(),
                answered_ns: None,
                last_ts_ns,
            },
        );
        self.by_question.insert(q_key, serial);
        serial
    }

    #[allow(clippy::too_many_arguments)]
    fn on_response(
        &mut self,
        p: &Packet,
        transport: DnsTransport,
        client: SocketAddr,
        server: SocketAddr,
        head: &Head,
        reader: MessageReader<'_>,
    ) {
        let id_key = IdKey {
            transport,
            client,
            server,
            id: head.id,
        };
        let matches = |l: &Live| match &head.question {
            Some((n, t)) => l.ex.qname == *n && l.qtype == u16::from(*t),
            None => true,
        };
        let found = self.by_id.get(&id_key).and_then(|serials| {
            serials
                .iter()
                .rev()
                .copied()
                .find(|s| self.active.get(s).is_some_and(matches))
        });
        let serial = match (found, &head.question) {
            (Some(s), _) => s,
            (None, Some((qname, qtype))) => {
                // The query is not in the capture (it began earlier): the
                // answer is still evidence.
                self.counters.unmatched_responses += 1;
                let qtype = u16::from(*qtype);
                let ex = DnsExchange {
                    qname: qname.clone(),
                    qtype: qtype_name(RecordType::from(qtype)),
                    transport,
                    client,
                    server,
                    id: head.id,
                    queries: 0,
                    query_frames: Vec::new(),
                    first_ts_ns: p.ts_ns,
                    last_query_ts_ns: None,
                    responses: Vec::new(),
                    responses_not_kept: 0,
                    outcome: ExchangeOutcome::Pending,
                };
                let q_key = QuestionKey {
                    transport,
                    client: client.ip(),
                    server,
                    qname: qname.clone(),
                    qtype,
                };
                let s = self.insert(ex, qtype, q_key);
                let live = self.active.get_mut(&s).expect("exchange is active");
                live.keys.push((id_key, i64::MIN));
                self.by_id.entry(id_key).or_default().push(s);
                s
            }
            (None, None) => {
                self.counters.unmatched_responses += 1;
                return;
            }
        };
        let live = self.active.get(&serial).expect("exchange is active");
        let qname = live.ex.qname.clone();
        let sent = live
            .keys
            .iter()
            .find(|(k, _)| *k == id_key)
            .map(|(_, t)| *t)
            .filter(|t| *t != i64::MIN && *t <= p.ts_ns);

        // The chain starts at the question, or for a response without one
        // (it matched by id), at the query's name.
        let asked = match &reader.head.question {
            Some(q) => q.name.clone(),
            None => Name::from_ascii(format!("{qname}.")).unwrap_or_else(|_| Name::root()),
        };
        // Complete when every answer record could be read: a snapshot that
        // cuts only the authority or additional section loses nothing.
        let answers = reader.answers();
        let complete = answers.complete;
        let found = chain::answer_for(&asked, &answers.records);
        let mut addresses = found.addresses;
        addresses.truncate(MAX_ADDRESSES);
        let cname_chain: Vec<String> = found
            .targets
            .iter()
            .map(|n| normalize(&n.to_ascii()))
            .collect();
        let dns_ttl = found.ttl;
        let canonical = found.end == chain::ChainEnd::Canonical;
        let response = DnsResponse {
            frame: p.frame,
            ts_ns: p.ts_ns,
            id: head.id,
            rcode: rcode_name(u16::from(head.rcode)),
            rcode_value: head.rcode,
            truncated: head.truncated,
            authoritative: head.authoritative,
            complete,
            addresses,
            cname_chain,
            dns_ttl,
            ip_ttl: p.ttl,
            rtt_ms: sent.map(|t| p.ts_ns.saturating_sub(t) as f64 / 1e6),
        };
        // The client will ask for the end of a CNAME chain next: follow it
        // (a loop has no end to ask for).
        if let Some(target) = response.cname_chain.last()
            && canonical
            && response.addresses.is_empty()
            && !self.is_tracked(target)
            && self.followed.len() < MAX_FOLLOWED
        {
            let origin = self.followed.get(&qname).cloned().unwrap_or(qname);
            self.followed.insert(target.clone(), origin);
        }
        let live = self.active.get_mut(&serial).expect("exchange is active");
        live.last_ts_ns = p.ts_ns;
        live.answered_ns.get_or_insert(p.ts_ns);
        if live.ex.responses.len() < MAX_RESPONSES {
            live.ex.responses.push(response);
        } else {
            live.ex.responses_not_kept += 1;
        }
    }

    fn maybe_sweep(&mut self) {
        let now = self.last_ts_ns;
        match self.next_sweep_ns {
            Some(t) if now < t => {}
            _ => {
                self.next_sweep_ns = Some(now.saturating_add(SWEEP_EVERY_NS));
                let done: Vec<u64> = self
                    .active
                    .iter()
                    .filter(|(_, l)| match l.answered_ns {
                        Some(a) => now.saturating_sub(a) >= LINGER_NS,
                        None => now.saturating_sub(l.last_ts_ns) >= IDLE_NS,
                    })
                    .map(|(s, _)| *s)
                    .collect();
                self.retire_all(done, now);
            }
        }
    }

    /// Makes room: retires finished exchanges, then the least recently active half.
    fn evict(&mut self) {
        let now = self.last_ts_ns;
        self.next_sweep_ns = None;
        self.maybe_sweep();
        if self.active.len() >= MAX_ACTIVE {
            let mut by_age: Vec<(i64, u64)> = self
                .active
                .iter()
                .map(|(s, l)| (l.last_ts_ns, *s))
                .collect();
            by_age.sort_unstable();
            let old = by_age
                .iter()
                .take(by_age.len() / 2)
                .map(|(_, s)| *s)
                .collect();
            self.retire_all(old, now);
        }
    }

    fn retire_all(&mut self, mut serials: Vec<u64>, now: i64) {
        serials.sort_unstable();
        for s in serials {
            self.retire(s, now);
        }
    }

    /// Decides an exchange's outcome, aggregates it and keeps it if there is room.
    fn retire(&mut self, serial: u64, now: i64) {
        let Some(mut live) = self.active.remove(&serial) else {
            return;
        };
        for (k, _) in &live.keys {
            if let Some(v) = self.by_id.get_mut(k) {
                v.retain(|s| *s != serial);
                if v.is_empty() {
                    self.by_id.remove(k);
                }
            }
        }
        let q_key = QuestionKey {
            transport: live.ex.transport,
            client: live.ex.client.ip(),
            server: live.ex.server,
            qname: std::mem::take(&mut live.ex.qname),
            qtype: live.qtype,
        };
        if self.by_question.get(&q_key) == Some(&serial) {
            self.by_question.remove(&q_key);
        }
        live.ex.qname = q_key.qname;
        let ex = &mut live.ex;
        ex.outcome = match ex.responses.first() {
            Some(r) => classify(r, live.qtype),
            // A retransmission shows the client gave up waiting; a lone query
            // needs some capture after it before its silence means anything.
            None if ex.queries >= 2
                || now.saturating_sub(ex.first_ts_ns) >= UNANSWERED_AFTER_NS =>
            {
                ExchangeOutcome::Unanswered
            }
            None => ExchangeOutcome::Pending,
        };
        let full = self.names.len() >= MAX_NAMES;
        match self.names.get_mut(&ex.qname) {
            Some(n) => n.add(ex),
            None if !full => {
                let origin = self.followed.get(&ex.qname).cloned();
                let mut n = NameSummary::new(ex.qname.clone(), origin, ex.first_frame());
                n.add(ex);
                self.names.insert(ex.qname.clone(), n);
            }
            None => self.counters.names_not_kept += 1,
        }
        if self.kept.len() < MAX_EXCHANGES_KEPT {
            self.kept.push(live.ex);
        } else {
            self.counters.exchanges_not_kept += 1;
        }
    }

    /// Ends the capture. `capture_end_ns` is the timestamp of the capture's
    /// last packet (DNS or not): a query needs some capture after it before
    /// its silence counts as unanswered.
    pub fn finish(mut self, capture_end_ns: i64) -> DnsSummary {
        let now = capture_end_ns.max(self.last_ts_ns);
        let rest: Vec<u64> = self.active.keys().copied().collect();
        self.retire_all(rest, now);
        self.kept.sort_by_key(|e| (e.first_frame(), e.first_ts_ns));
        let mut names: Vec<NameSummary> = self.names.into_values().collect();
        names.sort_by(|a, b| (a.first_frame, &a.name).cmp(&(b.first_frame, &b.name)));
        DnsSummary {
            counters: self.counters,
            exchanges: self.kept,
            names,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::TcpFlags;
    use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
    use hickory_proto::rr::rdata::{A, AAAA, CNAME};
    use hickory_proto::rr::{RData, Record};

    const CLIENT: &str = "10.0.0.2:40000";
    const RESOLVER: &str = "10.0.0.53:53";
    const BROKER: &str = "co2br.prod.zpath.net";

    fn packet(frame: u64, ms: i64, src: &str, dst: &str, ttl: u8, transport: Transport) -> Packet {
        let mut p = crate::packet::testing::packet(frame, ms, src, dst, ttl, transport);
        p.ip_len = 0;
        p
    }

    fn udp(frame: u64, ms: i64, src: &str, dst: &str, ttl: u8, payload_len: usize) -> Packet {
        let (s, d): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        let transport = Transport::Udp {
            src_port: s.port(),
            dst_port: d.port(),
            len: (payload_len + 8) as u16,
        };
        packet(frame, ms, src, dst, ttl, transport)
    }

    fn tcp(frame: u64, ms: i64, src: &str, dst: &str, flags: u8, seq: u32, len: usize) -> Packet {
        let transport = Transport::Tcp(crate::packet::testing::tcp_info(
            src, dst, flags, seq, len as u32,
        ));
        packet(frame, ms, src, dst, 60, transport)
    }

    fn name(n: &str) -> Name {
        Name::from_ascii(format!("{n}.")).unwrap()
    }

    fn query(id: u16, qname: &str, qtype: RecordType) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(name(qname), qtype));
        m.to_vec().unwrap()
    }

    fn response(
        id: u16,
        qname: &str,
        qtype: RecordType,
        rcode: ResponseCode,
        answers: Vec<Record>,
    ) -> Message {
        let mut m = Message::new(id, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        m.metadata.recursion_available = true;
        m.add_query(Query::query(name(qname), qtype));
        m.add_answers(answers);
        m
    }

    fn answer(
        id: u16,
        qname: &str,
        qtype: RecordType,
        rcode: ResponseCode,
        answers: Vec<Record>,
    ) -> Vec<u8> {
        response(id, qname, qtype, rcode, answers).to_vec().unwrap()
    }

    fn a(owner: &str, ttl: u32, ip: &str) -> Record {
        Record::from_rdata(name(owner), ttl, RData::A(A(ip.parse().unwrap())))
    }

    fn aaaa(owner: &str, ttl: u32, ip: &str) -> Record {
        Record::from_rdata(name(owner), ttl, RData::AAAA(AAAA(ip.parse().unwrap())))
    }

    fn cname(owner: &str, ttl: u32, target: &str) -> Record {
        Record::from_rdata(name(owner), ttl, RData::CNAME(CNAME(name(target))))
    }

    /// Feeds a UDP message.
    fn send(t: &mut DnsTracker, frame: u64, ms: i64, src: &str, dst: &str, ttl: u8, msg: &[u8]) {
        t.on_udp(&udp(frame, ms, src, dst, ttl, msg.len()), msg);
    }

    fn outcome(s: &DnsSummary, n: &str) -> NameOutcome {
        s.broker_name_outcomes()
            .into_iter()
            .find(|o| o.name == n)
            .unwrap_or_else(|| panic!("no outcome for {n}"))
    }

    #[test]
    fn broker_name_patterns() {
        let none: &[String] = &[];
        assert!(is_broker_name("co2br.zpatwo.net", none));
        assert!(is_broker_name("co2br.prod.zpath.net", none));
        assert!(!is_broker_name("notzpath.net", none));
        assert!(!is_broker_name("zpath.net.example.org", none));
        assert!(is_broker_name("x.zscaler.com.", none));
        assert!(is_broker_name("X.ZScaler.Net", none));
        assert!(is_broker_name("CO2BR.Example.Org", none));
        assert!(!is_broker_name("co2brx.example.org", none));
        assert!(!is_broker_name("", none));
        assert!(!is_broker_name(".", none));
        let extra = vec!["Broker.Lab.Example.".to_string()];
        assert!(is_broker_name("broker.lab.example", &extra));
        assert!(!is_broker_name("a.broker.lab.example", &extra));
    }

    #[test]
    fn resolved_through_a_cname_chain() {
        let mut t = DnsTracker::new(&[]);
        let q = query(0x1234, BROKER, RecordType::A);
        send(&mut t, 1, 0, CLIENT, RESOLVER, 64, &q);
        // Records out of order: the chain is followed by owner names.
        let r = answer(
            0x1234,
            BROKER,
            RecordType::A,
            ResponseCode::NoError,
            vec![
                a("edge.lab.example", 60, "198.18.4.1"),
                cname("lb1.prod.zpath.net", 300, "edge.lab.example"),
                a("edge.lab.example", 60, "198.18.4.2"),
                cname(BROKER, 3600, "lb1.prod.zpath.net"),
                a("other.lab.example", 5, "192.0.2.99"),
                a("edge.lab.example", 60, "198.18.4.3"),
            ],
        );
        send(&mut t, 2, 23, RESOLVER, CLIENT, 61, &r);
        let s = t.finish(10_000_000_000);
        assert_eq!(s.counters.queries, 1);
        assert_eq!(s.counters.responses, 1);
        assert_eq!(s.exchanges.len(), 1);
        let ex = &s.exchanges[0];
        assert_eq!(ex.qname, BROKER);
        assert_eq!(ex.qtype, "A");
        assert_eq!(ex.outcome, ExchangeOutcome::Resolved);
        assert_eq!(ex.query_frames, vec![1]);
        let resp = &ex.responses[0];
        assert_eq!(resp.rcode, "NOERROR");
        assert_eq!(
            resp.cname_chain,
            vec!["lb1.prod.zpath.net", "edge.lab.example"]
        );
        let want: Vec<IpAddr> = ["198.18.4.1", "198.18.4.2", "198.18.4.3"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(resp.addresses, want);
        assert_eq!(resp.dns_ttl, Some(60));
        assert_eq!(resp.ip_ttl, 61);
        assert_eq!(resp.rtt_ms, Some(23.0));
        let o = outcome(&s, BROKER);
        assert_eq!(
            o.outcome,
            Outcome::Resolved {
                addresses: want,
                cname_chain: vec!["lb1.prod.zpath.net".into(), "edge.lab.example".into()],
            }
        );
        assert_eq!(o.frames, vec![1, 2]);
        assert_eq!(o.resolver, Some("10.0.0.53".parse().unwrap()));
        assert_eq!(o.queries, 1);
        assert!(
            serde_json::to_string(&s)
                .unwrap()
                .contains("\"outcome\":\"resolved\"")
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Wire bytes from dnsmasq 2.90 answering `dig` on loopback for a lab
    /// zone: name compression and EDNS OPT records as a real resolver sends them.
    #[test]
    fn real_resolver_bytes() {
        let frames = [
            "ec020120000100000000000105636f3262720470726f64057a70617468036e65740000010001000029\
             04d000000000000c000a0008ce0c3bc450bdb63f",
            "ec028580000100040000000105636f3262720470726f64057a70617468036e65740000010001c00c00\
             0500010000000000120465646765036c6162076578616d706c6500c03200010001000000000004c612\
             0402c03200010001000000000004c6120401c03200010001000000000004c612040300002904d00000\
             00000000",
            "4b3c0120000100000000000105636f3262720470726f64057a70617468036e657400001c0001000029\
             04d000000000000c000a00083cd685ec7d336b3f",
            "4b3c8580000100010000000105636f3262720470726f64057a70617468036e657400001c0001c00c00\
             0500010000000000120465646765036c6162076578616d706c650000002904d0000000000000",
        ];
        let (c1, c2, r) = ("127.0.0.1:46123", "127.0.0.1:50369", "127.0.0.1:53");
        let mut t = DnsTracker::new(&[]);
        send(&mut t, 1, 0, c1, r, 64, &hex(frames[0]));
        send(&mut t, 2, 1, r, c1, 64, &hex(frames[1]));
        send(&mut t, 3, 41, c2, r, 64, &hex(frames[2]));
        send(&mut t, 4, 42, r, c2, 64, &hex(frames[3]));
        let s = t.finish(2_000_000_000);
        assert_eq!(s.counters.malformed, 0);
        let a = &s.exchanges[0].responses[0];
        assert_eq!(a.cname_chain, vec!["edge.lab.example"]);
        let want: Vec<IpAddr> = ["198.18.4.2", "198.18.4.1", "198.18.4.3"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(a.addresses, want);
        assert_eq!(a.dns_ttl, Some(0));
        assert!(a.authoritative);
        assert_eq!(s.exchanges[1].outcome, ExchangeOutcome::Alias);
        assert!(matches!(
            outcome(&s, BROKER).outcome,
            Outcome::Resolved { .. }
        ));
    }

    #[test]
    fn nxdomain_and_servfail() {
        let mut t = DnsTracker::new(&[]);
        send(
            &mut t,
            1,
            0,
            CLIENT,
            RESOLVER,
            64,
            &query(7, BROKER, RecordType::A),
        );
        let r = answer(7, BROKER, RecordType::A, ResponseCode::NXDomain, vec![]);
        send(&mut t, 2, 5, RESOLVER, CLIENT, 63, &r);
        let other = "co2br.zpatwo.net";
        send(
            &mut t,
            3,
            10,
            "10.0.0.2:40001",
            RESOLVER,
            64,
            &query(8, other, RecordType::A),
        );
        let r = answer(8, other, RecordType::A, ResponseCode::ServFail, vec![]);
        send(&mut t, 4, 2010, RESOLVER, "10.0.0.2:40001", 63, &r);
        let s = t.finish(3_000_000_000);
        let o = outcome(&s, BROKER);
        assert_eq!(o.outcome, Outcome::NxDomain);
        assert_eq!(o.frames, vec![1, 2]);
        let o = outcome(&s, other);
        assert_eq!(o.outcome, Outcome::ServFail);
        assert_eq!(s.exchanges[1].responses[0].rcode, "SERVFAIL");
        assert_eq!(s.exchanges[1].responses[0].rtt_ms, Some(2000.0));
        let n = &s.names[0];
        assert_eq!((n.nxdomain, n.servfail, n.resolved), (1, 0, 0));
    }

    #[test]
    fn silent_resolver_with_retransmissions() {
        let mut t = DnsTracker::new(&[]);
        // glibc style: same id, same port; then a new socket and id.
        send(
            &mut t,
            1,
            0,
            CLIENT,
            RESOLVER,
            64,
            &query(1, BROKER, RecordType::A),
        );
        send(
            &mut t,
            5,
            5_000,
            CLIENT,
            RESOLVER,
            64,
            &query(1, BROKER, RecordType::A),
        );
        send(
            &mut t,
            9,
            10_000,
            "10.0.0.2:40007",
            RESOLVER,
            64,
            &query(2, BROKER, RecordType::A),
        );
        // A second resolver, asked once, long before the end.
        send(
            &mut t,
            10,
            10_001,
            CLIENT,
            "10.0.0.54:53",
            64,
            &query(1, BROKER, RecordType::A),
        );
        let s = t.finish(10_500_000_000);
        assert_eq!(s.exchanges.len(), 2);
        let ex = &s.exchanges[0];
        assert_eq!(ex.queries, 3);
        assert_eq!(ex.retransmissions(), 2);
        assert_eq!(ex.query_frames, vec![1, 5, 9]);
        assert_eq!(ex.outcome, ExchangeOutcome::Unanswered);
        // Only 0.5 s of capture after it: not proven silent.
        assert_eq!(s.exchanges[1].outcome, ExchangeOutcome::Pending);
        let o = outcome(&s, BROKER);
        assert_eq!(o.outcome, Outcome::Unanswered);
        assert_eq!(o.frames, vec![1, 5, 9]);
        assert_eq!(o.queries, 4);
        assert_eq!(o.resolvers.len(), 2);
        assert_eq!(s.names[0].unanswered, 1);
    }

    #[test]
    fn a_query_at_the_end_of_the_capture_proves_nothing() {
        let mut t = DnsTracker::new(&[]);
        send(
            &mut t,
            1,
            1_000,
            CLIENT,
            RESOLVER,
            64,
            &query(1, BROKER, RecordType::A),
        );
        let s = t.finish(1_200_000_000);
        assert_eq!(outcome(&s, BROKER).outcome, Outcome::Inconclusive);

        let mut t = DnsTracker::new(&[]);
        send(
            &mut t,
            1,
            1_000,
            CLIENT,
            RESOLVER,
            64,
            &query(1, BROKER, RecordType::A),
        );
        let s = t.finish(2_000_000_000);
        assert_eq!(outcome(&s, BROKER).outcome, Outcome::Unanswered);
    }

    /// Splits a DNS-over-TCP message (length prefix included) at `cuts`.
    fn tcp_message(msg: &[u8]) -> Vec<u8> {
        let mut v = (msg.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(msg);
        v
    }

    #[test]
    fn truncated_then_tcp_retry() {
        let mut t = DnsTracker::new(&[]);
        send(
            &mut t,
            1,
            0,
            CLIENT,
            RESOLVER,
            64,
            &query(9, BROKER, RecordType::A),
        );
        let mut m = response(9, BROKER, RecordType::A, ResponseCode::NoError, vec![]);
        m.metadata.truncation = true;
        send(&mut t, 2, 4, RESOLVER, CLIENT, 61, &m.to_vec().unwrap());

        let (c, sv) = ("10.0.0.2:41000", RESOLVER);
        const SYN: u8 = TcpFlags::SYN;
        const ACK: u8 = TcpFlags::ACK;
        t.on_tcp(&tcp(3, 5, c, sv, SYN, 1000, 0), &[]);
        t.on_tcp(&tcp(4, 6, sv, c, SYN | ACK, 5000, 0), &[]);
        let q = tcp_message(&query(10, BROKER, RecordType::A));
        t.on_tcp(&tcp(5, 7, c, sv, ACK, 1001, q.len()), &q);
        // The answer over three segments, one of them retransmitted.
        let addrs: Vec<Record> = (1..=40)
            .map(|i| a(BROKER, 30, &format!("198.18.5.{i}")))
            .collect();
        let r = tcp_message(&answer(
            10,
            BROKER,
            RecordType::A,
            ResponseCode::NoError,
            addrs,
        ));
        let (p1, rest) = r.split_at(1);
        let (p2, p3) = rest.split_at(200);
        let mut seq = 5001;
        t.on_tcp(&tcp(6, 20, sv, c, ACK, seq, p1.len()), p1);
        seq += p1.len() as u32;
        t.on_tcp(&tcp(7, 20, sv, c, ACK, seq, p2.len()), p2);
        t.on_tcp(&tcp(8, 20, sv, c, ACK, seq, p2.len()), p2);
        seq += p2.len() as u32;
        t.on_tcp(&tcp(9, 21, sv, c, ACK | TcpFlags::FIN, seq, p3.len()), p3);
        let s = t.finish(1_000_000_000);
        assert_eq!(s.counters.tcp_segments_skipped, 1);
        assert_eq!(s.exchanges.len(), 2);
        assert_eq!(s.exchanges[0].outcome, ExchangeOutcome::Truncated);
        assert!(s.exchanges[0].responses[0].truncated);
        let tcp_ex = &s.exchanges[1];
        assert_eq!(tcp_ex.transport, DnsTransport::Tcp);
        assert_eq!(tcp_ex.outcome, ExchangeOutcome::Resolved);
        assert_eq!(tcp_ex.responses[0].frame, 9);
        assert_eq!(tcp_ex.responses[0].addresses.len(), MAX_ADDRESSES);
        assert_eq!(tcp_ex.responses[0].rtt_ms, Some(14.0));
        match outcome(&s, BROKER).outcome {
            Outcome::Resolved { addresses, .. } => assert_eq!(addresses.len(), MAX_ADDRESSES),
            o => panic!("{o:?}"),
        }
        let n = &s.names[0];
        assert_eq!((n.truncated, n.resolved), (1, 1));
    }

    #[test]
    fn a_silent_resolver_then_an_answer_from_another() {
        let mut t = DnsTracker::new(&[]);
        send(
            &mut t,
            1,
            0,
            CLIENT,
            RESOLVER,
            64,
            &query(1, BROKER, RecordType::A),
        );
        let second = "10.0.0.54:53";
        send(
            &mut t,
            2,
            5_000,
            CLIENT,
            second,
            64,
            &query(1, BROKER, RecordType::A),
        );
        let r = answer(1, BROKER, RecordType::A, ResponseCode::NoError, vec![]);
        send(&mut t, 3, 5_002, second, CLIENT, 64, &r);
        let s = t.finish(20_000_000_000);
        let n = &s.names[0];
        assert_eq!((n.unanswered, n.no_address), (1, 1));
        let o = outcome(&s, BROKER);
        assert_eq!(o.outcome, Outcome::NoAddress);
        assert_eq!(o.resolver, Some("10.0.0.54".parse().unwrap()));
        assert_eq!(o.resolvers.len(), 2);
    }

    #[test]
    fn truncated_without_tcp_retry() {
        let mut t = DnsTracker::new(&[]);
        send(
            &mut t,
            1,
            0,
            CLIENT,
            RESOLVER,
            64,
            &query(9, BROKER, RecordType::A),
        );
        let mut m = response(9, BROKER, RecordType::A, ResponseCode::NoError, vec![]);
        m.metadata.truncation = true;
        send(&mut t, 2, 4, RESOLVER, CLIENT, 61, &m.to_vec().unwrap());
        let s = t.finish(5_000_000_000);
        assert_eq!(outcome(&s, BROKER).outcome, Outcome::Truncated);
    }

    #[test]
    fn pipelined_tcp_messages_in_one_segment() {
        let mut t = DnsTracker::new(&[]);
        let (c, sv) = ("10.0.0.2:41000", RESOLVER);
        let mut q = tcp_message(&query(1, BROKER, RecordType::A));
        q.extend(tcp_message(&query(2, BROKER, RecordType::AAAA)));
        t.on_tcp(&tcp(1, 0, c, sv, TcpFlags::ACK, 1, q.len()), &q);
        let mut r = tcp_message(&answer(
            2,
            BROKER,
            RecordType::AAAA,
            ResponseCode::NoError,
            vec![],
        ));
        r.extend(tcp_message(&answer(
            1,
            BROKER,
            RecordType::A,
            ResponseCode::NoError,
            vec![a(BROKER, 30, "198.18.4.1")],
        )));
        t.on_tcp(&tcp(2, 3, sv, c, TcpFlags::ACK, 1, r.len()), &r);
        let s = t.finish(5_000_000_000);
        assert_eq!(s.counters.messages, 4);
        let outcomes: Vec<_> = s
            .exchanges
            .iter()
            .map(|e| (e.qtype.as_str(), e.outcome))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                ("A", ExchangeOutcome::Resolved),
                ("AAAA", ExchangeOutcome::NoAddress)
            ]
        );
    }

    #[test]
    fn tcp_resyncs_after_a_message_it_gives_up() {
        let mut t = DnsTracker::new(&[]);
        let (c, sv) = ("10.0.0.2:41000", RESOLVER);
        let q = tcp_message(&query(1, BROKER, RecordType::A));
        t.on_tcp(&tcp(1, 0, c, sv, TcpFlags::ACK, 1, q.len()), &q);
        let addrs = |n: u8| -> Vec<Record> {
            (1..=n)
                .map(|i| a(BROKER, 30, &format!("198.18.5.{i}")))
                .collect()
        };
        let big = tcp_message(&answer(
            1,
            BROKER,
            RecordType::A,
            ResponseCode::NoError,
            addrs(40),
        ));
        let small = tcp_message(&answer(
            2,
            BROKER,
            RecordType::A,
            ResponseCode::NoError,
            addrs(1),
        ));
        // Four segments for the first answer (one too many); the last one
        // also carries the start of the next answer.
        let mut stream = big.clone();
        stream.extend(&small);
        let cuts = [0, 100, 200, 300, big.len() + 10, stream.len()];
        let mut seq = 1u32;
        for (i, w) in cuts.windows(2).enumerate() {
            let seg = &stream[w[0]..w[1]];
            t.on_tcp(
                &tcp(2 + i as u64, 10, sv, c, TcpFlags::ACK, seq, seg.len()),
                seg,
            );
            seq += seg.len() as u32;
        }
        // The client asks again; the answer is cut by the snapshot length,
        // then a third answer follows in the next segment.
        let q = tcp_message(&query(3, BROKER, RecordType::AAAA));
        t.on_tcp(
            &tcp(10, 20, c, sv, TcpFlags::ACK, 1 + q.len() as u32, q.len()),
            &q,
        );
        let cut_answer = tcp_message(&answer(
            3,
            BROKER,
            RecordType::AAAA,
            ResponseCode::NoError,
            vec![],
        ));
        t.on_tcp(
            &tcp(11, 30, sv, c, TcpFlags::ACK, seq, cut_answer.len()),
            &cut_answer[..6],
        );
        seq += cut_answer.len() as u32;
        let nx = tcp_message(&answer(
            4,
            BROKER,
            RecordType::A,
            ResponseCode::NXDomain,
            vec![],
        ));
        t.on_tcp(&tcp(12, 31, sv, c, TcpFlags::ACK, seq, nx.len()), &nx);
        let s = t.finish(5_000_000_000);
        assert_eq!(s.counters.malformed, 0, "{:?}", s.counters);
        assert_eq!(s.counters.incomplete_payloads, 1);
        assert_eq!(s.counters.tcp_segments_skipped, 1);
        // Answers 2 (resync after the given-up message) and 4 match no query.
        assert_eq!(s.counters.unmatched_responses, 2);
        let ids: Vec<(u16, u32, usize)> = s
            .exchanges
            .iter()
            .map(|e| (e.id, e.queries, e.responses.len()))
            .collect();
        // 1 lost its (given-up) answer; 3's answer was cut inside the header.
        assert_eq!(ids, vec![(1, 1, 0), (2, 0, 1), (3, 1, 0), (4, 0, 1)]);
    }

    #[test]
    fn ipv6_resolver_and_aaaa() {
        let mut t = DnsTracker::new(&[]);
        let (c, r) = ("[2001:db8::2]:50000", "[2001:db8::53]:53");
        send(&mut t, 1, 0, c, r, 64, &query(3, BROKER, RecordType::AAAA));
        let resp = answer(
            3,
            BROKER,
            RecordType::AAAA,
            ResponseCode::NoError,
            vec![aaaa(BROKER, 120, "2001:db8:4::1")],
        );
        send(&mut t, 2, 12, r, c, 57, &resp);
        let s = t.finish(1_000_000_000);
        let ex = &s.exchanges[0];
        assert_eq!(ex.qtype, "AAAA");
        assert_eq!(ex.server, r.parse::<SocketAddr>().unwrap());
        assert_eq!(ex.responses[0].ip_ttl, 57);
        assert_eq!(ex.responses[0].dns_ttl, Some(120));
        let o = outcome(&s, BROKER);
        assert_eq!(o.resolver, Some("2001:db8::53".parse().unwrap()));
        assert!(matches!(o.outcome, Outcome::Resolved { ref addresses, .. }
            if addresses == &["2001:db8:4::1".parse::<IpAddr>().unwrap()]));
    }

    #[test]
    fn other_names_are_counted_not_kept() {
        let mut t = DnsTracker::new(&[]);
        send(
            &mut t,
            1,
            0,
            CLIENT,
            RESOLVER,
            64,
            &query(4, "www.lab.example", RecordType::A),
        );
        let r = answer(
            4,
            "www.lab.example",
            RecordType::A,
            ResponseCode::NoError,
            vec![a("www.lab.example", 5, "192.0.2.1")],
        );
        send(&mut t, 2, 1, RESOLVER, CLIENT, 64, &r);
        // Not port 53: not DNS for the tracker.
        let q = query(5, BROKER, RecordType::A);
        send(&mut t, 3, 2, CLIENT, "10.0.0.53:5353", 64, &q);
        let s = t.finish(5_000_000_000);
        assert_eq!(s.counters.messages, 2);
        assert_eq!(s.counters.non_broker, 2);
        assert!(s.exchanges.is_empty());
        assert!(s.broker_name_outcomes().is_empty());
    }

    #[test]
    fn extra_names_are_tracked() {
        let mut t = DnsTracker::new(&["Broker.Lab.Example.".to_string()]);
        send(
            &mut t,
            1,
            0,
            CLIENT,
            RESOLVER,
            64,
            &query(4, "broker.lab.example", RecordType::A),
        );
        let s = t.finish(5_000_000_000);
        assert_eq!(
            outcome(&s, "broker.lab.example").outcome,
            Outcome::Unanswered
        );
    }

    #[test]
    fn same_id_on_two_ports_matches_by_port() {
        let mut t = DnsTracker::new(&[]);
        let (c1, c2) = ("10.0.0.2:40001", "10.0.0.2:40002");
        send(
            &mut t,
            1,
            0,
            c1,
            RESOLVER,
            64,
            &query(77, BROKER, RecordType::A),
        );
        send(
            &mut t,
            2,
            1,
            c2,
            RESOLVER,
            64,
            &query(77, BROKER, RecordType::A),
        );
        let r2 = answer(
            77,
            BROKER,
            RecordType::A,
            ResponseCode::NoError,
            vec![a(BROKER, 9, "198.18.0.2")],
        );
        send(&mut t, 3, 10, RESOLVER, c2, 64, &r2);
        let r1 = answer(
            77,
            BROKER,
            RecordType::A,
            ResponseCode::NoError,
            vec![a(BROKER, 9, "198.18.0.1")],
        );
        send(&mut t, 4, 20, RESOLVER, c1, 64, &r1);
        let s = t.finish(5_000_000_000);
        // The second query has another port and id... but the same question
        // from the same address with no answer yet: a retransmission.
        assert_eq!(s.exchanges.len(), 1);
        let ex = &s.exchanges[0];
        assert_eq!(ex.queries, 2);
        assert_eq!(ex.responses.len(), 2);
        assert_eq!(
            ex.responses[0].addresses,
            vec!["198.18.0.2".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(ex.responses[0].rtt_ms, Some(9.0));
        assert_eq!(ex.responses[1].rtt_ms, Some(20.0));
        assert_eq!(s.counters.unmatched_responses, 0);

        // Two clients (A and AAAA from different sockets) with the same id.
        let mut t = DnsTracker::new(&[]);
        send(
            &mut t,
            1,
            0,
            c1,
            RESOLVER,
            64,
            &query(77, BROKER, RecordType::A),
        );
        send(
            &mut t,
            2,
            1,
            c2,
            RESOLVER,
            64,
            &query(77, BROKER, RecordType::AAAA),
        );
        let r = answer(77, BROKER, RecordType::AAAA, ResponseCode::NXDomain, vec![]);
        send(&mut t, 3, 10, RESOLVER, c2, 64, &r);
        let mut m = response(77, BROKER, RecordType::A, ResponseCode::Refused, vec![]);
        m.queries.clear(); // some servers answer REFUSED without the question
        send(&mut t, 4, 20, RESOLVER, c1, 64, &m.to_vec().unwrap());
        let s = t.finish(5_000_000_000);
        let outcomes: Vec<_> = s
            .exchanges
            .iter()
            .map(|e| (e.client.port(), e.outcome))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                (40001, ExchangeOutcome::Refused),
                (40002, ExchangeOutcome::NxDomain)
            ]
        );
        assert_eq!(outcome(&s, BROKER).outcome, Outcome::NxDomain);
    }

    #[test]
    fn malformed_and_cut_responses() {
        let mut t = DnsTracker::new(&[]);
        send(
            &mut t,
            1,
            0,
            CLIENT,
            RESOLVER,
            64,
            &query(5, BROKER, RecordType::A),
        );
        // Garbage: a header claiming a question that is not there.
        send(
            &mut t,
            2,
            1,
            RESOLVER,
            CLIENT,
            64,
            &[0, 5, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0],
        );
        send(&mut t, 3, 1, RESOLVER, CLIENT, 64, &[1, 2, 3]);
        send(&mut t, 4, 1, RESOLVER, CLIENT, 64, &[]);
        // The real answer, cut by the snapshot length in its answer section.
        let r = answer(
            5,
            BROKER,
            RecordType::A,
            ResponseCode::NoError,
            vec![a(BROKER, 9, "198.18.0.1")],
        );
        let cut = &r[..r.len() - 3];
        t.on_udp(&udp(5, 2, RESOLVER, CLIENT, 64, r.len()), cut);
        let s = t.finish(5_000_000_000);
        assert_eq!(s.counters.malformed, 3);
        assert_eq!(s.counters.incomplete_payloads, 1);
        let ex = &s.exchanges[0];
        assert_eq!(ex.outcome, ExchangeOutcome::Unreadable);
        assert!(!ex.responses[0].complete);
        assert_eq!(outcome(&s, BROKER).outcome, Outcome::Inconclusive);
    }

    #[test]
    fn cname_only_answer_is_followed_to_its_target() {
        let mut t = DnsTracker::new(&[]);
        let target = "edge.cdn.example";
        send(
            &mut t,
            1,
            0,
            CLIENT,
            RESOLVER,
            64,
            &query(1, BROKER, RecordType::A),
        );
        let r = answer(
            1,
            BROKER,
            RecordType::A,
            ResponseCode::NoError,
            vec![cname(BROKER, 60, target)],
        );
        send(&mut t, 2, 3, RESOLVER, CLIENT, 64, &r);
        send(
            &mut t,
            3,
            4,
            CLIENT,
            RESOLVER,
            64,
            &query(2, target, RecordType::A),
        );
        let r = answer(
            2,
            target,
            RecordType::A,
            ResponseCode::NoError,
            vec![a(target, 20, "198.18.9.9")],
        );
        send(&mut t, 4, 6, RESOLVER, CLIENT, 64, &r);
        let s = t.finish(5_000_000_000);
        assert_eq!(s.counters.non_broker, 0);
        assert_eq!(s.names.len(), 2);
        assert_eq!(s.names[1].cname_of.as_deref(), Some(BROKER));
        let all = s.broker_name_outcomes();
        assert_eq!(all.len(), 1);
        assert_eq!(
            all[0].outcome,
            Outcome::Resolved {
                addresses: vec!["198.18.9.9".parse().unwrap()],
                cname_chain: vec![target.to_string()],
            }
        );
        assert_eq!(all[0].frames, vec![1, 2, 3, 4]);

        // The target does not exist.
        let mut t = DnsTracker::new(&[]);
        send(
            &mut t,
            1,
            0,
            CLIENT,
            RESOLVER,
            64,
            &query(1, BROKER, RecordType::A),
        );
        let r = answer(
            1,
            BROKER,
            RecordType::A,
            ResponseCode::NoError,
            vec![cname(BROKER, 60, target)],
        );
        send(&mut t, 2, 3, RESOLVER, CLIENT, 64, &r);
        send(
            &mut t,
            3,
            4,
            CLIENT,
            RESOLVER,
            64,
            &query(2, target, RecordType::A),
        );
        let r = answer(2, target, RecordType::A, ResponseCode::NXDomain, vec![]);
        send(&mut t, 4, 6, RESOLVER, CLIENT, 64, &r);
        let s = t.finish(5_000_000_000);
        assert_eq!(outcome(&s, BROKER).outcome, Outcome::NxDomain);
    }

    #[test]
    fn a_cname_loop_resolves_nothing_and_is_not_followed() {
        let mut t = DnsTracker::new(&[]);
        let other = "edge.cdn.example";
        send(
            &mut t,
            1,
            0,
            CLIENT,
            RESOLVER,
            64,
            &query(1, BROKER, RecordType::A),
        );
        // Out of order, with addresses for both names of the loop.
        let r = answer(
            1,
            BROKER,
            RecordType::A,
            ResponseCode::NoError,
            vec![
                a(other, 60, "198.18.9.9"),
                cname(other, 60, BROKER),
                cname(BROKER, 60, other),
                a(BROKER, 60, "198.18.9.8"),
            ],
        );
        send(&mut t, 2, 3, RESOLVER, CLIENT, 64, &r);
        send(
            &mut t,
            3,
            4,
            CLIENT,
            RESOLVER,
            64,
            &query(2, other, RecordType::A),
        );
        let s = t.finish(5_000_000_000);
        let resp = &s.exchanges[0].responses[0];
        assert_eq!(resp.cname_chain, vec![other]);
        assert!(resp.addresses.is_empty());
        assert_eq!(s.exchanges[0].outcome, ExchangeOutcome::Alias);
        // The loop has no end for the client to ask next: the target's own
        // query is not tracked.
        assert_eq!(s.counters.non_broker, 1);
        assert_eq!(outcome(&s, BROKER).outcome, Outcome::NoAddress);
    }

    #[test]
    fn search_domain_expansions_are_flagged() {
        let mut t = DnsTracker::new(&[]);
        let expanded = "co2br.prod.zpath.net.corp.example";
        send(
            &mut t,
            1,
            0,
            CLIENT,
            RESOLVER,
            64,
            &query(1, expanded, RecordType::A),
        );
        send(
            &mut t,
            2,
            1,
            RESOLVER,
            CLIENT,
            64,
            &answer(1, expanded, RecordType::A, ResponseCode::NXDomain, vec![]),
        );
        send(
            &mut t,
            3,
            2,
            CLIENT,
            RESOLVER,
            64,
            &query(2, BROKER, RecordType::A),
        );
        let r = answer(
            2,
            BROKER,
            RecordType::A,
            ResponseCode::NoError,
            vec![a(BROKER, 9, "198.18.0.1")],
        );
        send(&mut t, 4, 3, RESOLVER, CLIENT, 64, &r);
        let s = t.finish(5_000_000_000);
        let o = outcome(&s, expanded);
        assert_eq!(o.outcome, Outcome::NxDomain);
        assert_eq!(o.search_expansion_of.as_deref(), Some(BROKER));
        assert_eq!(outcome(&s, BROKER).search_expansion_of, None);

        // A bare `co2br` lookup is no base for the real name.
        let mut t = DnsTracker::new(&[]);
        send(
            &mut t,
            1,
            0,
            CLIENT,
            RESOLVER,
            64,
            &query(1, "co2br", RecordType::A),
        );
        send(
            &mut t,
            2,
            0,
            CLIENT,
            RESOLVER,
            64,
            &query(2, BROKER, RecordType::A),
        );
        let s = t.finish(5_000_000_000);
        assert_eq!(outcome(&s, BROKER).search_expansion_of, None);
    }

    #[test]
    fn a_second_forged_answer_is_kept() {
        let mut t = DnsTracker::new(&[]);
        send(
            &mut t,
            1,
            0,
            CLIENT,
            RESOLVER,
            64,
            &query(1, BROKER, RecordType::A),
        );
        // An on-path injector answers first (TTL of a near hop), the resolver later.
        let forged = answer(1, BROKER, RecordType::A, ResponseCode::NXDomain, vec![]);
        send(&mut t, 2, 1, RESOLVER, CLIENT, 254, &forged);
        let real = answer(
            1,
            BROKER,
            RecordType::A,
            ResponseCode::NoError,
            vec![a(BROKER, 9, "198.18.0.1")],
        );
        send(&mut t, 3, 30, RESOLVER, CLIENT, 52, &real);
        let s = t.finish(5_000_000_000);
        let ex = &s.exchanges[0];
        assert_eq!(ex.outcome, ExchangeOutcome::NxDomain);
        let ttls: Vec<u8> = ex.responses.iter().map(|r| r.ip_ttl).collect();
        assert_eq!(ttls, vec![254, 52]);
    }

    #[test]
    fn a_response_without_its_query() {
        let mut t = DnsTracker::new(&[]);
        let r = answer(
            1,
            BROKER,
            RecordType::A,
            ResponseCode::NoError,
            vec![a(BROKER, 9, "198.18.0.1")],
        );
        send(&mut t, 1, 0, RESOLVER, CLIENT, 64, &r);
        let s = t.finish(0);
        assert_eq!(s.counters.unmatched_responses, 1);
        let ex = &s.exchanges[0];
        assert_eq!((ex.queries, ex.responses[0].rtt_ms), (0, None));
        assert!(matches!(
            outcome(&s, BROKER).outcome,
            Outcome::Resolved { .. }
        ));
    }

    #[test]
    fn memory_stays_bounded() {
        let mut t = DnsTracker::new(&[]);
        for i in 0..20_000u32 {
            let n = format!("h{}.zpath.net", i % 3_000);
            let c = format!("10.0.{}.{}:{}", i / 250 % 250, i % 250, 1024 + i % 60_000);
            let q = query(i as u16, &n, RecordType::A);
            send(&mut t, u64::from(i), i64::from(i), &c, RESOLVER, 64, &q);
            assert!(t.active.len() <= MAX_ACTIVE);
            assert!(t.names.len() <= MAX_NAMES);
            assert!(t.kept.len() <= MAX_EXCHANGES_KEPT);
        }
        let s = t.finish(100_000_000_000);
        assert_eq!(s.counters.exchanges, 20_000);
        assert_eq!(
            s.exchanges.len() as u64 + s.counters.exchanges_not_kept,
            20_000
        );
        assert!(s.names.len() <= MAX_NAMES);
        let aggregated: u32 = s.names.iter().map(|n| n.exchanges).sum();
        assert_eq!(u64::from(aggregated) + s.counters.names_not_kept, 20_000);
    }

    #[test]
    fn counts_cover_exchanges_beyond_the_kept_ones() {
        let mut t = DnsTracker::new(&[]);
        // Unanswered for a long while, then resolved: still "resolved".
        let mut frame = 0;
        for i in 0..1_500i64 {
            frame += 1;
            let c = format!("10.0.0.2:{}", 20_000 + i);
            send(
                &mut t,
                frame,
                i * 20_000,
                &c,
                RESOLVER,
                64,
                &query(i as u16, BROKER, RecordType::A),
            );
        }
        frame += 1;
        send(
            &mut t,
            frame,
            30_000_000,
            CLIENT,
            RESOLVER,
            64,
            &query(9, BROKER, RecordType::A),
        );
        let r = answer(
            9,
            BROKER,
            RecordType::A,
            ResponseCode::NoError,
            vec![a(BROKER, 9, "198.18.0.1")],
        );
        send(&mut t, frame + 1, 30_000_010, RESOLVER, CLIENT, 64, &r);
        let s = t.finish(31_000_000_000);
        assert_eq!(s.exchanges.len(), MAX_EXCHANGES_KEPT);
        let n = &s.names[0];
        assert_eq!((n.unanswered, n.resolved), (1_500, 1));
        assert!(matches!(
            outcome(&s, BROKER).outcome,
            Outcome::Resolved { .. }
        ));
    }

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn random_payloads_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut t = DnsTracker::new(&["broker.lab.example".to_string()]);
        let seeds = [
            query(1, BROKER, RecordType::A),
            answer(
                1,
                BROKER,
                RecordType::A,
                ResponseCode::NoError,
                vec![
                    cname(BROKER, 9, "x.zpath.net"),
                    a("x.zpath.net", 9, "198.18.0.1"),
                ],
            ),
        ];
        for i in 0..10_000u64 {
            let len = (rng.next() % 300) as usize;
            let mut payload: Vec<u8> = if i % 2 == 0 {
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                // Mutations of valid messages reach deeper than pure noise.
                let mut v = seeds[(i / 2 % 2) as usize].clone();
                for _ in 0..=(rng.next() % 4) {
                    let at = (rng.next() as usize) % v.len();
                    v[at] = rng.next() as u8;
                }
                v.truncate((rng.next() as usize) % (v.len() + 1));
                v
            };
            let ms = i as i64;
            let (src, dst) = if rng.next().is_multiple_of(2) {
                (CLIENT, RESOLVER)
            } else {
                (RESOLVER, CLIENT)
            };
            t.on_udp(
                &udp(i, ms, src, dst, 64, payload.len() + (i % 3) as usize),
                &payload,
            );
            if i % 5 == 0 {
                let flags = (rng.next() as u8) & !TcpFlags::RST;
                let seq = (rng.next() % 4) as u32 * 100;
                t.on_tcp(&tcp(i, ms, src, dst, flags, seq, payload.len()), &payload);
                let mut framed = tcp_message(&payload);
                framed.truncate(payload.len());
                payload = framed;
                t.on_tcp(
                    &tcp(i, ms, src, dst, TcpFlags::ACK, seq, payload.len() + 5),
                    &payload,
                );
            }
        }
        let s = t.finish(20_000_000_000);
        let _ = s.broker_name_outcomes();
        assert!(s.counters.malformed > 0);
        serde_json::to_string(&s).unwrap();
    }

    #[test]
    fn full_tcp_table_evicts_the_lowest_key_among_equally_stale_streams() {
        // Every stream opened at the same instant: the tie is broken by the
        // key (the lowest client port goes), not by the map's order.
        let mut t = DnsTracker::new(&[]);
        for port in 0..=MAX_TCP_STREAMS as u16 {
            let c = format!("10.0.0.2:{}", 50_000 - port);
            t.on_tcp(&tcp(1, 0, &c, RESOLVER, TcpFlags::SYN, 1, 0), &[]);
        }
        assert_eq!(t.tcp.len(), MAX_TCP_STREAMS);
        let lowest = 50_000 - MAX_TCP_STREAMS as u16;
        let ports: Vec<u16> = t.tcp.keys().map(|(c, _)| c.port()).collect();
        // The last one opened has the lowest port, and is new: it stays;
        // the one before it is the lowest of the streams that were there.
        assert!(ports.contains(&lowest));
        assert!(!ports.contains(&(lowest + 1)));
        assert!(ports.iter().all(|p| *p == lowest || *p >= lowest + 2));
    }
}
