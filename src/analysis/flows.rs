//! TCP flow tracking: handshake, resets, FINs and the ICMP errors that quote a
//! flow, packet by packet, in bounded memory.
//!
//! The side that sends the SYN is the client (the connector). Flows that end
//! (or go idle when the table is full) are moved out of the active table into
//! a bounded list of finished records, so memory depends on the number of
//! concurrent flows, not on the size of the capture.

use super::flow_key::{BuildCarriedHash, FlowKey};
use super::retrans::{SendHistory, seq_before};
use super::tls::{TlsObservation, TlsTracker};
use super::ttl::TtlCounts;
use crate::packet::http_connect;
use crate::packet::{IcmpKind, Packet, TcpFlags, TcpInfo, Transport};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

/// A reference to one packet of a flow, with the fields the rules compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PacketRef {
    pub frame: u64,
    #[serde(skip)]
    pub ts_ns: i64,
    pub ttl: u8,
    pub ip_id: Option<u16>,
}

impl PacketRef {
    fn of(p: &Packet) -> PacketRef {
        PacketRef {
            frame: p.frame,
            ts_ns: p.ts_ns,
            ttl: p.ttl,
            ip_id: p.ip_id,
        }
    }
}

/// What kind of segment a reset answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SegmentKind {
    Syn,
    SynAck,
    Data,
    Ack,
    Fin,
}

impl SegmentKind {
    fn of(t: &TcpInfo) -> SegmentKind {
        if t.flags.syn() {
            if t.flags.ack() {
                SegmentKind::SynAck
            } else {
                SegmentKind::Syn
            }
        } else if t.flags.fin() {
            SegmentKind::Fin
        } else if t.payload_len > 0 {
            SegmentKind::Data
        } else {
            SegmentKind::Ack
        }
    }
}

/// The last segment one side sent: what a reset from the other side answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub frame: u64,
    pub ts_ns: i64,
    pub kind: SegmentKind,
    /// What an injector may copy from the segment it answers.
    pub ip_id: Option<u16>,
    pub window: u16,
    /// The segment was a TTL-limited probe (see [`ProbeSegment`]): its TTL.
    pub probe_ttl: Option<u8>,
}

/// One TCP reset seen in a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RstEvent {
    pub packet: PacketRef,
    /// Sent from the server's address (toward the connector).
    pub from_server: bool,
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub options_len: u8,
    pub payload_len: u32,
    /// The last segment of the other side before the reset.
    pub answers: Option<Trigger>,
    /// The TCP reserved bits (RFC 9293: must be zero; some injectors set them).
    pub reserved: u8,
    /// How far the connection had got when the reset came.
    pub stage: TcpStage,
    /// What the reset's acknowledgment number acknowledges of the other
    /// side's sequence space.
    pub acks: RstAcks,
}

/// How far a connection had got, from its packets (not assumed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TcpStage {
    /// The capture did not see the SYN (it started mid-connection).
    MidStream,
    /// The SYN was sent and nothing answered it yet.
    SynSent,
    /// SYN-ACK seen; the connector sent no data yet.
    Handshake,
    /// The connector sent data (the ClientHello).
    DataSent,
    /// A FIN was sent, the close is not complete.
    Closing,
    /// Both sides sent a FIN and each was acknowledged: a clean close.
    Closed,
}

/// What a reset's acknowledgment number acknowledges of the sequence space
/// of the side it is sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RstAcks {
    /// No ACK flag: it acknowledges nothing.
    NoAck,
    /// The SYN only (`ack` = ISN + 1): the sender saw none of the data.
    Syn,
    /// Part of the data sent.
    SomeData,
    /// Everything sent, up to the last data byte.
    AllData,
    /// The FIN: it answers the close.
    Fin,
    /// A number outside what was sent (or the SYN was not seen).
    Outside,
}

/// A data segment the connector sent with a TTL lower than its usual one:
/// a TTL-limited probe (censorship measurements resend the ClientHello
/// with TTL 1, 2, 3...). What answers it places the device that answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSegment {
    pub frame: u64,
    pub ttl: u8,
    pub seq: u32,
    pub len: u32,
    pub ip_id: Option<u16>,
}

/// Sequence numbers of both sides, for what a reset or FIN answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqState {
    pub server_isn: Option<u32>,
    /// Next sequence number after everything each side sent (SYN and FIN count one).
    pub client_nxt: Option<u32>,
    pub server_nxt: Option<u32>,
    pub client_fin_seq: Option<u32>,
    pub server_fin_seq: Option<u32>,
    /// Highest acknowledgment number the connector sent.
    pub client_max_ack: Option<u32>,
}

/// An ICMP error that quotes a packet of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpEvent {
    pub packet: PacketRef,
    pub from: IpAddr,
    pub icmp_type: u8,
    pub code: u8,
    pub kind: IcmpKind,
    pub v6: bool,
    /// The quoted packet's TCP sequence number and IP ID (which probe it quotes).
    pub quoted_seq: Option<u32>,
    pub quoted_ip_id: Option<u16>,
}

/// Everything pathproof keeps about one TCP connection.
#[derive(Clone, Debug)]
pub struct FlowRecord {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub first_frame: u64,
    pub first_ts_ns: i64,
    pub last_ts_ns: i64,
    /// The first SYN of the connection.
    pub syn: Option<PacketRef>,
    pub syn_mss: Option<u16>,
    syn_seq: u32,
    /// SYNs sent, retransmissions included.
    pub syn_count: u32,
    /// Frame numbers of the first SYNs (up to [`MAX_SYN_FRAMES`]; inline
    /// for the usual one or two, so that most flows allocate nothing).
    pub syn_frames: smallvec::SmallVec<[u64; 2]>,
    pub syn_ack: Option<PacketRef>,
    pub syn_ack_mss: Option<u16>,
    /// The client acknowledged the SYN-ACK or data flowed both ways.
    pub established: bool,
    pub client_payload: u64,
    pub server_payload: u64,
    pub client_fin: Option<u64>,
    pub server_fin: Option<u64>,
    /// FINs sent after the close was complete (retransmissions).
    pub late_fins: u32,
    /// First server segment carrying new data (or a FIN) from at or beyond
    /// where the server's first reset put its stream: a server that had
    /// reset the connection cannot send it, so that reset was not the server's.
    pub server_after_rst: Option<u64>,
    pub seqs: SeqState,
    /// The connector's usual TTL (its first SYN's, else its highest).
    pub client_ttl: Option<u8>,
    /// TTL-limited data segments the connector sent (at most [`MAX_PROBES`]).
    pub probes: Vec<ProbeSegment>,
    /// TTLs of the server's packets other than resets: its genuine TTL.
    pub server_ttls: TtlCounts,
    pub rsts: Vec<RstEvent>,
    /// Resets beyond the kept ones (a reset storm).
    pub rsts_not_kept: u32,
    pub icmp_errors: Vec<IcmpEvent>,
    /// What the connector sent and resent (path-MTU black holes).
    pub client_sends: SendHistory,
    /// Highest acknowledgment number the server sent.
    pub server_max_ack: Option<u32>,
    /// Link-layer sender of the server's first packet: the gateway (hop 1).
    pub server_mac: Option<[u8; 6]>,
    /// The flow is to a broker port, or an HTTP CONNECT tunnel to one: its
    /// TLS handshake is tracked.
    tls_wanted: bool,
    /// On a port that is not judged, the client's first data segment was a
    /// TLS ClientHello (see [`first_client_segment_is_tls`]): its handshake
    /// is tracked to read the SNI.
    other_port_tls: bool,
    /// Such a flow whose ClientHello names a broker: judged like a flow to
    /// the broker port (see [`FlowTable::is_judged`]).
    pub broker_sni: bool,
    /// Not to a broker port: its first client data segment was looked at
    /// for an HTTP CONNECT (only that one segment ever is).
    connect_looked: bool,
    /// TLS handshake tracking, from the first data segment until the
    /// tracker can learn nothing more; then its observation is kept in
    /// `tls_observation` and the tracker (ten times larger) freed.
    tls: Option<Box<TlsTracker>>,
    /// Sequence numbers of the client's SYN and the server's SYN-ACK
    /// before the tracker exists (stream offsets count from them).
    tls_syn: [Option<u32>; 2],
    /// Last client / server segment carrying data (what a reset answers;
    /// kept here so that the TLS tracker need not see every segment).
    last_client_data_frame: Option<u64>,
    last_server_data_frame: Option<u64>,
    /// What the TLS handshake showed, once the tracker is done (and for
    /// every kept flow to a broker port).
    pub tls_observation: Option<Box<TlsObservation>>,
    last_client: Option<Trigger>,
    last_server: Option<Trigger>,
}

