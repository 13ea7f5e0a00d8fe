//! The live [`Network`]s: the only code that opens privileged sockets.
//!
//! # [`RawNetwork`] (root or `CAP_NET_RAW`)
//!
//! - **send**: one raw socket that takes the whole IP packet: IPv4
//!   `SOCK_RAW/IPPROTO_RAW` (implies `IP_HDRINCL`), IPv6
//!   `SOCK_RAW/IPPROTO_RAW` with `IPV6_HDRINCL`. The bytes are exactly what
//!   [`crate::packet::emit`] built; the kernel only fills the IPv4 total
//!   length and header checksum.
//! - **receive**: raw sockets bound to the probes' source address, so only
//!   packets addressed to it arrive: ICMP (time exceeded, unreachable,
//!   packet too big, echo replies, and UDP's port unreachable) and, in TCP
//!   mode, TCP (SYN-ACK, RST). IPv4 raw sockets deliver the IP header as
//!   received. IPv6 raw sockets never do, so the header is rebuilt from
//!   `recvmsg`: source from the sender address, destination from
//!   `IPV6_PKTINFO`, hop limit from `IPV6_HOPLIMIT` (the real one, so the
//!   TTL rules work on IPv6 too); traffic class and flow label are not
//!   delivered and are written as 0.
//! - **wait**: `poll` on the receive sockets until the engine's deadline.
//!
//! # [`PingNetwork`] (no privileges: ICMP only)
//!
//! Unprivileged ICMP datagram sockets (`SOCK_DGRAM/IPPROTO_ICMP[V6]`,
//! allowed to the groups in `net.ipv4.ping_group_range`), as tracepath and
//! mtr fall back to: the TTL is set per probe, echo replies arrive as
//! datagrams, and ICMP errors about our probes are read from the socket's
//! error queue (`IP_RECVERR` / `IPV6_RECVERR`), which gives the reporting
//! router's address, the ICMP type and code, and the part of our probe the
//! router quoted (from the echo header on). With `IP_RECVTTL` /
//! `IPV6_RECVHOPLIMIT` the reply TTL of echo replies *and* of errors is seen
//! too. The kernel sets the echo id (the socket's bound "port"; we bind it
//! to the trace ident) and the checksum.
//!
//! What it cannot see ([`PING_LIMITATIONS`]): TCP and UDP probes, the IP
//! headers of replies other than their source and TTL (IPv4 ID, flow label),
//! and the IP header of our probe as the router quoted it (its TTL). The
//! engine still needs IP packets, so each answer is rebuilt as one from what
//! the kernel reported, with the unseen fields set to 0; a `--save` file
//! from this mode holds these rebuilt packets.
//!
//! No `unsafe` here: socket options and control messages go through
//! socket2 and nix.

use super::net::{Clock, Instant, Network, ProbeRequest, RecvPacket, SystemClock};
use super::{IoOp, TraceError, TraceProtocol};
use etherparse::{Icmpv4Type, Icmpv6Type, IpNumber, Ipv4Header, Ipv6Header, PacketBuilder};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrIn6, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, SockAddr, SockFilter, Socket, Type};
use std::collections::VecDeque;
use std::io::{ErrorKind, IoSliceMut, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};

/// What the unprivileged ICMP fallback cannot see (shown in reports).
pub const PING_LIMITATIONS: &[&str] = &[
    "TCP and UDP probes need raw sockets: only ICMP echo probes are sent",
    "no TCP answers (SYN-ACK, RST), so no middlebox answering in the target's name can be seen",
    "ICMP errors come from the kernel's error queue: the reporting router, type, code and \
     reply TTL are seen, but not the reply's IPv4 ID nor the TTL of the probe as the router quoted it",
    "--save holds packets rebuilt from what the kernel reported (unseen header fields are 0)",
];

/// Receive buffer: the largest IP packet.
const BUF_LEN: usize = 65_536;
/// Packets read from one socket per wake-up, at most.
const DRAIN_MAX: usize = 256;
/// Kernel receive buffer asked for each receive socket.
const RCVBUF: usize = 1 << 20;

fn io_err(op: IoOp) -> impl FnOnce(std::io::Error) -> TraceError {
    move |source| TraceError::Io { op, source }
}

fn nix_err(op: IoOp) -> impl FnOnce(nix::errno::Errno) -> TraceError {
    move |e| TraceError::Io {
        op,
        source: std::io::Error::from(e),
    }
}

