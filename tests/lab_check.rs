//! End-to-end: `pathproof check` on the namespace lab, for every scenario of
//! `shared/scenarios.md`, run inside conn with the lab's resolver and SNTP
//! responder given explicitly (`--resolver 198.18.10.2 --ntp 198.18.10.2`):
//! no packet leaves the lab. Each test asserts the verdict's class and hop,
//! then reopens the run's `--save` file with `pathproof pcap --hops N` and
//! asserts that the capture analysis agrees (resolv-perms excepted: a file
//! permission is not on the wire).
//!
//! Needs root; skips loudly otherwise (`PATHPROOF_LAB_REQUIRED=1` makes a
//! skip fail). The routers' kernel ICMP rate limit is off, as in the trace
//! tests: the check probes several times a second.

mod support;

use serde_json::Value;
use support::CommandOutput;
use support::check::{
    Run, check_options, check_target_hop, evidence_of, pathproof, pcap_of_save, run_check,
    sntp_offset,
};
use support::lab::{self, Lab, LabOptions, Node, Scenario};
use support::sntp::SntpResponder;

/// Runs `check` for `s` with `target` (a name or an address) and `extra`
/// options; asserts the verdict and the agreement with `pcap`.
fn check_scenario(s: Scenario, target: &str, extra: &[&str]) -> Run {
    check_scenario_with(s, check_options(), target, extra)
}

/// Lab options for IPv6 checks: the path numbered in IPv6 too, the broker's
/// TLS server on both families, ICMPv6 errors not rate limited.
fn check_options_v6() -> LabOptions {
    let mut o = check_options();
    for r in [Node::R1, Node::R2, Node::R3] {
        o.sysctls.push((r, "net.ipv6.icmp.ratelimit=0".to_owned()));
    }
    o.ipv6 = true;
    o.dual_stack_tls = true;
    o
}

/// A check of the broker's IPv6 address (SNI set: there is no name to
/// resolve); returns the address and the run.
fn check_scenario_v6(s: Scenario) -> (String, Run) {
    let addr = lab::broker_addr6().to_string();
    let run = check_scenario_with(s, check_options_v6(), &addr, &["--sni", lab::BROKER_NAME]);
    (addr, run)
}

