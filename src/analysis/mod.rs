//! Analysis: pure functions from packets and a path to findings and a verdict.
//!
//! [`Analyzer`] takes packets one at a time (from a capture or from live
//! probes) in bounded memory; [`Analyzer::finish`] applies the rules with an
//! optional [`Path`] and returns an [`Analysis`] with one [`Verdict`].

pub mod check;
mod conclude;
pub mod dns;
pub mod egress;
pub mod evidence;
pub mod flow_key;
pub mod flows;
pub mod journal_beside;
pub mod journal_pairing;
pub mod observe;
pub mod picker;
pub mod pmtu_probes;
pub mod retrans;
pub mod rst;
pub mod rules;
pub mod tls;
pub mod traces;
pub mod ttl;

pub use crate::vocab::{
    Confidence, Finding, FindingKind, HopEstimate, Severity, Verdict, VerdictClass,
};
pub use flow_key::FlowKey;
pub use flows::{FlowLimits, FlowRecord, FlowState};
pub use rst::{ForgingSign, RstEvidence, RstOrigin};
pub use rules::journal::{JournalJudgement, judge_journal};
pub use traces::{TraceJudgement, judge_trace};

use crate::packet::{ArpSighting, IcmpKind, Packet, Transport};
use crate::path::Path;
use flows::FlowTable;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use ttl::TtlCounts;

/// What the analysis looks at.
#[derive(Clone, Debug)]
pub struct AnalysisOptions {
    /// Server ports the connector dials (443 by default): flows to these are judged.
    pub server_ports: Vec<u16>,
    pub limits: FlowLimits,
    /// Organisation the broker certificate's issuer must name (case-insensitive).
    pub expect_issuer: String,
    /// CAs the broker's chain must verify up to (`--expect-ca`); the
    /// issuer is then not judged by name.
    pub expect_ca: Option<std::sync::Arc<rules::issuer::PinnedCas>>,
    /// Broker names given by the user, besides the built-in patterns.
    pub broker_names: Vec<String>,
}

impl Default for AnalysisOptions {
    fn default() -> AnalysisOptions {
        AnalysisOptions {
            server_ports: vec![443],
            limits: FlowLimits::default(),
            expect_issuer: crate::vocab::DEFAULT_ISSUER.into(),
            expect_ca: None,
            broker_names: Vec::new(),
        }
    }
}

/// What the capture reader and decoder counted of the frames: the
/// analysis sees IP packets only, and says so when the rest is all there is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// Frames in the capture.
    pub frames: u64,
    /// Frames that carry no IP, by kind.
    pub non_ip: crate::packet::NonIpCounts,
}

/// Distinct inbound sources remembered to tell a TTL normaliser (one TTL
/// from every source) from ordinary traffic.
const TTL_REWRITE_SOURCES: usize = 3;

/// Streaming analysis state.
#[derive(Clone)]
pub struct Analyzer {
    table: FlowTable,
    packets: u64,
    first_ts_ns: Option<i64>,
    last_ts_ns: i64,
    /// TTLs of packets that came toward the connector from elsewhere.
    inbound_ttls: TtlCounts,
    inbound_sources: Vec<IpAddr>,
    dns: dns::DnsTracker,
    expect_issuer: String,
    expect_ca: Option<std::sync::Arc<rules::issuer::PinnedCas>>,
    /// ARP senders: which IPv4 address a MAC has.
    arp: HashMap<[u8; 6], (Ipv4Addr, u64)>,
    /// pathproof's traceroute probes and their answers.
    traces: traces::TraceTracker,
    pmtu_probes: pmtu_probes::PmtuProbeTracker,
    frame_counts: FrameCounts,
}

/// ARP entries remembered (a capture has few gateways).
const MAX_LINK_ENTRIES: usize = 4_096;

/// The first router toward a remote address, from the capture's link layer:
/// the MAC that delivered its packets, and the ARP message that names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gateway {
    pub address: IpAddr,
    pub arp_frame: u64,
}

impl Analyzer {
    pub fn new(options: &AnalysisOptions) -> Analyzer {
        let mut table = FlowTable::new(options.server_ports.clone(), options.limits);
        table.set_broker_names(&options.broker_names);
        Analyzer {
            table,
            packets: 0,
            first_ts_ns: None,
            last_ts_ns: 0,
            inbound_ttls: TtlCounts::default(),
            inbound_sources: Vec::new(),
            dns: dns::DnsTracker::new(&options.broker_names),
            expect_issuer: options.expect_issuer.clone(),
            expect_ca: options.expect_ca.clone(),
            arp: HashMap::new(),
            traces: traces::TraceTracker::new(),
            pmtu_probes: pmtu_probes::PmtuProbeTracker::new(),
            frame_counts: FrameCounts::default(),
        }
    }

