//! The pure decisions of a path-MTU search: which size to test next
//! ([`SizeSearch`]) and where a black hole lies ([`localise`]).

use std::net::IpAddr;

/// Why a size failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// Every try went unanswered, with no ICMP error.
    Silent,
    /// ICMP fragmentation-needed / packet-too-big quoting the probe.
    FragNeeded { mtu: Option<u16>, from: IpAddr },
    /// Another ICMP unreachable quoting the probe (a filter, no route).
    Unreachable { code: u8, from: IpAddr },
    /// This host refused to send it (larger than its interface MTU).
    Local,
}

/// Binary search for the largest size that passes, between the largest
/// size known to pass and the smallest known to fail, in 1-byte steps.
///
/// Order: `high` first (the healthy case costs one probe), then `low`, then
/// `floor` (576) when even `low` fails, so that "nothing passes" (target
/// down, protocol filtered) is told from a small MTU. A fragmentation-needed
/// reporting MTU m bounds every size above m as failing, and m is tested
/// next: it should pass (RFC 1191, RFC 8201).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SizeSearch {
    low: u16,
    high: u16,
    floor: u16,
    passing: Option<u16>,
    failing: Option<u16>,
    /// A reported MTU still to test.
    reported: Option<u16>,
    /// A size passed at or above a size that had failed (loss bursts, a
    /// route change): the search stops rather than chase it.
    inconsistent: bool,
}

impl SizeSearch {
    /// `floor < low ≤ high` is expected; other orders are tolerated.
    pub fn new(low: u16, high: u16, floor: u16) -> SizeSearch {
        SizeSearch {
            low,
            high,
            floor,
            passing: None,
            failing: None,
            reported: None,
            inconsistent: false,
        }
    }

    pub fn largest_passing(&self) -> Option<u16> {
        self.passing
    }

    pub fn smallest_failing(&self) -> Option<u16> {
        self.failing
    }

    pub fn inconsistent(&self) -> bool {
        self.inconsistent
    }

    /// The untested region between the bounds.
    fn open(&self, size: u16) -> bool {
        self.passing.is_none_or(|p| size > p) && self.failing.is_none_or(|f| size < f)
    }

    /// The size to test next; `None` when the search is over.
    pub fn next(&self) -> Option<u16> {
        if self.inconsistent {
            return None;
        }
        if let Some(m) = self.reported.filter(|&m| self.open(m)) {
            return Some(m);
        }
        match (self.passing, self.failing) {
            (None, _) => [self.high, self.low, self.floor]
                .into_iter()
                .find(|&s| self.open(s)),
            // Passing without a failure: `high` passed (or a reported MTU
            // did, whose bound made `high` fail: not this arm).
            (Some(_), None) => None,
            (Some(p), Some(f)) => (f - p > 1).then(|| p + (f - p) / 2),
        }
    }

    pub fn passed(&mut self, size: u16) {
        if self.failing.is_some_and(|f| size >= f) {
            self.inconsistent = true;
        }
        self.passing = Some(self.passing.map_or(size, |p| p.max(size)));
        if self.reported == Some(size) {
            self.reported = None;
        }
    }

    pub fn failed(&mut self, size: u16, reported_mtu: Option<u16>) {
        if self.passing.is_some_and(|p| size <= p) {
            self.inconsistent = true;
        }
        self.failing = Some(self.failing.map_or(size, |f| f.min(size)));
        if self.reported == Some(size) {
            self.reported = None;
        }
        // A plausible MTU: below the probe, above what already passed.
        if let Some(m) = reported_mtu.filter(|&m| m < size && self.open(m)) {
            self.failing = Some(self.failing.map_or(m + 1, |f| f.min(m + 1)));
            self.reported = Some(m);
        }
    }
}

/// What one TTL-limited probe (all its tries) drew.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlAnswer {
    /// Time exceeded from this router: the probe reached it.
    TimeExceeded(IpAddr),
    /// The target answered: the probe reached it.
    Target,
    /// Fragmentation-needed from this router.
    FragNeeded(IpAddr),
    /// Anything else (unreachable) or nothing.
    Nothing,
}

/// Probes of the failing size (`big`) and, when that drew nothing, of a
/// passing size (`small`) at one TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtlProbe {
    pub ttl: u8,
    pub big: TtlAnswer,
    pub small: Option<TtlAnswer>,
}

impl TtlProbe {
    fn big_reached(&self) -> bool {
        matches!(self.big, TtlAnswer::TimeExceeded(_) | TtlAnswer::Target)
    }

