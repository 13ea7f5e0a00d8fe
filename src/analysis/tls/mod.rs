//! TLS handshake evidence from the TCP byte streams of one flow.
//!
//! A [`TlsTracker`] is fed every TCP segment of one connection to the broker.
//! It puts each direction's bytes back in order (`reassembly`), reads TLS
//! records and handshake messages with tls-parser (`handshake`) and
//! certificates with x509-parser (`cert`), and says at the end what the
//! handshake got to ([`TlsObservation`]): who sent the last message, which
//! certificates the server presented, which alerts flew, and whether the byte
//! streams themselves are trustworthy (holes, overlaps with different bytes).
//!
//! Memory is bounded and short-lived. Per direction: at most 64 KiB of
//! contiguous stream, 32 KiB (64 pieces) of out-of-order data and one
//! handshake message being collected (itself within the 64 KiB); all freed as
//! soon as that direction's handshake is over, it stops being parseable, or
//! the flow turns out not to be TLS. From then on a segment costs a few
//! comparisons and no allocation.

mod cert;
mod handshake;
mod reassembly;
mod shared;
#[cfg(test)]
mod tests;

pub use cert::{CertSummary, UndecodableCert};
pub use reassembly::MAX_STREAM;
pub(crate) use {cert::decode as decode_certificate, handshake::alert_name};

use crate::packet::TcpInfo;
use crate::packet::http_connect;
use handshake::{RecordParser, State};
use reassembly::Reassembler;
use serde::Serialize;
use std::borrow::Cow;
use std::sync::Arc;

/// Which end of the connection sent something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The connector (the side that sent the SYN).
    Client,
    /// The broker, or whatever answers in its name.
    Server,
}

/// The segment that completed something: its frame (and time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FrameRef {
    pub frame: u64,
    #[serde(skip)]
    pub ts_ns: i64,
}

/// A handshake step, as far as it is visible on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HandshakeStep {
    ClientHello,
    HelloRetryRequest,
    ServerHello,
    Certificate,
    CertificateStatus,
    ServerKeyExchange,
    CertificateRequest,
    ServerHelloDone,
    ClientKeyExchange,
    CertificateVerify,
    NewSessionTicket,
    /// Another handshake message in clear.
    OtherHandshake,
    ChangeCipherSpec,
    /// An encrypted handshake record: the Finished of TLS ≤ 1.2, or (TLS 1.3)
    /// the server's encrypted flight / the client's first encrypted record.
    EncryptedHandshake,
    ApplicationData,
}

/// The last handshake step seen, and who sent it: where the exchange stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LastStep {
    pub step: HandshakeStep,
    pub from: Side,
    pub frame: u64,
}

/// Why a direction is no longer parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// Encrypted records from here on: nothing more to read.
    HandshakeOver,
    /// This side sent a fatal alert or close_notify.
    Alert,
    /// The stream (this side's or the other's) does not start with a TLS record.
    NotTls,
    /// The capture started mid-stream and the first bytes are not a record
    /// boundary: nothing can be said.
    MidStream,
    /// Bytes are missing (a hole in the sequence space that was not filled
    /// within the out-of-order budget).
    Gap,
    /// The handshake is larger than the window kept.
    TooLarge,
    /// A record header that is not TLS after valid records.
    Malformed,
    /// An explicit proxy refused the HTTP CONNECT tunnel (a status other
    /// than 2xx): no TLS follows.
    ProxyRefused,
}

/// Two copies of the same stream bytes that differ (first copy kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct OverlapConflict {
    /// Frame of the later, different copy.
    pub frame: u64,
    /// Stream offset (0 = first byte after the SYN) and length of the span.
    pub offset: u64,
    pub len: u64,
}

/// Missing stream bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// Stream offset where the contiguous bytes end.
    pub offset: u64,
    /// Size of the hole, when the bytes after it arrived and were kept.
    pub missing_bytes: Option<u64>,
    /// Frame of the first segment seen beyond the hole.
    pub next_frame: Option<u64>,
}

