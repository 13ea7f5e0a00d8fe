//! Self-tests of the namespace lab (`tests/support/lab.rs`), independent of
//! pathproof: each scenario is built, its workload captured, and the capture
//! checked with the small decoder in `tests/support/wire.rs` (TTLs of the
//! answers, who answers, SYN retransmissions). Needs root; skips loudly
//! otherwise.
//!
//! `regenerate_bundled_captures` (ignored) rewrites `captures/`; run it with
//! `tests/lab/regen-captures.sh`.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Instant;
use support::lab::{self, CaptureSet, Lab, LabOptions, Node, Scenario};
use support::wire::{self, ACK, Ipv4Packet, RST, SYN};

/// A TCP packet from broker:443 to conn: what answered a SYN.
#[derive(Debug)]
struct Answer {
    port: u16,
    flags: u8,
    ttl: u8,
    id: u16,
    df: bool,
    /// Seconds since the last SYN conn sent from `port`.
    delay: f64,
}

#[derive(Debug, Default)]
struct Facts {
    linktypes: [u32; 3],
    frames: [usize; 3],
    ipv4: [usize; 3],
    /// (ttl, ip id) of ICMP echo replies from the broker.
    echo_replies: Vec<(u8, u16)>,
    /// Times of each SYN conn sent, per source port, in order.
    syns: BTreeMap<u16, Vec<f64>>,
    /// The first SYN-ACK or RST from broker:443 per connection.
    answers: Vec<Answer>,
    /// Every RST seen from broker:443 (all connections).
    rsts_from_443: usize,
    /// TCP payload bytes conn received from broker:443.
    server_payload: Vec<u8>,
    /// TTLs of every packet from the broker's address.
    ttls_from_broker: BTreeMap<u8, usize>,
}

fn gather(set: &CaptureSet) -> Facts {
    let files = [&set.sll_pcap, &set.sll1_pcap, &set.eth_pcap];
    let pcaps: Vec<_> = files.iter().map(|f| wire::read_pcap(f)).collect();
    let mut facts = Facts::default();
    for (i, p) in pcaps.iter().enumerate() {
        facts.linktypes[i] = p.linktype;
        facts.frames[i] = p.frames;
        facts.ipv4[i] = p.packets.len();
    }
    let broker = lab::broker_addr();
    let conn = lab::conn_addr();
    // The Ethernet capture is the reference: it sees conn's only interface.
    let pkts: &[Ipv4Packet] = &pcaps[2].packets;
    for p in pkts {
        if p.src == broker {
            *facts.ttls_from_broker.entry(p.ttl).or_default() += 1;
        }
        if p.src == broker && p.dst == conn && p.icmp == Some((0, 0)) {
            facts.echo_replies.push((p.ttl, p.id));
        }
        let Some(t) = &p.tcp else { continue };
        if p.src == conn && t.dport == lab::BROKER_PORT && t.flags & (SYN | ACK) == SYN {
            facts.syns.entry(t.sport).or_default().push(p.ts);
        }
        if p.src == broker && t.sport == lab::BROKER_PORT {
            if t.flags & RST != 0 {
                facts.rsts_from_443 += 1;
            }
            facts.server_payload.extend_from_slice(&t.payload);
            let answer = t.flags & RST != 0 || t.flags & (SYN | ACK) == SYN | ACK;
            if answer && !facts.answers.iter().any(|a| a.port == t.dport) {
                let last_syn = facts
                    .syns
                    .get(&t.dport)
                    .and_then(|v| v.iter().rev().find(|&&s| s <= p.ts))
                    .copied()
                    .unwrap_or(f64::NAN);
                facts.answers.push(Answer {
                    port: t.dport,
                    flags: t.flags,
                    ttl: p.ttl,
                    id: p.id,
                    df: p.df,
                    delay: p.ts - last_syn,
                });
            }
        }
    }
    facts
}

