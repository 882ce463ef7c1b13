//! Runnable examples live beside this file; see `cargo run --example quickstart`.
//!
//! The READMEs are included below as documentation, so that `cargo test` compiles and
//! runs every Rust snippet they show: a README cannot drift from the API.

// The READMEs' links are relative paths for GitHub and crates.io, not Rust items.
#![allow(rustdoc::broken_intra_doc_links)]

#[doc = include_str!("../../README.md")]
pub mod readme {}

#[doc = include_str!("../../gcm-proto/README.md")]
pub mod gcm_proto_readme {}

#[doc = include_str!("../../gcm-hyper/README.md")]
pub mod gcm_hyper_readme {}

#[doc = include_str!("../../gcm-mock/README.md")]
pub mod gcm_mock_readme {}
