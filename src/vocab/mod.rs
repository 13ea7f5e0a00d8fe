//! The vocabulary every part of pathproof speaks: findings, severities,
//! confidences, hop estimates, verdict classes, exit codes and the way dates
//! and durations are written.
//!
//! This module sits at the bottom: it imports nothing of ours, so sources
//! (capture, trace, check), the analysis and the reports may all use it
//! without import cycles. It decides nothing; the analysis judges.

mod egress;
mod finding;
mod hop;
mod kind;
pub mod time;
mod verdict;

pub use egress::{CheckStatus, EgressCheck, Via};
pub use finding::{Confidence, Finding, MAX_FRAMES_LISTED, Severity, frame_filter};
pub use hop::HopEstimate;
pub use kind::FindingKind;
pub use verdict::{
    EXIT_BAD_INPUT, EXIT_FAILURE_FOUND, EXIT_INCONCLUSIVE, EXIT_NO_FAILURE, RANKING, Verdict,
    VerdictClass,
};

/// The organisation the broker certificate's issuer must name unless the
/// user says otherwise (`--expect-issuer`).
pub const DEFAULT_ISSUER: &str = "Zscaler";
