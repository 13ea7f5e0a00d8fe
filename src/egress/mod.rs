//! `pathproof egress`: before a connector is installed, every destination
//! it needs, every protocol, at once, with the failing hop.
//!
//! resolv.conf and the service user → DNS of every name at every resolver
//! (UDP, and TCP 53) → per address, concurrently ([`pool`]): TCP and TLS
//! 443 with SNI and the issuer rule (the `check` probe), DTLS on UDP 443 for
//! brokers, SNTP for time servers, an ICMP echo; through the explicit proxy
//! when there is one (CONNECT, then TLS inside) → for each failure, a short
//! trace by the `check`/`trace` engines names the hop ([`localise`]).
//!
//! The probes observe; each row's verdict comes from the analysis' rules
//! (the host and probe rules of `check`, [`crate::analysis::rules::egress`]
//! for what only egress sees, the path rules for the hop), its status and
//! the run's exit code from [`crate::analysis::egress`].

pub mod destinations;
mod localise;
pub mod pool;
pub mod proxy;
pub mod udp;

use crate::analysis::Verdict;
use crate::analysis::egress::{self as judge, FixAction};
use crate::analysis::observe::{ClockObservation, ClockSample, HostObservations, LookupFailure};
use crate::analysis::rules::egress::{self as rules, DatagramAnswer, ProxyAnswer, TcpDnsAnswer};
use crate::analysis::rules::issuer::{IssuerExpectation, PinnedCas};
use crate::check::{
    ResolvSection, dns, read_resolv_at, resolv_observation, sntp, tls, tls_observation,
};
use crate::trace::live::{LiveJob, run_live};
use crate::trace::{TraceConfig, TraceProtocol};
use crate::vocab::{CheckStatus, EgressCheck, Via};
use destinations::{Destination, DestinationError, Role};
use proxy::{ProxyError, ProxySpec};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use pool::Pace;

/// The unprivileged user whose access to resolv.conf is checked when the
/// connector's service user does not exist yet.
const STAND_IN_USER: &str = "nobody";

/// Where the proxy comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxySetting {
    /// The connector's proxy file, when it exists (the default).
    DefaultFile,
    /// `--proxy-file FILE`: it must be readable.
    File(PathBuf),
    /// `--proxy HOST:PORT`.
    Given(String),
    /// `--direct`: no proxy, whatever the file says.
    Direct,
}

/// What to check.
#[derive(Clone, Debug)]
pub struct EgressConfig {
    pub cloud: String,
    /// `--destinations FILE`.
    pub destinations_file: Option<PathBuf>,
    /// DNS servers; empty: resolv.conf's.
    pub resolvers: Vec<IpAddr>,
    pub resolv_conf: PathBuf,
    pub service_user: String,
    pub proxy: ProxySetting,
    /// `host[:port]` SNTP servers; empty: the host's configuration.
    pub ntp: Vec<String>,
    pub expect_issuer: String,
    pub expect_ca: Option<Arc<PinnedCas>>,
    /// Deadline of each probe.
    pub timeout: Duration,
    /// A blocked UDP 443 fails the run (otherwise it warns: the connector
    /// falls back to TCP).
    pub require_udp: bool,
    /// Name the failing hop of each failure (needs raw sockets).
    pub localise: bool,
    pub skew_threshold: Duration,
    pub pace: Pace,
    /// `--evidence FILE.pcapng`: the packets that prove the verdict, from
    /// the recording of the trace that placed it.
    pub evidence: Option<PathBuf>,
    /// Set from outside (SIGINT, SIGTERM): the probes under way finish
    /// (each within its deadline), the traces stop, none starts, and the
    /// report covers what was measured.
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Default for EgressConfig {
    fn default() -> EgressConfig {
        EgressConfig {
            cloud: "prod.zpath.net".into(),
            destinations_file: None,
            resolvers: Vec::new(),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            service_user: "zscaler".into(),
            proxy: ProxySetting::DefaultFile,
            ntp: Vec::new(),
            expect_issuer: crate::vocab::DEFAULT_ISSUER.into(),
            expect_ca: None,
            timeout: Duration::from_secs(3),
            require_udp: false,
            localise: true,
            skew_threshold: Duration::from_secs(60),
            pace: Pace::default(),
            evidence: None,
            stop: None,
        }
    }
}

/// Bad input: the run does not start.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error(transparent)]
    Destination(#[from] DestinationError),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error("cannot read the destinations file {path}: {source}")]
    ReadDestinations {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Output {
        path: String,
        source: std::io::Error,
    },
}

/// What will be checked, decided before any packet is sent.
#[derive(Clone, Debug)]
pub struct Plan {
    pub destinations: Vec<Destination>,
    pub proxy: Option<ProxySpec>,
    /// Where the NTP servers came from (`--ntp`, configuration, a file).
    pub ntp_source: &'static str,
    pub resolvers: Vec<IpAddr>,
    /// `--resolver` or the resolv.conf path.
    pub resolvers_source: String,
    pub resolv: ResolvSection,
    /// The service user that does not exist yet, for whom
    /// [`STAND_IN_USER`] was checked.
    pub stand_in_for: Option<String>,
}

/// Reads the files the run depends on; every problem is an error naming
/// the file and line.
pub fn plan(cfg: &EgressConfig) -> Result<Plan, EgressError> {
    let (ntp_source, ntp) = if !cfg.ntp.is_empty() {
        ("--ntp", cfg.ntp.clone())
    } else {
        let configured = sntp::configured_servers();
        ("configuration", configured.into_iter().take(4).collect())
    };
    let defaults = destinations::defaults(&cfg.cloud, &ntp)?;
    let destinations = match &cfg.destinations_file {
        None => defaults,
        Some(path) => {
            let shown = path.display().to_string();
            let bytes = std::fs::read(path).map_err(|source| EgressError::ReadDestinations {
                path: shown.clone(),
                source,
            })?;
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(1 << 20)]);
            let file = destinations::parse_file(&shown, &text)?;
            destinations::resolve_file(&file, &defaults)
        }
    };
    let proxy = match &cfg.proxy {
        ProxySetting::Direct => None,
        ProxySetting::Given(s) => Some(proxy::parse_spec(s, "--proxy", 1)?),
        ProxySetting::File(p) => proxy::read_file(p)?,
        ProxySetting::DefaultFile => {
            let p = std::path::Path::new(proxy::DEFAULT_PROXY_FILE);
            if p.exists() {
                proxy::read_file(p)?
            } else {
                None
            }
        }
    };
    // An unwritable output is found before any packet is sent.
    if let Some(file) = &cfg.evidence {
        std::fs::File::create(file).map_err(|source| EgressError::Output {
            path: file.display().to_string(),
            source,
        })?;
    }
    let mut resolv = read_resolv_at(&cfg.resolv_conf, &cfg.service_user);
    let mut stand_in_for = None;
    // Before installation the service user usually does not exist yet:
    // then an unprivileged user stands in for it (what it will be).
    if matches!(
        resolv.readable,
        crate::check::resolv::Readability::NoSuchUser { .. }
    ) {
        let stand_in = crate::check::resolv::readable_by(&cfg.resolv_conf, STAND_IN_USER);
        if !matches!(
            stand_in,
            crate::check::resolv::Readability::NoSuchUser { .. }
        ) {
            resolv.readable = stand_in;
            resolv.service_user = STAND_IN_USER.to_string();
            stand_in_for = Some(cfg.service_user.clone());
        }
    }
    let (resolvers, resolvers_source) = if cfg.resolvers.is_empty() {
        let r = if resolv.nameservers.is_empty() {
            // glibc's rule for a resolv.conf without nameserver lines.
            vec![IpAddr::from([127, 0, 0, 1])]
        } else {
            resolv.nameservers.clone()
        };
        (r, resolv.path.clone())
    } else {
        (cfg.resolvers.clone(), "--resolver".to_string())
    };
    Ok(Plan {
        destinations,
        proxy,
        ntp_source,
        resolvers,
        resolvers_source,
        resolv,
        stand_in_for,
    })
}

