//! The path-MTU black-hole rule, once for every source: large probes that
//! vanish without ICMP are a black hole only when loss cannot explain their
//! silence. Used by the capture's probe tracker (`pmtu_probes`) and by
//! `check`'s live search.

/// The sends of the sizes that passed, how many of those were answered,
/// and the unanswered sends of the larger sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeEvidence {
    pub small_sent: u32,
    pub small_answered: u32,
    pub big_unanswered: u32,
}

/// Silence of every large probe is called loss, not a black hole, when at
/// the loss rate the passing sizes saw it is more than this likely.
pub const PLAUSIBLE_LOSS: f64 = 0.01;

/// Random loss silences large probes too: the sizes that got through were
/// lost at some rate p; if all n large probes failing by chance (pⁿ) is
/// more than [`PLAUSIBLE_LOSS`] likely, the silence proves nothing.
pub fn silence_is_plausible_loss(e: SizeEvidence) -> bool {
    let loss = 1.0 - f64::from(e.small_answered.min(e.small_sent)) / f64::from(e.small_sent.max(1));
    loss.powi(e.big_unanswered.min(64) as i32) > PLAUSIBLE_LOSS
}

/// Probes of one size toward one destination (at the normal TTL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeCount {
    /// IP total length.
    pub size: u32,
    pub sent: u32,
    pub answered: u32,
}

/// Smallest IP length that counts as a "big" probe.
pub const MIN_BIG_SIZE: u32 = 1000;
/// Unanswered sends of one size before it counts as failing (RFC 8899's
/// MAX_PROBES).
pub const MIN_SENDS: u32 = 3;

/// What the sizes show when they show a black hole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeBlackHole {
    /// The smallest failing size and its sends.
    pub failing: u32,
    pub failing_sent: u32,
    pub largest_answered: u32,
}

/// The black-hole rule over per-size counts (any order): every size above
/// the largest answered one went unanswered; the smallest of them that is
/// big (≥ [`MIN_BIG_SIZE`]) and was sent at least [`MIN_SENDS`] times
/// fails; and loss at the rate the answered sizes saw does not explain the
/// silence ([`silence_is_plausible_loss`]). A size answered even once
/// above a silent one moves the boundary up: random loss scatters failures,
/// a black hole does not. The capture's probe tracker and `check`'s live
/// search both decide with this function, on the same counts.
pub fn black_hole(sizes: &[SizeCount]) -> Option<SizeBlackHole> {
    let largest_answered = sizes
        .iter()
        .filter(|s| s.answered > 0)
        .map(|s| s.size)
        .max()?;
    let mut above: Vec<&SizeCount> = sizes.iter().filter(|s| s.size > largest_answered).collect();
    above.sort_by_key(|s| s.size);
    let failing = above
        .iter()
        .find(|s| s.size >= MIN_BIG_SIZE && s.sent >= MIN_SENDS)?;
    let (small_sent, small_answered) = sizes
        .iter()
        .filter(|s| s.size <= largest_answered)
        .fold((0, 0), |(n, a), s| (n + s.sent, a + s.answered));
    let big_unanswered = above.iter().map(|s| s.sent).sum();
    let evidence = SizeEvidence {
        small_sent,
        small_answered,
        big_unanswered,
    };
    (!silence_is_plausible_loss(evidence)).then_some(SizeBlackHole {
        failing: failing.size,
        failing_sent: failing.sent,
        largest_answered,
    })
}

/// A black hole's place, from TTL-limited probes of the failing size: the
/// last hop they reach (its time-exceeded answers them); the packets are
/// lost after it. `reached` lists (probe TTL, the router that answered).
pub fn last_hop_reached<A: Copy>(reached: &[(u8, A)]) -> Option<(u8, A)> {
    reached.iter().copied().max_by_key(|(ttl, _)| *ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(small_sent: u32, small_answered: u32, big_unanswered: u32) -> SizeEvidence {
        SizeEvidence {
            small_sent,
            small_answered,
            big_unanswered,
        }
    }

    #[test]
    fn no_loss_makes_silence_a_black_hole() {
        assert!(!silence_is_plausible_loss(e(3, 3, 3)));
        assert!(!silence_is_plausible_loss(e(1, 1, 1)));
    }

    #[test]
    fn the_loss_small_probes_saw_can_explain_the_silence() {
        // 30 % loss: 3 silent large probes happen 2.7 % of the time.
        assert!(silence_is_plausible_loss(e(10, 7, 3)));
        // ... 6 of them 0.07 %: a black hole.
        assert!(!silence_is_plausible_loss(e(10, 7, 6)));
        // Nothing small got through: nothing tells loss from a black hole.
        assert!(silence_is_plausible_loss(e(0, 0, 3)));
        assert!(silence_is_plausible_loss(e(3, 0, 30)));
    }

    fn c(size: u32, sent: u32, answered: u32) -> SizeCount {
        SizeCount {
            size,
            sent,
            answered,
        }
    }

    #[test]
    fn a_boundary_with_silence_above_is_a_black_hole() {
        let sizes = [c(1200, 1, 1), c(1400, 4, 4), c(1401, 7, 0), c(1500, 7, 0)];
        assert_eq!(
            black_hole(&sizes),
            Some(SizeBlackHole {
                failing: 1401,
                failing_sent: 7,
                largest_answered: 1400
            })
        );
    }

    #[test]
    fn a_larger_size_answered_once_is_loss_not_a_black_hole() {
        // The search's boundary (1477 passes, 1478 silent three times), then
        // the verification: 1500 answered once. Random loss scatters.
        let sizes = [c(1477, 5, 3), c(1478, 7, 2), c(1481, 3, 0), c(1500, 7, 1)];
        assert_eq!(black_hole(&sizes), None);
    }

    #[test]
    fn few_sends_or_small_sizes_prove_nothing() {
        assert_eq!(black_hole(&[c(500, 3, 3), c(900, 9, 0)]), None);
        assert_eq!(black_hole(&[c(1200, 3, 3), c(1500, 2, 0)]), None);
        assert_eq!(black_hole(&[c(1500, 9, 0)]), None);
        // Lossy small sizes: 9 silent large probes are likely at 60 % loss.
        assert_eq!(black_hole(&[c(1200, 10, 4), c(1500, 9, 0)]), None);
    }

    #[test]
    fn the_last_hop_reached_places_it() {
        assert_eq!(last_hop_reached(&[(1, 'a'), (2, 'b')]), Some((2, 'b')));
        assert_eq!(last_hop_reached::<char>(&[]), None);
    }
}
