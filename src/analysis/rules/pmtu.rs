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

    #[test]
    fn the_last_hop_reached_places_it() {
        assert_eq!(last_hop_reached(&[(1, 'a'), (2, 'b')]), Some((2, 'b')));
        assert_eq!(last_hop_reached::<char>(&[]), None);
    }
}