/// One row of the report.
#[derive(Clone, Debug, Serialize)]
pub struct EgressRow {
    /// The destination as given (a name or an address; resolv.conf's path).
    pub target: String,
    pub role: &'static str,
    /// The address probed (dns rows: the resolver asked).
    pub address: Option<IpAddr>,
    pub check: EgressCheck,
    pub protocol: Option<&'static str>,
    pub port: Option<u16>,
    pub via: Via,
    pub status: CheckStatus,
    /// Whether a failure fails the run.
    pub required: bool,
    /// The verdict class (null when the row passed or was skipped).
    pub class: Option<&'static str>,
    /// The failing hop (icmp rows: the hop the address answered at).
    pub hop: Option<u8>,
    /// The failing hop's address.
    pub hop_address: Option<IpAddr>,
    pub detail: String,
    pub fix: Option<String>,
    /// `dns` rows: the query type (`A`, `AAAA`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<&'static str>,
    #[serde(skip)]
    pub verdict: Verdict,
    #[serde(skip)]
    established: Option<bool>,
    /// The evidence capture of the trace that placed this row's failure.
    #[serde(skip)]
    evidence: Option<crate::app::evidence::EvidenceSummary>,
}

struct RowSpec<'a> {
    target: &'a str,
    role: &'static str,
    address: Option<IpAddr>,
    check: EgressCheck,
    protocol: Option<&'static str>,
    port: Option<u16>,
    via: Via,
    required: bool,
}

impl RowSpec<'_> {
    fn row(self, established: Option<bool>, verdict: Verdict) -> EgressRow {
        let mut r = EgressRow {
            target: self.target.to_string(),
            role: self.role,
            address: self.address,
            check: self.check,
            protocol: self.protocol,
            port: self.port,
            via: self.via,
            status: CheckStatus::Skip,
            required: self.required,
            class: None,
            hop: None,
            hop_address: None,
            detail: String::new(),
            fix: None,
            query: None,
            verdict,
            established,
            evidence: None,
        };
        r.settle();
        r
    }
}

impl EgressRow {
    fn query(mut self, q: &'static str) -> EgressRow {
        self.query = Some(q);
        self
    }

    /// Status, class, hop, detail and fix from the verdict.
    fn settle(&mut self) {
        if self.established == Some(false) {
            self.verdict = judge::failed_probe(self.verdict.clone());
        }
        self.status = judge::status(self.established, &self.verdict, self.required);
        let shown = !matches!(self.status, CheckStatus::Pass | CheckStatus::Skip);
        self.class = shown.then(|| self.verdict.class.as_str());
        self.hop = if shown || self.check == EgressCheck::Icmp {
            self.verdict.hop
        } else {
            None
        };
        self.hop_address = if shown && self.verdict.hop.is_some() {
            self.verdict.address
        } else {
            None
        };
        self.detail = self.verdict.summary.clone();
        self.fix = shown
            .then(|| self.verdict.next_steps.first().cloned())
            .flatten();
    }

    /// The failure should be placed by a trace.
    fn wants_hop(&self) -> bool {
        matches!(self.status, CheckStatus::Fail | CheckStatus::Warn)
            && (self.established == Some(false) || self.verdict.class.is_failure())
            && self.via == Via::Direct
            && self.verdict.hop.is_none()
            && self.address.is_some()
            && matches!(
                self.check,
                EgressCheck::Tcp | EgressCheck::Tls | EgressCheck::Udp | EgressCheck::Ntp
            )
    }
}