/// True when `e` says the process may not open the sockets it asked for
/// (no root / `CAP_NET_RAW`, or not in `ping_group_range`).
pub fn is_permission_error(e: &TraceError) -> bool {
    matches!(e, TraceError::Io { op: IoOp::Open, source } if source.kind() == ErrorKind::PermissionDenied)
}

/// The address packets to `target` leave from: the local address of a UDP
/// socket connected to it (the routing table's choice; nothing is sent).
pub fn source_for(target: IpAddr) -> Result<IpAddr, TraceError> {
    let op = IoOp::SourceAddr { target };
    let any: SocketAddr = if target.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(any).map_err(io_err(op))?;
    sock.connect((target, 33434)).map_err(io_err(op))?;
    Ok(sock.local_addr().map_err(io_err(op))?.ip())
}

fn domain(v6: bool) -> Domain {
    if v6 { Domain::IPV6 } else { Domain::IPV4 }
}

fn open(v6: bool, ty: Type, protocol: i32) -> Result<Socket, TraceError> {
    Socket::new(domain(v6), ty, Some(Protocol::from(protocol))).map_err(io_err(IoOp::Open))
}

/// Waits until one of `socks` is ready or the clock reaches `deadline`.
/// Returns the ready flags per socket, or `None` at the deadline.
fn wait_ready(
    socks: &[&Socket],
    clock: &SystemClock,
    deadline: Instant,
) -> Result<Option<Vec<PollFlags>>, TraceError> {
    loop {
        let now = clock.now();
        if now >= deadline {
            return Ok(None);
        }
        // Round up to whole milliseconds so a wake-up never comes early
        // (an early empty return would look like a stall to the engine).
        let left = deadline.saturating_since(now);
        let ms = left.as_micros().div_ceil(1000).min(60_000) as u16;
        let mut fds: Vec<PollFd<'_>> = socks
            .iter()
            .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {
                return Ok(Some(
                    fds.iter()
                        .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                        .collect(),
                ));
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(nix_err(IoOp::Recv)(e)),
        }
    }
}

fn would_block(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted)
}

/// An IPv6 header in front of `payload`, as a raw socket would have shown it.
fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
    let header = Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: u16::try_from(payload.len()).unwrap_or(u16::MAX),
        next_header: IpNumber(next),
        hop_limit,
        source: src.octets(),
        destination: dst.octets(),
    };
    let mut out = Vec::with_capacity(Ipv6Header::LEN + payload.len());
    header.write(&mut out).expect("writing to a Vec");
    out.extend_from_slice(payload);
    out
}

/// An IPv4 header (checksum computed) in front of `payload`.
fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload
        .len()
        .min(usize::from(u16::MAX) - Ipv4Header::MIN_LEN);
    let mut header = Ipv4Header::new(
        len as u16,
        ttl,
        IpNumber(protocol),
        src.octets(),
        dst.octets(),
    )
    .expect("length checked");
    header.header_checksum = header.calc_header_checksum();
    let mut out = Vec::with_capacity(Ipv4Header::MIN_LEN + len);
    header.write(&mut out).expect("writing to a Vec");
    out.extend_from_slice(&payload[..len]);
    out
}

// ------------------------------------------------------------------ raw

struct Receiver {
    sock: Socket,
    /// IP protocol of an IPv6 socket (its packets come without IP header).
    v6_protocol: Option<u8>,
}

/// Raw sockets: every probe protocol, both IP versions. Needs root or
/// `CAP_NET_RAW`.
pub struct RawNetwork {
    send: Socket,
    receivers: Vec<Receiver>,
    source: IpAddr,
    clock: SystemClock,
    queue: VecDeque<RecvPacket>,
    buf: Vec<u8>,
}

