//! The tracer's only contact with the world: a [`Network`] that sends probe
//! bytes and returns received IP packets, and a [`Clock`].
//!
//! Both are traits so that the engine runs unchanged on raw sockets and on a
//! simulated network with a [`ManualClock`] (tests/trace_sim.rs).

use super::TraceError;
use super::probe::Probe;
use std::net::IpAddr;
use std::ops::{Add, Sub};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A point in time on the tracer's clock, in nanoseconds since the clock's
/// epoch ([`SystemClock`]: the Unix epoch, so it also stamps pcap records).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub u64);

impl Instant {
    pub const ZERO: Instant = Instant(0);
    pub const MAX: Instant = Instant(u64::MAX);

    pub fn from_nanos(ns: u64) -> Instant {
        Instant(ns)
    }

    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time from `earlier` to `self`; zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::MAX`].
    fn add(self, d: Duration) -> Instant {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(ns))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturates at zero.
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_since(earlier)
    }
}

/// Where the tracer reads the time. Every timestamp the engine compares
/// (probe sent, reply received, deadlines) is on this clock.
pub trait Clock {
    fn now(&self) -> Instant;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for std::rc::Rc<C> {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

/// Wall-clock nanoseconds that never go backwards: the Unix time at
/// creation plus a monotonic elapsed time, so an NTP step during a trace
/// cannot produce negative or inflated RTTs.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    wall_at_start: u64,
    start: std::time::Instant,
}

impl SystemClock {
    pub fn new() -> SystemClock {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        SystemClock {
            wall_at_start: wall,
            start: std::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> SystemClock {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant(self.wall_at_start) + self.start.elapsed()
    }
}

/// A clock that moves only when told: tests and simulations own time.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    pub fn new(start: Instant) -> ManualClock {
        ManualClock {
            now: AtomicU64::new(start.0),
        }
    }

    /// Moves the clock to `t`; never backwards (an earlier `t` is ignored).
    pub fn set(&self, t: Instant) {
        self.now.fetch_max(t.0, Ordering::SeqCst);
    }

    pub fn advance(&self, d: Duration) {
        self.set(self.now() + d);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        Instant(self.now.load(Ordering::SeqCst))
    }
}

/// One probe for the network to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeRequest {
    pub probe: Probe,
    pub dst: IpAddr,
    /// IPv4 TTL / IPv6 hop limit, also written in `bytes`.
    pub ttl: u8,
    /// The whole IP packet, checksums included (see [`crate::packet::emit`]).
    pub bytes: Vec<u8>,
    /// Where the transport header starts in `bytes`: a socket that cannot
    /// take the IP header (IPv6 without `IPV6_HDRINCL`) sends
    /// `bytes[ip_header_len..]` with the hop limit set to `ttl` and the
    /// source bound to the probe's source.
    pub ip_header_len: usize,
}

/// One received IP packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecvPacket {
    /// Starts with the IP header (no link layer).
    pub bytes: Vec<u8>,
    /// When it arrived, on the tracer's [`Clock`].
    pub received_at: Instant,
}

/// The I/O a tracer needs. Implementations: raw sockets (privileged, later)
/// and the simulated network of the tests.
pub trait Network {
    /// The source address packets to `target` leave from (the socket layer
    /// asks the routing table, e.g. by connecting a UDP socket). Called once,
    /// when [`TraceConfig::source`](super::TraceConfig::source) is `None`.
    fn source_addr(&mut self, target: IpAddr) -> Result<IpAddr, TraceError>;

    /// Sends one probe now. An error fails this probe only (it is marked
    /// `Failed` and not counted as sent); the trace stops when every probe
    /// of a round failed.
    fn send(&mut self, probe: &ProbeRequest) -> Result<(), TraceError>;

    /// Waits for the next received IP packet until `deadline` (on the
    /// tracer's clock) and returns it, or `None` once the deadline has
    /// passed. It must block (or, simulated, advance the clock): returning
    /// `None` early without time passing is tolerated a few times (signals)
    /// but a network that keeps doing it ends the trace with
    /// [`TraceError::Stalled`]. Every packet the host receives on the
    /// probe protocol may be returned: the engine ignores foreign ones.
    fn recv(&mut self, deadline: Instant) -> Result<Option<RecvPacket>, TraceError>;
}

impl<N: Network + ?Sized> Network for &mut N {
    fn source_addr(&mut self, target: IpAddr) -> Result<IpAddr, TraceError> {
        (**self).source_addr(target)
    }
    fn send(&mut self, probe: &ProbeRequest) -> Result<(), TraceError> {
        (**self).send(probe)
    }
    fn recv(&mut self, deadline: Instant) -> Result<Option<RecvPacket>, TraceError> {
        (**self).recv(deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_arithmetic_saturates() {
        let t = Instant(1_000);
        assert_eq!(t + Duration::from_nanos(500), Instant(1_500));
        assert_eq!(Instant(1_500) - t, Duration::from_nanos(500));
        assert_eq!(t - Instant(1_500), Duration::ZERO);
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
    }

    #[test]
    fn manual_clock_only_moves_forward() {
        let c = ManualClock::new(Instant(10));
        c.advance(Duration::from_nanos(5));
        assert_eq!(c.now(), Instant(15));
        c.set(Instant(12));
        assert_eq!(c.now(), Instant(15));
        let shared = Arc::new(c);
        fn read(c: impl Clock) -> Instant {
            c.now()
        }
        assert_eq!(read(&shared), Instant(15));
        assert_eq!(read(shared), Instant(15));
    }

    #[test]
    fn system_clock_is_unix_time_and_monotonic() {
        let c = SystemClock::new();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
        // After 2020-01-01.
        assert!(a.as_nanos() > 1_577_836_800_000_000_000);
    }
}
