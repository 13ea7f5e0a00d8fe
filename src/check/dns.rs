//! A stub-resolver client for the live check: asks the configured
//! nameservers for a broker name the way glibc does (A and AAAA in parallel
//! on one UDP socket, each server in turn, `tries` rounds, TCP when the UDP
//! answer is truncated) and records every try, so that a failure can be told
//! precisely: NXDOMAIN, SERVFAIL, silence, or an ICMP port unreachable.
//!
//! This module only sends and receives: a response is read by the
//! analysis' one DNS reader ([`crate::analysis::dns::message`]) and its CNAME
//! chain followed by the one rule ([`crate::analysis::dns::chain`]), the same
//! as for the DNS in a capture. The sockets are ours (blocking std sockets
//! with timeouts); hickory-proto builds the query. [`read_answer`] only adds
//! the matching of a response to our query (id and question). The name is
//! queried as given (as a fully qualified name): the search list is not
//! applied. The reverse names of trace hops go through the same UDP
//! exchange ([`udp_round`], used by [`super::rdns`]).

use crate::analysis::dns::{chain, message, rcode_name};
use crate::analysis::rules::dns_lookup::{self, AnswerSeen, LookupObservation, TrySeen};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use serde::{Serialize, Serializer};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// Serialises a duration as milliseconds (f64), the unit of every duration
/// in pathproof's JSON.
pub(crate) fn serialize_ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// How hard to try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupOptions {
    /// How long to wait for the answer(s) of one try.
    pub timeout_per_try: Duration,
    /// Rounds over all servers (glibc's `attempts`).
    pub tries: u32,
    /// Server port (53; tests use a loopback port).
    pub port: u16,
    /// Ask AAAA alongside A.
    pub want_aaaa: bool,
}

impl Default for LookupOptions {
    fn default() -> Self {
        LookupOptions {
            timeout_per_try: Duration::from_secs(2),
            tries: 2,
            port: 53,
            want_aaaa: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        })
    }
}

/// What became of one query sent to one server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TryOutcome {
    Answered { rcode: String, truncated: bool },
    Timeout,
    IoError { error: String },
}

/// One query (one qtype) sent to one server over one transport.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsTry {
    pub server: IpAddr,
    pub transport: Transport,
    /// "A" or "AAAA".
    pub qtype: String,
    pub outcome: TryOutcome,
    #[serde(rename = "elapsed_ms", serialize_with = "serialize_ms")]
    pub elapsed: Duration,
}

/// Why the lookup gave no address: judged by the analysis
/// ([`crate::analysis::rules::dns_lookup`]).
pub use crate::analysis::rules::dns_lookup::DnsFailure;

/// The whole lookup: the answer that counted, and every try on the way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsLookup {
    pub name: String,
    /// The server whose answer counted (also for NXDOMAIN/SERVFAIL).
    pub server: Option<IpAddr>,
    /// How that answer came.
    pub transport: Option<Transport>,
    /// "NOERROR", "NXDOMAIN", "SERVFAIL", … of that answer.
    pub rcode: Option<String>,
    /// The query name, then each CNAME target in order; empty without an
    /// answer, just the query name when it is canonical.
    pub cname_chain: Vec<String>,
    pub addresses: Vec<IpAddr>,
    #[serde(rename = "elapsed_ms", serialize_with = "serialize_ms")]
    pub elapsed: Duration,
    pub tries: Vec<DnsTry>,
    /// Datagrams or messages that were not an answer to our queries (wrong
    /// id or question): late answers of earlier tries, or spoofing.
    pub ignored_messages: u32,
    pub failure: Option<DnsFailure>,
}

// ---------------------------------------------------------------------------
// Pure message building and reading
// ---------------------------------------------------------------------------

#[derive(Debug, thiserror::Error)]
pub enum DnsWireError {
    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("encoding the query: {0}")]
    Encode(String),
}

/// Why a received message is not the answer to our query.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotOurAnswer {
    #[error("undecodable message: {0}")]
    Undecodable(String),
    #[error("a query, not a response")]
    NotAResponse,
    #[error("id {got:#06x}, expected {expected:#06x}")]
    WrongId { expected: u16, got: u16 },
    #[error("question does not match ours")]
    WrongQuestion,
}

/// What one response says about our name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub truncated: bool,
    /// Query name then CNAME targets (see [`DnsLookup::cname_chain`]).
    pub cname_chain: Vec<String>,
    /// A/AAAA records of the canonical name (the end of the chain), in
    /// message order; none when the chain loops.
    pub addresses: Vec<IpAddr>,
    /// PTR names of the canonical name (reverse lookups), in message order.
    pub ptr_names: Vec<String>,
}

/// A query name as a fully qualified [`Name`] (a trailing dot is optional).
pub fn parse_name(name: &str) -> Result<Name, DnsWireError> {
    let invalid = |reason: String| DnsWireError::InvalidName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() || name == "." {
        return Err(invalid("empty".to_string()));
    }
    let mut n = Name::from_ascii(name).map_err(|e| invalid(e.to_string()))?;
    n.set_fqdn(true);
    Ok(n)
}

/// A name as people write it: no trailing dot.
fn display_name(n: &Name) -> String {
    let s = n.to_ascii();
    match s.strip_suffix('.') {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => s,
    }
}

/// A recursive query (RD set) for `name`/`qtype`, class IN.
pub fn build_query(id: u16, name: &Name, qtype: RecordType) -> Result<Vec<u8>, DnsWireError> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name.clone(), qtype));
    m.to_vec().map_err(|e| DnsWireError::Encode(e.to_string()))
}

/// The mnemonic of a response code, as dig prints it.
fn rcode_text(rc: ResponseCode) -> String {
    rcode_name(u16::from(rc))
}