/// How trustworthy one direction's byte stream is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct StreamFacts {
    /// The SYN (or SYN-ACK) was seen: offsets count from the true start.
    pub syn_seen: bool,
    /// Contiguous bytes reassembled (handshake window only).
    pub bytes: u64,
    /// Bytes received more than once (while buffering).
    pub retransmitted_bytes: u64,
    /// Overlaps whose bytes differ from the first copy: an injection signal.
    pub conflicting_overlaps: Vec<OverlapConflict>,
    pub conflicting_overlaps_total: u32,
    /// Segments cut by the capture's snapshot length.
    pub truncated_segments: u32,
    /// Where parsing waits on (or gave up at) missing bytes.
    pub gap: Option<Gap>,
    pub stopped: Option<StopReason>,
    /// Bytes after the last complete record (a record cut by the end of the
    /// capture, or waiting behind a gap).
    pub unparsed_bytes: u64,
}

/// The first bytes of a stream that is not TLS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NonTlsBytes {
    pub from: Side,
    pub frame: u64,
    /// Up to 32 bytes, printable ASCII kept, others as `\xNN`.
    pub preview: String,
}

/// The client's first ClientHello.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClientHelloInfo {
    pub frame: u64,
    pub sni: Option<String>,
    /// Versions offered (supported_versions, GREASE left out), or the legacy
    /// version when the extension is absent: `TLS 1.3`, `TLS 1.2`, ...
    /// (Shared: one list per distinct extension in the capture.)
    pub offered_versions: Arc<[String]>,
    /// The supported_versions extension offers TLS 1.3 (0x0304, or a
    /// draft 0x7fXX): only then is a ServerHello's downgrade sentinel a
    /// sign of tampering (RFC 8446 §4.1.3).
    pub offers_tls13: bool,
    pub cipher_count: usize,
    /// ALPN protocols offered (first few).
    pub alpn: Arc<[String]>,
}

/// A TLS 1.3 server's downgrade sentinel (RFC 8446 §4.1.3): the server
/// supports TLS 1.3 but was offered (or chose) less.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DowngradeSentinel {
    /// `DOWNGRD\x01`: TLS 1.2 negotiated.
    Tls12,
    /// `DOWNGRD\x00`: TLS 1.1 or below negotiated.
    Tls11OrBelow,
}

/// The ServerHello (the real one, not a HelloRetryRequest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerHelloInfo {
    pub frame: u64,
    /// Selected version (supported_versions for TLS 1.3), e.g. `TLS 1.2`.
    pub version: Cow<'static, str>,
    pub version_code: u16,
    pub cipher_suite: u16,
    /// IANA-style name when tls-parser knows it.
    pub cipher_name: Option<&'static str>,
    pub downgrade_sentinel: Option<DowngradeSentinel>,
}

/// A TLS alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlertInfo {
    pub frame: u64,
    pub from: Side,
    /// Level (1 warning, 2 fatal) and description, when in clear.
    pub level: Option<u8>,
    pub description: Option<u8>,
    /// `unknown_ca`, `bad_certificate`, ... when the number is known.
    pub description_name: Option<String>,
    /// The record is encrypted (sent after ChangeCipherSpec): only its
    /// existence is known.
    pub encrypted: bool,
    /// IP TTL (hop limit) and IP ID of the segment that completed the
    /// record, when the flow gave them ([`TlsTracker::ip_fields`]): whether
    /// the alert comes from the server's own hop.
    pub ttl: Option<u8>,
    pub ip_id: Option<u16>,
}

/// The HTTP CONNECT tunnel the TLS travels in: a connector behind an
/// explicit proxy asks it for `CONNECT broker:443`, gets `200`, then speaks
/// TLS to the broker through it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectTunnel {
    /// Frame of the CONNECT request.
    pub request_frame: u64,
    /// The target as written in the request (`broker:443`).
    pub target: String,
    pub host: String,
    pub port: u16,
    /// The proxy's status line, once its head is complete.
    pub answer: Option<ProxyAnswer>,
}

