//! The egress lab: the healthy namespace lab ([`Lab::up`] with
//! [`Scenario::Healthy`]) plus what `pathproof egress` checks, and one fault
//! per [`Fault`].
//!
//! ```text
//!  conn ──── r1 ──────── r2 ──── r3 ──── broker namespace
//!            │ tinyproxy                 198.18.4.2   broker1a  TLS 443, DTLS 443 ┐ co2br.lab1.test
//!            │ 198.18.1.2:8888           198.18.4.3   (2nd A)   TLS 443, DTLS 443 ┘ (CNAME broker1a)
//!           dns                          198.18.4.10  api.private.zscaler.com   TLS 443
//!           198.18.10.2 (dnsmasq)        198.18.4.11  dist.private.zscaler.com  TLS 443
//!                                        198.18.4.12  yum.private.zscaler.com   TLS 443
//!                                        198.18.4.20  SNTP (UDP 123), also ntp.lab1.test
//! ```
//!
//! - Every address lives on the broker's `eth0` (198.18.4.0/24, which the
//!   routers already route), so everything is 4 hops from conn and r2 is
//!   hop 2 for all of it.
//! - TLS (TCP 443): one `openssl s_server -www -tls1_2` per address, each on
//!   its own port (4501 + i) behind a broker-side `nat PREROUTING -d ADDR
//!   --dport 443 -j REDIRECT` (s_server serves one connection at a time;
//!   one server per address keeps concurrent checks of different addresses
//!   from queueing behind each other; replies still leave from ADDR:443).
//!   The chain: a leaf whose SANs name every lab name (the broker names, the
//!   enrollment and update hosts), issued by the lab's genuine
//!   `O=Zscaler Test CA` intermediate. The lab's own s_server on
//!   0.0.0.0:443 stays up but is never reached (every address is
//!   redirected).
//! - DTLS (UDP 443): one `openssl s_server -dtls1_2 -listen` per broker
//!   address, bound to that address (a wildcard UDP socket would answer
//!   from the interface's primary address, which a connected client drops).
//!   `-listen` does the stateless cookie exchange: every ClientHello
//!   without a cookie, from any client, gets a HelloVerifyRequest, and the
//!   server never gets stuck on a client that stops there.
//! - SNTP: [`SntpResponder`] on 198.18.4.20:123, offset 0.
//! - DNS: the lab's dnsmasq, with `--local=/private.zscaler.com/` (names
//!   there that it has no record for are NXDOMAIN; nothing is forwarded)
//!   and host records for the names above; `co2br.lab1.test` is the lab's
//!   CNAME to `broker1a.lab1.test`, which now has two A records (.2 and .3).
//! - The explicit proxy: tinyproxy on r1, 198.18.1.2:8888
//!   ([`Lab::start_connect_proxy`]: CONNECT to port 443 only, clients from
//!   conn only); it resolves names through the lab resolver (r1's
//!   `/etc/netns` resolv.conf names only it).
//! - conn gets a resolv.conf in the lab's work dir naming only the lab
//!   resolver, for `--resolv-conf`.
//!
//! Safety: as the lab; every packet stays in the lab's namespaces.

