//! A live trace: opens the sockets (raw, or the unprivileged ICMP fallback),
//! runs the trace and its ICMP control trace side by side and writes
//! `--save` files. What they show is judged by the analysis
//! (`crate::analysis::judge_trace`). The binary's `trace` command is a thin layer
//! over [`run_live`].

use super::socket::{Access, LiveNetwork, PING_LIMITATIONS, PingNetwork, RawNetwork};
use super::{Progress, Recorded, Trace, TraceConfig, TraceError, TraceProtocol, Tracer, socket};
use crate::capture::{PcapWriter, TsPrecision};
use std::io::BufWriter;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// pcap link type of `--save` files: raw IP (LINKTYPE_RAW).
pub const LINKTYPE_RAW: u32 = 101;

/// What to run.
#[derive(Clone, Debug)]
pub struct LiveJob {
    /// The trace under study.
    pub config: TraceConfig,
    /// Also run an ICMP control trace to the same target, in parallel (the
    /// TCP default; ignored for ICMP traces), with half the rounds twice as
    /// far apart (the same duration, half the ICMP load on the routers).
    pub control: bool,
    /// Write every probe and answer to this pcap (the control trace's to
    /// [`control_save_path`]).
    pub save: Option<PathBuf>,
    /// Set from outside (SIGINT, SIGTERM): no further round starts, and the
    /// result is what was measured until then.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// The result of a live trace.
pub struct LiveTrace {
    pub trace: Trace,
    /// The ICMP control trace, when one ran.
    pub control: Option<Trace>,
    pub access: Access,
    /// What this run could not see (unprivileged fallback).
    pub limitations: Vec<&'static str>,
    /// Files written by `--save`.
    pub saved: Vec<PathBuf>,
    /// Problems that did not stop the trace (e.g. the control trace failed).
    pub warnings: Vec<String>,
}

/// Why a live trace could not run.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "{protocol} probes need raw sockets, which this process may not open ({source}): \
         run it as root (sudo pathproof trace ...) or give the binary the capability once: \
         sudo setcap cap_net_raw+ep \"$(command -v pathproof)\"{hint}"
    )]
    NoPrivilege {
        protocol: TraceProtocol,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error(
        "ICMP probes need raw sockets or unprivileged ICMP sockets, and neither may be opened \
         (raw: {raw}; ICMP datagram: {ping}): run as root (sudo), or give the binary the \
         capability (sudo setcap cap_net_raw+ep \"$(command -v pathproof)\"), or allow your \
         group unprivileged ICMP sockets (sudo sysctl -w net.ipv4.ping_group_range=\"0 2147483647\")"
    )]
    NoIcmpAccess {
        raw: std::io::Error,
        ping: std::io::Error,
    },
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error("cannot write {path}: {source}")]
    Save {
        path: String,
        source: std::io::Error,
    },
}

impl LiveError {
    /// A missing privilege (rather than a failure of the trace itself).
    pub fn is_privilege(&self) -> bool {
        matches!(
            self,
            LiveError::NoPrivilege { .. } | LiveError::NoIcmpAccess { .. }
        )
    }
}

fn io_source(e: TraceError) -> std::io::Error {
    match e {
        TraceError::Io { source, .. } => source,
        other => std::io::Error::other(other.to_string()),
    }
}

/// Where `--save FILE` puts the control trace: `FILE` with `.icmp-control`
/// before its extension (`x.pcap` → `x.icmp-control.pcap`).
pub fn control_save_path(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match file.extension() {
        Some(ext) => format!("{stem}.icmp-control.{}", ext.to_string_lossy()),
        None => format!("{stem}.icmp-control.pcap"),
    };
    file.with_file_name(name)
}

/// Writes `packets` as a raw-IP pcap with nanosecond timestamps; frame n is
/// `packets[n − 1]`, as the trace's frame numbers say.
pub fn write_pcap(path: &Path, packets: &[Recorded]) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut w = PcapWriter::new(BufWriter::new(file), LINKTYPE_RAW, 0, TsPrecision::Nano)?;
    for p in packets {
        let ts = i64::try_from(p.at.as_nanos()).unwrap_or(i64::MAX);
        w.write_frame(ts, p.bytes.len() as u32, &p.bytes)?;
    }
    w.flush()?;
    w.into_inner()
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
}

