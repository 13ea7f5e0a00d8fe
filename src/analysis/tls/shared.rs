//! Values built from handshake bytes, shared between connections.
//!
//! Every connection of a capture to the same broker (or through the same
//! interceptor) carries the same certificate chain, ALPN list and offered
//! versions. Decoding them and building their strings once per distinct byte
//! string, and handing out reference-counted copies, takes dozens of
//! allocations and an X.509 parse off every connection.

use rustc_hash::FxHashMap;

/// Values by the bytes they were built from, with a one-entry fast path
/// (consecutive connections usually show the same bytes: one comparison, no
/// hashing) and a bound on the bytes held as keys.
pub(super) struct ByBytes<T> {
    last_key: Vec<u8>,
    last: Option<T>,
    map: FxHashMap<Box<[u8]>, T>,
    key_bytes: usize,
    max_key_bytes: usize,
}

impl<T: Clone> ByBytes<T> {
    pub fn new(max_key_bytes: usize) -> ByBytes<T> {
        ByBytes {
            last_key: Vec::new(),
            last: None,
            map: FxHashMap::default(),
            key_bytes: 0,
            max_key_bytes,
        }
    }

    /// The value built from `key`: remembered, or built by `build` now (and
    /// remembered while the key budget lasts).
    pub fn get_or_build(&mut self, key: &[u8], build: impl FnOnce() -> T) -> T {
        if let Some(v) = &self.last
            && self.last_key == key
        {
            return v.clone();
        }
        let value = match self.map.get(key) {
            Some(v) => v.clone(),
            None => {
                let v = build();
                if self.key_bytes + key.len() <= self.max_key_bytes {
                    self.key_bytes += key.len();
                    self.map.insert(key.into(), v.clone());
                }
                v
            }
        };
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.last = Some(value.clone());
        value
    }

    /// Distinct keys remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_once_per_distinct_key() {
        let mut cache = ByBytes::new(1024);
        let mut builds = 0;
        for key in [&b"ab"[..], b"ab", b"cd", b"ab", b"cd"] {
            let v = cache.get_or_build(key, || {
                builds += 1;
                key.to_vec()
            });
            assert_eq!(v, key);
        }
        assert_eq!(builds, 2);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn key_budget_bounds_memory_not_correctness() {
        let mut cache = ByBytes::new(4);
        let mut builds = 0;
        for key in [&b"abc"[..], b"defg", b"abc", b"defg", b"abc"] {
            let v = cache.get_or_build(key, || {
                builds += 1;
                key.len()
            });
            assert_eq!(v, key.len());
        }
        // "abc" fits the budget, "defg" does not: rebuilt when not the last key.
        assert_eq!(cache.len(), 1);
        assert_eq!(builds, 3);
    }
}
