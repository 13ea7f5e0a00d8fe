//! Arbitrary text as an mtr report (text or JSON): the parser must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = pathproof::path::mtr::parse(&text);
});