impl RawNetwork {
    /// Opens the sockets for probes of `protocol` to `target`, leaving from
    /// `source` (see [`source_for`]). `clock` must be the tracer's clock: it
    /// stamps received packets.
    pub fn open(
        target: IpAddr,
        source: IpAddr,
        protocol: TraceProtocol,
        clock: SystemClock,
    ) -> Result<RawNetwork, TraceError> {
        let v6 = target.is_ipv6();
        if source.is_ipv6() != v6 {
            return Err(TraceError::Config {
                field: "source",
                reason: "must be of the target's IP version",
            });
        }
        const IPPROTO_RAW: i32 = 255;
        let send = open(v6, Type::RAW, IPPROTO_RAW)?;
        if v6 {
            send.set_header_included_v6(true)
                .map_err(io_err(IoOp::Open))?;
        } else {
            send.set_header_included_v4(true)
                .map_err(io_err(IoOp::Open))?;
        }
        let mut protocols = vec![TraceProtocol::Icmp.ip_number(v6)];
        if matches!(protocol, TraceProtocol::Tcp { .. }) {
            protocols.push(6);
        }
        let mut receivers = Vec::new();
        for p in protocols {
            let sock = open(v6, Type::RAW, i32::from(p))?;
            sock.bind(&SockAddr::from(SocketAddr::new(source, 0)))
                .map_err(io_err(IoOp::Open))?;
            sock.set_nonblocking(true).map_err(io_err(IoOp::Open))?;
            // Best effort: a bigger buffer only helps under bursts.
            let _ = sock.set_recv_buffer_size(RCVBUF);
            if let (6, TraceProtocol::Tcp { port }) = (p, protocol) {
                // Best effort: without the filter, the engine drops the
                // host's other TCP traffic itself, at some CPU cost.
                let _ = sock.attach_filter(&tcp_answer_filter(target, port));
            }
            if v6 {
                sock.set_recv_hoplimit_v6(true)
                    .map_err(io_err(IoOp::Open))?;
                setsockopt(&sock, sockopt::Ipv6RecvPacketInfo, &true)
                    .map_err(nix_err(IoOp::Open))?;
            }
            receivers.push(Receiver {
                sock,
                v6_protocol: v6.then_some(p),
            });
        }
        Ok(RawNetwork {
            send,
            receivers,
            source,
            clock,
            queue: VecDeque::new(),
            buf: vec![0; BUF_LEN],
        })
    }

    /// Reads what socket `i` holds into the queue.
    fn drain(&mut self, i: usize) -> Result<(), TraceError> {
        for _ in 0..DRAIN_MAX {
            let r = &self.receivers[i];
            let bytes = match r.v6_protocol {
                None => match (&r.sock).read(&mut self.buf) {
                    Ok(n) => self.buf[..n].to_vec(),
                    Err(e) if would_block(&e) => return Ok(()),
                    Err(e) => return Err(io_err(IoOp::Recv)(e)),
                },
                Some(protocol) => {
                    let IpAddr::V6(source) = self.source else {
                        return Ok(());
                    };
                    match recv_v6(&r.sock, &mut self.buf, MsgFlags::MSG_DONTWAIT)? {
                        Some(m) => ipv6_packet(
                            m.from,
                            m.to.unwrap_or(source),
                            protocol,
                            m.hop_limit,
                            &self.buf[..m.len],
                        ),
                        None => return Ok(()),
                    }
                }
            };
            self.queue.push_back(RecvPacket {
                bytes,
                received_at: self.clock.now(),
            });
        }
        Ok(())
    }
}

/// A classic BPF program for the raw TCP receive socket: keep only segments
/// from the probes' destination port (and, on IPv4, from the target), so a
/// busy host's other TCP traffic is not copied to us. An IPv4 raw socket's
/// filter sees the packet from the IP header on; an IPv6 one from the TCP
/// header on.
fn tcp_answer_filter(target: IpAddr, port: u16) -> Vec<SockFilter> {
    const LD_W_ABS: u16 = 0x20;
    const LD_H_ABS: u16 = 0x28;
    const LDX_B_MSH: u16 = 0xb1;
    const LD_H_IND: u16 = 0x48;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const ACCEPT: u32 = 0x4_0000;
    match target {
        IpAddr::V4(t) => vec![
            SockFilter::new(LD_W_ABS, 0, 0, 12), // IPv4 source address
            SockFilter::new(JEQ_K, 0, 4, u32::from(t)),
            SockFilter::new(LDX_B_MSH, 0, 0, 0), // X = IP header length
            SockFilter::new(LD_H_IND, 0, 0, 0),  // TCP source port
            SockFilter::new(JEQ_K, 0, 1, u32::from(port)),
            SockFilter::new(RET_K, 0, 0, ACCEPT),
            SockFilter::new(RET_K, 0, 0, 0),
        ],
        IpAddr::V6(_) => vec![
            SockFilter::new(LD_H_ABS, 0, 0, 0), // TCP source port
            SockFilter::new(JEQ_K, 0, 1, u32::from(port)),
            SockFilter::new(RET_K, 0, 0, ACCEPT),
            SockFilter::new(RET_K, 0, 0, 0),
        ],
    }
}

