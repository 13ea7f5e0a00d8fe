//! What servers send to `pathproof check`, as arbitrary bytes: a DNS
//! response read against our query, and the TLS server's byte stream walked
//! for the last handshake step. Neither may panic.
#![no_main]

use hickory_proto::rr::{Name, RecordType};
use libfuzzer_sys::fuzz_target;
use pathproof::check::{dns, tls};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        let name = Name::from_ascii("co2br.lab1.test.").expect("literal name");
        let qtype = if selector & 2 == 0 {
            RecordType::A
        } else {
            RecordType::AAAA
        };
        let id = u16::from_be_bytes([rest.first().copied().unwrap_or(0), 0x42]);
        let _ = dns::read_answer(rest, id, &name, qtype);
    } else {
        let p = tls::server_progress(rest, rest.len() as u64);
        assert!(p.bytes == rest.len() as u64);
    }
});
