//! The binary on the bundled captures (no root needed): verdicts as
//! `captures/README.md` documents them, exit codes, bad input, stdin and gzip.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pathproof"))
}

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("pathproof runs")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// One row of the scenario table in captures/README.md.
struct Expected {
    scenario: String,
    class: String,
    hop: Option<u64>,
    exit: i32,
}

/// Reads the expected verdicts from captures/README.md, so the table the
/// support engineers read and the test cannot drift apart.
fn expected_from_readme() -> Vec<Expected> {
    let readme = std::fs::read_to_string(captures().join("README.md")).unwrap();
    let mut rows = Vec::new();
    for line in readme.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(last) = cells.iter().rev().find(|c| c.starts_with("class `")) else {
            continue;
        };
        let scenario = cells[1].trim_matches('`').to_string();
        let class = last.split('`').nth(1).unwrap().to_string();
        let hop_text = last.split("hop ").nth(1).unwrap();
        let hop = hop_text
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap();
        let exit = last.split("exit ").nth(1).unwrap()[..1].parse().unwrap();
        rows.push(Expected {
            scenario,
            class,
            hop: hop.parse().ok(),
            exit,
        });
    }
    assert!(
        rows.len() >= 5,
        "scenario table not found in captures/README.md"
    );
    rows
}

#[test]
fn bundled_captures_match_the_readme_table() {
    let mut checked = 0;
    for e in expected_from_readme() {
        for file in [
            "sll.pcap",
            "sll1.pcap",
            "eth.pcap",
            "sll.pcapng",
            "eth.pcapng",
        ] {
            let path = captures().join(format!("{}.{file}", e.scenario));
            let out = run(&["pcap", path.to_str().unwrap(), "--json", "--hops", "4"]);
            let j = json_of(&out);
            let where_ = format!("{}: {}", path.display(), j["verdict"]["summary"]);
            assert_eq!(j["verdict"]["class"], e.class.as_str(), "{where_}");
            assert_eq!(j["verdict"]["hop"].as_u64(), e.hop, "{where_}");
            assert_eq!(out.status.code(), Some(e.exit), "{where_}");
            checked += 1;
        }
    }
    assert_eq!(checked, 5 * expected_from_readme().len());
}

#[test]
fn mtr_report_names_the_injecting_hop() {
    for report in ["rst-hop2.mtr.txt", "rst-hop2.mtr.json"] {
        let out = run(&[
            "pcap",
            captures().join("rst-hop2.sll.pcap").to_str().unwrap(),
            "--json",
            "--mtr",
            captures().join(report).to_str().unwrap(),
        ]);
        let j = json_of(&out);
        assert_eq!(j["verdict"]["class"], "rst-injected");
        assert_eq!(j["verdict"]["hop"], 2);
        assert_eq!(j["verdict"]["address"], "198.18.2.2", "{report}");
        assert_eq!(j["path"]["target_hop"], 4);
    }
}

#[test]
fn hop1_address_comes_from_arp_without_a_path() {
    let out = run(&[
        "pcap",
        captures().join("rst-hop1.eth.pcap").to_str().unwrap(),
        "--json",
    ]);
    let j = json_of(&out);
    // The ping replies (TTL 61) are the genuine baseline; ARP names hop 1.
    assert_eq!(j["verdict"]["class"], "rst-injected");
    assert_eq!(j["verdict"]["hop"], 1);
    assert_eq!(j["verdict"]["address"], "198.18.1.2");
    let f = &j["findings"][0];
    assert_eq!(f["kind"], "rst-injected");
    assert_eq!(f["severity"], "critical");
    assert!(
        f["filter"]
            .as_str()
            .unwrap()
            .starts_with("frame.number in {")
    );
    // Every reset is listed: the capture is far below the kept-flow bound.
    assert_eq!(
        j["rsts_total"].as_u64(),
        Some(j["rsts"].as_array().unwrap().len() as u64)
    );
    for r in j["rsts"].as_array().unwrap() {
        assert_eq!(r["ttl"], 64);
        assert_eq!(r["hop"], 1);
        assert_eq!(r["origin"], "injected");
        assert_eq!(r["flags"], "RST,ACK");
    }
}