/// A firewall (or inspection policy) change that fixes failing rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FirewallRule {
    /// An address, or a name when only the name is known.
    pub destination: String,
    pub protocol: &'static str,
    pub port: u16,
    pub action: FixAction,
    /// Where the traffic fails, when a trace placed it.
    pub hop: Option<u8>,
    pub hop_address: Option<IpAddr>,
    /// A required row fails without it (otherwise only a warning).
    pub required: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub skip: usize,
}

/// The whole result.
pub struct EgressReport {
    pub cloud: String,
    pub resolvers: Vec<IpAddr>,
    pub resolvers_source: String,
    pub proxy: Option<ProxySpec>,
    pub ntp_source: &'static str,
    pub rows: Vec<EgressRow>,
    pub summary: Summary,
    pub firewall_rules: Vec<FirewallRule>,
    pub verdict: Verdict,
    /// What `--evidence` wrote (`None`: not asked, or nothing recorded).
    pub evidence: Option<crate::app::evidence::EvidenceSummary>,
    pub exit_code: u8,
    /// Why failures have no hop (no raw sockets), once.
    pub notes: Vec<String>,
    pub duration: Duration,
}

/// Runs every check; `progress` sees each phase as it starts.
pub fn run_egress(cfg: &EgressConfig, plan: &Plan, progress: impl Fn(&str)) -> EgressReport {
    let started = Instant::now();
    let mut rows: Vec<EgressRow> = Vec::new();
    let mut notes = Vec::new();
    let now_unix = unix_now();
    let proxied = plan.proxy.is_some();

    // resolv.conf, as the connector's service user sees it.
    let resolv_verdict = judge::judge_host(
        &HostObservations {
            resolv: Some(resolv_observation(&plan.resolv)),
            ..HostObservations::default()
        },
        &cfg_expect(cfg, None),
    );
    rows.push(
        RowSpec {
            target: &plan.resolv.path,
            role: "host",
            address: None,
            check: EgressCheck::Resolv,
            protocol: None,
            port: None,
            via: Via::Direct,
            required: cfg.resolvers.is_empty(),
        }
        .row(
            Some(plan.resolv.error.is_none()),
            describe_resolv(&plan.resolv, plan.stand_in_for.as_deref(), resolv_verdict),
        ),
    );

    // DNS: every name at every resolver, and TCP 53 once per resolver.
    progress("DNS");
    let mut names: Vec<String> = Vec::new();
    for d in &plan.destinations {
        if d.address().is_none() && !names.contains(&d.host) {
            names.push(d.host.clone());
        }
    }
    if let Some(p) = &plan.proxy
        && p.host.parse::<IpAddr>().is_err()
        && !names.contains(&p.host)
    {
        names.push(p.host.clone());
    }
    let dns_opts = dns::LookupOptions {
        timeout_per_try: cfg.timeout / 2,
        tries: 2,
        ..dns::LookupOptions::default()
    };
    let mut dns_jobs: Vec<pool::Job<'_, DnsResult>> = Vec::new();
    for name in &names {
        for &r in &plan.resolvers {
            let opts = dns_opts.clone();
            let name = name.clone();
            dns_jobs.push(Box::new(move || {
                DnsResult::Udp(dns::lookup(&name, &[r], &opts), r)
            }));
        }
    }
    let tcp_name = names.first().cloned();
    if let Some(name) = &tcp_name {
        for &r in &plan.resolvers {
            let name = name.clone();
            let timeout = cfg.timeout;
            dns_jobs.push(Box::new(move || {
                DnsResult::Tcp(
                    r,
                    name.clone(),
                    dns::tcp_lookup(SocketAddr::new(r, 53), &name, timeout),
                )
            }));
        }
    }
    let dns_results = pool::run_all(dns_jobs, cfg.pace, |_| DnsResult::Panicked);
    // Addresses and canonical name of each name, over all resolvers.
    let mut resolved: Vec<(String, Vec<IpAddr>, Option<String>)> = names
        .iter()
        .map(|n| (n.clone(), Vec::new(), None))
        .collect();
    for res in &dns_results {
        match res {
            DnsResult::Udp(l, r) => {
                if let Some(entry) = resolved.iter_mut().find(|(n, _, _)| *n == l.name) {
                    for a in &l.addresses {
                        if !entry.1.contains(a) {
                            entry.1.push(*a);
                        }
                    }
                    if entry.2.is_none() {
                        entry.2 = l.cname_chain.last().cloned();
                    }
                }
                let role = plan
                    .destinations
                    .iter()
                    .find(|d| d.host == l.name)
                    .map_or("proxy", |d| d.role.as_str());
                let verdict = match &l.failure {
                    Some(failure) => judge::judge_host(
                        &HostObservations {
                            lookup_failures: vec![LookupFailure {
                                failure: failure.clone(),
                                elapsed: l.elapsed,
                            }],
                            ..HostObservations::default()
                        },
                        &cfg_expect(cfg, None),
                    ),
                    None => judge::healthy(describe_lookup(l)),
                };
                // With a proxy the proxy resolves the destinations.
                let required = !proxied || role == "proxy";
                // A row of this lookup over UDP at this resolver.
                let udp_row = |required| RowSpec {
                    target: &l.name,
                    role,
                    address: Some(*r),
                    check: EgressCheck::Dns,
                    protocol: Some("udp"),
                    port: Some(53),
                    via: Via::Direct,
                    required,
                };
                rows.push(
                    udp_row(required)
                        .row(Some(!l.addresses.is_empty()), verdict)
                        .query("A"),
                );
                // AAAA: its own row, informational.
                let aaaa_answer = l
                    .tries
                    .iter()
                    .filter(|t| t.qtype == "AAAA")
                    .filter_map(|t| match &t.outcome {
                        dns::TryOutcome::Answered { rcode, .. } => Some(rcode.as_str()),
                        _ => None,
                    })
                    .next_back();
                let v6: Vec<IpAddr> = l
                    .addresses
                    .iter()
                    .copied()
                    .filter(IpAddr::is_ipv6)
                    .collect();
                // A name that does not resolve fails both queries alike.
                let (aaaa_ok, aaaa_verdict, aaaa_required) = if l.failure.is_some() {
                    (false, rows.last().map(|a| a.verdict.clone()), required)
                } else {
                    (aaaa_answer.is_some(), None, false)
                };
                let aaaa_verdict =
                    aaaa_verdict.unwrap_or_else(|| rules::aaaa(&l.name, *r, aaaa_answer, &v6));
                rows.push(
                    udp_row(aaaa_required)
                        .row(Some(aaaa_ok), aaaa_verdict)
                        .query("AAAA"),
                );
            }
            DnsResult::Tcp(r, name, outcome) => {
                let answer = match outcome {
                    Ok((rcode, _)) => TcpDnsAnswer::Answered {
                        rcode: rcode.clone(),
                    },
                    Err(dns::TryOutcome::Timeout) => TcpDnsAnswer::Timeout,
                    Err(dns::TryOutcome::IoError { error }) => TcpDnsAnswer::Error(error.clone()),
                    Err(dns::TryOutcome::Answered { rcode, .. }) => TcpDnsAnswer::Answered {
                        rcode: rcode.clone(),
                    },
                };
                let ok = matches!(answer, TcpDnsAnswer::Answered { .. });
                let mut verdict = rules::dns_over_tcp(*r, &answer);
                if ok {
                    verdict.summary = format!("{} (query {name} A)", verdict.summary);
                }
                rows.push(
                    RowSpec {
                        target: name,
                        role: "resolver",
                        address: Some(*r),
                        check: EgressCheck::Dns,
                        protocol: Some("tcp"),
                        port: Some(53),
                        via: Via::Direct,
                        required: !proxied,
                    }
                    .row(Some(ok), verdict)
                    .query("A"),
                );
            }
            DnsResult::Panicked => notes.push("a DNS probe failed unexpectedly (a bug)".into()),
        }
    }
    let addresses_of = |d: &Destination| -> (Vec<IpAddr>, Option<String>) {
        match d.address() {
            Some(a) => (vec![a], None),
            None => resolved
                .iter()
                .find(|(n, _, _)| *n == d.host)
                .map(|(_, a, c)| (a.clone(), c.clone()))
                .unwrap_or_default(),
        }
    };

    // The probes of every address, concurrently.
    progress("TCP, TLS, DTLS, NTP and ICMP to every address");
    let mut jobs: Vec<pool::Job<'_, Probe>> = Vec::new();
    let mut echoed: Vec<IpAddr> = Vec::new();
    for (di, d) in plan.destinations.iter().enumerate() {
        let (addrs, canonical) = addresses_of(d);
        for a in addrs {
            if d.role.is_tls() {
                // As the connector: SNI the broker's canonical name, else the name.
                let sni = d
                    .address()
                    .is_none()
                    .then(|| canonical.clone().unwrap_or_else(|| d.host.clone()));
                let timeout = cfg.timeout;
                let port = d.port;
                jobs.push(Box::new(move || {
                    let mut c = tls::TlsProbeConfig::new(SocketAddr::new(a, port), sni);
                    c.connect_timeout = timeout;
                    c.handshake_timeout = timeout;
                    Probe::Tls(di, Box::new(tls::handshake(&c)))
                }));
                if d.role == Role::Broker {
                    let sni = canonical
                        .clone()
                        .or_else(|| d.address().is_none().then(|| d.host.clone()));
                    jobs.push(Box::new(move || {
                        let addr = SocketAddr::new(a, 443);
                        Probe::Dtls(di, a, udp::dtls_probe(addr, sni.as_deref(), timeout / 2, 2))
                    }));
                }
            } else {
                let timeout = cfg.timeout;
                let port = d.port;
                jobs.push(Box::new(move || {
                    Probe::Ntp(
                        di,
                        a,
                        udp::sntp_probe(SocketAddr::new(a, port), timeout / 2, 2),
                    )
                }));
            }
            if !echoed.contains(&a) {
                echoed.push(a);
                jobs.push(Box::new(move || Probe::Echo(a, echo(a))));
            }
        }
        if let Some(p) = &plan.proxy
            && d.role.is_tls()
        {
            let proxy_addr = proxy_address(p, &resolved);
            let timeout = cfg.timeout;
            let host = d.host.clone();
            let port = d.port;
            let sni = d.address().is_none().then(|| d.host.clone());
            jobs.push(Box::new(move || {
                let Some(pa) = proxy_addr else {
                    return Probe::Proxy(
                        di,
                        None,
                        ProxyAnswer::Unreachable("its name does not resolve".into()),
                        None,
                    );
                };
                let (answer, stream) = proxy::connect(pa, &host, port, timeout);
                let answer = match answer {
                    proxy::ConnectResult::Open(s) | proxy::ConnectResult::Refused(s) => {
                        ProxyAnswer::Status {
                            status: s.status,
                            line: s.line,
                        }
                    }
                    proxy::ConnectResult::ProxyUnreachable(e) => ProxyAnswer::Unreachable(e),
                    proxy::ConnectResult::BadAnswer(e) => ProxyAnswer::NotHttp(e),
                    proxy::ConnectResult::Timeout => ProxyAnswer::Silence(timeout),
                };
                let tls = stream.map(|s| {
                    // The address is the proxy's: the tunnel's far end is unknown.
                    let mut c = tls::TlsProbeConfig::new(pa, sni);
                    c.handshake_timeout = timeout;
                    Box::new(tls::handshake_over(s, &c))
                });
                Probe::Proxy(di, Some(pa), answer, tls)
            }));
        }
    }
    // The proxy's hop, to place what fails through it.
    let proxy_ip = plan
        .proxy
        .as_ref()
        .and_then(|p| proxy_address(p, &resolved))
        .map(|s| s.ip());
    if let Some(p) = proxy_ip
        && !echoed.contains(&p)
    {
        jobs.push(Box::new(move || Probe::Echo(p, echo(p))));
    }
    let probes = pool::run_all(jobs, cfg.pace, |_| Probe::Panicked);
    let proxy_hop = proxy_ip.and_then(|p| {
        probes.iter().find_map(|x| match x {
            Probe::Echo(a, (Some((hop, _)), _)) if *a == p => Some(*hop),
            _ => None,
        })
    });

    // NTP: the connector needs one time source, not all of them.
    let ntp_ok: Vec<usize> = probes
        .iter()
        .filter_map(|p| match p {
            Probe::Ntp(di, _, Ok(_)) => Some(*di),
            _ => None,
        })
        .collect();
    for p in probes {
        match p {
            Probe::Tls(di, probe) => {
                let d = &plan.destinations[di];
                rows.extend(tls_rows(cfg, d, &probe, Via::Direct, !proxied, now_unix));
            }
            Probe::Dtls(di, a, answer) => {
                let d = &plan.destinations[di];
                let verdict = rules::datagram("DTLS", a, 443, &answer);
                let mut row = RowSpec {
                    target: &d.host,
                    role: d.role.as_str(),
                    address: Some(a),
                    check: EgressCheck::Udp,
                    protocol: Some("udp"),
                    port: Some(443),
                    via: Via::Direct,
                    required: cfg.require_udp && !proxied,
                }
                .row(Some(matches!(answer, DatagramAnswer::Answered(_))), verdict);
                if !row.required && row.status != CheckStatus::Pass {
                    row.verdict.summary.push_str(if proxied {
                        " Not required: through the proxy the connector uses TCP."
                    } else {
                        " Not required (--require-udp makes it so): the connector falls back to TLS over TCP 443."
                    });
                    row.settle();
                }
                rows.push(row);
            }
            Probe::Ntp(di, a, result) => {
                let d = &plan.destinations[di];
                let (established, verdict) = match &result {
                    Ok(sample) => {
                        let obs = HostObservations {
                            clock: Some(ClockObservation {
                                samples: vec![ClockSample {
                                    server: format!("{}", SocketAddr::new(a, d.port)),
                                    offset_secs: sample.offset_secs,
                                    delay_secs: sample.delay_secs,
                                }],
                                threshold: cfg.skew_threshold,
                            }),
                            ..HostObservations::default()
                        };
                        let mut v = judge::judge_host(&obs, &cfg_expect(cfg, None));
                        if v.summary.is_empty() {
                            v.summary = format!(
                                "SNTP from {a}: offset {:+.3} s, delay {:.1} ms, stratum {}.",
                                sample.offset_secs,
                                sample.delay_secs * 1e3,
                                sample.stratum
                            );
                        }
                        (true, v)
                    }
                    Err(answer) => (false, rules::datagram("SNTP", a, d.port, answer)),
                };
                let mut row = RowSpec {
                    target: &d.host,
                    role: d.role.as_str(),
                    address: Some(a),
                    check: EgressCheck::Ntp,
                    protocol: Some("udp"),
                    port: Some(d.port),
                    via: Via::Direct,
                    // Another address of the same server answered.
                    required: established || !ntp_ok.contains(&di),
                }
                .row(Some(established), verdict);
                if !row.required {
                    row.verdict
                        .summary
                        .push_str(" Another address of this time server answers.");
                    row.settle();
                }
                rows.push(row);
            }
            Probe::Echo(a, (answered, error)) => {
                let target = plan
                    .destinations
                    .iter()
                    .find(|d| addresses_of(d).0.contains(&a))
                    .map_or_else(|| a.to_string(), |d| d.host.clone());
                let verdict = rules::echo(a, answered, error.as_deref());
                rows.push(
                    RowSpec {
                        target: &target,
                        role: "any",
                        address: Some(a),
                        check: EgressCheck::Icmp,
                        protocol: Some("icmp"),
                        port: None,
                        via: Via::Direct,
                        required: false,
                    }
                    .row(Some(answered.is_some()), verdict),
                );
            }
            Probe::Proxy(di, pa, answer, tls) => {
                let d = &plan.destinations[di];
                let pa = pa.map(|s| s.ip());
                let shown = plan
                    .proxy
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                let mut verdict = rules::proxy_connect(&shown, pa, &d.host, d.port, &answer);
                if let Some(p) = pa {
                    verdict = judge::through_proxy(verdict, p, proxy_hop);
                }
                let open = matches!(&answer, ProxyAnswer::Status { status, .. } if (200..300).contains(status));
                rows.push(
                    RowSpec {
                        target: &d.host,
                        role: d.role.as_str(),
                        address: pa,
                        check: EgressCheck::Proxy,
                        protocol: Some("tcp"),
                        port: Some(d.port),
                        via: Via::Proxy,
                        required: true,
                    }
                    .row(Some(open), verdict),
                );
                match tls {
                    Some(t) => {
                        let mut tunnel = tls_rows(cfg, d, &t, Via::Proxy, true, now_unix);
                        for r in &mut tunnel {
                            if let Some(p) = pa {
                                r.verdict = judge::through_proxy(r.verdict.clone(), p, proxy_hop);
                                r.settle();
                            }
                        }
                        rows.extend(tunnel);
                    }
                    None => rows.push(
                        RowSpec {
                            target: &d.host,
                            role: d.role.as_str(),
                            address: pa,
                            check: EgressCheck::Tls,
                            protocol: Some("tcp"),
                            port: Some(d.port),
                            via: Via::Proxy,
                            required: true,
                        }
                        .row(
                            None,
                            judge::healthy("Not attempted: the proxy opened no tunnel.".into()),
                        ),
                    ),
                }
            }
            Probe::Panicked => notes.push("a probe failed unexpectedly (a bug)".into()),
        }
    }

    // Name the failing hop of each failure (not after SIGINT: the report
    // of what was measured comes now).
    let stopped = cfg
        .stop
        .as_ref()
        .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed));
    if stopped {
        notes.push("Interrupted: the failing hops were not traced.".into());
    }
    if cfg.localise && !stopped {
        localise_failures(cfg, plan, &mut rows, &mut notes, &progress);
    }

    finish(cfg, plan, rows, notes, started)
}

