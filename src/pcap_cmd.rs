//! `pathproof pcap`: one capture (a file, stdin read live, a file still
//! being written), or many (several files, directories) in parallel.

use crate::cli::PcapArgs;
use crate::progress::{Bar, Unit};
use crate::{expect_ca, fail, note_evidence, print, report_write_error, usage, write_html};
use pathproof::analysis::AnalysisOptions;
use pathproof::app::many::{Outcome, list_inputs, run_many};
use pathproof::app::{self, Live, PcapJob, Watch};
use pathproof::report;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Instant;

pub fn run(mut args: PcapArgs) -> ExitCode {
    let expect_ca = match expect_ca(args.expect_ca.as_deref()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let path = match app::user_path(args.mtr.as_deref(), args.hops) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let files = std::mem::take(&mut args.files);
    let job = PcapJob {
        input: PathBuf::new(),
        path,
        options: AnalysisOptions {
            server_ports: args.ports,
            expect_issuer: args.expect_issuer,
            expect_ca,
            broker_names: args.broker_names,
            ..AnalysisOptions::default()
        },
        journal: args.journal.map(|file| app::JournalInput {
            file,
            year: args.year.map(i32::from),
            utc_offset_secs: args.utc_offset,
        }),
        evidence: args.evidence.clone(),
    };
    match files.as_slice() {
        [one] if !one.is_dir() => {
            // Outputs are checked before the capture is read.
            if let Some(file) = &args.html
                && let Err(code) = write_html(file, "")
            {
                return code;
            }
            single(
                PcapJob {
                    input: one.clone(),
                    ..job
                },
                args.json,
                args.follow,
                args.html.as_deref(),
            )
        }
        _ if args.evidence.is_some() || args.html.is_some() => {
            usage("--evidence and --html take one capture, not several or a directory")
        }
        _ => many(&files, &job, args.json, args.follow),
    }
}

/// One capture, with its full report (text or JSON) as always. Stdin and
/// `--follow` are live: the verdict goes to stderr whenever it changes
/// while packets arrive, and the report comes when the input ends or at
/// SIGINT/SIGTERM.
fn single(job: PcapJob, json: bool, follow: bool, html: Option<&Path>) -> ExitCode {
    let stop = crate::signals::stop_flag();
    let live = follow || job.input == Path::new("-");
    let counter = Arc::new(AtomicU64::new(0));
    let bar = (!live).then(|| {
        Bar::start(Unit::Bytes {
            total: plain_size(&job.input),
            counter: Arc::clone(&counter),
        })
    });
    let started = Instant::now();
    let mut shown = String::new();
    let mut on_verdict = |v: &pathproof::vocab::Verdict| {
        let line = report::text::verdict_line(v);
        if line != shown {
            eprintln!(
                "pathproof: live [{:>6.1} s] {line}",
                started.elapsed().as_secs_f64()
            );
            shown = line;
        }
    };
    let watch = Watch {
        stop: Some(&stop),
        live: live.then_some(Live {
            follow,
            on_verdict: &mut on_verdict,
        }),
        bytes_read: Some(&counter),
    };
    let result = app::run_pcap_watched(job, watch);
    if let Some(b) = bar {
        b.finish();
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if json {
        let out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        report_write_error(report::json::write_pcap(&report, out));
    } else {
        print(&report::text::render_pcap(&report));
        for w in &report.warnings {
            eprintln!("pathproof: warning: {}", w.message);
        }
    }
    if let Some(e) = &report.evidence {
        note_evidence(e);
    }
    if let Some(file) = html
        && let Err(code) = write_html(file, &report::html::render_pcap(&report))
    {
        return code;
    }
    let code = report.analysis.verdict.exit_code();
    // The process ends here: freeing tens of thousands of flow records one
    // by one would only delay the exit.
    std::mem::forget(report);
    ExitCode::from(code)
}

/// The size of a capture that is read as it is (not gzip), for the bar.
fn plain_size(file: &Path) -> Option<u64> {
    let mut f = std::fs::File::open(file).ok()?;
    let mut magic = [0u8; 2];
    f.read_exact(&mut magic).ok()?;
    (magic != [0x1f, 0x8b]).then(|| f.metadata().ok().map(|m| m.len()))?
}

/// Many captures in parallel: a summary table, or one JSON object per line
/// (`--json`), in the order given (directories in name order); the exit
/// code is the worst (see [`report::many::worst_exit`]).
fn many(args: &[PathBuf], job: &PcapJob, json: bool, follow: bool) -> ExitCode {
    if follow {
        return usage("--follow reads one capture that is still being written, not several");
    }
    if args.iter().any(|a| a == Path::new("-")) {
        return usage("`-` (stdin) is read alone, not among other captures");
    }
    if job.journal.is_some() {
        return usage("--journal goes with one capture, not several");
    }
    let files = match list_inputs(args) {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    let stop: Arc<AtomicBool> = crate::signals::stop_flag();
    let bar = Bar::start(Unit::Captures {
        total: files.len() as u64,
    });
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let done = |_: usize, o: Outcome| {
        let row = row_of(&o, json);
        bar.inc();
        row
    };
    let rows = run_many(&files, job, workers, &stop, &done);
    bar.finish();
    let skipped = rows.iter().filter(|r| r.is_none()).count();
    let rows: Vec<(report::many::Row, Option<String>)> = rows.into_iter().flatten().collect();
    let exit = report::many::worst_exit(rows.iter().map(|(r, _)| r.exit));
    if json {
        let lines: Vec<&str> = rows.iter().filter_map(|(_, l)| l.as_deref()).collect();
        print(&lines.join("\n"));
        if skipped > 0 {
            eprintln!("pathproof: interrupted: {skipped} captures were not analysed");
        }
    } else {
        let table: Vec<report::many::Row> = rows.into_iter().map(|(r, _)| r).collect();
        print(&report::many::render(&table, skipped));
    }
    ExitCode::from(exit)
}

/// A capture's table row, and its JSON line when asked for.
fn row_of(o: &Outcome, json: bool) -> (report::many::Row, Option<String>) {
    let file = o.file.display().to_string();
    match &o.result {
        Ok(r) => {
            let v = &r.analysis.verdict;
            let place = match (v.hop, v.address) {
                (Some(h), Some(a)) => format!("hop {h} ({a})"),
                (Some(h), None) => format!("hop {h}"),
                (None, Some(a)) => a.to_string(),
                (None, None) => "-".into(),
            };
            let row = report::many::Row {
                file,
                outcome: Ok((v.class.to_string(), place)),
                exit: v.exit_code(),
            };
            (row, json.then(|| report::json::pcap_line(r)))
        }
        Err(e) => {
            let message = e.to_string();
            let line = json.then(|| report::json::pcap_error_line(&file, &message));
            let row = report::many::Row {
                file,
                outcome: Err(message),
                exit: pathproof::vocab::EXIT_BAD_INPUT,
            };
            (row, line)
        }
    }
}
