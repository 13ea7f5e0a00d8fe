//! What servers send to `pathproof check`, as arbitrary bytes: a DNS
//! response read against our query (A, AAAA, or the PTR query of a trace
//! hop's reverse name), and the TLS server's byte stream walked for the last
//! handshake step. Neither may panic.
#![no_main]

use hickory_proto::rr::{Name, RecordType};
use libfuzzer_sys::fuzz_target;
use pathproof::check::{dns, tls};
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        let (name, qtype) = match selector >> 1 & 3 {
            0 => (
                Name::from_ascii("co2br.lab1.test.").expect("literal name"),
                RecordType::A,
            ),
            1 => (
                Name::from_ascii("co2br.lab1.test.").expect("literal name"),
                RecordType::AAAA,
            ),
            _ => (Name::from(IpAddr::from([198, 18, 1, 2])), RecordType::PTR),
        };
        let id = u16::from_be_bytes([rest.first().copied().unwrap_or(0), 0x42]);
        if let Ok(a) = dns::read_answer(rest, id, &name, qtype) {
            // The chain starts at the name asked.
            assert!(!a.cname_chain.is_empty());
        }
    } else {
        let p = tls::server_progress(rest, rest.len() as u64);
        assert!(p.bytes == rest.len() as u64);
    }
});
