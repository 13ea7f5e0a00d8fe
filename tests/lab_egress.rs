//! End-to-end: `pathproof egress` on the egress lab (tests/support/egress.rs).

mod support;

use support::egress::{EgressLab, Fault};

/// Brings up the healthy egress lab (or the fault named by
/// `PATHPROOF_EGRESS_FAULT`), runs `bash -c "$PATHPROOF_EGRESS_LAB_RUN"` on
/// the host with the lab described in `EGRESS_*` variables, and tears the
/// lab down. What `bench/egress.sh` runs; by hand:
/// `PATHPROOF_EGRESS_LAB_RUN='env | grep EGRESS_; sleep 600' cargo test
/// --test lab_egress egress_lab_hold -- --ignored --nocapture`.
#[test]
#[ignore = "a harness for bench/egress.sh and for poking at the lab by hand"]
fn egress_lab_hold() {
    require_root!();
    let cmd = std::env::var("PATHPROOF_EGRESS_LAB_RUN")
        .expect("set PATHPROOF_EGRESS_LAB_RUN to the shell command to run while the lab is up");
    let fault = match std::env::var("PATHPROOF_EGRESS_FAULT").as_deref() {
        Err(_) | Ok("") | Ok("none") => Fault::None,
        Ok("ntp-drop") => Fault::NtpDropHop2,
        Ok("tcp-drop") => Fault::Tcp443DropHop2ForConn,
        Ok("intercept") => Fault::InterceptEnrollHop2,
        Ok("nxdomain") => Fault::NxdomainYum,
        Ok("proxy-intercept") => Fault::ProxyIntercepts,
        Ok(other) => panic!("unknown PATHPROOF_EGRESS_FAULT {other}"),
    };
    let lab = EgressLab::up(fault);
    let status = std::process::Command::new("bash")
        .args(["-c", &cmd])
        .envs(lab.env())
        .status()
        .expect("run bash");
    drop(lab);
    assert!(status.success(), "`{cmd}` failed: {status}");
}