fn finish(
    cfg: &EgressConfig,
    plan: &Plan,
    mut rows: Vec<EgressRow>,
    notes: Vec<String>,
    started: Instant,
) -> EgressReport {
    // Grouped by check (direct first, then through the proxy), each group in
    // the plan's order: the order a reader expects; the summary and the
    // verdict say what failed.
    rows.sort_by_key(|r| (r.via == Via::Proxy, check_order(r.check)));
    let mut summary = Summary::default();
    for r in &rows {
        match r.status {
            CheckStatus::Pass => summary.pass += 1,
            CheckStatus::Fail => summary.fail += 1,
            CheckStatus::Warn => summary.warn += 1,
            CheckStatus::Skip => summary.skip += 1,
        }
    }
    let mut firewall_rules: Vec<FirewallRule> = Vec::new();
    for r in rows
        .iter()
        .filter(|r| matches!(r.status, CheckStatus::Fail | CheckStatus::Warn))
        .filter(|r| r.check != EgressCheck::Icmp)
    {
        let (Some(action), Some(protocol), Some(port)) =
            (judge::fix_action(r.verdict.class), r.protocol, r.port)
        else {
            continue;
        };
        let destination = match (r.check, r.address) {
            (EgressCheck::Proxy | EgressCheck::Tls, _) if r.via == Via::Proxy => r.target.clone(),
            (_, Some(a)) => a.to_string(),
            (_, None) => r.target.clone(),
        };
        let rule = FirewallRule {
            destination,
            protocol,
            port,
            action,
            hop: r.hop,
            hop_address: r.hop_address,
            required: r.status == CheckStatus::Fail,
        };
        if !firewall_rules.iter().any(|f| {
            f.destination == rule.destination && f.protocol == rule.protocol && f.port == rule.port
        }) {
            firewall_rules.push(rule);
        }
    }
    let failing: Vec<Verdict> = rows
        .iter()
        .filter(|r| r.required && r.status == CheckStatus::Fail)
        .map(|r| r.verdict.clone())
        .collect();
    let attempted = rows
        .iter()
        .filter(|r| r.status != CheckStatus::Skip && r.check != EgressCheck::Resolv)
        .count();
    let verdict = judge::judge_rows(failing, attempted);
    let evidence = keep_evidence(cfg, &rows, &verdict);
    let statuses: Vec<(CheckStatus, bool)> = rows
        .iter()
        .filter(|r| r.check != EgressCheck::Resolv || attempted > 0)
        .map(|r| (r.status, r.required))
        .collect();
    EgressReport {
        cloud: cfg.cloud.clone(),
        resolvers: plan.resolvers.clone(),
        resolvers_source: plan.resolvers_source.clone(),
        proxy: plan.proxy.clone(),
        ntp_source: plan.ntp_source,
        exit_code: judge::exit_code(&statuses),
        rows,
        summary,
        firewall_rules,
        verdict,
        evidence,
        notes,
        duration: started.elapsed(),
    }
}

