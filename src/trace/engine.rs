//! The sans-I/O tracer: rounds of probes over a [`Network`], timed by a [`Clock`].
//!
//! # Rounds
//!
//! Round `r` starts at `start + r × interval` (or `interval` after round
//! `r − 1`'s last send, if that was late). It sends one probe per TTL
//! from `first_ttl` up, all at once (up to `max_inflight` awaited probes),
//! and each probe waits at most `timeout` for its answer. Rounds overlap
//! when `timeout > interval`. The TTLs probed:
//!
//! - round 0: up to `max_ttl` (the path is unknown);
//! - once the target has answered at TTL t: up to t, never beyond. A probe
//!   beyond the target only reaches the target again (trippy lists such
//!   hops past the target);
//! - target not (yet) answering: up to the highest answering TTL +
//!   `max_unknown` (mtr's `--max-unknown`, 5).
//!
//! After the last round the tracer waits until every probe is answered or
//! timed out, then stops: a run of N rounds takes at most
//! `(N − 1) × interval + timeout` when `max_inflight` covers the probes in
//! flight ([`TraceConfig::max_duration`]), and ends one RTT after the last
//! round's sends when every probe of that round is answered (no grace
//! period). Waiting is done in [`Network::recv`] with a deadline: no polling.
//!
//! # Evidence
//!
//! Every probe sent and every packet that answers a probe (in time, late or
//! duplicate) is kept as bytes with its timestamp ([`Trace::packets`]),
//! numbered from 1 like the frames of a pcap written from them; probes,
//! replies and findings refer to these frame numbers. Foreign packets (the
//! host's other ICMP/TCP traffic a raw socket also sees) are counted, not kept.

use super::net::{Clock, Instant, Network, ProbeRequest, RecvPacket};
use super::probe::{
    MAX_TTL_LIMIT, Matcher, Probe, ProbeRef, ProbeStatus, Reply, probe_seq, round_of_seq,
    ttl_of_seq,
};
use super::stats::{HopStats, hop_stats};
use super::{TraceError, TraceProtocol};
use crate::packet::emit::{ProbeKind, ProbeSpec, emit};
use crate::packet::{Direction, decode_ip};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Shortest interval between rounds: at most 10 probe sets per second.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Packets kept for the record; later ones are counted in
/// [`TraceCounters::unrecorded`].
pub const RECORD_LIMIT: usize = 100_000;

/// Most rounds per run. Memory is about 144 bytes per probe slot (the
/// TTLs a round probes), so 100 000 rounds of 15 hops hold ~220 MB.
pub const MAX_ROUNDS: u32 = 100_000;

/// Consecutive early empty returns of [`Network::recv`] tolerated.
const MAX_STALLS: u32 = 1_000;

/// What to trace and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceConfig {
    pub target: IpAddr,
    /// Source address of the probes; `None`: ask [`Network::source_addr`].
    pub source: Option<IpAddr>,
    pub protocol: TraceProtocol,
    /// First TTL probed (1).
    pub first_ttl: u8,
    /// Last TTL probed (30; at most 64).
    pub max_ttl: u8,
    /// Number of rounds (10, like `mtr -c 10`).
    pub rounds: u32,
    /// Time between round starts (1 s, mtr's default; at least [`MIN_INTERVAL`]).
    pub interval: Duration,
    /// How long a probe waits for its answer (1 s). A later answer is
    /// "late": recorded, but the probe counts as lost (see [`super::stats`]).
    pub timeout: Duration,
    /// Probes awaited at once (32: a whole round of 30 TTLs).
    pub max_inflight: usize,
    /// Unanswered TTLs probed past the highest answering one while the
    /// target is unknown (5, like mtr).
    pub max_unknown: u8,
    /// Identity of the trace: ICMP echo id, TCP sequence high half, IPv6
    /// flow label (default: the process id).
    pub ident: u16,
    /// TCP/UDP source port, constant for the whole trace (Paris).
    pub src_port: u16,
    /// MSS option of TCP SYNs (`None`: 1460 on IPv4, 1440 on IPv6).
    pub mss: Option<u16>,
}

