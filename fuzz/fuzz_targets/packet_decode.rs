//! Arbitrary frame bytes under every link type: the decoder must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathproof::capture::LinkType;
use pathproof::packet::decode;

fuzz_target!(|data: &[u8]| {
    for n in [0u32, 1, 101, 108, 113, 228, 229, 276] {
        let _ = decode(LinkType::from_number(n), 1, 0, data);
    }
});
