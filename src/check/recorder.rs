//! Records every packet of a check, as `tcpdump -i any` would, so that the
//! run's evidence is analysed by the same engine as a customer capture and
//! can be saved for Wireshark or `pathproof pcap`.
//!
//! An `AF_PACKET` datagram socket on all interfaces (the kernel strips the
//! link header and gives its fields in `sockaddr_ll`), written back as Linux
//! cooked capture v1 (`LINKTYPE_LINUX_SLL`), the format the reader already
//! decodes with the direction of each packet. Only packets to or from the
//! addresses the check talks to, ICMP errors and ARP are kept: a connector
//! host carries other traffic that is none of the check's business.

use crate::capture::{PcapWriter, TsPrecision};
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, LinkAddr, MsgFlags, SockFlag, SockProtocol, SockType,
    recvmsg, setsockopt, socket, sockopt,
};
use nix::sys::time::TimeSpec;
use std::io::IoSliceMut;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// pcap link type of the recording: Linux cooked capture v1.
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// Frames kept at most (a check sends a few thousand packets).
pub const MAX_FRAMES: usize = 200_000;
/// Bytes kept of each frame (ICMP errors quote headers; TLS handshakes fit).
const SNAPLEN: usize = 65_535;
const ARPHRD_LOOPBACK: u16 = 772;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_ARP: u16 = 0x0806;

/// One recorded frame: the 16-byte cooked header and the packet.
#[derive(Clone, Debug)]
pub struct RecordedFrame {
    pub ts_ns: i64,
    pub data: Vec<u8>,
}

/// Why recording could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error(
        "cannot open a packet socket to record the run ({0}): run as root or give the binary \
         cap_net_raw (sudo setcap cap_net_raw+ep \"$(command -v pathproof)\")"
    )]
    Open(nix::Error),
    #[error("cannot configure the packet socket: {0}")]
    Configure(nix::Error),
}

/// What was recorded.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    pub frames: Vec<RecordedFrame>,
    /// Frames seen but not kept: not the check's traffic.
    pub ignored: u64,
    /// Frames not kept because [`MAX_FRAMES`] was reached.
    pub dropped: u64,
}

impl Recording {
    /// The recording as a pcap file (nanosecond timestamps).
    pub fn to_pcap(&self) -> std::io::Result<Vec<u8>> {
        let mut w = PcapWriter::new(
            Vec::new(),
            LINKTYPE_LINUX_SLL,
            SNAPLEN as u32,
            TsPrecision::Nano,
        )?;
        for f in &self.frames {
            w.write_frame(f.ts_ns, f.data.len() as u32, &f.data)?;
        }
        w.flush()?;
        Ok(w.into_inner())
    }
}

/// The addresses whose packets are kept; grows as the check learns them
/// (resolvers first, brokers after DNS).
#[derive(Clone, Debug, Default)]
pub struct Watch(Arc<Mutex<Vec<IpAddr>>>);

impl Watch {
    pub fn add(&self, addr: IpAddr) {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !v.contains(&addr) {
            v.push(addr);
        }
    }

    fn snapshot(&self) -> Vec<IpAddr> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A recording in progress; [`Recorder::stop`] returns what it saw.
pub struct Recorder {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Recording>>,
}

impl Recorder {
    /// Opens the packet socket and starts recording on a thread.
    pub fn start(watch: Watch) -> Result<Recorder, RecorderError> {
        let fd = socket(
            AddressFamily::Packet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::EthAll,
        )
        .map_err(RecorderError::Open)?;
        // Bursts of trace replies must not overflow the default buffer.
        let _ = setsockopt(&fd, sockopt::RcvBufForce, &(8 << 20))
            .or_else(|_| setsockopt(&fd, sockopt::RcvBuf, &(8 << 20)));
        setsockopt(&fd, sockopt::ReceiveTimestampns, &true).map_err(RecorderError::Configure)?;
        // The thread checks the stop flag at least this often.
        setsockopt(
            &fd,
            sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(0, 50_000),
        )
        .map_err(RecorderError::Configure)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("pathproof-recorder".into())
            .spawn(move || record(fd, watch, &flag))
            .map_err(|e| {
                RecorderError::Configure(nix::Error::from_raw(e.raw_os_error().unwrap_or(0)))
            })?;
        Ok(Recorder {
            stop,
            handle: Some(handle),
        })
    }