/// Reads `bytes` as the response to our query `id`/`name`/`qtype`: anything
/// else (another id, another question, a query) is [`NotOurAnswer`]. The
/// message is read by the analysis' reader, the chain followed by its rule.
pub fn read_answer(
    bytes: &[u8],
    id: u16,
    name: &Name,
    qtype: RecordType,
) -> Result<Answer, NotOurAnswer> {
    let reader =
        message::MessageReader::new(bytes).map_err(|e| NotOurAnswer::Undecodable(e.to_string()))?;
    let head = &reader.head;
    if !head.response {
        return Err(NotOurAnswer::NotAResponse);
    }
    if head.id != id {
        return Err(NotOurAnswer::WrongId {
            expected: id,
            got: head.id,
        });
    }
    // A truncated or error answer may omit the question; if present it must
    // be ours (RFC 5452 §9.1: match id and question).
    match (head.questions, &head.question) {
        (0, _) if head.truncated || head.rcode != 0 => {}
        (1, Some(q)) if q.name == *name && q.qtype == qtype => {}
        _ => return Err(NotOurAnswer::WrongQuestion),
    }
    let (rcode, truncated) = (ResponseCode::from(0, head.rcode), head.truncated);
    let answers = reader.answers();
    // A truncated answer is asked again over TCP: what it holds does not count.
    if !answers.complete && !truncated {
        return Err(NotOurAnswer::Undecodable(
            "the answer section is cut short".to_string(),
        ));
    }
    let found = chain::answer_for(name, &answers.records);
    Ok(Answer {
        rcode,
        truncated,
        cname_chain: std::iter::once(name)
            .chain(&found.targets)
            .map(display_name)
            .collect(),
        addresses: found.addresses,
        ptr_names: found
            .ptr_names
            .iter()
            .map(|n| n.to_utf8().trim_end_matches('.').to_string())
            .collect(),
    })
}

// ---------------------------------------------------------------------------
// Sockets
// ---------------------------------------------------------------------------

/// A query id from std's OS-seeded SipHash keys (`RandomState`): unguessable
/// without a dependency (the `getrandom` crate is not in our tree), and
/// each `RandomState::new()` advances its keys.
fn random_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish() as u16
}

fn io_text(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => format!("port unreachable ({e})"),
        _ => e.to_string(),
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn qtype_text(q: RecordType) -> String {
    q.to_string()
}

/// Everything one server exchange records.
struct Log<'a> {
    tries: &'a mut Vec<DnsTry>,
    ignored: &'a mut u32,
}

impl Log<'_> {
    fn push(
        &mut self,
        server: IpAddr,
        transport: Transport,
        qtype: RecordType,
        outcome: TryOutcome,
        elapsed: Duration,
    ) {
        self.tries.push(DnsTry {
            server,
            transport,
            qtype: qtype_text(qtype),
            outcome,
            elapsed,
        });
    }
}

fn answered(a: &Answer) -> TryOutcome {
    TryOutcome::Answered {
        rcode: rcode_text(a.rcode),
        truncated: a.truncated,
    }
}

/// What became of one query of a [`udp_round`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpEvent {
    Answer(Answer),
    Timeout,
    IoError(String),
}

/// Everything a [`udp_round`] saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UdpRound {
    /// One event per query (its index in the queries given), in the order
    /// they happened: answers as they came, then the queries left waiting.
    pub events: Vec<(usize, UdpEvent, Duration)>,
    /// Datagrams that answered none of the queries (wrong id or question):
    /// late answers of earlier tries, or spoofing.
    pub ignored: u32,
}

/// Sends every query at once over one UDP socket connected to `server`
/// (each with its own random id) and collects their answers until each has
/// one or `timeout` has passed. Answers are read by [`read_answer`]: only a
/// response with a query's id and question answers it. A socket error
/// (e.g. ICMP port unreachable) ends the round for the queries still waiting.
pub fn udp_round(
    server: SocketAddr,
    queries: &[(Name, RecordType)],
    timeout: Duration,
) -> UdpRound {
    let start = Instant::now();
    let mut round = UdpRound::default();
    let mut pending = vec![true; queries.len()];
    let fail_pending = |round: &mut UdpRound, pending: &mut [bool], error: String| {
        for (i, p) in pending.iter_mut().enumerate().filter(|(_, p)| **p) {
            *p = false;
            round
                .events
                .push((i, UdpEvent::IoError(error.clone()), start.elapsed()));
        }
    };

    let bind: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = match UdpSocket::bind(bind).and_then(|s| s.connect(server).map(|()| s)) {
        Ok(s) => s,
        Err(e) => {
            fail_pending(&mut round, &mut pending, io_text(&e));
            return round;
        }
    };
    let mut ids = Vec::with_capacity(queries.len());
    for (name, q) in queries {
        let mut id = random_id();
        while ids.contains(&id) {
            id = random_id();
        }
        ids.push(id);
        let sent = build_query(id, name, *q)
            .map_err(|e| e.to_string())
            .and_then(|msg| sock.send(&msg).map_err(|e| io_text(&e)));
        if let Err(error) = sent {
            fail_pending(&mut round, &mut pending, error);
            return round;
        }
    }

    let deadline = start + timeout;
    let mut buf = [0u8; 65535];
    while pending.iter().any(|p| *p) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if let Err(e) = sock.set_read_timeout(Some(left)) {
            fail_pending(&mut round, &mut pending, io_text(&e));
            return round;
        }
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if is_timeout(&e) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                fail_pending(&mut round, &mut pending, io_text(&e));
                return round;
            }
        };
        let matched = (0..queries.len()).filter(|&i| pending[i]).find_map(|i| {
            let (name, q) = &queries[i];
            read_answer(&buf[..n], ids[i], name, *q)
                .ok()
                .map(|a| (i, a))
        });
        match matched {
            Some((i, a)) => {
                pending[i] = false;
                round.events.push((i, UdpEvent::Answer(a), start.elapsed()));
            }
            None => round.ignored += 1,
        }
    }
    for (i, _) in pending.iter().enumerate().filter(|(_, p)| **p) {
        round.events.push((i, UdpEvent::Timeout, start.elapsed()));
    }
    round
}

