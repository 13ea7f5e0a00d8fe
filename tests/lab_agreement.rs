//! End-to-end agreement: for every check scenario, one lab, three views of
//! it that must give the same verdict (class and hop):
//!
//! 1. `pathproof check co2br.lab1.test ... --json --save FILE` inside conn,
//!    exactly as `tests/lab_check.rs` runs it, against
//!    [`Scenario::check_expected`];
//! 2. `pathproof pcap FILE --hops N --json` on that run's `--save` file,
//!    against the check (resolv-perms excepted: a file permission is not
//!    on the wire);
//! 3. for the scenarios a trace can see (a reset or a drop of TCP/443:
//!    rst-hop1, rst-hop2, broker-refuses, drop-443), `pathproof trace
//!    <broker address> -n --json -c 5 -i 0.2` inside conn, against the
//!    check. The trace's `verdict.class` is read when present, else its
//!    `verdict.kind` (today's trace JSON has only `kind`).
//!
//! The table is [`table`]: one row per scenario, run one after the other
//! (one lab at a time) in one test, which collects every disagreement and
//! fails listing them all. A row whose lab or run panics is a disagreement
//! too; its lab is torn down by the guard as the panic unwinds. Each row's
//! outputs are kept in `<CARGO_TARGET_TMPDIR>/lab-agreement/`.
//! `PATHPROOF_AGREEMENT_ONLY=rst-hop1,drop-443` runs only those rows.
//!
//! Needs root; skips loudly otherwise (`PATHPROOF_LAB_REQUIRED=1` makes a
//! skip fail).

mod support;

use serde_json::Value;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::check::{
    check_options, check_target_hop, pcap_of_save, run_check, run_in_conn, sntp_offset,
};
use support::lab::{self, Lab, Node, Scenario};
use support::sntp::SntpResponder;

/// One scenario and how its verdict is cross-examined.
#[derive(Clone, Debug)]
struct Row {
    scenario: Scenario,
    /// The check's expected `verdict.class` ([`Scenario::check_expected`]).
    class: &'static str,
    /// The check's expected `verdict.hop`.
    hop: Option<u8>,
    /// Reopen the check's `--save` file with `pcap` and compare.
    pcap: bool,
    /// Run `pathproof trace` against the broker and compare.
    trace: bool,
    /// More `check` options.
    extra: &'static [&'static str],
    /// Finding kinds the check must report besides its verdict (evidence
    /// that supports it).
    supporting: &'static [&'static str],
}

/// A row for `s`: its check expectation, pcap compared, no trace.
fn row(s: Scenario) -> Row {
    let want = s.check_expected();
    Row {
        scenario: s,
        class: want.class,
        hop: want.hop,
        pcap: true,
        trace: false,
        extra: &[],
        supporting: &[],
    }
}

impl Row {
    fn traced(self) -> Row {
        Row {
            trace: true,
            ..self
        }
    }

    fn no_pcap(self) -> Row {
        Row {
            pcap: false,
            ..self
        }
    }

    fn with(self, extra: &'static [&'static str]) -> Row {
        Row { extra, ..self }
    }

    fn supported_by(self, supporting: &'static [&'static str]) -> Row {
        Row { supporting, ..self }
    }
}

/// Every check scenario ([`Scenario::every`]), once.
fn table() -> Vec<Row> {
    use Scenario::*;
    vec![
        row(Healthy),
        row(RstHop1).traced(),
        row(RstHop2).traced(),
        row(BrokerRefuses).traced(),
        row(Drop443).traced(),
        // Not traced: the SNI filter resets the ClientHello, and a trace's
        // SYN probes carry none (they reach the broker).
        row(TlsReset),
        row(InterceptProxy),
        row(InterceptIssuer),
        row(NotYetValid),
        row(PmtuIcmp),
        row(PmtuBlackhole),
        // The TLS handshake stalls on the lost certificate flight: a
        // finding that supports the black hole, not the verdict.
        row(PmtuBlackholeFlight).supported_by(&["tls-blocked"]),
        row(DnsNxdomain),
        row(DnsTimeout),
        row(IcmpRatelimit),
        // As lab_check: 40 rounds, enough to tell 30 % loss from noise.
        row(RealLoss).with(&["-c", "40"]),
        // A file permission: nothing of it is on the wire.
        row(ResolvPerms).no_pcap(),
    ]
}