fn summary(scenario: Scenario, set: &CaptureSet, f: &Facts) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "[{}] linktypes sll/sll1/eth {:?}; frames {:?}; ipv4 {:?}; tcpdump counts {:?}",
        scenario.name(),
        f.linktypes,
        f.frames,
        f.ipv4,
        set.packets
    );
    let _ = writeln!(
        s,
        "[{}] echo replies (ttl, ip id): {:?}; ttls from broker address: {:?}",
        scenario.name(),
        f.echo_replies,
        f.ttls_from_broker
    );
    for (port, times) in &f.syns {
        let t0 = times[0];
        let rel: Vec<String> = times.iter().map(|t| format!("{:.3}", t - t0)).collect();
        let _ = writeln!(
            s,
            "[{}] port {port}: {} SYN(s) at +[{}] s",
            scenario.name(),
            times.len(),
            rel.join(", ")
        );
    }
    for a in &f.answers {
        let _ = writeln!(
            s,
            "[{}] port {}: answer {} ttl {} ip.id {} (0x{:04x}) DF {} after {:.1} us",
            scenario.name(),
            a.port,
            wire::flag_str(a.flags),
            a.ttl,
            a.id,
            a.id,
            a.df,
            a.delay * 1e6
        );
    }
    for (i, a) in set.workload.attempts.iter().enumerate() {
        let err = a.stderr.lines().next().unwrap_or("").trim();
        let _ = writeln!(
            s,
            "[{}] attempt {}: exit {:?} after {:.3} s; {}",
            scenario.name(),
            i + 1,
            a.exit_code,
            a.elapsed.as_secs_f64(),
            err
        );
    }
    s
}

/// Checks what every scenario's capture must show, then the scenario's own
/// signature. Panics with the summary on failure.
fn check(scenario: Scenario, set: &CaptureSet, f: &Facts, opts: &LabOptions) {
    let ctx = summary(scenario, set, f);
    let fail = |why: &str| -> ! { panic!("lab self-test {}: {why}\n{ctx}", scenario.name()) };

    if f.linktypes
        != [
            wire::LINKTYPE_LINUX_SLL2,
            wire::LINKTYPE_LINUX_SLL,
            wire::LINKTYPE_ETHERNET,
        ]
    {
        fail("unexpected link types");
    }
    if f.ipv4[0] != f.ipv4[2] || f.ipv4[1] != f.ipv4[2] {
        fail(&format!(
            "the three captures hold different numbers of IPv4 packets; tcpdump said:\n{}",
            set.tcpdump_stderr.join("\n")
        ));
    }
    for png in [&set.sll_pcapng, &set.eth_pcapng] {
        let head = std::fs::read(png).unwrap_or_default();
        if !head.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
            fail(&format!("{} is not pcapng", png.display()));
        }
    }
    if f.echo_replies.len() != opts.pings as usize || f.echo_replies.iter().any(|r| r.0 != 61) {
        fail("expected every echo reply from the broker with TTL 61");
    }
    let attempts = opts.attempts as usize;
    if f.syns.len() != attempts {
        fail("expected one source port per connection attempt");
    }
    let ttl_of_answer = match scenario {
        Scenario::Healthy | Scenario::BrokerRefuses => Some(61),
        Scenario::RstHop1 => Some(64),
        Scenario::RstHop2 => Some(63),
        Scenario::Drop443 => None,
    };
    let exits: Vec<Option<i32>> = set.workload.attempts.iter().map(|a| a.exit_code).collect();
    match ttl_of_answer {
        None => {
            if !f.answers.is_empty() || f.rsts_from_443 != 0 {
                fail("nothing should answer TCP 443");
            }
            if f.syns.values().any(|v| v.len() < 3) {
                fail("expected each attempt's SYN retransmitted at least twice");
            }
            if exits.iter().any(|e| *e != Some(124)) {
                fail("expected every attempt to time out (exit 124)");
            }
        }
        Some(ttl) => {
            if f.answers.len() != attempts || f.answers.iter().any(|a| a.ttl != ttl) {
                fail(&format!(
                    "expected one answer per attempt, all with TTL {ttl}"
                ));
            }
            let syn_ack = scenario == Scenario::Healthy;
            for a in &f.answers {
                let is_rst = a.flags & RST != 0;
                if is_rst == syn_ack {
                    fail("wrong kind of answer (SYN-ACK vs RST)");
                }
            }
            if f.syns.values().any(|v| v.len() != 1) {
                fail("no SYN should be retransmitted when something answers");
            }
            if syn_ack {
                if f.rsts_from_443 != 0 {
                    fail("no RST expected from broker:443");
                }
                if exits.iter().any(|e| *e != Some(0)) {
                    fail("every TLS handshake should succeed");
                }
                let verified = |a: &lab::Attempt| {
                    a.stderr.contains("Verification: OK")
                        && a.stderr
                            .contains(&format!("Verified peername: {}", lab::BROKER_NAME))
                };
                if !set.workload.attempts.iter().all(verified) {
                    fail("s_client should verify the chain against the lab root and the name");
                }
                let tls12 = opts.tls == lab::TlsVersion::Tls12;
                if tls12 && !wire::contains(&f.server_payload, b"Zscaler Test CA") {
                    fail("the certificate (issuer O=Zscaler Test CA) should be visible");
                }
            } else if exits.iter().any(|e| *e == Some(0) || *e == Some(124)) {
                fail("every attempt should fail at once");
            }
        }
    }
}