/// Asks `name` for all `qtypes` at once over UDP ([`udp_round`]) and
/// retries truncated answers over TCP; every try goes to the log.
fn exchange(
    server: SocketAddr,
    name: &Name,
    qtypes: &[RecordType],
    timeout: Duration,
    log: &mut Log,
) -> Vec<Option<(Answer, Transport)>> {
    let queries: Vec<(Name, RecordType)> = qtypes.iter().map(|q| (name.clone(), *q)).collect();
    let round = udp_round(server, &queries, timeout);
    *log.ignored += round.ignored;
    let mut results: Vec<Option<(Answer, Transport)>> = vec![None; qtypes.len()];
    for (i, event, elapsed) in round.events {
        let outcome = match event {
            UdpEvent::Answer(a) => {
                let outcome = answered(&a);
                results[i] = Some((a, Transport::Udp));
                outcome
            }
            UdpEvent::Timeout => TryOutcome::Timeout,
            UdpEvent::IoError(error) => TryOutcome::IoError { error },
        };
        log.push(server.ip(), Transport::Udp, qtypes[i], outcome, elapsed);
    }

    // RFC 7766: a truncated UDP answer is retried over TCP, to the same server.
    for (i, q) in qtypes.iter().enumerate() {
        if results[i].as_ref().is_some_and(|(a, _)| a.truncated) {
            let tcp_start = Instant::now();
            let (outcome, answer) = match tcp_query(server, name, *q, timeout, log.ignored) {
                Ok(a) => (answered(&a), Some((a, Transport::Tcp))),
                Err(outcome) => (outcome, None),
            };
            log.push(
                server.ip(),
                Transport::Tcp,
                *q,
                outcome,
                tcp_start.elapsed(),
            );
            results[i] = answer;
        }
    }
    results
}

/// What one A query for `name` over TCP to `server` gave (`egress` checks
/// that the resolver serves TCP 53: answers too large for UDP come that way):
/// the rcode and the addresses, or the try's failure (`Timeout`, `IoError`).
pub fn tcp_lookup(
    server: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Result<(String, Vec<IpAddr>), TryOutcome> {
    let qname = parse_name(name).map_err(|e| TryOutcome::IoError {
        error: e.to_string(),
    })?;
    let mut ignored = 0;
    tcp_query(server, &qname, RecordType::A, timeout, &mut ignored)
        .map(|a| (rcode_text(a.rcode), a.addresses))
}

/// One query over TCP (2-byte length prefix, RFC 1035 §4.2.2).
fn tcp_query(
    server: SocketAddr,
    name: &Name,
    qtype: RecordType,
    timeout: Duration,
    ignored: &mut u32,
) -> Result<Answer, TryOutcome> {
    let deadline = Instant::now() + timeout;
    let io_err = |e: io::Error| {
        if is_timeout(&e) {
            TryOutcome::Timeout
        } else {
            TryOutcome::IoError { error: io_text(&e) }
        }
    };
    let id = random_id();
    let msg = build_query(id, name, qtype).map_err(|e| TryOutcome::IoError {
        error: e.to_string(),
    })?;
    let len = u16::try_from(msg.len()).map_err(|_| TryOutcome::IoError {
        error: "query longer than 65535 bytes".to_string(),
    })?;
    let mut stream = TcpStream::connect_timeout(&server, timeout).map_err(io_err)?;
    let left = |deadline: Instant| {
        let l = deadline.saturating_duration_since(Instant::now());
        if l.is_zero() {
            Err(TryOutcome::Timeout)
        } else {
            Ok(l)
        }
    };
    stream
        .set_write_timeout(Some(left(deadline)?))
        .map_err(io_err)?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(&msg);
    stream.write_all(&framed).map_err(io_err)?;
    loop {
        stream
            .set_read_timeout(Some(left(deadline)?))
            .map_err(io_err)?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).map_err(io_err)?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream
            .set_read_timeout(Some(left(deadline)?))
            .map_err(io_err)?;
        stream.read_exact(&mut body).map_err(io_err)?;
        match read_answer(&body, id, name, qtype) {
            Ok(a) => return Ok(a),
            Err(_) => *ignored += 1,
        }
    }
}

