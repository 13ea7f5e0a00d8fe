//! `pathproof pcap FILE... | DIR`: many captures, analysed in parallel over
//! the cores, each exactly as a single `pcap FILE` would be.

use super::{JobError, PcapJob, PcapReport, Watch, run_pcap_watched};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Why the inputs could not be listed (bad input: exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("cannot read directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: no capture (pcap, pcapng or gzip) in this directory or below")]
    Empty { path: String },
}

/// The captures to analyse: files as given, and in each directory (and
/// below, symbolic links to directories not followed) the files that start
/// like a capture: pcap (either byte order, micro- or nanoseconds), pcapng
/// or gzip. Directories are listed in name order.
pub fn list_inputs(args: &[PathBuf]) -> Result<Vec<PathBuf>, ListError> {
    let mut out = Vec::new();
    for a in args {
        if a.is_dir() {
            let before = out.len();
            walk(a, &mut out)?;
            if out.len() == before {
                return Err(ListError::Empty {
                    path: a.display().to_string(),
                });
            }
        } else {
            out.push(a.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ListError> {
    let err = |source| ListError::Dir {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(err)?
        .collect::<Result<_, _>>()
        .map_err(err)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Ok(kind) = e.file_type() else { continue };
        let path = e.path();
        if kind.is_dir() {
            walk(&path, out)?;
        } else if (kind.is_file() || (kind.is_symlink() && path.is_file()))
            && looks_like_capture(&path)
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The first four bytes are a pcap, pcapng or gzip magic.
pub fn looks_like_capture(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    read.is_ok()
        && (magic[..2] == [0x1f, 0x8b]
            || matches!(
                u32::from_le_bytes(magic),
                0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 | 0x0a0d_0d0a
            ))
}

/// One capture's outcome.
pub struct Outcome {
    pub file: PathBuf,
    pub result: Result<PcapReport, JobError>,
}

/// Analyses every file with `job`'s path and options, `workers` at a time
/// (each analysis is itself two threads, decoding and judging), and hands
/// each outcome to `done` as it is ready, from the worker's thread, in no
/// particular order; `done` returns what is kept of it. Once `stop` is set,
/// files not started yet are left out and the running ones end where they
/// are (their reports cover what was read). Returns the kept values in the
/// order of `files`, `None` for those never started.
pub fn run_many<T: Send>(
    files: &[PathBuf],
    job: &PcapJob,
    workers: usize,
    stop: &Arc<AtomicBool>,
    done: &(dyn Fn(usize, Outcome) -> T + Sync),
) -> Vec<Option<T>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<T>>> = files.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, files.len().max(1)) {
            scope.spawn(|| {
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(i) else { return };
                    let mut one = job.clone();
                    one.input = file.clone();
                    let watch = Watch {
                        stop: Some(stop),
                        ..Watch::default()
                    };
                    let result = run_pcap_watched(one, watch);
                    let kept = done(
                        i,
                        Outcome {
                            file: file.clone(),
                            result,
                        },
                    );
                    *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(kept);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|s| s.into_inner().unwrap_or_else(|p| p.into_inner()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_keep_only_captures_in_name_order() {
        let dir = std::env::temp_dir().join(format!("pathproof-many-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("b.pcap"), [0xd4, 0xc3, 0xb2, 0xa1, 0, 0]).unwrap();
        std::fs::write(dir.join("a.txt"), b"hello").unwrap();
        std::fs::write(dir.join("sub/c.gz"), [0x1f, 0x8b, 8, 0]).unwrap();
        std::fs::write(dir.join("a.pcapng"), [0x0a, 0x0d, 0x0d, 0x0a]).unwrap();
        std::fs::write(dir.join("short"), [0x0a]).unwrap();
        let got = list_inputs(std::slice::from_ref(&dir)).unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.pcapng", "b.pcap", "sub/c.gz"]);
        std::fs::remove_dir_all(dir.join("sub")).unwrap();
        for f in ["a.pcapng", "b.pcap"] {
            std::fs::remove_file(dir.join(f)).unwrap();
        }
        assert!(matches!(
            list_inputs(std::slice::from_ref(&dir)),
            Err(ListError::Empty { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
