//! The connector's journal beside its packets, in the namespace lab: a
//! connector-like client on `conn` dials the lab broker, logs each
//! connection in the connector's own line format (journalctl's
//! short-precise form, UTC, to a file), and reconnects; an injector is
//! switched on at hop 2 (r2: `REJECT --reject-with tcp-reset`) half way.
//! `pathproof pcap --journal` must pair every logged close with the
//! injected reset that caused it and conclude `rst-injected` at hop 2.
//! Needs root; skips loudly otherwise (`PATHPROOF_LAB_REQUIRED=1` makes a
//! skip fail).

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use support::CommandOutput;
use support::lab::{self, Lab, LabOptions, Node, Scenario};

/// Closes the client logs once the injector is on.
const INJECTED_ATTEMPTS: usize = 3;

/// The connector-like client: `attempts` connections to the broker, each
/// logged as the connector logs its control connection, half a second
/// apart. Bash and openssl only (what the lab already has).
fn client_script(journal: &Path, attempts: usize) -> String {
    let broker = lab::broker_addr();
    format!(
        r#"J={journal}
log() {{ printf '%s conn zpa-connector-child[%d]: %s\n' "$(date -u '+%b %d %H:%M:%S.%6N')" $$ "$1" >> "$J"; }}
for i in $(seq 1 {attempts}); do
  if timeout 3 openssl s_client -connect {broker}:443 -servername {name} -brief </dev/null >/dev/null 2>&1; then
    log "Received event from [uninitialized]:0;{name}:[{broker}]:443: BEV_EVENT_CONNECTED, sock=12 using ECDHE-ECDSA-AES128-GCM-SHA256"
  else
    log "Received event from [uninitialized]:0;{name}:[{broker}]:443: BEV_EVENT_READING BEV_EVENT_ERROR, sock=12"
    log "Broker control connection to Zscaler Cloud closed"
  fi
  sleep 0.5
done
"#,
        journal = journal.display(),
        name = lab::BROKER_NAME,
    )
}

#[test]
fn pcap_journal_pairs_each_logged_close_with_the_injected_reset() {
    if lab::skip_unless_root("pcap_journal_pairs_each_logged_close_with_the_injected_reset") {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lab-journal");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("zpa-connector.journal.txt");
    let set = {
        let lab = Lab::up(Scenario::Healthy, LabOptions::default());
        let capture = lab.start_capture(&dir, "journal");
        // The usual workload first (lookup, pings, three good handshakes),
        // then the client: one connection while the path is clean...
        let workload = lab.run_workload();
        lab.exec(Node::Conn, &["bash", "-c", &client_script(&journal, 1)]);
        // ...then the injector at hop 2, and the client's reconnects.
        lab.exec(
            Node::R2,
            &[
                "iptables",
                "-w",
                "-A",
                "FORWARD",
                "-p",
                "tcp",
                "--dport",
                "443",
                "-j",
                "REJECT",
                "--reject-with",
                "tcp-reset",
            ],
        );
        lab.exec(
            Node::Conn,
            &["bash", "-c", &client_script(&journal, INJECTED_ATTEMPTS)],
        );
        lab.stop_capture(capture, workload)
    }; // lab torn down here

    let text = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(
        text.matches("Broker control connection to Zscaler Cloud closed")
            .count(),
        INJECTED_ATTEMPTS,
        "the client's journal:\n{text}"
    );
    for file in [&set.sll_pcap, &set.eth_pcapng] {
        let out = Command::new(env!("CARGO_BIN_EXE_pathproof"))
            .arg("pcap")
            .arg(file)
            .arg("--journal")
            .arg(&journal)
            .arg("--json")
            .output()
            .unwrap();
        let out = CommandOutput::of(format!("pathproof pcap {} --journal", file.display()), &out);
        let j: Value =
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{}", out.context()));
        let ctx = || format!("{}\njournal:\n{text}", out.context());
        assert_eq!(j["verdict"]["class"], "rst-injected", "{}", ctx());
        assert_eq!(j["verdict"]["hop"], 2, "{}", ctx());
        let pairs = j["journal"]["pairs"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", ctx()));
        let closes: Vec<&Value> = pairs
            .iter()
            .filter(|p| p["event"] == "control-closed")
            .collect();
        assert_eq!(closes.len(), INJECTED_ATTEMPTS, "{}", ctx());
        // Each close is paired with an injected reset, a few ms before it.
        let injected: Vec<u64> = j["rsts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["origin"] == "injected")
            .map(|r| r["frame"].as_u64().unwrap())
            .collect();
        assert_eq!(injected.len(), INJECTED_ATTEMPTS, "{}", ctx());
        for p in &closes {
            let frame = p["frame"].as_u64().unwrap_or(0);
            assert!(
                injected.contains(&frame),
                "{p} not paired with an injected reset: {}",
                ctx()
            );
            let delta = p["delta_ms"].as_f64().unwrap();
            assert!((0.0..2000.0).contains(&delta), "{p}: {}", ctx());
        }
        // Both clocks are the lab's: the offset is close to zero.
        let offset = j["journal"]["clock_offset_ms"].as_f64().unwrap();
        assert!(offset.abs() < 1000.0, "offset {offset} ms: {}", ctx());
    }
}