fn check_scenario_with(s: Scenario, options: LabOptions, target: &str, extra: &[&str]) -> Run {
    let lab = Lab::up(s, options);
    let _sntp = SntpResponder::start(lab.ns(Node::Dns), lab.resolver_addr(), sntp_offset(s));
    let save = lab.workdir().join("check.pcap");
    let run = run_check(&lab, target, extra, &save);
    let ctx = run.out.context();
    let want = s.check_expected();
    let v = &run.json["verdict"];
    eprintln!(
        "lab_check: {} ({target}): {} hop {} in {:.1} s",
        s.name(),
        v["class"],
        v["hop"],
        run.took.as_secs_f64()
    );
    assert_eq!(v["class"], want.class, "{} verdict\n{ctx}", s.name());
    assert_eq!(
        v["hop"].as_u64(),
        want.hop.map(u64::from),
        "{} hop\n{ctx}",
        s.name()
    );
    assert_eq!(
        run.out.code,
        Some(want.exit_code),
        "{} exit code\n{ctx}",
        s.name()
    );
    assert_eq!(run.json["command"], "check");
    assert_eq!(run.json["schema_version"], 1);

    // The same packets, reopened offline, give the same verdict.
    if s != Scenario::ResolvPerms {
        let (pcap, pj) = pcap_of_save(&save, check_target_hop(&run.json));
        assert_eq!(
            pj["verdict"]["class"],
            v["class"],
            "{}: pcap of the check's packets disagrees\n{}\n{ctx}",
            s.name(),
            pcap.context()
        );
        assert_eq!(
            pj["verdict"]["hop"],
            v["hop"],
            "{}: pcap hop disagrees\n{}",
            s.name(),
            pcap.context()
        );
    }
    // The evidence file alone, a few dozen packets, gives the same verdict
    // and hop as the check (issue 14). Known limit: a hop placed by the
    // check's own TTL-limited probes (the trace's TCP probes for a silent
    // drop, the path-MTU localisation) rests on more probes than an
    // evidence file of 48 packets holds; the file then says so (its
    // section comment, the JSON `evidence.same_verdict` false, a warning).
    if s != Scenario::ResolvPerms && run.out.code == Some(1) {
        let evidence = evidence_of(&save);
        let (pcap, ej) = pcap_of_save(&evidence, check_target_hop(&run.json));
        let packets = ej["input"]["frames"].as_u64().unwrap_or(0);
        let same = run.json["evidence"]["same_verdict"] == true;
        eprintln!(
            "lab_check: {}: evidence of {packets} packets, alone: {} hop {} (same verdict: {same})",
            s.name(),
            ej["verdict"]["class"],
            ej["verdict"]["hop"]
        );
        assert!(
            (1..=48).contains(&packets),
            "{}: evidence of {packets} packets\n{}",
            s.name(),
            pcap.context()
        );
        let reread = (&ej["verdict"]["class"], &ej["verdict"]["hop"]);
        if same {
            assert_eq!(
                reread,
                (&v["class"], &v["hop"]),
                "{}: pcap of the evidence disagrees\n{}\n{ctx}",
                s.name(),
                pcap.context()
            );
        } else {
            assert!(
                // Verdicts whose hop rests on many of the check's own
                // probes (the MTU search, loss per hop over all rounds):
                // more than an evidence file holds. (A trace that stops
                // at a hop is kept: its first rounds place it again.)
                matches!(
                    s,
                    Scenario::PmtuBlackhole | Scenario::PmtuBlackholeFlight | Scenario::RealLoss
                ),
                "{}: the evidence alone does not reach the check's verdict\n{}\n{ctx}",
                s.name(),
                pcap.context()
            );
            assert_eq!(
                (
                    &run.json["evidence"]["reread_class"],
                    &run.json["evidence"]["reread_hop"]
                ),
                reread,
                "{}: the JSON says what the evidence alone gives",
                s.name()
            );
        }
    }
    run
}

fn finding<'a>(run: &'a Run, kind: &str) -> &'a Value {
    run.json["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["kind"] == kind))
        .unwrap_or_else(|| panic!("no {kind} finding\n{}", run.out.context()))
}

#[test]
fn check_healthy() {
    require_root!();
    let r = check_scenario(Scenario::Healthy, lab::BROKER_LOCATOR, &[]);
    let c = &r.json["check"];
    assert_eq!(
        c["dns_lookups"][0]["cname_chain"][1],
        lab::BROKER_NAME,
        "{}",
        r.out.context()
    );
    let b = &c["brokers"][0];
    assert_eq!(b["address"], lab::broker_addr().to_string());
    assert_eq!(b["target_hop"], 4, "{}", r.out.context());
    assert!(
        b["tls"]["chain"][0]["issuer"]
            .as_str()
            .unwrap_or("")
            .contains("Zscaler"),
        "{}",
        r.out.context()
    );
    assert_eq!(
        c["resolv_conf"]["readable"]["state"],
        "readable",
        "{}",
        r.out.context()
    );
    assert!(c["recording"]["frames"].as_u64().unwrap_or(0) > 20);
}

#[test]
fn check_healthy_by_address() {
    require_root!();
    let addr = lab::broker_addr().to_string();
    check_scenario(Scenario::Healthy, &addr, &["--sni", lab::BROKER_NAME]);
}

/// The whole check over IPv6 (the resolver and NTP stay IPv4, as on a
/// dual-stack connector): TCP and ICMPv6 traces, TLS, the ICMPv6 path-MTU
/// search, the recording and its offline replay.
#[test]
fn check_ipv6_healthy() {
    require_root!();
    let (addr, r) = check_scenario_v6(Scenario::Healthy);
    let b = &r.json["check"]["brokers"][0];
    assert_eq!(b["address"], addr, "{}", r.out.context());
    assert_eq!(b["target_hop"], 4, "{}", r.out.context());
    assert!(
        b["tls"]["chain"][0]["issuer"]
            .as_str()
            .unwrap_or("")
            .contains("Zscaler"),
        "{}",
        r.out.context()
    );
}