/// Resolves `name` (A, and AAAA when asked) with `servers`, glibc style:
/// `opts.tries` rounds, each server in turn. NOERROR and NXDOMAIN are final;
/// SERVFAIL and other codes move on to the next server. Whether (and why)
/// the lookup failed is judged by [`dns_lookup::failure`].
pub fn lookup(name: &str, servers: &[IpAddr], opts: &LookupOptions) -> DnsLookup {
    let start = Instant::now();
    let mut out = DnsLookup {
        name: name.trim_end_matches('.').to_string(),
        server: None,
        transport: None,
        rcode: None,
        cname_chain: Vec::new(),
        addresses: Vec::new(),
        elapsed: Duration::ZERO,
        tries: Vec::new(),
        ignored_messages: 0,
        failure: None,
    };
    let finish = |mut out: DnsLookup, answer: Option<AnswerSeen>, name_error: Option<&str>| {
        out.elapsed = start.elapsed();
        let observed = LookupObservation {
            name: &out.name,
            given: name,
            name_error,
            servers,
            rounds: opts.tries,
            port: opts.port,
            answer,
            tries: out
                .tries
                .iter()
                .map(|t| match &t.outcome {
                    TryOutcome::Answered { .. } => TrySeen::Answered,
                    TryOutcome::Timeout => TrySeen::Timeout,
                    TryOutcome::IoError { error } => TrySeen::SocketError {
                        server: t.server,
                        error,
                    },
                })
                .collect(),
            elapsed: out.elapsed,
        };
        let failure = dns_lookup::failure(&observed);
        out.failure = failure;
        out
    };
    if servers.is_empty() {
        return finish(out, None, None);
    }
    let qname = match parse_name(name) {
        Ok(n) => n,
        Err(e) => {
            let reason = match e {
                DnsWireError::InvalidName { reason, .. } => reason,
                other => other.to_string(),
            };
            return finish(out, None, Some(&reason));
        }
    };
    let qtypes: &[RecordType] = if opts.want_aaaa {
        &[RecordType::A, RecordType::AAAA]
    } else {
        &[RecordType::A]
    };

    // The last error-rcode answer, reported if nothing better comes.
    let mut error_answer: Option<(IpAddr, Transport, Answer)> = None;
    for _round in 0..opts.tries.max(1) {
        for &server in servers {
            let mut log = Log {
                tries: &mut out.tries,
                ignored: &mut out.ignored_messages,
            };
            let results = exchange(
                SocketAddr::new(server, opts.port),
                &qname,
                qtypes,
                opts.timeout_per_try,
                &mut log,
            );
            let answers: Vec<&(Answer, Transport)> = results.iter().flatten().collect();
            let is_final =
                |a: &Answer| matches!(a.rcode, ResponseCode::NoError | ResponseCode::NXDomain);
            // The first final answer in qtype order (A before AAAA) counts.
            if let Some((lead, transport)) = answers.iter().copied().find(|(a, _)| is_final(a)) {
                out.server = Some(server);
                out.transport = Some(*transport);
                out.rcode = Some(rcode_text(lead.rcode));
                out.cname_chain = lead.cname_chain.clone();
                for (a, _) in answers
                    .iter()
                    .copied()
                    .filter(|(a, _)| a.rcode == ResponseCode::NoError)
                {
                    for addr in &a.addresses {
                        if !out.addresses.contains(addr) {
                            out.addresses.push(*addr);
                        }
                    }
                }
                let seen = AnswerSeen {
                    server,
                    rcode: u16::from(lead.rcode),
                    has_address: !out.addresses.is_empty(),
                };
                return finish(out, Some(seen), None);
            }
            if let Some((a, t)) = answers.first() {
                error_answer = Some((server, *t, a.clone()));
            }
        }
    }

    let seen = error_answer.map(|(server, transport, a)| {
        out.server = Some(server);
        out.transport = Some(transport);
        out.rcode = Some(rcode_text(a.rcode));
        AnswerSeen {
            server,
            rcode: u16::from(a.rcode),
            has_address: false,
        }
    });
    finish(out, seen, None)
}

impl DnsLookup {
    /// What the analysis finds in this lookup: a `dns-failure` when it gave
    /// no address ([`dns_lookup::failure_finding`]).
    pub fn findings(&self) -> Vec<crate::vocab::Finding> {
        self.failure
            .iter()
            .map(|f| dns_lookup::failure_finding(f, self.elapsed))
            .collect()
    }