/// Resets and ICMP errors kept per flow; more are counted, not stored.
const MAX_RSTS_PER_FLOW: usize = 16;
const MAX_ICMP_PER_FLOW: usize = 8;
/// TTL-limited probes kept per flow (a probe run sends one per hop).
pub const MAX_PROBES: usize = 64;
pub const MAX_SYN_FRAMES: usize = 8;

impl FlowRecord {
    fn new(client: SocketAddr, server: SocketAddr, p: &Packet) -> FlowRecord {
        FlowRecord {
            client,
            server,
            first_frame: p.frame,
            first_ts_ns: p.ts_ns,
            last_ts_ns: p.ts_ns,
            syn: None,
            syn_mss: None,
            syn_seq: 0,
            syn_count: 0,
            syn_frames: smallvec::SmallVec::new(),
            syn_ack: None,
            syn_ack_mss: None,
            established: false,
            client_payload: 0,
            server_payload: 0,
            client_fin: None,
            server_fin: None,
            late_fins: 0,
            server_after_rst: None,
            seqs: SeqState::default(),
            client_ttl: None,
            probes: Vec::new(),
            server_ttls: TtlCounts::default(),
            rsts: Vec::new(),
            rsts_not_kept: 0,
            icmp_errors: Vec::new(),
            client_sends: SendHistory::default(),
            server_max_ack: None,
            server_mac: None,
            tls_wanted: false,
            other_port_tls: false,
            broker_sni: false,
            connect_looked: false,
            tls: None,
            tls_syn: [None; 2],
            last_client_data_frame: None,
            last_server_data_frame: None,
            tls_observation: None,
            last_client: None,
            last_server: None,
        }
    }

    /// The connection has ended: a reset, or FINs from both sides.
    pub fn is_closed(&self) -> bool {
        !self.rsts.is_empty() || (self.client_fin.is_some() && self.server_fin.is_some())
    }

    /// The server acknowledged connector data beyond the SYN (small segments pass).
    pub fn server_acked_client_data(&self) -> bool {
        self.server_max_ack
            .is_some_and(|a| seq_before(self.syn_seq.wrapping_add(1), a))
    }

    /// SYN retransmissions (SYNs after the first).
    pub fn syn_retransmissions(&self) -> u32 {
        self.syn_count.saturating_sub(1)
    }

    /// The server never answered: SYNs and nothing back (no SYN-ACK, no reset,
    /// no server data).
    pub fn syn_unanswered(&self) -> bool {
        self.syn.is_some()
            && self.syn_ack.is_none()
            && self.server_payload == 0
            && !self.rsts.iter().any(|r| r.from_server)
            && self.server_ttls.total() == 0
    }

    pub fn state(&self) -> FlowState {
        let server_rst = self.rsts.iter().find(|r| r.from_server);
        let client_rst = self.rsts.iter().any(|r| !r.from_server);
        if self.syn_unanswered() {
            FlowState::SynUnanswered
        } else if let Some(r) = server_rst {
            if self.established {
                FlowState::ResetByServer
            } else if matches!(r.answers.map(|t| t.kind), Some(SegmentKind::Syn)) {
                FlowState::Refused
            } else {
                FlowState::ResetByServer
            }
        } else if client_rst {
            FlowState::ResetByClient
        } else if self.client_fin.is_some() || self.server_fin.is_some() {
            FlowState::Closed
        } else if self.established {
            FlowState::Established
        } else if self.syn.is_none() {
            FlowState::MidStream
        } else {
            FlowState::HandshakeIncomplete
        }
    }

    /// How far the connection has got, from its packets so far.
    pub fn stage(&self) -> TcpStage {
        if self.syn.is_none() && self.syn_ack.is_none() {
            TcpStage::MidStream
        } else if self.closed_cleanly() {
            TcpStage::Closed
        } else if self.client_fin.is_some() || self.server_fin.is_some() {
            TcpStage::Closing
        } else if self.client_payload > 0 {
            TcpStage::DataSent
        } else if self.syn_ack.is_some() {
            TcpStage::Handshake
        } else {
            TcpStage::SynSent
        }
    }

    /// Both sides sent a FIN and each FIN was acknowledged by the other side.
    pub fn closed_cleanly(&self) -> bool {
        let q = &self.seqs;
        match (
            q.client_fin_seq,
            q.server_fin_seq,
            self.server_max_ack,
            q.client_max_ack,
        ) {
            (Some(cf), Some(sf), Some(sa), Some(ca)) => {
                !seq_before(sa, cf.wrapping_add(1)) && !seq_before(ca, sf.wrapping_add(1))
            }
            _ => false,
        }
    }

    /// The server acknowledged every byte of the connector's data up to `end`
    /// (the sequence number after it).
    pub fn server_acked_up_to(&self, end: u32) -> bool {
        self.server_max_ack.is_some_and(|a| !seq_before(a, end))
    }

    /// What a reset's acknowledgment number acknowledges of the other
    /// side's sequence space.
    fn rst_acks(&self, from_client: bool, t: &TcpInfo) -> RstAcks {
        if !t.flags.ack() {
            return RstAcks::NoAck;
        }
        let q = &self.seqs;
        let (isn, nxt, fin) = if from_client {
            (q.server_isn, q.server_nxt, q.server_fin_seq)
        } else {
            (
                self.syn.map(|_| self.syn_seq),
                q.client_nxt,
                q.client_fin_seq,
            )
        };
        let Some(isn) = isn else {
            return RstAcks::Outside;
        };
        let a = t.ack;
        let first_data = isn.wrapping_add(1);
        if a == first_data {
            return RstAcks::Syn;
        }
        if fin.is_some_and(|f| a == f.wrapping_add(1)) {
            return RstAcks::Fin;
        }
        let data_end = fin.or(nxt).unwrap_or(first_data);
        if a == data_end && seq_before(first_data, a) {
            RstAcks::AllData
        } else if seq_before(first_data, a) && seq_before(a, data_end) {
            RstAcks::SomeData
        } else {
            RstAcks::Outside
        }
    }

