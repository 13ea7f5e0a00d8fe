//! Constructed packets for the unit tests of the analysis modules.

use super::{Direction, Packet, TcpFlags, TcpInfo, Transport};
use std::net::SocketAddr;

/// A packet from `src` to `dst` (`"ip:port"`) at `ms` milliseconds.
pub(crate) fn packet(
    frame: u64,
    ms: i64,
    src: &str,
    dst: &str,
    ttl: u8,
    transport: Transport,
) -> Packet {
    let (src, dst): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    Packet {
        frame,
        ts_ns: ms * 1_000_000,
        direction: Direction::Unknown,
        src: src.ip(),
        dst: dst.ip(),
        ttl,
        ip_id: Some(0),
        df: true,
        ip_len: 40,
        link_src: None,
        transport,
    }
}

/// A TCP header between the ports of `src` and `dst`.
pub(crate) fn tcp_info(src: &str, dst: &str, flags: u8, seq: u32, payload_len: u32) -> TcpInfo {
    let (src, dst): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    TcpInfo {
        src_port: src.port(),
        dst_port: dst.port(),
        seq,
        ack: 0,
        flags: TcpFlags(flags),
        window: 0,
        mss: None,
        options_len: 0,
        payload_len,
        reserved: 0,
    }
}