    /// `co2br.x → broker1a.x → 198.18.4.2 (NOERROR from 198.18.10.2 over udp, 3 ms)`.
    pub fn summary(&self) -> String {
        let ms = self.elapsed.as_secs_f64() * 1e3;
        if let Some(f) = &self.failure {
            return format!("{}: {f} ({ms:.0} ms)", self.name);
        }
        let mut chain = self.cname_chain.clone();
        if chain.is_empty() {
            chain.push(self.name.clone());
        }
        let addrs: Vec<String> = self.addresses.iter().map(IpAddr::to_string).collect();
        format!(
            "{} → {} ({} from {} over {}, {ms:.0} ms)",
            chain.join(" → "),
            addrs.join(", "),
            self.rcode.as_deref().unwrap_or("?"),
            self.server
                .map_or_else(|| "?".to_string(), |s| s.to_string()),
            self.transport
                .map_or_else(|| "?".to_string(), |t| t.to_string()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR};
    use hickory_proto::rr::{RData, Record};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::JoinHandle;

    fn name(n: &str) -> Name {
        parse_name(n).unwrap()
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
        m.metadata.recursion_desired = true;
        m.metadata.recursion_available = true;
        m.add_query(Query::query(name(qname), qtype));
        m.add_answers(answers);
        m
    }

    fn cname(owner: &str, target: &str) -> Record {
        Record::from_rdata(name(owner), 60, RData::CNAME(CNAME(name(target))))
    }

    fn a(owner: &str, addr: [u8; 4]) -> Record {
        Record::from_rdata(name(owner), 60, RData::A(A(Ipv4Addr::from(addr))))
    }

    fn aaaa(owner: &str, addr: &str) -> Record {
        Record::from_rdata(name(owner), 60, RData::AAAA(AAAA(addr.parse().unwrap())))
    }

    // --- pure ---------------------------------------------------------------

    #[test]
    fn query_is_recursive_with_our_id_and_question() {
        let bytes = build_query(0xbeef, &name("co2br.lab1.test"), RecordType::AAAA).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(m.metadata.id, 0xbeef);
        assert_eq!(m.metadata.message_type, MessageType::Query);
        assert!(m.metadata.recursion_desired);
        assert_eq!(m.queries.len(), 1);
        assert_eq!(m.queries[0].name().to_ascii(), "co2br.lab1.test.");
        assert_eq!(m.queries[0].query_type(), RecordType::AAAA);
    }

    #[test]
    fn answer_with_cname_chain() {
        let m = response(
            7,
            "co2br.lab1.test",
            RecordType::A,
            ResponseCode::NoError,
            vec![
                cname("co2br.lab1.test", "broker1a.lab1.test"),
                a("broker1a.lab1.test", [198, 18, 4, 2]),
                a("unrelated.lab1.test", [10, 9, 9, 9]),
            ],
        );
        // Matching is case-insensitive, as DNS names are.
        let got = read_answer(
            &m.to_vec().unwrap(),
            7,
            &name("CO2BR.lab1.test"),
            RecordType::A,
        )
        .unwrap();
        assert_eq!(got.rcode, ResponseCode::NoError);
        assert!(!got.truncated);
        // The chain starts with the name as asked.
        assert_eq!(
            got.cname_chain,
            vec!["CO2BR.lab1.test", "broker1a.lab1.test"]
        );
        assert_eq!(
            got.addresses,
            vec![IpAddr::V4(Ipv4Addr::new(198, 18, 4, 2))]
        );
    }

    #[test]
    fn cname_loop_terminates() {
        let m = response(
            1,
            "x.test",
            RecordType::A,
            ResponseCode::NoError,
            vec![cname("x.test", "y.test"), cname("y.test", "x.test")],
        );
        let got = read_answer(&m.to_vec().unwrap(), 1, &name("x.test"), RecordType::A).unwrap();
        assert_eq!(got.cname_chain, vec!["x.test", "y.test"]);
        assert!(got.addresses.is_empty());
    }

    #[test]
    fn mismatches_are_not_our_answer() {
        let m = response(
            7,
            "co2br.lab1.test",
            RecordType::A,
            ResponseCode::NoError,
            vec![],
        );
        let bytes = m.to_vec().unwrap();
        let n = name("co2br.lab1.test");
        assert_eq!(
            read_answer(&bytes, 8, &n, RecordType::A),
            Err(NotOurAnswer::WrongId {
                expected: 8,
                got: 7
            })
        );
        assert_eq!(
            read_answer(&bytes, 7, &n, RecordType::AAAA),
            Err(NotOurAnswer::WrongQuestion)
        );
        assert_eq!(
            read_answer(&bytes, 7, &name("other.lab1.test"), RecordType::A),
            Err(NotOurAnswer::WrongQuestion)
        );
        let q = build_query(7, &n, RecordType::A).unwrap();
        assert_eq!(
            read_answer(&q, 7, &n, RecordType::A),
            Err(NotOurAnswer::NotAResponse)
        );
        assert!(matches!(
            read_answer(&[1, 2, 3], 7, &n, RecordType::A),
            Err(NotOurAnswer::Undecodable(_))
        ));
        assert!(matches!(
            read_answer(&bytes[..bytes.len() - 3], 7, &n, RecordType::A),
            Err(NotOurAnswer::Undecodable(_))
        ));
        // Every prefix of a valid answer is handled without panicking.
        for cut in 0..bytes.len() {
            let _ = read_answer(&bytes[..cut], 7, &n, RecordType::A);
        }
    }

    #[test]
    fn error_answer_without_question_is_accepted() {
        let mut m = Message::new(9, MessageType::Response, OpCode::Query);
        m.metadata.response_code = ResponseCode::ServFail;
        let got = read_answer(&m.to_vec().unwrap(), 9, &name("a.test"), RecordType::A).unwrap();
        assert_eq!(got.rcode, ResponseCode::ServFail);
    }

    #[test]
    fn rcode_names() {
        assert_eq!(rcode_text(ResponseCode::NoError), "NOERROR");
        assert_eq!(rcode_text(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_text(ResponseCode::ServFail), "SERVFAIL");
        assert_eq!(rcode_text(ResponseCode::Refused), "REFUSED");
        assert_eq!(rcode_text(ResponseCode::from(0, 12)), "RCODE12");
    }

    #[test]
    fn out_of_order_chain_and_records_off_the_chain() {
        let m = response(
            3,
            "co2br.lab1.test",
            RecordType::A,
            ResponseCode::NoError,
            vec![
                a("edge.lab1.test", [198, 18, 4, 9]),
                // The alias itself has no address: a record beside its
                // CNAME is ignored.
                a("co2br.lab1.test", [6, 6, 6, 6]),
                cname("lb.lab1.test", "edge.lab1.test"),
                cname("co2br.lab1.test", "lb.lab1.test"),
                a("elsewhere.lab1.test", [6, 6, 6, 7]),
            ],
        );
        let got = read_answer(
            &m.to_vec().unwrap(),
            3,
            &name("co2br.lab1.test"),
            RecordType::A,
        )
        .unwrap();
        assert_eq!(
            got.cname_chain,
            vec!["co2br.lab1.test", "lb.lab1.test", "edge.lab1.test"]
        );
        assert_eq!(got.addresses, vec![IpAddr::from([198, 18, 4, 9])]);
    }

    #[test]
    fn a_loop_has_no_address_even_with_records_for_its_names() {
        let m = response(
            1,
            "x.test",
            RecordType::A,
            ResponseCode::NoError,
            vec![
                cname("y.test", "x.test"),
                a("y.test", [192, 0, 2, 2]),
                cname("x.test", "y.test"),
                a("x.test", [192, 0, 2, 1]),
            ],
        );
        let got = read_answer(&m.to_vec().unwrap(), 1, &name("x.test"), RecordType::A).unwrap();
        assert_eq!(got.cname_chain, vec!["x.test", "y.test"]);
        assert!(got.addresses.is_empty());
    }

    #[test]
    fn ptr_answers() {
        let q = name("2.1.18.198.in-addr.arpa");
        let m = response(
            4,
            "2.1.18.198.in-addr.arpa",
            RecordType::PTR,
            ResponseCode::NoError,
            vec![Record::from_rdata(
                q.clone(),
                60,
                RData::PTR(PTR(name("r1.lab1.test"))),
            )],
        );
        let got = read_answer(&m.to_vec().unwrap(), 4, &q, RecordType::PTR).unwrap();
        assert_eq!(got.ptr_names, vec!["r1.lab1.test"]);
        assert!(got.addresses.is_empty());
    }

    #[test]
    fn truncated_answers() {
        let n = name("big.lab1.test");
        let mut m = response(
            5,
            "big.lab1.test",
            RecordType::A,
            ResponseCode::NoError,
            vec![
                a("big.lab1.test", [198, 18, 4, 5]),
                a("big.lab1.test", [198, 18, 4, 6]),
            ],
        );
        m.metadata.truncation = true;
        let bytes = m.to_vec().unwrap();
        let got = read_answer(&bytes, 5, &n, RecordType::A).unwrap();
        assert!(got.truncated);
        // A TC answer cut inside its records is still read (and asked
        // again over TCP); an answer without TC that is cut is not one.
        let got = read_answer(&bytes[..bytes.len() - 2], 5, &n, RecordType::A).unwrap();
        assert!(got.truncated);
        assert_eq!(got.addresses, vec![IpAddr::from([198, 18, 4, 5])]);
        m.metadata.truncation = false;
        let bytes = m.to_vec().unwrap();
        assert!(matches!(
            read_answer(&bytes[..bytes.len() - 2], 5, &n, RecordType::A),
            Err(NotOurAnswer::Undecodable(_))
        ));
    }

    #[test]
    fn two_questions_are_not_our_answer() {
        let mut m = response(
            6,
            "co2br.lab1.test",
            RecordType::A,
            ResponseCode::NoError,
            vec![a("co2br.lab1.test", [198, 18, 4, 2])],
        );
        m.add_query(Query::query(name("evil.test"), RecordType::A));
        let got = read_answer(
            &m.to_vec().unwrap(),
            6,
            &name("co2br.lab1.test"),
            RecordType::A,
        );
        assert_eq!(got, Err(NotOurAnswer::WrongQuestion));
    }

    #[test]
    fn findings_of_a_lookup() {
        let l = lookup("co2br.lab1.test", &[], &LookupOptions::default());
        let f = l.findings();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, crate::vocab::FindingKind::DnsFailure);
        assert!(
            f[0].summary
                .starts_with("DNS: no nameserver to ask (after ")
        );
    }

    #[test]
    fn invalid_names() {
        assert!(parse_name("").is_err());
        assert!(parse_name(&"a".repeat(64)).is_err());
        assert!(parse_name("co2br.lab1.test.").is_ok());
        let l = lookup(
            "",
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
            &LookupOptions::default(),
        );
        assert!(matches!(l.failure, Some(DnsFailure::InvalidName { .. })));
        assert!(l.tries.is_empty());
    }

    #[test]
    fn failure_messages_read_like_a_ticket() {
        let s: IpAddr = "198.18.10.2".parse().unwrap();
        let n = "co2br.lab1.test".to_string();
        assert_eq!(
            DnsFailure::NxDomain {
                server: s,
                name: n.clone()
            }
            .to_string(),
            "NXDOMAIN from 198.18.10.2 for co2br.lab1.test"
        );
        assert_eq!(
            DnsFailure::Timeout {
                servers: vec![s, "198.18.10.3".parse().unwrap()],
                tries: 2,
                name: n.clone()
            }
            .to_string(),
            "no answer for co2br.lab1.test from 198.18.10.2, 198.18.10.3 (2 tries each)"
        );
        assert_eq!(
            DnsFailure::NoAddress { server: s, name: n }.to_string(),
            "198.18.10.2 answered NOERROR for co2br.lab1.test but with no A/AAAA record"
        );
    }

    #[test]
    fn no_servers() {
        let l = lookup("co2br.lab1.test", &[], &LookupOptions::default());
        assert_eq!(l.failure, Some(DnsFailure::NoServers));
    }

    // --- a loopback responder ------------------------------------------------

    /// What the responder sends for one query (several messages: spoofed
    /// ones first).
    fn respond(q: &Message, over_tcp: bool, local: IpAddr) -> Vec<Message> {
        let Some(query) = q.queries.first() else {
            return vec![];
        };
        let id = q.metadata.id;
        let qtype = query.query_type();
        let qname = display_name(query.name());
        let ok = |answers: Vec<Record>| response(id, &qname, qtype, ResponseCode::NoError, answers);
        let only = |want: RecordType, rr: Record| if qtype == want { vec![rr] } else { vec![] };
        match qname.as_str() {
            "co2br.lab1.test" => {
                let mut rrs = vec![cname("co2br.lab1.test", "broker1a.lab1.test")];
                rrs.extend(only(
                    RecordType::A,
                    a("broker1a.lab1.test", [198, 18, 4, 2]),
                ));
                vec![ok(rrs)]
            }
            "dual.lab1.test" => {
                let rr = if qtype == RecordType::A {
                    a("dual.lab1.test", [198, 18, 4, 3])
                } else {
                    aaaa("dual.lab1.test", "2001:db8::3")
                };
                vec![ok(vec![rr])]
            }
            "nx.lab1.test" => vec![response(id, &qname, qtype, ResponseCode::NXDomain, vec![])],
            "fail.lab1.test" => vec![response(id, &qname, qtype, ResponseCode::ServFail, vec![])],
            "refused.lab1.test" => vec![response(id, &qname, qtype, ResponseCode::Refused, vec![])],
            "noaddr.lab1.test" => vec![ok(vec![])],
            "silent.lab1.test" => vec![],
            // SERVFAIL from the first lab server, an answer from the second.
            "flaky.lab1.test" if local == IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)) => {
                vec![response(id, &qname, qtype, ResponseCode::ServFail, vec![])]
            }
            "flaky.lab1.test" => vec![ok(only(
                RecordType::A,
                a("flaky.lab1.test", [198, 18, 4, 4]),
            ))],
            "big.lab1.test" if !over_tcp => {
                let mut m = ok(vec![]);
                m.metadata.truncation = true;
                vec![m]
            }
            "big.lab1.test" => vec![ok(only(RecordType::A, a("big.lab1.test", [198, 18, 4, 5])))],
            "spoofed.lab1.test" => {
                let wrong_id = response(
                    id.wrapping_add(1),
                    &qname,
                    qtype,
                    ResponseCode::NoError,
                    vec![a(&qname, [6, 6, 6, 6])],
                );
                let wrong_question = response(
                    id,
                    "evil.test",
                    qtype,
                    ResponseCode::NoError,
                    vec![a("evil.test", [6, 6, 6, 6])],
                );
                vec![
                    wrong_id,
                    wrong_question,
                    ok(only(RecordType::A, a(&qname, [198, 18, 4, 6]))),
                ]
            }
            _ => vec![response(id, &qname, qtype, ResponseCode::Refused, vec![])],
        }
    }

