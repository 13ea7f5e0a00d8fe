//! Reverse DNS of hop addresses for `pathproof trace` and `check` (off with
//! `-n`): one PTR query per address, all sent at once over UDP to one
//! server, answers collected until a short deadline. Names that do not come
//! back in time are simply not shown.
//!
//! The queries go through the check's DNS client ([`super::dns::udp_round`]):
//! an answer must carry the query's id and question, and is read by the
//! analysis' one DNS reader, its PTR name taken at the end of its CNAME
//! chain (RFC 2317 delegations answer with a CNAME first). The server is
//! the first nameserver of /etc/resolv.conf as glibc reads it
//! ([`super::resolv`]: 127.0.0.1 when the file names none).

use super::{dns, resolv};
use std::collections::HashMap;

/// Reverse DNS names of hop addresses.
pub type Names = HashMap<IpAddr, String>;
use crate::trace::live::LiveTrace;
use hickory_proto::rr::{Name, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const DNS_PORT: u16 = 53;

/// The server glibc would ask first, from resolv.conf text.
fn first_nameserver(resolv_conf: &str) -> IpAddr {
    let conf = resolv::parse(resolv_conf);
    conf.nameservers
        .first()
        .copied()
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// Every address that answered in `t` (and its control trace), once each.
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

/// PTR names of `addrs`, asked of `server` at once, waiting at most `timeout`.
pub fn reverse_names(addrs: &[IpAddr], server: SocketAddr, timeout: Duration) -> Names {
    let mut names = Names::new();
    if addrs.is_empty() {
        return names;
    }
    let queries: Vec<(Name, RecordType)> = addrs
        .iter()
        .map(|a| (Name::from(*a), RecordType::PTR))
        .collect();
    for (i, event, _) in dns::udp_round(server, &queries, timeout).events {
        if let dns::UdpEvent::Answer(a) = event
            && let Some(name) = a.ptr_names.into_iter().next()
        {
            names.insert(addrs[i], name);
        }
    }
    names
}

/// PTR names of every address that answered in `t` (and its control
/// trace), asked of `server` (default: the first nameserver of resolv.conf).
pub fn lookup_all_via(t: &LiveTrace, server: Option<IpAddr>, timeout: Duration) -> Names {
    match server {
        Some(server) => reverse_names(&hop_addrs(t), SocketAddr::new(server, DNS_PORT), timeout),
        None => lookup_all(t, timeout),
    }
}

/// PTR names of every address that answered in `t` (and its control
/// trace), asked of the first nameserver of /etc/resolv.conf. An unreadable
/// resolv.conf gives no names.
pub fn lookup_all(t: &LiveTrace, timeout: Duration) -> Names {
    let addrs = hop_addrs(t);
    if addrs.is_empty() {
        return Names::new();
    }
    match std::fs::read_to_string("/etc/resolv.conf") {
        Ok(text) => reverse_names(
            &addrs,
            SocketAddr::new(first_nameserver(&text), DNS_PORT),
            timeout,
        ),
        Err(_) => Names::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
    use hickory_proto::rr::rdata::{CNAME, PTR};
    use hickory_proto::rr::{RData, Record};
    use std::net::UdpSocket;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    #[test]
    fn the_first_nameserver_by_glibc_rules() {
        let conf = "# x\nsearch lab\nnameserver 198.18.10.2\nnameserver 1.1.1.1\n";
        assert_eq!(first_nameserver(conf), IpAddr::from([198, 18, 10, 2]));
        assert_eq!(
            first_nameserver("nameserver fe80::1%eth0"),
            "fe80::1".parse::<IpAddr>().unwrap()
        );
        // A keyword counts only in column 0; no nameserver means 127.0.0.1.
        assert_eq!(
            first_nameserver(" nameserver 198.18.10.2\nsearch x"),
            IpAddr::from([127, 0, 0, 1])
        );
    }

    #[test]
    fn ptr_queries_name_the_reverse_zone() {
        let n = Name::from(IpAddr::from([198, 18, 1, 2]));
        let q = dns::build_query(7, &n, RecordType::PTR).unwrap();
        let m = Message::from_vec(&q).unwrap();
        assert_eq!(m.queries[0].name().to_utf8(), "2.1.18.198.in-addr.arpa.");
        assert_eq!(m.queries[0].query_type(), RecordType::PTR);
        let n = Name::from("2001:db8::1".parse::<IpAddr>().unwrap());
        assert!(n.to_ascii().ends_with(".8.b.d.0.1.0.0.2.ip6.arpa."));
    }

    /// A UDP responder on 127.0.0.1 that answers PTR queries from a table:
    /// a forged answer (wrong id) first for every query, then the real one;
    /// one name through an RFC 2317 CNAME, one NXDOMAIN, one never answered.
    struct Responder {
        stop: Arc<AtomicBool>,
        thread: Option<std::thread::JoinHandle<()>>,
        addr: SocketAddr,
    }

    impl Drop for Responder {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn answer(q: &Message) -> Option<Message> {
        let query = q.queries.first()?.clone();
        let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        m.metadata.recursion_available = true;
        let owner = query.name().clone();
        let ptr = |owner: Name, target: &str| {
            Record::from_rdata(owner, 60, RData::PTR(PTR(name(target))))
        };
        match owner.to_ascii().as_str() {
            "2.1.18.198.in-addr.arpa." => {
                m.add_answer(ptr(owner.clone(), "r1.lab.test."));
            }
            "2.2.18.198.in-addr.arpa." => {
                let alias = name("2.0-25.2.18.198.in-addr.arpa.");
                let link = RData::CNAME(CNAME(alias.clone()));
                m.add_answer(Record::from_rdata(owner.clone(), 60, link));
                m.add_answer(ptr(alias, "r2.lab.test."));
            }
            "2.3.18.198.in-addr.arpa." => m.metadata.response_code = ResponseCode::NXDomain,
            _ => return None,
        }
        m.add_query(query);
        Some(m)
    }

    fn start_responder() -> Responder {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s.load(Ordering::SeqCst) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(m) = answer(&q) else { continue };
                let mut forged = m.clone();
                forged.metadata.id = m.metadata.id.wrapping_add(1);
                forged.answers.clear();
                forged.add_answer(Record::from_rdata(
                    q.queries[0].name().clone(),
                    60,
                    RData::PTR(PTR(name("evil.test."))),
                ));
                let _ = sock.send_to(&forged.to_vec().unwrap(), from);
                let _ = sock.send_to(&m.to_vec().unwrap(), from);
            }
        });
        Responder {
            stop,
            thread: Some(thread),
            addr,
        }
    }

    #[test]
    fn reverse_names_through_a_loopback_responder() {
        let r = start_responder();
        let addrs: Vec<IpAddr> = ["198.18.1.2", "198.18.2.2", "198.18.3.2", "198.18.4.2"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let started = Instant::now();
        let names = reverse_names(&addrs, r.addr, Duration::from_millis(400));
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(names[&addrs[0]], "r1.lab.test");
        // Through the CNAME of a classless delegation.
        assert_eq!(names[&addrs[1]], "r2.lab.test");
        // NXDOMAIN and silence give no name; the forged answers none either.
        assert!(!names.values().any(|n| n.contains("evil")));
        // The unanswered query holds the round to its deadline, no longer.
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(400), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }

    #[test]
    fn nothing_to_ask_sends_nothing() {
        let names = reverse_names(&[], "127.0.0.1:9".parse().unwrap(), Duration::from_secs(5));
        assert!(names.is_empty());
    }

    #[test]
    fn a_closed_port_ends_at_once() {
        let port = {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        };
        let started = Instant::now();
        let names = reverse_names(
            &[IpAddr::from([198, 18, 1, 2])],
            SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port),
            Duration::from_secs(3),
        );
        assert!(names.is_empty());
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