/// Where the `i`th trace writes its evidence before the verdict is known.
fn part_file(file: &std::path::Path, i: usize) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(format!(".part{i}"));
    PathBuf::from(name)
}

/// Keeps the evidence of the row the verdict comes from as `--evidence`'s
/// file and removes the other traces' parts.
fn keep_evidence(
    cfg: &EgressConfig,
    rows: &[EgressRow],
    verdict: &Verdict,
) -> Option<crate::app::evidence::EvidenceSummary> {
    let file = cfg.evidence.as_ref()?;
    let chosen = rows
        .iter()
        .filter(|r| r.required && r.status == CheckStatus::Fail)
        .filter(|r| r.verdict.class == verdict.class && r.verdict.hop == verdict.hop)
        .find_map(|r| r.evidence.clone());
    let mut kept = None;
    for r in rows {
        let Some(e) = &r.evidence else { continue };
        let part = PathBuf::from(&e.file);
        if kept.is_none() && chosen.as_ref().is_some_and(|c| c.file == e.file) {
            if std::fs::rename(&part, file).is_ok() {
                let mut e = e.clone();
                e.file = file.display().to_string();
                kept = Some(e);
            }
        } else {
            let _ = std::fs::remove_file(&part);
        }
    }
    if kept.is_none() {
        // Nothing proves the verdict on the wire (a healthy run, a DNS or
        // clock failure, a trace without a recording): no file stays.
        let _ = std::fs::remove_file(file);
    }
    kept
}

