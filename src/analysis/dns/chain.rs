//! What one response says about one name: its CNAME chain and the records
//! of the name the chain ends at. One rule, for the capture's exchanges and
//! the check's live lookups (and the reverse names of trace hops):
//!
//! 1. **Order.** The chain starts at the name asked (the question's, or for
//!    a response without a question, the query's). The next name is the
//!    target of the CNAME record whose owner is the current name, wherever
//!    it sits in the answer section: servers may list the records in any
//!    order. Owners compare case-insensitively, as DNS names do. A name has
//!    at most one CNAME (RFC 2181 §10.1); when a response gives several, the
//!    first in message order counts.
//! 2. **Loops.** A target already in the chain (the name asked included)
//!    ends the chain at the last new name, and the response is a
//!    [`ChainEnd::Loop`].
//! 3. **Length.** At most [`MAX_CNAME_CHAIN`] targets are followed; a chain
//!    still going after them is [`ChainEnd::TooLong`]. Recursive resolvers
//!    give up sooner (BIND and Unbound restart a query at most 11 times), so
//!    only a forged or broken answer reaches it.
//! 4. **Answers.** Addresses (A, AAAA) and PTR names count only when their
//!    owner is the *canonical* name: the last name of a chain that ended
//!    because that name has no CNAME. A loop or an over-long chain has no
//!    canonical name, so no address. Records of the names earlier in the
//!    chain (a CNAME owner has no other data, RFC 1034 §3.6.2) and of names
//!    not in the chain are ignored.
//!
//! Whether a response without addresses means "ask the last target next"
//! or "this name does not resolve" is the caller's judgement.

use hickory_proto::rr::{Name, RData, Record};
use std::net::IpAddr;

/// CNAME targets followed in one response at most.
pub const MAX_CNAME_CHAIN: usize = 16;

/// Why the chain stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainEnd {
    /// At a name without a CNAME: the canonical name.
    Canonical,
    /// A target pointed back into the chain.
    Loop,
    /// [`MAX_CNAME_CHAIN`] targets, and the last still has a CNAME.
    TooLong,
}

/// What a response says about the name asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAnswer {
    /// The CNAME targets in chain order, without the name asked; empty when
    /// the name asked is canonical.
    pub targets: Vec<Name>,
    pub end: ChainEnd,
    /// A and AAAA addresses of the canonical name, in message order,
    /// without repeats.
    pub addresses: Vec<IpAddr>,
    /// PTR names of the canonical name, in message order, without repeats.
    pub ptr_names: Vec<Name>,
    /// The smallest TTL (seconds) of the CNAMEs followed and the addresses.
    pub ttl: Option<u32>,
}

impl NameAnswer {
    /// The name the answer's records belong to: the last of the chain, when
    /// the chain ended there.
    pub fn canonical<'a>(&'a self, asked: &'a Name) -> Option<&'a Name> {
        (self.end == ChainEnd::Canonical).then(|| self.targets.last().unwrap_or(asked))
    }
}

fn min_ttl(ttl: &mut Option<u32>, t: u32) {
    *ttl = Some(ttl.map_or(t, |x| x.min(t)));
}