impl TraceConfig {
    /// Defaults as documented on each field.
    pub fn new(target: IpAddr, protocol: TraceProtocol) -> TraceConfig {
        let ident = (std::process::id() & 0xffff) as u16;
        TraceConfig {
            target,
            source: None,
            protocol,
            first_ttl: 1,
            max_ttl: 30,
            rounds: 10,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            max_inflight: 32,
            max_unknown: 5,
            ident,
            // Within the dynamic range 49152–65535.
            src_port: 49152 | (ident & 0x3fff),
            mss: None,
        }
    }

    /// Room for every probe that can be awaited at once: a round's TTLs ×
    /// the rounds a timeout spans (at least 32). Call after setting
    /// `max_ttl`, `interval` and `timeout`; every trace (`trace`, `check`)
    /// sizes its window this one way.
    pub fn fit_inflight(&mut self) {
        let overlap = self
            .timeout
            .as_nanos()
            .div_ceil(self.interval.as_nanos().max(1))
            .clamp(1, 64) as usize;
        self.max_inflight = (usize::from(self.max_ttl) * overlap).max(32);
    }

    pub fn validate(&self) -> Result<(), TraceError> {
        let bad = |field, reason| Err(TraceError::Config { field, reason });
        if self.first_ttl == 0 || self.first_ttl > self.max_ttl {
            return bad("first_ttl", "must be between 1 and max_ttl");
        }
        if self.max_ttl > MAX_TTL_LIMIT {
            return bad("max_ttl", "must be at most 64");
        }
        if self.rounds == 0 || self.rounds > MAX_ROUNDS {
            return bad("rounds", "must be between 1 and 100000");
        }
        if self.interval < MIN_INTERVAL || self.interval > Duration::from_secs(3600) {
            return bad("interval", "must be between 100 ms and 1 h");
        }
        if self.timeout < Duration::from_millis(1) || self.timeout > Duration::from_secs(60) {
            return bad("timeout", "must be between 1 ms and 60 s");
        }
        if self.max_inflight == 0 {
            return bad("max_inflight", "must be at least 1");
        }
        if self.protocol.port() == Some(0) || self.src_port == 0 {
            return bad("port", "must not be 0");
        }
        if let Some(s) = self.source
            && s.is_ipv6() != self.target.is_ipv6()
        {
            return bad("source", "must be of the target's IP version");
        }
        Ok(())
    }

    /// MSS advertised in TCP SYNs.
    pub fn mss(&self) -> u16 {
        self.mss
            .unwrap_or(if self.target.is_ipv6() { 1440 } else { 1460 })
    }

    /// Upper bound of a run on a network that sends at once: the last round
    /// starts at `(rounds − 1) × interval` and its probes wait `timeout`.
    /// Holds when `max_inflight` covers the probes that can be awaited at
    /// once: the TTLs of a round × ⌈timeout / interval⌉ (rounds overlap
    /// when `timeout > interval`). With less, sends wait for a free slot and
    /// later rounds start late.
    pub fn max_duration(&self) -> Duration {
        self.interval.saturating_mul(self.rounds - 1) + self.timeout
    }
}

/// One round: a probe slot per TTL (`probes[ttl − 1]`), up to the highest
/// TTL the round probed (higher ones were not sent: skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round {
    pub index: u32,
    pub started_at: Instant,
    pub probes: Vec<ProbeStatus>,
}

impl Round {
    pub fn status(&self, ttl: u8) -> Option<&ProbeStatus> {
        self.probes.get(usize::from(ttl).checked_sub(1)?)
    }
}

/// A packet sent or received, for the record (`--save`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub direction: Direction,
    pub at: Instant,
    /// IP packet, starting with the IP header.
    pub bytes: Vec<u8>,
}

/// Totals of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceCounters {
    /// Probes handed to the network.
    pub sent: u32,
    /// Probes the network refused to send.
    pub send_failures: u32,
    /// Probes answered in time.
    pub answered: u32,
    /// First answers that came after the timeout.
    pub late: u32,
    /// Further answers to an already answered probe.
    pub duplicates: u32,
    /// Received packets that answer none of our probes.
    pub foreign: u64,
    /// Received bytes the decoder rejected.
    pub undecodable: u64,
    /// Packets not kept because [`RECORD_LIMIT`] was reached.
    pub unrecorded: u64,
}

