//! The key that finds a TCP flow from either direction, hashed once.
//!
//! Working out a packet's key and hash needs nothing but the packet, so the
//! `pcap` pipeline does it on its decoding thread ([`FlowKey::of_packet`]),
//! and the analysis thread, which bounds the wall time, only looks it up.
//! The flow table hashes a key by returning the hash it carries
//! ([`CarriedHash`]): the same value Fx gave the key before, so the table's
//! layout, and with it the order in which it retires flows, is unchanged.

use crate::packet::{Packet, Transport};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

/// The endpoints in a fixed order, packed into integers (an IPv4 address as
/// its IPv4-mapped IPv6 form, the family kept apart) so that comparing a
/// key, once per packet, is a few word operations instead of enum matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    /// Compared first: two different keys almost always differ here.
    hash: u64,
    /// Addresses as pairs of words, not `u128`: 8-byte alignment keeps the
    /// key at 48 bytes and `Option<FlowKey>` too (16-byte alignment made
    /// them 48 and 64), for the pipeline's batches and the table's slots.
    lo: [u64; 2],
    hi: [u64; 2],
    /// `lo`'s port in the high half, `hi`'s in the low half.
    ports: u32,
    v6: bool,
}

impl FlowKey {
    /// The key of a flow between two endpoints, in either order.
    pub fn new(a: SocketAddr, b: SocketAddr) -> FlowKey {
        let packed = |s: SocketAddr| match s.ip() {
            IpAddr::V4(v4) => (u128::from(v4.to_ipv6_mapped()), s.port(), false),
            IpAddr::V6(v6) => (u128::from(v6), s.port(), true),
        };
        let (a, b) = (packed(a), packed(b));
        let (lo, hi) = if (a.0, a.1) <= (b.0, b.1) {
            (a, b)
        } else {
            (b, a)
        };
        let (lo, hi, ports, v6) = (
            lo.0,
            hi.0,
            u32::from(lo.1) << 16 | u32::from(hi.1),
            a.2 || b.2,
        );
        let words = |a: u128| [(a >> 64) as u64, a as u64];
        FlowKey {
            hash: rustc_hash::FxBuildHasher.hash_one((lo, hi, ports, v6)),
            lo: words(lo),
            hi: words(hi),
            ports,
            v6,
        }
    }

    /// The key of a TCP packet's flow; `None` for anything else.
    pub fn of_packet(p: &Packet) -> Option<FlowKey> {
        match &p.transport {
            Transport::Tcp(t) => Some(FlowKey::new(
                SocketAddr::new(p.src, t.src_port),
                SocketAddr::new(p.dst, t.dst_port),
            )),
            _ => None,
        }
    }

    /// The key's hash (also what the set of recently closed flows keeps).
    pub fn hash64(&self) -> u64 {
        self.hash
    }
}

impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Builds [`CarriedHash`] hashers, for maps keyed by [`FlowKey`].
pub type BuildCarriedHash = BuildHasherDefault<CarriedHash>;

/// A hasher for keys that carry their hash: it returns the one `u64` it is
/// given. (Written here rather than taken from `nohash-hasher`: it is these
/// few lines, and only [`FlowKey`] uses it.)
#[derive(Default)]
pub struct CarriedHash(u64);

impl Hasher for CarriedHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    /// Not reached by [`FlowKey`]; any other key still gets a usable hash.
    fn write(&mut self, bytes: &[u8]) {
        let mut fx = rustc_hash::FxHasher::default();
        fx.write_u64(self.0);
        fx.write(bytes);
        self.0 = fx.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn either_direction_gives_one_key() {
        let (c, s) = (sa("10.0.0.1:40000"), sa("198.18.4.2:443"));
        assert_eq!(FlowKey::new(c, s), FlowKey::new(s, c));
        assert_ne!(FlowKey::new(c, s), FlowKey::new(sa("10.0.0.1:40001"), s));
        // The same numbers in the two families are two flows.
        let mapped = sa("[::ffff:10.0.0.1]:40000");
        assert_ne!(
            FlowKey::new(c, s),
            FlowKey::new(mapped, sa("[::ffff:198.18.4.2]:443"))
        );
    }

    #[test]
    fn carried_hash_is_fx_of_the_packed_fields() {
        // The value the table used before the hash was carried: the Fx hash
        // of the packed fields in order (the table's layout depends on it).
        let k = FlowKey::new(sa("10.0.0.1:40000"), sa("198.18.4.2:443"));
        let u = |w: [u64; 2]| u128::from(w[0]) << 64 | u128::from(w[1]);
        let again = rustc_hash::FxBuildHasher.hash_one((u(k.lo), u(k.hi), k.ports, k.v6));
        assert_eq!(k.hash64(), again);
        assert_eq!(BuildCarriedHash::default().hash_one(k), k.hash64());
    }

    #[test]
    fn key_and_optional_key_are_48_bytes() {
        assert_eq!(std::mem::size_of::<FlowKey>(), 48);
        assert_eq!(std::mem::size_of::<Option<FlowKey>>(), 48);
    }

    #[test]
    fn map_finds_keys_by_carried_hash() {
        let mut m: HashMap<FlowKey, u32, BuildCarriedHash> = HashMap::default();
        for port in 1..=1000u16 {
            m.insert(
                FlowKey::new(
                    sa("10.0.0.1:1"),
                    SocketAddr::new([198, 18, 0, 1].into(), port),
                ),
                u32::from(port),
            );
        }
        for port in 1..=1000u16 {
            let k = FlowKey::new(
                SocketAddr::new([198, 18, 0, 1].into(), port),
                sa("10.0.0.1:1"),
            );
            assert_eq!(m.get(&k), Some(&u32::from(port)));
        }
        assert_eq!(m.len(), 1000);
    }
}
