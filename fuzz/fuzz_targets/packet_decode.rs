//! Arbitrary frame bytes under every link type: the decoder must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathproof::capture::LinkType;
use pathproof::packet::{decode, non_ip_kind};

fuzz_target!(|data: &[u8]| {
    for n in [0u32, 1, 101, 108, 113, 228, 229, 276] {
        let link = LinkType::from_number(n);
        // PPPoE (and its VLAN tags) is peeled by `decode` for Ethernet and
        // cooked links; frames that are not IP are classified.
        let _ = decode(link, 1, 0, data);
        let _ = non_ip_kind(link, data);
    }
});
