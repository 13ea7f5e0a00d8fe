//! Live use and many captures, on the binary (no root needed): a capture
//! fed slowly through a pipe and interrupted, an unwritable `--save` found
//! before any probe, and directory mode against single runs.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pathproof"))
}

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {}", child.id());
}

fn context(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Starts `pathproof pcap - <extra>` and writes `bytes` into its stdin in
/// `pieces` pieces `pause` apart, keeping the pipe open: the input never
/// ends, only the signal can end the run. Returns the child with its stdin
/// still held.
fn feed_slowly(
    bytes: &[u8],
    pieces: usize,
    pause: Duration,
    extra: &[&str],
) -> (Child, std::process::ChildStdin) {
    let mut child = bin()
        .args(["pcap", "-"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pathproof runs");
    let mut stdin = child.stdin.take().expect("stdin");
    for chunk in bytes.chunks(bytes.len().div_ceil(pieces)) {
        stdin.write_all(chunk).expect("write to pathproof");
        stdin.flush().unwrap();
        std::thread::sleep(pause);
    }
    (child, stdin)
}

/// The bundled rst-hop2 capture without the last 10 bytes (its 16th frame
/// cut), fed in 4 pieces 0.4 s apart, then SIGINT while the pipe is still
/// open: the whole JSON report of the 15 frames that arrived, the live
/// verdict line on stderr, and the verdict's exit code.
#[test]
fn sigint_on_a_slow_pipe_prints_the_whole_report() {
    let capture = std::fs::read(captures().join("rst-hop2.sll.pcap")).unwrap();
    let sent = &capture[..capture.len() - 10];
    let (child, stdin) = feed_slowly(sent, 4, Duration::from_millis(400), &["--json"]);
    // Let the last piece be read and judged before the signal.
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", context(&out)));
    let class = json["verdict"]["class"].as_str().expect("verdict.class");
    assert_eq!(class, "rst-injected", "{}", context(&out));
    assert_eq!(json["verdict"]["hop"], 2, "{}", context(&out));
    assert_eq!(
        out.status.code(),
        Some(1),
        "the verdict's exit code\n{}",
        context(&out)
    );
    assert_eq!(json["input"]["frames"], 15, "{}", context(&out));
    let warnings = json["warnings"].to_string();
    assert!(warnings.contains("interrupted"), "{}", context(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pathproof: live [") && stderr.contains("VERDICT: rst-injected at hop 2"),
        "the verdict line while the input flows\n{}",
        context(&out)
    );
}

/// The same with SIGTERM and the text report: it starts with the verdict.
#[test]
fn sigterm_on_a_pipe_prints_the_text_report() {
    let capture = std::fs::read(captures().join("healthy.sll.pcap")).unwrap();
    let (child, stdin) = feed_slowly(&capture, 2, Duration::from_millis(300), &[]);
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, "-TERM");
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("VERDICT: healthy"), "{}", context(&out));
    assert_eq!(out.status.code(), Some(0), "{}", context(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning: interrupted"),
        "{}",
        context(&out)
    );
}

/// `--save` to a directory that does not exist: an error at once, before
/// any probe (a 100-round trace would take 100 s; the target is loopback).
#[test]
fn an_unwritable_save_path_fails_before_any_probe() {
    let bad = "/nonexistent-pathproof-dir/run.pcap";
    for args in [
        vec!["trace", "127.0.0.1", "-n", "-c", "100", "--save", bad],
        vec![
            "trace",
            "127.0.0.1",
            "--icmp",
            "-n",
            "-c",
            "100",
            "--save",
            bad,
        ],
        vec![
            "check",
            "127.0.0.1",
            "--resolver",
            "127.0.0.1",
            "--ntp",
            "127.0.0.1",
            "-n",
            "--save",
            bad,
        ],
    ] {
        let started = Instant::now();
        let out = bin().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}\n{}", context(&out));
        assert!(
            stderr.contains(bad),
            "{args:?}: the path is named\n{}",
            context(&out)
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{args:?}: not before probing ({:?})\n{}",
            started.elapsed(),
            context(&out)
        );
        assert!(
            out.stdout.is_empty(),
            "{args:?}: no report\n{}",
            context(&out)
        );
    }
}

/// The bundled captures (each top-level capture of `captures/`, linked into
/// a directory of their own): one JSON line per file, each with its file
/// name and the verdict a single run gives; the exit code is the worst.
#[test]
fn directory_mode_gives_one_line_per_capture_and_the_single_verdicts() {
    let dir = std::env::temp_dir().join(format!("pathproof-dir-mode-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(captures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".pcap") || name.ends_with(".pcapng")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 60, "bundled captures: {}", files.len());
    for f in &files {
        std::os::unix::fs::symlink(f, dir.join(f.file_name().unwrap())).unwrap();
    }
    // Not a capture: left out of directory mode.
    std::fs::write(dir.join("notes.txt"), "not a capture").unwrap();

    let out = bin()
        .args(["pcap"])
        .arg(&dir)
        .arg("--json")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), files.len(), "{}", context(&out));
    let mut worst = 0;
    for (line, file) in lines.iter().zip(&files) {
        let name = file.file_name().unwrap().to_string_lossy();
        let shown = line["input"]["file"].as_str().expect("input.file");
        assert!(shown.ends_with(&*name), "{shown} vs {name}");
        let single = bin().arg("pcap").arg(file).arg("--json").output().unwrap();
        let single_json: Value = serde_json::from_slice(&single.stdout).unwrap();
        assert_eq!(line["verdict"], single_json["verdict"], "{name}");
        assert_eq!(line["findings"], single_json["findings"], "{name}");
        if single.status.code() == Some(1) {
            worst = 1;
        }
    }
    assert_eq!(out.status.code(), Some(worst), "{}", context(&out));

    // Without --json: a table, one row per capture, then the same exit code.
    let table = bin().args(["pcap"]).arg(&dir).output().unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("FILE"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains(".pcap")).count(),
        files.len(),
        "{text}"
    );
    assert!(
        text.contains("rst-injected") && text.contains("hop 2"),
        "{text}"
    );
    assert_eq!(table.status.code(), Some(worst));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Several files on the command line, one of them not a capture: its own
/// error line (exit 2 for it), the others analysed; the overall exit code
/// is the worst verdict's (a failure found outranks the bad file).
#[test]
fn many_files_with_a_bad_one() {
    let bad = std::env::temp_dir().join(format!("pathproof-bad-{}.pcap", std::process::id()));
    std::fs::write(&bad, b"this is no capture").unwrap();
    let out = bin()
        .arg("pcap")
        .arg(captures().join("healthy.eth.pcap"))
        .arg(&bad)
        .arg(captures().join("rst-hop1.eth.pcap"))
        .arg("--json")
        .output()
        .unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", context(&out));
    assert_eq!(lines[0]["verdict"]["class"], "healthy");
    assert_eq!(lines[1]["exit_code"], 2);
    assert!(lines[1]["error"].is_string());
    assert_eq!(lines[2]["verdict"]["class"], "rst-injected");
    assert_eq!(out.status.code(), Some(1), "{}", context(&out));
    std::fs::remove_file(&bad).unwrap();
}

#[test]
fn completions_and_man_pages_come_from_the_command_line() {
    let out = bin().args(["completions", "bash"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(
        script.contains("--mtr") && script.contains("--follow"),
        "{script}"
    );
    let dir = std::env::temp_dir().join(format!("pathproof-man-{}", std::process::id()));
    let out = bin().arg("man").arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", context(&out));
    for page in [
        "pathproof.1",
        "pathproof-pcap.1",
        "pathproof-trace.1",
        "pathproof-check.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--follow` on a capture still being written: the verdict changes on
/// stderr as the rest is appended, and SIGINT prints the report of all of it.
#[test]
fn follow_reads_a_growing_file_until_sigint() {
    let capture = std::fs::read(captures().join("rst-hop2.sll.pcap")).unwrap();
    let file = std::env::temp_dir().join(format!("pathproof-follow-{}.pcap", std::process::id()));
    std::fs::write(&file, &capture[..900]).unwrap();
    let child = bin()
        .arg("pcap")
        .arg("--follow")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(&capture[900..])
        .unwrap();
    std::thread::sleep(Duration::from_millis(1800));
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    std::fs::remove_file(&file).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let live: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("pathproof: live"))
        .collect();
    assert!(
        live.len() >= 2,
        "the verdict line changed as the file grew\n{}",
        context(&out)
    );
    assert!(
        live.last().unwrap().contains("rst-injected at hop 2"),
        "{}",
        context(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("VERDICT: rst-injected at hop 2"),
        "{}",
        context(&out)
    );
    assert_eq!(out.status.code(), Some(1), "{}", context(&out));
}