    /// Stops after `linger` (late answers still arrive) and returns the recording.
    pub fn stop(mut self, linger: Duration) -> Recording {
        std::thread::sleep(linger);
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn record(fd: OwnedFd, watch: Watch, stop: &AtomicBool) -> Recording {
    let mut out = Recording::default();
    let mut buf = vec![0u8; SNAPLEN];
    let mut watched = watch.snapshot();
    let mut since_refresh = 0u32;
    while !stop.load(Ordering::SeqCst) {
        let mut cmsg = nix::cmsg_space!(TimeSpec);
        let (len, ts, link) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<LinkAddr>(
                fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_TRUNC,
            ) {
                Ok(m) => m,
                Err(nix::Error::EAGAIN | nix::Error::EINTR) => continue,
                Err(_) => break,
            };
            let mut ts = None;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmTimestampns(t) = c {
                        ts = Some(t.tv_sec() * 1_000_000_000 + t.tv_nsec());
                    }
                }
            }
            (msg.bytes.min(SNAPLEN), ts, msg.address)
        };
        let Some(link) = link else { continue };
        since_refresh += 1;
        if since_refresh >= 64 {
            watched = watch.snapshot();
            since_refresh = 0;
        }
        let protocol = u16::from_be(link.protocol());
        if link.hatype() == ARPHRD_LOOPBACK || !keep(protocol, &buf[..len], &watched) {
            // A new address may have been added since the last snapshot.
            if protocol != ETH_P_ARP && len > 0 {
                watched = watch.snapshot();
                if link.hatype() == ARPHRD_LOOPBACK || !keep(protocol, &buf[..len], &watched) {
                    out.ignored += 1;
                    continue;
                }
            } else {
                out.ignored += 1;
                continue;
            }
        }
        if out.frames.len() >= MAX_FRAMES {
            out.dropped += 1;
            continue;
        }
        let ts_ns = ts.unwrap_or_else(now_ns);
        out.frames.push(RecordedFrame {
            ts_ns,
            data: cooked(&link, protocol, &buf[..len]),
        });
    }
    out
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The Linux cooked (SLL v1) header of a frame, then its bytes.
fn cooked(link: &LinkAddr, protocol: u16, packet: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + packet.len());
    v.extend_from_slice(&u16::from(link.pkttype()).to_be_bytes());
    v.extend_from_slice(&link.hatype().to_be_bytes());
    let halen = link.halen().min(8);
    v.extend_from_slice(&(halen as u16).to_be_bytes());
    let mut addr = [0u8; 8];
    if let Some(mac) = link.addr() {
        addr[..6].copy_from_slice(&mac);
    }
    v.extend_from_slice(&addr);
    v.extend_from_slice(&protocol.to_be_bytes());
    v.extend_from_slice(packet);
    v
}

/// Whether a frame belongs to the check: ARP (names hop 1), packets to or
/// from a watched address, and ICMP errors (routers quoting our probes).
pub fn keep(protocol: u16, packet: &[u8], watched: &[IpAddr]) -> bool {
    match protocol {
        ETH_P_ARP => true,
        ETH_P_IP if packet.len() >= 20 => {
            let src = IpAddr::from(<[u8; 4]>::try_from(&packet[12..16]).unwrap_or([0; 4]));
            let dst = IpAddr::from(<[u8; 4]>::try_from(&packet[16..20]).unwrap_or([0; 4]));
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let icmp_error = packet[9] == 1
                && packet
                    .get(ihl)
                    .is_some_and(|t| matches!(t, 3 | 4 | 5 | 11 | 12));
            icmp_error || watched.contains(&src) || watched.contains(&dst)
        }
        ETH_P_IPV6 if packet.len() >= 40 => {
            let src = IpAddr::from(<[u8; 16]>::try_from(&packet[8..24]).unwrap_or([0; 16]));
            let dst = IpAddr::from(<[u8; 16]>::try_from(&packet[24..40]).unwrap_or([0; 16]));
            // ICMPv6 errors (types 1–4) when they follow the fixed header.
            let icmp_error = packet[6] == 58 && packet.get(40).is_some_and(|t| (1..=4).contains(t));
            icmp_error || watched.contains(&src) || watched.contains(&dst)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, first: u8) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[9] = proto;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p[20] = first;
        p
    }

    #[test]
    fn keeps_watched_traffic_icmp_errors_and_arp() {
        let broker: IpAddr = "198.18.4.2".parse().unwrap();
        let watched = [broker];
        let to_broker = ipv4([198, 18, 1, 1], [198, 18, 4, 2], 6, 0);
        let other = ipv4([198, 18, 1, 1], [192, 0, 2, 9], 6, 0);
        let time_exceeded = ipv4([198, 18, 2, 2], [198, 18, 1, 1], 1, 11);
        let foreign_ping = ipv4([192, 0, 2, 9], [198, 18, 1, 1], 1, 8);
        assert!(keep(ETH_P_IP, &to_broker, &watched));
        assert!(!keep(ETH_P_IP, &other, &watched));
        assert!(keep(ETH_P_IP, &time_exceeded, &watched));
        assert!(!keep(ETH_P_IP, &foreign_ping, &watched));
        assert!(keep(ETH_P_ARP, &[0u8; 28], &watched));
        assert!(!keep(0x88cc, &[0u8; 60], &watched));
        assert!(!keep(ETH_P_IP, &[0x45; 10], &watched), "cut header");
    }

    #[test]
    fn recording_is_a_pcap_the_reader_decodes() {
        let mut pkt = ipv4([198, 18, 1, 1], [198, 18, 4, 2], 17, 0);
        pkt[2..4].copy_from_slice(&28u16.to_be_bytes());
        let mut data = vec![0, 4, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        data.extend_from_slice(&pkt);
        let rec = Recording {
            frames: vec![RecordedFrame {
                ts_ns: 1_700_000_000_123_456_789,
                data,
            }],
            ..Recording::default()
        };
        let bytes = rec.to_pcap().unwrap();
        let mut r =
            crate::capture::CaptureReader::from_reader(Box::new(std::io::Cursor::new(bytes)))
                .unwrap();
        let f = r.next_frame().unwrap().expect("one frame");
        assert_eq!(f.ts_ns, 1_700_000_000_123_456_789);
        let d = crate::packet::decode(f.link_type, f.number, f.ts_ns, f.data).unwrap();
        assert_eq!(d.packet.dst, "198.18.4.2".parse::<IpAddr>().unwrap());
    }
}