#[test]
fn json_schema_has_the_documented_fields() {
    let out = run(&[
        "pcap",
        captures().join("healthy.sll.pcap").to_str().unwrap(),
        "--json",
        "--hops",
        "4",
    ]);
    let j = json_of(&out);
    for key in [
        "class",
        "hop",
        "address",
        "summary",
        "confidence",
        "next_steps",
    ] {
        assert!(j["verdict"].get(key).is_some(), "verdict.{key}");
    }
    let f = &j["findings"][0];
    for key in ["kind", "severity", "hop", "frames", "summary", "filter"] {
        assert!(f.get(key).is_some(), "findings[].{key}");
    }
    let flows = j["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 3);
    assert!(
        flows
            .iter()
            .all(|f| f["established"] == true && f["server_hop"] == 4)
    );
    assert_eq!(j["input"]["link_types"][0], "LINUX_SLL2");
    assert_eq!(j["schema_version"], 1);
    assert_eq!(j["rsts_total"], 0);
}

#[test]
fn text_report_starts_with_the_verdict() {
    let out = run(&[
        "pcap",
        captures().join("rst-hop2.eth.pcap").to_str().unwrap(),
        "--hops",
        "4",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("VERDICT: rst-injected at hop 2"), "{text}");
    assert!(text.contains("wireshark: "), "{text}");
}

/// The chain depth by depth, as `openssl s_client -showcerts` prints it:
/// each certificate's subject and issuer (and validity), once per distinct
/// chain; the JSON has the whole chain.
#[test]
fn text_report_shows_the_chain_depth_by_depth() {
    let file = captures().join("healthy.eth.pcap");
    let out = run(&["pcap", file.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    let want = [
        "    chain as sent (2 certificates):",
        "     0 s:CN=broker1a.lab1.test  [valid ",
        "       i:O=Zscaler Test CA, CN=Zscaler Test Intermediate CA",
        "     1 s:O=Zscaler Test CA, CN=Zscaler Test Intermediate CA  [valid ",
        "       i:O=Zscaler Test CA, CN=Zscaler Test Root",
    ];
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == want[0])
        .unwrap_or_else(|| panic!("no chain in the report:\n{text}"));
    for (i, w) in want.iter().enumerate() {
        assert!(
            lines[at + i].starts_with(w),
            "line {}: {:?}\n{text}",
            at + i,
            lines[at + i]
        );
    }
    // Three connections, one chain: shown once, then referred to.
    assert_eq!(text.matches("chain as sent").count(), 1, "{text}");
    assert_eq!(text.matches("    chain: as above").count(), 2, "{text}");

    let json = json_of(&run(&["pcap", file.to_str().unwrap(), "--json"]));
    let flows = json["flows"].as_array().expect("flows");
    let chain = flows
        .iter()
        .find_map(|f| f["tls"]["certificates"].as_array())
        .expect("a chain in the JSON");
    assert_eq!(chain.len(), 2);
    assert_eq!(
        chain[1]["issuer"],
        "O=Zscaler Test CA, CN=Zscaler Test Root"
    );
    assert!(
        chain
            .iter()
            .all(|c| c["not_before"].is_i64() && c["subject"].is_string())
    );
}

#[test]
fn stdin_and_gzip_give_the_same_verdict() {
    let raw = std::fs::read(captures().join("rst-hop2.sll.pcap")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let gz = gz.finish().unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join("rst-hop2.sll.pcap.gz");
    std::fs::write(&file, &gz).unwrap();
    let from_file = json_of(&run(&[
        "pcap",
        file.to_str().unwrap(),
        "--json",
        "--hops",
        "4",
    ]));

    for input in [raw, gz] {
        let mut child = bin()
            .args(["pcap", "-", "--json", "--hops", "4"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let out = child.wait_with_output().unwrap();
        let j = json_of(&out);
        assert_eq!(j["verdict"], from_file["verdict"]);
        assert_eq!(j["verdict"]["hop"], 2);
    }
}

#[test]
fn bad_input_is_a_clear_error_with_exit_code_2() {
    let cases = [
        ("empty.pcap", "empty"),
        ("short-header.pcap", "byte offset 10"),
        ("bad-magic.pcap", "3c 21 44 4f"),
        ("unknown-linktype.pcap", "link type"),
    ];
    for (file, needle) in cases {
        let path = captures().join("bad").join(file);
        let out = run(&["pcap", path.to_str().unwrap(), "--json"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(stderr.contains(needle), "{file}: {stderr}");
        assert!(!stderr.contains("panicked"), "{file}: {stderr}");
        assert!(out.stdout.is_empty(), "{file}");
    }
    let out = run(&["pcap", "/nonexistent/capture.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/capture.pcap"));
}

#[test]
fn truncated_last_frame_still_analyses_what_came_before() {
    let path = captures().join("bad").join("truncated-last-frame.pcap");
    let out = run(&["pcap", path.to_str().unwrap(), "--json"]);
    let j = json_of(&out);
    assert_eq!(j["input"]["frames"], 3);
    let w = j["warnings"][0]["message"].as_str().unwrap();
    assert!(w.contains("frame 4 at byte offset 252"), "{w}");
    assert_ne!(out.status.code(), Some(2));
}

/// Damaged part-way (a corrupt record after good ones): the frames before
/// the damage are analysed, the damage is a warning with its place, and a
/// verdict that needs the whole capture ("healthy") becomes inconclusive.
#[test]
fn damaged_capture_is_analysed_up_to_the_damage() {
    for (file, needle) in [
        ("caplen-too-big.pcap", "frame 2 at byte offset 100"),
        ("bad-block-length.pcapng", "frame 2 at byte offset 180"),
    ] {
        let path = captures().join("bad").join(file);
        let out = run(&["pcap", path.to_str().unwrap(), "--json"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let j = json_of(&out);
        assert_eq!(j["input"]["frames"], 1, "{file}");
        assert_eq!(j["input"]["damaged_from_frame"], 2, "{file}");
        let w = j["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| w["message"].as_str())
            .find(|m| m.contains("damaged"))
            .unwrap_or_else(|| panic!("{file}: no damage warning: {}", j["warnings"]));
        assert!(w.contains(needle), "{file}: {w}");
        assert_eq!(out.status.code(), Some(3), "{file}: {stderr}");
        // The text report also says it on stderr.
        let text = run(&["pcap", path.to_str().unwrap()]);
        let text_err = String::from_utf8_lossy(&text.stderr);
        assert!(text_err.contains(needle), "{file}: {text_err}");
        assert_eq!(text.status.code(), Some(3), "{file}");
        assert_eq!(j["verdict"]["class"], "inconclusive", "{file}");
        let steps = j["verdict"]["next_steps"].to_string();
        assert!(steps.contains("undamaged copy"), "{file}: {steps}");
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["pcap"]).status.code(), Some(2));
    assert_eq!(run(&["pcap", "x", "--hops", "0"]).status.code(), Some(2));
    let both = run(&["pcap", "x", "--hops", "4", "--mtr", "y"]);
    assert_eq!(both.status.code(), Some(2));
    let bad_mtr = run(&[
        "pcap",
        captures().join("healthy.sll.pcap").to_str().unwrap(),
        "--mtr",
        captures().join("healthy.sll.pcap").to_str().unwrap(),
    ]);
    assert_eq!(bad_mtr.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_mtr.stderr).contains("mtr report"));
}

/// `pathproof trace` usage errors never send a packet: they are refused
/// before any socket is opened (exit code 2, a message on stderr).
#[test]
fn trace_usage_errors_exit_2_before_probing() {
    for (args, want) in [
        (
            &["trace", "198.18.4.2", "--icmp", "-p", "443"][..],
            "--port applies",
        ),
        (&["trace", "198.18.4.2", "-i", "0.05"], "interval"),
        (&["trace", "198.18.4.2", "-i", "abc"], "seconds"),
        (&["trace", "198.18.4.2", "--max-ttl", "65"], "65"),
        (&["trace", "198.18.4.2", "--tcp", "--udp"], "cannot be used"),
        (&["trace", "198.18.4.2", "-c", "0"], "0"),
        (
            &["trace", "198.18.4.2", "--control-icmp", "--no-control"],
            "cannot be used",
        ),
    ] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn trace_help_mentions_the_control_trace_and_privileges() {
    let out = run(&["trace", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for want in [
        "ICMP control trace",
        "--no-control",
        "cap_net_raw",
        "--save",
        "Exit codes",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
}

#[test]
fn a_pathproof_trace_json_is_a_path_too() {
    // The shape `pathproof trace --json` writes; a TCP trace blocked after
    // hop 1 whose ICMP control trace reached the broker at hop 4.
    let trace = r#"{"schema_version":1,"command":"trace","target":"198.18.4.2","target_hop":null,
      "hops":[{"ttl":1,"addresses":["198.18.1.2"],"names":[null],"loss_pct":0.0,"sent":3,"rtt_ms":null}],
      "control":{"protocol":"icmp","target_hop":4,"hops":[
        {"ttl":1,"addresses":["198.18.1.2"],"loss_pct":0.0,"sent":3,"rtt_ms":null},
        {"ttl":2,"addresses":["198.18.2.2"],"loss_pct":0.0,"sent":3,"rtt_ms":null},
        {"ttl":3,"addresses":["198.18.3.2"],"loss_pct":0.0,"sent":3,"rtt_ms":null},
        {"ttl":4,"addresses":["198.18.4.2"],"loss_pct":0.0,"sent":3,"rtt_ms":null}]}}"#;
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("trace-path.json");
    std::fs::write(&file, trace).unwrap();
    let out = run(&[
        "pcap",
        captures().join("rst-hop2.eth.pcap").to_str().unwrap(),
        "--json",
        "--mtr",
        file.to_str().unwrap(),
    ]);
    let j = json_of(&out);
    assert_eq!(j["path"]["source"], "pathproof-trace");
    assert_eq!(j["verdict"]["class"], "rst-injected");
    assert_eq!(j["verdict"]["hop"], 2);
    assert_eq!(j["verdict"]["address"], "198.18.2.2");
}

/// The certificates of the first server Certificate message of a classic
/// little-endian Ethernet/IPv4 capture (the bundled `*.eth.pcap`), leaf first.
fn certificates_in(capture: &Path) -> Vec<Vec<u8>> {
    let d = std::fs::read(capture).unwrap();
    let u16be = |b: &[u8]| usize::from(u16::from_be_bytes([b[0], b[1]]));
    let u24 = |b: &[u8]| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]);
    let mut segments = std::collections::BTreeMap::new();
    let mut off = 24;
    while off + 16 <= d.len() {
        let incl = u32::from_le_bytes(d[off + 8..off + 12].try_into().unwrap()) as usize;
        let pkt = &d[off + 16..off + 16 + incl];
        off += 16 + incl;
        if pkt.len() < 34 || pkt[12..14] != [8, 0] || pkt[23] != 6 {
            continue;
        }
        let ip = &pkt[14..];
        let ihl = usize::from(ip[0] & 15) * 4;
        let tcp = &ip[ihl..];
        let payload = &tcp[usize::from(tcp[12] >> 4) * 4..u16be(&ip[2..]) - ihl];
        if u16be(tcp) == 443 && !payload.is_empty() {
            let seq = u32::from_be_bytes(tcp[4..8].try_into().unwrap());
            segments
                .entry(u16be(&tcp[2..]))
                .or_insert_with(std::collections::BTreeMap::new)
                .insert(seq, payload.to_vec());
        }
    }
    let stream: Vec<u8> = segments
        .values()
        .next()
        .unwrap()
        .values()
        .flatten()
        .copied()
        .collect();
    let mut handshake = Vec::new();
    let mut i = 0;
    while i + 5 <= stream.len() && stream[i] == 22 {
        let len = u16be(&stream[i + 3..]);
        handshake.extend_from_slice(&stream[i + 5..i + 5 + len]);
        i += 5 + len;
    }
    let mut j = 0;
    while handshake[j] != 11 {
        j += 4 + u24(&handshake[j + 1..]);
    }
    let body = &handshake[j + 4..];
    let (mut p, end) = (3, 3 + u24(body));
    let mut certs = Vec::new();
    while p < end {
        let len = u24(&body[p..]);
        certs.push(body[p + 3..p + 3 + len].to_vec());
        p += 3 + len;
    }
    certs
}

fn pem_file(name: &str, ders: &[&[u8]]) -> PathBuf {
    let text: String = ders
        .iter()
        .map(|d| pem::encode(&pem::Pem::new("CERTIFICATE", d.to_vec())))
        .collect();
    let path = std::env::temp_dir().join(format!("pathproof-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn expect_ca_verifies_the_chain_instead_of_naming_it() {
    let healthy = captures().join("healthy.eth.pcap");
    let healthy = healthy.to_str().unwrap();
    let certs = certificates_in(Path::new(healthy));
    assert_eq!(certs.len(), 2, "leaf and intermediate");
    let tls_finding = |v: &Value| -> String {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == "tls-handshake" || f["kind"] == "tls-intercepted")
            .map(|f| f["summary"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    // By name (the default): healthy, and the report says how it was checked.
    let out = run(&["pcap", healthy, "--json"]);
    let v = json_of(&out);
    assert_eq!(v["verdict"]["class"], "healthy");
    assert!(
        tls_finding(&v).contains("issuer checked by name only"),
        "{v}"
    );

    // Pinned to the broker's intermediate (the one it sends): verified.
    let ca = pem_file("ca.pem", &[&certs[1]]);
    let out = run(&[
        "pcap",
        healthy,
        "--json",
        "--expect-ca",
        ca.to_str().unwrap(),
    ]);
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(v["verdict"]["class"], "healthy");
    assert!(
        tls_finding(&v).contains("chain verified up to the pinned CA"),
        "{v}"
    );

    // Pinned to another CA with the very same name: interception.
    let twin = {
        use rcgen::{
            BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
        };
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Zscaler Test CA");
        dn.push(DnType::CommonName, "Zscaler Test Intermediate CA");
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .to_vec()
    };
    let other = pem_file("twin.pem", &[&twin]);
    let out = run(&["pcap", healthy, "--expect-ca", other.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.starts_with("VERDICT: tls-intercepted"), "{text}");
    assert!(text.contains("does not chain to the pinned CA"), "{text}");
    let _ = std::fs::remove_file(ca);
    let _ = std::fs::remove_file(other);
}

#[test]
fn a_bad_expect_ca_file_is_a_clear_error_with_exit_code_2() {
    let healthy = captures().join("healthy.eth.pcap");
    let bad = std::env::temp_dir().join(format!("pathproof-cli-{}-bad.pem", std::process::id()));
    std::fs::write(&bad, "not a certificate\n").unwrap();
    for args in [
        vec![
            "pcap",
            healthy.to_str().unwrap(),
            "--expect-ca",
            bad.to_str().unwrap(),
        ],
        vec![
            "pcap",
            healthy.to_str().unwrap(),
            "--expect-ca",
            "/nonexistent/ca.pem",
        ],
        vec!["check", "127.0.0.1", "--expect-ca", bad.to_str().unwrap()],
    ] {
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("--expect-ca file"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let _ = std::fs::remove_file(bad);
}

/// A scratch file for one test.
fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pathproof-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn egress_bad_input_is_exit_2_naming_the_file_and_line() {
    let dest = scratch(
        "dest-bad.txt",
        "# list\nbroker co2br.lab1.test\nweb example.test\n",
    );
    let proxy = scratch("proxy-bad", "\nproxy.corp\n");
    let dest_s = dest.to_str().unwrap();
    let proxy_s = proxy.to_str().unwrap();
    for (args, want) in [
        (
            vec!["--destinations", dest_s, "--direct"],
            format!("{dest_s} line 3"),
        ),
        (
            vec!["--proxy-file", proxy_s, "--ntp", "192.0.2.1"],
            format!("{proxy_s} line 2"),
        ),
        (vec!["--proxy", "proxy.corp"], "--proxy line 1".to_string()),
        (
            vec!["--destinations", "/nonexistent/list", "--direct"],
            "cannot read the destinations file /nonexistent/list".to_string(),
        ),
        (
            vec!["--proxy-file", "/nonexistent/proxy"],
            "cannot read the proxy file /nonexistent/proxy".to_string(),
        ),
        (
            vec!["--ntp", "bad host!", "--direct"],
            "--ntp line 1".to_string(),
        ),
    ] {
        let mut all = vec!["egress"];
        all.extend(&args);
        let out = run(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(&want), "{args:?}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{args:?}: nothing probed, nothing printed"
        );
    }
}

/// A name that does not resolve is a failing row, not an abort. Only
/// loopback is asked (a resolver address where nothing listens).
#[test]
fn egress_a_destination_that_does_not_resolve_is_a_failing_row() {
    let dest = scratch("dest-unresolved.txt", "update nowhere.invalid\n");
    let resolv = scratch("resolv-unresolved.conf", "nameserver 127.0.0.1\n");
    let out = run(&[
        "egress",
        "--destinations",
        dest.to_str().unwrap(),
        "--resolver",
        "127.0.0.1",
        "--resolv-conf",
        resolv.to_str().unwrap(),
        "--service-user",
        "root",
        "--direct",
        "--no-trace",
        "--timeout",
        "0.5",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    assert_eq!(v["command"], "egress");
    let checks = v["checks"].as_array().unwrap();
    let dns: Vec<&Value> = checks.iter().filter(|c| c["check"] == "dns").collect();
    assert_eq!(dns.len(), 3, "A and AAAA over UDP, A over TCP: {checks:#?}");
    for c in &dns {
        assert_eq!(c["status"], "fail", "{c:#}");
        assert_eq!(c["target"], "nowhere.invalid");
        assert_eq!(c["address"], "127.0.0.1");
        assert_eq!(c["required"], true);
    }
    for q in ["A", "AAAA"] {
        let udp = dns
            .iter()
            .find(|c| c["protocol"] == "udp" && c["query"] == q)
            .unwrap();
        assert_eq!(udp["class"], "dns-failure", "{udp:#}");
    }
    // No address: no TCP or TLS row for it.
    assert!(
        checks
            .iter()
            .all(|c| c["check"] != "tcp" && c["check"] != "tls")
    );
    let s = &v["summary"];
    assert_eq!(s["fail"].as_u64().unwrap(), 3);
    assert_eq!(
        s["pass"].as_u64().unwrap()
            + s["fail"].as_u64().unwrap()
            + s["warn"].as_u64().unwrap()
            + s["skip"].as_u64().unwrap(),
        checks.len() as u64
    );
    // The run's verdict is one of the failing rows' (the picker's choice).
    let classes: Vec<&Value> = dns.iter().map(|c| &c["class"]).collect();
    assert!(
        classes.contains(&&v["verdict"]["class"]),
        "{:#}",
        v["verdict"]
    );
}

/// A scratch directory under target/ for files the tests write.
fn test_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `--evidence`: for every bundled capture with a failure verdict, in every
/// format, the evidence file alone gives the same verdict and hop with the
/// same options, and holds at most a few dozen packets.
#[test]
fn evidence_file_alone_reaches_the_same_verdict() {
    let dir = test_dir("evidence");
    let mut checked = 0;
    let mut sizes = Vec::new();
    for e in expected_from_readme().into_iter().filter(|e| e.exit == 1) {
        for file in [
            "sll.pcap",
            "sll1.pcap",
            "eth.pcap",
            "sll.pcapng",
            "eth.pcapng",
        ] {
            let path = captures().join(format!("{}.{file}", e.scenario));
            let ev = dir.join(format!("{}.{file}.evidence.pcapng", e.scenario));
            let out = run(&[
                "pcap",
                path.to_str().unwrap(),
                "--hops",
                "4",
                "--json",
                "--evidence",
                ev.to_str().unwrap(),
            ]);
            let j = json_of(&out);
            let where_ = format!("{}: {}", path.display(), j["verdict"]["summary"]);
            assert_eq!(j["verdict"]["class"], e.class.as_str(), "{where_}");
            assert_eq!(
                j["evidence"]["same_verdict"], true,
                "{where_}: {}",
                j["evidence"]
            );

            let again = run(&["pcap", ev.to_str().unwrap(), "--hops", "4", "--json"]);
            let k = json_of(&again);
            let from = format!("{} (evidence of {})", ev.display(), path.display());
            assert_eq!(k["verdict"]["class"], e.class.as_str(), "{from}");
            assert_eq!(k["verdict"]["hop"].as_u64(), e.hop, "{from}");
            assert_eq!(again.status.code(), Some(e.exit), "{from}");
            assert_eq!(k["input"]["format"], "pcapng", "{from}");
            let packets = k["input"]["frames"].as_u64().unwrap();
            assert!((1..=48).contains(&packets), "{from}: {packets} packets");
            assert_eq!(j["evidence"]["packets"].as_u64(), Some(packets), "{from}");
            if file == "sll.pcap" {
                sizes.push(format!("{} {packets}", e.scenario));
            }
            checked += 1;
        }
    }
    assert!(checked >= 5 * 10, "{checked} evidence files checked");
    eprintln!("evidence packets per scenario: {}", sizes.join(", "));
}

/// With the mtr report, the evidence names the same hop and address.
#[test]
fn evidence_with_an_mtr_report_names_the_same_address() {
    let dir = test_dir("evidence");
    let mtr = captures().join("rst-hop2.mtr.txt");
    let ev = dir.join("rst-hop2-mtr.evidence.pcapng");
    let src = captures().join("rst-hop2.eth.pcap");
    let args = |input: &Path| {
        vec![
            "pcap".to_string(),
            input.to_str().unwrap().to_string(),
            "--mtr".into(),
            mtr.to_str().unwrap().into(),
            "--json".into(),
        ]
    };
    let mut first = args(&src);
    first.extend(["--evidence".into(), ev.to_str().unwrap().into()]);
    let j = json_of(&bin().args(&first).output().unwrap());
    let k = json_of(&bin().args(args(&ev)).output().unwrap());
    assert_eq!(j["verdict"]["address"], "198.18.2.2");
    for key in ["class", "hop", "address"] {
        assert_eq!(j["verdict"][key], k["verdict"][key], "{key}");
    }
}

/// Standard input is read once: the evidence comes from a copy made while
/// it was read, and the copy is gone afterwards.
#[test]
fn evidence_from_standard_input() {
    let dir = test_dir("evidence");
    let ev = dir.join("stdin.evidence.pcapng");
    let mut child = bin()
        .args([
            "pcap",
            "-",
            "--hops",
            "4",
            "--json",
            "--evidence",
            ev.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let bytes = std::fs::read(captures().join("tls-reset.sll.pcapng")).unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    let prefix = format!("pathproof-stdin-{pid}-");
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "temporary copy left behind: {left:?}");
    let j = json_of(&out);
    assert_eq!(j["evidence"]["same_verdict"], true, "{}", j["evidence"]);
    let k = json_of(&run(&[
        "pcap",
        ev.to_str().unwrap(),
        "--hops",
        "4",
        "--json",
    ]));
    assert_eq!(k["verdict"]["class"], "tls-blocked");
    assert_eq!(k["verdict"]["hop"], 1);
}

/// tshark (Wireshark 4) shows the packet comments: why each packet is
/// there and its frame number in the original.
#[test]
fn evidence_comments_show_in_tshark() {
    if Command::new("tshark").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("PATHPROOF_LAB_REQUIRED").is_none(),
            "tshark is missing and PATHPROOF_LAB_REQUIRED is set"
        );
        eprintln!("SKIPPED evidence_comments_show_in_tshark: tshark is not installed");
        return;
    }
    let dir = test_dir("evidence");
    let ev = dir.join("tshark-rst-hop2.evidence.pcapng");
    let src = captures().join("rst-hop2.sll.pcap");
    let out = run(&[
        "pcap",
        src.to_str().unwrap(),
        "--hops",
        "4",
        "--evidence",
        ev.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let t = Command::new("tshark")
        .args([
            "-r",
            ev.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.comment",
        ])
        .output()
        .unwrap();
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    let text = String::from_utf8_lossy(&t.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 6, "{text}");
    let name = src.display().to_string();
    for l in &lines {
        assert!(l.starts_with("frame ") && l.contains(&name), "{l}");
    }
    assert!(
        lines.iter().any(|l| l.starts_with("frame 12 of ")
            && l.contains("the forged reset (TTL 63, hop 2; the server is at hop 4)")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("frame 11 of ") && l.contains("SYN")),
        "{text}"
    );
    // The bytes are the original's: tshark decodes the same reset.
    let f = Command::new("tshark")
        .args([
            "-r",
            ev.to_str().unwrap(),
            "-Y",
            "tcp.flags.reset==1",
            "-T",
            "fields",
            "-e",
            "ip.ttl",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&f.stdout).trim(), "63\n63\n63");
}

/// Before installation the service user does not exist: an unprivileged
/// user stands in for it, and a resolv.conf it cannot read fails. Only
/// loopback is probed.
#[test]
fn egress_resolv_conf_is_checked_for_an_unprivileged_user_before_installation() {
    use std::os::unix::fs::PermissionsExt;
    let dest = scratch("dest-resolv.txt", "tls 127.0.0.1:1\n");
    for (mode, status) in [(0o644, "pass"), (0o600, "fail")] {
        let resolv = scratch(&format!("resolv-{mode:o}.conf"), "nameserver 127.0.0.1\n");
        std::fs::set_permissions(&resolv, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = run(&[
            "egress",
            "--destinations",
            dest.to_str().unwrap(),
            "--resolv-conf",
            resolv.to_str().unwrap(),
            "--service-user",
            "no-such-user-pathproof",
            "--direct",
            "--no-trace",
            "--timeout",
            "0.3",
            "--json",
        ]);
        let v = json_of(&out);
        let row = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "resolv")
            .unwrap()
            .clone();
        assert_eq!(row["status"], status, "mode {mode:o}: {row:#}");
        assert!(
            row["detail"]
                .as_str()
                .unwrap()
                .contains("no-such-user-pathproof"),
            "{row:#}"
        );
        if status == "fail" {
            assert_eq!(row["class"], "dns-failure", "{row:#}");
        }
        // Port 1 refuses: a failed probe is never classed healthy (without
        // a trace, nothing places the reset).
        let tcp = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "tcp")
            .unwrap();
        assert_eq!(tcp["status"], "fail", "{tcp:#}");
        assert_eq!(tcp["class"], "inconclusive", "{tcp:#}");
        assert_eq!(out.status.code(), Some(1));
    }
}