fn out_dir(scenario: Scenario) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("lab-selftest")
        .join(scenario.name())
}

fn run_scenario(scenario: Scenario, dir: &Path, mtr: bool) -> (CaptureSet, Facts) {
    run_scenario_with(scenario, dir, mtr, LabOptions::default())
}

fn run_scenario_with(
    scenario: Scenario,
    dir: &Path,
    mtr: bool,
    opts: LabOptions,
) -> (CaptureSet, Facts) {
    let t0 = Instant::now();
    let lab = Lab::up(scenario, opts.clone());
    let up = t0.elapsed();
    let t1 = Instant::now();
    let set = lab.capture_workload(dir);
    let capture = t1.elapsed();
    let t2 = Instant::now();
    if mtr {
        let report = lab.mtr_report(dir);
        let txt = std::fs::read_to_string(&report.txt).unwrap_or_default();
        for hop in 1..=lab::BROKER_HOP {
            let addr = lab::hop_addr(hop).to_string();
            assert!(
                txt.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{hop}.|-- {addr}"))),
                "mtr report should show {addr} at hop {hop}:\n{txt}"
            );
        }
    }
    let mtr_time = t2.elapsed();
    let down = lab.down();
    let facts = gather(&set);
    eprint!("{}", summary(scenario, &set, &facts));
    eprintln!(
        "[{}] timing: up {:.2} s, capture {:.2} s, mtr {:.2} s, down {:.2} s, total {:.2} s",
        scenario.name(),
        up.as_secs_f64(),
        capture.as_secs_f64(),
        mtr_time.as_secs_f64(),
        down.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    check(scenario, &set, &facts, &opts);
    (set, facts)
}

#[test]
fn selftest_healthy() {
    require_root!();
    run_scenario(Scenario::Healthy, &out_dir(Scenario::Healthy), true);
}

#[test]
fn selftest_healthy_tls13() {
    require_root!();
    let opts = LabOptions {
        tls: lab::TlsVersion::Tls13,
        ..LabOptions::default()
    };
    let dir = out_dir(Scenario::Healthy).with_file_name("healthy-tls13");
    let (_, facts) = run_scenario_with(Scenario::Healthy, &dir, false, opts);
    assert!(
        !wire::contains(&facts.server_payload, b"Zscaler Test CA"),
        "with TLS 1.3 the certificate must not be readable on the wire"
    );
}

#[test]
fn selftest_rst_hop1() {
    require_root!();
    run_scenario(Scenario::RstHop1, &out_dir(Scenario::RstHop1), false);
}

#[test]
fn selftest_rst_hop2() {
    require_root!();
    run_scenario(Scenario::RstHop2, &out_dir(Scenario::RstHop2), true);
}

#[test]
fn selftest_broker_refuses() {
    require_root!();
    run_scenario(
        Scenario::BrokerRefuses,
        &out_dir(Scenario::BrokerRefuses),
        false,
    );
}

#[test]
fn selftest_drop_443() {
    require_root!();
    run_scenario(Scenario::Drop443, &out_dir(Scenario::Drop443), false);
}

fn our_namespaces(lab_id: &str) -> Vec<String> {
    lab::netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{lab_id}-")))
        .collect()
}

#[test]
fn lab_is_torn_down_even_when_the_test_panics() {
    require_root!();
    let id = std::sync::Mutex::new(String::new());
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::up(Scenario::Healthy, LabOptions::default());
        *id.lock().unwrap() = lab.id().to_owned();
        assert_eq!(our_namespaces(lab.id()).len(), Node::ALL.len());
        // Processes the teardown must kill: the broker's s_server and one
        // started by hand.
        lab.spawn_logged(Node::R3, "sleeper", &["sleep", "600"]);
        panic!("deliberate panic with the lab up");
    });
    assert!(result.is_err());
    let id = id.into_inner().unwrap();
    assert!(!id.is_empty());
    assert_eq!(our_namespaces(&id), Vec::<String>::new());
    // Nothing was added to the root namespace.
    let links = std::process::Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(
        !links.contains(&id),
        "root namespace has lab links:\n{links}"
    );
}