    /// Learns the connector's usual TTL and tells whether this segment is
    /// a TTL-limited probe (data sent with a lower TTL), keeping it if so.
    fn note_client_ttl(&mut self, p: &Packet, t: &TcpInfo) -> Option<u8> {
        let usual = match self.client_ttl {
            None => {
                self.client_ttl = Some(p.ttl);
                return None;
            }
            Some(u) if t.flags.syn() && self.syn.is_none() => {
                // The first SYN sets the usual TTL even after mid-stream data.
                self.client_ttl = Some(p.ttl.max(u));
                return None;
            }
            Some(u) => u,
        };
        if p.ttl > usual && self.syn.is_none() {
            self.client_ttl = Some(p.ttl);
            return None;
        }
        if t.payload_len == 0 || p.ttl >= usual {
            return None;
        }
        if self.probes.len() < MAX_PROBES {
            self.probes.push(ProbeSegment {
                frame: p.frame,
                ttl: p.ttl,
                seq: t.seq,
                len: t.payload_len,
                ip_id: p.ip_id,
            });
        }
        Some(p.ttl)
    }

    /// Sequence space of both sides: what was sent, FINs, acknowledgments.
    fn track_seqs(&mut self, from_client: bool, t: &TcpInfo) {
        let q = &mut self.seqs;
        let end = t
            .seq
            .wrapping_add(t.payload_len)
            .wrapping_add(u32::from(t.flags.syn()))
            .wrapping_add(u32::from(t.flags.fin()));
        let fin_seq = t.seq.wrapping_add(t.payload_len);
        let later = |cur: Option<u32>, v: u32| {
            Some(cur.map_or(v, |c| if seq_before(c, v) { v } else { c }))
        };
        if from_client {
            q.client_nxt = later(q.client_nxt, end);
            if t.flags.fin() {
                q.client_fin_seq.get_or_insert(fin_seq);
            }
            if t.flags.ack() {
                q.client_max_ack = later(q.client_max_ack, t.ack);
            }
        } else {
            if t.flags.syn() && t.flags.ack() && q.server_isn.is_none() {
                q.server_isn = Some(t.seq);
            }
            q.server_nxt = later(q.server_nxt, end);
            if t.flags.fin() {
                q.server_fin_seq.get_or_insert(fin_seq);
            }
        }
    }

    /// The handshake may still show something (see [`TlsTracker::listening`]):
    /// until then the flow has no observation.
    fn tls_listening(&self) -> bool {
        self.tls_wanted && self.tls_observation.is_none()
    }

    /// A segment for the TLS tracker, created with the first data segment
    /// (connections that carry no data never get one).
    fn tls_segment(&mut self, p: &Packet, t: &TcpInfo, from_client: bool, payload: &[u8]) {
        let data = t.payload_len > 0 && !t.flags.rst();
        if self.tls.is_none() && !data {
            if t.flags.syn() {
                self.tls_syn[usize::from(!from_client)] = Some(t.seq);
            }
            return;
        }
        let syns = self.tls_syn;
        let tls = self.tls.get_or_insert_with(|| tracker_after(syns));
        tls.ip_fields(p.ttl, p.ip_id);
        tls.on_segment(from_client, p.frame, p.ts_ns, t, payload);
        if !tls.listening() {
            self.finish_tls();
        }
    }

    /// Turns the tracker (or, when no data came, what a tracker would have
    /// seen) into the flow's TLS observation.
    fn finish_tls(&mut self) {
        if !self.tls_wanted || self.tls_observation.is_some() {
            return;
        }
        let tls = self
            .tls
            .take()
            .unwrap_or_else(|| tracker_after(self.tls_syn));
        self.tls_observation = Some(tls.into_observation());
    }

    /// An HTTP CONNECT tunnel to a broker port (through an explicit
    /// proxy), with its target as the CONNECT request names it.
    /// (Known once the flow is retired.)
    pub fn tunnel(&self) -> Option<&crate::analysis::tls::ConnectTunnel> {
        self.tls_observation
            .as_deref()
            .and_then(|o| o.connect.as_deref())
    }

    /// A flow to another port: its first client data segment decides
    /// whether it is an HTTP CONNECT to a broker port, whose TLS is then
    /// tracked past the CONNECT request and the proxy's answer.
    fn look_for_connect(&mut self, p: &Packet, payload: &[u8], ports: &[u16]) {
        self.connect_looked = true;
        if !http_connect::starts_connect(payload) {
            return;
        }
        let Some(target) = http_connect::request_line(payload) else {
            return;
        };
        if !ports.contains(&target.port) {
            return;
        }
        self.tls_wanted = true;
        let mut tls = tracker_after(self.tls_syn);
        tls.expect_connect(p.frame, &target);
        self.tls = Some(tls);
    }

