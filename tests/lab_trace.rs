//! End-to-end: `pathproof trace` on the namespace lab, run inside conn
//! (`ip netns exec <conn> pathproof trace <lab address> -n --json ...`).
//! Every probe stays inside the lab's namespaces; every target is a lab
//! address. Needs root; skips loudly otherwise (`PATHPROOF_LAB_REQUIRED=1`
//! makes a skip fail).
//!
//! The routers' kernel ICMP rate limit (`net.ipv4.icmp_ratelimit`, 1 s per
//! destination after a burst of ~6) is turned off in these labs: the tests
//! probe 5–10 times a second, and the kernel's limiter would make every
//! router look rate-limited. The icmp-ratelimit scenario adds its own
//! limiter with iptables.

mod support;

use serde_json::Value;
use std::process::Command;
use support::CommandOutput;
use support::lab::{self, Lab, LabOptions, Node, Scenario};

fn pathproof() -> &'static str {
    env!("CARGO_BIN_EXE_pathproof")
}

struct Run {
    out: CommandOutput,
    json: Value,
}

/// `run.code`, `run.context()`: the command's own fields.
impl std::ops::Deref for Run {
    type Target = CommandOutput;
    fn deref(&self) -> &CommandOutput {
        &self.out
    }
}

impl Run {
    fn hops(&self) -> &Vec<Value> {
        self.json["hops"].as_array().expect("hops[]")
    }

    /// `addresses[0]` of each hop (null for a silent one).
    fn first_addrs(&self, hops: &Value) -> Vec<String> {
        hops.as_array()
            .expect("hops")
            .iter()
            .map(|h| h["addresses"][0].as_str().unwrap_or("???").to_owned())
            .collect()
    }

    fn hop(&self, ttl: u64) -> &Value {
        self.hops()
            .iter()
            .find(|h| h["ttl"].as_u64() == Some(ttl))
            .unwrap_or_else(|| panic!("no hop {ttl}\n{}", self.context()))
    }

    fn findings(&self) -> Vec<&Value> {
        self.json["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .collect()
    }

    fn finding(&self, kind: &str) -> &Value {
        self.findings()
            .into_iter()
            .find(|f| f["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} finding\n{}", self.context()))
    }

    fn kinds(&self) -> Vec<&str> {
        self.findings()
            .iter()
            .map(|f| f["kind"].as_str().unwrap_or(""))
            .collect()
    }
}

/// Options for trace labs: kernel ICMP rate limiting off on the routers.
fn trace_options(ipv6: bool) -> LabOptions {
    let mut sysctls = Vec::new();
    for r in [Node::R1, Node::R2, Node::R3] {
        sysctls.push((r, "net.ipv4.icmp_ratelimit=0".to_owned()));
        if ipv6 {
            sysctls.push((r, "net.ipv6.icmp.ratelimit=0".to_owned()));
        }
    }
    LabOptions {
        sysctls,
        ipv6,
        ..LabOptions::default()
    }
}

/// `pathproof <args>` inside conn.
fn run_in_conn(lab: &Lab, args: &[&str]) -> Run {
    let mut all = vec![pathproof()];
    all.extend_from_slice(args);
    let out = lab.try_exec(Node::Conn, &all);
    let out = CommandOutput::of(
        format!("ip netns exec {} {}", lab.ns(Node::Conn), all.join(" ")),
        &out,
    );
    let run = Run {
        json: serde_json::from_str(&out.stdout).unwrap_or(Value::Null),
        out,
    };
    assert!(
        run.json.is_object(),
        "stdout is not JSON\n{}",
        run.context()
    );
    assert_eq!(run.json["schema_version"], 1, "{}", run.context());
    assert_eq!(run.json["command"], "trace", "{}", run.context());
    run
}

fn trace(lab: &Lab, target: &str, extra: &[&str]) -> Run {
    let mut args = vec!["trace", target, "-n", "--json"];
    args.extend_from_slice(extra);
    run_in_conn(lab, &args)
}

fn path_v4() -> Vec<String> {
    (1..=4).map(|h| lab::hop_addr(h).to_string()).collect()
}

#[test]
fn trace_healthy_tcp_and_icmp_control() {
    require_root!();
    let lab = Lab::up(Scenario::Healthy, trace_options(false));
    let broker = lab.broker_addr().to_string();
    let r = trace(&lab, &broker, &["-c", "10", "-i", "0.2"]);
    assert_eq!(r.code, Some(0), "{}", r.context());
    assert_eq!(r.json["protocol"], "tcp");
    assert_eq!(r.json["port"], 443);
    assert_eq!(r.json["access"], "raw");
    assert_eq!(r.json["target_hop"], 4, "{}", r.context());
    assert_eq!(r.hops().len(), 4, "{}", r.context());
    assert_eq!(r.first_addrs(&r.json["hops"]), path_v4(), "{}", r.context());
    for h in r.hops() {
        assert_eq!(h["loss_pct"], 0.0, "{}", r.context());
        assert_eq!(h["sent"], 10);
        assert!(h["rtt_ms"]["avg"].as_f64().is_some());
        for k in ["last", "best", "worst", "stdev"] {
            assert!(h["rtt_ms"][k].is_number(), "{k}");
        }
        // The reply TTLs place every answer at its own hop.
        assert_eq!(h["reply_ttls"][0]["hop"], h["ttl"], "{}", r.context());
    }
    assert_eq!(r.hop(4)["replies"][0]["kind"], "syn-ack");
    // The ICMP control trace ran beside it and sees the same path.
    assert_eq!(r.json["control"]["protocol"], "icmp");
    assert_eq!(r.json["control"]["target_hop"], 4);
    assert_eq!(r.first_addrs(&r.json["control"]["hops"]), path_v4());
    assert_eq!(r.kinds(), ["target-reached"], "{}", r.context());
    assert_eq!(r.json["verdict"]["status"], "no-failure");
    // 10 rounds 0.2 s apart, each answered within a millisecond: ~1.8 s.
    let ms = r.json["duration_ms"].as_f64().unwrap();
    assert!(ms < 3_000.0, "took {ms} ms");
}

#[test]
fn trace_drop_443_tcp_stops_icmp_goes_on() {
    require_root!();
    let lab = Lab::up(Scenario::Drop443, trace_options(false));
    let broker = lab.broker_addr().to_string();
    let r = trace(&lab, &broker, &["-c", "5", "-i", "0.2", "--timeout", "0.5"]);
    assert_eq!(r.code, Some(1), "{}", r.context());
    assert_eq!(r.json["target_hop"], Value::Null);
    // r2 drops TCP/443 in its FORWARD chain, after the TTL check: TCP probes
    // expiring at r2 are still answered, so the TCP trace sees hops 1 and 2.
    assert_eq!(
        r.first_addrs(&r.json["hops"]),
        [lab.hop_addr(1).to_string(), lab.hop_addr(2).to_string()],
        "{}",
        r.context()
    );
    assert_eq!(r.json["control"]["target_hop"], 4, "{}", r.context());
    let f = r.finding("tcp-blocked");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["hop"], 2, "{}", r.context());
    assert_eq!(f["address"], lab.hop_addr(2).to_string());
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.contains("after hop 2") && summary.contains(&lab.hop_addr(3).to_string()),
        "{summary}"
    );
    assert_eq!(r.json["verdict"]["kind"], "tcp-blocked");
}