/// What `recvmsg` said about one IPv6 datagram.
struct V6Msg {
    len: usize,
    from: Ipv6Addr,
    to: Option<Ipv6Addr>,
    hop_limit: u8,
}

/// One datagram from an IPv6 socket with its hop limit and destination;
/// `None` when nothing is waiting.
fn recv_v6(sock: &Socket, buf: &mut [u8], flags: MsgFlags) -> Result<Option<V6Msg>, TraceError> {
    let mut cmsg = nix::cmsg_space!(nix::libc::c_int, nix::libc::in6_pktinfo);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = match recvmsg::<SockaddrIn6>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), flags) {
        Ok(m) => m,
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return Ok(None),
        Err(e) => return Err(nix_err(IoOp::Recv)(e)),
    };
    let mut out = V6Msg {
        len: msg.bytes,
        from: msg.address.map_or(Ipv6Addr::UNSPECIFIED, |a| a.ip()),
        to: None,
        hop_limit: 0,
    };
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            match c {
                ControlMessageOwned::Ipv6HopLimit(h) => out.hop_limit = h.clamp(0, 255) as u8,
                ControlMessageOwned::Ipv6PacketInfo(info) => {
                    out.to = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                }
                _ => {}
            }
        }
    }
    Ok(Some(out))
}

impl Network for RawNetwork {
    fn source_addr(&mut self, _target: IpAddr) -> Result<IpAddr, TraceError> {
        Ok(self.source)
    }

    fn send(&mut self, probe: &ProbeRequest) -> Result<(), TraceError> {
        let to = SockAddr::from(SocketAddr::new(probe.dst, 0));
        self.send
            .send_to(&probe.bytes, &to)
            .map(|_| ())
            .map_err(io_err(IoOp::Send {
                dst: probe.dst,
                ttl: probe.ttl,
            }))
    }

    fn recv(&mut self, deadline: Instant) -> Result<Option<RecvPacket>, TraceError> {
        loop {
            if let Some(p) = self.queue.pop_front() {
                return Ok(Some(p));
            }
            let socks: Vec<&Socket> = self.receivers.iter().map(|r| &r.sock).collect();
            let Some(ready) = wait_ready(&socks, &self.clock, deadline)? else {
                return Ok(None);
            };
            for (i, flags) in ready.into_iter().enumerate() {
                if flags.intersects(PollFlags::POLLIN | PollFlags::POLLERR) {
                    self.drain(i)?;
                }
            }
        }
    }
}

// ----------------------------------------------------------------- ping

/// Unprivileged ICMP echo probes through an ICMP datagram socket; see the
/// module docs for what it sees.
pub struct PingNetwork {
    sock: Socket,
    source: IpAddr,
    target: IpAddr,
    ident: u16,
    clock: SystemClock,
    queue: VecDeque<RecvPacket>,
    buf: Vec<u8>,
}

/// `ee_origin` of an error the kernel got from an ICMP / ICMPv6 message.
const SO_EE_ORIGIN_ICMP: u8 = 2;
const SO_EE_ORIGIN_ICMP6: u8 = 3;

impl PingNetwork {
    /// Opens an ICMP datagram socket toward `target` from `source`, with
    /// echo id `ident` when that id is free (else one the kernel picks:
    /// read it back with [`PingNetwork::ident`]).
    pub fn open(
        target: IpAddr,
        source: IpAddr,
        ident: u16,
        clock: SystemClock,
    ) -> Result<PingNetwork, TraceError> {
        let v6 = target.is_ipv6();
        let sock = open(
            v6,
            Type::DGRAM,
            i32::from(TraceProtocol::Icmp.ip_number(v6)),
        )?;
        if sock
            .bind(&SockAddr::from(SocketAddr::new(source, ident)))
            .is_err()
        {
            sock.bind(&SockAddr::from(SocketAddr::new(source, 0)))
                .map_err(io_err(IoOp::Open))?;
        }
        let ident = sock
            .local_addr()
            .map_err(io_err(IoOp::Open))?
            .as_socket()
            .map_or(ident, |a| a.port());
        sock.set_nonblocking(true).map_err(io_err(IoOp::Open))?;
        let _ = sock.set_recv_buffer_size(RCVBUF);
        let open_err = nix_err(IoOp::Open);
        if v6 {
            setsockopt(&sock, sockopt::Ipv6RecvErr, &true).map_err(open_err)?;
            sock.set_recv_hoplimit_v6(true)
                .map_err(io_err(IoOp::Open))?;
            setsockopt(&sock, sockopt::Ipv6RecvPacketInfo, &true).map_err(nix_err(IoOp::Open))?;
        } else {
            setsockopt(&sock, sockopt::Ipv4RecvErr, &true).map_err(open_err)?;
            setsockopt(&sock, sockopt::Ipv4RecvTtl, &true).map_err(nix_err(IoOp::Open))?;
        }
        Ok(PingNetwork {
            sock,
            source,
            target,
            ident,
            clock,
            queue: VecDeque::new(),
            buf: vec![0; BUF_LEN],
        })
    }