    fn on_packet(
        &mut self,
        p: &Packet,
        t: &TcpInfo,
        from_client: bool,
        payload: &[u8],
        ports: &[u16],
    ) {
        self.last_ts_ns = p.ts_ns;
        if !self.tls_wanted {
            if t.flags.syn() {
                // Kept for a tunnel's stream offsets (see `look_for_connect`).
                self.tls_syn[usize::from(!from_client)] = Some(t.seq);
            } else if from_client && !self.connect_looked && t.payload_len > 0 && !t.flags.rst() {
                self.look_for_connect(p, payload, ports);
            }
        }
        if t.payload_len > 0 && !t.flags.rst() {
            if from_client {
                self.last_client_data_frame = Some(p.frame);
            } else {
                self.last_server_data_frame = Some(p.frame);
            }
        }
        if !self.tls_wanted {
            self.watch_other_port(t, from_client, payload);
        }
        if self.tls_listening() {
            self.tls_segment(p, t, from_client, payload);
        }
        let kind = SegmentKind::of(t);
        if t.flags.rst() {
            let answers = if from_client {
                self.last_server
            } else {
                self.last_client
            };
            if self.rsts.len() < MAX_RSTS_PER_FLOW {
                self.rsts.push(RstEvent {
                    packet: PacketRef::of(p),
                    from_server: !from_client,
                    flags: t.flags,
                    seq: t.seq,
                    ack: t.ack,
                    window: t.window,
                    options_len: t.options_len,
                    payload_len: t.payload_len,
                    answers,
                    reserved: t.reserved,
                    stage: self.stage(),
                    acks: self.rst_acks(from_client, t),
                });
            } else {
                self.rsts_not_kept += 1;
            }
            return;
        }
        let probe_ttl = if from_client {
            self.note_client_ttl(p, t)
        } else {
            None
        };
        if t.flags.fin() && self.closed_cleanly() {
            self.late_fins += 1;
        }
        if !from_client
            && self.server_after_rst.is_none()
            && (t.payload_len > 0 || t.flags.fin())
            && let Some(r) = self.rsts.iter().find(|r| r.from_server)
            && r.seq != 0
            && !seq_before(t.seq, r.seq)
        {
            self.server_after_rst = Some(p.frame);
        }
        self.track_seqs(from_client, t);
        let trigger = Trigger {
            frame: p.frame,
            ts_ns: p.ts_ns,
            kind,
            ip_id: p.ip_id,
            window: t.window,
            probe_ttl,
        };
        if from_client {
            match kind {
                SegmentKind::Syn => {
                    if self.syn.is_none() {
                        self.syn = Some(PacketRef::of(p));
                        self.syn_mss = t.mss;
                        self.syn_seq = t.seq;
                    }
                    self.syn_count += 1;
                    if self.syn_frames.len() < MAX_SYN_FRAMES {
                        self.syn_frames.push(p.frame);
                    }
                }
                SegmentKind::Fin => {
                    self.client_fin.get_or_insert(p.frame);
                }
                _ => {}
            }
            if self.syn_ack.is_some() && t.flags.ack() && !t.flags.syn() {
                self.established = true;
            }
            self.client_payload += u64::from(t.payload_len);
            self.client_sends.on_data(t.seq, t.payload_len, p.frame);
            self.last_client = Some(trigger);
        } else {
            self.server_ttls.add(p.ttl);
            if self.server_mac.is_none() {
                self.server_mac = p.link_src;
            }
            match kind {
                SegmentKind::SynAck if self.syn_ack.is_none() => {
                    self.syn_ack = Some(PacketRef::of(p));
                    self.syn_ack_mss = t.mss;
                }
                SegmentKind::Fin => {
                    self.server_fin.get_or_insert(p.frame);
                }
                _ => {}
            }
            if t.payload_len > 0 && self.client_payload > 0 {
                self.established = true;
            }
            self.server_payload += u64::from(t.payload_len);
            if t.flags.ack() && self.server_max_ack.is_none_or(|a| seq_before(a, t.ack)) {
                self.server_max_ack = Some(t.ack);
            }
            self.last_server = Some(trigger);
        }
    }
}

impl FlowRecord {
    /// A flow on a port that is not judged: its SYNs are remembered (for a
    /// tracker created later) and its client's first data segment is
    /// looked at, once, for a ClientHello.
    fn watch_other_port(&mut self, t: &TcpInfo, from_client: bool, payload: &[u8]) {
        if t.flags.syn() {
            self.tls_syn[usize::from(!from_client)] = Some(t.seq);
        } else if from_client
            && t.payload_len > 0
            && !t.flags.rst()
            && self.client_payload == 0
            && first_client_segment_is_tls(payload)
        {
            self.tls_wanted = true;
            self.other_port_tls = true;
        }
    }
}

/// Whether the client's first data segment on a port that is not judged
/// makes its flow worth following: it starts a TLS handshake record
/// holding a ClientHello (content type 22, version 3.x, handshake type 1).
/// Six bytes are read; the SNI, read later by the flow's TLS tracker,
/// decides whether it is a broker flow. Also used by the capture pipeline
/// to decide which other-port payloads to copy.
pub fn first_client_segment_is_tls(payload: &[u8]) -> bool {
    matches!(payload, [0x16, 0x03, minor, _, _, 0x01, ..] if *minor <= 0x04)
}

/// TLS and resets seen on a port that is not judged (the report names
/// them when the judged ports have no flow).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortActivity {
    pub port: u16,
    /// Flows whose client opened with a TLS ClientHello (broker names aside:
    /// those flows are judged).
    pub tls_flows: u64,
    /// Resets sent toward the client.
    pub resets: u64,
}

/// Other server ports whose activity is counted.
const MAX_OTHER_PORTS: usize = 1_024;

/// A TLS tracker that has seen these SYN (client) and SYN-ACK (server)
/// sequence numbers.
fn tracker_after(syns: [Option<u32>; 2]) -> Box<TlsTracker> {
    let mut tls = Box::new(TlsTracker::new());
    for (from_client, seq) in [(true, syns[0]), (false, syns[1])] {
        if let Some(seq) = seq {
            tls.syn(from_client, seq);
        }
    }
    tls
}

/// Whether `port` is one of `ports` (the judged ports). Not
/// `slice::contains`: that is an out-of-line call per use, and this runs
/// several times per packet on a list of one or two ports.
#[inline]
#[allow(clippy::manual_contains)]
pub fn port_listed(ports: &[u16], port: u16) -> bool {
    ports.iter().any(|&p| p == port)
}

/// What the capture shows of a remote address's genuine packets (anything
/// but resets): the baseline its resets are compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteBaseline {
    pub ttls: TtlCounts,
    pub first_frame: u64,
    /// ICMP echo replies (ping) from it: the path works for ICMP.
    pub echo_replies: u32,
    /// TTLs of the echo replies alone: the real host's distance even when a
    /// proxy answers its TCP.
    pub echo_ttls: TtlCounts,
    pub first_echo_frame: Option<u64>,
}

/// Lifecycle of a connection, as the capture shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowState {
    /// SYNs sent, nothing came back.
    SynUnanswered,
    /// The SYN was answered by a reset.
    Refused,
    /// SYN and SYN-ACK seen, the handshake did not complete in the capture.
    HandshakeIncomplete,
    Established,
    /// Closed by FIN.
    Closed,
    ResetByServer,
    ResetByClient,
    /// The capture started after the handshake.
    MidStream,
}

/// Bounds of the flow table (memory is proportional to these, not to the file).
#[derive(Clone, Copy, Debug)]
pub struct FlowLimits {
    /// Active flows held at once; above it, closed and idle flows are retired.
    pub max_active: usize,
    /// Finished flows kept for the report; above it only problem flows are
    /// kept (up to twice as many) and the rest counted.
    pub max_kept: usize,
    /// Remote addresses whose genuine TTLs are tracked.
    pub max_remotes: usize,
}

impl Default for FlowLimits {
    fn default() -> FlowLimits {
        FlowLimits {
            max_active: 65_536,
            max_kept: 10_000,
            max_remotes: 65_536,
        }
    }
}