/// Follows the CNAME chain from `asked` through `answers` and collects the
/// records of its canonical name (see the module's rule).
pub fn answer_for(asked: &Name, answers: &[Record]) -> NameAnswer {
    let mut targets: Vec<Name> = Vec::new();
    let mut ttl = None;
    let end = loop {
        let current = targets.last().unwrap_or(asked);
        let next = answers.iter().find_map(|r| match &r.data {
            RData::CNAME(c) if r.name == *current => Some((&c.0, r.ttl)),
            _ => None,
        });
        let Some((target, t)) = next else {
            break ChainEnd::Canonical;
        };
        if target == asked || targets.contains(target) {
            break ChainEnd::Loop;
        }
        if targets.len() == MAX_CNAME_CHAIN {
            break ChainEnd::TooLong;
        }
        min_ttl(&mut ttl, t);
        targets.push(target.clone());
    };
    let mut out = NameAnswer {
        targets,
        end,
        addresses: Vec::new(),
        ptr_names: Vec::new(),
        ttl,
    };
    let Some(canonical) = out.canonical(asked).cloned() else {
        return out;
    };
    for r in answers.iter().filter(|r| r.name == canonical) {
        match &r.data {
            RData::A(a) => push_address(&mut out, IpAddr::V4(a.0), r.ttl),
            RData::AAAA(a) => push_address(&mut out, IpAddr::V6(a.0), r.ttl),
            RData::PTR(p) if !out.ptr_names.contains(&p.0) => out.ptr_names.push(p.0.clone()),
            _ => {}
        }
    }
    out
}

