//! Robustness: the pathproof binary on every file of a directory tree must
//! finish (analysed, or a clean error) and never panic, die from a signal or
//! hang.
//!
//! - Always: `captures/public/` (captures written by other tools, see its
//!   README) and `captures/bad/`.
//! - `PATHPROOF_ROBUSTNESS_DIR=DIR cargo test --test robustness -- --nocapture`:
//!   every file under DIR, recursively (skipped, with a message, when unset).
//!   `PATHPROOF_ROBUSTNESS_TIMEOUT` sets the per-run limit in seconds (20).
//!
//! Each file is run twice, `pcap FILE --json` and `pcap FILE` (text).
//! Exit 0, 1, 3: analysed (the JSON must parse); 2: clean error (a message
//! on stderr, nothing on stdout). Anything else fails the test: exit 101 or
//! "panicked" on stderr (a panic), death by a signal, another exit code, or
//! a run past the time limit (killed: a hang).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pathproof");

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Analysed(i32),
    CleanError(String),
    Failure(String),
}

struct Run {
    code: Option<i32>,
    /// The signal that ended the process (Unix), if any.
    signal: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    timed_out: bool,
    elapsed: Duration,
}

fn timeout() -> Duration {
    let secs = std::env::var("PATHPROOF_ROBUSTNESS_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(20);
    Duration::from_secs(secs)
}

/// Runs pathproof with a time limit; kills it when the limit is reached.
fn run(args: &[&std::ffi::OsStr], limit: Duration) -> Run {
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pathproof");
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("stdout piped");
    let mut err = child.stderr.take().expect("stderr piped");
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for pathproof") {
            break s;
        }
        if start.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait for killed pathproof");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    #[cfg(unix)]
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    #[cfg(not(unix))]
    let signal = None;
    Run {
        code: status.code(),
        signal,
        stdout: out_t.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned(),
        timed_out,
        elapsed,
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// Judges one run of pathproof on `file`.
fn judge(file: &Path, json: bool, limit: Duration) -> Outcome {
    let mut args: Vec<&std::ffi::OsStr> = vec!["pcap".as_ref(), file.as_os_str()];
    if json {
        args.push("--json".as_ref());
    }
    let r = run(&args, limit);
    let mode = if json { "--json" } else { "text" };
    if r.timed_out {
        return Outcome::Failure(format!(
            "hang ({mode}): killed after {:.1} s",
            r.elapsed.as_secs_f64()
        ));
    }
    if r.stderr.contains("panicked") || r.code == Some(101) {
        return Outcome::Failure(format!(
            "panic ({mode}, exit {:?}): {}",
            r.code,
            r.stderr.trim()
        ));
    }
    match r.code {
        None => Outcome::Failure(format!(
            "killed by signal {:?} ({mode}): {}",
            r.signal,
            r.stderr.trim()
        )),
        Some(c @ (0 | 1 | 3)) => {
            if json {
                match serde_json::from_slice::<serde_json::Value>(&r.stdout) {
                    Ok(v) if v.get("schema_version").is_some() && v.get("verdict").is_some() => {
                        Outcome::Analysed(c)
                    }
                    Ok(_) => Outcome::Failure(format!(
                        "exit {c} but the JSON has no schema_version/verdict"
                    )),
                    Err(e) => Outcome::Failure(format!("exit {c} but stdout is not JSON: {e}")),
                }
            } else if r.stdout.is_empty() {
                Outcome::Failure(format!("exit {c} but no report on stdout ({mode})"))
            } else {
                Outcome::Analysed(c)
            }
        }
        Some(2) => {
            let msg = first_line(&r.stderr);
            if msg.is_empty() {
                Outcome::Failure(format!("exit 2 without a message ({mode})"))
            } else if !r.stdout.is_empty() {
                Outcome::Failure(format!("exit 2 but something on stdout ({mode}): {msg}"))
            } else {
                Outcome::CleanError(msg)
            }
        }
        Some(c) => Outcome::Failure(format!("unexpected exit {c} ({mode}): {}", r.stderr.trim())),
    }
}

/// A message with numbers and hex bytes replaced by `#`, cut to 140 characters.
fn normalize(msg: &str) -> String {
    let words: Vec<&str> = msg
        .split(' ')
        .map(|w| {
            let core = w.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            if !core.is_empty()
                && core.len() <= 16
                && core.chars().all(|c| c.is_ascii_hexdigit())
                && core.chars().any(|c| c.is_ascii_digit())
            {
                "#"
            } else {
                w
            }
        })
        .collect();
    words.join(" ").chars().take(140).collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

/// Runs every file under `dirs`; prints a summary; returns the failures.
fn check_dirs(label: &str, dirs: &[PathBuf]) -> Vec<String> {
    let mut files = Vec::new();
    for d in dirs {
        assert!(d.is_dir(), "{}: not a directory", d.display());
        collect(d, &mut files);
    }
    let limit = timeout();
    let (mut analysed, mut clean) = (0usize, 0usize);
    let mut by_code: BTreeMap<i32, usize> = BTreeMap::new();
    let mut messages: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut failures = Vec::new();
    for f in &files {
        let json = judge(f, true, limit);
        let text = judge(f, false, limit);
        for o in [&json, &text] {
            if let Outcome::Failure(why) = o {
                failures.push(format!("{}: {why}", f.display()));
            }
        }
        // The two modes read the same file: they must agree.
        let kind = |o: &Outcome| match o {
            Outcome::Analysed(c) => format!("exit {c}"),
            Outcome::CleanError(_) => "exit 2".to_string(),
            Outcome::Failure(_) => "failure".to_string(),
        };
        if kind(&json) != kind(&text)
            && !matches!(json, Outcome::Failure(_))
            && !matches!(text, Outcome::Failure(_))
        {
            failures.push(format!(
                "{}: --json gave {}, text gave {}",
                f.display(),
                kind(&json),
                kind(&text)
            ));
        }
        match json {
            Outcome::Analysed(c) => {
                analysed += 1;
                *by_code.entry(c).or_default() += 1;
            }
            Outcome::CleanError(msg) => {
                clean += 1;
                // Group messages by their words: the file name, numbers and
                // hex bytes are replaced.
                let shown = f.display().to_string();
                let key = normalize(&msg.replace(&shown, "FILE"));
                let e = messages.entry(key).or_insert((0, shown));
                e.0 += 1;
            }
            Outcome::Failure(_) => {}
        }
    }
    println!(
        "robustness [{label}]: {} files, {analysed} analysed (by exit code: {by_code:?}), {clean} clean errors, {} failures",
        files.len(),
        failures.len()
    );
    for (msg, (n, example)) in messages.iter().take(12) {
        println!("  clean error ×{n}: {msg}   (e.g. {example})");
    }
    for f in &failures {
        println!("  FAILURE: {f}");
    }
    failures
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn public_and_bad_captures_never_panic_or_hang() {
    let dirs = [repo().join("captures/public"), repo().join("captures/bad")];
    let failures = check_dirs("captures/public + captures/bad", &dirs);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn robustness_dir_never_panics_or_hangs() {
    let Some(dir) = std::env::var_os("PATHPROOF_ROBUSTNESS_DIR") else {
        println!(
            "SKIPPED robustness_dir_never_panics_or_hangs: set PATHPROOF_ROBUSTNESS_DIR to a directory of captures to run it"
        );
        return;
    };
    let failures = check_dirs(
        &PathBuf::from(&dir).display().to_string(),
        &[PathBuf::from(dir)],
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