/// A proxy's answer to CONNECT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProxyAnswer {
    pub frame: u64,
    pub status: u16,
    /// As sent, e.g. `HTTP/1.1 403 Forbidden` (bounded).
    pub status_line: String,
}

/// A client certificate (mutual TLS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ClientCertificate {
    pub frame: u64,
    pub count: usize,
}

/// What the TLS handshake of one flow showed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct TlsObservation {
    /// The flow is an HTTP CONNECT tunnel through an explicit proxy: the
    /// TLS below is the tunnel's (after the CONNECT request and the proxy's
    /// answer).
    pub connect: Option<Box<ConnectTunnel>>,
    /// A side's first bytes are not a TLS record (the flow is not TLS, or
    /// something answered in another protocol): see `non_tls`.
    pub not_tls: bool,
    pub non_tls: Option<NonTlsBytes>,
    pub client_hello: Option<ClientHelloInfo>,
    /// ClientHellos seen (2 after a HelloRetryRequest).
    pub client_hellos: u32,
    pub hello_retry_request: Option<FrameRef>,
    pub server_hello: Option<ServerHelloInfo>,
    /// TLS 1.3: the certificates travel encrypted and cannot be shown.
    pub certificates_encrypted: bool,
    /// The server's Certificate message, when in clear.
    pub certificate: Option<FrameRef>,
    /// Certificates in the server's chain as sent.
    pub certificates_total: usize,
    /// Decoded certificates, in chain order (leaf first); at most 10.
    /// (Shared by every connection that showed the same chain.)
    pub certificates: Arc<[CertSummary]>,
    pub undecodable_certificates: Arc<[UndecodableCert]>,
    pub certificate_request: Option<FrameRef>,
    pub client_certificate: Option<ClientCertificate>,
    pub server_hello_done: Option<FrameRef>,
    /// Alerts in record order per side (at most 8).
    pub alerts: Vec<AlertInfo>,
    /// TLS 1.3: after the server's encrypted flight, the client's first
    /// encrypted record was 19 bytes (2-byte alert + type + 16-byte tag, too
    /// short for a Finished) and the connection then closed: the client most
    /// likely rejected the server (its certificate?). Frame of that record.
    pub likely_encrypted_alert: Option<FrameRef>,
    pub client_change_cipher_spec: Option<FrameRef>,
    pub server_change_cipher_spec: Option<FrameRef>,
    /// First encrypted handshake record per side (see [`HandshakeStep::EncryptedHandshake`]).
    pub client_encrypted_handshake: Option<FrameRef>,
    pub server_encrypted_handshake: Option<FrameRef>,
    /// First application data record per side (TLS ≤ 1.2; under TLS 1.3 it
    /// cannot be told from encrypted handshake records).
    pub client_application_data: Option<FrameRef>,
    pub server_application_data: Option<FrameRef>,
    /// Both sides finished the handshake (TLS 1.3: inferred, the client
    /// answered the server's encrypted flight with a Finished-sized record).
    pub handshake_complete: bool,
    /// Where the exchange stopped.
    pub last_step: Option<LastStep>,
    /// Frame of the last client / server segment carrying payload (any, also
    /// after the handshake): what a reset or FIN answers.
    pub last_client_data_frame: Option<u64>,
    pub last_server_data_frame: Option<u64>,
    pub client_stream: StreamFacts,
    pub server_stream: StreamFacts,
    /// Messages tls-parser could not read (first few).
    pub parse_errors: Vec<String>,
}

/// One direction: its bytes and where parsing stands.
#[derive(Clone, Debug, Default)]
struct Dir {
    reasm: Reassembler,
    parser: RecordParser,
}

impl Dir {
    /// Frees the buffers of a direction that stopped parsing.
    fn release_if_stopped(&mut self) {
        if self.parser.stopped.is_some() && !self.reasm.released() {
            let left = self.reasm.data().len().saturating_sub(self.parser.pos);
            self.parser.unparsed_at_stop = left as u64;
            self.reasm.release();
            self.parser.release();
        }
    }
}

