//! A network-namespace lab that reproduces the path from a ZPA App Connector
//! to its broker, with one failure injected per [`Scenario`]:
//!
//! ```text
//!  conn ──── r1 ──── r2 ──── r3 ──── broker
//!  (App      site    ISP     ISP     TLS server on 443, chain issued by
//!  Connector) firewall               O=Zscaler Test CA
//!            │
//!           dns   site resolver (dnsmasq): co2br.lab1.test CNAME
//!                 broker1a.lab1.test, A 198.18.4.2
//! ```
//!
//! Addressing: link `k` (1..=4) is `198.18.k.0/24` (benchmarking range,
//! RFC 2544); the node on the left of the link has `.1`, the node on the
//! right `.2`. Hence a traceroute from conn shows hop `h` as `198.18.h.2`:
//! r1 = 198.18.1.2, r2 = 198.18.2.2, r3 = 198.18.3.2, broker = 198.18.4.2,
//! and conn is 198.18.1.1. Every node's interface toward the broker is
//! `eth1` and toward conn `eth0` (conn has only `eth0`, broker only `eth0`).
//! The resolver hangs off r1 on its own link 198.18.10.0/24 (r1 `eth2` =
//! .10.1, dns `eth0` = .10.2), two hops from conn; conn's
//! `/etc/netns/<ns>/resolv.conf` names it, and the workload asks it
//! explicitly (`dig @198.18.10.2`).
//!
//! Safety: every packet stays inside the namespaces a [`Lab`] creates. The
//! veth pairs are created directly inside the namespaces, nothing is added to
//! the root namespace, and the guard's `Drop` kills the lab's processes and
//! deletes its namespaces, also when a test panics. Namespaces left behind by
//! a killed test process (`pp<pid>-…` whose pid is gone) are removed by the
//! next [`Lab::up`]. The resolver knows only the lab zone `lab1.test` and
//! forwards nothing (`--no-resolv`).
//!
//! Only `std` is used; the lab drives `ip`, `iptables`, `ethtool`, `openssl`,
//! `faketime`, `dnsmasq`, `dig`, `tcpdump`, `editcap`, `ping`, `ss` and `mtr`
//! through [`Command`].

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Root gate
// ---------------------------------------------------------------------------

/// True when the effective uid is 0 (read from `/proc/self/status`).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Lab tests skipped by this test process so far.
static SKIPPED: AtomicU32 = AtomicU32::new(0);

/// Returns true when the calling test must be skipped, after one loud line
/// on stderr saying why, what would run it and how many lab tests this test
/// binary has skipped so far: it is not root, or the lab's commands are
/// missing and could not be installed (see [`lab_tools_ready`]). With
/// `PATHPROOF_LAB_REQUIRED=1` in the environment it panics instead, so a CI
/// that is supposed to run the lab cannot silently skip it.
pub fn skip_unless_root(test: &str) -> bool {
    let why = if !is_root() {
        "needs root (network namespaces): run `cargo test` as root".to_string()
    } else {
        match lab_tools_ready() {
            Ok(()) => return false,
            Err(missing) => format!(
                "needs the lab's commands: apt-get install {}",
                missing.join(" ")
            ),
        }
    };
    if std::env::var("PATHPROOF_LAB_REQUIRED").is_ok_and(|v| v == "1") {
        panic!("lab test `{test}` {why}, and PATHPROOF_LAB_REQUIRED=1 forbids skipping it");
    }
    let n = SKIPPED.fetch_add(1, Ordering::SeqCst) + 1;
    // Straight to the stderr handle: the test harness captures `eprintln!`
    // of passing tests, and this must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "=== SKIPPED lab test {test} ({n} skipped in this binary so far): {why} ==="
    );
    true
}

/// `require_root!()` at the top of a test returns early (after a loud message
/// on stderr) when the test process is not root.
#[macro_export]
macro_rules! require_root {
    () => {{
        fn __here() {}
        let name = ::std::any::type_name_of_val(&__here);
        let name = name.strip_suffix("::__here").unwrap_or(name);
        if $crate::support::lab::skip_unless_root(name) {
            return;
        }
    }};
}

// ---------------------------------------------------------------------------
// Nodes and addresses
// ---------------------------------------------------------------------------

/// A namespace of the lab: the path in order, then the resolver beside r1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Conn,
    R1,
    R2,
    R3,
    Broker,
    /// The site's DNS resolver, attached to r1 (not on the path to the broker).
    Dns,
}

impl Node {
    /// Every namespace of a lab.
    pub const ALL: [Node; 6] = [
        Node::Conn,
        Node::R1,
        Node::R2,
        Node::R3,
        Node::Broker,
        Node::Dns,
    ];

    /// The path from conn to the broker, in order: `PATH[h]` is hop `h`.
    pub const PATH: [Node; 5] = [Node::Conn, Node::R1, Node::R2, Node::R3, Node::Broker];

    /// Position in [`Node::ALL`]. For the path's nodes that is their hop
    /// (conn 0, r1 1, r2 2, r3 3, broker 4); the resolver, off the path, is 5.
    pub fn index(self) -> u8 {
        match self {
            Node::Conn => 0,
            Node::R1 => 1,
            Node::R2 => 2,
            Node::R3 => 3,
            Node::Broker => 4,
            Node::Dns => 5,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Node::Conn => "conn",
            Node::R1 => "r1",
            Node::R2 => "r2",
            Node::R3 => "r3",
            Node::Broker => "broker",
            Node::Dns => "dns",
        }
    }

    /// The node answering at traceroute hop `hop` (1..=4).
    pub fn at_hop(hop: u8) -> Node {
        match hop {
            1 => Node::R1,
            2 => Node::R2,
            3 => Node::R3,
            4 => Node::Broker,
            _ => panic!("the lab has hops 1..=4, not {hop}"),
        }
    }
}

/// Number of links (and of hops from conn to the broker).
pub const LINKS: u8 = 4;
/// The broker's hop count from conn.
pub const BROKER_HOP: u8 = 4;
/// The TLS server name of the broker.
pub const BROKER_NAME: &str = "broker1a.lab1.test";
/// The broker's TLS port.
pub const BROKER_PORT: u16 = 443;
/// The name the connector resolves to find its broker (like
/// `co2br.prod.zpath.net`): a CNAME to [`BROKER_NAME`].
pub const BROKER_LOCATOR: &str = "co2br.lab1.test";
/// TTL of the resolver's answers, seconds.
pub const DNS_TTL: u32 = 300;
/// The resolver's link: 198.18.10.0/24, r1 = .1, resolver = .2.
pub const RESOLVER_LINK: u8 = 10;
/// Port of the intercepting TLS proxy on r1 (intercept-proxy).
pub const PROXY_PORT: u16 = 8443;
/// Port of the explicit HTTP CONNECT proxy (tinyproxy) on r1
/// (connect-intercept).
pub const CONNECT_PROXY_PORT: u16 = 8888;
/// First port of the broker's extra sink servers in the upload scenarios.
const SINK_BASE_PORT: u16 = 4431;
/// MTU of the r2–r3 link in the pmtu-* scenarios.
pub const NARROW_MTU: u16 = 1400;
/// How far in the future the broker's leaf certificate starts in
/// not-yet-valid, seconds.
pub const NOT_YET_VALID_SECS: u32 = 360;

/// Address of the left (`side` = 1) or right (`side` = 2) end of link `link`.
pub fn link_addr(link: u8, side: u8) -> Ipv4Addr {
    assert!((1..=LINKS).contains(&link) && (1..=2).contains(&side));
    Ipv4Addr::new(198, 18, link, side)
}

/// conn's address (its only interface): 198.18.1.1.
pub fn conn_addr() -> Ipv4Addr {
    link_addr(1, 1)
}

/// The broker's address: 198.18.4.2.
pub fn broker_addr() -> Ipv4Addr {
    link_addr(LINKS, 2)
}

/// The address that answers at traceroute hop `hop` (1..=4) from conn: the
/// node's address on its conn-side link, 198.18.`hop`.2 (hop 4 is the broker).
pub fn hop_addr(hop: u8) -> Ipv4Addr {
    assert!(
        (1..=LINKS).contains(&hop),
        "the lab has hops 1..=4, not {hop}"
    );
    link_addr(hop, 2)
}

/// IPv6 address (with [`LabOptions::ipv6`]) of the left (`side` = 1) or
/// right (`side` = 2) end of link `link`: `fd00:198:18:<link>::<side>`.
pub fn link_addr6(link: u8, side: u8) -> Ipv6Addr {
    assert!((1..=LINKS).contains(&link) && (1..=2).contains(&side));
    Ipv6Addr::new(
        0xfd00,
        0x198,
        0x18,
        u16::from(link),
        0,
        0,
        0,
        u16::from(side),
    )
}

/// The IPv6 address that answers at traceroute hop `hop` (1..=4) from conn.
pub fn hop_addr6(hop: u8) -> Ipv6Addr {
    link_addr6(hop, 2)
}

/// The broker's IPv6 address: fd00:198:18:4::2.
pub fn broker_addr6() -> Ipv6Addr {
    link_addr6(LINKS, 2)
}

/// The site resolver's address: 198.18.10.2.
pub fn resolver_addr() -> Ipv4Addr {
    Ipv4Addr::new(198, 18, RESOLVER_LINK, 2)
}

/// Router `hop`'s (1..=3) address on its conn-side link, as traceroute shows it.
pub fn router_addr(hop: u8) -> Ipv4Addr {
    assert!((1..=3).contains(&hop), "routers are hops 1..=3, not {hop}");
    hop_addr(hop)
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/// What the lab breaks. Ids are the kebab-case names of the project's
/// scenarios doc (`shared/scenarios.md`). More will come (icmp-ratelimit,
/// real-loss, resolv-perms): add a variant, its `name`, `describe`,
/// `expected`, and its faults in [`Scenario::faults`] / its servers in
/// [`Scenario::broker_listens`], [`Scenario::broker_issuer`],
/// [`Scenario::interceptor`], [`Scenario::dns`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Nothing broken.
    Healthy,
    /// r1 (hop 1) answers TCP 443 with a forged RST.
    RstHop1,
    /// r2 (hop 2) answers TCP 443 with a forged RST.
    RstHop2,
    /// Nothing listens on broker:443: the broker's own kernel resets.
    BrokerRefuses,
    /// r2 silently drops TCP 443.
    Drop443,
    /// r1 lets the TCP handshake through, then answers the ClientHello that
    /// carries the SNI `broker1a.lab1.test` with a forged RST.
    TlsReset,
    /// r1 redirects TCP 443 to its own TLS server (port 8443) whose chain
    /// comes from the corporate CA `O=Safemarch Inc, CN=Safemarch Inc CA`.
    InterceptProxy,
    /// The broker itself serves a chain from the Safemarch CA.
    InterceptIssuer,
    /// The broker's leaf certificate starts 6 minutes in the future.
    NotYetValid,
    /// r2–r3 link MTU 1400; r2 answers full-size segments with ICMP
    /// fragmentation-needed (MTU 1400). Healthy, with an info finding.
    PmtuIcmp,
    /// As pmtu-icmp, but r2 drops its own fragmentation-needed messages.
    PmtuBlackhole,
    /// A black hole that the TLS handshake itself falls into: r2 silently
    /// loses every forwarded packet longer than 1400 bytes, both ways, and
    /// the broker's certificate flight (an RSA chain) leaves the broker in
    /// full-size 1500-byte segments. A `check` scenario (not in
    /// [`Scenario::ALL`]: no bundled capture).
    PmtuBlackholeFlight,
    /// The resolver answers NXDOMAIN for the broker locator.
    DnsNxdomain,
    /// The resolver never answers.
    DnsTimeout,
    /// r2 rations its ICMP time-exceeded answers (1/s, burst 1) and drops
    /// the rest; forwarding is untouched. A trace scenario (not in
    /// [`Scenario::ALL`]: no bundled capture).
    IcmpRatelimit,
    /// r2 drops 30 % of the packets it forwards, both ways: loss from hop 3
    /// on. A trace scenario (not in [`Scenario::ALL`]).
    RealLoss,
    /// conn's resolv.conf is mode 0600 owner root: the connector's service
    /// user cannot read it. A `check` scenario: nothing shows on the wire.
    ResolvPerms,
    /// The connector reaches its broker through an explicit HTTP CONNECT
    /// proxy (tinyproxy on r1, 198.18.1.2:8888), and the TLS inside the
    /// tunnel is re-signed by a corporate inspection CA (`O=Corp
    /// Inspection, CN=Corp Inspection CA`, under `Corp Inspection Root
    /// CA`): the broker's server behind the proxy presents that chain. A
    /// `pcap` scenario (not in [`Scenario::ALL`]: no bundled capture).
    ConnectIntercept,
}

