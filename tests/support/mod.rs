//! Shared helpers for the integration tests.
//!
//! Each test file that needs them says `mod support;`. Not every test file
//! uses every helper, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod lab;
pub mod wire;
