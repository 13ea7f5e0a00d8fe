//! Times the analysis alone, on packets decoded beforehand: the stage that
//! bounds `pcap`'s wall time on real-traffic captures (issue 17), measured
//! without the reading and decoding thread and its noise.
//!
//! ```sh
//! cargo run --release --example analysis_only -- CAPTURE [ROUNDS]
//! ```
//!
//! Reads and decodes the whole capture into memory (payloads of UDP, of
//! TCP port 53 and of the default judged port 443, as `pcap` hands them
//! over; not HTTP CONNECT tunnels or TLS on other ports) with each TCP
//! packet's flow key (worked out on `pcap`'s decoding thread), then runs a fresh
//! analysis over the packets ROUNDS times (default 5), up to and including
//! the verdict, and prints each round's time with the minimum and median.
//! The minimum is the figure to compare between builds: a shared machine
//! only ever adds time.

use pathproof::analysis::{AnalysisOptions, Analyzer, FlowKey};
use pathproof::capture::CaptureReader;
use pathproof::packet::{Packet, Transport, decode};
use std::time::Instant;

// As in the binary (`src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = args.next().ok_or("usage: analysis_only CAPTURE [ROUNDS]")?;
    let rounds: usize = args.next().map_or(Ok(5), |r| r.parse())?;
    let mut reader = CaptureReader::open(std::path::Path::new(&file))?;
    let mut packets: Vec<(Packet, std::ops::Range<usize>, Option<FlowKey>)> = Vec::new();
    let mut payloads: Vec<u8> = Vec::new();
    while let Some(frame) = reader.next_frame()? {
        let Ok(d) = decode(frame.link_type, frame.number, frame.ts_ns, frame.data) else {
            continue;
        };
        let wanted = match &d.packet.transport {
            Transport::Udp { .. } => true,
            Transport::Tcp(t) => [t.src_port, t.dst_port]
                .iter()
                .any(|p| *p == 53 || *p == 443),
            _ => false,
        };
        let start = payloads.len();
        if wanted {
            payloads.extend_from_slice(d.payload);
        }
        // Keyed here, as `pcap`'s decoding thread does.
        let key = FlowKey::of_packet(&d.packet);
        packets.push((d.packet, start..payloads.len(), key));
    }
    eprintln!(
        "{} packets, {} MB of payloads in memory",
        packets.len(),
        payloads.len() / 1_000_000
    );
    let options = AnalysisOptions::default();
    let mut times = Vec::new();
    for round in 1..=rounds {
        let started = Instant::now();
        let mut analyzer = Analyzer::new(&options);
        for (p, range, key) in &packets {
            analyzer.push_keyed(p, &payloads[range.clone()], *key);
        }
        let pushed = started.elapsed();
        let analysis = analyzer.finish(None);
        let total = started.elapsed();
        std::hint::black_box(&analysis);
        eprintln!(
            "round {round}: {:.3} s ({:.3} s packets, {:.3} s verdict), {:?}",
            total.as_secs_f64(),
            pushed.as_secs_f64(),
            (total - pushed).as_secs_f64(),
            analysis.verdict.class
        );
        times.push(total.as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!(
        "min {:.3} s, median {:.3} s over {} rounds",
        times[0],
        times[times.len() / 2],
        times.len()
    );
    Ok(())
}