/// The flow table and what the rules need beyond single flows.
#[derive(Clone)]
pub struct FlowTable {
    limits: FlowLimits,
    server_ports: Vec<u16>,
    /// Records are stored in the table itself: finding a packet's flow is
    /// then one memory access (key and record side by side), not two; the
    /// per-packet cost is mostly those cache misses.
    /// Boxed: a record is ~0.7 KB, and the table moves its entries when it
    /// grows and when flows are retired; a box moves as a pointer.
    /// Keys carry their hash, worked out by [`FlowKey::of_packet`] (on the
    /// decoding thread in the `pcap` pipeline).
    active: std::collections::HashMap<FlowKey, Box<FlowRecord>, BuildCarriedHash>,
    /// Finished flows, in the order they ended.
    pub finished: Vec<FlowRecord>,
    /// Flows not kept in `finished` (counted only).
    pub flows_not_kept: u64,
    /// Resets toward the client on the judged ports, in every flow (kept
    /// or not), up to the per-flow bound.
    pub server_rsts_total: u64,
    pub flows_total: u64,
    /// Genuine (non-reset) packets seen from each remote address: TCP from
    /// servers and ICMP echo replies.
    pub remotes: FxHashMap<IpAddr, RemoteBaseline>,
    /// The MAC that delivered each remote address's packets (its gateway).
    pub delivering_mac: FxHashMap<IpAddr, [u8; 6]>,
    /// ICMP errors that quote no tracked flow (kept up to a bound).
    pub stray_icmp: Vec<IcmpEvent>,
    /// TLS and resets on server ports that are not judged, by port (up to
    /// [`MAX_OTHER_PORTS`] ports).
    pub other_ports: std::collections::BTreeMap<u16, PortActivity>,
    /// Broker names given by the user, besides the built-in patterns (a
    /// ClientHello naming one on another port is judged).
    broker_names: Vec<String>,
    last_ts_ns: i64,
    /// Keys of connections retired after a clean close: a late FIN or ACK
    /// on one of them is a retransmission, not a new connection (bounded:
    /// cleared when full).
    /// (Hashes of the keys, not the keys: eight bytes each; a collision can
    /// only drop one bare ACK or FIN of a new flow that has no SYN.)
    recently_closed: rustc_hash::FxHashSet<u64>,
    /// Such late segments (no SYN, no data, no reset) after a connection was retired.
    pub late_segments: u64,
    /// Flows that closed, by closing time: retired after a grace period, so
    /// the table holds the flows really open, not every flow ever seen.
    closing: VecDeque<(i64, FlowKey)>,
    /// Problem flows retired so far (for reservoir sampling once full).
    problem_flows: u64,
    /// Deterministic PRNG state for the sampling (same input, same output).
    sample_state: u64,
}

/// How long a closed flow stays in the table for its last ACKs.
const CLOSE_GRACE_NS: i64 = 5_000_000_000;

