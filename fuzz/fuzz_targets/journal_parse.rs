//! Arbitrary bytes as a connector journal: the reader (every format, the
//! year and zone rules) and the rules that judge it must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathproof::journal::{JournalOptions, parse_journal_bytes};

fuzz_target!(|data: &[u8]| {
    for opts in [
        JournalOptions::default(),
        JournalOptions {
            year: Some(9999),
            utc_offset_secs: Some(-14 * 3600),
            current_year: Some(1970),
        },
    ] {
        if let Ok(j) = parse_journal_bytes(data, &opts) {
            let _ = pathproof::analysis::judge_journal(&j);
        }
    }
});
