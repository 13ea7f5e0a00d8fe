//! Parser for mtr output: report text (`mtr -r`, `-rw`, `-rwbzc N`, `-e`) and
//! `mtr --json`. Input is untrusted text from customers.

use super::Path;

/// Why an mtr report could not be read; says which line and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum MtrParseError {
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("mtr JSON: {0}")]
    Json(String),
    #[error("no hops found: this does not look like an mtr report")]
    NoHops,
}

/// Parses mtr output, text or JSON (detected by the first non-blank character).
pub fn parse(_input: &str) -> Result<Path, MtrParseError> {
    todo!("mtr parser")
}
