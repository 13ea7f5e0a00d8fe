//! pathproof: find the failing hop between a ZPA App Connector and its cloud,
//! and prove it.
//!
//! The crate is one analysis engine fed by two sources: capture files
//! ([`capture`]) and, later, live probes. Both produce [`packet::Packet`]s
//! through the single wire decoder in [`packet`]; [`analysis`] turns packets
//! plus an optional [`path::Path`] into findings and one verdict;
//! [`report`] renders it. I/O stays at the edges (`capture`, `main.rs`,
//! and for live traces `trace::socket` and `trace::live`).
//!
//! No `unsafe` anywhere: the raw-socket code goes through socket2 and nix.

#![forbid(unsafe_code)]

pub mod analysis;
pub mod app;
pub mod capture;
pub mod check;
pub mod egress;
pub mod journal;
pub mod packet;
pub mod path;
pub mod report;
pub mod trace;
pub mod vocab;
