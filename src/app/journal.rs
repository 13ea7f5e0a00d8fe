//! `pathproof journal`: read the connector's journal (a file or stdin),
//! judge it.

use crate::analysis::{JournalJudgement, judge_journal};
use crate::journal::{Journal, JournalError, JournalOptions, read_journal};
use std::io::BufReader;
use std::path::PathBuf;

/// What `pathproof journal` was asked to do.
#[derive(Clone, Debug)]
pub struct JournalJob {
    /// The journal dump, `-` for stdin.
    pub input: PathBuf,
    pub options: JournalOptions,
}

/// The result of `pathproof journal`.
pub struct JournalReport {
    pub file: String,
    pub journal: Journal,
    pub judgement: JournalJudgement,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct JournalJobError {
    pub path: String,
    pub source: JournalError,
}

/// Reads and judges a journal.
pub fn run_journal(job: JournalJob) -> Result<JournalReport, JournalJobError> {
    let shown = job.input.display().to_string();
    let err = |source: JournalError| JournalJobError {
        path: shown.clone(),
        source,
    };
    let journal = if shown == "-" {
        read_journal(std::io::stdin().lock(), &job.options)
    } else {
        let f = std::fs::File::open(&job.input).map_err(|e| err(JournalError::Io(e)))?;
        read_journal(BufReader::with_capacity(1 << 16, f), &job.options)
    }
    .map_err(err)?;
    let judgement = judge_journal(&journal);
    Ok(JournalReport {
        file: shown,
        journal,
        judgement,
    })
}
