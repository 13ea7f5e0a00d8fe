//! pathproof binary: parse the command line, run a job, print, map to an exit code.

#![forbid(unsafe_code)]

mod cli;
mod pcap_cmd;
mod progress;
mod shell_docs;
mod signals;
use pathproof::check::rdns;

// Every TLS handshake in a capture allocates (stream buffers, names,
// certificate summaries): mimalloc makes that a small cost instead of a
// quarter of the run on multi-gigabyte captures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use cli::{Cli, Command};
use pathproof::analysis::rules::issuer::PinnedCas;
use pathproof::app::trace::{TraceJob, run_trace};
use pathproof::report;
use pathproof::trace::TraceProtocol;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use pathproof::vocab::EXIT_BAD_INPUT;

fn main() -> ExitCode {
    // No transparent huge pages for this process: the allocator asks for
    // them, and then the first touch of any byte of a 2 MiB region zeroes
    // all of it. pathproof's memory is ~100 MB of scattered records, so that
    // zeroed (and, in a VM, had the host back) up to four times the memory
    // used; on the 2 GB benchmark it was the largest single cost of the
    // analysis thread. Failure only means huge pages stay on.
    let _ = nix::sys::prctl::set_thp_disable(true);
    let cli = Cli::parse();
    match cli.command {
        Command::Pcap(args) => pcap_cmd::run(args),
        Command::Trace(args) => trace(args),
        Command::Check(args) => check(args),
        Command::Journal(args) => journal(args),
        Command::Egress(args) => egress(args),
        Command::Completions { shell } => edge(shell_docs::completions(shell)),
        Command::Man { dir } => edge(shell_docs::man_pages(&dir)),
    }
}

