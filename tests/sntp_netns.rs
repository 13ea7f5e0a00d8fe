//! The lab SNTP responder (tests/support/sntp.rs) inside a throwaway network
//! namespace, queried by `pathproof::check::sntp::query` from a thread that
//! entered the same namespace. Every packet stays on that namespace's
//! loopback. Needs root; skips loudly otherwise.

mod support;

use pathproof::check::sntp;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;
use support::sntp::SntpResponder;

/// A namespace named like the lab's (`pp<pid>-…`), so that a killed run's
/// leftover is removed by the next `Lab::up`; deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("pp{}-sntp", std::process::id());
        let run = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("run ip");
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&["netns", "add", &name]);
        let ns = Netns(name);
        run(&["-n", &ns.0, "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn responder_in_a_namespace_reports_its_offset() {
    if support::lab::skip_unless_root("sntp_netns::responder_in_a_namespace_reports_its_offset") {
        return;
    }
    let ns = Netns::new();
    let responder = SntpResponder::start(&ns.0, Ipv4Addr::LOCALHOST, 360);
    let path = format!("/run/netns/{}", ns.0);
    let result = std::thread::spawn(move || {
        let f = File::open(&path).expect("open namespace");
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        sntp::query(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 123)),
            Duration::from_secs(2),
            2,
        )
    })
    .join()
    .expect("query thread");
    let sample = result.expect("an SNTP answer from the lab responder");
    assert!((sample.offset_secs - 360.0).abs() < 1.0, "{sample:?}");
    assert_eq!(sample.stratum, 2);
    assert_eq!(sample.reference_id, "LAB");
    assert_eq!(responder.answered(), 1);

    // The socket really is in the namespace: nothing answers on the host's
    // loopback port 123 (unless the host runs an NTP server there).
    drop(responder);
    let host = sntp::query(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 123)),
        Duration::from_millis(200),
        1,
    );
    if let Ok(s) = &host {
        assert_ne!(
            s.reference_id, "LAB",
            "the responder leaked into the host namespace"
        );
    }
}