    /// The capture's frame counts (from the decoding stage), before [`Self::finish`].
    pub fn note_frames(&mut self, counts: FrameCounts) {
        self.frame_counts = counts;
    }

    /// Learns an ARP sender (frames that are not IP still tell who hop 1 is).
    pub fn note_arp(&mut self, s: &ArpSighting) {
        if self.arp.len() < MAX_LINK_ENTRIES || self.arp.contains_key(&s.mac) {
            self.arp.insert(s.mac, (s.ip, s.frame));
        }
    }

    /// A packet and its captured transport payload (DNS and TLS are read
    /// from payloads; everything else from the headers).
    pub fn push_with_payload(&mut self, p: &Packet, payload: &[u8]) {
        self.push_keyed(p, payload, FlowKey::of_packet(p));
    }

    /// As [`Self::push_with_payload`], with the packet's flow key worked out
    /// beforehand, on another thread: it must be [`FlowKey::of_packet`] of `p`.
    pub fn push_keyed(&mut self, p: &Packet, payload: &[u8], key: Option<FlowKey>) {
        match &p.transport {
            Transport::Udp {
                src_port, dst_port, ..
            } if *src_port == 53 || *dst_port == 53 => self.dns.on_udp(p, payload),
            Transport::Tcp(t) if t.src_port == 53 || t.dst_port == 53 => {
                self.dns.on_tcp(p, payload)
            }
            _ => {}
        }
        self.push_headers(p, payload, key);
    }

    /// A packet without payload (headers only).
    pub fn push(&mut self, p: &Packet) {
        self.push_headers(p, &[], FlowKey::of_packet(p));
    }

    fn push_headers(&mut self, p: &Packet, payload: &[u8], key: Option<FlowKey>) {
        self.packets += 1;
        self.first_ts_ns.get_or_insert(p.ts_ns);
        self.last_ts_ns = self.last_ts_ns.max(p.ts_ns);
        self.table.push_keyed(p, payload, key);
        self.traces.push(p, payload);
        self.pmtu_probes.push(p);
        let inbound = match &p.transport {
            Transport::Tcp(t) => {
                self.table.is_server_port(t.src_port) && !self.table.is_server_port(t.dst_port)
            }
            Transport::Icmp(i) => !matches!(i.kind, IcmpKind::EchoRequest { .. }),
            _ => false,
        };
        if inbound {
            self.inbound_ttls.add(p.ttl);
            // A short list, not a hash set: with fewer sources than the
            // bound (one broker) this runs for every inbound packet.
            if self.inbound_sources.len() < TTL_REWRITE_SOURCES
                && !self.inbound_sources.contains(&p.src)
            {
                self.inbound_sources.push(p.src);
            }
        }
    }

    /// Packets analysed so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Applies the rules and concludes.
    pub fn finish(mut self, path: Option<&Path>) -> Analysis {
        self.table.finish();
        let traces = std::mem::take(&mut self.traces).finish();
        let probe_answered = drop_probe_flows(&mut self.table, &traces.tcp_probe_frames());
        let servers: Vec<IpAddr> = self
            .table
            .finished
            .iter()
            .filter(|f| self.table.is_judged(f))
            .map(|f| f.server.ip())
            .collect();
        let capture_path = traces.path(&servers, path);
        let path = capture_path.as_ref().or(path);
        let trace_conclusion = traces.conclusion();
        let ttl_rewritten = self.inbound_sources.len() >= TTL_REWRITE_SOURCES
            && self.inbound_ttls.values().count() == 1
            && self.inbound_ttls.total() >= 3;
        let gateways: HashMap<IpAddr, Gateway> = self
            .table
            .delivering_mac
            .iter()
            .filter_map(|(remote, mac)| {
                let (ip, arp_frame) = *self.arp.get(mac)?;
                let address = IpAddr::V4(ip);
                (address != *remote).then_some((*remote, Gateway { address, arp_frame }))
            })
            .collect();
        let dns = self.dns.finish(self.last_ts_ns);
        let conclusion = conclude::conclude(&conclude::Inputs {
            dns: &dns,
            issuer: rules::issuer::IssuerExpectation {
                org: &self.expect_issuer,
                pinned: self.expect_ca.as_deref(),
            },
            table: &self.table,
            gateways: &gateways,
            path,
            ttl_rewritten,
            capture_end_ns: self.last_ts_ns,
            traces: &trace_conclusion,
            pmtu_probes: &self.pmtu_probes,
            probe_answered: &probe_answered,
            frame_counts: self.frame_counts,
            ip_packets: self.packets,
        });
        Analysis {
            verdict: conclusion.verdict,
            candidates: conclusion.candidates,
            findings: conclusion.findings,
            rsts: conclusion.rsts,
            flows_total: self.table.flows_total,
            flows_not_kept: self.table.flows_not_kept,
            rsts_total: self.table.server_rsts_total,
            flows: std::mem::take(&mut self.table.finished),
            other_ports: std::mem::take(&mut self.table.other_ports)
                .into_values()
                .collect(),
            packets: self.packets,
            first_ts_ns: self.first_ts_ns,
            last_ts_ns: self.first_ts_ns.map(|_| self.last_ts_ns),
            ttl_rewritten,
            dns,
            path: capture_path,
            traces,
        }
    }
}

