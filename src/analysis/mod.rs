//! Analysis: pure functions from packets and a path to findings and a verdict.