/// TLS evidence of one TCP connection, fed segment by segment.
#[derive(Clone, Debug)]
pub struct TlsTracker {
    /// `[client, server]`.
    dirs: [Dir; 2],
    state: State,
    /// Some direction still parses; false = every segment is (nearly) free.
    active: bool,
    /// HTTP CONNECT heads still to skip, `[client, server]` (all false when
    /// the flow is not a tunnel).
    head_pending: [bool; 2],
}

impl Default for TlsTracker {
    fn default() -> TlsTracker {
        TlsTracker::new()
    }
}

impl TlsTracker {
    pub fn new() -> TlsTracker {
        TlsTracker {
            dirs: [Dir::default(), Dir::default()],
            state: State::default(),
            active: true,
            head_pending: [false; 2],
        }
    }

    /// The flow is an HTTP CONNECT to `target` (read from its first client
    /// segment, frame `request_frame`): the client's stream starts with the
    /// request head and the server's with the proxy's answer; TLS follows
    /// both when the answer is 2xx.
    pub fn expect_connect(&mut self, request_frame: u64, target: &http_connect::ConnectTarget) {
        self.head_pending = [true, true];
        self.state.obs.connect = Some(Box::new(ConnectTunnel {
            request_frame,
            target: target.authority.clone(),
            host: target.host.clone(),
            port: target.port,
            answer: None,
        }));
    }

    /// Skips the HTTP CONNECT head at the start of `side`'s stream: true
    /// once TLS parsing can go on (the head is complete and, for the
    /// proxy's answer, 2xx). Waits at most [`http_connect::MAX_HEAD`] bytes.
    fn skip_head(&mut self, side: Side, at: FrameRef) -> bool {
        let i = side as usize;
        let dir = &mut self.dirs[i];
        let data = dir.reasm.data();
        let len = match http_connect::head_end(data) {
            http_connect::HeadEnd::Incomplete if !dir.reasm.released() => return false,
            http_connect::HeadEnd::At(len) => len,
            _ => {
                self.not_http(side, at);
                return false;
            }
        };
        if side == Side::Server {
            let Some(status) = http_connect::status_line(data) else {
                self.not_http(side, at);
                return false;
            };
            let ok = status.is_success();
            if let Some(c) = self.state.obs.connect.as_deref_mut() {
                c.answer = Some(ProxyAnswer {
                    frame: at.frame,
                    status: status.status,
                    status_line: status.line,
                });
            }
            if !ok {
                for d in &mut self.dirs {
                    d.parser.stop(StopReason::ProxyRefused);
                }
                return false;
            }
        }
        let dir = &mut self.dirs[i];
        dir.parser.start = len;
        dir.parser.pos = len;
        self.head_pending[i] = false;
        true
    }

    /// A tunnel's head that is not HTTP (or too long to wait for).
    fn not_http(&mut self, side: Side, at: FrameRef) {
        let data = self.dirs[side as usize].reasm.data();
        self.state.obs.not_tls = true;
        if self.state.obs.non_tls.is_none() {
            self.state.obs.non_tls = Some(NonTlsBytes {
                from: side,
                frame: at.frame,
                preview: handshake::preview(data),
            });
        }
        self.dirs[side as usize].parser.stop(StopReason::NotTls);
    }

    /// One TCP segment. `from_client` = sent by the connector. `payload` =
    /// captured TCP payload (may be shorter than `tcp.payload_len` when the
    /// snapshot cut it: then bytes are missing → a gap).
    pub fn on_segment(
        &mut self,
        from_client: bool,
        frame: u64,
        ts_ns: i64,
        tcp: &TcpInfo,
        payload: &[u8],
    ) {
        let at = FrameRef { frame, ts_ns };
        // A reset's payload is not stream data (some stacks put text there).
        let carries_data = tcp.payload_len > 0 && !tcp.flags.rst();
        if carries_data {
            let last = if from_client {
                &mut self.state.obs.last_client_data_frame
            } else {
                &mut self.state.obs.last_server_data_frame
            };
            *last = Some(frame);
        }
        if self.active {
            self.feed(from_client, at, tcp, payload, carries_data);
        }
        if self.state.alert_candidate.is_some() {
            self.follow_alert_candidate(from_client, tcp, carries_data);
        }
    }

