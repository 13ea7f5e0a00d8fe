//! Rendering of an analysis: human text and JSON.