    struct Responder {
        stop: Arc<AtomicBool>,
        threads: Vec<JoinHandle<()>>,
    }

    impl Drop for Responder {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
        }
    }

    /// UDP and TCP responders on `ip:port` (port 0: any free one, returned).
    fn start_responder(ip: Ipv4Addr, port: u16) -> Option<(Responder, u16)> {
        let udp = UdpSocket::bind((ip, port)).ok()?;
        let port = udp.local_addr().ok()?.port();
        let tcp = TcpListener::bind((ip, port)).ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let local = IpAddr::V4(ip);
        udp.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let s = stop.clone();
        let udp_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s.load(Ordering::SeqCst) {
                let Ok((n, from)) = udp.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                for m in respond(&q, false, local) {
                    let _ = udp.send_to(&m.to_vec().unwrap(), from);
                }
            }
        });
        tcp.set_nonblocking(true).unwrap();
        let s = stop.clone();
        let tcp_thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Ok((mut conn, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut len = [0u8; 2];
                if conn.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if conn.read_exact(&mut body).is_err() {
                    continue;
                }
                let Ok(q) = Message::from_vec(&body) else {
                    continue;
                };
                for m in respond(&q, true, local) {
                    let bytes = m.to_vec().unwrap();
                    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&bytes);
                    let _ = conn.write_all(&framed);
                }
            }
        });
        Some((
            Responder {
                stop,
                threads: vec![udp_thread, tcp_thread],
            },
            port,
        ))
    }

    /// Responders on 127.0.0.2 and 127.0.0.3, same port.
    fn two_responders() -> (Responder, Responder, u16) {
        for _ in 0..20 {
            let Some((r1, port)) = start_responder(Ipv4Addr::new(127, 0, 0, 2), 0) else {
                continue;
            };
            if let Some((r2, _)) = start_responder(Ipv4Addr::new(127, 0, 0, 3), port) {
                return (r1, r2, port);
            }
        }
        panic!("no free port pair on 127.0.0.2/127.0.0.3");
    }

    const LAB1: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    const LAB2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

    fn opts(port: u16) -> LookupOptions {
        LookupOptions {
            timeout_per_try: Duration::from_millis(300),
            tries: 2,
            port,
            want_aaaa: true,
        }
    }

    #[test]
    fn end_to_end_against_a_loopback_responder() {
        let (_r1, _r2, port) = two_responders();
        let o = opts(port);

        // CNAME + A (AAAA: NOERROR, only the CNAME).
        let l = lookup("co2br.lab1.test", &[LAB1], &o);
        assert_eq!(l.failure, None, "{l:?}");
        assert_eq!(l.server, Some(LAB1));
        assert_eq!(l.transport, Some(Transport::Udp));
        assert_eq!(l.rcode.as_deref(), Some("NOERROR"));
        assert_eq!(l.cname_chain, vec!["co2br.lab1.test", "broker1a.lab1.test"]);
        assert_eq!(l.addresses, vec!["198.18.4.2".parse::<IpAddr>().unwrap()]);
        assert_eq!(l.tries.len(), 2);
        assert_eq!(l.tries[0].qtype, "A");
        assert_eq!(l.tries[1].qtype, "AAAA");

        // A and AAAA together.
        let l = lookup("dual.lab1.test.", &[LAB1], &o);
        assert_eq!(l.name, "dual.lab1.test");
        assert_eq!(
            l.addresses,
            vec![
                "198.18.4.3".parse::<IpAddr>().unwrap(),
                "2001:db8::3".parse().unwrap()
            ]
        );
        let only_a = LookupOptions {
            want_aaaa: false,
            ..o.clone()
        };
        let l = lookup("dual.lab1.test", &[LAB1], &only_a);
        assert_eq!(l.addresses, vec!["198.18.4.3".parse::<IpAddr>().unwrap()]);
        assert_eq!(l.tries.len(), 1);

        // NXDOMAIN is final: the second server is not asked.
        let l = lookup("nx.lab1.test", &[LAB1, LAB2], &o);
        assert_eq!(
            l.failure,
            Some(DnsFailure::NxDomain {
                server: LAB1,
                name: "nx.lab1.test".into()
            })
        );
        assert_eq!(l.rcode.as_deref(), Some("NXDOMAIN"));
        assert!(l.tries.iter().all(|t| t.server == LAB1));

        // SERVFAIL everywhere: every server and round is tried.
        let l = lookup("fail.lab1.test", &[LAB1, LAB2], &o);
        assert_eq!(
            l.failure,
            Some(DnsFailure::ServFail {
                server: LAB2,
                name: "fail.lab1.test".into()
            })
        );
        assert_eq!(l.tries.len(), 2 * 2 * 2);

        // SERVFAIL from the first server, an answer from the second.
        let l = lookup("flaky.lab1.test", &[LAB1, LAB2], &o);
        assert_eq!(l.failure, None, "{l:?}");
        assert_eq!(l.server, Some(LAB2));
        assert_eq!(l.addresses, vec!["198.18.4.4".parse::<IpAddr>().unwrap()]);

        let l = lookup("refused.lab1.test", &[LAB1], &o);
        assert_eq!(
            l.failure,
            Some(DnsFailure::OtherRcode {
                server: LAB1,
                name: "refused.lab1.test".into(),
                rcode: "REFUSED".into()
            })
        );

        let l = lookup("noaddr.lab1.test", &[LAB1], &o);
        assert_eq!(
            l.failure,
            Some(DnsFailure::NoAddress {
                server: LAB1,
                name: "noaddr.lab1.test".into()
            })
        );
        assert_eq!(l.cname_chain, vec!["noaddr.lab1.test"]);

        // Truncated over UDP: asked again over TCP.
        let l = lookup(
            "big.lab1.test",
            &[LAB1],
            &LookupOptions {
                want_aaaa: false,
                ..o.clone()
            },
        );
        assert_eq!(l.failure, None, "{l:?}");
        assert_eq!(l.transport, Some(Transport::Tcp));
        assert_eq!(l.addresses, vec!["198.18.4.5".parse::<IpAddr>().unwrap()]);
        assert_eq!(l.tries.len(), 2);
        assert_eq!(
            l.tries[0].outcome,
            TryOutcome::Answered {
                rcode: "NOERROR".into(),
                truncated: true
            }
        );
        assert_eq!(l.tries[1].transport, Transport::Tcp);

        // Forged answers (wrong id, wrong question) are ignored and counted.
        let l = lookup(
            "spoofed.lab1.test",
            &[LAB1],
            &LookupOptions {
                want_aaaa: false,
                ..o.clone()
            },
        );
        assert_eq!(l.addresses, vec!["198.18.4.6".parse::<IpAddr>().unwrap()]);
        assert_eq!(l.ignored_messages, 2);
    }

    #[test]
    fn silence_is_a_timeout_after_every_try() {
        let (_r1, _r2, port) = two_responders();
        let o = LookupOptions {
            timeout_per_try: Duration::from_millis(150),
            ..opts(port)
        };
        let l = lookup("silent.lab1.test", &[LAB1, LAB2], &o);
        assert_eq!(
            l.failure,
            Some(DnsFailure::Timeout {
                servers: vec![LAB1, LAB2],
                tries: 2,
                name: "silent.lab1.test".into()
            })
        );
        assert_eq!(l.tries.len(), 2 * 2 * 2);
        assert!(l.tries.iter().all(|t| t.outcome == TryOutcome::Timeout));
        assert!(l.elapsed >= Duration::from_millis(4 * 150));
        assert_eq!(l.server, None);
        assert!(l.cname_chain.is_empty());
    }

    #[test]
    fn closed_port_is_unreachable() {
        // A port with nothing bound: the kernel answers ICMP port
        // unreachable, the connected socket reports ECONNREFUSED.
        let port = {
            let s = UdpSocket::bind("127.0.0.4:0").unwrap();
            s.local_addr().unwrap().port()
        };
        let server = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));
        let o = LookupOptions {
            timeout_per_try: Duration::from_secs(3),
            ..opts(port)
        };
        let l = lookup("co2br.lab1.test", &[server], &o);
        let Some(DnsFailure::Unreachable { reason }) = &l.failure else {
            panic!("expected unreachable: {l:?}");
        };
        assert!(
            reason.starts_with(&format!("127.0.0.4 port {port}: port unreachable")),
            "{reason}"
        );
        assert!(
            l.elapsed < Duration::from_secs(2),
            "ECONNREFUSED should not wait for the timeout"
        );
    }

    #[test]
    fn unreachable_first_server_then_answer() {
        let (_r1, _r2, port) = two_responders();
        let dead = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5));
        let l = lookup("co2br.lab1.test", &[dead, LAB1], &opts(port));
        assert_eq!(l.failure, None, "{l:?}");
        assert_eq!(l.server, Some(LAB1));
        assert!(matches!(l.tries[0].outcome, TryOutcome::IoError { .. }));
    }

    #[test]
    fn json_shape() {
        let (_r1, _r2, port) = two_responders();
        let l = lookup("nx.lab1.test", &[LAB1], &opts(port));
        let j = serde_json::to_value(&l).unwrap();
        assert_eq!(j["failure"]["kind"], "nx-domain");
        assert_eq!(j["failure"]["server"], "127.0.0.2");
        assert_eq!(j["transport"], "udp");
        assert_eq!(j["tries"][0]["outcome"]["kind"], "answered");
        assert!(j["elapsed_ms"].is_f64());
        assert!(j["tries"][0]["elapsed_ms"].is_f64());
    }
}