    fn feed(&mut self, from_client: bool, at: FrameRef, tcp: &TcpInfo, payload: &[u8], data: bool) {
        let side = if from_client {
            Side::Client
        } else {
            Side::Server
        };
        let dir = &mut self.dirs[side as usize];
        if dir.parser.stopped.is_some() {
            return;
        }
        if tcp.flags.syn() {
            dir.reasm.syn(tcp.seq);
        }
        if !data {
            return;
        }
        let want = usize::try_from(tcp.payload_len).unwrap_or(usize::MAX);
        if payload.len() < want {
            dir.reasm.truncated = dir.reasm.truncated.saturating_add(1);
        }
        let bytes = &payload[..payload.len().min(want)];
        // SYN data (TCP Fast Open) starts one after the SYN's number.
        let seq = if tcp.flags.syn() {
            tcp.seq.wrapping_add(1)
        } else {
            tcp.seq
        };
        dir.reasm.insert(seq, bytes, at.frame);
        let tunnel = self.state.obs.connect.is_some();
        if !self.head_pending[side as usize] || self.skip_head(side, at) {
            let dir = &mut self.dirs[side as usize];
            // A tunnel's TLS starts where its HTTP head ends: a known
            // boundary, as after a SYN.
            let syn_seen = dir.reasm.syn_seen || tunnel;
            handshake::parse(
                side,
                dir.reasm.data(),
                syn_seen,
                &mut dir.parser,
                &mut self.state,
                at,
            );
        }
        let dir = &mut self.dirs[side as usize];
        if dir.reasm.lost.is_some() {
            // Bytes were dropped beyond a hole: the stream cannot be
            // completed within the budget, stop at the hole.
            dir.parser.stop(StopReason::Gap);
        }
        let not_tls = self.state.obs.not_tls;
        for d in &mut self.dirs {
            if not_tls {
                d.parser.stop(StopReason::NotTls);
            }
            d.release_if_stopped();
        }
        self.active = self.dirs.iter().any(|d| d.parser.stopped.is_none());
    }

    /// TLS 1.3 heuristic, after the client's 19-byte first encrypted record:
    /// more client data cancels it, a FIN or reset (either side) confirms it.
    fn follow_alert_candidate(&mut self, from_client: bool, tcp: &TcpInfo, data: bool) {
        let Some((at, end)) = self.state.alert_candidate else {
            return;
        };
        if from_client && data {
            let start = self.dirs[Side::Client as usize].reasm.offset_of(tcp.seq);
            let new_end = start.map(|s| s + i64::from(tcp.payload_len));
            if new_end.is_some_and(|e| e > end as i64) {
                self.state.alert_candidate = None;
                return;
            }
        }
        if tcp.flags.fin() || tcp.flags.rst() {
            self.state.obs.likely_encrypted_alert = Some(at);
            self.state.alert_candidate = None;
        }
    }

    /// Whether later segments can still change the evidence (beyond the
    /// last data frames, which the flow keeps itself): false once both
    /// directions stopped parsing and no TLS 1.3 alert guess is pending.
    /// The flow then stops handing segments over, and the tracker's memory
    /// is not touched again per packet.
    pub fn listening(&self) -> bool {
        self.active || self.state.alert_candidate.is_some()
    }

    /// The IP TTL and IP ID of the segment about to be given to
    /// [`TlsTracker::on_segment`] (kept with the alerts it completes).
    pub fn ip_fields(&mut self, ttl: u8, ip_id: Option<u16>) {
        self.state.seg_ip = Some((ttl, ip_id));
    }

    /// A SYN (`from_client`) or SYN-ACK seen before the tracker was created
    /// (trackers are created with a connection's first data).
    pub fn syn(&mut self, from_client: bool, seq: u32) {
        let side = if from_client {
            Side::Client
        } else {
            Side::Server
        };
        self.dirs[side as usize].reasm.syn(seq);
    }

