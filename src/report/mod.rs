//! Rendering of an analysis: human text and JSON. Output types live here,
//! apart from the analysis types, so the JSON schema is one documented place.

pub mod check;
pub mod egress;
pub mod html;
pub mod journal;
pub mod json;
pub mod many;
pub mod text;
pub mod trace;
