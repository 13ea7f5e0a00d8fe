//! `pathproof check`: the live diagnosis from the connector host.
//!
//! resolv.conf and the service user ([`resolv`]) → DNS ([`dns`]) → traces
//! (the tracer of [`crate::trace`]) and TCP + TLS ([`tls`]) to each broker
//! address → the SNI replay when TLS is blocked → path MTU ([`pmtu`]) →
//! clock ([`sntp`]). Meanwhile [`recorder`] captures every packet of the
//! run; the verdict comes from the same analysis engine as `pathproof pcap`
//! over those packets and the trace's path ([`crate::app::analyse_capture`]),
//! plus what only the host can tell (file permissions, SNTP offset, the
//! active probes' own results), handed to the analysis as observations
//! ([`crate::analysis::observe`]) and judged by its rules and its one
//! picker ([`crate::analysis::check::judge_check`]). So `check --save
//! run.pcap` followed by `pathproof pcap run.pcap --hops N` reaches the same
//! verdict whenever the evidence is on the wire.

pub mod dns;
pub mod pmtu;
pub mod rdns;
pub mod recorder;
pub mod resolv;
pub mod sntp;
pub mod tls;

use crate::analysis::check::judge_check;
use crate::analysis::observe::HostObservations;
use crate::analysis::{AnalysisOptions, Finding, TraceJudgement, Verdict, judge_trace};
use crate::app::{self, PcapReport};
use crate::capture::CaptureReader;
use crate::path::{Path, PathSource};
use crate::trace::live::{LiveError, LiveJob, LiveTrace, run_live};
use crate::trace::{Trace, TraceConfig, TraceProtocol};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to check.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    /// Broker names or addresses; empty: `co2br.<cloud>`.
    pub targets: Vec<String>,
    pub cloud: String,
    /// DNS servers to ask; empty: those of `resolv_conf`.
    pub resolvers: Vec<IpAddr>,
    pub resolv_conf: PathBuf,
    /// The connector's service user, who must be able to read `resolv_conf`.
    pub service_user: String,
    /// SNI of the TLS handshake; default: the broker's canonical name.
    pub sni: Option<String>,
    pub port: u16,
    pub expect_issuer: String,
    /// CAs the broker's chain must verify up to (`--expect-ca`); the issuer
    /// is then not judged by name.
    pub expect_ca: Option<std::sync::Arc<crate::analysis::rules::issuer::PinnedCas>>,
    /// SNTP servers (address or name, optional `:port`); empty: the
    /// host's chrony/ntp/timesyncd configuration.
    pub ntp: Vec<String>,
    /// Local clock offset above which `clock-skew` is reported.
    pub skew_threshold: Duration,
    /// Broker addresses probed at most (in parallel).
    pub max_brokers: usize,
    pub trace_rounds: u32,
    pub trace_interval: Duration,
    pub pmtu: bool,
    /// Timeout of one PMTU probe.
    pub pmtu_timeout: Duration,
    /// Where to write the recorded packets (pcap).
    pub save: Option<PathBuf>,
    /// Where to write the recorded packets that prove the verdict
    /// (pcapng with packet comments; see [`crate::app::evidence`]).
    pub evidence: Option<PathBuf>,
    /// Check the host too (resolv.conf, the clock). `egress` turns this
    /// off when it asks a check only where one address fails.
    pub host_checks: bool,
    /// Set from outside (SIGINT, SIGTERM): the traces end early, the steps
    /// not begun yet are skipped (the report says which), and the verdict
    /// is drawn from what was measured.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Default for CheckConfig {
    fn default() -> CheckConfig {
        CheckConfig {
            targets: Vec::new(),
            cloud: "prod.zpath.net".into(),
            resolvers: Vec::new(),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            service_user: "zscaler".into(),
            sni: None,
            port: 443,
            expect_issuer: crate::vocab::DEFAULT_ISSUER.into(),
            expect_ca: None,
            ntp: Vec::new(),
            skew_threshold: Duration::from_secs(60),
            max_brokers: 3,
            trace_rounds: 20,
            trace_interval: Duration::from_millis(250),
            pmtu: true,
            pmtu_timeout: Duration::from_secs(1),
            save: None,
            evidence: None,
            host_checks: true,
            stop: None,
        }
    }
}