    /// The echo id the kernel writes into every probe.
    pub fn ident(&self) -> u16 {
        self.ident
    }

    /// Reads echo replies (`errors` false) or queued ICMP errors (true).
    fn drain(&mut self, errors: bool) -> Result<(), TraceError> {
        let flags = if errors {
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_ERRQUEUE
        } else {
            MsgFlags::MSG_DONTWAIT
        };
        for _ in 0..DRAIN_MAX {
            let packet = match (self.source, self.target) {
                (IpAddr::V4(src), IpAddr::V4(dst)) => self.recv_v4(flags, src, dst)?,
                (IpAddr::V6(src), IpAddr::V6(dst)) => self.recv_v6(flags, src, dst)?,
                _ => None,
            };
            match packet {
                Some(Some(bytes)) => self.queue.push_back(RecvPacket {
                    bytes,
                    received_at: self.clock.now(),
                }),
                // Read, but nothing to hand on (a local error).
                Some(None) => {}
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// `None`: nothing waiting; `Some(None)`: a message that is not an answer.
    fn recv_v4(
        &mut self,
        flags: MsgFlags,
        source: Ipv4Addr,
        target: Ipv4Addr,
    ) -> Result<Option<Option<Vec<u8>>>, TraceError> {
        let mut cmsg = nix::cmsg_space!(
            nix::libc::sock_extended_err,
            nix::libc::sockaddr_in,
            nix::libc::c_int
        );
        let mut iov = [IoSliceMut::new(&mut self.buf)];
        let msg =
            match recvmsg::<SockaddrIn>(self.sock.as_raw_fd(), &mut iov, Some(&mut cmsg), flags) {
                Ok(m) => m,
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return Ok(None),
                Err(e) => return Err(nix_err(IoOp::Recv)(e)),
            };
        let (len, from) = (msg.bytes, msg.address.map(|a| a.ip()));
        let (mut ttl, mut error) = (0u8, None);
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::Ipv4Ttl(t) => ttl = t.clamp(0, 255) as u8,
                    ControlMessageOwned::Ipv4RecvErr(ee, offender) => {
                        error = Some((
                            ee,
                            offender.map(|o| Ipv4Addr::from(u32::from_be(o.sin_addr.s_addr))),
                        ));
                    }
                    _ => {}
                }
            }
        }
        let data = &self.buf[..len];
        if !flags.contains(MsgFlags::MSG_ERRQUEUE) {
            let Some(from) = from else {
                return Ok(Some(None));
            };
            return Ok(Some(Some(ipv4_packet(from, source, 1, ttl, data))));
        }
        let Some((ee, Some(offender))) = error else {
            return Ok(Some(None));
        };
        if ee.ee_origin != SO_EE_ORIGIN_ICMP {
            return Ok(Some(None));
        }
        // The probe as quoted: our IP header (its TTL and ID unseen: 0) and
        // the echo header on, as the kernel returned it.
        let quote = ipv4_packet(source, target, 1, 0, data);
        let rest = if ee.ee_type == 3 && ee.ee_code == 4 {
            let mtu = (ee.ee_info.min(u32::from(u16::MAX)) as u16).to_be_bytes();
            [0, 0, mtu[0], mtu[1]]
        } else {
            [0; 4]
        };
        let mut out = Vec::with_capacity(quote.len() + 28);
        PacketBuilder::ipv4(offender.octets(), source.octets(), ttl)
            .icmpv4(Icmpv4Type::Unknown {
                type_u8: ee.ee_type,
                code_u8: ee.ee_code,
                bytes5to8: rest,
            })
            .write(&mut out, &quote)
            .expect("writing to a Vec");
        Ok(Some(Some(out)))
    }

