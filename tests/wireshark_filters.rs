//! Every Wireshark display filter pathproof prints for the bundled captures
//! goes through `tshark -Y`: it must be accepted by current Wireshark and
//! select exactly the frames the finding lists (frame numbers are
//! Wireshark's). A filter that matches by content (used when a finding has
//! more frames than it lists) must select exactly the packets it names.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::talk::{Capture, Talk};

fn tshark_available() -> bool {
    // As root where apt-get exists, the lab's packages (tshark among them)
    // are installed first, as for the lab tests.
    let _ = support::lab::lab_tools_ready();
    let ok = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("PATHPROOF_LAB_REQUIRED").is_none(),
            "tshark is required (apt-get install tshark)"
        );
        eprintln!("skipped: tshark not installed");
    }
    ok
}

/// The frames `filter` selects in `file`, or tshark's complaint.
fn tshark_select(file: &Path, filter: &str) -> Result<BTreeSet<u64>, String> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-Y", filter, "-T", "fields", "-e", "frame.number"])
        .output()
        .expect("tshark runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
}

fn pathproof_json(file: &Path, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_pathproof"))
        .arg("pcap")
        .arg(file)
        .args(extra)
        .arg("--json")
        .output()
        .expect("pathproof runs");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{}: JSON: {e}", file.display()))
}

#[test]
fn every_filter_for_the_bundled_captures_is_accepted_and_exact() {
    if !tshark_available() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "bundled captures missing in {}",
        dir.display()
    );

    // (file, filter, frames listed): each distinct filter and frame set once.
    let mut jobs: Vec<(PathBuf, String, BTreeSet<u64>, bool)> = Vec::new();
    let mut seen = BTreeSet::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let mtr = dir.join("rst-hop2.mtr.txt");
        let extra: Vec<&str> = if name.starts_with("rst-hop2") {
            vec!["--mtr", mtr.to_str().unwrap()]
        } else {
            Vec::new()
        };
        let json = pathproof_json(file, &extra);
        for f in json["findings"].as_array().unwrap() {
            let filter = f["filter"].as_str().unwrap_or_default().to_string();
            if filter.is_empty() {
                continue;
            }
            let frames: BTreeSet<u64> = f["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_u64().unwrap())
                .collect();
            let complete = f["frames_total"].as_u64() == Some(frames.len() as u64);
            if seen.insert((filter.clone(), frames.clone())) {
                jobs.push((file.clone(), filter, frames, complete));
            }
        }
    }
    assert!(jobs.len() >= 10, "too few filters: {}", jobs.len());

    // Two workers: tshark starts slowly, the machine has few cores.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let halves: Vec<_> = jobs
            .chunks(jobs.len().div_ceil(2))
            .map(|chunk| {
                scope.spawn(move || {
                    let mut bad = Vec::new();
                    for (file, filter, frames, complete) in chunk {
                        match tshark_select(file, filter) {
                            Err(e) => bad.push(format!(
                                "{}: tshark rejects `{filter}`: {e}",
                                file.display()
                            )),
                            Ok(sel) if *complete && sel != *frames => bad.push(format!(
                                "{}: `{filter}` selects {sel:?}, the finding lists {frames:?}",
                                file.display()
                            )),
                            Ok(sel) if sel.is_empty() => {
                                bad.push(format!("{}: `{filter}` selects nothing", file.display()))
                            }
                            Ok(_) => {}
                        }
                    }
                    bad
                })
            })
            .collect();
        halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Writes a capture of raw IPv4 packets (LINKTYPE_RAW) for tshark.
fn write_raw_pcap(c: &Capture, path: &Path) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&101u32.to_le_bytes());
    for (us, bytes) in &c.frames {
        out.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    std::fs::write(path, out).unwrap();
}

/// Forty refused connections with forged resets whose TTLs differ (two
/// initial TTLs, the same hop): the finding has more frames than it
/// lists, so its filter matches by content, and it must select exactly
/// the forty resets — whatever TTL each carries.
#[test]
fn a_content_filter_selects_exactly_the_resets() {
    if !tshark_available() {
        return;
    }
    let mut c = Capture::default();
    let mut resets = BTreeSet::new();
    for k in 0..40u16 {
        let mut t = Talk::new(48000 + k, 55);
        t.syn(&mut c);
        // Hop 3 from initial TTL 64 or 255.
        let ttl = if k % 2 == 0 { 62 } else { 253 };
        resets.insert(t.forged_rst(&mut c, ttl, 0, |s| s.seq = 0));
    }
    let dir = std::env::temp_dir().join(format!("pathproof-filters-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("forty-resets.pcap");
    write_raw_pcap(&c, &file);
    let json = pathproof_json(&file, &["--hops", "10"]);
    let f = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "rst-injected")
        .unwrap_or_else(|| panic!("no rst-injected finding: {json:#}"));
    assert_eq!(json["verdict"]["hop"], 3, "{:#}", json["verdict"]);
    assert_eq!(f["frames_total"], 80, "each reset and its SYN");
    let filter = f["filter"].as_str().unwrap();
    assert!(!filter.starts_with("frame.number"), "{filter}");
    let selected = tshark_select(&file, filter).unwrap_or_else(|e| panic!("`{filter}`: {e}"));
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(selected, resets, "`{filter}`");
}