fn push_address(out: &mut NameAnswer, a: IpAddr, ttl: u32) {
    min_ttl(&mut out.ttl, ttl);
    if !out.addresses.contains(&a) {
        out.addresses.push(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR};

    fn name(n: &str) -> Name {
        Name::from_ascii(format!("{n}.")).unwrap()
    }

    fn cname(owner: &str, ttl: u32, target: &str) -> Record {
        Record::from_rdata(name(owner), ttl, RData::CNAME(CNAME(name(target))))
    }

    fn a(owner: &str, ttl: u32, ip: &str) -> Record {
        Record::from_rdata(name(owner), ttl, RData::A(A(ip.parse().unwrap())))
    }

    fn aaaa(owner: &str, ip: &str) -> Record {
        Record::from_rdata(name(owner), 60, RData::AAAA(AAAA(ip.parse().unwrap())))
    }

    fn ptr(owner: &str, target: &str) -> Record {
        Record::from_rdata(name(owner), 60, RData::PTR(PTR(name(target))))
    }

    fn texts(names: &[Name]) -> Vec<String> {
        names.iter().map(|n| n.to_ascii()).collect()
    }

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn a_canonical_name_gets_its_own_addresses() {
        let got = answer_for(
            &name("dual.test"),
            &[
                a("dual.test", 30, "192.0.2.1"),
                aaaa("dual.test", "2001:db8::1"),
                a("dual.test", 20, "192.0.2.1"),
            ],
        );
        assert!(got.targets.is_empty());
        assert_eq!(got.end, ChainEnd::Canonical);
        assert_eq!(got.addresses, ips(&["192.0.2.1", "2001:db8::1"]));
        assert_eq!(got.ttl, Some(20));
        assert_eq!(got.canonical(&name("dual.test")), Some(&name("dual.test")));
    }

    #[test]
    fn the_chain_is_followed_by_owner_not_by_position() {
        let answers = [
            a("edge.test", 60, "198.18.4.1"),
            cname("lb.test", 300, "edge.test"),
            a("other.test", 5, "192.0.2.99"),
            cname("co2br.test", 3600, "lb.test"),
            a("edge.test", 60, "198.18.4.2"),
        ];
        let got = answer_for(&name("CO2BR.Test"), &answers);
        assert_eq!(texts(&got.targets), vec!["lb.test.", "edge.test."]);
        assert_eq!(got.end, ChainEnd::Canonical);
        // other.test is not in the chain: ignored, its TTL too.
        assert_eq!(got.addresses, ips(&["198.18.4.1", "198.18.4.2"]));
        assert_eq!(got.ttl, Some(60));
    }

    #[test]
    fn addresses_of_names_before_the_end_are_ignored() {
        // A CNAME owner has no other data: an A record beside it is bogus.
        let got = answer_for(
            &name("x.test"),
            &[
                a("x.test", 60, "192.0.2.66"),
                cname("x.test", 60, "y.test"),
                a("y.test", 60, "192.0.2.1"),
            ],
        );
        assert_eq!(got.addresses, ips(&["192.0.2.1"]));
    }

    #[test]
    fn a_cname_only_answer_has_a_canonical_name_and_no_address() {
        let got = answer_for(&name("x.test"), &[cname("x.test", 60, "y.test")]);
        assert_eq!(texts(&got.targets), vec!["y.test."]);
        assert_eq!(got.end, ChainEnd::Canonical);
        assert!(got.addresses.is_empty());
        assert_eq!(got.ttl, Some(60));
    }

    #[test]
    fn loops_end_the_chain_without_addresses() {
        // Back to the name asked.
        let got = answer_for(
            &name("x.test"),
            &[
                cname("x.test", 60, "y.test"),
                cname("y.test", 60, "x.test"),
                a("x.test", 60, "192.0.2.1"),
                a("y.test", 60, "192.0.2.2"),
            ],
        );
        assert_eq!(texts(&got.targets), vec!["y.test."]);
        assert_eq!(got.end, ChainEnd::Loop);
        assert!(got.addresses.is_empty());
        assert_eq!(got.canonical(&name("x.test")), None);
        // Into the middle of the chain.
        let got = answer_for(
            &name("x.test"),
            &[
                cname("z.test", 60, "y.test"),
                cname("x.test", 60, "y.test"),
                cname("y.test", 60, "z.test"),
            ],
        );
        assert_eq!(texts(&got.targets), vec!["y.test.", "z.test."]);
        assert_eq!(got.end, ChainEnd::Loop);
        // A name that is its own alias.
        let got = answer_for(&name("x.test"), &[cname("x.test", 60, "X.TEST")]);
        assert!(got.targets.is_empty());
        assert_eq!(got.end, ChainEnd::Loop);
    }

    #[test]
    fn the_length_is_bounded() {
        let hop = |i: usize| format!("n{i}.test");
        let mut answers: Vec<Record> = (0..=MAX_CNAME_CHAIN)
            .map(|i| cname(&hop(i), 60, &hop(i + 1)))
            .collect();
        answers.push(a(&hop(MAX_CNAME_CHAIN + 1), 60, "192.0.2.1"));
        let got = answer_for(&name(&hop(0)), &answers);
        assert_eq!(got.targets.len(), MAX_CNAME_CHAIN);
        assert_eq!(got.end, ChainEnd::TooLong);
        assert!(got.addresses.is_empty());
        // One link shorter: the end is reached.
        let got = answer_for(&name(&hop(1)), &answers);
        assert_eq!(got.targets.len(), MAX_CNAME_CHAIN);
        assert_eq!(got.end, ChainEnd::Canonical);
        assert_eq!(got.addresses, ips(&["192.0.2.1"]));
    }

    #[test]
    fn the_first_of_two_cnames_counts() {
        let got = answer_for(
            &name("x.test"),
            &[
                cname("x.test", 60, "y.test"),
                cname("x.test", 60, "z.test"),
                a("y.test", 60, "192.0.2.1"),
                a("z.test", 60, "192.0.2.2"),
            ],
        );
        assert_eq!(texts(&got.targets), vec!["y.test."]);
        assert_eq!(got.addresses, ips(&["192.0.2.1"]));
    }

    #[test]
    fn ptr_names_through_a_classless_delegation_cname() {
        // RFC 2317: the PTR lives under a CNAME in the delegated zone.
        let asked = name("2.1.18.198.in-addr.arpa");
        let got = answer_for(
            &asked,
            &[
                cname(
                    "2.1.18.198.in-addr.arpa",
                    60,
                    "2.0-25.1.18.198.in-addr.arpa",
                ),
                ptr("2.0-25.1.18.198.in-addr.arpa", "r1.lab.test"),
                ptr("3.1.18.198.in-addr.arpa", "r9.lab.test"),
            ],
        );
        assert_eq!(texts(&got.ptr_names), vec!["r1.lab.test."]);
        assert!(got.addresses.is_empty());
    }
}