/// What pathproof is expected to conclude from a capture of the scenario's
/// workload with `--hops 4`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    /// `verdict.class`.
    pub class: &'static str,
    /// `verdict.hop`.
    pub hop: Option<u8>,
    /// Process exit code: 0 healthy, 1 a failure found.
    pub exit_code: i32,
}

/// How the lab resolver answers `A co2br.lab1.test`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsBehaviour {
    /// CNAME `broker1a.lab1.test`, A 198.18.4.2.
    Answers,
    /// NXDOMAIN (no record for the locator; the zone is local to dnsmasq).
    NxDomain,
    /// dnsmasq runs, but the resolver's firewall drops port 53.
    Silent,
}

/// The corporate inspection CA inside the CONNECT tunnel
/// (connect-intercept): an issuing CA under its root, as such products
/// deploy them.
pub const CORP_INSPECTION_CA: Issuer = Issuer {
    org: "Corp Inspection",
    root_cn: "Corp Inspection Root CA",
    intermediate_cn: Some("Corp Inspection CA"),
};

/// The issuer of the corporate interception proxy: `O=Safemarch Inc`,
/// whose CA signs the forged leaf directly.
pub const SAFEMARCH_CA: Issuer = Issuer {
    org: "Safemarch Inc",
    root_cn: "Safemarch Inc CA",
    intermediate_cn: None,
};

impl Scenario {
    pub const ALL: [Scenario; 13] = [
        Scenario::Healthy,
        Scenario::RstHop1,
        Scenario::RstHop2,
        Scenario::BrokerRefuses,
        Scenario::Drop443,
        Scenario::TlsReset,
        Scenario::InterceptProxy,
        Scenario::InterceptIssuer,
        Scenario::NotYetValid,
        Scenario::PmtuIcmp,
        Scenario::PmtuBlackhole,
        Scenario::DnsNxdomain,
        Scenario::DnsTimeout,
    ];

    /// Scenarios for `pathproof trace` only: their faults show in traces;
    /// no capture of them is bundled or checked.
    pub const TRACE_ONLY: [Scenario; 2] = [Scenario::IcmpRatelimit, Scenario::RealLoss];

    /// Scenarios tested with `pathproof check` only: host configuration
    /// (nothing on the wire), and pmtu-blackhole-flight (no bundled capture).
    pub const CHECK_ONLY: [Scenario; 2] = [Scenario::ResolvPerms, Scenario::PmtuBlackholeFlight];

    /// Scenarios tested with `pathproof pcap` only, on a fresh capture (no
    /// bundled one): the connector behind an explicit proxy.
    pub const PCAP_ONLY: [Scenario; 1] = [Scenario::ConnectIntercept];

    /// Every scenario of `shared/scenarios.md`: what `pathproof check` is tested on.
    pub fn every() -> Vec<Scenario> {
        Self::ALL
            .iter()
            .chain(Self::TRACE_ONLY.iter())
            .chain(Self::CHECK_ONLY.iter())
            .copied()
            .collect()
    }