/// Opens the network for `config`: raw sockets, or for ICMP without the
/// privilege, an unprivileged ICMP socket (whose echo id may differ from
/// `config.ident`: it is written back).
fn open_network(
    config: &mut TraceConfig,
    source: IpAddr,
    clock: super::SystemClock,
) -> Result<LiveNetwork, LiveError> {
    match RawNetwork::open(config.target, source, config.protocol, clock) {
        Ok(n) => Ok(LiveNetwork::Raw(n)),
        Err(e) if socket::is_permission_error(&e) => match config.protocol {
            TraceProtocol::Icmp => {
                match PingNetwork::open(config.target, source, config.ident, clock) {
                    Ok(n) => {
                        config.ident = n.ident();
                        Ok(LiveNetwork::Ping(n))
                    }
                    Err(p) => Err(LiveError::NoIcmpAccess {
                        raw: io_source(e),
                        ping: io_source(p),
                    }),
                }
            }
            protocol => Err(LiveError::NoPrivilege {
                protocol,
                source: io_source(e),
                hint: "; without privileges, --icmp traces through unprivileged ICMP sockets",
            }),
        },
        Err(e) => Err(e.into()),
    }
}

/// Runs the job. `on_round` sees the main trace's progress before each round
/// after the first and once at the end (for a live display).
pub fn run_live(job: LiveJob, on_round: impl FnMut(&Progress<'_>)) -> Result<LiveTrace, LiveError> {
    let mut config = job.config;
    config.validate()?;
    // The --save files are created before the first probe: a path that
    // cannot be written is said at once, not after the whole trace.
    if let Some(path) = &job.save {
        let mut files = vec![path.clone()];
        if job.control && config.protocol != TraceProtocol::Icmp {
            files.push(control_save_path(path));
        }
        for f in files {
            std::fs::File::create(&f).map_err(|source| LiveError::Save {
                path: f.display().to_string(),
                source,
            })?;
        }
    }
    let source = match config.source {
        Some(s) => s,
        None => socket::source_for(config.target)?,
    };
    config.source = Some(source);
    let clock = super::SystemClock::new();
    let net = open_network(&mut config, source, clock)?;
    let access = net.access();
    let mut warnings = Vec::new();
    let control = (job.control && config.protocol != TraceProtocol::Icmp).then(|| {
        // Half the rounds, twice as far apart: the routers' own ICMP answers
        // are what both traces read, and routers ration them (Linux: about
        // one per second per destination after a burst of 6); a control
        // trace at the full rate would double that load and show as loss
        // in both traces.
        let mut c = config.clone();
        c.protocol = TraceProtocol::Icmp;
        c.rounds = config.rounds.div_ceil(2);
        c.interval = config
            .interval
            .saturating_mul(2)
            .min(Duration::from_secs(3600));
        c
    });
    // Raw access was granted for the main trace, so the control's opens too.
    let control_net = match &control {
        Some(c) => match RawNetwork::open(c.target, source, c.protocol, clock) {
            Ok(n) => Some(n),
            Err(e) => {
                warnings.push(format!("the ICMP control trace could not start: {e}"));
                None
            }
        },
        None => None,
    };
    let planned_rounds = config.rounds;
    let tracer = Tracer::new(config, net, clock)?.with_stop(job.stop.clone());
    let (trace, control) = std::thread::scope(|s| {
        let handle = match (control, control_net) {
            (Some(c), Some(n)) => {
                let stop = job.stop.clone();
                Some(s.spawn(move || Tracer::new(c, n, clock)?.with_stop(stop).run()))
            }
            _ => None,
        };
        let trace = tracer.run_with(on_round);
        let control = handle.map(|h| match h.join() {
            Ok(r) => r,
            Err(_) => Err(TraceError::Config {
                field: "control",
                reason: "the control trace panicked",
            }),
        });
        (trace, control)
    });
    let trace = trace?;
    if job
        .stop
        .as_ref()
        .is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed))
    {
        warnings.push(format!(
            "interrupted (SIGINT or SIGTERM) after {} of {planned_rounds} rounds: the report covers those",
            trace.rounds.len()
        ));
    }
    let control = match control {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            warnings.push(format!("the ICMP control trace failed: {e}"));
            None
        }
        None => None,
    };
    let mut saved = Vec::new();
    if let Some(path) = &job.save {
        let save_err = |p: &Path| {
            let path = p.display().to_string();
            move |source| LiveError::Save { path, source }
        };
        write_pcap(path, &trace.packets).map_err(save_err(path))?;
        saved.push(path.clone());
        if let Some(c) = &control {
            let cpath = control_save_path(path);
            write_pcap(&cpath, &c.packets).map_err(save_err(&cpath))?;
            saved.push(cpath);
        }
    }
    let limitations = match access {
        Access::Raw => Vec::new(),
        Access::UnprivilegedIcmp => PING_LIMITATIONS.to_vec(),
    };
    Ok(LiveTrace {
        trace,
        control,
        access,
        limitations,
        saved,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_file_name() {
        assert_eq!(
            control_save_path(Path::new("/tmp/x.pcap")),
            PathBuf::from("/tmp/x.icmp-control.pcap")
        );
        assert_eq!(
            control_save_path(Path::new("trace")),
            PathBuf::from("trace.icmp-control.pcap")
        );
    }
}