#[test]
fn trace_rst_hop1_is_a_middlebox_with_ttl_64() {
    require_root!();
    let lab = Lab::up(Scenario::RstHop1, trace_options(false));
    let broker = lab.broker_addr().to_string();
    let r = trace(&lab, &broker, &["-c", "5", "-i", "0.2"]);
    assert_eq!(r.code, Some(1), "{}", r.context());
    // r1 rejects in FORWARD: TTL 1 expires at r1 (time exceeded), TTL 2
    // gets r1's RST in the broker's name.
    assert_eq!(r.json["target_hop"], 2, "{}", r.context());
    let h2 = r.hop(2);
    assert_eq!(h2["addresses"][0], broker);
    assert_eq!(h2["replies"][0]["kind"], "rst");
    assert_eq!(h2["reply_ttls"][0]["ttl"], 64);
    assert_eq!(h2["reply_ttls"][0]["hop"], 1);
    assert_eq!(r.json["control"]["target_hop"], 4);
    let f = r.finding("rst-injected");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["hop"], 1, "{}", r.context());
    assert!(
        f["summary"].as_str().unwrap().contains("TTL 64"),
        "{}",
        r.context()
    );
    assert_eq!(r.findings()[0]["kind"], "rst-injected");
    assert!(!r.kinds().contains(&"target-reached"));
}

#[test]
fn trace_icmp_ratelimit_is_not_loss() {
    require_root!();
    let lab = Lab::up(Scenario::IcmpRatelimit, trace_options(false));
    let broker = lab.broker_addr().to_string();
    let r = trace(&lab, &broker, &["--icmp", "-c", "10", "-i", "0.2"]);
    assert_eq!(r.code, Some(0), "{}", r.context());
    assert_eq!(r.json["target_hop"], 4);
    // r2 answers ~1 probe a second out of 5.
    let h2 = r.hop(2);
    assert!(h2["loss_pct"].as_f64().unwrap() >= 50.0, "{}", r.context());
    for ttl in [1, 3, 4] {
        assert_eq!(r.hop(ttl)["loss_pct"], 0.0, "{}", r.context());
    }
    let f = r.finding("icmp-rate-limit");
    assert_eq!(f["hop"], 2);
    assert_eq!(f["address"], lab.hop_addr(2).to_string());
    assert_eq!(f["severity"], "info");
    assert!(!r.kinds().contains(&"path-loss"), "{}", r.context());
}