    pub fn all() -> &'static [Scenario] {
        &Self::ALL
    }

    /// The scenario id (kebab-case), also the stem of its capture files.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Healthy => "healthy",
            Scenario::RstHop1 => "rst-hop1",
            Scenario::RstHop2 => "rst-hop2",
            Scenario::BrokerRefuses => "broker-refuses",
            Scenario::Drop443 => "drop-443",
            Scenario::TlsReset => "tls-reset",
            Scenario::InterceptProxy => "intercept-proxy",
            Scenario::InterceptIssuer => "intercept-issuer",
            Scenario::NotYetValid => "not-yet-valid",
            Scenario::PmtuIcmp => "pmtu-icmp",
            Scenario::PmtuBlackhole => "pmtu-blackhole",
            Scenario::PmtuBlackholeFlight => "pmtu-blackhole-flight",
            Scenario::DnsNxdomain => "dns-nxdomain",
            Scenario::DnsTimeout => "dns-timeout",
            Scenario::IcmpRatelimit => "icmp-ratelimit",
            Scenario::RealLoss => "real-loss",
            Scenario::ResolvPerms => "resolv-perms",
            Scenario::ConnectIntercept => "connect-intercept",
        }
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Self::ALL
            .iter()
            .chain(Self::TRACE_ONLY.iter())
            .chain(Self::CHECK_ONLY.iter())
            .chain(Self::PCAP_ONLY.iter())
            .copied()
            .find(|s| s.name() == name)
    }

    /// How the lab builds it, in one line (for READMEs and messages).
    pub fn describe(self) -> &'static str {
        match self {
            Scenario::Healthy => "nothing broken",
            Scenario::RstHop1 => {
                "r1: iptables -A FORWARD -p tcp --dport 443 -j REJECT --reject-with tcp-reset"
            }
            Scenario::RstHop2 => {
                "r2: iptables -A FORWARD -p tcp --dport 443 -j REJECT --reject-with tcp-reset"
            }
            Scenario::BrokerRefuses => "no TLS server on broker:443 (the broker's kernel resets)",
            Scenario::Drop443 => "r2: iptables -A FORWARD -p tcp --dport 443 -j DROP",
            Scenario::TlsReset => {
                "r1: iptables -A FORWARD -p tcp --dport 443 -m string --string \
                 broker1a.lab1.test --algo bm -j REJECT --reject-with tcp-reset"
            }
            Scenario::InterceptProxy => {
                "r1: iptables -t nat -A PREROUTING -p tcp --dport 443 -j REDIRECT --to-ports 8443, \
                 openssl s_server on r1:8443 with a leaf from O=Safemarch Inc, CN=Safemarch Inc CA"
            }
            Scenario::InterceptIssuer => {
                "the broker serves a leaf from O=Safemarch Inc, CN=Safemarch Inc CA"
            }
            Scenario::NotYetValid => {
                "the broker's leaf has notBefore 6 minutes in the future (signed under faketime)"
            }
            Scenario::PmtuIcmp => {
                "r2-r3 link MTU 1400 (both ends); conn uploads 30 KB after the handshake"
            }
            Scenario::PmtuBlackhole => {
                "as pmtu-icmp, and r2: iptables -A OUTPUT -p icmp --icmp-type \
                 fragmentation-needed -j DROP"
            }
            Scenario::PmtuBlackholeFlight => {
                "r2 eth1 (toward r3) MTU 1400, r2: iptables -A FORWARD -m length --length \
                 1401:65535 -j DROP and -A OUTPUT -p icmp --icmp-type fragmentation-needed -j DROP; \
                 the broker's chain is RSA-2048 (a 1500-byte certificate flight)"
            }
            Scenario::DnsNxdomain => "the resolver has no record for co2br.lab1.test: NXDOMAIN",
            Scenario::DnsTimeout => "the resolver drops port 53: no answer",
            Scenario::IcmpRatelimit => {
                "r2: iptables -A OUTPUT -p icmp --icmp-type time-exceeded -m limit --limit 1/s \
                 --limit-burst 1 -j ACCEPT, then -j DROP for the rest"
            }
            Scenario::RealLoss => {
                "r2: iptables -A FORWARD -m statistic --mode random --probability 0.3 -j DROP"
            }
            Scenario::ResolvPerms => {
                "conn's resolv.conf (/etc/netns/<conn>/resolv.conf) is mode 0600, owner root"
            }
            Scenario::ConnectIntercept => {
                "conn goes through tinyproxy on r1 (198.18.1.2:8888, openssl s_client -proxy); \
                 the broker serves a leaf from O=Corp Inspection, CN=Corp Inspection CA"
            }
        }
    }

    /// The verdict pathproof must give for this scenario's capture with `--hops 4`.
    pub fn expected(self) -> Expected {
        let (class, hop, exit_code) = match self {
            Scenario::Healthy => ("healthy", None, 0),
            Scenario::RstHop1 => ("rst-injected", Some(1), 1),
            Scenario::RstHop2 => ("rst-injected", Some(2), 1),
            Scenario::BrokerRefuses => ("rst-from-target", Some(BROKER_HOP), 1),
            Scenario::Drop443 => ("tcp-blocked", None, 1),
            Scenario::TlsReset => ("tls-blocked", Some(1), 1),
            Scenario::InterceptProxy => ("tls-intercepted", Some(1), 1),
            // The proxy (r1, hop 1) is the TCP peer and the device to name.
            Scenario::ConnectIntercept => ("tls-intercepted", Some(1), 1),
            Scenario::InterceptIssuer => ("tls-intercepted", None, 1),
            Scenario::NotYetValid => ("clock-skew", None, 1),
            // The path MTU of 1400 is an info finding, not a failure.
            Scenario::PmtuIcmp => ("healthy", None, 0),
            Scenario::PmtuBlackhole | Scenario::PmtuBlackholeFlight => ("pmtu-blackhole", None, 1),
            Scenario::DnsNxdomain | Scenario::DnsTimeout => ("dns-failure", None, 1),
            // Trace scenarios: the workload's TCP still works (real-loss: with
            // retransmissions); their captures are not checked.
            Scenario::IcmpRatelimit | Scenario::RealLoss | Scenario::ResolvPerms => {
                ("healthy", None, 0)
            }
        };
        Expected {
            class,
            hop,
            exit_code,
        }
    }

    /// The verdict `pathproof check` must give (and `pathproof pcap` on the
    /// check's `--save` file): the capture's, except where the evidence is
    /// in the traces (drop-443: TCP dropped after hop 2; real-loss: loss
    /// from hop 3; the pmtu black holes: the check's TTL-limited large
    /// probes place them after hop 2) or on the host (resolv-perms).
    pub fn check_expected(self) -> Expected {
        match self {
            // The check's MTU search sends the failing size with TTL 1, 2,
            // …: r2 still answers TTL 2 (time exceeded), nothing answers
            // TTL 3, so the packets are lost at r2, hop 2
            // (`pmtu.blackhole_after_hop`). In the flight variant the TLS
            // handshake stalls on the broker's full-size certificate flight
            // too: a supporting finding, not the verdict.
            Scenario::PmtuBlackhole | Scenario::PmtuBlackholeFlight => Expected {
                class: "pmtu-blackhole",
                hop: Some(2),
                exit_code: 1,
            },
            // The check's TCP trace stops after hop 2: r2 drops in its
            // FORWARD chain, after answering the probes that expire there.
            Scenario::Drop443 => Expected {
                class: "tcp-blocked",
                hop: Some(2),
                exit_code: 1,
            },
            Scenario::RealLoss => Expected {
                class: "path-loss",
                hop: Some(3),
                exit_code: 1,
            },
            Scenario::ResolvPerms => Expected {
                class: "dns-failure",
                hop: None,
                exit_code: 1,
            },
            other => other.expected(),
        }
    }

    /// Whether the broker runs its TLS server.
    pub fn broker_listens(self) -> bool {
        !matches!(self, Scenario::BrokerRefuses)
    }

    /// Who issues the certificate the broker serves.
    pub fn broker_issuer(self) -> Issuer {
        match self {
            Scenario::InterceptIssuer => SAFEMARCH_CA,
            Scenario::ConnectIntercept => CORP_INSPECTION_CA,
            _ => ZSCALER_TEST_CA,
        }
    }

    /// When the broker leaf's notBefore lies, seconds from when the lab is
    /// built: 6 minutes ahead in not-yet-valid, else a day ago.
    pub fn leaf_not_before_offset_secs(self) -> i64 {
        match self {
            Scenario::NotYetValid => i64::from(NOT_YET_VALID_SECS),
            _ => -CERT_BACKDATE_SECS,
        }
    }

    /// The node that intercepts TLS, the port its TLS server listens on, and
    /// the CA it forges certificates with.
    pub fn interceptor(self) -> Option<(Node, u16, Issuer)> {
        match self {
            Scenario::InterceptProxy => Some((Node::R1, PROXY_PORT, SAFEMARCH_CA)),
            _ => None,
        }
    }

    /// The explicit HTTP CONNECT proxy the workload goes through: its node
    /// and port (it listens on the node's conn-side address).
    pub fn connect_proxy(self) -> Option<(Node, u16)> {
        match self {
            Scenario::ConnectIntercept => Some((Node::R1, CONNECT_PROXY_PORT)),
            _ => None,
        }
    }

    /// Bytes conn sends through each TLS connection after the handshake
    /// (an HTTP/1.0 GET padded with headers, so full-size segments leave
    /// conn); 0: nothing (`s_client </dev/null`).
    pub fn upload_bytes(self) -> usize {
        match self {
            Scenario::PmtuIcmp | Scenario::PmtuBlackhole => 30_000,
            _ => 0,
        }
    }

    /// How long the capture keeps running after the workload: 0.5 s, and
    /// 3.5 s in pmtu-blackhole, where `s_client` closes ~0.5 s after its
    /// input ends but the kernel keeps retransmitting the stalled upload
    /// (the wire looks as if the connector were still waiting), so each
    /// connection shows its retransmissions over ~4 s.
    pub fn settle_after_workload(self) -> Duration {
        match self {
            Scenario::PmtuBlackhole => Duration::from_millis(3500),
            _ => Duration::from_millis(500),
        }
    }

    /// The MTU of the r2–r3 link, when narrowed (in pmtu-blackhole-flight
    /// only r2's end of it).
    pub fn narrow_mtu(self) -> Option<u16> {
        matches!(
            self,
            Scenario::PmtuIcmp | Scenario::PmtuBlackhole | Scenario::PmtuBlackholeFlight
        )
        .then_some(NARROW_MTU)
    }

    /// The key type of the lab's certificate chains: RSA-2048 in
    /// pmtu-blackhole-flight, so that the broker's TLS 1.2 flight
    /// (ServerHello, two RSA certificates, ServerKeyExchange) is about
    /// 2.1 KB and its first segment fills a 1500-byte packet; EC P-256
    /// elsewhere (a flight of about 1.2 KB, one 1220-byte packet, and
    /// quick to generate).
    pub fn cert_key(self) -> CertKey {
        match self {
            Scenario::PmtuBlackholeFlight => CertKey::Rsa2048,
            _ => CertKey::EcP256,
        }
    }

    /// How the resolver answers the broker locator.
    pub fn dns(self) -> DnsBehaviour {
        match self {
            Scenario::DnsNxdomain => DnsBehaviour::NxDomain,
            Scenario::DnsTimeout => DnsBehaviour::Silent,
            _ => DnsBehaviour::Answers,
        }
    }

    /// Whether the workload gets an address for the broker (and so pings
    /// and connects); when it does not, it stops after the lookup, as the
    /// connector would.
    pub fn resolves(self) -> bool {
        self.dns() == DnsBehaviour::Answers
    }

    /// The commands that break the path, per node, run after routing is up.
    pub fn faults(self) -> Vec<(Node, Vec<String>)> {
        let owned = |args: &[&str]| -> Vec<String> { args.iter().map(|s| s.to_string()).collect() };
        // A router that sends no fragmentation-needed (what makes a black hole).
        let drop_own_frag_needed = || {
            owned(&[
                "iptables",
                "-w",
                "-A",
                "OUTPUT",
                "-p",
                "icmp",
                "--icmp-type",
                "fragmentation-needed",
                "-j",
                "DROP",
            ])
        };
        let port = BROKER_PORT.to_string();
        let forward_443 = |target: &[&str]| -> Vec<String> {
            let mut v = owned(&[
                "iptables", "-w", "-A", "FORWARD", "-p", "tcp", "--dport", &port,
            ]);
            v.extend(owned(target));
            v
        };
        let reset = ["-j", "REJECT", "--reject-with", "tcp-reset"];
        let mtu = NARROW_MTU.to_string();
        let narrow = vec![
            (Node::R2, owned(&["ip", "link", "set", "eth1", "mtu", &mtu])),
            (Node::R3, owned(&["ip", "link", "set", "eth0", "mtu", &mtu])),
        ];
        match self {
            Scenario::Healthy
            | Scenario::BrokerRefuses
            | Scenario::InterceptIssuer
            | Scenario::NotYetValid
            | Scenario::DnsNxdomain
            | Scenario::ResolvPerms
            | Scenario::ConnectIntercept => vec![],
            Scenario::RstHop1 => vec![(Node::R1, forward_443(&reset))],
            Scenario::RstHop2 => vec![(Node::R2, forward_443(&reset))],
            Scenario::Drop443 => vec![(Node::R2, forward_443(&["-j", "DROP"]))],
            Scenario::TlsReset => {
                let mut t = owned(&["-m", "string", "--string", BROKER_NAME, "--algo", "bm"]);
                t.extend(owned(&reset));
                let t: Vec<&str> = t.iter().map(String::as_str).collect();
                vec![(Node::R1, forward_443(&t))]
            }
            Scenario::InterceptProxy => vec![(
                Node::R1,
                owned(&[
                    "iptables",
                    "-w",
                    "-t",
                    "nat",
                    "-A",
                    "PREROUTING",
                    "-p",
                    "tcp",
                    "--dport",
                    &port,
                    "-j",
                    "REDIRECT",
                    "--to-ports",
                    &PROXY_PORT.to_string(),
                ]),
            )],
            Scenario::PmtuIcmp => narrow,
            Scenario::PmtuBlackhole => {
                let mut v = narrow;
                v.push((Node::R2, drop_own_frag_needed()));
                v
            }
            // r2 alone loses the large packets, both ways. Its end of the
            // r2–r3 link is narrowed (conn → broker: r2 cannot forward
            // 1500 bytes onto it, and its frag-needed is dropped), r3's end
            // is not: with both ends at 1400, r3 would answer the broker's
            // full-size segments with a frag-needed of its own, the broker
            // would shrink them and the flight would pass. So r3 hands the
            // 1500-byte segments to r2, whose interface drops the oversized
            // frames; the FORWARD rule drops whatever is longer than 1400
            // and still gets through, either way.
            Scenario::PmtuBlackholeFlight => vec![
                (Node::R2, owned(&["ip", "link", "set", "eth1", "mtu", &mtu])),
                (
                    Node::R2,
                    owned(&[
                        "iptables",
                        "-w",
                        "-A",
                        "FORWARD",
                        "-m",
                        "length",
                        "--length",
                        "1401:65535",
                        "-j",
                        "DROP",
                    ]),
                ),
                (Node::R2, drop_own_frag_needed()),
            ],
            Scenario::IcmpRatelimit => {
                let te = ["-p", "icmp", "--icmp-type", "time-exceeded"];
                let mut accept = owned(&["iptables", "-w", "-A", "OUTPUT"]);
                accept.extend(owned(&te));
                accept.extend(owned(&[
                    "-m",
                    "limit",
                    "--limit",
                    "1/s",
                    "--limit-burst",
                    "1",
                    "-j",
                    "ACCEPT",
                ]));
                let mut drop = owned(&["iptables", "-w", "-A", "OUTPUT"]);
                drop.extend(owned(&te));
                drop.extend(owned(&["-j", "DROP"]));
                vec![(Node::R2, accept), (Node::R2, drop)]
            }
            Scenario::RealLoss => vec![(
                Node::R2,
                owned(&[
                    "iptables",
                    "-w",
                    "-A",
                    "FORWARD",
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    "0.3",
                    "-j",
                    "DROP",
                ]),
            )],
            Scenario::DnsTimeout => ["udp", "tcp"]
                .iter()
                .map(|proto| {
                    (
                        Node::Dns,
                        owned(&[
                            "iptables", "-w", "-A", "INPUT", "-p", proto, "--dport", "53", "-j",
                            "DROP",
                        ]),
                    )
                })
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/// TLS versions the broker's server accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersion {
    /// `-tls1_2`: the certificate chain travels in clear, visible in captures.
    Tls12,
    /// `-tls1_3`: the certificate is encrypted.
    Tls13,
    /// Whatever openssl negotiates (TLS 1.3 here).
    Any,
}

#[derive(Clone, Debug)]
pub struct LabOptions {
    /// TLS version(s) of the broker's server. Default TLS 1.2.
    pub tls: TlsVersion,
    /// ICMP echo requests sent before the TLS attempts. Default 3.
    pub pings: u32,
    /// Connection attempts (`openssl s_client`) of the workload. Default 3.
    pub attempts: u32,
    /// Seconds after which each attempt is killed (`timeout N`). Default 4,
    /// which leaves room for the SYN retransmissions at ~1 s and ~3 s.
    pub attempt_timeout_secs: u32,
    /// Turn off TSO/GSO/GRO and checksum offload on every veth so captures
    /// look like a 1500-MTU wire (needs `ethtool`). Default true.
    pub disable_offloads: bool,
    /// Keep the lab's work dir (certificates, logs) instead of deleting it
    /// at teardown. Also forced by `PATHPROOF_LAB_KEEP=1`.
    pub keep_workdir: bool,
    /// Extra `key=value` sysctls per node, set before the links come up.
    /// E.g. `(Node::Conn, "net.ipv4.tcp_syn_linear_timeouts=0")` for the
    /// exponential SYN backoff of pre-6.5 kernels (SYNs at 0, 1, 3, 7 s)
    /// instead of this kernel's linear first retries (0, 1, 2, 3 s).
    pub sysctls: Vec<(Node, String)>,
    /// Also number the path's links with IPv6 ULAs (`fd00:198:18:<link>::1`
    /// and `::2`, /64, no DAD) and route them; off by default (no IPv6
    /// chatter in the captures). The resolver's link stays IPv4-only.
    pub ipv6: bool,
    /// The TLS servers listen on IPv6 too (`s_server` without `-4`). Off by
    /// default: the trace lab relies on the broker's kernel resetting
    /// TCP/443 over IPv6.
    pub dual_stack_tls: bool,
    /// Extra dnsmasq options for the lab resolver, appended to its command
    /// line (e.g. `--host-record=NAME,ADDR,TTL`, `--local=/zone/`). Empty by
    /// default. The resolver still forwards nothing (`--no-resolv`): a name
    /// outside the zones it knows gets REFUSED, never an upstream query.
    pub dns_extra: Vec<String>,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            tls: TlsVersion::Tls12,
            pings: 3,
            attempts: 3,
            attempt_timeout_secs: 4,
            disable_offloads: true,
            keep_workdir: false,
            sysctls: Vec::new(),
            ipv6: false,
            dual_stack_tls: false,
            dns_extra: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------
// Command helpers
// ---------------------------------------------------------------------------

/// The Debian packages the tests use and the commands each provides: the
/// one list, shared with `.ci/run` (which installs them).
const PACKAGES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/lab/packages.txt"
));