    /// What the handshake showed, the tracker being done with.
    pub fn into_observation(self: Box<Self>) -> Box<TlsObservation> {
        let (client_stream, server_stream, handshake_complete) = self.conclusions();
        let mut obs = self.state.obs;
        obs.client_stream = client_stream;
        obs.server_stream = server_stream;
        obs.handshake_complete = handshake_complete;
        obs
    }

    /// What the handshake showed so far (the tracker going on).
    #[cfg(test)]
    pub fn observation(&self) -> TlsObservation {
        let (client_stream, server_stream, handshake_complete) = self.conclusions();
        TlsObservation {
            client_stream,
            server_stream,
            handshake_complete,
            ..(*self.state.obs).clone()
        }
    }

    /// What the observation adds to the facts collected: the streams'
    /// facts and whether the handshake completed.
    fn conclusions(&self) -> (StreamFacts, StreamFacts, bool) {
        (
            facts(&self.dirs[Side::Client as usize]),
            facts(&self.dirs[Side::Server as usize]),
            self.state.handshake_complete(),
        )
    }
}

/// One side's bytes as a socket delivered them, read from the first byte by
/// the same record and message reader as a capture's reassembled streams
/// (there is no TCP to put back in order). This is how `pathproof check`
/// reads what the server sent to its live handshake.
#[derive(Clone, Debug)]
pub struct StreamReading {
    /// What the reader found (as for a capture's flow, from this side only).
    pub observation: TlsObservation,
    /// The bytes stopped being TLS records: not TLS from the first byte, or
    /// a record header that is not TLS after valid records.
    pub not_tls: bool,
    /// The bytes end inside a record or handshake message whose header
    /// arrived: its step, and whether that message itself is whole.
    pub cut_short: Option<(HandshakeStep, bool)>,
}

impl StreamReading {
    /// The last step whose header arrived, and whether its message (or
    /// encrypted record) arrived whole.
    pub fn last_step(&self) -> Option<(HandshakeStep, bool)> {
        self.cut_short
            .or_else(|| self.observation.last_step.map(|l| (l.step, true)))
    }
}

/// Reads `bytes`, sent by `side` from the first byte of its stream on
/// (at most [`MAX_STREAM`] bytes are read, as for a capture). Encrypted
/// records after the handshake are framed too, so that a cut in the
/// server's encrypted flight shows.
pub fn read_stream(side: Side, bytes: &[u8]) -> StreamReading {
    let bytes = &bytes[..bytes.len().min(MAX_STREAM)];
    let (state, parser, cut) = handshake::read_stream(side, bytes);
    StreamReading {
        not_tls: state.obs.not_tls || parser.stopped == Some(StopReason::Malformed),
        cut_short: cut.map(|c| (c.step, c.message_complete)),
        observation: *state.obs,
    }
}

impl TlsObservation {
    /// The handshake completed without an alert (nothing to report).
    pub fn completed_cleanly(&self) -> bool {
        self.handshake_complete && self.alerts.is_empty()
    }
}

fn facts(d: &Dir) -> StreamFacts {
    let r = &d.reasm;
    let parsing = d.parser.stopped.is_none();
    StreamFacts {
        syn_seen: r.syn_seen,
        bytes: r.len(),
        retransmitted_bytes: r.retransmitted,
        conflicting_overlaps: r.conflicts.clone(),
        conflicting_overlaps_total: r.conflicts_total,
        truncated_segments: r.truncated,
        gap: match d.parser.stopped {
            None => r.gap(),
            Some(StopReason::Gap) => r.lost,
            Some(_) => None,
        },
        stopped: d.parser.stopped,
        unparsed_bytes: if parsing {
            (r.data().len() as u64).saturating_sub(d.parser.pos as u64)
        } else {
            d.parser.unparsed_at_stop
        },
    }
}

/// Cuts a string to at most `max` bytes on a character boundary, marking the cut.
pub(crate) fn bounded(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max.saturating_sub(3);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}