    fn small_reached(&self) -> bool {
        matches!(
            self.small,
            Some(TtlAnswer::TimeExceeded(_) | TtlAnswer::Target)
        )
    }
}

/// Silent TTLs (neither size answered) past the last big answer after
/// which localisation stops: routers that never answer are common, but a
/// run of them means the path beyond is out of sight anyway.
pub const MAX_SILENT_TTLS: usize = 3;

/// Whether localisation should probe the next TTL after `probes`.
pub fn keep_localising(probes: &[TtlProbe], max_ttl: u8) -> bool {
    let Some(last) = probes.last() else {
        return max_ttl >= 1;
    };
    if last.ttl >= max_ttl {
        return false;
    }
    // Decided: the small probe reached where the big one did not, either
    // reached the target, or a router reported the MTU after all.
    if (!last.big_reached() && last.small_reached())
        || matches!(last.big, TtlAnswer::Target | TtlAnswer::FragNeeded(_))
        || matches!(last.small, Some(TtlAnswer::Target))
    {
        return false;
    }
    let silent_run = probes
        .iter()
        .rev()
        .take_while(|p| !p.big_reached() && !p.small_reached())
        .count();
    silent_run < MAX_SILENT_TTLS
}

/// Where a black hole lies, from TTL-limited probes of the failing size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Localisation {
    /// j: the largest TTL whose big probe drew a time exceeded (0: none
    /// did, the constriction is on this host's own first link).
    pub after_hop: u8,
    /// Hop j's address (the router that answered), `None` for hop 0.
    pub after_address: Option<IpAddr>,
    /// A passing-size probe reached hop j + 1 (or the target) while the
    /// failing size did not: the constriction is certainly between j and
    /// j + 1. Otherwise hop j + 1 may simply never answer, and the
    /// constriction lies somewhere after hop j.
    pub confirmed: bool,
}