/// `(package, commands)` of [`PACKAGES`], comments and blank lines left out.
fn packages() -> impl Iterator<Item = (&'static str, Vec<&'static str>)> {
    PACKAGES
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let package = words.next()?;
            Some((package, words.collect()))
        })
}

fn package_of(tool: &str) -> &'static str {
    packages()
        .find(|(_, tools)| tools.contains(&tool))
        .map(|(p, _)| p)
        .unwrap_or("?")
}

/// The packages of [`PACKAGES`] one of whose commands is missing.
fn missing_packages() -> Vec<&'static str> {
    packages()
        .filter(|(_, tools)| tools.iter().any(|t| find_in_path(t).is_none()))
        .map(|(p, _)| p)
        .collect()
}

/// Whether every command of [`PACKAGES`] is there; when some are missing
/// and this runs as root where `apt-get` exists, installs their packages
/// first (once per test process: a fresh Debian machine then runs
/// `cargo test` as it is). `Err` names the packages still missing.
pub fn lab_tools_ready() -> Result<(), Vec<&'static str>> {
    static READY: std::sync::OnceLock<Result<(), Vec<&'static str>>> = std::sync::OnceLock::new();
    READY
        .get_or_init(|| {
            let missing = missing_packages();
            if missing.is_empty() {
                return Ok(());
            }
            if !is_root() || find_in_path("apt-get").is_none() {
                return Err(missing);
            }
            let _ = writeln!(
                std::io::stderr(),
                "=== lab: installing the Debian packages the lab tests use: {} ===",
                missing.join(" ")
            );
            let apt = |args: &[&str]| {
                Command::new("apt-get")
                    .args(args)
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            // The package lists of a fresh machine are empty until updated.
            apt(&["update", "-qq"]);
            let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
            args.extend(&missing);
            apt(&args);
            let still = missing_packages();
            if still.is_empty() { Ok(()) } else { Err(still) }
        })
        .clone()
}

fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Panics naming every missing tool and the Debian package that has it.
pub fn check_tools(tools: &[&str]) {
    let missing: Vec<String> = tools
        .iter()
        .filter(|t| find_in_path(t).is_none())
        .map(|t| format!("{t} (Debian package {})", package_of(t)))
        .collect();
    assert!(
        missing.is_empty(),
        "lab: missing tools: {}; install them with apt-get",
        missing.join(", ")
    );
}

fn render(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
            let _ = write!(s, " '{}'", a.replace('\'', "'\\''"));
        } else {
            let _ = write!(s, " {a}");
        }
    }
    s
}

fn describe_output(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

/// Runs `cmd` to completion with stdin from /dev/null; never panics except
/// when the program cannot be started at all.
fn output_of(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null());
    match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            let prog = cmd.get_program().to_string_lossy().into_owned();
            panic!(
                "lab: could not run `{}`: {e} (is Debian package {} installed?)",
                render(cmd),
                package_of(&prog)
            )
        }
    }
}

/// Runs `cmd`; panics with the command line, status, stdout and stderr when
/// it fails.
fn run_ok(cmd: &mut Command) -> Output {
    let out = output_of(cmd);
    if !out.status.success() {
        panic!(
            "lab command failed: `{}`\n{}",
            render(cmd),
            describe_output(&out)
        );
    }
    out
}

fn ip(args: &[&str]) -> Output {
    run_ok(Command::new("ip").args(args))
}

/// Serializes `ip netns add/del` across the test threads of one process
/// (concurrent first use of /run/netns has raced in older iproute2).
static NETNS_LOCK: Mutex<()> = Mutex::new(());
static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

const NS_PREFIX: &str = "pp";

/// Namespaces that exist now (`ip netns list`, names only).
pub fn netns_list() -> Vec<String> {
    let out = output_of(Command::new("ip").args(["netns", "list"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Kills every process inside namespace `ns` and deletes it. Best effort:
/// returns what went wrong instead of panicking (used from `Drop`).
fn destroy_netns(ns: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if !Path::new("/run/netns").join(ns).exists() {
        return problems;
    }
    for round in 0..50 {
        let pids = match Command::new("ip").args(["netns", "pids", ns]).output() {
            Ok(o) => String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
            Err(e) => {
                problems.push(format!("ip netns pids {ns}: {e}"));
                break;
            }
        };
        if pids.is_empty() {
            break;
        }
        if round % 10 == 0 {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(&pids)
                .stderr(Stdio::null())
                .status();
        }
        thread::sleep(Duration::from_millis(20));
        if round == 49 {
            problems.push(format!("processes still alive in {ns}: {}", pids.join(" ")));
        }
    }
    let _guard = NETNS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    match Command::new("ip").args(["netns", "del", ns]).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => problems.push(format!(
            "ip netns del {ns}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => problems.push(format!("ip netns del {ns}: {e}")),
    }
    let _ = fs::remove_dir_all(Path::new("/etc/netns").join(ns));
    problems
}

/// Deletes the namespaces of labs whose test process died without tearing
/// down (`pp<pid>-<n>-<node>` where `<pid>` no longer runs).
pub fn cleanup_stale() {
    for ns in netns_list() {
        let Some(rest) = ns.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('-') else {
            continue;
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if pid == std::process::id().to_string() || Path::new("/proc").join(pid).exists() {
            continue;
        }
        eprintln!("lab: removing stale namespace {ns} (its test process {pid} is gone)");
        for p in destroy_netns(&ns) {
            eprintln!("lab: warning: {p}");
        }
    }
}

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

/// A certificate chain, PEM files in the lab's work dir.
#[derive(Clone, Debug)]
pub struct Certs {
    /// Root CA (self-signed), e.g. `O=Zscaler Test CA, CN=Zscaler Test Root`.
    pub root: PathBuf,
    /// Intermediate CA, e.g. `O=Zscaler Test CA, CN=Zscaler Test Intermediate CA`,
    /// when the issuer has one.
    pub intermediate: Option<PathBuf>,
    /// Leaf `CN=broker1a.lab1.test`, SAN `DNS:broker1a.lab1.test`, issued by
    /// the intermediate (or the root when there is none).
    pub leaf: PathBuf,
    pub leaf_key: PathBuf,
    /// What the server sends after the leaf: the intermediate, or the root
    /// when the root issued the leaf (as interception proxies do).
    pub chain: PathBuf,
}

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
[v3_root]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_inter]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:broker1a.lab1.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
";

/// Who issues the broker's certificate: the CA organisation and the common
/// names of its root and (optional) intermediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Issuer {
    pub org: &'static str,
    pub root_cn: &'static str,
    pub intermediate_cn: Option<&'static str>,
}

impl Issuer {
    /// The distinguished name of the CA that signs the leaf, as openssl
    /// `-subj` spells it.
    pub fn leaf_issuer_subj(&self) -> String {
        format!(
            "/O={}/CN={}",
            self.org,
            self.intermediate_cn.unwrap_or(self.root_cn)
        )
    }
}

/// The key type of a lab certificate chain (every key of it: root,
/// intermediate, leaf).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertKey {
    /// EC P-256: small certificates (about 500 bytes each).
    EcP256,
    /// RSA 2048 bits: about 850 bytes a certificate, 256-byte signatures.
    Rsa2048,
}

impl CertKey {
    /// `openssl req` options that generate such a key.
    fn newkey_args(self) -> &'static [&'static str] {
        match self {
            CertKey::EcP256 => &[
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ],
            CertKey::Rsa2048 => &["-newkey", "rsa:2048", "-nodes"],
        }
    }
}

/// The genuine issuer of the lab: `O=Zscaler Test CA`.
pub const ZSCALER_TEST_CA: Issuer = Issuer {
    org: "Zscaler Test CA",
    root_cn: "Zscaler Test Root",
    intermediate_cn: Some("Zscaler Test Intermediate CA"),
};

/// How long before "now" the lab's certificates start: a day, as if issued
/// earlier, so no valid certificate looks borderline against the capture's
/// clock.
pub const CERT_BACKDATE_SECS: i64 = 86_400;

/// Generates root → intermediate → leaf `CN=broker1a.lab1.test` (EC P-256)
/// in `dir` with openssl, all valid from a day ago
/// ([`CERT_BACKDATE_SECS`]).
pub fn make_certs(dir: &Path, issuer: &Issuer) -> Certs {
    make_certs_with(dir, issuer, -CERT_BACKDATE_SECS)
}

/// `openssl` run under `faketime '<offset> seconds'`: what it signs starts
/// `offset` seconds from now (openssl 3.0 has no `x509 -not_before`).
fn openssl_at(offset_secs: i64) -> Command {
    let mut c = Command::new("faketime");
    c.arg(format!("{offset_secs:+} seconds")).arg("openssl");
    c
}

/// As [`make_certs`], but the leaf's notBefore is `leaf_offset_secs` from
/// now (positive: in the future). The CAs start a day ago. Without an
/// intermediate the root signs the leaf.
pub fn make_certs_with(dir: &Path, issuer: &Issuer, leaf_offset_secs: i64) -> Certs {
    make_certs_keyed(dir, issuer, leaf_offset_secs, CertKey::EcP256)
}

/// As [`make_certs_with`], every key of the chain of type `key`.
pub fn make_certs_keyed(dir: &Path, issuer: &Issuer, leaf_offset_secs: i64, key: CertKey) -> Certs {
    check_tools(&["openssl", "faketime"]);
    let org = issuer.org;
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("lab: create {}: {e}", dir.display()));
    let cnf = dir.join("openssl.cnf");
    fs::write(&cnf, OPENSSL_CNF).unwrap_or_else(|e| panic!("lab: write {}: {e}", cnf.display()));
    let p = |name: &str| dir.join(name);
    let s = |path: &Path| path.to_string_lossy().into_owned();
    let newkey = key.newkey_args();

    // Root CA.
    run_ok(
        openssl_at(-CERT_BACKDATE_SECS)
            .args(["req", "-config", &s(&cnf), "-x509", "-new"])
            .args(newkey)
            .args(["-keyout", &s(&p("root.key")), "-out", &s(&p("root.pem"))])
            .args([
                "-days",
                "3650",
                "-set_serial",
                "1",
                "-extensions",
                "v3_root",
            ])
            .args(["-subj", &format!("/O={org}/CN={}", issuer.root_cn)]),
    );
    // Intermediate and leaf: CSR, then signed by their parent.
    let issue =
        |name: &str, subj: &str, parent: &str, ext: &str, serial: &str, days: &str, offset: i64| {
            run_ok(
                Command::new("openssl")
                    .args(["req", "-config", &s(&cnf), "-new"])
                    .args(newkey)
                    .args(["-keyout", &s(&p(&format!("{name}.key")))])
                    .args(["-out", &s(&p(&format!("{name}.csr"))), "-subj", subj]),
            );
            run_ok(
                openssl_at(offset)
                    .args(["x509", "-req", "-in", &s(&p(&format!("{name}.csr")))])
                    .args(["-CA", &s(&p(&format!("{parent}.pem")))])
                    .args(["-CAkey", &s(&p(&format!("{parent}.key")))])
                    .args(["-set_serial", serial, "-days", days])
                    .args(["-extfile", &s(&cnf), "-extensions", ext])
                    .args(["-out", &s(&p(&format!("{name}.pem")))]),
            );
        };
    let parent = match issuer.intermediate_cn {
        Some(cn) => {
            issue(
                "inter",
                &format!("/O={org}/CN={cn}"),
                "root",
                "v3_inter",
                "2",
                "3650",
                -CERT_BACKDATE_SECS,
            );
            "inter"
        }
        None => "root",
    };
    issue(
        "leaf",
        &format!("/CN={BROKER_NAME}"),
        parent,
        "v3_leaf",
        "3",
        "825",
        leaf_offset_secs,
    );
    Certs {
        root: p("root.pem"),
        intermediate: issuer.intermediate_cn.map(|_| p("inter.pem")),
        leaf: p("leaf.pem"),
        leaf_key: p("leaf.key"),
        chain: p(&format!("{parent}.pem")),
    }
}

// ---------------------------------------------------------------------------
// The lab
// ---------------------------------------------------------------------------

struct Bg {
    id: u32,
    name: String,
    child: Child,
}

/// Files written by one capture of the workload.
#[derive(Clone, Debug)]
pub struct CaptureSet {
    /// `tcpdump -i any`: LINKTYPE_LINUX_SLL2 (276), classic pcap.
    pub sll_pcap: PathBuf,
    /// `tcpdump -i any -y LINUX_SLL`: Linux cooked v1 (113), as older tcpdumps write.
    pub sll1_pcap: PathBuf,
    /// `tcpdump -i eth0`: Ethernet (1), classic pcap.
    pub eth_pcap: PathBuf,
    /// `editcap -F pcapng` of `sll_pcap`.
    pub sll_pcapng: PathBuf,
    /// `editcap -F pcapng` of `eth_pcap`.
    pub eth_pcapng: PathBuf,
    /// Packets each tcpdump reported (`N packets captured`): sll, sll1, eth.
    pub packets: [u64; 3],
    /// Everything each tcpdump printed to stderr (its statistics at the end).
    pub tcpdump_stderr: [String; 3],
    /// What the workload did while the capture ran.
    pub workload: Workload,
}

/// One `openssl s_client` attempt of the workload.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// Exit code (124 when `timeout` killed it, 0 after a completed handshake).
    pub exit_code: Option<i32>,
    pub elapsed: Duration,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Clone, Debug)]
