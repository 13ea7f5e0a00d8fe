//! Arbitrary bytes as a capture file: reader, decoder and analysis must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pathproof::analysis::{AnalysisOptions, Analyzer};
use pathproof::capture::CaptureReader;
use pathproof::packet::decode;

fuzz_target!(|data: &[u8]| {
    let input = Box::new(std::io::Cursor::new(data.to_vec()));
    let Ok(mut reader) = CaptureReader::from_reader(input) else {
        return;
    };
    let mut analyzer = Analyzer::new(&AnalysisOptions::default());
    while let Ok(Some(frame)) = reader.next_frame() {
        if let Ok(d) = decode(frame.link_type, frame.number, frame.ts_ns, frame.data) {
            analyzer.push(&d.packet);
        }
    }
    let _ = analyzer.finish(None);
});