    fn recv_v6(
        &mut self,
        flags: MsgFlags,
        source: Ipv6Addr,
        target: Ipv6Addr,
    ) -> Result<Option<Option<Vec<u8>>>, TraceError> {
        let mut cmsg = nix::cmsg_space!(
            nix::libc::sock_extended_err,
            nix::libc::sockaddr_in6,
            nix::libc::c_int,
            nix::libc::in6_pktinfo
        );
        let mut iov = [IoSliceMut::new(&mut self.buf)];
        let msg =
            match recvmsg::<SockaddrIn6>(self.sock.as_raw_fd(), &mut iov, Some(&mut cmsg), flags) {
                Ok(m) => m,
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return Ok(None),
                Err(e) => return Err(nix_err(IoOp::Recv)(e)),
            };
        let (len, from) = (msg.bytes, msg.address.map(|a| a.ip()));
        let (mut hop_limit, mut error) = (0u8, None);
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::Ipv6HopLimit(h) => hop_limit = h.clamp(0, 255) as u8,
                    ControlMessageOwned::Ipv6RecvErr(ee, offender) => {
                        error = Some((ee, offender.map(|o| Ipv6Addr::from(o.sin6_addr.s6_addr))));
                    }
                    _ => {}
                }
            }
        }
        let data = &self.buf[..len];
        if !flags.contains(MsgFlags::MSG_ERRQUEUE) {
            let Some(from) = from else {
                return Ok(Some(None));
            };
            return Ok(Some(Some(ipv6_packet(from, source, 58, hop_limit, data))));
        }
        let Some((ee, Some(offender))) = error else {
            return Ok(Some(None));
        };
        if ee.ee_origin != SO_EE_ORIGIN_ICMP6 {
            return Ok(Some(None));
        }
        let quote = ipv6_packet(source, target, 58, 0, data);
        let rest = if ee.ee_type == 2 {
            ee.ee_info.to_be_bytes()
        } else {
            [0; 4]
        };
        let mut out = Vec::with_capacity(quote.len() + 48);
        PacketBuilder::ipv6(offender.octets(), source.octets(), hop_limit)
            .icmpv6(Icmpv6Type::Unknown {
                type_u8: ee.ee_type,
                code_u8: ee.ee_code,
                bytes5to8: rest,
            })
            .write(&mut out, &quote)
            .expect("writing to a Vec");
        Ok(Some(Some(out)))
    }
}

/// Errors a socket reports for an ICMP error it received (time exceeded and
/// unreachables map to these), rather than for the send itself.
fn is_icmp_pending_error(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    e.raw_os_error().is_some_and(|n| {
        [
            Errno::EHOSTUNREACH,
            Errno::ENETUNREACH,
            Errno::ECONNREFUSED,
            Errno::EPROTO,
            Errno::EMSGSIZE,
            Errno::EACCES,
            Errno::ENOPROTOOPT,
        ]
        .iter()
        .any(|&x| x as i32 == n)
    })
}

impl Network for PingNetwork {
    fn source_addr(&mut self, _target: IpAddr) -> Result<IpAddr, TraceError> {
        Ok(self.source)
    }

    fn send(&mut self, probe: &ProbeRequest) -> Result<(), TraceError> {
        let op = IoOp::Send {
            dst: probe.dst,
            ttl: probe.ttl,
        };
        if probe.dst.is_ipv6() {
            self.sock.set_unicast_hops_v6(u32::from(probe.ttl))
        } else {
            self.sock.set_ttl_v4(u32::from(probe.ttl))
        }
        .map_err(io_err(op))?;
        let to = SockAddr::from(SocketAddr::new(probe.dst, 0));
        let icmp = probe.bytes.get(probe.ip_header_len..).unwrap_or_default();
        // With IP_RECVERR an ICMP error about an earlier probe also sets the
        // socket's pending error, which the next send would return instead
        // of sending. The error itself is read from the error queue, so the
        // pending copy is cleared (SO_ERROR) before sending, and a send that
        // raced with a new one is retried once.
        let _ = self.sock.take_error();
        match self.sock.send_to(icmp, &to) {
            Ok(_) => Ok(()),
            Err(e) if is_icmp_pending_error(&e) => {
                let _ = self.sock.take_error();
                self.sock.send_to(icmp, &to).map(|_| ()).map_err(io_err(op))
            }
            Err(e) => Err(io_err(op)(e)),
        }
    }

