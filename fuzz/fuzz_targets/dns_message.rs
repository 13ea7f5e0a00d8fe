//! Arbitrary bytes as one DNS message read by the one reader (with the
//! CNAME chain of its question followed), then as DNS over UDP (a query,
//! then a response to it) and over TCP (as segments of one stream): neither
//! the reader nor the tracker may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathproof::analysis::dns::{DnsTracker, chain, message};
use pathproof::packet::{Direction, Packet, TcpFlags, TcpInfo, Transport};
use std::net::{IpAddr, Ipv4Addr};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
const RESOLVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 53));

fn packet(frame: u64, from_resolver: bool, transport: Transport) -> Packet {
    let (src, dst) = if from_resolver {
        (RESOLVER, CLIENT)
    } else {
        (CLIENT, RESOLVER)
    };
    Packet {
        frame,
        ts_ns: frame as i64 * 1_000_000,
        direction: Direction::Unknown,
        src,
        dst,
        ttl: 60,
        ip_id: None,
        df: true,
        ip_len: 0,
        link_src: None,
        transport,
    }
}

fn udp(frame: u64, from_resolver: bool, len: usize) -> Packet {
    let (src_port, dst_port) = if from_resolver {
        (53, 40000)
    } else {
        (40000, 53)
    };
    let len = (len + 8).min(usize::from(u16::MAX)) as u16;
    packet(
        frame,
        from_resolver,
        Transport::Udp {
            src_port,
            dst_port,
            len,
        },
    )
}

fn tcp(frame: u64, from_resolver: bool, seq: u32, payload_len: u32) -> Packet {
    let (src_port, dst_port) = if from_resolver {
        (53, 41000)
    } else {
        (41000, 53)
    };
    packet(
        frame,
        from_resolver,
        Transport::Tcp(TcpInfo {
            src_port,
            dst_port,
            seq,
            ack: 0,
            flags: TcpFlags(TcpFlags::ACK),
            window: 0,
            mss: None,
            options_len: 0,
            payload_len,
            reserved: 0,
        }),
    )
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = message::read_message(data) {
        if let Some(q) = &m.head.question {
            let a = chain::answer_for(&q.name, &m.answers.records);
            assert!(a.targets.len() <= chain::MAX_CNAME_CHAIN);
            assert!(a.addresses.is_empty() || a.end == chain::ChainEnd::Canonical);
        }
        let _ = message::rcode_name(u16::from(m.head.rcode));
    }
    let mut t = DnsTracker::new(&["broker.lab.example".to_string()]);
    // The bytes with the QR bit cleared as a query, then as they are as the
    // response: a response that matches a query (same id and question) is
    // read past the header into its records.
    let mut query = data.to_vec();
    if let Some(flags) = query.get_mut(2) {
        *flags &= 0x7f;
    }
    t.on_udp(&udp(1, false, query.len()), &query);
    t.on_udp(&udp(2, true, data.len()), data);
    // Claimed longer than captured: the snapshot-cut path.
    t.on_udp(&udp(3, true, data.len() + 1), data);
    // TCP: whole, then in three in-order segments, the last one cut.
    t.on_tcp(&tcp(4, true, 1, data.len() as u32), data);
    let mut seq = 1 + data.len() as u32;
    let (a, rest) = data.split_at(data.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    for (i, seg) in [a, b, c].into_iter().enumerate() {
        let claimed = seg.len() as u32 + u32::from(i == 2);
        t.on_tcp(&tcp(5 + i as u64, true, seq, claimed), seg);
        seq = seq.wrapping_add(claimed);
    }
    let s = t.finish(10_000_000_000);
    let _ = s.broker_name_outcomes();
});
