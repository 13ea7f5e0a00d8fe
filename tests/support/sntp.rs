//! An SNTP responder for the lab: answers every client request on
//! `addr:123` inside a network namespace with the time `now + offset`
//! (stratum 2, reference id "LAB"), so that a scenario can put the
//! connector's clock behind or ahead of "the network".
//!
//! The packet is built here independently of `pathproof::check::sntp`, so
//! that a bug in the client's timestamp code is not mirrored by the server.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from 1900-01-01 (NTP epoch) to 1970-01-01.
const NTP_UNIX_OFFSET_SECS: i128 = 2_208_988_800;

/// The 32.32 NTP timestamp of "now + offset_secs".
fn ntp_now(offset_secs: i64) -> u64 {
    let unix_nanos = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    let ntp_nanos = unix_nanos + (NTP_UNIX_OFFSET_SECS + i128::from(offset_secs)) * 1_000_000_000;
    ((ntp_nanos << 32).div_euclid(1_000_000_000)) as u64
}

/// The server's answer to `request` (a client-mode packet), or None when
/// the datagram is not a client request.
fn answer(request: &[u8], receive: u64, offset_secs: i64) -> Option<[u8; 48]> {
    if request.len() < 48 || request[0] & 7 != 3 {
        return None;
    }
    let version = (request[0] >> 3) & 7;
    let mut p = [0u8; 48];
    p[0] = (version << 3) | 4; // LI 0, the client's version, mode 4 (server)
    p[1] = 2; // stratum 2
    p[2] = request[2]; // poll, echoed
    p[3] = (-20i8) as u8; // precision ~1 µs
    p[4..8].copy_from_slice(&0x0000_0100u32.to_be_bytes()); // root delay 1/256 s
    p[8..12].copy_from_slice(&0x0000_0100u32.to_be_bytes()); // root dispersion
    p[12..16].copy_from_slice(b"LAB\0");
    let reference = receive.wrapping_sub(16 << 32); // last synchronised 16 s ago
    p[16..24].copy_from_slice(&reference.to_be_bytes());
    p[24..32].copy_from_slice(&request[40..48]); // origin = client's transmit
    p[32..40].copy_from_slice(&receive.to_be_bytes());
    p[40..48].copy_from_slice(&ntp_now(offset_secs).to_be_bytes());
    Some(p)
}

/// A running responder; dropping it stops the thread (and so closes the
/// socket inside the namespace).
pub struct SntpResponder {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl SntpResponder {
    /// Binds UDP `addr:123` inside the namespace `/run/netns/<netns>` and
    /// answers with server time = now + `offset_secs` (positive: the network
    /// is ahead, i.e. the local clock is behind). Panics with the reason if
    /// the namespace cannot be entered or the port cannot be bound.
    pub fn start(netns: &str, addr: Ipv4Addr, offset_secs: i64) -> SntpResponder {
        let path = format!("/run/netns/{netns}");
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (s, count) = (stop.clone(), answered.clone());
        let thread = thread::spawn(move || {
            // setns affects only this thread: the socket is created in, and
            // stays in, the lab namespace.
            let sock = File::open(&path)
                .map_err(|e| format!("open {path}: {e}"))
                .and_then(|ns| {
                    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(|e| format!("setns {path}: {e}"))
                })
                .and_then(|()| {
                    UdpSocket::bind((addr, 123))
                        .map_err(|e| format!("bind {addr}:123 in {path}: {e}"))
                })
                .and_then(|sock| {
                    sock.set_read_timeout(Some(Duration::from_millis(50)))
                        .map_err(|e| format!("read timeout: {e}"))
                        .map(|()| sock)
                });
            let sock = match sock {
                Ok(sock) => {
                    let _ = ready_tx.send(Ok(()));
                    sock
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let mut buf = [0u8; 512];
            while !s.load(Ordering::SeqCst) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let receive = ntp_now(offset_secs);
                if let Some(p) = answer(&buf[..n], receive, offset_secs)
                    && sock.send_to(&p, from).is_ok()
                {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("SNTP responder: {e}"),
            Err(_) => panic!("SNTP responder thread died before binding"),
        }
        SntpResponder {
            addr: SocketAddr::from((addr, 123)),
            stop,
            answered,
            thread: Some(thread),
        }
    }

    /// How many requests were answered so far.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::SeqCst)
    }
}

impl Drop for SntpResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
