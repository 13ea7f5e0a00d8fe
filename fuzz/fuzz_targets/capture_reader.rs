//! Arbitrary bytes as a capture file: the whole `pathproof pcap` path (reader,
//! decoding thread, analysis with payloads, conclusion) must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathproof::analysis::AnalysisOptions;
use pathproof::capture::CaptureReader;

fuzz_target!(|data: &[u8]| {
    let input = Box::new(std::io::Cursor::new(data.to_vec()));
    // Inline: a read-ahead thread per input would outlive it (LeakSanitizer).
    let Ok(reader) = CaptureReader::from_reader_inline(input) else {
        return;
    };
    let _ = pathproof::app::analyse_capture(
        reader,
        "fuzz".to_string(),
        None,
        &AnalysisOptions::default(),
    );
});