impl CheckConfig {
    /// What the broker chain's issuer must be, for the analysis' issuer rule.
    pub fn issuer_expectation(&self) -> crate::analysis::rules::issuer::IssuerExpectation<'_> {
        crate::analysis::rules::issuer::IssuerExpectation {
            org: &self.expect_issuer,
            pinned: self.expect_ca.as_deref(),
        }
    }

    /// The names or addresses to check.
    pub fn target_list(&self) -> Vec<String> {
        if self.targets.is_empty() {
            vec![format!("co2br.{}", self.cloud.trim_matches('.'))]
        } else {
            self.targets.clone()
        }
    }
}

/// What the check is doing (for a progress display).
#[derive(Clone, Debug)]
pub enum Step {
    Resolving(String),
    Probing(Vec<IpAddr>),
    Replaying(IpAddr),
    Pmtu(IpAddr),
    Clock,
    Analysing,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Resolving(n) => write!(f, "resolving {n}"),
            Step::Probing(a) => {
                let list: Vec<String> = a.iter().map(IpAddr::to_string).collect();
                write!(f, "tracing and TLS handshake to {}", list.join(", "))
            }
            Step::Replaying(a) => write!(f, "replaying the ClientHello to {a} with TTL 1, 2, ..."),
            Step::Pmtu(a) => write!(f, "path MTU toward {a}"),
            Step::Clock => f.write_str("clock (SNTP)"),
            Step::Analysing => f.write_str("analysing the recorded packets"),
        }
    }
}

/// resolv.conf as the connector's service user sees it.
#[derive(Clone, Debug, Serialize)]
pub struct ResolvSection {
    pub path: String,
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub service_user: String,
    pub readable: resolv::Readability,
    /// Why the file could not be read by pathproof itself.
    pub error: Option<String>,
}

/// One broker address and what the probes saw.
#[derive(Serialize)]
pub struct BrokerCheck {
    pub address: IpAddr,
    /// The name that resolved to it.
    pub name: Option<String>,
    #[serde(skip)]
    pub trace: Option<LiveTrace>,
    /// The trace judged by the analysis (its findings and verdict).
    #[serde(skip)]
    pub trace_judgement: Option<TraceJudgement>,
    pub tls: Option<tls::TlsProbe>,
    pub sni_replay: Option<tls::SniReplay>,
    pub pmtu: Option<pmtu::PmtuResult>,
    pub errors: Vec<String>,
    /// What could not be done for this broker without privileges.
    pub not_done: Vec<NotDone>,
}

/// A part of the check that could not run as it should, why, and what
/// would enable it (reported, never silently dropped).
#[derive(Clone, Debug, Serialize)]
pub struct NotDone {
    pub part: String,
    pub reason: String,
    pub enable: String,
}

/// How to give pathproof raw sockets (the running executable named).
pub fn enable_raw() -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "$(command -v pathproof)".into());
    format!("run as root, or once: sudo setcap cap_net_raw+ep {exe}")
}

/// How to allow unprivileged ICMP echo sockets to every group.
pub const ENABLE_PING_SOCKETS: &str = "sudo sysctl -w net.ipv4.ping_group_range='0 2147483647'";