#[test]
fn trace_real_loss_from_hop_3() {
    require_root!();
    let lab = Lab::up(Scenario::RealLoss, trace_options(false));
    let broker = lab.broker_addr().to_string();
    // 60 rounds at 10/s: r2 drops 30 % each way, so hops 3 and 4 lose ~51 %.
    let r = trace(
        &lab,
        &broker,
        &["--icmp", "-c", "60", "-i", "0.1", "--timeout", "0.5"],
    );
    assert_eq!(r.code, Some(1), "{}", r.context());
    assert_eq!(r.json["target_hop"], 4, "{}", r.context());
    for ttl in [1, 2] {
        assert_eq!(r.hop(ttl)["loss_pct"], 0.0, "{}", r.context());
    }
    for ttl in [3, 4] {
        let l = r.hop(ttl)["loss_pct"].as_f64().unwrap();
        assert!(
            (25.0..=75.0).contains(&l),
            "hop {ttl}: {l}%\n{}",
            r.context()
        );
    }
    let f = r.finding("path-loss");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["hop"], 3, "{}", r.context());
    assert_eq!(f["address"], lab.hop_addr(3).to_string());
    assert!(!r.kinds().contains(&"icmp-rate-limit"), "{}", r.context());
    assert_eq!(r.json["verdict"]["kind"], "path-loss");
}

#[test]
fn trace_ipv6_healthy_path() {
    require_root!();
    let lab = Lab::up(Scenario::Healthy, trace_options(true));
    let broker = lab::broker_addr6().to_string();
    // The broker's TLS server is IPv4-only: its kernel resets TCP/443 on
    // IPv6, a genuine answer from hop 4 (hop limit 61).
    let r = trace(&lab, &broker, &["-c", "5", "-i", "0.2"]);
    assert_eq!(r.json["target_hop"], 4, "{}", r.context());
    let want: Vec<String> = (1..=4).map(|h| lab::hop_addr6(h).to_string()).collect();
    assert_eq!(r.first_addrs(&r.json["hops"]), want, "{}", r.context());
    for h in r.hops() {
        assert_eq!(h["loss_pct"], 0.0, "{}", r.context());
        // Real hop limits (rebuilt from IPV6_HOPLIMIT): 64 − hop + 1.
        assert_eq!(h["reply_ttls"][0]["hop"], h["ttl"], "{}", r.context());
    }
    assert_eq!(r.hop(4)["replies"][0]["kind"], "rst");
    assert_eq!(r.hop(4)["reply_ttls"][0]["ttl"], 61);
    assert_eq!(r.json["control"]["target_hop"], 4);
    assert_eq!(r.first_addrs(&r.json["control"]["hops"]), want);
    assert!(!r.kinds().contains(&"rst-injected"), "{}", r.context());
    // The path is healthy, but nothing listens on the broker's IPv6
    // address: the port is refused by the broker itself, as `pcap` of the
    // same packets says (rst-from-target at its hop, exit 1).
    assert_eq!(
        r.json["verdict"]["class"],
        "rst-from-target",
        "{}",
        r.context()
    );
    assert_eq!(r.json["verdict"]["hop"], 4, "{}", r.context());
    assert_eq!(r.code, Some(1), "{}", r.context());
}

