//! A simulated TCP conversation between a connector and a server, with
//! real sequence and acknowledgment numbers, written as IP packets: the
//! patterns of resets, FINs and probes that real captures show, built
//! packet by packet, judged by the library's analysis.

use etherparse::PacketBuilder;
use pathproof::analysis::{Analysis, AnalysisOptions, Analyzer};
use pathproof::packet::{Direction, decode_ip};
use pathproof::path::Path;

pub const CONN: [u8; 4] = [10, 0, 0, 2];
pub const SERVER: [u8; 4] = [203, 0, 113, 10];

/// Raw TCP flags (the lab reader's).
pub use super::wire::{ACK, FIN, PSH, RST, SYN};

/// One packet to write: everything a forger or a stack chooses.
#[derive(Clone, Debug)]
pub struct Seg {
    pub out: bool,
    pub ttl: u8,
    pub ip_id: u16,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub payload: Vec<u8>,
    /// TCP reserved bits (the low nibble of the data-offset byte).
    pub reserved: u8,
}

/// A capture of several conversations: frames in order, times in µs.
#[derive(Default)]
pub struct Capture {
    pub frames: Vec<(i64, Vec<u8>)>,
    pub now_us: i64,
}

impl Capture {
    /// Writes one segment of the conversation on `port`; returns its frame number.
    pub fn seg(&mut self, port: u16, server_port: u16, s: &Seg) -> u64 {
        let (src, dst, sp, dp) = if s.out {
            (CONN, SERVER, port, server_port)
        } else {
            (SERVER, CONN, server_port, port)
        };
        let mut b = PacketBuilder::ipv4(src, dst, s.ttl).tcp(sp, dp, s.seq, s.window);
        if s.flags & SYN != 0 {
            b = b.syn();
        }
        if s.flags & ACK != 0 {
            b = b.ack(s.ack);
        }
        if s.flags & RST != 0 {
            b = b.rst();
        }
        if s.flags & FIN != 0 {
            b = b.fin();
        }
        if s.flags & PSH != 0 {
            b = b.psh();
        }
        let mut bytes = Vec::new();
        b.write(&mut bytes, &s.payload).unwrap();
        bytes[4..6].copy_from_slice(&s.ip_id.to_be_bytes());
        bytes[20 + 12] |= s.reserved & 0x0f;
        self.now_us += 1_000;
        self.frames.push((self.now_us, bytes));
        self.frames.len() as u64
    }

    /// An ICMP time-exceeded from `router` quoting the first 28 bytes of
    /// frame `quoted` (as a router does when the TTL runs out).
    pub fn time_exceeded(&mut self, router: [u8; 4], ttl: u8, quoted: u64) -> u64 {
        let mut q = self.frames[quoted as usize - 1].1.clone();
        q[8] = 1; // the TTL the router saw
        q.truncate(28);
        let mut bytes = Vec::new();
        PacketBuilder::ipv4(router, CONN, ttl)
            .icmpv4(etherparse::Icmpv4Type::TimeExceeded(
                etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
            ))
            .write(&mut bytes, &q)
            .unwrap();
        self.now_us += 1_000;
        self.frames.push((self.now_us, bytes));
        self.frames.len() as u64
    }

    /// Skips time (a FIN retransmitted after the table's grace period...).
    pub fn wait_ms(&mut self, ms: i64) {
        self.now_us += ms * 1_000;
    }

    pub fn analyse(&self, path: Option<&Path>) -> Analysis {
        self.analyse_ports(path, &[443])
    }

    pub fn analyse_ports(&self, path: Option<&Path>, ports: &[u16]) -> Analysis {
        let mut a = Analyzer::new(&AnalysisOptions {
            server_ports: ports.to_vec(),
            ..AnalysisOptions::default()
        });
        for (i, (us, bytes)) in self.frames.iter().enumerate() {
            let d = decode_ip(i as u64 + 1, us * 1000, Direction::Unknown, bytes).unwrap();
            a.push_with_payload(&d.packet, d.payload);
        }
        a.finish(path)
    }
}

/// One connection: both sides' next sequence numbers, TTLs and IP IDs, so
/// that each segment carries what a real stack would.
pub struct Talk {
    pub port: u16,
    pub server_port: u16,
    pub c_seq: u32,
    pub s_seq: u32,
    pub c_ttl: u8,
    pub s_ttl: u8,
    pub c_id: u16,
    pub s_id: u16,
    /// Frames of the last segment each side sent.
    pub last_out: u64,
    pub last_in: u64,
}

impl Talk {
    pub fn new(port: u16, s_ttl: u8) -> Talk {
        Talk {
            port,
            server_port: 443,
            c_seq: 1_000_000u32.wrapping_add(u32::from(port).wrapping_mul(7919)),
            s_seq: 3_000_000_000u32.wrapping_add(u32::from(port).wrapping_mul(104_729)),
            c_ttl: 64,
            s_ttl,
            c_id: port.wrapping_mul(31),
            s_id: 20_000,
            last_out: 0,
            last_in: 0,
        }
    }