/// One SNTP server's answer.
#[derive(Clone, Debug, Serialize)]
pub struct NtpAnswer {
    pub server: String,
    pub sample: Option<sntp::SntpSample>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClockSection {
    /// The local clock when the check ran (RFC 3339).
    pub local_time: String,
    pub ntp: Vec<NtpAnswer>,
    /// Where the servers came from: `--ntp`, or the configuration files.
    pub ntp_source: &'static str,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RecordingSummary {
    /// Whether packets were recorded (needs CAP_NET_RAW).
    pub recorded: bool,
    pub frames: usize,
    pub ignored: u64,
    pub dropped: u64,
    pub saved: Option<String>,
    pub error: Option<String>,
}

/// The whole result.
pub struct CheckReport {
    pub targets: Vec<String>,
    pub port: u16,
    pub resolv: ResolvSection,
    pub lookups: Vec<dns::DnsLookup>,
    pub brokers: Vec<BrokerCheck>,
    pub clock: ClockSection,
    /// The analysis of the recorded packets (absent without privileges).
    pub capture: Option<PcapReport>,
    /// The path used by the analysis (the first broker's trace).
    pub path: Option<Path>,
    pub recording: RecordingSummary,
    pub verdict: Verdict,
    /// The capture's findings and those only the host can tell, worst first.
    pub findings: Vec<Finding>,
    pub warnings: Vec<String>,
    /// What could not be done (no privileges), why, and what would enable
    /// it: the recording here, each broker's in its own list.
    pub not_done: Vec<NotDone>,
    pub duration: Duration,
}

/// Why a check could not run at all (bad usage; probing problems are
/// reported in the result instead).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot write {path}: {source}")]
    Save {
        path: String,
        source: std::io::Error,
    },
    #[error("analysing the recorded packets: {0}")]
    Analysis(#[from] app::JobError),
}

/// Runs the check; `progress` sees each step as it starts.
pub fn run_check(
    cfg: &CheckConfig,
    mut progress: impl FnMut(&Step),
) -> Result<CheckReport, CheckError> {
    let started = Instant::now();
    // An unwritable --save file is found before a minute of probing, not after.
    for file in cfg.save.iter().chain(&cfg.evidence) {
        std::fs::File::create(file).map_err(|source| CheckError::Save {
            path: file.display().to_string(),
            source,
        })?;
    }
    let mut warnings = Vec::new();
    let resolv = read_resolv(cfg);

    let watch = recorder::Watch::default();
    let mut recording = RecordingSummary::default();
    let mut not_done = Vec::new();
    let rec = match recorder::Recorder::start(watch.clone()) {
        Ok(r) => Some(r),
        Err(e) => {
            recording.error = Some(e.to_string());
            not_done.push(NotDone {
                part: "recording every packet of the run (the capture analysis: frame numbers \
                       as evidence, injected resets by TTL; --save)"
                    .into(),
                reason: e.to_string(),
                enable: enable_raw(),
            });
            warnings.push(format!(
                "{e}; without recording, the verdict rests on the probes' own results"
            ));
            None
        }
    };

    let resolvers = if cfg.resolvers.is_empty() {
        resolv.nameservers.clone()
    } else {
        cfg.resolvers.clone()
    };
    for r in &resolvers {
        watch.add(*r);
    }
    let resolvers = if resolvers.is_empty() && cfg.resolvers.is_empty() {
        // glibc's rule for a resolv.conf without nameserver lines.
        vec![IpAddr::from([127, 0, 0, 1])]
    } else {
        resolvers
    };
    let dns_opts = dns::LookupOptions::default();

    // The clock check runs beside everything else: it needs only the NTP
    // servers' addresses.
    let (ntp_source, ntp_names) = if !cfg.host_checks {
        ("not checked", Vec::new())
    } else if cfg.ntp.is_empty() {
        ("configuration", sntp::configured_servers())
    } else {
        ("--ntp", cfg.ntp.clone())
    };
    let mut lookups = Vec::new();
    let mut ntp_targets: Vec<(String, Option<SocketAddr>, Option<String>)> = Vec::new();
    for server in ntp_names.iter().take(3) {
        match parse_host_port(server, 123) {
            HostPort::Addr(a) => ntp_targets.push((server.clone(), Some(a), None)),
            HostPort::Name(name, port) => {
                progress(&Step::Resolving(name.clone()));
                let l = dns::lookup(&name, &resolvers, &dns_opts);
                let addr = l.addresses.first().map(|a| SocketAddr::new(*a, port));
                let err = addr.is_none().then(|| format!("cannot resolve {name}"));
                lookups.push(l);
                ntp_targets.push((server.clone(), addr, err));
            }
        }
    }
    for (_, a, _) in &ntp_targets {
        if let Some(a) = a {
            watch.add(a.ip());
        }
    }

    // Broker addresses.
    let mut brokers: Vec<(IpAddr, Option<String>, Option<String>)> = Vec::new();
    for target in cfg.target_list() {
        if let Ok(a) = target.parse::<IpAddr>() {
            brokers.push((a, None, None));
            continue;
        }
        progress(&Step::Resolving(target.clone()));
        let l = dns::lookup(&target, &resolvers, &dns_opts);
        let canonical = l
            .cname_chain
            .last()
            .cloned()
            .unwrap_or_else(|| target.clone());
        for a in &l.addresses {
            brokers.push((*a, Some(target.clone()), Some(canonical.clone())));
        }
        lookups.push(l);
    }
    // IPv4 first (what the connector prefers), then at most max_brokers.
    brokers.sort_by_key(|(a, _, _)| a.is_ipv6());
    brokers.dedup_by_key(|(a, _, _)| *a);
    brokers.truncate(cfg.max_brokers.max(1));
    for (a, _, _) in &brokers {
        watch.add(*a);
    }

    let clock = std::thread::scope(|s| {
        let clock = s.spawn(|| {
            ntp_targets
                .iter()
                .map(|(server, addr, err)| match addr {
                    Some(a) => match sntp::query(*a, Duration::from_secs(2), 2) {
                        Ok(sample) => NtpAnswer {
                            server: server.clone(),
                            sample: Some(sample),
                            error: None,
                        },
                        Err(e) => NtpAnswer {
                            server: server.clone(),
                            sample: None,
                            error: Some(e.to_string()),
                        },
                    },
                    None => NtpAnswer {
                        server: server.clone(),
                        sample: None,
                        error: err.clone(),
                    },
                })
                .collect::<Vec<_>>()
        });
        if !brokers.is_empty() {
            progress(&Step::Probing(brokers.iter().map(|b| b.0).collect()));
        }
        let probed: Vec<BrokerCheck> = std::thread::scope(|s| {
            let handles: Vec<_> = brokers
                .iter()
                .map(|(addr, name, canonical)| {
                    let sni = cfg.sni.clone().or_else(|| canonical.clone());
                    s.spawn(move || probe_broker(cfg, *addr, name.clone(), sni))
                })
                .collect();
            handles
                .into_iter()
                .zip(&brokers)
                .map(|(h, (addr, name, _))| {
                    h.join().unwrap_or_else(|_| BrokerCheck {
                        address: *addr,
                        name: name.clone(),
                        trace: None,
                        trace_judgement: None,
                        tls: None,
                        sni_replay: None,
                        pmtu: None,
                        errors: vec!["the probe thread panicked".into()],
                        not_done: Vec::new(),
                    })
                })
                .collect()
        });
        (probed, clock.join().unwrap_or_default())
    });
    let (mut probed, ntp) = clock;

    // The second phase needs the broker's hop from the trace.
    let stopped = || {
        cfg.stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
    };
    let mut not_begun = Vec::new();
    for b in &mut probed {
        if stopped() {
            if cfg.pmtu {
                not_begun.push(format!("the path-MTU search to {}", b.address));
            }
            continue;
        }
        let hop = b.trace.as_ref().and_then(target_hop_of);
        if let Some(t) = &b.tls
            && t.outcome
                .as_ref()
                .is_some_and(tls::HandshakeOutcome::blocked_after_client_hello)
        {
            progress(&Step::Replaying(b.address));
            let sni = t.sni.clone().unwrap_or_default();
            b.sni_replay = Some(tls::sni_replay(&tls::SniReplayConfig::new(
                SocketAddr::new(b.address, cfg.port),
                sni,
                hop.unwrap_or(8),
            )));
        }
        // Also without a trace (the hop then only helps to place a black
        // hole): an unprivileged run may still have ICMP sockets.
        if cfg.pmtu {
            progress(&Step::Pmtu(b.address));
            match pmtu_live(b.address, cfg.port, hop, cfg.pmtu_timeout) {
                Ok(r) => b.pmtu = Some(r),
                Err(e) if crate::trace::socket::is_permission_error(&e) => {
                    b.not_done.push(NotDone {
                        part: format!("path-MTU search to {}", b.address),
                        reason: e.to_string(),
                        enable: format!("{}; or {ENABLE_PING_SOCKETS}", enable_raw()),
                    })
                }
                Err(e) => b.errors.push(format!("path MTU: {e}")),
            }
        }
    }
    if stopped() {
        let skipped = if not_begun.is_empty() {
            String::new()
        } else {
            format!("; not done: {}", not_begun.join(", "))
        };
        warnings.push(format!(
            "interrupted (SIGINT or SIGTERM): the traces were cut short{skipped}; the verdict rests on what was measured until then"
        ));
    }
    progress(&Step::Clock);
    let clock = ClockSection {
        local_time: crate::vocab::time::rfc3339_ns(now_ns()),
        ntp,
        ntp_source,
    };

    progress(&Step::Analysing);
    let path = probed
        .iter()
        .find_map(|b| b.trace.as_ref().map(path_of_trace));
    let mut capture = None;
    // The recording, kept for --evidence (a check's recording is small).
    let mut recorded_bytes = None;
    let mut analysis_options = None;
    if let Some(rec) = rec {
        let r = rec.stop(Duration::from_millis(300));
        recording.recorded = true;
        recording.frames = r.frames.len();
        recording.ignored = r.ignored;
        recording.dropped = r.dropped;
        let bytes = r.to_pcap().map_err(|source| CheckError::Save {
            path: "memory".into(),
            source,
        })?;
        if let Some(file) = &cfg.save {
            std::fs::write(file, &bytes).map_err(|source| CheckError::Save {
                path: file.display().to_string(),
                source,
            })?;
            recording.saved = Some(file.display().to_string());
        }
        if cfg.evidence.is_some() {
            recorded_bytes = Some(bytes.clone());
        }
        let reader = CaptureReader::from_reader(Box::new(std::io::Cursor::new(bytes))).map_err(
            |source| app::JobError::Capture {
                path: "recording".into(),
                source,
            },
        )?;
        let options = AnalysisOptions {
            server_ports: vec![cfg.port],
            expect_issuer: cfg.expect_issuer.clone(),
            expect_ca: cfg.expect_ca.clone(),
            broker_names: cfg
                .target_list()
                .into_iter()
                .filter(|t| t.parse::<IpAddr>().is_err())
                .collect(),
            ..AnalysisOptions::default()
        };
        let name = cfg
            .save
            .as_ref()
            .map_or_else(|| "(recording)".to_string(), |f| f.display().to_string());
        capture = Some(app::analyse_capture(reader, name, path.clone(), &options)?);
        analysis_options = Some(options);
    }

    let observations = observe(
        cfg,
        &resolv,
        &lookups,
        &probed,
        &clock,
        capture.is_some(),
        now_ns() / 1_000_000_000,
    );
    let traces: Vec<&TraceJudgement> = probed
        .iter()
        .filter_map(|b| b.trace_judgement.as_ref())
        .collect();
    let (verdict, findings) = judge_check(
        &observations,
        capture.as_ref().map(|c| &c.analysis),
        &traces,
        &cfg.issuer_expectation(),
    );
    if let Some(out) = &cfg.evidence {
        match (&mut capture, &recorded_bytes, &analysis_options) {
            (Some(c), Some(bytes), Some(options)) => {
                let req = app::evidence::EvidenceRequest {
                    out,
                    original: "the check's recording",
                    verdict: &verdict,
                    findings: &findings,
                    path: path.as_ref(),
                    options,
                };
                match app::evidence::write_evidence(
                    app::evidence::EvidenceSource::Bytes(bytes),
                    &c.analysis,
                    &req,
                ) {
                    Ok(e) => c.evidence = Some(e),
                    Err(e) => warnings.push(format!("--evidence: {e}")),
                }
            }
            _ => warnings.push(format!(
                "--evidence: nothing written to {}: no packets were recorded",
                out.display()
            )),
        }
    }
    Ok(CheckReport {
        targets: cfg.target_list(),
        port: cfg.port,
        resolv,
        lookups,
        brokers: probed,
        clock,
        capture,
        path,
        recording,
        verdict,
        findings,
        warnings,
        not_done,
        duration: started.elapsed(),
    })
}

/// What the check saw beside its recording, in the analysis's terms: the
/// check observes, the analysis judges.
fn observe(
    cfg: &CheckConfig,
    resolv: &ResolvSection,
    lookups: &[dns::DnsLookup],
    brokers: &[BrokerCheck],
    clock: &ClockSection,
    recorded: bool,
    now_unix: i64,
) -> HostObservations {
    use crate::analysis::observe as o;
    HostObservations {
        resolv: cfg.host_checks.then(|| resolv_observation(resolv)),
        lookup_failures: lookups
            .iter()
            .filter_map(|l| {
                Some(o::LookupFailure {
                    failure: l.failure.clone()?,
                    elapsed: l.elapsed,
                })
            })
            .collect(),
        clock: cfg.host_checks.then(|| o::ClockObservation {
            samples: clock
                .ntp
                .iter()
                .filter_map(|a| {
                    let s = a.sample.as_ref()?;
                    Some(o::ClockSample {
                        server: a.server.clone(),
                        offset_secs: s.offset_secs,
                        delay_secs: s.delay_secs,
                    })
                })
                .collect(),
            threshold: cfg.skew_threshold,
        }),
        brokers: brokers
            .iter()
            .map(|b| o::BrokerObservation {
                address: Some(b.address),
                port: cfg.port,
                tls: b
                    .tls
                    .as_ref()
                    .map(|t| tls_observation(t, b.sni_replay.as_ref())),
                pmtu: b.pmtu.as_ref().map(|p| o::PmtuObservation {
                    blackhole: p.blackhole,
                    blackhole_after_hop: p.blackhole_after_hop,
                    blackhole_after_address: p.blackhole_after_address,
                    reported_mtu: p.reported_mtu,
                    reported_by: p.reported_by,
                    reported_hop: p.reported_hop,
                    largest_passing: p.largest_passing,
                    summary: p.summary(),
                }),
                errors: b.errors.clone(),
            })
            .collect(),
        recorded,
        now_unix,
    }
}

/// resolv.conf as the analysis' host rule reads it.
pub fn resolv_observation(resolv: &ResolvSection) -> crate::analysis::observe::ResolvObservation {
    use crate::analysis::observe as o;
    let access = match &resolv.readable {
        resolv::Readability::Readable => o::ResolvAccess::Readable,
        resolv::Readability::Unreadable { reason } => o::ResolvAccess::Unreadable {
            reason: reason.clone(),
        },
        resolv::Readability::NoSuchUser { .. } => o::ResolvAccess::NoSuchUser,
        resolv::Readability::Unknown { reason } => o::ResolvAccess::Unknown {
            reason: reason.clone(),
        },
    };
    o::ResolvObservation {
        path: resolv.path.clone(),
        service_user: resolv.service_user.clone(),
        access,
    }
}

/// A TLS probe (and its SNI replay) as the analysis' probe rule reads it.
pub fn tls_observation(
    t: &tls::TlsProbe,
    replay: Option<&tls::SniReplay>,
) -> crate::analysis::observe::TlsProbeObservation {
    use crate::analysis::observe as o;
    let hello_answer = t.outcome.as_ref().and_then(|outcome| {
        let answer = match outcome {
            tls::HandshakeOutcome::ResetAfterClientHello => o::HelloAnswer::Reset,
            tls::HandshakeOutcome::ClosedAfterClientHello => o::HelloAnswer::Fin,
            tls::HandshakeOutcome::SilenceAfterClientHello => o::HelloAnswer::Silence,
            _ => return None,
        };
        Some((answer, outcome.to_string()))
    });
    o::TlsProbeObservation {
        sni: t.sni.clone(),
        connect: match t.connect {
            tls::ConnectOutcome::Connected => o::ConnectResult::Connected,
            tls::ConnectOutcome::Refused => o::ConnectResult::Refused,
            tls::ConnectOutcome::Timeout => o::ConnectResult::Timeout,
            _ => o::ConnectResult::Failed,
        },
        completed: matches!(t.outcome, Some(tls::HandshakeOutcome::Completed)),
        hello_answer,
        certificates: t.certificates.clone(),
        chain_len: t.chain.len(),
        summary: t.summary(),
        replay: replay.map(|r| (r.summary(), r.filter_hop())),
    }
}

fn read_resolv(cfg: &CheckConfig) -> ResolvSection {
    read_resolv_at(&cfg.resolv_conf, &cfg.service_user)
}

/// Reads resolv.conf at `path` and whether `service_user` can.
pub fn read_resolv_at(path: &std::path::Path, service_user: &str) -> ResolvSection {
    let shown = path.display().to_string();
    let (conf, error) = match std::fs::read_to_string(path) {
        Ok(text) => (resolv::parse(&text), None),
        Err(e) => (resolv::parse(""), Some(e.to_string())),
    };
    ResolvSection {
        path: shown,
        nameservers: conf.nameservers.clone(),
        search: conf.search.clone(),
        service_user: service_user.to_string(),
        readable: resolv::readable_by(path, service_user),
        error,
    }
}

/// One broker: trace (TCP to the port, ICMP control) and, at the same
/// time, the TLS handshake.
fn probe_broker(
    cfg: &CheckConfig,
    address: IpAddr,
    name: Option<String>,
    sni: Option<String>,
) -> BrokerCheck {
    let mut errors = Vec::new();
    let mut config = TraceConfig::new(address, TraceProtocol::Tcp { port: cfg.port });
    config.rounds = cfg.trace_rounds;
    config.interval = cfg.trace_interval;
    config.fit_inflight();
    let (trace, tls) = std::thread::scope(|s| {
        let trace = s.spawn(move || {
            run_live(
                LiveJob {
                    config,
                    control: true,
                    save: None,
                    stop: cfg.stop.clone(),
                },
                |_| {},
            )
        });
        let mut tls = tls::handshake(&tls::TlsProbeConfig::new(
            SocketAddr::new(address, cfg.port),
            sni,
        ));
        tls.judge_issuer(&cfg.issuer_expectation());
        (trace.join(), tls)
    });
    let mut not_done = Vec::new();
    let trace = match trace {
        Ok(Ok(t)) => Some(t),
        // No raw sockets: the path by ICMP echo through unprivileged ICMP
        // sockets, where net.ipv4.ping_group_range allows them.
        Ok(Err(e)) if e.is_privilege() => {
            let part = format!(
                "TCP/{} trace to {address} (resets and middleboxes answering in the broker's name)",
                cfg.port
            );
            not_done.push(NotDone {
                part,
                reason: e.to_string(),
                enable: enable_raw(),
            });
            match icmp_trace_unprivileged(cfg, address) {
                Ok(t) => Some(t),
                Err(e) => {
                    not_done.push(NotDone {
                        part: format!("path to {address} (ICMP trace)"),
                        reason: e.to_string(),
                        enable: format!("{}; or {ENABLE_PING_SOCKETS}", enable_raw()),
                    });
                    None
                }
            }
        }
        Ok(Err(e)) => {
            errors.push(format!("trace: {e}"));
            None
        }
        Err(_) => {
            errors.push("trace: the trace thread panicked".into());
            None
        }
    };
    let trace_judgement = trace
        .as_ref()
        .map(|t| judge_trace(&t.trace, t.control.as_ref()));
    BrokerCheck {
        address,
        name,
        trace,
        trace_judgement,
        tls: Some(tls),
        sni_replay: None,
        pmtu: None,
        errors,
        not_done,
    }
}

/// The path by ICMP echo alone (no control trace): without raw sockets the
/// tracer opens an unprivileged ICMP socket.
fn icmp_trace_unprivileged(cfg: &CheckConfig, address: IpAddr) -> Result<LiveTrace, LiveError> {
    let mut config = TraceConfig::new(address, TraceProtocol::Icmp);
    config.rounds = cfg.trace_rounds;
    config.interval = cfg.trace_interval;
    config.fit_inflight();
    run_live(
        LiveJob {
            config,
            control: false,
            save: None,
            stop: cfg.stop.clone(),
        },
        |_| {},
    )
}

/// The path-MTU search toward `target` on raw sockets: ICMP echo probes,
/// and TCP SYNs to the broker port only when ICMP gets no answer at all (a
/// filtered ICMP says nothing about the MTU). ICMP comes first because TCP
/// probes are SYNs carrying padding: in the recording they look like
/// connection attempts, some unanswered.
fn pmtu_live(
    target: IpAddr,
    port: u16,
    target_hop: Option<u8>,
    timeout: Duration,
) -> Result<pmtu::PmtuResult, crate::trace::TraceError> {
    let source = crate::trace::socket::source_for(target)?;
    let clock = crate::trace::SystemClock::new();
    let run = |protocol: pmtu::PmtuProtocol| {
        let cfg = pmtu::PmtuConfig {
            protocol,
            target_hop,
            timeout,
            ..pmtu::PmtuConfig::new(target, source)
        };
        let mut net = crate::trace::socket::RawNetwork::open(
            target,
            source,
            cfg.protocol.trace_protocol(),
            clock,
        )?;
        pmtu::discover(&mut net, &clock, &cfg)
    };
    let icmp = match run(pmtu::PmtuProtocol::Icmp) {
        // No raw sockets: DF echoes through an unprivileged ICMP socket
        // (the kernel sets DF on them until it learns a smaller path MTU).
        Err(e) if crate::trace::socket::is_permission_error(&e) => {
            let mut cfg = pmtu::PmtuConfig {
                protocol: pmtu::PmtuProtocol::Icmp,
                target_hop,
                timeout,
                ..pmtu::PmtuConfig::new(target, source)
            };
            let mut net =
                crate::trace::socket::PingNetwork::open(target, source, cfg.ident, clock)?;
            // The kernel may give the socket another echo id than asked.
            cfg.ident = net.ident();
            return pmtu::discover(&mut net, &clock, &cfg);
        }
        other => other?,
    };
    if icmp.outcome == pmtu::PmtuOutcome::NoAnswer {
        return run(pmtu::PmtuProtocol::Tcp { port });
    }
    Ok(icmp)
}

/// The trace that shows the broker's real place: the TCP trace, unless the
/// ICMP control reached the broker further away (TCP blocked on the way, or
/// a middlebox answering TCP in the broker's name: a proxy's SYN-ACK at
/// hop 1 must not make hop 1 the broker's hop).
pub fn broker_trace(t: &LiveTrace) -> &Trace {
    match (&t.trace.target_hop, &t.control) {
        (None, Some(c)) if c.target_hop.is_some() => c,
        (Some(h), Some(c)) if c.target_hop.is_some_and(|ch| ch > *h) => c,
        _ => &t.trace,
    }
}

/// The broker's hop (see [`broker_trace`]).
pub fn target_hop_of(t: &LiveTrace) -> Option<u8> {
    broker_trace(t).target_hop
}

/// The path the analysis uses: the hops of [`broker_trace`].
pub fn path_of_trace(t: &LiveTrace) -> Path {
    let chosen = broker_trace(t);
    Path {
        source: PathSource::PathproofTrace,
        target: Some(chosen.target),
        target_hop: chosen.target_hop,
        hops: chosen.hops.iter().map(|h| h.path_hop()).collect(),
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

enum HostPort {
    Addr(SocketAddr),
    Name(String, u16),
}

/// `192.0.2.1`, `192.0.2.1:1123`, `[2001:db8::1]:123`, `2001:db8::1`,
/// `ntp.example` or `ntp.example:1123`.
fn parse_host_port(s: &str, default_port: u16) -> HostPort {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return HostPort::Addr(a);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return HostPort::Addr(SocketAddr::new(ip, default_port));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => HostPort::Name(host.to_string(), p),
            Err(_) => HostPort::Name(s.to_string(), default_port),
        },
        _ => HostPort::Name(s.to_string(), default_port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let a = |s| match parse_host_port(s, 123) {
            HostPort::Addr(a) => a.to_string(),
            HostPort::Name(n, p) => format!("name {n} {p}"),
        };
        assert_eq!(a("192.0.2.1"), "192.0.2.1:123");
        assert_eq!(a("192.0.2.1:1123"), "192.0.2.1:1123");
        assert_eq!(a("2001:db8::1"), "[2001:db8::1]:123");
        assert_eq!(a("[2001:db8::1]:9"), "[2001:db8::1]:9");
        assert_eq!(a("ntp.example"), "name ntp.example 123");
        assert_eq!(a("ntp.example:1123"), "name ntp.example 1123");
    }

    #[test]
    fn default_target_is_the_cloud_locator() {
        let c = CheckConfig::default();
        assert_eq!(c.target_list(), ["co2br.prod.zpath.net"]);
        let c = CheckConfig {
            cloud: "zpatwo.net.".into(),
            ..CheckConfig::default()
        };
        assert_eq!(c.target_list(), ["co2br.zpatwo.net"]);
    }
}
