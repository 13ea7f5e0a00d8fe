//! A tiny histogram of TTL values: the genuine TTL of a sender is its mode.

/// Distinct TTLs kept per sender; a genuine sender shows one or two (route
/// change), so more than this is itself a sign of trouble and is counted.
const SLOTS: usize = 6;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TtlCounts {
    slots: [(u8, u32); SLOTS],
    used: u8,
    overflow: u32,
}

impl TtlCounts {
    pub fn add(&mut self, ttl: u8) {
        self.add_n(ttl, 1);
    }

    fn add_n(&mut self, ttl: u8, n: u32) {
        let used = usize::from(self.used);
        if let Some(slot) = self.slots[..used].iter_mut().find(|s| s.0 == ttl) {
            slot.1 += n;
        } else if used < SLOTS {
            self.slots[used] = (ttl, n);
            self.used += 1;
        } else {
            self.overflow += n;
        }
    }

    /// The most frequent TTL (the highest on a tie: the shorter path).
    pub fn mode(&self) -> Option<u8> {
        self.slots[..usize::from(self.used)]
            .iter()
            .max_by_key(|(ttl, n)| (*n, *ttl))
            .map(|(ttl, _)| *ttl)
    }

    pub fn total(&self) -> u32 {
        self.slots[..usize::from(self.used)]
            .iter()
            .map(|s| s.1)
            .sum::<u32>()
            + self.overflow
    }

    /// Distinct TTL values seen (up to the slot count).
    pub fn values(&self) -> impl Iterator<Item = u8> + '_ {
        self.slots[..usize::from(self.used)].iter().map(|s| s.0)
    }

    pub fn merge(&mut self, other: &TtlCounts) {
        for &(ttl, n) in &other.slots[..usize::from(other.used)] {
            self.add_n(ttl, n);
        }
        self.overflow += other.overflow;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_and_overflow() {
        let mut c = TtlCounts::default();
        assert_eq!(c.mode(), None);
        for t in [61, 61, 60, 61] {
            c.add(t);
        }
        assert_eq!(c.mode(), Some(61));
        for t in 0..20 {
            c.add(t);
        }
        assert_eq!(c.total(), 24);
        assert_eq!(c.values().count(), SLOTS);
    }
}