/// r2 resets TCP/443 over IPv6 too (ip6tables REJECT tcp-reset): the reset
/// arrives with hop limit 63, hop 2, while the broker is at hop 4.
#[test]
fn check_ipv6_rst_hop2() {
    require_root!();
    let (_, r) = check_scenario_v6(Scenario::RstHop2);
    assert_eq!(
        r.json["verdict"]["address"],
        lab::hop_addr6(2).to_string(),
        "{}",
        r.out.context()
    );
}

#[test]
fn check_rst_hop1() {
    require_root!();
    let r = check_scenario(Scenario::RstHop1, lab::BROKER_LOCATOR, &[]);
    assert_eq!(
        r.json["verdict"]["address"],
        lab::hop_addr(1).to_string(),
        "{}",
        r.out.context()
    );
}

#[test]
fn check_rst_hop2() {
    require_root!();
    let r = check_scenario(Scenario::RstHop2, lab::BROKER_LOCATOR, &[]);
    assert_eq!(
        r.json["verdict"]["address"],
        lab::hop_addr(2).to_string(),
        "{}",
        r.out.context()
    );
}

#[test]
fn check_rst_hop2_by_address() {
    require_root!();
    let addr = lab::broker_addr().to_string();
    check_scenario(Scenario::RstHop2, &addr, &[]);
}

#[test]
fn check_broker_refuses() {
    require_root!();
    check_scenario(Scenario::BrokerRefuses, lab::BROKER_LOCATOR, &[]);
}

#[test]
fn check_drop_443() {
    require_root!();
    check_scenario(Scenario::Drop443, lab::BROKER_LOCATOR, &[]);
}

#[test]
fn check_tls_reset() {
    require_root!();
    let r = check_scenario(Scenario::TlsReset, lab::BROKER_LOCATOR, &[]);
    let replay = &r.json["check"]["brokers"][0]["sni_replay"];
    assert!(replay.is_object(), "no SNI replay\n{}", r.out.context());
}

#[test]
fn check_tls_reset_by_address() {
    require_root!();
    let addr = lab::broker_addr().to_string();
    check_scenario(Scenario::TlsReset, &addr, &["--sni", lab::BROKER_NAME]);
}

#[test]
fn check_intercept_proxy() {
    require_root!();
    let r = check_scenario(Scenario::InterceptProxy, lab::BROKER_LOCATOR, &[]);
    let s = r.json["verdict"]["summary"].as_str().unwrap_or("");
    assert!(s.contains("Safemarch"), "{}", r.out.context());
}

#[test]
fn check_intercept_issuer() {
    require_root!();
    check_scenario(Scenario::InterceptIssuer, lab::BROKER_LOCATOR, &[]);
}

/// In `extra`: the path of the lab's genuine root CA (PEM).
use support::check::LAB_ROOT_CA;

/// The issuer rule's verdict on the probed chain.
fn issuer_class(run: &Run) -> &Value {
    &run.json["check"]["brokers"][0]["tls"]["issuer_class"]
}

#[test]
fn check_healthy_pinned_to_the_lab_root() {
    require_root!();
    let r = check_scenario(
        Scenario::Healthy,
        lab::BROKER_LOCATOR,
        &["--expect-ca", LAB_ROOT_CA],
    );
    let c = issuer_class(&r);
    assert_eq!(c["class"], "genuine", "{}", r.out.context());
    assert_eq!(c["by"], "pinned-ca", "{}", r.out.context());
}