use super::check::{Run, check_options, pathproof, run_in_conn};
use super::lab::{
    self, CORP_INSPECTION_CA, Certs, Lab, Node, SAFEMARCH_CA, Scenario, ZSCALER_TEST_CA,
    check_tools, make_certs,
};
use super::sntp::SntpResponder;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// What `--cloud` is given: the broker locator is `co2br.<CLOUD>`.
pub const CLOUD: &str = "lab1.test";
/// The broker locator, `co2br.lab1.test` (= [`lab::BROKER_LOCATOR`]).
pub const LOCATOR: &str = lab::BROKER_LOCATOR;
/// The enrollment host and the update hosts (the real names: the lab
/// resolver answers them with lab addresses).
pub const ENROLL_HOST: &str = "api.private.zscaler.com";
pub const DIST_HOST: &str = "dist.private.zscaler.com";
pub const YUM_HOST: &str = "yum.private.zscaler.com";
/// The zone the lab resolver is authoritative-like for, besides `lab1.test`.
pub const ZSCALER_ZONE: &str = "private.zscaler.com";
/// A name for the SNTP responder (not used by the tests: they give the
/// address; handy by hand).
pub const NTP_NAME: &str = "ntp.lab1.test";
/// The proxy, as `--proxy` takes it: tinyproxy on r1.
pub const PROXY: &str = "198.18.1.2:8888";
/// Port of the inspecting TLS servers (r2 in [`Fault::InterceptEnrollHop2`],
/// r1 in [`Fault::ProxyIntercepts`]).
pub const INSPECT_PORT: u16 = 8443;
/// First port of the broker namespace's per-address TLS servers.
const TLS_BASE_PORT: u16 = 4501;
/// Seconds each check of the tests waits at most (`--timeout`).
pub const TIMEOUT_SECS: &str = "3";

/// The broker addresses `co2br.lab1.test` resolves to.
pub fn broker_addrs() -> [Ipv4Addr; 2] {
    [lab::broker_addr(), Ipv4Addr::new(198, 18, 4, 3)]
}

/// The enrollment and update hosts and their addresses.
pub fn hosts() -> [(&'static str, Ipv4Addr); 3] {
    [
        (ENROLL_HOST, Ipv4Addr::new(198, 18, 4, 10)),
        (DIST_HOST, Ipv4Addr::new(198, 18, 4, 11)),
        (YUM_HOST, Ipv4Addr::new(198, 18, 4, 12)),
    ]
}

/// The address of `host` (one of [`hosts`]).
pub fn host_addr(host: &str) -> Ipv4Addr {
    hosts()
        .iter()
        .find(|(h, _)| *h == host)
        .map(|(_, a)| *a)
        .unwrap_or_else(|| panic!("egress lab: no host {host}"))
}

/// The SNTP responder's address, behind r2: 198.18.4.20.
pub fn ntp_addr() -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 4, 20)
}

/// Every address served in the broker namespace with TLS on 443.
pub fn tls_addrs() -> Vec<Ipv4Addr> {
    let mut v = broker_addrs().to_vec();
    v.extend(hosts().iter().map(|(_, a)| *a));
    v
}

/// What the egress lab breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Nothing.
    None,
    /// r2: `iptables -A FORWARD -p udp --dport 123 -j DROP`.
    NtpDropHop2,
    /// r2: `iptables -A FORWARD -s 198.18.1.1 -p tcp --dport 443 -j DROP`:
    /// conn's TCP 443 dies at hop 2; the proxy on r1 (its upstream
    /// connections leave from 198.18.2.1) still reaches everything.
    Tcp443DropHop2ForConn,
    /// r2: `iptables -t nat -A PREROUTING -d 198.18.4.10 -p tcp --dport 443
    /// -j REDIRECT --to-ports 8443` and an `s_server` on r2:8443 whose leaf
    /// is signed by `O=Safemarch Inc, CN=Safemarch Inc CA`: TLS to the
    /// enrollment host is inspected at hop 2.
    InterceptEnrollHop2,
    /// The resolver has no record for `yum.private.zscaler.com`: NXDOMAIN.
    NxdomainYum,
    /// r2: `iptables -A FORWARD -p udp --dport 443 -j DROP`: no DTLS (the
    /// connector falls back to TCP).
    Udp443DropHop2,
    /// r1: `iptables -t nat -A OUTPUT -p tcp --dport 443 -j REDIRECT
    /// --to-ports 8443` and an `s_server` on r1:8443 with the Corp
    /// Inspection chain: every connection tinyproxy opens to port 443 is
    /// inspected (the direct path, forwarded by r1, is not).
    ProxyIntercepts,
}