fn egress(args: cli::EgressArgs) -> ExitCode {
    use pathproof::egress::{EgressConfig, ProxySetting, plan, run_egress};
    let expect_ca = match expect_ca(args.expect_ca.as_deref()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let proxy = if args.direct {
        ProxySetting::Direct
    } else if let Some(p) = args.proxy {
        ProxySetting::Given(p)
    } else if args.proxy_file.as_os_str() == pathproof::egress::proxy::DEFAULT_PROXY_FILE {
        ProxySetting::DefaultFile
    } else {
        ProxySetting::File(args.proxy_file)
    };
    let cfg = EgressConfig {
        cloud: args.cloud,
        destinations_file: args.destinations,
        resolvers: args.resolvers,
        resolv_conf: args.resolv_conf,
        service_user: args.service_user,
        proxy,
        ntp: args.ntp,
        expect_issuer: args.expect_issuer,
        expect_ca,
        timeout: args.timeout,
        require_udp: args.require_udp,
        localise: !args.no_trace,
        skew_threshold: args.skew_threshold,
        evidence: args.evidence,
        // SIGINT or SIGTERM: the report of what was measured so far.
        stop: Some(signals::stop_flag()),
        ..EgressConfig::default()
    };
    // Outputs are checked before any packet is sent.
    if let Some(file) = &args.html
        && let Err(code) = write_html(file, "")
    {
        return code;
    }
    let plan = match plan(&cfg) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let started = std::time::Instant::now();
    let report = run_egress(&cfg, &plan, |step| {
        // Progress on stderr (stdout is the report).
        eprintln!(
            "pathproof: egress [{:>5.1} s] {step}",
            started.elapsed().as_secs_f64()
        );
    });
    match &report.evidence {
        Some(e) => note_evidence(e),
        None if cfg.evidence.is_some() => eprintln!(
            "pathproof: evidence: nothing written: no trace recorded the packets of the verdict's failure (healthy, DNS or clock, a UDP trace, or no raw sockets)"
        ),
        None => {}
    }
    if let Some(file) = &args.html
        && let Err(code) = write_html(file, &report::html::render_egress(&report))
    {
        return code;
    }
    let text = if args.json {
        report::egress::render_json(&report)
    } else {
        report::egress::render_text(&report)
    };
    print(&text);
    ExitCode::from(report.exit_code)
}

/// Reads `--expect-ca FILE`; a file that cannot be used is a usage error.
fn expect_ca(
    file: Option<&std::path::Path>,
) -> Result<Option<std::sync::Arc<PinnedCas>>, ExitCode> {
    match file.map(PinnedCas::load).transpose() {
        Ok(p) => Ok(p.map(std::sync::Arc::new)),
        Err(e) => Err(fail(&e)),
    }
}

fn check(args: cli::CheckArgs) -> ExitCode {
    use pathproof::check::{CheckConfig, run_check};
    let expect_ca = match expect_ca(args.expect_ca.as_deref()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let resolvers = args.resolvers.clone();
    let cfg = CheckConfig {
        targets: args.targets,
        cloud: args.cloud,
        resolvers: args.resolvers,
        service_user: args.service_user,
        sni: args.sni,
        port: args.port,
        expect_issuer: args.expect_issuer,
        expect_ca,
        ntp: args.ntp,
        skew_threshold: args.skew_threshold,
        max_brokers: usize::from(args.max_brokers),
        trace_rounds: args.count,
        trace_interval: args.interval,
        pmtu: !args.no_pmtu,
        save: args.save,
        evidence: args.evidence,
        // SIGINT or SIGTERM: the report of what was measured so far.
        stop: Some(signals::stop_flag()),
        ..CheckConfig::default()
    };
    let started = std::time::Instant::now();
    let result = run_check(&cfg, |step| {
        // Progress on stderr (stdout is the report): one line per step.
        eprintln!(
            "pathproof: check [{:>5.1} s] {step}",
            started.elapsed().as_secs_f64()
        );
    });
    let report = match result {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let mut names = report::trace::Names::new();
    if !args.numeric {
        for b in &report.brokers {
            if let Some(t) = &b.trace {
                // The check's resolver, not necessarily resolv.conf's.
                let server = resolvers.first().copied();
                names.extend(rdns::lookup_all_via(
                    t,
                    server,
                    std::time::Duration::from_millis(1500),
                ));
            }
        }
    }
    let text = if args.json {
        report::check::render_json(&report, &names)
    } else {
        report::check::render_text(&report, &names)
    };
    print(&text);
    if let Some(e) = report.capture.as_ref().and_then(|c| c.evidence.as_ref()) {
        note_evidence(e);
    }
    if let Some(file) = &args.html
        && let Err(code) = write_html(file, &report::html::render_check(&report, &names))
    {
        return code;
    }
    ExitCode::from(report.verdict.exit_code())
}

fn trace(args: cli::TraceArgs) -> ExitCode {
    let p = args.protocol;
    let protocol = if p.icmp {
        if args.port.is_some() {
            return usage("--port applies to --tcp and --udp probes, not --icmp");
        }
        TraceProtocol::Icmp
    } else if p.udp {
        TraceProtocol::Udp {
            port: args.port.unwrap_or(33434),
        }
    } else {
        TraceProtocol::Tcp {
            port: args.port.unwrap_or(443),
        }
    };
    let job = TraceJob {
        target: args.target.clone(),
        protocol,
        rounds: args.count,
        interval: args.interval,
        max_ttl: args.max_ttl,
        timeout: args.timeout,
        no_control: args.no_control,
        control_icmp: args.control_icmp,
        save: args.save.clone(),
        // SIGINT or SIGTERM: the report of the rounds measured so far.
        stop: Some(signals::stop_flag()),
    };
    let planned = job.resolve().and_then(|target| job.plan(target));
    let live_job = match planned {
        Ok(j) => j,
        Err(e) => return usage(&e.to_string()),
    };
    let target = live_job.config.target;
    let live = !args.json && !args.report;
    let tty = std::io::stderr().is_terminal();
    let rounds = args.count;
    let mut drawn_lines = 0usize;
    let result = run_trace(live_job, |progress| {
        if !live {
            return;
        }
        let mut err = std::io::stderr().lock();
        if tty {
            let frame = report::trace::live_frame(
                &progress.hops(),
                target,
                protocol,
                progress.rounds_sent,
                rounds,
            );
            let clear = if drawn_lines > 0 {
                format!("\x1b[{drawn_lines}A\x1b[J")
            } else {
                String::new()
            };
            drawn_lines = frame.lines().count();
            let _ = write!(err, "{clear}{frame}");
        } else {
            let target_hop = progress
                .target_hop
                .map_or_else(|| "not reached yet".to_string(), |h| format!("at hop {h}"));
            let _ = writeln!(
                err,
                "pathproof: trace {target}: {}/{rounds} rounds sent, target {target_hop}",
                progress.rounds_sent
            );
        }
        let _ = err.flush();
    });
    if tty && drawn_lines > 0 {
        let _ = write!(std::io::stderr(), "\x1b[{drawn_lines}A\x1b[J");
    }
    let (result, judged) = match result {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if result.access == pathproof::trace::socket::Access::UnprivilegedIcmp && !args.json {
        eprintln!(
            "pathproof: note: no raw-socket privilege; traced with unprivileged ICMP sockets \
             (see the report for what this mode cannot see)"
        );
    }
    let names = if args.numeric {
        report::trace::Names::new()
    } else {
        rdns::lookup_all(&result, std::time::Duration::from_millis(1500))
    };
    let text = if args.json {
        report::trace::render_json(&result, &judged, &names)
    } else {
        report::trace::render_text(&result, &judged, &names)
    };
    print(&text);
    ExitCode::from(judged.verdict.exit_code())
}

fn journal(args: cli::JournalArgs) -> ExitCode {
    use pathproof::app::journal::{JournalJob, run_journal};
    let job = JournalJob {
        input: args.file,
        options: pathproof::journal::JournalOptions {
            year: args.year.map(i32::from),
            utc_offset_secs: args.utc_offset,
            current_year: None,
        },
    };
    let report = match run_journal(job) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let text = if args.json {
        report::journal::render_json(&report)
    } else {
        report::journal::render_text(&report)
    };
    print(&text);
    ExitCode::from(report.judgement.verdict.exit_code())
}

/// Exit code of a job that only writes files or text (no verdict).
fn edge(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pathproof: error: {e:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("pathproof: error: {message}");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// Writes the `--html` page; an unwritable file is an error (exit 2).
pub(crate) fn write_html(file: &std::path::Path, page: &str) -> Result<(), ExitCode> {
    std::fs::write(file, page).map_err(|e| {
        eprintln!("pathproof: error: cannot write {}: {e}", file.display());
        ExitCode::from(EXIT_BAD_INPUT)
    })
}

/// Says on stderr what `--evidence` wrote and whether the file alone
/// reaches the same verdict.
pub(crate) fn note_evidence(e: &pathproof::app::evidence::EvidenceSummary) {
    let hop = e
        .reread_hop
        .map_or(String::new(), |h| format!(" at hop {h}"));
    let left = if e.left_out > 0 {
        format!(", {} more evidence frames left out", e.left_out)
    } else {
        String::new()
    };
    if e.same_verdict {
        eprintln!(
            "pathproof: evidence: {} packets written to {}{left}; read alone it gives the same verdict ({}{hop})",
            e.packets, e.file, e.reread_class
        );
    } else {
        eprintln!(
            "pathproof: warning: evidence: {} packets written to {}{left}, but read alone it gives {}{hop}: the verdict also rests on packets or facts not in it",
            e.packets, e.file, e.reread_class
        );
    }
}

/// Prints the report, ending with a newline; a closed pipe (`| head`) is
/// not an error.
fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let end: &[u8] = if text.ends_with('\n') { b"" } else { b"\n" };
    report_write_error(
        out.write_all(text.as_bytes())
            .and_then(|_| out.write_all(end))
            .and_then(|_| out.flush()),
    );
}

fn report_write_error(result: std::io::Result<()>) {
    if let Err(e) = result
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("pathproof: cannot write the report: {e}");
    }
}

fn fail(e: &dyn std::error::Error) -> ExitCode {
    eprintln!("pathproof: error: {e}");
    ExitCode::from(EXIT_BAD_INPUT)
}