/// The result of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub target: IpAddr,
    pub source: IpAddr,
    pub protocol: TraceProtocol,
    pub timeout: Duration,
    pub started_at: Instant,
    pub finished_at: Instant,
    pub rounds: Vec<Round>,
    /// Smallest TTL at which the target's address answered (echo reply,
    /// SYN-ACK, RST, port unreachable...). A middlebox answering in the
    /// target's name sets it too: see [`super::interpret`].
    pub target_hop: Option<u8>,
    /// Hops `first_ttl..=target_hop` (or up to the highest answering TTL
    /// when the target did not answer).
    pub hops: Vec<HopStats>,
    /// Every probe sent and every answer received, in order: frame n is
    /// `packets[n − 1]`.
    pub packets: Vec<Recorded>,
    pub counters: TraceCounters,
}

impl Trace {
    pub fn reached(&self) -> bool {
        self.target_hop.is_some()
    }

    pub fn hop(&self, hop: u8) -> Option<&HopStats> {
        self.hops.iter().find(|h| h.hop == hop)
    }

    /// The highest hop that answered at all (in time or late).
    pub fn last_answering_hop(&self) -> Option<u8> {
        self.hops
            .iter()
            .rev()
            .find(|h| !h.is_silent())
            .map(|h| h.hop)
    }

    pub fn duration(&self) -> Duration {
        self.finished_at - self.started_at
    }
}

/// The state of a run between rounds, for live display.
pub struct Progress<'a> {
    /// Rounds sent so far.
    pub rounds_sent: u32,
    pub target_hop: Option<u8>,
    rounds: &'a [Round],
    first_ttl: u8,
    last_hop: Option<u8>,
    target: IpAddr,
}

impl Progress<'_> {
    /// Per-hop statistics so far (probes still awaited are not counted).
    pub fn hops(&self) -> Vec<HopStats> {
        match self.last_hop {
            Some(last) => hop_stats(self.rounds, self.first_ttl, last, self.target),
            None => Vec::new(),
        }
    }
}

enum Until {
    Time(Instant),
    /// No probe awaited.
    Idle,
    /// Fewer than `max_inflight` probes awaited.
    Slot,
}

/// The tracer. `run` consumes it and returns the [`Trace`].
pub struct Tracer<N: Network, C: Clock> {
    config: TraceConfig,
    net: N,
    clock: C,
    matcher: Option<Matcher>,
    rounds: Vec<Round>,
    /// (deadline, round, ttl) of sent probes, in send order (so in deadline
    /// order); answered ones are skipped when they reach the front.
    pending: VecDeque<(Instant, u32, u8)>,
    inflight: usize,
    target_ttl: Option<u8>,
    highest_answered: Option<u8>,
    packets: Vec<Recorded>,
    counters: TraceCounters,
    /// Set from outside (SIGINT): no further round starts; the probes in
    /// flight are still awaited, and the trace is what was measured.
    stop: Option<Arc<AtomicBool>>,
}

/// How often a stoppable trace looks at its stop flag while it waits.
const STOP_POLL: Duration = Duration::from_millis(200);

impl<N: Network, C: Clock> Tracer<N, C> {
    /// Ends the trace early once `stop` is set (see the field).
    pub fn with_stop(mut self, stop: Option<Arc<AtomicBool>>) -> Self {
        self.stop = stop;
        self
    }