impl Fault {
    pub fn describe(self) -> &'static str {
        match self {
            Fault::None => "nothing broken",
            Fault::NtpDropHop2 => "r2: iptables -A FORWARD -p udp --dport 123 -j DROP",
            Fault::Tcp443DropHop2ForConn => {
                "r2: iptables -A FORWARD -s 198.18.1.1 -p tcp --dport 443 -j DROP"
            }
            Fault::InterceptEnrollHop2 => {
                "r2: nat PREROUTING -d 198.18.4.10 tcp 443 REDIRECT to its s_server :8443 \
                 (O=Safemarch Inc, CN=Safemarch Inc CA)"
            }
            Fault::NxdomainYum => "the resolver has no record for yum.private.zscaler.com",
            Fault::Udp443DropHop2 => "r2: iptables -A FORWARD -p udp --dport 443 -j DROP",
            Fault::ProxyIntercepts => {
                "r1: nat OUTPUT tcp 443 REDIRECT to its s_server :8443 (Corp Inspection CA): \
                 tinyproxy's upstream TLS is inspected"
            }
        }
    }

    fn dnsmasq_options(self) -> Vec<String> {
        let ttl = lab::DNS_TTL;
        let mut v = vec![
            format!("--local=/{ZSCALER_ZONE}/"),
            // A second address for the broker name behind the locator.
            format!(
                "--host-record={},{},{ttl}",
                lab::BROKER_NAME,
                broker_addrs()[1]
            ),
            format!("--host-record={NTP_NAME},{},{ttl}", ntp_addr()),
        ];
        for (host, addr) in hosts() {
            if self == Fault::NxdomainYum && host == YUM_HOST {
                continue;
            }
            v.push(format!("--host-record={host},{addr},{ttl}"));
        }
        v
    }
}

/// A running egress lab. Dropping it stops the SNTP responder, then tears
/// the lab down (namespaces, processes), also when a test panics.
pub struct EgressLab {
    // Field order is drop order: the responder's socket closes before its
    // namespace is deleted.
    _sntp: SntpResponder,
    pub lab: Lab,
    pub fault: Fault,
    /// The chain every lab TLS server presents (the genuine one).
    pub certs: Certs,
    /// A resolv.conf naming only the lab resolver, for `--resolv-conf`.
    pub resolv_conf: PathBuf,
}