/// Removes the flows of the capture's own traceroute SYN probes: they are
/// probes, not connection attempts. Those a reset "from the server" answered
/// stay (the reset rules place those resets, as the live trace does),
/// except resets from a half-open target (below). Returns the servers
/// (address and port) that answered a probe with a SYN-ACK.
fn drop_probe_flows(table: &mut FlowTable, probe_frames: &HashSet<u64>) -> HashSet<SocketAddr> {
    if probe_frames.is_empty() {
        return HashSet::new();
    }
    let is_probe = |f: &FlowRecord| f.syn.is_some_and(|s| probe_frames.contains(&s.frame));
    let probe_answered = table
        .finished
        .iter()
        .filter(|f| is_probe(f) && f.syn_ack.is_some())
        .map(|f| f.server)
        .collect();
    // A server that answered a probe with a SYN-ACK and a later probe of the
    // same port pair with a reset (its own TTL) refused nothing: the later
    // SYN met the half-open connection the first one left, when the
    // connector's reset to that SYN-ACK was lost (RFC 9293 §3.10.7.4). The
    // trace keeps one port pair on purpose (one ECMP path), so on a lossy
    // path this happens.
    let open: HashMap<(SocketAddr, SocketAddr), u8> = table
        .finished
        .iter()
        .filter(|f| is_probe(f))
        .filter_map(|f| Some(((f.client, f.server), f.syn_ack?.ttl)))
        .collect();
    let half_open_collision = |f: &FlowRecord| {
        open.get(&(f.client, f.server)).is_some_and(|&ttl| {
            f.rsts
                .iter()
                .filter(|r| r.from_server)
                .all(|r| r.packet.ttl == ttl)
        })
    };
    let keep = |f: &FlowRecord| {
        !is_probe(f) || (f.rsts.iter().any(|r| r.from_server) && !half_open_collision(f))
    };
    // Those resets leave `rsts_total` too (it counts judged ports only).
    let collision_rsts: u64 = table
        .finished
        .iter()
        .filter(|f| !keep(f) && table.is_judged(f))
        .map(|f| f.rsts.iter().filter(|r| r.from_server).count() as u64)
        .sum();
    let before = table.finished.len();
    table.finished.retain(|f| keep(f));
    let removed = (before - table.finished.len()) as u64;
    table.flows_total = table.flows_total.saturating_sub(removed);
    table.server_rsts_total = table.server_rsts_total.saturating_sub(collision_rsts);
    probe_answered
}

/// The result of an analysis.
#[derive(Debug)]
pub struct Analysis {
    pub verdict: Verdict,
    /// Every candidate verdict the rules proposed (the picker chose
    /// `verdict` among them); a command that adds evidence of its own
    /// (`check`) picks again over all of them.
    pub candidates: Vec<picker::Candidate>,
    pub findings: Vec<Finding>,
    /// Every reset sent toward the connector on the judged ports in the
    /// kept flows, classified.
    pub rsts: Vec<RstEvidence>,
    /// Such resets in all flows, kept or not (`rsts` is complete when the
    /// two agree).
    pub rsts_total: u64,
    /// Kept flow records (all flows up to the table's bound).
    pub flows: Vec<FlowRecord>,
    pub flows_total: u64,
    pub flows_not_kept: u64,
    /// TLS (ClientHellos) and resets on server ports that are not judged,
    /// by port: what to try with `--port` when the judged ports show nothing.
    pub other_ports: Vec<flows::PortActivity>,
    /// IP packets analysed.
    pub packets: u64,
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
    pub ttl_rewritten: bool,
    /// DNS lookups of the broker names seen in the capture.
    pub dns: dns::DnsSummary,
    /// The path rebuilt from the capture's traceroutes, when it was used
    /// (no `--mtr`; the user's `--hops` kept as the target's hop).
    pub path: Option<Path>,
    /// pathproof's traceroutes found in the capture, rebuilt and interpreted.
    pub traces: traces::CaptureTraces,
}