impl FlowTable {
    pub fn new(server_ports: Vec<u16>, limits: FlowLimits) -> FlowTable {
        FlowTable {
            limits,
            server_ports,
            active: Default::default(),
            finished: Vec::new(),
            flows_not_kept: 0,
            server_rsts_total: 0,
            flows_total: 0,
            remotes: FxHashMap::default(),
            delivering_mac: FxHashMap::default(),
            stray_icmp: Vec::new(),
            other_ports: std::collections::BTreeMap::new(),
            broker_names: Vec::new(),
            last_ts_ns: 0,
            recently_closed: rustc_hash::FxHashSet::default(),
            late_segments: 0,
            closing: VecDeque::new(),
            problem_flows: 0,
            sample_state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Whether `port` is one of the ports the connector dials (443 by default).
    pub fn is_server_port(&self, port: u16) -> bool {
        port_listed(&self.server_ports, port)
    }

    /// The judged ports (`--port`).
    pub fn server_ports(&self) -> &[u16] {
        &self.server_ports
    }

    /// Broker names to recognise in a ClientHello's SNI on other ports,
    /// besides the built-in patterns.
    pub fn set_broker_names(&mut self, names: &[String]) {
        self.broker_names = names.to_vec();
    }

    /// Whether the rules judge this flow: to a judged port, on another port
    /// with a ClientHello that names a broker, or an HTTP CONNECT tunnel to
    /// a judged port through an explicit proxy (judged as a flow to the
    /// proxy's address, which is what its packets show).
    pub fn is_judged(&self, f: &FlowRecord) -> bool {
        self.is_server_port(f.server.port()) || f.broker_sni || f.tunnel().is_some()
    }

    /// A retired flow whose client opened with a ClientHello on a port that
    /// is not judged: a broker SNI makes it judged; otherwise its port's
    /// TLS is counted and the observation dropped (nothing judges it).
    fn classify_other_port(&mut self, f: &mut FlowRecord) {
        let sni = f
            .tls_observation
            .as_ref()
            .and_then(|o| o.client_hello.as_ref())
            .and_then(|c| c.sni.as_deref());
        if sni.is_some_and(|n| super::dns::is_broker_name(n, &self.broker_names)) {
            f.broker_sni = true;
            return;
        }
        f.tls_observation = None;
        f.tls_wanted = false;
        if let Some(a) = self.port_activity(f.server.port()) {
            a.tls_flows += 1;
        }
    }

    fn port_activity(&mut self, port: u16) -> Option<&mut PortActivity> {
        if self.other_ports.len() >= MAX_OTHER_PORTS && !self.other_ports.contains_key(&port) {
            return None;
        }
        Some(self.other_ports.entry(port).or_insert(PortActivity {
            port,
            ..PortActivity::default()
        }))
    }

    /// A packet and its captured transport payload (for TLS on broker ports).
    pub fn push(&mut self, p: &Packet, payload: &[u8]) {
        self.push_keyed(p, payload, FlowKey::of_packet(p));
    }

    /// As [`Self::push`], with the packet's key worked out beforehand: it
    /// must be [`FlowKey::of_packet`] of `p`.
    pub fn push_keyed(&mut self, p: &Packet, payload: &[u8], key: Option<FlowKey>) {
        debug_assert_eq!(key, FlowKey::of_packet(p), "a key of another packet");
        self.last_ts_ns = self.last_ts_ns.max(p.ts_ns);
        self.retire_closed();
        match (&p.transport, key) {
            (Transport::Tcp(t), Some(key)) => self.on_tcp(p, t, payload, key),
            (Transport::Icmp(i), _) => match i.kind {
                IcmpKind::EchoReply { .. } => {
                    let mut one = TtlCounts::default();
                    one.add(p.ttl);
                    self.note_genuine(p.src, &one, p.frame, true);
                    self.note_mac(p.src, p.link_src);
                }
                IcmpKind::TimeExceeded
                | IcmpKind::Unreachable { .. }
                | IcmpKind::PacketTooBig { .. } => self.on_icmp_error(p),
                _ => {}
            },
            _ => {}
        }
    }

    /// Adds genuine packets of a remote address to its baseline: a ping
    /// reply as it comes, a flow's server packets when the flow retires (so
    /// the per-packet path does no second lookup).
    fn note_genuine(&mut self, addr: IpAddr, ttls: &TtlCounts, frame: u64, echo_reply: bool) {
        let full = self.remotes.len() >= self.limits.max_remotes;
        let entry = match self.remotes.get_mut(&addr) {
            Some(e) => e,
            None if !full => self.remotes.entry(addr).or_insert(RemoteBaseline {
                ttls: TtlCounts::default(),
                first_frame: frame,
                echo_replies: 0,
                echo_ttls: TtlCounts::default(),
                first_echo_frame: None,
            }),
            None => return,
        };
        entry.ttls.merge(ttls);
        entry.first_frame = entry.first_frame.min(frame);
        if echo_reply {
            entry.echo_replies += 1;
            entry.echo_ttls.merge(ttls);
            entry.first_echo_frame.get_or_insert(frame);
        }
    }

    fn on_tcp(&mut self, p: &Packet, t: &TcpInfo, payload: &[u8], key: FlowKey) {
        let src = SocketAddr::new(p.src, t.src_port);
        let dst = SocketAddr::new(p.dst, t.dst_port);
        let is_new_syn = t.flags.syn() && !t.flags.ack() && !t.flags.rst();

        // A fresh SYN on a 4-tuple whose previous connection ended or used
        // another initial sequence number starts a new connection.
        if is_new_syn && let Some(old) = self.active.get(&key) {
            let same_attempt =
                old.client == src && old.syn.is_some() && old.syn_seq == t.seq && !old.is_closed();
            if !same_attempt {
                let old = self.active.remove(&key).expect("flow present");
                self.retire(old);
            }
        }
        let bare = !t.flags.syn() && !t.flags.rst() && t.payload_len == 0;
        if self.active.len() >= self.limits.max_active && !self.active.contains_key(&key) {
            self.evict();
        }
        // One hash lookup per packet of a known flow.
        let ports = &self.server_ports;
        let recently_closed = &self.recently_closed;
        let (mut created, mut late) = (false, false);
        let flow = self.active.entry(key).or_insert_with(|| {
            created = true;
            // A bare ACK or FIN on a connection retired after its clean
            // close is a late retransmission, not a new connection (looked
            // up only when a flow would be created).
            late = bare && !recently_closed.is_empty() && recently_closed.contains(&key.hash64());
            let (client, server) = roles(ports, p, t, src, dst);
            let mut flow = Box::new(FlowRecord::new(client, server, p));
            if port_listed(ports, server.port()) {
                flow.tls_wanted = true;
            }
            flow
        });
        if late {
            self.active.remove(&key);
            self.late_segments += 1;
            return;
        }
        let from_client = flow.client == src;
        let was_closed = flow.is_closed();
        flow.on_packet(p, t, from_client, payload, ports);
        let closed_now = !was_closed && flow.is_closed();
        if created {
            self.flows_total += 1;
        }
        if closed_now {
            self.closing.push_back((p.ts_ns, key));
        }
    }

    /// Retires flows closed for longer than the grace period.
    fn retire_closed(&mut self) {
        let horizon = self.last_ts_ns - CLOSE_GRACE_NS;
        while let Some(&(ts, key)) = self.closing.front() {
            if ts > horizon {
                break;
            }
            self.closing.pop_front();
            match self.active.get(&key) {
                Some(f) if f.is_closed() && f.last_ts_ns <= horizon => {
                    let f = self.active.remove(&key).expect("flow present");
                    if f.closed_cleanly() {
                        if self.recently_closed.len() >= self.limits.max_active {
                            self.recently_closed.clear();
                        }
                        self.recently_closed.insert(key.hash64());
                    }
                    self.retire(f);
                }
                // Still busy after closing (last ACKs): look again later.
                Some(f) if f.is_closed() => self.closing.push_back((f.last_ts_ns, key)),
                _ => {}
            }
        }
    }

    fn on_icmp_error(&mut self, p: &Packet) {
        let Some(icmp) = p.icmp() else { return };
        let event = IcmpEvent {
            packet: PacketRef::of(p),
            from: p.src,
            icmp_type: icmp.icmp_type,
            code: icmp.code,
            kind: icmp.kind,
            v6: icmp.v6,
            quoted_seq: icmp.quoted.and_then(|q| q.tcp_seq),
            quoted_ip_id: icmp.quoted.and_then(|q| q.ip_id),
        };
        let flow = icmp.quoted.and_then(|q| {
            let (sp, dp) = (q.src_port?, q.dst_port?);
            (q.protocol == 6).then_some(())?;
            let key = FlowKey::new(SocketAddr::new(q.src, sp), SocketAddr::new(q.dst, dp));
            self.active.get_mut(&key)
        });
        match flow {
            Some(f) if f.icmp_errors.len() < MAX_ICMP_PER_FLOW => f.icmp_errors.push(event),
            Some(_) => {}
            None if self.stray_icmp.len() < self.limits.max_kept => self.stray_icmp.push(event),
            None => {}
        }
    }

    /// Makes room in the active table: retires closed flows and flows idle
    /// for a minute, then the least recently active if that was not enough.
    fn evict(&mut self) {
        const IDLE_NS: i64 = 60_000_000_000;
        let now = self.last_ts_ns;
        let mut retire: Vec<FlowKey> = self
            .active
            .iter()
            .filter(|(_, f)| f.is_closed() || now - f.last_ts_ns > IDLE_NS)
            .map(|(k, _)| *k)
            .collect();
        if self.active.len() - retire.len() > self.limits.max_active * 3 / 4 {
            let mut by_age: Vec<(i64, FlowKey)> = self
                .active
                .iter()
                .map(|(k, f)| (f.last_ts_ns, *k))
                .collect();
            by_age.sort_unstable_by_key(|(ts, _)| *ts);
            retire = by_age
                .into_iter()
                .take(self.active.len() / 2)
                .map(|(_, k)| k)
                .collect();
        }
        for k in retire {
            if let Some(f) = self.active.remove(&k) {
                self.retire(f);
            }
        }
    }

    fn note_mac(&mut self, addr: IpAddr, mac: Option<[u8; 6]>) {
        if let Some(mac) = mac
            && self.delivering_mac.len() < self.limits.max_remotes
        {
            self.delivering_mac.entry(addr).or_insert(mac);
        }
    }

    /// Boxed as in the table: a record (hundreds of bytes) is moved out
    /// of its box only when it is kept.
    fn retire(&mut self, mut f: Box<FlowRecord>) {
        f.finish_tls();
        if f.other_port_tls {
            self.classify_other_port(&mut f);
        }
        let server_rsts = f.rsts.iter().filter(|r| r.from_server).count() as u64;
        if self.is_judged(&f) {
            self.server_rsts_total += server_rsts;
        } else if server_rsts > 0
            && let Some(a) = self.port_activity(f.server.port())
        {
            a.resets += server_rsts;
        }
        self.note_mac(f.server.ip(), f.server_mac);
        if f.server_ttls.total() > 0 {
            let frame = f.syn_ack.map_or(f.first_frame, |s| s.frame);
            self.note_genuine(f.server.ip(), &f.server_ttls, frame, false);
        }
        let tls_problem = f
            .tls_observation
            .as_ref()
            .is_some_and(|o| !o.completed_cleanly());
        let problem =
            !f.rsts.is_empty() || f.syn_unanswered() || !f.icmp_errors.is_empty() || tls_problem;
        let room = if problem {
            self.limits.max_kept * 2
        } else {
            self.limits.max_kept
        };
        if problem {
            self.problem_flows += 1;
        }
        // Where the flow goes: a free slot, a sampled slot, or nowhere.
        let slot = if self.finished.len() < room {
            Some(self.finished.len())
        } else if problem {
            // Reservoir sampling: every problem flow of the capture has the
            // same chance to be kept, so an injection that starts late in a
            // long capture is still seen.
            self.sample_state ^= self.sample_state << 13;
            self.sample_state ^= self.sample_state >> 7;
            self.sample_state ^= self.sample_state << 17;
            let slot = (self.sample_state % self.problem_flows) as usize;
            self.flows_not_kept += 1;
            (slot < self.finished.len()).then_some(slot)
        } else {
            self.flows_not_kept += 1;
            None
        };
        let Some(slot) = slot else { return };
        if let Some(obs) = &mut f.tls_observation {
            obs.last_client_data_frame = f.last_client_data_frame;
            obs.last_server_data_frame = f.last_server_data_frame;
        }
        if slot == self.finished.len() {
            if self.finished.capacity() == 0 {
                // Reserved whole, to its bound: capacity not yet written
                // costs address space, not memory (pages are mapped as
                // records fill them). Growing by doubling copied the list
                // each time into pages mapped afresh, up to 28 MB of
                // copies and page faults on a large capture (~10 % of the
                // analysis of the real-traffic benchmark's first pass).
                self.finished.reserve_exact(2 * self.limits.max_kept);
            }
            self.finished.push(*f);
        } else {
            self.finished[slot] = *f;
        }
    }

    /// Ends the capture: every active flow is retired, in order of first frame.
    pub fn finish(&mut self) {
        // Records are large: they are ordered by their keys, then each is
        // moved once (sorting the records would move each many times).
        let mut rest: Vec<(u64, FlowKey)> = self
            .active
            .iter()
            .map(|(k, f)| (f.first_frame, *k))
            .collect();
        rest.sort_unstable_by_key(|r| r.0);
        for (_, k) in rest {
            if let Some(f) = self.active.remove(&k) {
                self.retire(f);
            }
        }
        // The table's memory goes back to the allocator for what follows.
        self.active = Default::default();
        let mut order: Vec<(u64, usize)> = self
            .finished
            .iter()
            .enumerate()
            .map(|(i, f)| (f.first_frame, i))
            .collect();
        if !order.is_sorted() {
            order.sort_unstable();
            let source: Vec<usize> = order.into_iter().map(|(_, i)| i).collect();
            apply_permutation(&mut self.finished, source);
        }
    }
}

/// Reorders `items` in place so that position `i` holds what was at
/// `source[i]` (`source` is a permutation): each cycle of the permutation is
/// followed with swaps, so no second list of records is allocated.
fn apply_permutation<T>(items: &mut [T], mut source: Vec<usize>) {
    const DONE: usize = usize::MAX;
    for start in 0..items.len() {
        let mut at = start;
        while source[at] != DONE {
            let from = source[at];
            source[at] = DONE;
            if from == start {
                break;
            }
            items.swap(at, from);
            at = from;
        }
    }
}

/// Decides who is the client of a flow first seen with this packet.
fn roles(
    server_ports: &[u16],
    p: &Packet,
    t: &TcpInfo,
    src: SocketAddr,
    dst: SocketAddr,
) -> (SocketAddr, SocketAddr) {
    use crate::packet::Direction;
    let is_server_port = |port| port_listed(server_ports, port);
    let src_is_client = if t.flags.syn() {
        !t.flags.ack()
    } else if is_server_port(t.dst_port) != is_server_port(t.src_port) {
        is_server_port(t.dst_port)
    } else {
        match p.direction {
            Direction::Out => true,
            Direction::In => false,
            // The well-known (lower) port is the server's.
            Direction::Unknown => t.dst_port < t.src_port,
        }
    };
    if src_is_client {
        (src, dst)
    } else {
        (dst, src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{TcpFlags, testing};

    pub(crate) fn tcp(
        frame: u64,
        ms: i64,
        src: &str,
        dst: &str,
        ttl: u8,
        flags: u8,
        seq: u32,
    ) -> Packet {
        let t = testing::tcp_info(src, dst, flags, seq, 0);
        testing::packet(frame, ms, src, dst, ttl, Transport::Tcp(t))
    }

    const C: &str = "10.0.0.2:40000";
    const S: &str = "198.18.4.2:443";
    const SYN: u8 = TcpFlags::SYN;
    const SYNACK: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const ACK: u8 = TcpFlags::ACK;
    const RSTACK: u8 = TcpFlags::RST | TcpFlags::ACK;

    #[test]
    fn permutation_applied_in_place() {
        let mut items = vec!['a', 'b', 'c', 'd', 'e', 'f'];
        // Two cycles (0 2 4) and (1 5), and a fixed point.
        apply_permutation(&mut items, vec![2, 5, 4, 3, 0, 1]);
        assert_eq!(items, vec!['c', 'f', 'e', 'd', 'a', 'b']);
        let mut one = vec![1];
        apply_permutation(&mut one, vec![0]);
        assert_eq!(one, vec![1]);
    }

    #[test]
    fn refused_syn_with_retransmission() {
        let mut t = FlowTable::new(vec![443], FlowLimits::default());
        t.push(&tcp(1, 0, C, S, 64, SYN, 7), &[]);
        t.push(&tcp(2, 1000, C, S, 64, SYN, 7), &[]);
        t.push(&tcp(3, 1001, S, C, 64, RSTACK, 0), &[]);
        t.finish();
        let f = &t.finished[0];
        assert_eq!(f.syn_count, 2);
        assert_eq!(f.state(), FlowState::Refused);
        let r = f.rsts[0];
        assert!(r.from_server);
        assert_eq!(r.answers.unwrap().frame, 2);
        assert_eq!(r.packet.ts_ns - r.answers.unwrap().ts_ns, 1_000_000);
        assert_eq!(t.remotes.get(&"198.18.4.2".parse().unwrap()), None);
    }

    #[test]
    fn established_flow_records_server_ttl() {
        let mut t = FlowTable::new(vec![443], FlowLimits::default());
        t.push(&tcp(1, 0, C, S, 64, SYN, 7), &[]);
        t.push(&tcp(2, 5, S, C, 61, SYNACK, 100), &[]);
        t.push(&tcp(3, 6, C, S, 64, ACK, 8), &[]);
        t.finish();
        let f = &t.finished[0];
        assert!(f.established);
        assert_eq!(f.state(), FlowState::Established);
        assert_eq!(f.server_ttls.mode(), Some(61));
        assert_eq!(f.syn_ack.unwrap().frame, 2);
    }

    fn data(frame: u64, ms: i64, src: &str, dst: &str, seq: u32, len: u32) -> Packet {
        let t = testing::tcp_info(src, dst, ACK, seq, len);
        testing::packet(frame, ms, src, dst, 64, Transport::Tcp(t))
    }

    #[test]
    fn tls_tracker_only_while_it_can_learn() {
        let mut t = FlowTable::new(vec![443], FlowLimits::default());
        // A connection without data: no tracker, but an observation at the
        // end that knows both SYNs (what a tracker from the SYN would say).
        t.push(&tcp(1, 0, C, S, 64, SYN, 7), &[]);
        t.push(&tcp(2, 5, S, C, 61, SYNACK, 100), &[]);
        t.push(&tcp(3, 6, C, S, 64, ACK, 8), &[]);
        let key = FlowKey::new(C.parse().unwrap(), S.parse().unwrap());
        assert!(t.active[&key].tls.is_none());
        // Plain text from the client: not TLS, the tracker is done at once
        // and freed; later data does not bring it back.
        t.push(&data(4, 7, C, S, 8, 5), b"GET /");
        let f = &t.active[&key];
        assert!(f.tls.is_none() && !f.tls_listening());
        assert!(f.tls_observation.as_ref().is_some_and(|o| o.not_tls));
        t.push(&data(5, 8, S, C, 101, 4), b"HTTP");
        assert!(t.active[&key].tls.is_none());
        t.push(&tcp(6, 9, "10.0.0.2:40001", S, 64, SYN, 70), &[]);
        t.push(&tcp(7, 14, S, "10.0.0.2:40001", 61, SYNACK, 700), &[]);
        t.finish();
        let [http, silent] = &t.finished[..] else {
            panic!("two flows: {:?}", t.finished.len())
        };
        let obs = http.tls_observation.as_ref().expect("observation");
        assert_eq!(obs.last_server_data_frame, Some(5));
        assert!(obs.client_stream.syn_seen && obs.server_stream.syn_seen);
        let obs = silent.tls_observation.as_ref().expect("observation");
        assert!(obs.client_stream.syn_seen && obs.server_stream.syn_seen);
        assert!(!obs.completed_cleanly());
    }

    #[test]
    fn only_the_first_client_segment_of_other_ports_is_looked_at_for_connect() {
        const P: &str = "10.0.0.1:3128";
        let connect = b"CONNECT co2br.prod.zpath.net:443 HTTP/1.1\r\n\r\n";
        let mut t = FlowTable::new(vec![443], FlowLimits::default());
        // A plain request first: a later CONNECT on the same connection is
        // not looked at (no tracker, no tunnel).
        t.push(&tcp(1, 0, C, P, 64, SYN, 7), &[]);
        t.push(&tcp(2, 1, P, C, 64, SYNACK, 100), &[]);
        t.push(&data(3, 2, C, P, 8, 4), b"GET ");
        t.push(&data(4, 3, C, P, 12, connect.len() as u32), connect);
        let key = FlowKey::new(C.parse().unwrap(), P.parse().unwrap());
        assert!(t.active[&key].connect_looked && !t.active[&key].tls_wanted);
        assert!(t.active[&key].tls.is_none());
        // A CONNECT to the broker port first: tracked from that segment on.
        let c2 = "10.0.0.2:40001";
        t.push(&tcp(5, 4, c2, P, 64, SYN, 70), &[]);
        t.push(&tcp(6, 5, P, c2, 64, SYNACK, 700), &[]);
        t.push(&data(7, 6, c2, P, 71, connect.len() as u32), connect);
        let key2 = FlowKey::new(c2.parse().unwrap(), P.parse().unwrap());
        assert!(t.active[&key2].tls_wanted && t.active[&key2].tls.is_some());
        t.finish();
        assert_eq!(t.finished.len(), 2);
        assert!(t.finished[0].tunnel().is_none());
        assert!(!t.is_judged(&t.finished[0]));
        let tun = t.finished[1].tunnel().expect("a tunnel");
        assert_eq!((tun.request_frame, tun.port), (7, 443));
        assert!(tun.answer.is_none());
        assert!(t.is_judged(&t.finished[1]));
    }

    #[test]
    fn new_isn_on_same_tuple_is_a_new_connection() {
        let mut t = FlowTable::new(vec![443], FlowLimits::default());
        t.push(&tcp(1, 0, C, S, 64, SYN, 7), &[]);
        t.push(&tcp(2, 1, S, C, 64, RSTACK, 0), &[]);
        t.push(&tcp(3, 500, C, S, 64, SYN, 9000), &[]);
        t.finish();
        assert_eq!(t.finished.len(), 2);
        assert_eq!(t.flows_total, 2);
        assert_eq!(t.finished[1].state(), FlowState::SynUnanswered);
    }

    #[test]
    fn table_stays_bounded() {
        let limits = FlowLimits {
            max_active: 100,
            max_kept: 50,
            max_remotes: 10,
        };
        let mut t = FlowTable::new(vec![443], limits);
        for i in 0..10_000u32 {
            let c = format!("10.0.{}.{}:{}", i / 250, i % 250, 1024 + i % 60000);
            t.push(&tcp(u64::from(i), i64::from(i), &c, S, 64, SYN, i), &[]);
            assert!(t.active.len() <= 100);
        }
        t.finish();
        assert!(t.finished.len() <= 100);
        assert_eq!(t.flows_total, 10_000);
        assert_eq!(t.finished.len() as u64 + t.flows_not_kept, 10_000);
    }

    /// Flows beyond the kept bound still count their resets.
    #[test]
    fn resets_counted_in_flows_not_kept() {
        let limits = FlowLimits {
            max_active: 100,
            max_kept: 10,
            max_remotes: 10,
        };
        let mut t = FlowTable::new(vec![443], limits);
        for i in 0..500u32 {
            let c = format!("10.1.{}.{}:{}", i / 250, i % 250, 2000 + i);
            let (f, ts) = (u64::from(i) * 2, i64::from(i) * 1_000_000_000);
            t.push(&tcp(f + 1, ts, &c, S, 64, SYN, i), &[]);
            t.push(&tcp(f + 2, ts + 1, S, &c, 63, RSTACK, 0), &[]);
        }
        t.finish();
        assert!(t.finished.len() <= 20, "{}", t.finished.len());
        assert_eq!(t.server_rsts_total, 500);
    }

    #[test]
    fn only_the_first_client_segment_decides_other_port_tls() {
        assert!(first_client_segment_is_tls(&[0x16, 3, 1, 0, 200, 1, 0]));
        assert!(!first_client_segment_is_tls(&[0x16, 3, 1, 0, 200, 2, 0]));
        assert!(!first_client_segment_is_tls(&[0x17, 3, 3, 0, 200, 1]));
        assert!(!first_client_segment_is_tls(&[0x16, 3, 9, 0, 200, 1]));
        assert!(!first_client_segment_is_tls(&[0x16, 3, 1]));
        let hello = [0x16, 3, 1, 0, 4, 1, 0, 0, 0];
        let mut t = FlowTable::new(vec![443], FlowLimits::default());
        let (c, s2) = ("10.0.0.2:40000", "198.18.4.2:8443");
        t.push(&tcp(1, 0, c, s2, 64, SYN, 7), &[]);
        t.push(&tcp(2, 5, s2, c, 61, SYNACK, 100), &[]);
        // Plain text first: a later ClientHello-looking segment is not looked at.
        t.push(&data(3, 6, c, s2, 8, 5), b"GET /");
        t.push(&data(4, 7, c, s2, 13, hello.len() as u32), &hello);
        let (c3, s3) = ("10.0.0.2:40001", "198.18.4.2:8443");
        t.push(&tcp(5, 8, c3, s3, 64, SYN, 70), &[]);
        t.push(&data(6, 9, c3, s3, 71, hello.len() as u32), &hello);
        let k1 = FlowKey::new(c.parse().unwrap(), s2.parse().unwrap());
        let k3 = FlowKey::new(c3.parse().unwrap(), s3.parse().unwrap());
        assert!(!t.active[&k1].other_port_tls && t.active[&k1].tls.is_none());
        assert!(t.active[&k3].other_port_tls && t.active[&k3].tls_wanted);
        t.finish();
        // No SNI: not a broker, counted for its port, observation dropped.
        assert!(
            t.finished
                .iter()
                .all(|f| !f.broker_sni && f.tls_observation.is_none())
        );
        assert_eq!(t.other_ports[&8443].tls_flows, 1);
    }
}