#[test]
fn check_intercept_issuer_pinned_to_the_lab_root() {
    require_root!();
    let r = check_scenario(
        Scenario::InterceptIssuer,
        lab::BROKER_LOCATOR,
        &["--expect-ca", LAB_ROOT_CA],
    );
    let c = issuer_class(&r);
    assert_eq!(c["class"], "foreign", "{}", r.out.context());
    assert_eq!(c["by"], "pinned-ca", "{}", r.out.context());
    assert_eq!(c["issuer"], "Safemarch Inc", "{}", r.out.context());
    let s = r.json["verdict"]["summary"].as_str().unwrap_or("");
    assert!(
        s.contains("does not chain to the pinned CA"),
        "{}",
        r.out.context()
    );
}

#[test]
fn check_not_yet_valid() {
    require_root!();
    let r = check_scenario(Scenario::NotYetValid, lab::BROKER_LOCATOR, &[]);
    let f = finding(&r, "clock-offset");
    assert!(
        f["summary"].as_str().unwrap_or("").contains("behind"),
        "{}",
        r.out.context()
    );
}

#[test]
fn check_pmtu_icmp() {
    require_root!();
    let r = check_scenario(Scenario::PmtuIcmp, lab::BROKER_LOCATOR, &[]);
    let p = &r.json["check"]["brokers"][0]["pmtu"];
    assert_eq!(p["reported_mtu"], 1400, "{}", r.out.context());
    assert_eq!(p["reported_hop"], 2, "{}", r.out.context());
}

/// The r2–r3 link's MTU of 1400 seen over IPv6: r2 answers the 1500-byte
/// echo with an ICMPv6 packet-too-big.
#[test]
fn check_ipv6_pmtu_icmp() {
    require_root!();
    let (_, r) = check_scenario_v6(Scenario::PmtuIcmp);
    let p = &r.json["check"]["brokers"][0]["pmtu"];
    assert_eq!(p["reported_mtu"], 1400, "{}", r.out.context());
    assert_eq!(p["reported_hop"], 2, "{}", r.out.context());
    assert_eq!(p["largest_passing"], 1400, "{}", r.out.context());
}

#[test]
fn check_pmtu_blackhole() {
    require_root!();
    let r = check_scenario(Scenario::PmtuBlackhole, lab::BROKER_LOCATOR, &[]);
    let p = &r.json["check"]["brokers"][0]["pmtu"];
    assert_eq!(p["blackhole"], true, "{}", r.out.context());
    assert_eq!(p["largest_passing"], 1400, "{}", r.out.context());
    assert_eq!(p["blackhole_after_hop"], 2, "{}", r.out.context());
}

#[test]
fn check_icmp_ratelimit() {
    require_root!();
    let r = check_scenario(Scenario::IcmpRatelimit, lab::BROKER_LOCATOR, &[]);
    assert_eq!(
        finding(&r, "icmp-rate-limit")["hop"],
        2,
        "{}",
        r.out.context()
    );
}

#[test]
fn check_real_loss() {
    require_root!();
    check_scenario(Scenario::RealLoss, lab::BROKER_LOCATOR, &["-c", "40"]);
}