fn check_order(c: EgressCheck) -> u8 {
    match c {
        EgressCheck::Resolv => 0,
        EgressCheck::Dns => 1,
        EgressCheck::Icmp => 2,
        EgressCheck::Proxy => 3,
        EgressCheck::Tcp => 4,
        EgressCheck::Tls => 5,
        EgressCheck::Udp => 6,
        EgressCheck::Ntp => 7,
    }
}

/// The TCP and TLS rows of one handshake (direct, or inside the tunnel).
fn tls_rows(
    cfg: &EgressConfig,
    d: &Destination,
    probe: &tls::TlsProbe,
    via: Via,
    required: bool,
    now_unix: i64,
) -> Vec<EgressRow> {
    let expect = cfg_expect(cfg, d.issuer.as_deref());
    let obs = HostObservations {
        brokers: vec![crate::analysis::observe::BrokerObservation {
            address: (via == Via::Direct).then_some(probe.addr.ip()),
            port: d.port,
            tls: Some(tls_observation(probe, None)),
            pmtu: None,
            errors: Vec::new(),
        }],
        now_unix,
        ..HostObservations::default()
    };
    let verdict = judge::judge_host(&obs, &expect);
    // The issuer rule's word on the chain, for the row's detail.
    let mut probe = probe.clone();
    probe.judge_issuer(&expect);
    let address = Some(probe.addr.ip());
    let connected = probe.connect == tls::ConnectOutcome::Connected;
    let completed = matches!(probe.outcome, Some(tls::HandshakeOutcome::Completed));
    let mut out = Vec::new();
    if via == Via::Direct {
        let tcp_verdict = if connected {
            judge::healthy(probe.connect_summary())
        } else {
            verdict.clone()
        };
        out.push(
            RowSpec {
                target: &d.host,
                role: d.role.as_str(),
                address,
                check: EgressCheck::Tcp,
                protocol: Some("tcp"),
                port: Some(d.port),
                via,
                required,
            }
            .row(Some(connected), tcp_verdict),
        );
    }
    let tls_verdict = if !connected {
        judge::healthy("Not attempted: TCP did not connect.".into())
    } else if judge::is_healthy(&verdict) {
        judge::healthy(probe.summary())
    } else {
        verdict
    };
    out.push(
        RowSpec {
            target: &d.host,
            role: d.role.as_str(),
            address,
            check: EgressCheck::Tls,
            protocol: Some("tcp"),
            port: Some(d.port),
            via,
            required,
        }
        .row(connected.then_some(completed), tls_verdict),
    );
    out
}