    fn stopped(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    pub fn new(config: TraceConfig, net: N, clock: C) -> Result<Tracer<N, C>, TraceError> {
        config.validate()?;
        Ok(Tracer {
            config,
            net,
            clock,
            matcher: None,
            rounds: Vec::new(),
            pending: VecDeque::new(),
            inflight: 0,
            target_ttl: None,
            highest_answered: None,
            packets: Vec::new(),
            counters: TraceCounters::default(),
            stop: None,
        })
    }

    pub fn run(self) -> Result<Trace, TraceError> {
        self.run_with(|_| {})
    }

    /// Runs, calling `on_round` before each round after the first and once
    /// at the end.
    pub fn run_with(
        mut self,
        mut on_round: impl FnMut(&Progress<'_>),
    ) -> Result<Trace, TraceError> {
        let cfg = self.config.clone();
        let source = match cfg.source {
            Some(s) => s,
            None => self.net.source_addr(cfg.target)?,
        };
        if source.is_ipv6() != cfg.target.is_ipv6() {
            return Err(TraceError::Config {
                field: "source",
                reason: "must be of the target's IP version",
            });
        }
        self.matcher = Some(Matcher {
            source,
            target: cfg.target,
            protocol: cfg.protocol,
            ident: cfg.ident,
            src_port: cfg.src_port,
        });
        let started_at = self.clock.now();
        let mut prev_sends_done = None;
        for r in 0..cfg.rounds {
            // On schedule, and never sooner than `interval` after the previous
            // round's last send (a round whose sends waited for free
            // `max_inflight` slots does not make the next ones catch up in a burst).
            let start = match prev_sends_done {
                Some(done) => {
                    (started_at + cfg.interval.saturating_mul(r)).max(done + cfg.interval)
                }
                None => started_at,
            };
            self.wait(Until::Time(start))?;
            if self.stopped() {
                break;
            }
            if r > 0 {
                on_round(&self.progress());
            }
            self.send_round(r, source)?;
            prev_sends_done = Some(self.clock.now());
        }
        self.wait(Until::Idle)?;
        on_round(&self.progress());
        let finished_at = self.clock.now();
        let target_hop = self.target_ttl;
        let hops = match self.last_hop() {
            Some(last) => hop_stats(&self.rounds, cfg.first_ttl, last, cfg.target),
            None => Vec::new(),
        };
        Ok(Trace {
            target: cfg.target,
            source,
            protocol: cfg.protocol,
            timeout: cfg.timeout,
            started_at,
            finished_at,
            rounds: self.rounds,
            target_hop,
            hops,
            packets: self.packets,
            counters: self.counters,
        })
    }

    fn last_hop(&self) -> Option<u8> {
        self.target_ttl.or(self.highest_answered)
    }

    fn progress(&self) -> Progress<'_> {
        Progress {
            rounds_sent: self.rounds.len() as u32,
            target_hop: self.target_ttl,
            rounds: &self.rounds,
            first_ttl: self.config.first_ttl,
            last_hop: self.last_hop(),
            target: self.config.target,
        }
    }

    /// Highest TTL to probe now in round `r`.
    fn ttl_limit(&self, r: u32) -> u8 {
        if let Some(t) = self.target_ttl {
            return t;
        }
        if r == 0 {
            return self.config.max_ttl;
        }
        self.highest_answered
            .unwrap_or(self.config.first_ttl - 1)
            .saturating_add(self.config.max_unknown)
            .min(self.config.max_ttl)
    }

    fn send_round(&mut self, r: u32, source: IpAddr) -> Result<(), TraceError> {
        let now = self.clock.now();
        self.rounds.push(Round {
            index: r,
            started_at: now,
            probes: vec![ProbeStatus::NotSent; usize::from(self.config.max_ttl)],
        });
        let (mut attempted, mut first_error) = (0u32, None);
        let mut failed = 0u32;
        for ttl in self.config.first_ttl..=self.config.max_ttl {
            if ttl <= self.ttl_limit(r) && self.inflight >= self.config.max_inflight {
                self.wait(Until::Slot)?;
            }
            // Checked after the wait: the target may have answered meanwhile.
            if ttl > self.ttl_limit(r) {
                self.rounds[r as usize].probes[usize::from(ttl - 1)] = ProbeStatus::Skipped;
                continue;
            }
            attempted += 1;
            if let Some(e) = self.send_probe(r, ttl, source)? {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
        // Keep memory to the TTLs this round probed.
        let probes = &mut self.rounds[r as usize].probes;
        while matches!(
            probes.last(),
            Some(ProbeStatus::Skipped | ProbeStatus::NotSent)
        ) {
            probes.pop();
        }
        probes.shrink_to_fit();
        match first_error {
            Some(e) if failed == attempted => Err(TraceError::SendFailed {
                round: r,
                source: Box::new(e),
            }),
            _ => Ok(()),
        }
    }

    /// Sends one probe; `Ok(Some(e))` when the network refused it.
    fn send_probe(
        &mut self,
        r: u32,
        ttl: u8,
        source: IpAddr,
    ) -> Result<Option<TraceError>, TraceError> {
        let cfg = &self.config;
        let seq = probe_seq(r, ttl);
        let kind = match cfg.protocol {
            TraceProtocol::Icmp => ProbeKind::IcmpEcho,
            TraceProtocol::Tcp { port } => ProbeKind::TcpSyn {
                src_port: cfg.src_port,
                dst_port: port,
                mss: cfg.mss(),
            },
            TraceProtocol::Udp { port } => ProbeKind::Udp {
                src_port: cfg.src_port,
                dst_port: port,
            },
        };
        let emitted = emit(&ProbeSpec {
            src: source,
            dst: cfg.target,
            ttl,
            ident: cfg.ident,
            seq,
            kind,
        })?;
        let now = self.clock.now();
        let probe = Probe {
            seq,
            round: r,
            ttl,
            protocol: cfg.protocol,
            sent_at: now,
            frame: self.next_frame(),
        };
        let request = ProbeRequest {
            probe,
            dst: cfg.target,
            ttl,
            bytes: emitted.bytes,
            ip_header_len: emitted.ip_header_len,
        };
        let slot = &mut self.rounds[r as usize].probes[usize::from(ttl - 1)];
        match self.net.send(&request) {
            Ok(()) => {
                *slot = ProbeStatus::Awaited(probe);
                self.inflight += 1;
                self.pending
                    .push_back((probe.deadline(self.config.timeout), r, ttl));
                self.counters.sent += 1;
                self.record(Direction::Out, now, request.bytes);
                Ok(None)
            }
            Err(e) => {
                *slot = ProbeStatus::Failed(Probe {
                    frame: None,
                    ..probe
                });
                self.counters.send_failures += 1;
                Ok(Some(e))
            }
        }
    }

    fn next_frame(&self) -> Option<u64> {
        (self.packets.len() < RECORD_LIMIT).then(|| self.packets.len() as u64 + 1)
    }

    fn record(&mut self, direction: Direction, at: Instant, bytes: Vec<u8>) {
        if self.packets.len() < RECORD_LIMIT {
            self.packets.push(Recorded {
                direction,
                at,
                bytes,
            });
        } else {
            self.counters.unrecorded += 1;
        }
    }

    /// Receives and handles packets until `until` holds. Each pass either
    /// handles a packet or lets time reach the next probe deadline or the
    /// wait's end, so the loop ends by time; a network that returns early
    /// without time passing ends it with [`TraceError::Stalled`].
    fn wait(&mut self, until: Until) -> Result<(), TraceError> {
        let mut stalls = 0u32;
        loop {
            let now = self.clock.now();
            self.expire(now);
            let end = match until {
                Until::Time(t) if now >= t || self.stopped() => return Ok(()),
                Until::Time(t) => t,
                Until::Idle if self.inflight == 0 => return Ok(()),
                Until::Slot if self.inflight < self.config.max_inflight => return Ok(()),
                Until::Idle | Until::Slot => Instant::MAX,
            };
            // Wake at the next deadline, to expire that probe (and, when
            // the trace can be stopped, often enough to notice).
            let mut wake = self.next_deadline().map_or(end, |d| d.min(end));
            if self.stop.is_some() {
                wake = wake.min(now + STOP_POLL);
            }
            if wake == Instant::MAX {
                // Unreachable while the counters are consistent: waiting for
                // probes with no deadline would never end.
                debug_assert!(false, "wait without a deadline");
                return Ok(());
            }
            match self.net.recv(wake)? {
                Some(packet) => {
                    stalls = 0;
                    self.handle(packet);
                }
                None if self.clock.now() < wake => {
                    stalls += 1;
                    if stalls >= MAX_STALLS {
                        return Err(TraceError::Stalled { times: stalls });
                    }
                }
                None => stalls = 0,
            }
        }
    }

    /// Deadline of the oldest awaited probe (dropping answered ones from the front).
    fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&(deadline, r, ttl)) = self.pending.front() {
            if matches!(
                self.rounds[r as usize].probes[usize::from(ttl - 1)],
                ProbeStatus::Awaited(_)
            ) {
                return Some(deadline);
            }
            self.pending.pop_front();
        }
        None
    }

    /// Awaited probes whose deadline has come become lost (an answer
    /// received by the deadline but handled later still completes them).
    fn expire(&mut self, now: Instant) {
        while let Some(&(deadline, r, ttl)) = self.pending.front() {
            if deadline > now {
                break;
            }
            self.pending.pop_front();
            let slot = &mut self.rounds[r as usize].probes[usize::from(ttl - 1)];
            if let ProbeStatus::Awaited(p) = *slot {
                *slot = ProbeStatus::Lost(p.lost());
                self.inflight -= 1;
            }
        }
    }

    /// The (round, ttl) of a sent probe a reply names.
    fn locate(&self, probe: ProbeRef) -> Option<(u32, u8)> {
        let current = u32::try_from(self.rounds.len().checked_sub(1)?).ok()?;
        let (r, ttl) = match probe {
            ProbeRef::Seq(seq) => (round_of_seq(seq, current)?, ttl_of_seq(seq)),
            ProbeRef::SeqLow(low) => {
                let ttl = (low & 0x3f) + 1;
                if ttl > self.config.max_ttl {
                    return None;
                }
                let slot_bits = u16::from(low >> 6);
                let r = (0..4)
                    .filter_map(|back| current.checked_sub(back))
                    .find(|&r| (probe_seq(r, ttl) >> 6) & 3 == slot_bits)?;
                (r, ttl)
            }
        };
        if ttl > self.config.max_ttl {
            return None;
        }
        let sent = self.rounds[r as usize].status(ttl)?.probe()?;
        (sent.seq == probe_seq(r, ttl)).then_some((r, ttl))
    }

    fn handle(&mut self, packet: RecvPacket) {
        let Some(matcher) = self.matcher else {
            return;
        };
        let frame = self.next_frame();
        let ts_ns = i64::try_from(packet.received_at.as_nanos()).unwrap_or(i64::MAX);
        let decoded = match decode_ip(frame.unwrap_or(0), ts_ns, Direction::In, &packet.bytes) {
            Ok(d) => d.packet,
            Err(_) => {
                self.counters.undecodable += 1;
                return;
            }
        };
        let Some((probe_ref, kind)) = matcher.classify(&decoded, &packet.bytes) else {
            self.counters.foreign += 1;
            return;
        };
        let Some((r, ttl)) = self.locate(probe_ref) else {
            self.counters.foreign += 1;
            return;
        };
        let reply = Reply {
            from: decoded.src,
            kind,
            ttl: decoded.ttl,
            ip_id: decoded.ip_id,
            received_at: packet.received_at,
            frame,
            probe_seq: probe_seq(r, ttl),
            quoted_ttl: decoded.icmp().and_then(|i| i.quoted).map(|q| q.ttl),
            tcp: decoded.tcp().copied(),
        };
        let timeout = self.config.timeout;
        let in_time = |p: &Probe| reply.received_at <= p.deadline(timeout);
        let slot = &mut self.rounds[r as usize].probes[usize::from(ttl - 1)];
        let first_answer = match slot {
            ProbeStatus::Awaited(p) => {
                let p = *p;
                self.inflight -= 1;
                if in_time(&p) {
                    *slot = ProbeStatus::Complete(p.complete(reply));
                    self.counters.answered += 1;
                } else {
                    let mut lost = p.lost();
                    lost.late = Some(reply);
                    *slot = ProbeStatus::Lost(lost);
                    self.counters.late += 1;
                }
                true
            }
            // Expired before this packet was handled, but it arrived in time.
            ProbeStatus::Lost(l) if in_time(&l.probe) && l.late.is_none() => {
                *slot = ProbeStatus::Complete(l.probe.complete(reply));
                self.counters.answered += 1;
                true
            }
            ProbeStatus::Lost(l) if l.late.is_none() => {
                l.late = Some(reply);
                self.counters.late += 1;
                true
            }
            ProbeStatus::Lost(l) => {
                l.duplicates += 1;
                self.counters.duplicates += 1;
                false
            }
            ProbeStatus::Complete(c) => {
                c.duplicates += 1;
                self.counters.duplicates += 1;
                false
            }
            ProbeStatus::NotSent | ProbeStatus::Skipped | ProbeStatus::Failed(_) => {
                self.counters.foreign += 1;
                return;
            }
        };
        self.record(Direction::In, packet.received_at, packet.bytes);
        if first_answer {
            self.highest_answered = self.highest_answered.max(Some(ttl));
            if reply.is_target_answer(self.config.target) && self.target_ttl.is_none_or(|t| ttl < t)
            {
                self.target_ttl = Some(ttl);
            }
        }
    }
}
