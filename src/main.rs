//! pathproof binary: parse the command line, run a job, print, map to an exit code.

mod cli;

// Every TLS handshake in a capture allocates (stream buffers, names,
// certificate summaries): mimalloc makes that a small cost instead of a
// quarter of the run on multi-gigabyte captures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use cli::{Cli, Command};
use pathproof::analysis::AnalysisOptions;
use pathproof::app::{self, PcapJob};
use pathproof::path::Path;
use pathproof::report;
use std::io::Write;
use std::process::ExitCode;

/// Exit codes (documented in README.md and `--help`).
const EXIT_NO_FAILURE: u8 = 0;
const EXIT_FAILURE_FOUND: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;
const EXIT_INCONCLUSIVE: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Pcap(args) => pcap(args),
    }
}

fn pcap(args: cli::PcapArgs) -> ExitCode {
    let path = match (&args.mtr, args.hops) {
        (Some(file), _) => match app::load_mtr(file) {
            Ok(p) => Some(p),
            Err(e) => return fail(&e),
        },
        (None, Some(n)) => Some(Path::from_hop_count(n)),
        (None, None) => None,
    };
    let job = PcapJob {
        input: args.file,
        path,
        options: AnalysisOptions {
            server_ports: args.ports,
            expect_issuer: args.expect_issuer,
            broker_names: args.broker_names,
            ..AnalysisOptions::default()
        },
    };
    let report = match app::run_pcap(job) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let text = if args.json {
        report::json::render_pcap(&report)
    } else {
        report::text::render_pcap(&report)
    };
    print(&text);
    if !args.json {
        for w in &report.warnings {
            eprintln!("pathproof: warning: {}", w.message);
        }
    }
    let class = report.analysis.verdict.class;
    ExitCode::from(if class.is_failure() {
        EXIT_FAILURE_FOUND
    } else if class == pathproof::analysis::VerdictClass::Inconclusive {
        EXIT_INCONCLUSIVE
    } else {
        EXIT_NO_FAILURE
    })
}

/// Prints the report; a closed pipe (`| head`) is not an error.
fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("pathproof: cannot write the report: {e}");
    }
}

fn fail(e: &dyn std::error::Error) -> ExitCode {
    eprintln!("pathproof: error: {e}");
    ExitCode::from(EXIT_BAD_INPUT)
}