fn cfg_expect<'a>(cfg: &'a EgressConfig, issuer: Option<&'a str>) -> IssuerExpectation<'a> {
    IssuerExpectation {
        org: issuer.unwrap_or(&cfg.expect_issuer),
        // A destination with its own issuer is judged by that name only.
        pinned: if issuer.is_some() {
            None
        } else {
            cfg.expect_ca.as_deref()
        },
    }
}

fn describe_resolv(r: &ResolvSection, stand_in_for: Option<&str>, mut verdict: Verdict) -> Verdict {
    use crate::check::resolv::Readability;
    let servers = if r.nameservers.is_empty() {
        "no nameserver line (glibc then asks 127.0.0.1)".to_string()
    } else {
        format!(
            "nameservers {}",
            r.nameservers
                .iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let user = match stand_in_for {
        Some(real) => format!(
            "{} (no user {real} yet, the connector is not installed: an unprivileged user stands in)",
            r.service_user
        ),
        None => format!("the service user {}", r.service_user),
    };
    if let Some(e) = &r.error {
        verdict.summary = format!("{} cannot be read: {e}. {}", r.path, verdict.summary);
    } else if matches!(r.readable, Readability::Readable) {
        verdict.summary = format!("{}: {servers}; readable by {user}.", r.path);
    } else if let Some(real) = stand_in_for {
        verdict.summary = format!(
            "{}: {servers}. No user {real} yet (the connector is not installed); checked as {} instead: {}",
            r.path, r.service_user, verdict.summary
        );
    } else {
        verdict.summary = format!("{}: {servers}. {}", r.path, verdict.summary);
    }
    verdict
}

fn describe_lookup(l: &dns::DnsLookup) -> String {
    let addrs: Vec<String> = l
        .addresses
        .iter()
        .filter(|a| a.is_ipv4())
        .map(IpAddr::to_string)
        .collect();
    let chain = if l.cname_chain.len() > 1 {
        format!(" via {}", l.cname_chain[1..].join(" → "))
    } else {
        String::new()
    };
    format!(
        "{} {}{chain} ({}, {:.0} ms).",
        l.name,
        if addrs.is_empty() {
            "has no IPv4 address".to_string()
        } else {
            format!("→ {}", addrs.join(", "))
        },
        l.rcode.as_deref().unwrap_or("no answer"),
        l.elapsed.as_secs_f64() * 1e3
    )
}

fn proxy_address(
    p: &ProxySpec,
    resolved: &[(String, Vec<IpAddr>, Option<String>)],
) -> Option<SocketAddr> {
    let ip = match p.host.parse::<IpAddr>() {
        Ok(a) => a,
        Err(_) => *resolved.iter().find(|(n, _, _)| *n == p.host)?.1.first()?,
    };
    Some(SocketAddr::new(ip, p.port))
}

/// One ICMP echo round by the tracer: the hop and RTT of the answer.
fn echo(a: IpAddr) -> (Option<(u8, f64)>, Option<String>) {
    let mut config = TraceConfig::new(a, TraceProtocol::Icmp);
    config.rounds = 1;
    config.fit_inflight();
    match run_live(
        LiveJob {
            config,
            control: false,
            save: None,
            stop: None,
        },
        |_| {},
    ) {
        Ok(t) => (
            t.trace.target_hop.map(|h| {
                let ms = t
                    .trace
                    .hop(h)
                    .and_then(|s| s.rtt.as_ref())
                    .map_or(0.0, |r| r.best_ms);
                (h, ms)
            }),
            None,
        ),
        Err(e) if e.is_privilege() => (None, Some("no raw or ICMP datagram socket".into())),
        Err(e) => (None, Some(e.to_string())),
    }
}

/// Runs the traces that name the failing hops, concurrently.
fn localise_failures(
    cfg: &EgressConfig,
    plan: &Plan,
    rows: &mut [EgressRow],
    notes: &mut Vec<String>,
    progress: &impl Fn(&str),
) {
    // One trace per address and kind (a TCP failure of tcp and tls rows is
    // one check).
    // Address, kind, port, SNI, the destination's own issuer.
    type Wanted = (IpAddr, EgressCheck, u16, Option<String>, Option<String>);
    let mut wanted: Vec<Wanted> = Vec::new();
    for r in rows.iter().filter(|r| r.wants_hop()) {
        let Some(a) = r.address else { continue };
        let kind = match r.check {
            EgressCheck::Tcp | EgressCheck::Tls => EgressCheck::Tcp,
            other => other,
        };
        let port = r.port.unwrap_or(443);
        if wanted
            .iter()
            .any(|w| w.0 == a && w.1 == kind && w.2 == port)
        {
            continue;
        }
        let dest = plan.destinations.iter().find(|d| d.host == r.target);
        let sni = dest
            .filter(|d| d.address().is_none())
            .map(|d| d.host.clone());
        let issuer = dest.and_then(|d| d.issuer.clone());
        wanted.push((a, kind, port, sni, issuer));
    }
    if wanted.is_empty() {
        return;
    }
    progress(&format!(
        "tracing {} failure{} to name the hop",
        wanted.len(),
        if wanted.len() == 1 { "" } else { "s" }
    ));
    let jobs: Vec<pool::Job<'_, localise::Located>> = wanted
        .iter()
        .enumerate()
        .map(|(i, (a, kind, port, sni, issuer))| {
            let (a, kind, port, sni, issuer) = (*a, *kind, *port, sni.clone(), issuer.clone());
            // Each trace's evidence in its own part file; the verdict's is
            // kept at the end.
            let evidence = cfg.evidence.as_ref().map(|f| part_file(f, i));
            Box::new(move || match kind {
                EgressCheck::Tcp => localise::tcp(
                    a,
                    port,
                    sni,
                    issuer.as_deref().unwrap_or(&cfg.expect_issuer),
                    if issuer.is_some() {
                        None
                    } else {
                        cfg.expect_ca.clone()
                    },
                    evidence,
                    cfg.stop.clone(),
                ),
                _ => localise::udp(a, port, cfg.stop.clone()),
            }) as Box<dyn FnOnce() -> localise::Located + Send>
        })
        .collect();
    // Traces are heavier than probes: fewer at once.
    let pace = Pace {
        width: cfg.pace.width.min(8),
        ..cfg.pace
    };
    let found = pool::run_all(jobs, pace, |_| {
        localise::Located::NotRun("the trace failed unexpectedly (a bug)".into())
    });
    let mut not_run: Option<String> = None;
    for ((a, kind, port, _, _), located) in wanted.iter().zip(found) {
        for r in rows.iter_mut().filter(|r| {
            r.wants_hop()
                && r.address == Some(*a)
                && r.port == Some(*port)
                && match kind {
                    EgressCheck::Tcp => matches!(r.check, EgressCheck::Tcp | EgressCheck::Tls),
                    k => r.check == *k,
                }
        }) {
            match &located {
                // The trace's verdict replaces the unplaced one when it
                // names a failure (of this row's kind: a TCP row keeps its
                // own when the check finds only a TLS problem, and so on).
                localise::Located::Verdict(v, evidence) if v.class.is_failure() => {
                    let tls_only = r.check == EgressCheck::Tcp && !tcp_class(v);
                    if !tls_only {
                        r.verdict = v.clone();
                        r.evidence = evidence.clone();
                        r.settle();
                    }
                }
                localise::Located::Verdict(..) => {
                    r.verdict
                        .summary
                        .push_str(" A trace to it found no hop that drops or answers for it.");
                    r.settle();
                }
                localise::Located::NotRun(why) => {
                    not_run.get_or_insert_with(|| why.clone());
                }
            }
        }
    }
    if let Some(why) = not_run {
        let enable = if why.contains("setcap") {
            ""
        } else {
            " Run as root, or `sudo setcap cap_net_raw+ep \"$(command -v pathproof)\"`."
        };
        notes.push(format!("The failing hops are not named: {why}.{enable}"));
    }
}

/// Whether a check's verdict is about TCP itself (the TCP row takes it) or
/// only about what came after (TLS).
fn tcp_class(v: &Verdict) -> bool {
    matches!(
        crate::analysis::egress::fix_action(v.class),
        Some(FixAction::Allow)
    ) && !crate::analysis::egress::is_tls_layer(v.class)
}

enum DnsResult {
    Udp(dns::DnsLookup, IpAddr),
    Tcp(
        IpAddr,
        String,
        Result<(String, Vec<IpAddr>), dns::TryOutcome>,
    ),
    Panicked,
}

enum Probe {
    Tls(usize, Box<tls::TlsProbe>),
    Dtls(usize, IpAddr, DatagramAnswer),
    Ntp(usize, IpAddr, Result<sntp::SntpSample, DatagramAnswer>),
    Echo(IpAddr, (Option<(u8, f64)>, Option<String>)),
    Proxy(
        usize,
        Option<SocketAddr>,
        ProxyAnswer,
        Option<Box<tls::TlsProbe>>,
    ),
    Panicked,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
