//! End-to-end: build each scenario in the namespace lab, capture the
//! connector-like workload on `conn`, and check `pathproof pcap` on the
//! capture (Linux cooked v2 and v1 pcap, Ethernet pcap, both pcapng copies).
//! Needs root; skips loudly otherwise (`PATHPROOF_LAB_REQUIRED=1` makes a
//! skip fail).

mod support;

use serde_json::Value;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::CommandOutput;
use support::lab::{self, Lab, LabOptions, Scenario};

/// The binary under test. `option_env!` rather than `env!` so this file
/// still compiles while the crate has no binary target; the tests then fail
/// at run time with this message.
fn pathproof() -> &'static str {
    match option_env!("CARGO_BIN_EXE_pathproof") {
        Some(bin) => bin,
        None => panic!("the crate has no `pathproof` binary target (src/main.rs) yet"),
    }
}

struct Run {
    out: CommandOutput,
    json: Option<Value>,
}

/// `run.code`, `run.context()`: the command's own fields.
impl std::ops::Deref for Run {
    type Target = CommandOutput;
    fn deref(&self) -> &CommandOutput {
        &self.out
    }
}

impl Run {
    fn verdict(&self, key: &str) -> &Value {
        self.json
            .as_ref()
            .and_then(|j| j.get("verdict"))
            .and_then(|v| v.get(key))
            .unwrap_or(&Value::Null)
    }
}

fn run_pathproof(capture: &Path, path_args: &[&str]) -> Run {
    let mut cmd = Command::new(pathproof());
    cmd.arg("pcap").arg(capture).arg("--json").args(path_args);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", pathproof()));
    let out = CommandOutput::of(
        format!(
            "pathproof pcap {} --json {}",
            capture.display(),
            path_args.join(" ")
        ),
        &out,
    );
    Run {
        json: serde_json::from_str(&out.stdout).ok(),
        out,
    }
}

/// Checks one run against the scenario's expectation; returns the mismatches.
fn mismatches(run: &Run, scenario: Scenario, address: Option<Ipv4Addr>) -> Vec<String> {
    let want = scenario.expected();
    let mut bad = Vec::new();
    if run.json.is_none() {
        bad.push("stdout is not JSON".to_owned());
        return bad;
    }
    if run.code != Some(want.exit_code) {
        bad.push(format!("exit code {:?}, want {}", run.code, want.exit_code));
    }
    let class = run.verdict("class");
    if class.as_str() != Some(want.class) {
        bad.push(format!("verdict.class {class}, want \"{}\"", want.class));
    }
    let hop = run.verdict("hop");
    let want_hop = want.hop.map_or(Value::Null, Value::from);
    if hop.as_u64() != want_hop.as_u64() || hop.is_null() != want_hop.is_null() {
        bad.push(format!("verdict.hop {hop}, want {want_hop}"));
    }
    if let Some(addr) = address {
        let got = run.verdict("address");
        if got.as_str() != Some(addr.to_string().as_str()) {
            bad.push(format!("verdict.address {got}, want \"{addr}\""));
        }
    }
    bad
}

fn out_dir(scenario: Scenario) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("lab-pcap")
        .join(scenario.name())
}

/// Builds the lab, captures, tears it down, then runs pathproof on every
/// capture format with `--hops 4`, and on the Ethernet capture with each mtr
/// report (`--mtr`) for the scenarios that record one.
fn scenario_test(scenario: Scenario) -> lab::CaptureSet {
    scenario_test_with(scenario, scenario.name(), LabOptions::default())
}