    fn recv(&mut self, deadline: Instant) -> Result<Option<RecvPacket>, TraceError> {
        loop {
            if let Some(p) = self.queue.pop_front() {
                return Ok(Some(p));
            }
            let Some(ready) = wait_ready(&[&self.sock], &self.clock, deadline)? else {
                return Ok(None);
            };
            let flags = ready.first().copied().unwrap_or(PollFlags::empty());
            if flags.contains(PollFlags::POLLERR) {
                self.drain(true)?;
            }
            if flags.contains(PollFlags::POLLIN) {
                self.drain(false)?;
            }
        }
    }
}

// ----------------------------------------------------------------- either

/// How probes are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Raw sockets (root or `CAP_NET_RAW`).
    Raw,
    /// Unprivileged ICMP datagram sockets (ICMP only, see [`PING_LIMITATIONS`]).
    UnprivilegedIcmp,
}

/// The network a live trace runs on.
pub enum LiveNetwork {
    Raw(RawNetwork),
    Ping(PingNetwork),
}

impl LiveNetwork {
    pub fn access(&self) -> Access {
        match self {
            LiveNetwork::Raw(_) => Access::Raw,
            LiveNetwork::Ping(_) => Access::UnprivilegedIcmp,
        }
    }
}

impl Network for LiveNetwork {
    fn source_addr(&mut self, target: IpAddr) -> Result<IpAddr, TraceError> {
        match self {
            LiveNetwork::Raw(n) => n.source_addr(target),
            LiveNetwork::Ping(n) => n.source_addr(target),
        }
    }
    fn send(&mut self, probe: &ProbeRequest) -> Result<(), TraceError> {
        match self {
            LiveNetwork::Raw(n) => n.send(probe),
            LiveNetwork::Ping(n) => n.send(probe),
        }
    }
    fn recv(&mut self, deadline: Instant) -> Result<Option<RecvPacket>, TraceError> {
        match self {
            LiveNetwork::Raw(n) => n.recv(deadline),
            LiveNetwork::Ping(n) => n.recv(deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Direction, IcmpKind, Transport, decode_ip};

    #[test]
    fn rebuilt_headers_decode() {
        let src: Ipv6Addr = "fd00::1".parse().unwrap();
        let dst: Ipv6Addr = "fd00::2".parse().unwrap();
        // An ICMPv6 echo reply body (type 129), as a raw socket returns it.
        let body = [129u8, 0, 0, 0, 0x12, 0x34, 0, 1];
        let p = ipv6_packet(src, dst, 58, 61, &body);
        let d = decode_ip(1, 0, Direction::In, &p).unwrap().packet;
        assert_eq!(
            (d.src, d.dst, d.ttl),
            (IpAddr::V6(src), IpAddr::V6(dst), 61)
        );
        match d.transport {
            Transport::Icmp(i) => {
                assert!(matches!(i.kind, IcmpKind::EchoReply { id: 0x1234, seq: 1 }))
            }
            t => panic!("{t:?}"),
        }
        let v4 = ipv4_packet(
            Ipv4Addr::new(198, 18, 1, 2),
            Ipv4Addr::new(198, 18, 1, 1),
            1,
            255,
            &[0, 0, 0, 0, 0x12, 0x34, 0, 1],
        );
        let d = decode_ip(1, 0, Direction::In, &v4).unwrap().packet;
        assert_eq!(d.ttl, 255);
        assert!(matches!(d.transport, Transport::Icmp(_)));
    }

    #[test]
    fn the_kernel_accepts_the_tcp_filters() {
        // The kernel checks a classic BPF program when it is attached; any
        // socket will do (no privilege needed).
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        for target in ["198.18.4.2", "fd00:198:18:4::2"] {
            let f = tcp_answer_filter(target.parse().unwrap(), 443);
            sock.attach_filter(&f).unwrap();
        }
    }

    #[test]
    fn source_of_loopback_is_loopback() {
        let s = source_for("127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(s, IpAddr::from(Ipv4Addr::LOCALHOST));
    }
}