#[test]
fn trace_unprivileged_icmp_fallback() {
    require_root!();
    let lab = Lab::up(Scenario::Healthy, trace_options(true));
    lab.exec(
        Node::Conn,
        &[
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ping_group_range=0 2147483647",
        ],
    );
    // The test binary may live under /root (not readable by nobody): copy it.
    let bin = std::env::temp_dir().join(format!("pathproof-unpriv-{}", std::process::id()));
    std::fs::copy(pathproof(), &bin).expect("copy the binary");
    let bin_s = bin.to_string_lossy().into_owned();
    let as_nobody = |args: &[&str]| {
        let mut all = vec![
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            &bin_s,
        ];
        all.extend_from_slice(args);
        lab.try_exec(Node::Conn, &all)
    };
    for target in [
        lab.broker_addr().to_string(),
        lab::broker_addr6().to_string(),
    ] {
        let out = as_nobody(&[
            "trace", &target, "--icmp", "-n", "--json", "-c", "5", "-i", "0.2",
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert_eq!(json["access"], "unprivileged-icmp");
        assert_eq!(json["target_hop"], 4, "{stdout}");
        let hops = json["hops"].as_array().unwrap();
        assert_eq!(hops.len(), 4);
        for h in hops {
            assert_eq!(h["loss_pct"], 0.0, "{stdout}");
            // Reply TTLs of time-exceeded errors come from the error queue too.
            assert_eq!(h["reply_ttls"][0]["hop"], h["ttl"], "{stdout}");
        }
        assert!(!json["limitations"].as_array().unwrap().is_empty());
    }
    // TCP needs raw sockets: a clear error, exit code 2.
    let out = as_nobody(&["trace", &lab.broker_addr().to_string(), "-n", "-c", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("raw sockets") && stderr.contains("setcap cap_net_raw+ep"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(&bin);
}

#[test]
fn trace_save_writes_a_pcap_that_pathproof_reads() {
    require_root!();
    let lab = Lab::up(Scenario::RstHop1, trace_options(false));
    let broker = lab.broker_addr().to_string();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("lab-trace-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("trace.pcap");
    let file_s = file.to_string_lossy().into_owned();
    let r = trace(&lab, &broker, &["-c", "3", "-i", "0.2", "--save", &file_s]);
    let saved: Vec<&str> = r.json["saved"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let control = dir.join("trace.icmp-control.pcap");
    assert_eq!(saved, [file_s.as_str(), &control.to_string_lossy()]);
    // Every probe and answer is a frame; the findings' frame numbers index it.
    let out = Command::new(pathproof())
        .args(["pcap", &file_s, "--json", "--hops", "4"])
        .output()
        .unwrap();
    let pcap: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(pcap["input"]["link_types"][0], "RAW", "{pcap}");
    let c = &r.json["counters"];
    let frames = c["sent"].as_u64().unwrap()
        + c["answered"].as_u64().unwrap()
        + c["late"].as_u64().unwrap()
        + c["duplicates"].as_u64().unwrap();
    assert_eq!(pcap["input"]["frames"], frames);
    assert_eq!(pcap["input"]["undecodable_frames"], 0);
    // The forged resets are in it, and the pcap analysis sees them too.
    let rsts = pcap["rsts"].as_array().unwrap();
    assert!(!rsts.is_empty(), "{pcap}");
    assert!(rsts.iter().all(|e| e["ttl"] == 64));
    let f = r.finding("rst-injected");
    let rst_frames: Vec<u64> = rsts.iter().filter_map(|e| e["frame"].as_u64()).collect();
    for fr in f["frames"].as_array().unwrap() {
        assert!(
            rst_frames.contains(&fr.as_u64().unwrap()),
            "{fr} not a RST frame"
        );
    }
    assert!(control.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `trace -c 1000` (200 s at 0.2 s a round) interrupted by SIGINT after
/// about 3 s, inside conn: the JSON report of the rounds sent until then
/// (fewer than asked, the interruption said), the verdict present, and the
/// verdict's exit code.
#[test]
fn trace_sigint_prints_the_rounds_measured() {
    require_root!();
    let lab = Lab::up(Scenario::RstHop1, trace_options(false));
    let broker = lab.broker_addr().to_string();
    // `ip netns exec` execs pathproof: the child's id is pathproof's.
    let child = Command::new("ip")
        .args(["netns", "exec", lab.ns(Node::Conn), pathproof()])
        .args(["trace", &broker, "-n", "--json", "-c", "1000", "-i", "0.2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pathproof runs");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(killed, "kill -INT");
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let out = CommandOutput::of("pathproof trace -c 1000 (SIGINT after 3 s)".into(), &out);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the report came {:?} after SIGINT\n{}",
        started.elapsed(),
        out.context()
    );
    let json: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", out.context()));
    let status = json["verdict"]["status"].as_str().expect("verdict.status");
    let expected = match status {
        "failure" => 1,
        "no-failure" => 0,
        _ => 3,
    };
    assert_eq!(
        out.code,
        Some(expected),
        "the verdict's exit code\n{}",
        out.context()
    );
    // rst-hop1: the trace's verdict names the reset at hop 1, as an
    // uninterrupted trace of this lab does.
    assert_eq!(out.code, Some(1), "{}", out.context());
    let f = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == "rst-injected")
        .unwrap_or_else(|| panic!("no rst-injected finding\n{}", out.context()));
    assert_eq!(f["hop"], 1, "{}", out.context());
    let sent = json["hops"][0]["sent"].as_u64().expect("hops[0].sent");
    assert!(
        (5..1000).contains(&sent),
        "rounds sent: {sent}\n{}",
        out.context()
    );
    assert!(
        json["warnings"].to_string().contains("interrupted"),
        "{}",
        out.context()
    );
}
