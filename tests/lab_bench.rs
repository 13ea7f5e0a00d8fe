//! The namespace lab held up for `bench/real-capture.sh`, which records the
//! benchmark's real-traffic capture inside it (issue 17).
//!
//! `bench_lab_hold` is ignored: it never runs in a plain `cargo test`. It
//! brings up the healthy lab (conn — r1 — r2 — r3 — broker, the resolver
//! beside r1; the broker's own `s_server -www` on 443 with the EC P-256
//! chain of `O=Zscaler Test CA`, any TLS version), generates a second chain
//! with RSA 2048 keys, runs `bash -c "$PATHPROOF_BENCH_LAB_RUN"` with the
//! lab described in `BENCH_*` environment variables (namespace names, the
//! work dir, certificate files, addresses), and tears the lab down
//! afterwards, also when the command fails or the test panics (the lab's
//! `Drop` kills what runs in its namespaces and deletes them).
//!
//! ```sh
//! PATHPROOF_BENCH_LAB_RUN='env | grep ^BENCH_; ip netns exec "$BENCH_NS_CONN" bash' \
//!     cargo test --test lab_bench bench_lab_hold -- --ignored --nocapture
//! ```
//!
//! Needs root; skips loudly otherwise.

mod support;

use support::lab::{
    CERT_BACKDATE_SECS, CertKey, Certs, Lab, LabOptions, Node, Scenario, TlsVersion,
    ZSCALER_TEST_CA, make_certs_keyed,
};

fn cert_env(prefix: &str, certs: &Certs) -> Vec<(String, String)> {
    let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
    vec![
        (format!("{prefix}_LEAF"), s(&certs.leaf)),
        (format!("{prefix}_KEY"), s(&certs.leaf_key)),
        (format!("{prefix}_CHAIN"), s(&certs.chain)),
        (format!("{prefix}_ROOT"), s(&certs.root)),
    ]
}

/// Holds the healthy lab up while `$PATHPROOF_BENCH_LAB_RUN` runs.
#[test]
#[ignore = "benchmark harness for bench/real-capture.sh; needs root and PATHPROOF_BENCH_LAB_RUN"]
fn bench_lab_hold() {
    require_root!();
    let cmd = std::env::var("PATHPROOF_BENCH_LAB_RUN")
        .expect("set PATHPROOF_BENCH_LAB_RUN to the shell command to run while the lab is up");
    let lab = Lab::up(
        Scenario::Healthy,
        LabOptions {
            tls: TlsVersion::Any,
            ..LabOptions::default()
        },
    );
    let rsa = make_certs_keyed(
        &lab.workdir().join("pki-rsa"),
        &ZSCALER_TEST_CA,
        -CERT_BACKDATE_SECS,
        CertKey::Rsa2048,
    );
    let mut env: Vec<(String, String)> = Node::ALL
        .iter()
        .map(|n| {
            (
                format!("BENCH_NS_{}", n.name().to_uppercase()),
                lab.ns(*n).to_string(),
            )
        })
        .collect();
    env.push((
        "BENCH_WORKDIR".into(),
        lab.workdir().to_string_lossy().into_owned(),
    ));
    env.extend(cert_env("BENCH_EC", lab.broker_certs()));
    env.extend(cert_env("BENCH_RSA", &rsa));
    env.push(("BENCH_CONN_ADDR".into(), lab.conn_addr().to_string()));
    env.push(("BENCH_BROKER_ADDR".into(), lab.broker_addr().to_string()));
    env.push((
        "BENCH_RESOLVER_ADDR".into(),
        lab.resolver_addr().to_string(),
    ));
    env.push(("BENCH_R2_ADDR".into(), lab.hop_addr(2).to_string()));
    let status = std::process::Command::new("bash")
        .args(["-c", &cmd])
        .envs(env)
        .status()
        .expect("run bash");
    drop(lab);
    assert!(status.success(), "`{cmd}` failed: {status}");
}