#[test]
fn addresses_follow_the_traceroute_plan() {
    assert_eq!(lab::conn_addr(), Ipv4Addr::new(198, 18, 1, 1));
    assert_eq!(lab::router_addr(1), Ipv4Addr::new(198, 18, 1, 2));
    assert_eq!(lab::router_addr(2), Ipv4Addr::new(198, 18, 2, 2));
    assert_eq!(lab::router_addr(3), Ipv4Addr::new(198, 18, 3, 2));
    assert_eq!(lab::broker_addr(), Ipv4Addr::new(198, 18, 4, 2));
    assert_eq!(lab::hop_addr(4), lab::broker_addr());
    for s in Scenario::all() {
        assert_eq!(Scenario::from_name(s.name()), Some(*s));
    }
}

/// Rewrites the bundled captures in `captures/` (run as root:
/// `tests/lab/regen-captures.sh`). Each scenario is captured into a scratch
/// dir, checked like the self-tests, then copied.
#[test]
#[ignore = "rewrites captures/; run tests/lab/regen-captures.sh"]
fn regenerate_bundled_captures() {
    require_root!();
    let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    std::fs::create_dir_all(&dest).expect("create captures/");
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lab-regen");
    let _ = std::fs::remove_dir_all(&scratch);
    for &scenario in Scenario::all() {
        let mtr = matches!(scenario, Scenario::Healthy | Scenario::RstHop2);
        let (set, _) = run_scenario(scenario, &scratch, mtr);
        let mut files = vec![
            set.sll_pcap,
            set.sll1_pcap,
            set.eth_pcap,
            set.sll_pcapng,
            set.eth_pcapng,
        ];
        if mtr {
            for ext in ["mtr.txt", "mtr.json"] {
                files.push(scratch.join(format!("{}.{ext}", scenario.name())));
            }
        }
        for f in files {
            let to = dest.join(f.file_name().expect("file name"));
            std::fs::copy(&f, &to)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", f.display(), to.display()));
            eprintln!("wrote {}", to.display());
        }
    }
}