/// A verdict's class and hop (for a trace: `class`, else `kind`, and its
/// `status`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Verdict {
    class: Option<String>,
    hop: Option<u64>,
    status: Option<String>,
}

impl Verdict {
    /// `verdict.class` and `verdict.hop` of a check or pcap document.
    fn of(doc: &Value) -> Verdict {
        let v = &doc["verdict"];
        Verdict {
            class: v["class"].as_str().map(str::to_owned),
            hop: v["hop"].as_u64(),
            status: None,
        }
    }

    /// A trace document's verdict: `class` when the trace has one, else
    /// `kind`; `status` kept for the report.
    fn of_trace(doc: &Value) -> Verdict {
        let v = &doc["verdict"];
        let class = v
            .get("class")
            .and_then(Value::as_str)
            .or_else(|| v["kind"].as_str());
        Verdict {
            class: class.map(str::to_owned),
            hop: v["hop"].as_u64(),
            status: v["status"].as_str().map(str::to_owned),
        }
    }

    fn expected(row: &Row) -> Verdict {
        Verdict {
            class: Some(row.class.to_owned()),
            hop: row.hop.map(u64::from),
            status: None,
        }
    }

    /// Same class and hop (the status is not compared).
    fn agrees(&self, other: &Verdict) -> bool {
        self.class == other.class && self.hop == other.hop
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.class.as_deref().unwrap_or("(none)"))?;
        match self.hop {
            Some(h) => write!(f, " hop {h}")?,
            None => write!(f, " hop -")?,
        }
        if let Some(s) = &self.status {
            write!(f, " [{s}]")?;
        }
        Ok(())
    }
}

/// What one row gave.
struct Outcome {
    scenario: Scenario,
    check: Option<Verdict>,
    pcap: Option<Verdict>,
    trace: Option<Verdict>,
    took: Duration,
    problems: Vec<String>,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic)".to_owned())
}

/// Where each row's outputs are kept.
fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lab-agreement");
    std::fs::create_dir_all(&dir).expect("create the output dir");
    dir
}

fn keep(dir: &Path, s: Scenario, what: &str, text: &str) {
    let path = dir.join(format!("{}.{what}", s.name()));
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("lab_agreement: write {}: {e}", path.display());
    }
}

/// The summary sentence of a document's verdict, for messages.
fn summary(doc: &Value) -> &str {
    doc["verdict"]["summary"].as_str().unwrap_or("")
}