    fn out(&mut self, c: &mut Capture, flags: u8, payload: Vec<u8>, ttl: Option<u8>) -> u64 {
        self.c_id = self.c_id.wrapping_add(1);
        let len = payload.len() as u32 + u32::from(flags & SYN != 0) + u32::from(flags & FIN != 0);
        let s = Seg {
            out: true,
            ttl: ttl.unwrap_or(self.c_ttl),
            ip_id: self.c_id,
            flags,
            seq: self.c_seq,
            ack: if flags & ACK != 0 { self.s_seq } else { 0 },
            window: 64240,
            payload,
            reserved: 0,
        };
        let f = c.seg(self.port, self.server_port, &s);
        self.c_seq = self.c_seq.wrapping_add(len);
        self.last_out = f;
        f
    }

    fn inb(&mut self, c: &mut Capture, flags: u8, payload: Vec<u8>) -> u64 {
        self.s_id = self.s_id.wrapping_add(1);
        let len = payload.len() as u32 + u32::from(flags & SYN != 0) + u32::from(flags & FIN != 0);
        let s = Seg {
            out: false,
            ttl: self.s_ttl,
            ip_id: self.s_id,
            flags,
            seq: self.s_seq,
            ack: if flags & ACK != 0 { self.c_seq } else { 0 },
            window: 65160,
            payload,
            reserved: 0,
        };
        let f = c.seg(self.port, self.server_port, &s);
        self.s_seq = self.s_seq.wrapping_add(len);
        self.last_in = f;
        f
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self, c: &mut Capture) -> u64 {
        self.out(c, SYN, Vec::new(), None);
        let sa = self.inb(c, SYN | ACK, Vec::new());
        self.out(c, ACK, Vec::new(), None);
        sa
    }

    pub fn syn(&mut self, c: &mut Capture) -> u64 {
        self.out(c, SYN, Vec::new(), None)
    }

    /// The connector's ClientHello (at its usual TTL, or `ttl`), without
    /// moving its sequence number when `resend` (a copy of the last one).
    pub fn client_hello(&mut self, c: &mut Capture, sni: Option<&str>, ttl: Option<u8>) -> u64 {
        self.out(c, PSH | ACK, client_hello(sni), ttl)
    }

    /// Another copy of the ClientHello just sent, with `ttl`.
    pub fn resend_client_hello(&mut self, c: &mut Capture, sni: Option<&str>, ttl: u8) -> u64 {
        let hello = client_hello(sni);
        self.c_seq = self.c_seq.wrapping_sub(hello.len() as u32);
        self.out(c, PSH | ACK, hello, Some(ttl))
    }

    pub fn client_data(&mut self, c: &mut Capture, len: usize) -> u64 {
        self.out(c, PSH | ACK, vec![0x17; len], None)
    }

    pub fn server_data(&mut self, c: &mut Capture, len: usize) -> u64 {
        self.inb(c, PSH | ACK, vec![0x17; len])
    }

    pub fn client_ack(&mut self, c: &mut Capture) -> u64 {
        self.out(c, ACK, Vec::new(), None)
    }

    pub fn server_ack(&mut self, c: &mut Capture) -> u64 {
        self.inb(c, ACK, Vec::new())
    }

    pub fn client_fin(&mut self, c: &mut Capture) -> u64 {
        self.out(c, FIN | ACK, Vec::new(), None)
    }

    pub fn server_fin(&mut self, c: &mut Capture) -> u64 {
        self.inb(c, FIN | ACK, Vec::new())
    }

    /// A FIN the connector sends again (same sequence number).
    pub fn client_fin_again(&mut self, c: &mut Capture) -> u64 {
        self.c_seq = self.c_seq.wrapping_sub(1);
        self.out(c, FIN | ACK, Vec::new(), None)
    }

    /// The server's stack's reset: its TTL and IP ID, sequence number where
    /// its stream stands, acknowledging what it received.
    pub fn server_rst(&mut self, c: &mut Capture) -> u64 {
        self.inb(c, RST | ACK, Vec::new())
    }

    /// A reset "from" the server with the fields a forger chose; `seq` and
    /// `ack` default to the connection's current numbers.
    pub fn forged_rst(
        &mut self,
        c: &mut Capture,
        ttl: u8,
        ip_id: u16,
        f: impl Fn(&mut Seg),
    ) -> u64 {
        let mut s = Seg {
            out: false,
            ttl,
            ip_id,
            flags: RST | ACK,
            seq: self.s_seq,
            ack: self.c_seq,
            window: 0,
            payload: Vec::new(),
            reserved: 0,
        };
        f(&mut s);
        c.seg(self.port, self.server_port, &s)
    }
}

/// A minimal TLS 1.2 ClientHello record (no `supported_versions`), with an
/// SNI when given.
pub fn client_hello(sni: Option<&str>) -> Vec<u8> {
    let mut ext = Vec::new();
    if let Some(name) = sni {
        let n = name.as_bytes();
        let list_len = n.len() + 3;
        ext.extend_from_slice(&[0, 0]);
        ext.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
        ext.extend_from_slice(&(list_len as u16).to_be_bytes());
        ext.push(0);
        ext.extend_from_slice(&(n.len() as u16).to_be_bytes());
        ext.extend_from_slice(n);
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0, 2, 0xc0, 0x2f]); // one cipher suite
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}
