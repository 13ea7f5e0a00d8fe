//! Arbitrary bytes as a sequence of TCP segments of one flow fed to a
//! TlsTracker: reassembly and TLS parsing must not panic.
//!
//! Input, repeated: a control byte (bit 0 = from client, bit 1 = SYN,
//! bit 2 = FIN, bit 3 = RST, bit 4 = snapshot-cut: claim 64 more bytes
//! than captured), a signed 16-bit sequence delta from that side's next
//! sequence number, a 16-bit length, then that many payload bytes (or what
//! is left). The first 8 bytes are the two initial sequence numbers; when
//! the top bit of the first is set, the flow is an HTTP CONNECT tunnel
//! (both streams start with an HTTP head to skip), and every payload is
//! also given to the HTTP CONNECT parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathproof::analysis::tls::TlsTracker;
use pathproof::packet::http_connect::{self, ConnectTarget};
use pathproof::packet::{TcpFlags, TcpInfo};

fuzz_target!(|data: &[u8]| {
    let Some((isns, mut rest)) = data.split_at_checked(8) else {
        return;
    };
    let mut next = [
        u32::from_be_bytes([isns[0], isns[1], isns[2], isns[3]]),
        u32::from_be_bytes([isns[4], isns[5], isns[6], isns[7]]),
    ];
    let mut t = TlsTracker::new();
    let tunnel = isns[0] & 0x80 != 0;
    if tunnel {
        let target = ConnectTarget {
            authority: "broker.example:443".into(),
            host: "broker.example".into(),
            port: 443,
        };
        t.expect_connect(0, &target);
    }
    let mut frame = 0u64;
    while let Some((head, tail)) = rest.split_at_checked(5) {
        let ctl = head[0];
        let delta = i16::from_be_bytes([head[1], head[2]]);
        let len = usize::from(u16::from_be_bytes([head[3], head[4]])).min(tail.len());
        let (payload, after) = tail.split_at(len);
        rest = after;
        let from_client = ctl & 1 != 0;
        let i = usize::from(!from_client);
        let mut flags = TcpFlags::ACK;
        for (bit, f) in [(2, TcpFlags::SYN), (4, TcpFlags::FIN), (8, TcpFlags::RST)] {
            if ctl & bit != 0 {
                flags |= f;
            }
        }
        let seq = next[i].wrapping_add_signed(i32::from(delta));
        next[i] = seq.wrapping_add(payload.len() as u32);
        let cut = if ctl & 16 != 0 { 64 } else { 0 };
        let (src_port, dst_port) = if from_client {
            (40000, 443)
        } else {
            (443, 40000)
        };
        let tcp = TcpInfo {
            src_port,
            dst_port,
            seq,
            ack: 0,
            flags: TcpFlags(flags),
            window: 0,
            mss: None,
            options_len: 0,
            payload_len: payload.len() as u32 + cut,
            reserved: 0,
        };
        frame += 1;
        if tunnel {
            let _ = http_connect::request_line(payload);
            let _ = http_connect::head_end(payload);
            let _ = http_connect::status_line(payload);
        }
        t.ip_fields(ctl, Some(u16::from(ctl)));
        t.on_segment(from_client, frame, frame as i64, &tcp, payload);
    }
    let _ = t.into_observation();
});