pub struct Workload {
    /// The lookup of the broker locator that starts the workload.
    pub dns: DnsLookup,
    /// `ping` exit code and output; `None` and empty when nothing resolved
    /// (the workload stops after the lookup, as the connector would).
    pub ping_exit: Option<i32>,
    pub ping_output: String,
    /// The TLS attempts; empty when nothing resolved.
    pub attempts: Vec<Attempt>,
    /// Bytes fed to each `s_client` on stdin (0: `/dev/null`).
    pub upload_bytes: usize,
    pub elapsed: Duration,
}

/// The workload's `dig` of the broker locator.
#[derive(Clone, Debug)]
pub struct DnsLookup {
    /// dig's exit code: 0 when an answer came (whatever its rcode), 9 when
    /// none did.
    pub exit_code: Option<i32>,
    /// The answer's status (`NOERROR`, `NXDOMAIN`, `SERVFAIL`, ...); `None`
    /// when no answer came.
    pub status: Option<String>,
    /// The A records of the answer section (after following the CNAME).
    pub addresses: Vec<Ipv4Addr>,
    /// dig's stdout and stderr.
    pub output: String,
    pub elapsed: Duration,
}

/// Reads dig's default output: the header status and the A records.
fn parse_dig(output: &str) -> (Option<String>, Vec<Ipv4Addr>) {
    let status = output.lines().find_map(|l| {
        let rest = l.split("status: ").nth(1)?;
        Some(rest.split(',').next()?.trim().to_owned())
    });
    let mut addresses = Vec::new();
    let mut in_answer = false;
    for line in output.lines() {
        if line.starts_with(";; ANSWER SECTION:") {
            in_answer = true;
            continue;
        }
        if in_answer {
            if line.trim().is_empty() {
                break;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() == 5
                && f[3] == "A"
                && let Ok(a) = f[4].parse()
            {
                addresses.push(a);
            }
        }
    }
    (status, addresses)
}

/// mtr reports of conn → broker.
#[derive(Clone, Debug)]
pub struct MtrReport {
    /// `mtr -r -w -n -c 3 -i 0.2 --gracetime 1 <broker>`.
    pub txt: PathBuf,
    /// `mtr --json -n -c 3 -i 0.2 --gracetime 1 <broker>`.
    pub json: PathBuf,
}

/// A running capture (tcpdumps listening); finish it with [`Lab::stop_capture`].
pub struct Capture {
    dir: PathBuf,
    stem: String,
    /// (bg id, collected stderr) for sll, sll1, eth.
    dumps: Vec<(u32, Arc<Mutex<String>>)>,
}

/// A lab instance. Dropping it tears everything down.
pub struct Lab {
    scenario: Scenario,
    options: LabOptions,
    id: String,
    namespaces: Vec<String>,
    workdir: PathBuf,
    certs: Option<Certs>,
    broker_certs: Option<Certs>,
    interceptor_certs: Option<Certs>,
    upload: Option<PathBuf>,
    bg: Mutex<Vec<Bg>>,
    next_bg: AtomicU32,
    setup_time: Duration,
}

/// The request conn uploads in the pmtu-* scenarios: an HTTP/1.0 GET padded
/// with `X-Pad-NNN` headers to about `bytes` bytes, ended by a blank line.
/// The broker's `s_server -www` reads it all and answers with its status
/// page, so the connection closes cleanly (no RST for unread data).
fn upload_request(bytes: usize) -> String {
    let mut req = format!("GET / HTTP/1.0\r\nHost: {BROKER_NAME}\r\n");
    let mut i = 0;
    loop {
        let line = format!("X-Pad-{i:03}: {}\r\n", "a".repeat(100));
        if req.len() + line.len() + 2 > bytes {
            break;
        }
        req.push_str(&line);
        i += 1;
    }
    req.push_str("\r\n");
    req
}

impl Lab {
    /// Builds the lab for `scenario`: namespaces, veths, addresses, routes,
    /// the scenario's faults, certificates, the resolver, and (unless the
    /// scenario says otherwise) the broker's TLS server and the
    /// interceptor's, listening when this returns.
    pub fn up(scenario: Scenario, options: LabOptions) -> Lab {
        let started = Instant::now();
        let mut tools = vec![
            "ip", "ss", "iptables", "openssl", "tcpdump", "editcap", "ping", "timeout", "kill",
            "dnsmasq", "dig", "faketime",
        ];
        if options.disable_offloads {
            tools.push("ethtool");
        }
        if scenario.connect_proxy().is_some() {
            tools.push("tinyproxy");
        }
        check_tools(&tools);
        cleanup_stale();

        let n = LAB_COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("{NS_PREFIX}{}-{n}", std::process::id());
        let workdir = std::env::temp_dir().join(format!("pathproof-lab-{id}"));
        let _ = fs::remove_dir_all(&workdir);
        fs::create_dir_all(&workdir)
            .unwrap_or_else(|e| panic!("lab: create {}: {e}", workdir.display()));
        let keep =
            options.keep_workdir || std::env::var("PATHPROOF_LAB_KEEP").is_ok_and(|v| v == "1");
        let mut lab = Lab {
            scenario,
            options: LabOptions {
                keep_workdir: keep,
                ..options
            },
            namespaces: Node::ALL
                .iter()
                .map(|n| format!("{id}-{}", n.name()))
                .collect(),
            id,
            workdir,
            certs: None,
            broker_certs: None,
            interceptor_certs: None,
            upload: None,
            bg: Mutex::new(Vec::new()),
            next_bg: AtomicU32::new(0),
            setup_time: Duration::ZERO,
        };
        // From here on a panic drops `lab`, which deletes what exists.
        lab.build_topology();
        lab.write_conn_resolv_conf();
        for (node, cmd) in scenario.faults() {
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            lab.exec(node, &args);
            // With IPv6 on, the same filter rule for IPv6 (the TCP REJECT
            // and DROP faults read the same in both; NAT and ICMPv4 rules
            // have no twin).
            if lab.options.ipv6
                && args.first() == Some(&"iptables")
                && !args.contains(&"nat")
                && !args.contains(&"icmp")
            {
                let mut v6 = args.clone();
                v6[0] = "ip6tables";
                lab.exec(node, &v6);
            }
        }
        // The connector trusts the Zscaler root; in not-yet-valid its leaf
        // starts in the future.
        let certs = make_certs_keyed(
            &lab.workdir.join("pki"),
            &ZSCALER_TEST_CA,
            scenario.leaf_not_before_offset_secs(),
            scenario.cert_key(),
        );
        let broker_certs = if scenario.broker_issuer() == ZSCALER_TEST_CA {
            certs.clone()
        } else {
            make_certs(&lab.workdir.join("pki-broker"), &scenario.broker_issuer())
        };
        lab.certs = Some(certs);
        lab.broker_certs = Some(broker_certs.clone());
        if scenario.upload_bytes() > 0 {
            let path = lab.workdir.join("upload.txt");
            fs::write(&path, upload_request(scenario.upload_bytes()))
                .unwrap_or_else(|e| panic!("lab: write {}: {e}", path.display()));
            lab.upload = Some(path);
        }
        lab.start_resolver();
        if scenario.broker_listens() {
            lab.start_broker(&broker_certs);
        }
        if let Some((node, port)) = scenario.connect_proxy() {
            lab.start_connect_proxy(node, port);
        }
        if let Some((node, port, issuer)) = scenario.interceptor() {
            let certs = make_certs(&lab.workdir.join("pki-interceptor"), &issuer);
            lab.interceptor_certs = Some(certs.clone());
            lab.start_tls_server(node, port, &certs, "s_server-interceptor", false);
        }
        lab.setup_time = started.elapsed();
        lab
    }

    /// Creates a veth pair `left_if` (in `left`, address `left_addr`/24) —
    /// `right_if` (in `right`, `right_addr`/24), offloads off, both up.
    fn add_link(
        &self,
        (left, left_if, left_addr): (Node, &str, Ipv4Addr),
        right: (Node, &str, Ipv4Addr),
    ) {
        let (right, right_if, right_addr) = right;
        ip(&[
            "link",
            "add",
            left_if,
            "netns",
            self.ns(left),
            "type",
            "veth",
            "peer",
            "name",
            right_if,
            "netns",
            self.ns(right),
        ]);
        for (node, ifname, addr) in [(left, left_if, left_addr), (right, right_if, right_addr)] {
            let addr = format!("{addr}/24");
            ip(&["-n", self.ns(node), "addr", "add", &addr, "dev", ifname]);
            if self.options.disable_offloads {
                // Some features are fixed on veth; ethtool then exits
                // non-zero although the rest changed, so check by hand.
                let out = self.try_exec(
                    node,
                    &[
                        "ethtool", "-K", ifname, "tso", "off", "gso", "off", "gro", "off", "tx",
                        "off",
                    ],
                );
                if !out.status.success() {
                    eprintln!(
                        "lab: warning: ethtool -K {ifname} in {}: {}",
                        node.name(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
            }
            ip(&["-n", self.ns(node), "link", "set", ifname, "up"]);
        }
    }

    fn build_topology(&self) {
        {
            let _guard = NETNS_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            for ns in &self.namespaces {
                ip(&["netns", "add", ns]);
            }
        }
        for node in Node::ALL {
            let mut sysctl = if self.options.ipv6 {
                // IPv6 on, but quiet: no router advertisements taken, no DAD.
                vec![
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv6.conf.all.disable_ipv6=0",
                    "net.ipv6.conf.default.disable_ipv6=0",
                    "net.ipv6.conf.all.accept_ra=0",
                    "net.ipv6.conf.default.accept_ra=0",
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0",
                ]
            } else {
                vec![
                    "sysctl",
                    "-q",
                    "-w",
                    // No IPv6 on the lab links: no router solicitations, MLD or
                    // DAD in the captures.
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ]
            };
            if matches!(node, Node::R1 | Node::R2 | Node::R3) {
                sysctl.push("net.ipv4.ip_forward=1");
                if self.options.ipv6 {
                    sysctl.push("net.ipv6.conf.all.forwarding=1");
                }
            }
            for (n, kv) in &self.options.sysctls {
                if *n == node {
                    sysctl.push(kv);
                }
            }
            self.exec(node, &sysctl);
            ip(&["-n", self.ns(node), "link", "set", "lo", "up"]);
        }
        // Link k joins node k-1 (its eth1, or conn's eth0) and node k (eth0).
        for link in 1..=LINKS {
            let left = Node::PATH[usize::from(link - 1)];
            let right = Node::PATH[usize::from(link)];
            let left_if = if left == Node::Conn { "eth0" } else { "eth1" };
            self.add_link(
                (left, left_if, link_addr(link, 1)),
                (right, "eth0", link_addr(link, 2)),
            );
        }
        if self.options.ipv6 {
            self.add_ipv6();
        }
        // The resolver's link: r1 eth2 — dns eth0.
        self.add_link(
            (Node::R1, "eth2", Ipv4Addr::new(198, 18, RESOLVER_LINK, 1)),
            (Node::Dns, "eth0", resolver_addr()),
        );
        // Routes: conn, broker and dns have a default route; each router
        // reaches the links that are not its own through its left or right
        // neighbour (r1 reaches the resolver's link directly; r2 and r3 never
        // talk to it).
        for (node, via) in [
            (Node::Conn, link_addr(1, 2)),
            (Node::Broker, link_addr(LINKS, 1)),
            (Node::Dns, Ipv4Addr::new(198, 18, RESOLVER_LINK, 1)),
        ] {
            ip(&[
                "-n",
                self.ns(node),
                "route",
                "add",
                "default",
                "via",
                &via.to_string(),
            ]);
        }
        for r in 1..LINKS {
            let node = Node::PATH[usize::from(r)];
            for link in 1..=LINKS {
                let via = if link < r {
                    link_addr(r, 1) // left neighbour on link r
                } else if link > r + 1 {
                    link_addr(r + 1, 2) // right neighbour on link r+1
                } else {
                    continue; // directly connected
                };
                let net = format!("198.18.{link}.0/24");
                ip(&[
                    "-n",
                    self.ns(node),
                    "route",
                    "add",
                    &net,
                    "via",
                    &via.to_string(),
                ]);
            }
        }
    }

    /// IPv6 on the path's links: addresses `fd00:198:18:<link>::1|2/64`
    /// (nodad), default routes on conn and the broker, and per-link routes on
    /// the routers, as for IPv4.
    fn add_ipv6(&self) {
        for link in 1..=LINKS {
            let left = Node::PATH[usize::from(link - 1)];
            let right = Node::PATH[usize::from(link)];
            let left_if = if left == Node::Conn { "eth0" } else { "eth1" };
            for (node, ifname, side) in [(left, left_if, 1), (right, "eth0", 2)] {
                let addr = format!("{}/64", link_addr6(link, side));
                ip(&[
                    "-n",
                    self.ns(node),
                    "addr",
                    "add",
                    &addr,
                    "dev",
                    ifname,
                    "nodad",
                ]);
            }
        }
        for (node, via) in [
            (Node::Conn, link_addr6(1, 2)),
            (Node::Broker, link_addr6(LINKS, 1)),
        ] {
            ip(&[
                "-n",
                self.ns(node),
                "-6",
                "route",
                "add",
                "default",
                "via",
                &via.to_string(),
            ]);
        }
        for r in 1..LINKS {
            let node = Node::PATH[usize::from(r)];
            for link in 1..=LINKS {
                let via = if link < r {
                    link_addr6(r, 1)
                } else if link > r + 1 {
                    link_addr6(r + 1, 2)
                } else {
                    continue;
                };
                let net = format!("fd00:198:18:{link}::/64");
                ip(&[
                    "-n",
                    self.ns(node),
                    "-6",
                    "route",
                    "add",
                    &net,
                    "via",
                    &via.to_string(),
                ]);
            }
        }
    }

    /// `/etc/netns/<conn ns>/resolv.conf` naming only the lab resolver, so
    /// anything in conn that resolves a name asks the lab (`ip netns exec`
    /// bind-mounts it over /etc/resolv.conf; removed at teardown). Skipped,
    /// with a warning, when the host has no /etc/resolv.conf to mount over.
    fn write_conn_resolv_conf(&self) {
        if !Path::new("/etc/resolv.conf").exists() {
            eprintln!("lab: warning: no /etc/resolv.conf; conn gets no lab resolv.conf");
            return;
        }
        let dir = Path::new("/etc/netns").join(self.ns(Node::Conn));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("lab: create {}: {e}", dir.display()));
        let conf = format!(
            "# pathproof lab: the site resolver only\nsearch lab1.test\nnameserver {}\noptions timeout:1 attempts:2\n",
            resolver_addr()
        );
        let file = dir.join("resolv.conf");
        fs::write(&file, conf).unwrap_or_else(|e| panic!("lab: write {}: {e}", file.display()));
        let mode = if self.scenario == Scenario::ResolvPerms {
            0o600
        } else {
            0o644
        };
        fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .unwrap_or_else(|e| panic!("lab: chmod {}: {e}", file.display()));
    }

    /// dnsmasq on the resolver: authoritative-like for `lab1.test` only
    /// (`--local=/lab1.test/`: names it has no record for are NXDOMAIN, never
    /// forwarded; `--no-resolv`: no upstream at all). In the answering
    /// scenarios `co2br.lab1.test` is a CNAME to `broker1a.lab1.test`, A
    /// 198.18.4.2; in dns-nxdomain the CNAME is missing.
    fn start_resolver(&self) {
        let listen = format!("--listen-address={}", resolver_addr());
        let pid = format!(
            "--pid-file={}",
            self.workdir.join("dnsmasq.pid").to_string_lossy()
        );
        let ttl = format!("--local-ttl={DNS_TTL}");
        let host = format!("--host-record={BROKER_NAME},{},{DNS_TTL}", broker_addr());
        let cname = format!("--cname={BROKER_LOCATOR},{BROKER_NAME},{DNS_TTL}");
        let mut args = vec![
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            &listen,
            "--port=53",
            "--local=/lab1.test/",
            &ttl,
            "--user=root",
            "--log-queries",
            "--log-facility=-",
            &pid,
            &host,
        ];
        if self.scenario.dns() != DnsBehaviour::NxDomain {
            args.push(&cname);
        }
        args.extend(self.options.dns_extra.iter().map(String::as_str));
        let id = self.spawn_logged(Node::Dns, "dnsmasq", &args);
        self.wait_listening(Node::Dns, "-u", 53, id, "dnsmasq");
    }

    /// tinyproxy in `node`, listening on its conn-side address and `port`,
    /// in the foreground (`-d`), allowing CONNECT to port 443 only, logging
    /// to the work dir. The workload names the broker by address, so the
    /// proxy resolves nothing; in case it tried, `node` gets a resolv.conf
    /// naming only the lab resolver (removed with the namespace).
    pub fn start_connect_proxy(&self, node: Node, port: u16) {
        let listen = hop_addr(node.index());
        let dir = Path::new("/etc/netns").join(self.ns(node));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("lab: create {}: {e}", dir.display()));
        let resolv = dir.join("resolv.conf");
        fs::write(
            &resolv,
            format!(
                "# pathproof lab: the site resolver only\nnameserver {}\n",
                resolver_addr()
            ),
        )
        .unwrap_or_else(|e| panic!("lab: write {}: {e}", resolv.display()));
        let conf = self.workdir.join("tinyproxy.conf");
        let log = self.workdir.join("tinyproxy-own.log");
        let pid = self.workdir.join("tinyproxy.pid");
        fs::write(
            &conf,
            format!(
                "Port {port}\nListen {listen}\nTimeout 30\nMaxClients 16\n\
                 Allow {}\nConnectPort {BROKER_PORT}\nDisableViaHeader Yes\n\
                 LogLevel Info\nLogFile \"{}\"\nPidFile \"{}\"\n",
                conn_addr(),
                log.display(),
                pid.display()
            ),
        )
        .unwrap_or_else(|e| panic!("lab: write {}: {e}", conf.display()));
        let conf = conf.to_string_lossy().into_owned();
        let id = self.spawn_logged(node, "tinyproxy", &["tinyproxy", "-d", "-c", &conf]);
        self.wait_listening(node, "-t", port, id, "tinyproxy");
    }

    /// Waits until something listens on `port` (`proto`: `-t` or `-u`) in
    /// `node`; panics with the log of background process `id` if it exits
    /// or 10 s pass.
    pub fn wait_listening(&self, node: Node, proto: &str, port: u16, id: u32, name: &str) {
        let filter = format!("sport = :{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.try_exec(node, &["ss", "-H", "-l", proto, "-n", &filter]);
            if !out.stdout.is_empty() {
                return;
            }
            if let Some(status) = self.bg_exited(id) {
                panic!(
                    "lab: {name} in {} exited ({status}) before listening on {port}:\n{}",
                    node.name(),
                    self.read_log(name)
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "lab: {name} in {} not listening on {port} after 10 s:\n{}",
                    node.name(),
                    self.read_log(name)
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The broker's TLS service on 443. Usually one `s_server -www`. In the
    /// upload scenarios it is one sink (`s_server` without `-www`: reads
    /// until the client's close_notify, answers it, closes) per connection
    /// attempt, because s_server serves one connection at a time and a
    /// stalled upload (pmtu-blackhole) would block the next attempt's
    /// handshake, which a real broker would not: the broker's nat table
    /// spreads new connections over them (`-m statistic --mode nth`,
    /// REDIRECT to 4431, 4432, …; the last worker listens on 443 itself).
    /// Invisible from conn: the replies leave from port 443.
    fn start_broker(&self, certs: &Certs) {
        if self.scenario.upload_bytes() == 0 {
            self.start_tls_server(Node::Broker, BROKER_PORT, certs, "s_server", false);
            return;
        }
        let workers = self.options.attempts.max(1);
        for i in 0..workers - 1 {
            let port = (SINK_BASE_PORT + i as u16).to_string();
            let every = (workers - i).to_string();
            self.exec(
                Node::Broker,
                &[
                    "iptables",
                    "-w",
                    "-t",
                    "nat",
                    "-A",
                    "PREROUTING",
                    "-p",
                    "tcp",
                    "--dport",
                    &BROKER_PORT.to_string(),
                    "-m",
                    "statistic",
                    "--mode",
                    "nth",
                    "--every",
                    &every,
                    "--packet",
                    "0",
                    "-j",
                    "REDIRECT",
                    "--to-ports",
                    &port,
                ],
            );
            let name = format!("s_server-{port}");
            self.start_tls_server(Node::Broker, SINK_BASE_PORT + i as u16, certs, &name, true);
        }
        self.start_tls_server(Node::Broker, BROKER_PORT, certs, "s_server", true);
    }

    /// `openssl s_server -4 -accept <port> -www` (no `-4` with
    /// [`LabOptions::dual_stack_tls`]) with `certs` (leaf + the
    /// chain file) in `node`, logged as `<name>.log`. With `sink`, no
    /// `-www`: the server reads and logs what the client sends until the
    /// client closes (its stdin is a pipe that never delivers anything).
    pub fn start_tls_server(&self, node: Node, port: u16, certs: &Certs, name: &str, sink: bool) {
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let mut args: Vec<String> = ["openssl", "s_server"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if !self.options.dual_stack_tls {
            args.push("-4".into());
        }
        args.push("-accept".into());
        args.push(port.to_string());
        if !sink {
            args.push("-www".into());
        }
        args.extend([
            "-cert".into(),
            s(&certs.leaf),
            "-key".into(),
            s(&certs.leaf_key),
            "-cert_chain".into(),
            s(&certs.chain),
        ]);
        match self.options.tls {
            TlsVersion::Tls12 => args.push("-tls1_2".into()),
            TlsVersion::Tls13 => args.push("-tls1_3".into()),
            TlsVersion::Any => {}
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let id = self.spawn_logged_with(node, name, &args, sink);
        self.wait_listening(node, "-t", port, id, name);
    }

    // -- accessors ---------------------------------------------------------

    pub fn scenario(&self) -> Scenario {
        self.scenario
    }

    pub fn options(&self) -> &LabOptions {
        &self.options
    }

    /// Unique id of this instance (`pp<pid>-<n>`), prefix of its namespaces.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The namespace name of `node`.
    pub fn ns(&self, node: Node) -> &str {
        &self.namespaces[usize::from(node.index())]
    }

    /// Directory with the lab's certificates and process logs.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// The genuine Zscaler test chain; its root is what conn trusts
    /// (`s_client -CAfile`). In not-yet-valid its leaf starts in the future.
    pub fn certs(&self) -> &Certs {
        self.certs
            .as_ref()
            .expect("lab: certificates not generated yet")
    }

    /// The chain the broker serves ([`Lab::certs`] unless the scenario's
    /// broker has another issuer).
    pub fn broker_certs(&self) -> &Certs {
        self.broker_certs
            .as_ref()
            .expect("lab: certificates not generated yet")
    }

    /// The chain the intercepting proxy serves, if the scenario has one.
    pub fn interceptor_certs(&self) -> Option<&Certs> {
        self.interceptor_certs.as_ref()
    }

    /// How long [`Lab::up`] took.
    pub fn setup_time(&self) -> Duration {
        self.setup_time
    }

    pub fn conn_addr(&self) -> Ipv4Addr {
        conn_addr()
    }

    pub fn broker_addr(&self) -> Ipv4Addr {
        broker_addr()
    }

    pub fn resolver_addr(&self) -> Ipv4Addr {
        resolver_addr()
    }

    /// The address traceroute from conn shows for router `hop` (1..=3).
    pub fn router_addr(&self, hop: u8) -> Ipv4Addr {
        router_addr(hop)
    }

    /// The address traceroute from conn shows at `hop` (1..=4, 4 = broker).
    pub fn hop_addr(&self, hop: u8) -> Ipv4Addr {
        hop_addr(hop)
    }

    // -- running things ----------------------------------------------------

    fn netns_cmd(&self, node: Node, args: &[&str]) -> Command {
        assert!(!args.is_empty(), "lab: empty command");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns(node)]).args(args);
        cmd
    }

    /// Runs `args` inside `node`'s namespace; panics with the command, its
    /// status, stdout and stderr if it fails.
    pub fn exec(&self, node: Node, args: &[&str]) -> Output {
        run_ok(&mut self.netns_cmd(node, args))
    }

    /// Runs `args` inside `node`'s namespace and returns whatever happened.
    pub fn try_exec(&self, node: Node, args: &[&str]) -> Output {
        output_of(&mut self.netns_cmd(node, args))
    }

    /// As [`Lab::try_exec`], with stdin read from `stdin` (or /dev/null).
    pub fn try_exec_stdin(&self, node: Node, args: &[&str], stdin: Option<&Path>) -> Output {
        let Some(path) = stdin else {
            return self.try_exec(node, args);
        };
        let file =
            fs::File::open(path).unwrap_or_else(|e| panic!("lab: open {}: {e}", path.display()));
        let mut cmd = self.netns_cmd(node, args);
        cmd.stdin(file);
        cmd.output()
            .unwrap_or_else(|e| panic!("lab: could not run `{}`: {e}", render(&cmd)))
    }

    /// Starts `args` in the background inside `node`, stdout and stderr to
    /// `<workdir>/<name>.log`; killed at teardown. Returns its id.
    pub fn spawn_logged(&self, node: Node, name: &str, args: &[&str]) -> u32 {
        self.spawn_logged_with(node, name, args, false)
    }

    /// As [`Lab::spawn_logged`]; with `open_stdin` its stdin is a pipe the
    /// lab holds open and never writes (a program that reads stdin then
    /// neither sees input nor end of file).
    pub fn spawn_logged_with(
        &self,
        node: Node,
        name: &str,
        args: &[&str],
        open_stdin: bool,
    ) -> u32 {
        let log = self.workdir.join(format!("{name}.log"));
        let file =
            fs::File::create(&log).unwrap_or_else(|e| panic!("lab: create {}: {e}", log.display()));
        let file2 = file.try_clone().expect("lab: dup log file");
        let mut cmd = self.netns_cmd(node, args);
        let stdin = if open_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        cmd.stdin(stdin).stdout(file).stderr(file2);
        self.spawn(name, cmd)
    }

    fn spawn(&self, name: &str, mut cmd: Command) -> u32 {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("lab: could not start `{}`: {e}", render(&cmd)));
        let id = self.next_bg.fetch_add(1, Ordering::SeqCst);
        self.bg.lock().unwrap_or_else(|e| e.into_inner()).push(Bg {
            id,
            name: name.to_owned(),
            child,
        });
        id
    }

    fn bg_exited(&self, id: u32) -> Option<std::process::ExitStatus> {
        let mut bg = self.bg.lock().unwrap_or_else(|e| e.into_inner());
        bg.iter_mut()
            .find(|b| b.id == id)
            .and_then(|b| b.child.try_wait().ok().flatten())
    }

    fn take_bg(&self, id: u32) -> Option<Bg> {
        let mut bg = self.bg.lock().unwrap_or_else(|e| e.into_inner());
        let pos = bg.iter().position(|b| b.id == id)?;
        Some(bg.remove(pos))
    }

    fn read_log(&self, name: &str) -> String {
        fs::read_to_string(self.workdir.join(format!("{name}.log"))).unwrap_or_default()
    }

    // -- capture -----------------------------------------------------------

    /// Starts the tcpdumps in conn, writing `<dir>/<stem>.{sll,sll1,eth}.pcap`,
    /// and returns once each of them is listening.
    pub fn start_capture(&self, dir: &Path, stem: &str) -> Capture {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("lab: create {}: {e}", dir.display()));
        let mut dumps = Vec::new();
        for (kind, iface, linktype) in [
            ("sll", "any", "LINUX_SLL2"),
            ("sll1", "any", "LINUX_SLL"),
            ("eth", "eth0", "EN10MB"),
        ] {
            let file = dir.join(format!("{stem}.{kind}.pcap"));
            let _ = fs::remove_file(&file);
            let file = file.to_string_lossy().into_owned();
            let mut cmd = self.netns_cmd(
                Node::Conn,
                &[
                    "tcpdump",
                    "-i",
                    iface,
                    "-y",
                    linktype,
                    "-n",
                    "-U",
                    "--immediate-mode",
                    // Immediate mode means TPACKET_V2, whose ring slots are
                    // sized for the largest MTU (lo: 64 KiB for `-i any`):
                    // the default 2 MiB ring then holds ~30 packets and a
                    // burst can overflow it. 32 MiB per tcpdump.
                    "-B",
                    "32768",
                    "-Z",
                    "root",
                    "-w",
                    &file,
                ],
            );
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let id = self.spawn(&format!("tcpdump-{kind}"), cmd);
            let stderr = {
                let mut bg = self.bg.lock().unwrap_or_else(|e| e.into_inner());
                let b = bg.iter_mut().find(|b| b.id == id).expect("just spawned");
                b.child.stderr.take().expect("piped stderr")
            };
            let text = Arc::new(Mutex::new(String::new()));
            let (tx, rx) = mpsc::channel();
            let sink = Arc::clone(&text);
            thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let listening = line.contains("listening on");
                    {
                        let mut t = sink.lock().unwrap_or_else(|e| e.into_inner());
                        t.push_str(&line);
                        t.push('\n');
                    }
                    if listening && let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
            });
            if rx.recv_timeout(Duration::from_secs(10)).is_err() {
                panic!(
                    "lab: tcpdump -i {iface} in conn did not start listening:\n{}",
                    text.lock().unwrap_or_else(|e| e.into_inner())
                );
            }
            dumps.push((id, text));
        }
        Capture {
            dir: dir.to_owned(),
            stem: stem.to_owned(),
            dumps,
        }
    }

    /// Stops the tcpdumps with SIGINT, waits for them, and writes the pcapng
    /// copies with editcap.
    pub fn stop_capture(&self, capture: Capture, workload: Workload) -> CaptureSet {
        let mut packets = [0u64; 3];
        let mut stderr: [String; 3] = Default::default();
        for (i, (id, text)) in capture.dumps.iter().enumerate() {
            let mut bg = self.take_bg(*id).expect("lab: tcpdump not tracked");
            let pid = bg.child.id().to_string();
            let _ = Command::new("kill").args(["-INT", &pid]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            let status = loop {
                if let Ok(Some(st)) = bg.child.try_wait() {
                    break st;
                }
                if Instant::now() > deadline {
                    let _ = bg.child.kill();
                    let _ = bg.child.wait();
                    panic!("lab: {} did not exit after SIGINT", bg.name);
                }
                thread::sleep(Duration::from_millis(10));
            };
            // Let the reader thread see the final statistics.
            thread::sleep(Duration::from_millis(20));
            let text = text.lock().unwrap_or_else(|e| e.into_inner()).clone();
            assert!(
                status.success() || status.code().is_none(),
                "lab: {} failed ({status}):\n{text}",
                bg.name
            );
            packets[i] = text
                .lines()
                .find_map(|l| l.strip_suffix(" packets captured"))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            let dropped: u64 = text
                .lines()
                .find_map(|l| l.strip_suffix(" packets dropped by kernel"))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            assert_eq!(
                dropped, 0,
                "lab: {} lost packets (its ring buffer overflowed), the capture is incomplete:\n{text}",
                bg.name
            );
            stderr[i] = text;
        }
        let file =
            |kind: &str, ext: &str| capture.dir.join(format!("{}.{kind}.{ext}", capture.stem));
        for kind in ["sll", "eth"] {
            let (src, dst) = (file(kind, "pcap"), file(kind, "pcapng"));
            run_ok(
                Command::new("editcap")
                    .args(["-F", "pcapng"])
                    .arg(&src)
                    .arg(&dst),
            );
        }
        CaptureSet {
            sll_pcap: file("sll", "pcap"),
            sll1_pcap: file("sll1", "pcap"),
            eth_pcap: file("eth", "pcap"),
            sll_pcapng: file("sll", "pcapng"),
            eth_pcapng: file("eth", "pcapng"),
            packets,
            tcpdump_stderr: stderr,
            workload,
        }
    }

    /// The connector-like workload, run in conn: `dig @<resolver>
    /// co2br.lab1.test A`; then, if it resolved, `ping -c N -i 0.2` to the
    /// address and `attempts` × `timeout T openssl s_client -connect
    /// <address>:443 -servername broker1a.lab1.test -CAfile <Zscaler test
    /// root> -verify_hostname broker1a.lab1.test -verify_return_error
    /// -brief`, one after another (with
    /// the scenario's upload on stdin, else /dev/null). When nothing
    /// resolves, it stops after the lookup, as the connector would.
    pub fn run_workload(&self) -> Workload {
        let started = Instant::now();
        let dns = self.lookup_broker();
        let Some(target) = dns.addresses.first().map(Ipv4Addr::to_string) else {
            return Workload {
                dns,
                ping_exit: None,
                ping_output: String::new(),
                attempts: Vec::new(),
                upload_bytes: 0,
                elapsed: started.elapsed(),
            };
        };
        let pings = self.options.pings.to_string();
        let ping = self.try_exec(
            Node::Conn,
            &["ping", "-n", "-c", &pings, "-i", "0.2", "-W", "1", &target],
        );
        let ping_output = format!(
            "{}{}",
            String::from_utf8_lossy(&ping.stdout),
            String::from_utf8_lossy(&ping.stderr)
        );
        let connect = format!("{target}:{BROKER_PORT}");
        // Through the explicit proxy, when the scenario has one: s_client
        // sends `CONNECT <target>:443` to it, then TLS in the tunnel.
        let proxy = self
            .scenario
            .connect_proxy()
            .map(|(node, port)| format!("{}:{port}", hop_addr(node.index())));
        let timeout = self.options.attempt_timeout_secs.to_string();
        let ca = self.certs().root.to_string_lossy().into_owned();
        let upload_bytes = self
            .upload
            .as_ref()
            .and_then(|p| fs::metadata(p).ok())
            .map_or(0, |m| m.len() as usize);
        let mut attempts = Vec::new();
        for _ in 0..self.options.attempts {
            let t0 = Instant::now();
            let mut args = vec![
                "timeout",
                &timeout,
                "openssl",
                "s_client",
                "-connect",
                &connect,
                "-servername",
                BROKER_NAME,
                "-CAfile",
                &ca,
                "-verify_hostname",
                BROKER_NAME,
                // Like the connector, abort the handshake (with a fatal
                // alert) when the chain or the name does not verify.
                "-verify_return_error",
                "-brief",
            ];
            if let Some(proxy) = &proxy {
                args.extend(["-proxy", proxy.as_str()]);
            }
            let out = self.try_exec_stdin(Node::Conn, &args, self.upload.as_deref());
            attempts.push(Attempt {
                exit_code: out.status.code(),
                elapsed: t0.elapsed(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Workload {
            dns,
            ping_exit: ping.status.code(),
            ping_output,
            attempts,
            upload_bytes,
            elapsed: started.elapsed(),
        }
    }

    /// `dig +tries=2 +time=1 +noedns @198.18.10.2 co2br.lab1.test A` in
    /// conn: two tries 1 s apart, a plain query like the C library's stub
    /// resolver sends (no EDNS).
    pub fn lookup_broker(&self) -> DnsLookup {
        let t0 = Instant::now();
        let server = format!("@{}", resolver_addr());
        let out = self.try_exec(
            Node::Conn,
            &[
                "dig",
                "+tries=2",
                "+time=1",
                "+noedns",
                &server,
                BROKER_LOCATOR,
                "A",
            ],
        );
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let (status, addresses) = parse_dig(&output);
        DnsLookup {
            exit_code: out.status.code(),
            status,
            addresses,
            output,
            elapsed: t0.elapsed(),
        }
    }

    /// Captures the workload in conn into `out_dir` as
    /// `<scenario>.{sll,sll1,eth}.pcap` and `<scenario>.{sll,eth}.pcapng`.
    /// Panics if the lab itself misbehaves: the lookup must give what the
    /// scenario's resolver is set up to give, and when it resolves, the ICMP
    /// path to the broker must work (it does in every scenario).
    pub fn capture_workload(&self, out_dir: &Path) -> CaptureSet {
        self.capture_workload_as(out_dir, self.scenario.name())
    }

    /// As [`Lab::capture_workload`], with file names `<stem>.*`.
    pub fn capture_workload_as(&self, out_dir: &Path, stem: &str) -> CaptureSet {
        let capture = self.start_capture(out_dir, stem);
        let workload = self.run_workload();
        thread::sleep(self.scenario.settle_after_workload());
        let set = self.stop_capture(capture, workload);
        let dns = &set.workload.dns;
        let name = self.scenario.name();
        match self.scenario.dns() {
            DnsBehaviour::Answers => {
                assert_eq!(
                    dns.addresses,
                    vec![broker_addr()],
                    "lab {name}: {BROKER_LOCATOR} should resolve to the broker:\n{}",
                    dns.output
                );
                assert_eq!(
                    set.workload.ping_exit,
                    Some(0),
                    "lab {name}: conn cannot ping the broker:\n{}",
                    set.workload.ping_output
                );
            }
            DnsBehaviour::NxDomain => assert!(
                dns.status.as_deref() == Some("NXDOMAIN") && dns.addresses.is_empty(),
                "lab {name}: the resolver should answer NXDOMAIN:\n{}",
                dns.output
            ),
            DnsBehaviour::Silent => assert!(
                dns.status.is_none() && dns.exit_code == Some(9),
                "lab {name}: the resolver should not answer:\n{}",
                dns.output
            ),
        }
        set
    }

    /// Writes `<out_dir>/<scenario>.mtr.txt` (`mtr -r -w -n`) and
    /// `<scenario>.mtr.json` (`mtr --json -n`), ICMP, 3 cycles, from conn to
    /// the broker. mtr runs in its own UTS namespace with hostname `conn`, so
    /// the reports do not carry the test machine's name.
    pub fn mtr_report(&self, out_dir: &Path) -> MtrReport {
        check_tools(&["mtr", "unshare"]);
        fs::create_dir_all(out_dir)
            .unwrap_or_else(|e| panic!("lab: create {}: {e}", out_dir.display()));
        let broker = broker_addr().to_string();
        let common = ["-n", "-c", "3", "-i", "0.2", "--gracetime", "1"];
        let write = |ext: &str, mode: &[&str]| {
            let mut args = vec![
                "unshare",
                "--uts",
                "--",
                "sh",
                "-c",
                "hostname conn && exec \"$@\"",
                "sh",
                "mtr",
            ];
            args.extend_from_slice(mode);
            args.extend_from_slice(&common);
            args.push(&broker);
            let out = self.exec(Node::Conn, &args);
            let path = out_dir.join(format!("{}.mtr.{ext}", self.scenario.name()));
            fs::write(&path, &out.stdout)
                .unwrap_or_else(|e| panic!("lab: write {}: {e}", path.display()));
            path
        };
        let txt = write("txt", &["-r", "-w"]);
        let json = write("json", &["--json"]);
        MtrReport { txt, json }
    }

    /// Tears the lab down now (same as dropping it) and says how long it took.
    pub fn down(self) -> Duration {
        let t0 = Instant::now();
        drop(self);
        t0.elapsed()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let mut problems = Vec::new();
        let bg: Vec<Bg> = std::mem::take(&mut *self.bg.lock().unwrap_or_else(|e| e.into_inner()));
        for mut b in bg {
            if let Err(e) = b.child.kill()
                && e.kind() != std::io::ErrorKind::InvalidInput
            {
                problems.push(format!("kill {}: {e}", b.name));
            }
            let _ = b.child.wait();
        }
        for ns in &self.namespaces {
            problems.extend(destroy_netns(ns));
        }
        if !self.options.keep_workdir {
            let _ = fs::remove_dir_all(&self.workdir);
        } else {
            eprintln!("lab {}: kept {}", self.id, self.workdir.display());
        }
        for p in problems {
            eprintln!("lab {}: teardown warning: {p}", self.id);
        }
    }
}