/// Traceroute arithmetic for the black hole (hops numbered as traceroute:
/// the first router is hop 1, this host hop 0).
///
/// A probe with TTL t is answered with time exceeded by the router at hop
/// t, if it gets there. Router j checks the TTL on arrival, then forwards
/// onto the link toward j + 1, where the packet must fit that link's MTU.
/// So a big probe at TTL j still draws time exceeded from hop j, and one at
/// TTL j + 1 is dropped at hop j's egress (silently, in a black hole) and
/// never reaches hop j + 1. With j the largest TTL whose big probe drew a
/// time exceeded, the constriction is the link between hop j and hop j + 1:
/// `blackhole_after_hop = j`. A small probe that draws time exceeded at
/// TTL j + 1 proves hop j + 1 answers at all ([`Localisation::confirmed`]).
///
/// `None` when no big probe was dropped: a big probe reached the target.
pub fn localise(probes: &[TtlProbe]) -> Option<Localisation> {
    if probes.iter().any(|p| matches!(p.big, TtlAnswer::Target)) {
        return None;
    }
    let last_big = probes
        .iter()
        .filter_map(|p| match p.big {
            TtlAnswer::TimeExceeded(a) => Some((p.ttl, a)),
            _ => None,
        })
        .max_by_key(|(ttl, _)| *ttl);
    let after_hop = last_big.map_or(0, |(t, _)| t);
    let confirmed = probes
        .iter()
        .find(|p| p.ttl == after_hop + 1)
        .is_some_and(|p| !p.big_reached() && p.small_reached());
    Some(Localisation {
        after_hop,
        after_address: last_big.map(|(_, a)| a),
        confirmed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a path where sizes ≤ `mtu` pass and larger
    /// ones fail (`ptb`: with the MTU reported); returns the sizes tested.
    fn run(mtu: u16, ptb: bool) -> (SizeSearch, Vec<u16>) {
        let mut s = SizeSearch::new(1200, 1500, 576);
        let mut tested = Vec::new();
        while let Some(size) = s.next() {
            assert!(tested.len() < 40, "does not end: {tested:?}");
            tested.push(size);
            if size <= mtu {
                s.passed(size);
            } else {
                s.failed(size, ptb.then_some(mtu));
            }
        }
        (s, tested)
    }

    #[test]
    fn healthy_path_costs_one_size() {
        let (s, tested) = run(1500, false);
        assert_eq!(tested, vec![1500]);
        assert_eq!(
            (s.largest_passing(), s.smallest_failing()),
            (Some(1500), None)
        );
    }

    #[test]
    fn reported_mtu_is_tested_next_and_ends_the_search() {
        let (s, tested) = run(1400, true);
        assert_eq!(tested, vec![1500, 1400]);
        assert_eq!(
            (s.largest_passing(), s.smallest_failing()),
            (Some(1400), Some(1401))
        );
    }

    #[test]
    fn silent_failure_bisects_to_the_byte() {
        for mtu in [1201u16, 1280, 1399, 1400, 1492, 1499] {
            let (s, tested) = run(mtu, false);
            assert_eq!(s.largest_passing(), Some(mtu), "{tested:?}");
            assert_eq!(s.smallest_failing(), Some(mtu + 1));
            assert!(tested.len() <= 12, "{mtu}: {tested:?}");
        }
    }

    #[test]
    fn below_low_falls_back_to_the_floor() {
        let (s, tested) = run(1000, false);
        assert_eq!(&tested[..3], &[1500, 1200, 576]);
        assert_eq!(s.largest_passing(), Some(1000));
        // Nothing passes at all.
        let (s, tested) = run(100, false);
        assert_eq!(tested, vec![1500, 1200, 576]);
        assert_eq!(
            (s.largest_passing(), s.smallest_failing()),
            (None, Some(576))
        );
    }

    #[test]
    fn implausible_reported_mtus_are_ignored() {
        let mut s = SizeSearch::new(1200, 1500, 576);
        s.failed(1500, Some(1600)); // above the probe
        assert_eq!(s.next(), Some(1200));
        s.passed(1200);
        s.failed(1350, Some(1100)); // below what passed
        assert_eq!(s.next(), Some(1275));
        // A second, smaller constriction reported after the first.
        let mut s = SizeSearch::new(1200, 1500, 576);
        s.failed(1500, Some(1450));
        assert_eq!(s.next(), Some(1450));
        s.failed(1450, Some(1300));
        assert_eq!(s.next(), Some(1300));
        s.passed(1300);
        assert_eq!(s.next(), None);
        assert_eq!(s.smallest_failing(), Some(1301));
    }

    #[test]
    fn contradictions_stop_the_search() {
        let mut s = SizeSearch::new(1200, 1500, 576);
        s.failed(1500, None);
        s.passed(1200);
        s.passed(1500);
        assert!(s.inconsistent());
        assert_eq!(s.next(), None);
    }

    fn te(last: u8) -> IpAddr {
        IpAddr::from([198, 18, 0, last])
    }

    fn probe(ttl: u8, big: TtlAnswer, small: Option<TtlAnswer>) -> TtlProbe {
        TtlProbe { ttl, big, small }
    }

    #[test]
    fn blackhole_after_the_last_hop_the_big_probe_reached() {
        use TtlAnswer::*;
        let probes = [
            probe(1, TimeExceeded(te(1)), None),
            probe(2, TimeExceeded(te(2)), None),
            probe(3, Nothing, Some(TimeExceeded(te(3)))),
        ];
        assert!(!keep_localising(&probes, 16));
        assert_eq!(
            localise(&probes),
            Some(Localisation {
                after_hop: 2,
                after_address: Some(te(2)),
                confirmed: true
            })
        );
        // A hop that never answers before the constriction does not move it.
        let probes = [
            probe(1, TimeExceeded(te(1)), None),
            probe(2, Nothing, Some(Nothing)),
            probe(3, TimeExceeded(te(3)), None),
            probe(4, Nothing, Some(Target)),
        ];
        assert!(!keep_localising(&probes, 16));
        let l = localise(&probes).unwrap();
        assert_eq!((l.after_hop, l.confirmed), (3, true));
    }

    #[test]
    fn silent_next_hop_is_unconfirmed_and_stops_after_a_run() {
        use TtlAnswer::*;
        let mut probes = vec![probe(1, TimeExceeded(te(1)), None)];
        for ttl in 2..=4 {
            assert!(keep_localising(&probes, 16));
            probes.push(probe(ttl, Nothing, Some(Nothing)));
        }
        assert!(!keep_localising(&probes, 16));
        let l = localise(&probes).unwrap();
        assert_eq!((l.after_hop, l.confirmed), (1, false));
        // The bound on TTLs.
        assert!(!keep_localising(&probes[..1], 1));
        assert!(keep_localising(&[], 1));
    }

    #[test]
    fn first_link_and_big_probe_reaching_the_target() {
        use TtlAnswer::*;
        let probes = [probe(1, Nothing, Some(TimeExceeded(te(1))))];
        let l = localise(&probes).unwrap();
        assert_eq!((l.after_hop, l.after_address, l.confirmed), (0, None, true));
        assert_eq!(localise(&[probe(1, Target, None)]), None);
    }
}
