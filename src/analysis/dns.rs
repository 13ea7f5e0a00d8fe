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

use crate::packet::{Packet, Transport};
use hickory_proto::op::{Header, OpCode, Query};
use hickory_proto::rr::{RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
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
const MAX_CHAIN: usize = 8;
const MAX_RESOLVERS: usize = 8;
const MAX_EVIDENCE_FRAMES: usize = 16;
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
    if n.split('.').next() == Some("co2br") {
        return true;
    }
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
    /// A and AAAA addresses of the last name of the CNAME chain (or of the
    /// name itself), in answer order.
    pub addresses: Vec<IpAddr>,
    /// CNAME targets in order, starting from the queried name.
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
    /// Payloads cut by the capture's snapshot length.
    pub cut_by_snapshot: u64,
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
    OtherRcode { rcode: String },
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
                let (outcome, resolver, frames) = self.outcome_of(n, &by_name, 0);
                let search_expansion_of = by_name
                    .keys()
                    .filter(|other| {
                        n.name.len() > other.len() + 1
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

    fn outcome_of(
        &self,
        n: &NameSummary,
        by_name: &HashMap<&str, &NameSummary>,
        depth: usize,
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
        if let Some(alias) = found(ExchangeOutcome::Alias)
            && depth < MAX_CHAIN
        {
            for target in &alias.chain {
                let Some(t) = by_name.get(target.as_str()) else {
                    continue;
                };
                if std::ptr::eq(*t, n) {
                    continue;
                }
                let (o, r, f) = self.outcome_of(t, by_name, depth + 1);
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
        let e = n.evidence.first().map(|(_, e)| e);
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
struct TcpStream {
    next_seq: u32,
    buf: Vec<u8>,
    segments: u8,
    last_ts_ns: i64,
}

/// The parts of a message read before deciding whether it matters.
struct Head {
    id: u16,
    response: bool,
    opcode: OpCode,
    rcode: u8,
    truncated: bool,
    authoritative: bool,
    answers: u16,
    /// First question: normalized name and type.
    question: Option<(String, RecordType)>,
}

fn read_head(decoder: &mut BinDecoder<'_>) -> Option<Head> {
    let header = Header::read(decoder).ok()?;
    let m = header.metadata;
    let mut question = None;
    for _ in 0..header.counts.queries {
        let q = Query::read(decoder).ok()?;
        if question.is_none() {
            question = Some((normalize(&q.name().to_ascii()), q.query_type()));
        }
    }
    Some(Head {
        id: m.id,
        response: m.message_type == hickory_proto::op::MessageType::Response,
        opcode: m.op_code,
        rcode: (u16::from(m.response_code) & 0x0f) as u8,
        truncated: m.truncation,
        authoritative: m.authoritative,
        answers: header.counts.answers,
        question,
    })
}

fn rcode_name(rcode: u8) -> String {
    match rcode {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        6 => "YXDOMAIN".into(),
        7 => "YXRRSET".into(),
        8 => "NXRRSET".into(),
        9 => "NOTAUTH".into(),
        10 => "NOTZONE".into(),
        n => format!("RCODE{n}"),
    }
}

fn qtype_name(t: RecordType) -> String {
    match t {
        RecordType::Unknown(n) => format!("TYPE{n}"),
        t => t.to_string(),
    }
}

fn is_address_type(t: u16) -> bool {
    t == u16::from(RecordType::A) || t == u16::from(RecordType::AAAA)
}

/// Follows the CNAME chain from `qname` through the answer section and
/// collects the addresses of its last name.
fn read_answers(
    qname: &str,
    records: &[Record],
) -> (Vec<IpAddr>, Vec<String>, Option<u32>) {
    let owner = |r: &Record| normalize(&r.name.to_ascii());
    let mut current = qname.to_string();
    let mut chain = Vec::new();
    let mut ttl: Option<u32> = None;
    while chain.len() < MAX_CHAIN {
        let next = records.iter().find_map(|r| match &r.data {
            RData::CNAME(c) if owner(r) == current => Some((normalize(&c.0.to_ascii()), r.ttl)),
            _ => None,
        });
        let Some((target, t)) = next else { break };
        if target == current || chain.contains(&target) {
            break; // a loop
        }
        ttl = Some(ttl.map_or(t, |x| x.min(t)));
        chain.push(target.clone());
        current = target;
    }
    let mut addresses = Vec::new();
    for r in records {
        let a = match &r.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => continue,
        };
        if owner(r) == current {
            ttl = Some(ttl.map_or(r.ttl, |x| x.min(r.ttl)));
            push_unique(&mut addresses, a, MAX_ADDRESSES);
        }
    }
    (addresses, chain, ttl)
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
pub struct DnsTracker {
    extra: Vec<String>,
    counters: DnsCounters,
    next_serial: u64,
    active: HashMap<u64, Live>,
    by_id: HashMap<IdKey, Vec<u64>>,
    by_question: HashMap<QuestionKey, u64>,
    /// CNAME targets of broker names, and the broker name that led to each.
    followed: HashMap<String, String>,
    names: HashMap<String, NameSummary>,
    kept: Vec<DnsExchange>,
    tcp: HashMap<(SocketAddr, SocketAddr), TcpStream>,
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
            active: HashMap::new(),
            by_id: HashMap::new(),
            by_question: HashMap::new(),
            followed: HashMap::new(),
            names: HashMap::new(),
            kept: Vec::new(),
            tcp: HashMap::new(),
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
                .min_by_key(|(_, s)| s.last_ts_ns)
                .map(|(k, _)| *k);
            if let Some(k) = stalest {
                self.tcp.remove(&k);
            }
        }
        self.tcp.entry(key).or_insert(TcpStream {
            next_seq: seq,
            buf: Vec::new(),
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
            self.counters.tcp_segments_skipped += 1;
            return;
        }
        let mut data = std::mem::take(&mut st.buf);
        let segments = st.segments + 1;
        st.segments = 0;
        let cut = (payload.len() as u64) < u64::from(payload_len);
        data.extend_from_slice(payload);
        let mut rest: &[u8] = &data;
        let mut tail = None;
        while rest.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            if rest.len() >= 2 + len {
                let (msg, more) = rest[2..].split_at(len);
                let (sp, dp) = (key.0.port(), key.1.port());
                self.on_message(p, sp, dp, DnsTransport::Tcp, msg, false);
                rest = more;
            } else {
                tail = Some(rest);
                break;
            }
        }
        match tail {
            // The capture holds only the start of this segment: read what it has.
            Some(t) if cut => {
                let (sp, dp) = (key.0.port(), key.1.port());
                self.on_message(p, sp, dp, DnsTransport::Tcp, &t[2..], true);
            }
            Some(t) if segments < MAX_TCP_SEGMENTS => {
                if let Some(st) = self.tcp.get_mut(&key) {
                    st.buf = t.to_vec();
                    st.segments = segments;
                }
            }
            Some(_) => self.counters.tcp_segments_skipped += 1,
            // A lone length byte: keep it for the next segment.
            None if rest.len() == 1 && !cut => {
                if let Some(st) = self.tcp.get_mut(&key) {
                    st.buf = rest.to_vec();
                    st.segments = segments;
                }
            }
            None => {}
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
            self.counters.cut_by_snapshot += 1;
        }
        let mut decoder = BinDecoder::new(bytes);
        let Some(head) = read_head(&mut decoder) else {
            if !cut {
                self.counters.malformed += 1;
            }
            return;
        };
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
            (_, true) => self.on_response(p, transport, dst, src, &head, &mut decoder, cut),
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
                .is_some_and(|t| p.ts_ns - t <= RETRANSMIT_WINDOW_NS)
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
        decoder: &mut BinDecoder<'_>,
        cut: bool,
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

        let mut records = Vec::new();
        let mut complete = !cut;
        for _ in 0..head.answers {
            match Record::read(decoder) {
                Ok(r) => records.push(r),
                Err(_) => {
                    complete = false;
                    break;
                }
            }
        }
        let (addresses, cname_chain, dns_ttl) = read_answers(&qname, &records);
        let response = DnsResponse {
            frame: p.frame,
            ts_ns: p.ts_ns,
            id: head.id,
            rcode: rcode_name(head.rcode),
            rcode_value: head.rcode,
            truncated: head.truncated,
            authoritative: head.authoritative,
            complete,
            addresses,
            cname_chain,
            dns_ttl,
            ip_ttl: p.ttl,
            rtt_ms: sent.map(|t| (p.ts_ns - t) as f64 / 1e6),
        };
        // The client will ask for the end of a CNAME chain next: follow it.
        if let Some(target) = response.cname_chain.last()
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
                        Some(a) => now - a >= LINGER_NS,
                        None => now - l.last_ts_ns >= IDLE_NS,
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
            let mut by_age: Vec<(i64, u64)> =
                self.active.iter().map(|(s, l)| (l.last_ts_ns, *s)).collect();
            by_age.sort_unstable();
            let old = by_age.iter().take(by_age.len() / 2).map(|(_, s)| *s).collect();
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
            None if ex.queries >= 2 || now - ex.first_ts_ns >= UNANSWERED_AFTER_NS => {
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
