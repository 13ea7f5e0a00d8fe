//! Running `pathproof check` (and `pathproof pcap` on its `--save` file)
//! in the namespace lab, as `tests/lab_check.rs` and
//! `tests/lab_agreement.rs` do: inside conn, with the lab's resolver and
//! SNTP responder given explicitly (`--resolver 198.18.10.2 --ntp
//! 198.18.10.2`), so no packet leaves the lab.

use super::CommandOutput;
use super::lab::{self, Lab, LabOptions, Node, Scenario};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

pub fn pathproof() -> &'static str {
    env!("CARGO_BIN_EXE_pathproof")
}

/// Lab options for checks: the routers' kernel ICMP rate limit off, as in
/// the trace tests (the check probes several times a second).
pub fn check_options() -> LabOptions {
    let sysctls = [Node::R1, Node::R2, Node::R3]
        .into_iter()
        .map(|r| (r, "net.ipv4.icmp_ratelimit=0".to_owned()))
        .collect();
    LabOptions {
        sysctls,
        ..LabOptions::default()
    }
}

/// A pathproof run: its output, its JSON and how long it took.
pub struct Run {
    pub out: CommandOutput,
    pub json: Value,
    pub took: Duration,
}

/// Runs `pathproof <args>` inside conn; panics unless stdout is a JSON
/// object.
pub fn run_in_conn(lab: &Lab, args: &[&str]) -> Run {
    let mut all = vec![pathproof()];
    all.extend_from_slice(args);
    let started = Instant::now();
    let out = lab.try_exec(Node::Conn, &all);
    let took = started.elapsed();
    let out = CommandOutput::of(
        format!("ip netns exec {} {}", lab.ns(Node::Conn), all.join(" ")),
        &out,
    );
    let json = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    assert!(json.is_object(), "stdout is not JSON\n{}", out.context());
    Run { out, json, took }
}

/// The SNTP responder's offset: in not-yet-valid the true time is 6 minutes
/// ahead of conn's clock (the broker's certificate starts then).
pub fn sntp_offset(s: Scenario) -> i64 {
    match s {
        Scenario::NotYetValid => i64::from(lab::NOT_YET_VALID_SECS),
        _ => 0,
    }
}

/// `pathproof check <target> --resolver R --ntp R --service-user nobody -n
/// --json -i 0.2 --save <save> [-c 10] <extra>` inside conn (`-c 10`
/// unless `extra` has its own `-c`).
pub fn run_check(lab: &Lab, target: &str, extra: &[&str], save: &Path) -> Run {
    let resolver = lab.resolver_addr().to_string();
    let save_s = save.to_string_lossy().into_owned();
    let mut args = vec![
        "check",
        target,
        "--resolver",
        &resolver,
        "--ntp",
        &resolver,
        "--service-user",
        "nobody",
        "-n",
        "--json",
        "-i",
        "0.2",
        "--save",
        &save_s,
    ];
    if !extra.contains(&"-c") {
        args.extend_from_slice(&["-c", "10"]);
    }
    args.extend_from_slice(extra);
    run_in_conn(lab, &args)
}

/// The broker hop to give `pcap --hops`: the check's first broker's
/// `target_hop`, else the lab's (4).
pub fn check_target_hop(check: &Value) -> u64 {
    check["check"]["brokers"][0]["target_hop"]
        .as_u64()
        .unwrap_or(u64::from(lab::BROKER_HOP))
}

/// `pathproof pcap <save> --hops <hops> --json` (outside the lab: it only
/// reads the file); the JSON is `Null` when stdout is not JSON.
pub fn pcap_of_save(save: &Path, hops: u64) -> (CommandOutput, Value) {
    let save_s = save.to_string_lossy().into_owned();
    let hops = hops.to_string();
    let out = std::process::Command::new(pathproof())
        .args(["pcap", &save_s, "--hops", &hops, "--json"])
        .output()
        .expect("run pathproof pcap");
    let out = CommandOutput::of(
        format!("pathproof pcap {save_s} --hops {hops} --json"),
        &out,
    );
    let json = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    (out, json)
}