/// Builds the row's lab, runs check, pcap and trace, and compares.
fn run_row(row: &Row, dir: &Path, o: &mut Outcome) {
    let s = row.scenario;
    let lab = Lab::up(s, check_options());
    let _sntp = SntpResponder::start(lab.ns(Node::Dns), lab.resolver_addr(), sntp_offset(s));
    let save = lab.workdir().join("check.pcap");
    let check = run_check(&lab, lab::BROKER_LOCATOR, row.extra, &save);
    keep(dir, s, "check.json", &check.out.stdout);
    keep(dir, s, "check.stderr", &check.out.stderr);
    let _ = std::fs::copy(&save, dir.join(format!("{}.check.pcap", s.name())));
    let cv = Verdict::of(&check.json);
    o.check = Some(cv.clone());
    let want = Verdict::expected(row);
    if !cv.agrees(&want) {
        o.problems.push(format!(
            "check says {cv}, expected {want} ({}); `{}`",
            summary(&check.json),
            check.out.cmd
        ));
    }

    for kind in row.supporting {
        let found = check.json["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["kind"] == *kind));
        if !found {
            o.problems.push(format!(
                "check reports no {kind} finding (supporting {want})"
            ));
        }
    }

    if row.pcap {
        let hops = check_target_hop(&check.json);
        let (out, pj) = pcap_of_save(&save, hops);
        keep(dir, s, "pcap.json", &out.stdout);
        if pj.is_object() {
            let pv = Verdict::of(&pj);
            if !pv.agrees(&cv) {
                o.problems.push(format!(
                    "pcap of the check's --save says {pv}, check says {cv} ({}); `{}`",
                    summary(&pj),
                    out.cmd
                ));
            }
            o.pcap = Some(pv);
        } else {
            o.problems
                .push(format!("pcap printed no JSON\n{}", out.context()));
        }
    }

    if row.trace {
        let broker = lab::broker_addr().to_string();
        let trace = run_in_conn(
            &lab,
            &["trace", &broker, "-n", "--json", "-c", "5", "-i", "0.2"],
        );
        keep(dir, s, "trace.json", &trace.out.stdout);
        let tv = Verdict::of_trace(&trace.json);
        if !tv.agrees(&cv) {
            o.problems.push(format!(
                "trace says {tv}, check says {cv} ({}); `{}`",
                summary(&trace.json),
                trace.out.cmd
            ));
        }
        o.trace = Some(tv);
    }
}

fn selected(rows: Vec<Row>) -> Vec<Row> {
    let Ok(only) = std::env::var("PATHPROOF_AGREEMENT_ONLY") else {
        return rows;
    };
    let names: Vec<&str> = only
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    for n in &names {
        assert!(
            rows.iter().any(|r| r.scenario.name() == *n),
            "PATHPROOF_AGREEMENT_ONLY: no row {n}"
        );
    }
    rows.into_iter()
        .filter(|r| names.contains(&r.scenario.name()))
        .collect()
}

fn cell(v: &Option<Verdict>, ran: bool) -> String {
    match v {
        Some(v) => v.to_string(),
        None if ran => "(no result)".to_owned(),
        None => "-".to_owned(),
    }
}

#[test]
fn check_pcap_and_trace_agree() {
    require_root!();
    let dir = out_dir();
    let rows = selected(table());
    let mut outcomes = Vec::new();
    for row in &rows {
        let mut o = Outcome {
            scenario: row.scenario,
            check: None,
            pcap: None,
            trace: None,
            took: Duration::ZERO,
            problems: Vec::new(),
        };
        let started = Instant::now();
        let result = panic::catch_unwind(AssertUnwindSafe(|| run_row(row, &dir, &mut o)));
        if let Err(p) = result {
            o.problems
                .push(format!("the row panicked: {}", panic_message(&*p)));
        }
        o.took = started.elapsed();
        eprintln!(
            "lab_agreement: {:<22} want {:<26} check {:<26} pcap {:<26} trace {:<36} {:.1} s{}",
            row.scenario.name(),
            Verdict::expected(row).to_string(),
            cell(&o.check, true),
            cell(&o.pcap, row.pcap),
            cell(&o.trace, row.trace),
            o.took.as_secs_f64(),
            if o.problems.is_empty() {
                ""
            } else {
                "  DISAGREE"
            }
        );
        outcomes.push(o);
    }

    let disagreements: Vec<String> = outcomes
        .iter()
        .flat_map(|o| {
            o.problems
                .iter()
                .map(move |p| format!("- {}: {p}", o.scenario.name()))
        })
        .collect();
    let failed_rows = outcomes.iter().filter(|o| !o.problems.is_empty()).count();
    assert!(
        disagreements.is_empty(),
        "{failed_rows} of {} rows disagree ({} disagreements; outputs in {}):\n{}",
        outcomes.len(),
        disagreements.len(),
        dir.display(),
        disagreements.join("\n")
    );
}

/// The table has every check scenario exactly once (no root needed).
#[test]
fn table_covers_every_check_scenario() {
    let rows = table();
    let mut names: Vec<&str> = rows.iter().map(|r| r.scenario.name()).collect();
    names.sort_unstable();
    let mut every: Vec<&str> = Scenario::every().iter().map(|s| s.name()).collect();
    every.sort_unstable();
    assert_eq!(names, every);
    for r in &rows {
        let want = r.scenario.check_expected();
        assert_eq!((r.class, r.hop), (want.class, want.hop), "{r:?}");
    }
}