#[test]
fn check_dns_nxdomain() {
    require_root!();
    let r = check_scenario(Scenario::DnsNxdomain, lab::BROKER_LOCATOR, &[]);
    assert!(
        r.json["check"]["brokers"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}

#[test]
fn check_dns_timeout() {
    require_root!();
    check_scenario(Scenario::DnsTimeout, lab::BROKER_LOCATOR, &[]);
}

#[test]
fn check_resolv_perms() {
    require_root!();
    let r = check_scenario(Scenario::ResolvPerms, lab::BROKER_LOCATOR, &[]);
    let f = finding(&r, "resolv-conf-unreadable");
    assert!(
        f["summary"].as_str().unwrap_or("").contains("nobody"),
        "{}",
        r.out.context()
    );
}

/// The human report: the verdict first, then one section per step.
#[test]
fn check_text_report_rst_hop2() {
    require_root!();
    let lab = Lab::up(Scenario::RstHop2, check_options());
    let _sntp = SntpResponder::start(lab.ns(Node::Dns), lab.resolver_addr(), 0);
    let resolver = lab.resolver_addr().to_string();
    let mut all = vec![pathproof()];
    all.extend_from_slice(&[
        "check",
        lab::BROKER_LOCATOR,
        "--resolver",
        &resolver,
        "--ntp",
        &resolver,
        "-n",
        "-c",
        "5",
        "-i",
        "0.2",
    ]);
    let out = lab.try_exec(Node::Conn, &all);
    let out = CommandOutput::of(all.join(" "), &out);
    eprintln!("{}", out.stdout);
    let ctx = out.context();
    assert_eq!(out.code, Some(1), "{ctx}");
    assert!(
        out.stdout.starts_with(&format!(
            "VERDICT: rst-injected at hop 2 ({})",
            lab::hop_addr(2)
        )),
        "{ctx}"
    );
    for section in [
        "\nDNS ", "\nPATH ", "\nTCP ", "\nTLS ", "\nMTU ", "\nCLOCK ",
    ] {
        assert!(
            out.stdout.contains(section),
            "no {section:?} section\n{ctx}"
        );
    }
    assert!(
        out.stdout.contains("co2br.lab1.test → broker1a.lab1.test"),
        "{ctx}"
    );
    // Progress went to stderr, one line per step.
    assert!(out.stderr.contains("tracing and TLS handshake to"), "{ctx}");
}

/// Without raw sockets (as `nobody`): resolv.conf, DNS, TLS and the clock
/// are still checked; the report says what could not be done, and a reset
/// it cannot place is inconclusive rather than blamed on anyone.
#[test]
fn check_unprivileged() {
    require_root!();
    for (s, code, class) in [
        (Scenario::Healthy, 0, "healthy"),
        (Scenario::RstHop1, 3, "inconclusive"),
    ] {
        let lab = Lab::up(s, check_options());
        let _sntp = SntpResponder::start(lab.ns(Node::Dns), lab.resolver_addr(), 0);
        // The test binary may live under /root (not readable by nobody): copy it.
        let bin = lab.workdir().join("pathproof-unpriv");
        std::fs::copy(pathproof(), &bin).expect("copy the binary");
        let _ = std::fs::set_permissions(
            lab.workdir(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        );
        let bin_s = bin.to_string_lossy().into_owned();
        let resolver = lab.resolver_addr().to_string();
        let all = [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            &bin_s,
            "check",
            lab::BROKER_LOCATOR,
            "--resolver",
            &resolver,
            "--ntp",
            &resolver,
            "-n",
            "--json",
        ];
        let out = lab.try_exec(Node::Conn, &all);
        let out = CommandOutput::of(all.join(" "), &out);
        let ctx = out.context();
        let json: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        assert_eq!(out.code, Some(code), "{}: {ctx}", s.name());
        assert_eq!(json["verdict"]["class"], class, "{}: {ctx}", s.name());
        let rec = &json["check"]["recording"];
        assert_eq!(rec["recorded"], false, "{ctx}");
        assert!(
            rec["error"].as_str().unwrap_or("").contains("setcap"),
            "{ctx}"
        );
        let b = &json["check"]["brokers"][0];
        assert_eq!(b["address"], lab::broker_addr().to_string(), "{ctx}");
        // No raw sockets and no ICMP sockets (ping_group_range's default):
        // the TCP trace, the path and the MTU search are listed as not done,
        // each with what would enable it.
        let not_done = b["not_done"].to_string();
        for part in [
            "TCP/443 trace",
            "path to",
            "path-MTU search",
            "setcap",
            "ping_group_range",
        ] {
            assert!(not_done.contains(part), "{part}: {ctx}");
        }
        if s == Scenario::Healthy {
            assert_eq!(b["tls"]["outcome"]["result"], "completed", "{ctx}");
            assert_eq!(json["verdict"]["confidence"], "low", "{ctx}");
        }
    }
}

/// `check` as user nobody in conn (no raw sockets, ICMP datagram sockets
/// allowed by `net.ipv4.ping_group_range`), on the pmtu-icmp lab (r2–r3 at
/// MTU 1400): the path still comes by ICMP echo (4 hops), the MTU search
/// still finds r2's 1400, and the report lists what it could not do (the
/// recording and the TCP trace) with the command that would enable it.
#[test]
fn check_unprivileged_reports_path_mtu_and_what_it_skipped() {
    require_root!();
    let lab = Lab::up(Scenario::PmtuIcmp, check_options());
    lab.exec(
        Node::Conn,
        &[
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ping_group_range=0 2147483647",
        ],
    );
    let _sntp = SntpResponder::start(lab.ns(Node::Dns), lab.resolver_addr(), 0);
    // The test binary may live under /root (not readable by nobody): copy it.
    let bin = std::env::temp_dir().join(format!("pathproof-unpriv-check-{}", std::process::id()));
    std::fs::copy(pathproof(), &bin).expect("copy the binary");
    let bin_s = bin.to_string_lossy().into_owned();
    let resolver = lab.resolver_addr().to_string();
    let out = lab.try_exec(
        Node::Conn,
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            &bin_s,
            "check",
            lab::BROKER_LOCATOR,
            "--resolver",
            &resolver,
            "--ntp",
            &resolver,
            "--service-user",
            "nobody",
            "-n",
            "-c",
            "5",
            "-i",
            "0.2",
            "--json",
        ],
    );
    let _ = std::fs::remove_file(&bin);
    let out = CommandOutput::of("pathproof check as nobody".into(), &out);
    let json: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", out.context()));
    let b = &json["check"]["brokers"][0];
    assert_eq!(
        b["target_hop"],
        4,
        "the path by ICMP echo\n{}",
        out.context()
    );
    assert_eq!(b["trace"]["protocol"], "icmp", "{}", out.context());
    assert_eq!(
        b["trace"]["access"],
        "unprivileged-icmp",
        "{}",
        out.context()
    );
    assert_eq!(b["pmtu"]["reported_mtu"], 1400, "{}", out.context());
    assert_eq!(b["pmtu"]["reported_hop"], 2, "{}", out.context());
    let not_done = json["check"]["not_done"].to_string();
    for part in ["recording", "TCP/443 trace", "setcap cap_net_raw+ep"] {
        assert!(
            not_done.contains(part),
            "not_done names {part}\n{}",
            out.context()
        );
    }
}

/// `check -c 1000` (250 s of traces) interrupted by SIGINT after 3 s, on
/// rst-hop2: the JSON report of what was measured (the traces cut short,
/// the MTU search not done and said so), its verdict and exit code.
#[test]
fn check_sigint_prints_what_was_measured() {
    require_root!();
    let lab = Lab::up(Scenario::RstHop2, check_options());
    let _sntp = SntpResponder::start(lab.ns(Node::Dns), lab.resolver_addr(), 0);
    let resolver = lab.resolver_addr().to_string();
    // `ip netns exec` execs pathproof: the child's id is pathproof's.
    let child = std::process::Command::new("ip")
        .args(["netns", "exec", lab.ns(Node::Conn), pathproof()])
        .args([
            "check",
            lab::BROKER_LOCATOR,
            "--resolver",
            &resolver,
            "--ntp",
            &resolver,
        ])
        .args(["--service-user", "nobody", "-n", "--json", "-c", "1000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pathproof runs");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(killed, "kill -INT");
    let out = child.wait_with_output().unwrap();
    let out = CommandOutput::of("pathproof check -c 1000 (SIGINT after 3 s)".into(), &out);
    let json: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", out.context()));
    assert_eq!(
        json["verdict"]["class"],
        "rst-injected",
        "{}",
        out.context()
    );
    assert_eq!(json["verdict"]["hop"], 2, "{}", out.context());
    assert_eq!(
        out.code,
        Some(1),
        "the verdict's exit code\n{}",
        out.context()
    );
    let warnings = json["check"]["warnings"].to_string();
    assert!(
        warnings.contains("interrupted") && warnings.contains("path-MTU search"),
        "{}",
        out.context()
    );
}