/// As [`scenario_test`], under other lab options, captures named `<stem>.*`.
fn scenario_test_with(scenario: Scenario, stem: &str, opts: LabOptions) -> lab::CaptureSet {
    pathproof(); // fail before building a lab if there is nothing to test
    let dir = out_dir(scenario).with_file_name(stem);
    let with_mtr =
        stem == scenario.name() && matches!(scenario, Scenario::Healthy | Scenario::RstHop2);
    let (set, mtr) = {
        let lab = Lab::up(scenario, opts);
        let set = lab.capture_workload_as(&dir, stem);
        let mtr = with_mtr.then(|| lab.mtr_report(&dir));
        (set, mtr)
    }; // lab torn down here
    let hops = lab::BROKER_HOP.to_string();
    // With only the hop count, pathproof can name hop 1 (the gateway, seen
    // in the capture's ARP) but no farther hop.
    let hop_count_address = match scenario.expected().hop {
        Some(1) => Some(lab::router_addr(1)),
        _ => None,
    };
    let mut failures = Vec::new();
    for file in [
        &set.sll_pcap,
        &set.eth_pcap,
        &set.sll_pcapng,
        &set.eth_pcapng,
        &set.sll1_pcap,
    ] {
        let run = run_pathproof(file, &["--hops", &hops]);
        let bad = mismatches(&run, scenario, hop_count_address);
        if !bad.is_empty() {
            failures.push(format!("{}\n{}", bad.join("; "), run.context()));
        }
    }
    if let Some(mtr) = &mtr {
        let mtr_address = match scenario {
            Scenario::RstHop2 => Some(lab::router_addr(2)),
            _ => None,
        };
        for report in [&mtr.txt, &mtr.json] {
            let report = report.to_string_lossy();
            let run = run_pathproof(&set.eth_pcap, &["--mtr", &report]);
            let bad = mismatches(&run, scenario, mtr_address);
            if !bad.is_empty() {
                failures.push(format!("{}\n{}", bad.join("; "), run.context()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "scenario {stem} ({}): captures in {}\n\n{}",
        scenario.describe(),
        dir.display(),
        failures.join("\n\n")
    );
    set
}

#[test]
fn pcap_healthy() {
    require_root!();
    scenario_test(Scenario::Healthy);
}

#[test]
fn pcap_rst_hop1() {
    require_root!();
    scenario_test(Scenario::RstHop1);
}

#[test]
fn pcap_rst_hop2() {
    require_root!();
    scenario_test(Scenario::RstHop2);
}

#[test]
fn pcap_broker_refuses() {
    require_root!();
    scenario_test(Scenario::BrokerRefuses);
}

#[test]
fn pcap_drop_443() {
    require_root!();
    scenario_test(Scenario::Drop443);
}

#[test]
fn pcap_tls_reset() {
    require_root!();
    scenario_test(Scenario::TlsReset);
}

#[test]
fn pcap_intercept_proxy() {
    require_root!();
    scenario_test(Scenario::InterceptProxy);
}

/// TLS 1.3: the forged certificate is encrypted; the TTLs still show that
/// the TLS peer sits at hop 1.
#[test]
fn pcap_intercept_proxy_tls13() {
    require_root!();
    let opts = LabOptions {
        tls: lab::TlsVersion::Tls13,
        ..LabOptions::default()
    };
    scenario_test_with(Scenario::InterceptProxy, "intercept-proxy-tls13", opts);
}

#[test]
fn pcap_intercept_issuer() {
    require_root!();
    scenario_test(Scenario::InterceptIssuer);
}

#[test]
fn pcap_not_yet_valid() {
    require_root!();
    scenario_test(Scenario::NotYetValid);
}

#[test]
fn pcap_pmtu_icmp() {
    require_root!();
    scenario_test(Scenario::PmtuIcmp);
}

#[test]
fn pcap_pmtu_blackhole() {
    require_root!();
    scenario_test(Scenario::PmtuBlackhole);
}

#[test]
fn pcap_dns_nxdomain() {
    require_root!();
    scenario_test(Scenario::DnsNxdomain);
}

#[test]
fn pcap_dns_timeout() {
    require_root!();
    scenario_test(Scenario::DnsTimeout);
}

/// The connector behind an explicit HTTP CONNECT proxy (tinyproxy on r1,
/// hop 1) with a corporate inspection CA re-signing inside the tunnel.
/// Asserted, on every capture format: `tls-intercepted` at hop 1 with the
/// proxy's address (198.18.1.2), the CA named, the tunnel named. Why the
/// proxy: it is the TCP peer of every connection the capture holds, so its
/// hop is what the TTLs prove, and the capture cannot see past it; the
/// device to reconfigure (exempt the broker from SSL inspection) is the
/// proxy, or one behind it that it forwards to, which the summary says.
#[test]
fn pcap_connect_intercept() {
    require_root!();
    let set = scenario_test(Scenario::ConnectIntercept);
    let proxy = format!("{}:{}", lab::router_addr(1), lab::CONNECT_PROXY_PORT);
    let mut failures = Vec::new();
    for file in [&set.sll_pcap, &set.eth_pcap, &set.sll_pcapng] {
        let run = run_pathproof(file, &["--hops", "4"]);
        let summary = run
            .verdict("summary")
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for want in [
            format!(
                "TLS via proxy {proxy}, CONNECT {}:443 is intercepted",
                lab::broker_addr()
            ),
            "\"Corp Inspection\" (O=Corp Inspection, CN=Corp Inspection CA)".to_owned(),
            "the connector rejected it".to_owned(),
        ] {
            if !summary.contains(&want) {
                failures.push(format!("summary lacks {want:?}\n{}", run.context()));
            }
        }
        // The tunnel and the proxy's answer are in the flow's TLS record.
        let tunnels: Vec<&Value> = run
            .json
            .as_ref()
            .and_then(|j| j["flows"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|f| {
                f["tls"]["connect"]
                    .as_object()
                    .map(|_| &f["tls"]["connect"])
            })
            .collect();
        if tunnels.len() != set.workload.attempts.len()
            || tunnels.iter().any(|t| t["answer"]["status"] != 200)
        {
            failures.push(format!(
                "want {} tunnels answered 200, got {tunnels:?}\n{}",
                set.workload.attempts.len(),
                run.context()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