impl EgressLab {
    /// Builds the lab and its servers, then the fault; every server is
    /// listening when this returns.
    pub fn up(fault: Fault) -> EgressLab {
        check_tools(&["tinyproxy", "openssl", "faketime"]);
        let mut options = check_options();
        options.dns_extra = fault.dnsmasq_options();
        let lab = Lab::up(Scenario::Healthy, options);
        let certs = make_egress_leaf(&lab);

        // The broker namespace's extra addresses.
        let mut extra: Vec<Ipv4Addr> = tls_addrs()
            .into_iter()
            .filter(|a| *a != lab::broker_addr())
            .collect();
        extra.push(ntp_addr());
        for a in &extra {
            let a = format!("{a}/24");
            lab.exec(Node::Broker, &["ip", "addr", "add", &a, "dev", "eth0"]);
        }

        // TLS on 443: one server per address, behind a REDIRECT.
        for (i, addr) in tls_addrs().into_iter().enumerate() {
            let port = TLS_BASE_PORT + i as u16;
            let (a, p) = (addr.to_string(), port.to_string());
            lab.exec(
                Node::Broker,
                &[
                    "iptables",
                    "-w",
                    "-t",
                    "nat",
                    "-A",
                    "PREROUTING",
                    "-d",
                    &a,
                    "-p",
                    "tcp",
                    "--dport",
                    "443",
                    "-j",
                    "REDIRECT",
                    "--to-ports",
                    &p,
                ],
            );
            lab.start_tls_server(Node::Broker, port, &certs, &format!("tls-{a}"), false);
        }

        // DTLS on UDP 443 of each broker address.
        for addr in broker_addrs() {
            start_dtls_server(&lab, addr, &certs);
        }

        let sntp = SntpResponder::start(lab.ns(Node::Broker), ntp_addr(), 0);
        lab.start_connect_proxy(Node::R1, lab::CONNECT_PROXY_PORT);

        let resolv_conf = lab.workdir().join("egress-resolv.conf");
        fs::write(
            &resolv_conf,
            format!(
                "# pathproof egress lab: the lab resolver only\nnameserver {}\n",
                lab.resolver_addr()
            ),
        )
        .unwrap_or_else(|e| panic!("egress lab: write {}: {e}", resolv_conf.display()));
        fs::set_permissions(
            &resolv_conf,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap_or_else(|e| panic!("egress lab: chmod {}: {e}", resolv_conf.display()));

        let egress = EgressLab {
            _sntp: sntp,
            lab,
            fault,
            certs,
            resolv_conf,
        };
        egress.inject();
        egress
    }

    fn inject(&self) {
        let lab = &self.lab;
        let port = INSPECT_PORT.to_string();
        match self.fault {
            Fault::None | Fault::NxdomainYum => {}
            Fault::NtpDropHop2 | Fault::Udp443DropHop2 => {
                let port = if self.fault == Fault::NtpDropHop2 {
                    "123"
                } else {
                    "443"
                };
                lab.exec(
                    Node::R2,
                    &[
                        "iptables", "-w", "-A", "FORWARD", "-p", "udp", "--dport", port, "-j",
                        "DROP",
                    ],
                );
            }
            Fault::Tcp443DropHop2ForConn => {
                let conn = lab.conn_addr().to_string();
                lab.exec(
                    Node::R2,
                    &[
                        "iptables", "-w", "-A", "FORWARD", "-s", &conn, "-p", "tcp", "--dport",
                        "443", "-j", "DROP",
                    ],
                );
            }
            Fault::InterceptEnrollHop2 => {
                let certs = make_certs(&lab.workdir().join("pki-inspect-r2"), &SAFEMARCH_CA);
                lab.start_tls_server(Node::R2, INSPECT_PORT, &certs, "inspect-r2", false);
                let dst = host_addr(ENROLL_HOST).to_string();
                lab.exec(
                    Node::R2,
                    &[
                        "iptables",
                        "-w",
                        "-t",
                        "nat",
                        "-A",
                        "PREROUTING",
                        "-d",
                        &dst,
                        "-p",
                        "tcp",
                        "--dport",
                        "443",
                        "-j",
                        "REDIRECT",
                        "--to-ports",
                        &port,
                    ],
                );
            }
            Fault::ProxyIntercepts => {
                let certs = make_certs(&lab.workdir().join("pki-inspect-r1"), &CORP_INSPECTION_CA);
                lab.start_tls_server(Node::R1, INSPECT_PORT, &certs, "inspect-r1", false);
                lab.exec(
                    Node::R1,
                    &[
                        "iptables",
                        "-w",
                        "-t",
                        "nat",
                        "-A",
                        "OUTPUT",
                        "-p",
                        "tcp",
                        "--dport",
                        "443",
                        "-j",
                        "REDIRECT",
                        "--to-ports",
                        &port,
                    ],
                );
            }
        }
    }

    /// The lab's genuine root CA (what `--expect-ca` would be given).
    pub fn root_ca(&self) -> &Path {
        &self.certs.root
    }

    /// The arguments of every egress run of the tests, before the path
    /// choice (`--direct` or `--proxy`): the lab cloud, the lab resolver,
    /// the SNTP responder by address, root as the service user, the lab
    /// resolv.conf, `--timeout 3`, `--json`.
    pub fn base_args(&self) -> Vec<String> {
        [
            "egress",
            "--cloud",
            CLOUD,
            "--resolver",
            &self.lab.resolver_addr().to_string(),
            "--ntp",
            &ntp_addr().to_string(),
            "--service-user",
            "root",
            "--resolv-conf",
            &self.resolv_conf.to_string_lossy(),
            "--timeout",
            TIMEOUT_SECS,
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// `pathproof <base_args> <extra>` in conn; panics unless stdout is JSON.
    pub fn run(&self, extra: &[&str]) -> Run {
        let base = self.base_args();
        let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        run_in_conn(&self.lab, &args)
    }

    /// Environment describing the lab for a shell command (the benchmark,
    /// or a person poking at it): namespaces, addresses, files.
    pub fn env(&self) -> Vec<(String, String)> {
        let lab = &self.lab;
        let mut v: Vec<(String, String)> = Node::ALL
            .iter()
            .map(|n| {
                (
                    format!("EGRESS_NS_{}", n.name().to_uppercase()),
                    lab.ns(*n).to_owned(),
                )
            })
            .collect();
        let join = |a: &[Ipv4Addr]| {
            a.iter()
                .map(Ipv4Addr::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        };
        v.extend(
            [
                ("EGRESS_PATHPROOF", pathproof().to_owned()),
                ("EGRESS_ARGS", self.base_args().join(" ")),
                ("EGRESS_CLOUD", CLOUD.to_owned()),
                ("EGRESS_LOCATOR", LOCATOR.to_owned()),
                ("EGRESS_BROKER_NAME", lab::BROKER_NAME.to_owned()),
                ("EGRESS_BROKERS", join(&broker_addrs())),
                ("EGRESS_HOSTS", hosts().map(|(h, _)| h).to_vec().join(" ")),
                ("EGRESS_HOST_ADDRS", join(&hosts().map(|(_, a)| a))),
                ("EGRESS_NTP", ntp_addr().to_string()),
                ("EGRESS_RESOLVER", lab.resolver_addr().to_string()),
                ("EGRESS_PROXY", PROXY.to_owned()),
                ("EGRESS_CA", self.root_ca().to_string_lossy().into_owned()),
                (
                    "EGRESS_RESOLV_CONF",
                    self.resolv_conf.to_string_lossy().into_owned(),
                ),
                (
                    "EGRESS_WORKDIR",
                    lab.workdir().to_string_lossy().into_owned(),
                ),
                ("EGRESS_TIMEOUT", TIMEOUT_SECS.to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
        );
        v
    }
}

/// The SANs of the egress leaf: every name a lab TLS server answers for.
fn egress_sans() -> String {
    let mut names = vec![lab::BROKER_NAME, LOCATOR, ENROLL_HOST, DIST_HOST, YUM_HOST];
    names.dedup();
    names
        .iter()
        .map(|n| format!("DNS:{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A leaf `CN=broker1a.lab1.test` with every lab name as SAN, signed by the
/// lab's genuine intermediate (`O=Zscaler Test CA`), valid from a day ago;
/// returned with the lab's root and intermediate.
fn make_egress_leaf(lab: &Lab) -> Certs {
    let base = lab.certs().clone();
    let inter = base
        .intermediate
        .clone()
        .expect("the Zscaler test CA has an intermediate");
    assert!(ZSCALER_TEST_CA.intermediate_cn.is_some());
    let inter_key = inter.with_file_name("inter.key");
    let dir = lab.workdir().join("pki-egress");
    fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("egress lab: create {}: {e}", dir.display()));
    let cnf = dir.join("leaf.cnf");
    fs::write(
        &cnf,
        format!(
            "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n[v3_leaf]\n\
             basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
             extendedKeyUsage = serverAuth\nsubjectAltName = {}\n\
             subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n",
            egress_sans()
        ),
    )
    .unwrap_or_else(|e| panic!("egress lab: write {}: {e}", cnf.display()));
    let p = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let s = |p: &Path| p.to_string_lossy().into_owned();
    run(Command::new("openssl").args([
        "req",
        "-config",
        &s(&cnf),
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &p("leaf.key"),
        "-out",
        &p("leaf.csr"),
        "-subj",
        &format!("/CN={}", lab::BROKER_NAME),
    ]));
    // Signed "a day ago" (faketime), as the lab's other certificates.
    run(Command::new("faketime").args([
        &format!("-{} seconds", lab::CERT_BACKDATE_SECS),
        "openssl",
        "x509",
        "-req",
        "-in",
        &p("leaf.csr"),
        "-CA",
        &s(&inter),
        "-CAkey",
        &s(&inter_key),
        "-set_serial",
        "4",
        "-days",
        "825",
        "-extfile",
        &s(&cnf),
        "-extensions",
        "v3_leaf",
        "-out",
        &p("leaf.pem"),
    ]));
    Certs {
        root: base.root,
        intermediate: Some(inter.clone()),
        leaf: dir.join("leaf.pem"),
        leaf_key: dir.join("leaf.key"),
        chain: inter,
    }
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("egress lab: run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "egress lab: {cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl s_server -dtls1_2 -listen -naccept 1 -accept ADDR:443` in the
/// broker namespace with `certs`, restarted after every session by a shell
/// loop; waits until its UDP socket is bound.
///
/// Why the loop (measured with openssl 3.0 in this lab): with `-listen`,
/// ClientHellos without a cookie get a HelloVerifyRequest from a stateless
/// listener, any number, from any client; but once a client completes the
/// cookie exchange (a full `openssl s_client -dtls1_2` handshake) s_server
/// `connect()`s its socket to that client and never answers anyone else
/// again (ICMP port unreachable). Without `-listen` only the first bare
/// ClientHello is answered. `-naccept 1` plus the loop gives a fresh
/// listener after each full handshake (refused only during it and for
/// ~0.1 s after). The loop's shell is the lab's background process; the
/// s_server it runs is killed with the namespace at teardown.
fn start_dtls_server(lab: &Lab, addr: Ipv4Addr, certs: &Certs) {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let name = format!("dtls-{addr}");
    let script = format!(
        "while :; do openssl s_server -dtls1_2 -listen -naccept 1 -accept {addr}:443 \
         -cert '{}' -key '{}' -cert_chain '{}'; sleep 0.1; done",
        s(&certs.leaf),
        s(&certs.leaf_key),
        s(&certs.chain)
    );
    // Its stdin is a pipe held open: s_server reads stdin, and must see
    // neither input nor end of file.
    lab.spawn_logged_with(Node::Broker, &name, &["sh", "-c", &script], true);
    let filter = format!("src {addr}:443");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = lab.try_exec(Node::Broker, &["ss", "-H", "-l", "-u", "-n", &filter]);
        if !out.stdout.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let log =
                fs::read_to_string(lab.workdir().join(format!("{name}.log"))).unwrap_or_default();
            panic!("egress lab: {name} not bound after 10 s:\n{log}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// Probes with the standard tools (and one SNTP query), from conn: what the
// fixture self-tests check the lab with, independently of pathproof.
// ---------------------------------------------------------------------------

/// `dig` answer: the rcode and the A/AAAA addresses of the answer section.
#[derive(Debug, PartialEq, Eq)]
pub struct DigAnswer {
    pub status: Option<String>,
    pub addresses: Vec<String>,
}

/// How a TLS handshake from conn went (`openssl s_client`).
#[derive(Debug)]
pub struct TlsProbe {
    /// The issuer line of the leaf (`i:O = ..., CN = ...`), when a
    /// certificate came.
    pub issuer: Option<String>,
    /// `Verify return code: 0 (ok)` against the lab's genuine root.
    pub verified: bool,
    pub output: String,
}

impl EgressLab {
    /// `dig +tries=1 +time=2 [+tcp] @198.18.10.2 NAME TYPE` in conn.
    pub fn dig(&self, name: &str, qtype: &str, tcp: bool) -> DigAnswer {
        let server = format!("@{}", self.lab.resolver_addr());
        let mut args = vec![
            "dig",
            "+tries=1",
            "+time=2",
            "+noall",
            "+comments",
            "+answer",
        ];
        if tcp {
            args.push("+tcp");
        }
        args.extend([server.as_str(), name, qtype]);
        let out = self.lab.try_exec(Node::Conn, &args);
        let text = String::from_utf8_lossy(&out.stdout);
        let status = text.lines().find_map(|l| {
            let rest = l.split("status: ").nth(1)?;
            Some(rest.split(',').next()?.trim().to_owned())
        });
        let addresses = text
            .lines()
            .filter(|l| !l.starts_with(';'))
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 5 && (f[3] == "A" || f[3] == "AAAA")).then(|| f[4].to_owned())
            })
            .collect();
        DigAnswer { status, addresses }
    }

    /// `openssl s_client [-dtls1_2] [-proxy 198.18.1.2:8888] -connect
    /// HOST:443 -servername SNI -CAfile <lab root>` in conn, 4 s at most.
    pub fn tls(&self, host: &str, sni: &str, dtls: bool, proxy: bool) -> TlsProbe {
        let connect = format!("{host}:443");
        let ca = self.root_ca().to_string_lossy().into_owned();
        let mut args = vec!["timeout", "4", "openssl", "s_client"];
        if dtls {
            args.push("-dtls1_2");
        }
        if proxy {
            args.extend(["-proxy", PROXY]);
        }
        args.extend(["-connect", &connect, "-servername", sni, "-CAfile", &ca]);
        let out = self.lab.try_exec(Node::Conn, &args);
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let issuer = output.lines().find_map(|l| {
            l.trim_start()
                .strip_prefix("i:")
                .map(|i| i.trim().to_owned())
        });
        let verified = output.contains("Verify return code: 0 (ok)");
        TlsProbe {
            issuer,
            verified,
            output,
        }
    }

    /// One SNTP client request from conn to `addr:123`; true when a server
    /// answer (mode 4, echoing our transmit time) comes within 2 s.
    pub fn sntp_answers(&self, addr: Ipv4Addr) -> bool {
        let path = format!("/run/netns/{}", self.lab.ns(Node::Conn));
        thread::spawn(move || -> Result<bool, String> {
            let ns = fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {path}: {e}"))?;
            let sock = std::net::UdpSocket::bind(("0.0.0.0", 0)).map_err(|e| e.to_string())?;
            sock.set_read_timeout(Some(Duration::from_secs(2)))
                .map_err(|e| e.to_string())?;
            let mut req = [0u8; 48];
            req[0] = (4 << 3) | 3; // version 4, client
            req[40..48].copy_from_slice(&0x1234_5678_9abc_def0u64.to_be_bytes());
            sock.send_to(&req, (addr, 123)).map_err(|e| e.to_string())?;
            let mut buf = [0u8; 512];
            Ok(match sock.recv_from(&mut buf) {
                Ok((n, _)) => n >= 48 && buf[0] & 7 == 4 && buf[24..32] == req[40..48],
                Err(_) => false,
            })
        })
        .join()
        .expect("SNTP client thread")
        .unwrap_or_else(|e| panic!("egress lab: SNTP query: {e}"))
    }

    /// `mtr -n -r -c 2` from conn to `addr` with `proto` (`-T` TCP or `-u`
    /// UDP) to `port`: the last hop that answered and its address.
    pub fn last_hop(&self, proto: &str, port: u16, addr: Ipv4Addr) -> (u8, String) {
        let (a, p) = (addr.to_string(), port.to_string());
        let out = self.lab.exec(
            Node::Conn,
            &[
                "mtr",
                "-n",
                "-r",
                "-c",
                "2",
                "-i",
                "0.2",
                "--gracetime",
                "1",
                proto,
                "-P",
                &p,
                &a,
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .filter_map(|l| {
                let (hop, rest) = l.trim_start().split_once(".|--")?;
                let f: Vec<&str> = rest.split_whitespace().collect();
                let hop: u8 = hop.parse().ok()?;
                (f.first().is_some_and(|a| *a != "???") && f.get(1) != Some(&"100.0%"))
                    .then(|| (hop, f[0].to_owned()))
            })
            .next_back()
            .unwrap_or_else(|| panic!("egress lab: no hop answered mtr {proto} {a}:{p}:\n{text}"))
    }
}
