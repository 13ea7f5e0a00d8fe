//! Reverse DNS of hop addresses for `pathproof trace` (off with `-n`):
//! one PTR query per address, all sent at once over UDP to the first
//! `nameserver` of /etc/resolv.conf, answers collected until a short
//! deadline. Names that do not come back in time are simply not shown.

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use pathproof::report::trace::Names;
use pathproof::trace::live::LiveTrace;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// The first `nameserver` of a resolv.conf text.
fn nameserver(resolv_conf: &str) -> Option<IpAddr> {
    resolv_conf.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        (f.next() == Some("nameserver"))
            .then(|| f.next()?.split('%').next()?.parse().ok())
            .flatten()
    })
}

fn query(id: u16, addr: IpAddr) -> Option<Vec<u8>> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from(addr), RecordType::PTR));
    m.to_vec().ok()
}

/// PTR names of every address that answered in `t` (and its control
/// trace), asked of `server` (default: the first nameserver of resolv.conf).
pub fn lookup_all_via(t: &LiveTrace, server: Option<IpAddr>, timeout: Duration) -> Names {
    let addrs: Vec<IpAddr> = hop_addrs(t);
    match server {
        Some(server) if !addrs.is_empty() => lookup(&addrs, server, timeout),
        _ => lookup_all(t, timeout),
    }
}

fn hop_addrs(t: &LiveTrace) -> Vec<IpAddr> {
    let mut addrs: Vec<IpAddr> = t
        .trace
        .hops
        .iter()
        .chain(t.control.iter().flat_map(|c| c.hops.iter()))
        .flat_map(|h| h.addrs.iter().map(|a| a.addr))
        .collect();
    addrs.sort();
    addrs.dedup();
    addrs
}

/// PTR names of every address that answered in `t` (and its control trace).
pub fn lookup_all(t: &LiveTrace, timeout: Duration) -> Names {
    let addrs = hop_addrs(t);
    let server = std::fs::read_to_string("/etc/resolv.conf")
        .ok()
        .and_then(|s| nameserver(&s));
    match server {
        Some(server) if !addrs.is_empty() => lookup(&addrs, server, timeout),
        _ => Names::new(),
    }
}

fn lookup(addrs: &[IpAddr], server: IpAddr, timeout: Duration) -> Names {
    let mut names = Names::new();
    let bind: SocketAddr = if server.is_ipv6() {
        "[::]:0".parse().expect("literal")
    } else {
        "0.0.0.0:0".parse().expect("literal")
    };
    let Ok(sock) = UdpSocket::bind(bind) else {
        return names;
    };
    if sock.connect((server, 53)).is_err() {
        return names;
    }
    let base = (std::process::id() as u16).wrapping_mul(7919);
    let ids: Vec<u16> = (0..addrs.len() as u16)
        .map(|i| base.wrapping_add(i))
        .collect();
    for (id, addr) in ids.iter().zip(addrs) {
        if let Some(q) = query(*id, *addr) {
            let _ = sock.send(&q);
        }
    }
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    while names.len() < addrs.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || sock.set_read_timeout(Some(left)).is_err() {
            break;
        }
        let Ok(n) = sock.recv(&mut buf) else { break };
        let Ok(m) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let Some(i) = ids.iter().position(|&id| id == m.metadata.id) else {
            continue;
        };
        let ptr = m.answers.iter().find_map(|r| match &r.data {
            RData::PTR(p) => Some(p.0.to_utf8().trim_end_matches('.').to_string()),
            _ => None,
        });
        if let Some(name) = ptr {
            names.insert(addrs[i], name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_nameserver() {
        let conf = "# x\nsearch lab\nnameserver 198.18.10.2\nnameserver 1.1.1.1\n";
        assert_eq!(nameserver(conf), Some("198.18.10.2".parse().unwrap()));
        assert_eq!(
            nameserver("nameserver fe80::1%eth0"),
            Some("fe80::1".parse().unwrap())
        );
        assert_eq!(nameserver("search x"), None);
    }

    #[test]
    fn ptr_query_names_the_reverse_zone() {
        let q = query(7, "198.18.1.2".parse().unwrap()).unwrap();
        let m = Message::from_vec(&q).unwrap();
        assert_eq!(m.queries[0].name().to_utf8(), "2.1.18.198.in-addr.arpa.");
        assert_eq!(m.queries[0].query_type(), RecordType::PTR);
    }
}
