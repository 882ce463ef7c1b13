#!/usr/bin/env bash
# The crates as crates.io would serve them: `cargo package`, then, in a fresh workspace made
# of the extracted tarballs only, run their tests, build their benches, and compile and run
# every README snippet in a new crate that depends on them. A test or bench that reads a
# file outside its crate fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=$(cargo metadata --no-deps --format-version 1 --locked |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "gcm-proto"))')

# cargo package verifies each crate against the others extracted into the registry cache,
# and reuses an earlier extraction of the same version: drop ours (they are never
# downloaded) so that it verifies this tree.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/gcm-{proto,mock,hyper,queue}-[0-9]*
cargo package --workspace --exclude gcm-examples --locked  # the examples are not published

# A fixed place: tests bake CARGO_MANIFEST_DIR in, and the shared target directory would
# reuse a test built in another place.
work=$root/target/packaged-workspace
rm -rf "$work"
mkdir -p "$work"
for crate in gcm-proto gcm-mock gcm-hyper gcm-queue; do
  tar -xzf "target/package/$crate-$version.crate" -C "$work"
done
# Extracted files keep the tarball's times: make them newer than any earlier build.
find "$work" -type f -exec touch {} +
mkdir -p "$work/readme/src"
cp README.md "$work/readme/README.md"
cat >"$work/readme/Cargo.toml" <<TOML
[package]
name = "readme"
version = "0.0.0"
edition = "2024"
publish = false

# The examples crate's dependencies: the same feature set as the repository's workspace, so
# that the shared target directory's dependencies are reused.
[dev-dependencies]
gcm-proto = "$version"
gcm-hyper = "$version"
gcm-mock = { version = "$version", default-features = false }
clap = { version = "4", default-features = false, features = ["std", "derive", "help", "usage", "error-context", "env"] }
rand = { version = "0.10", default-features = false, features = ["std", "std_rng", "sys_rng", "thread_rng"] }
serde = { version = "1", features = ["derive", "rc"] }
serde_json = "1"
tokio = { version = "1", default-features = false, features = ["macros", "rt-multi-thread", "time"] }
ureq = { version = "3", default-features = false, features = ["rustls"] }
TOML
cat >"$work/readme/src/lib.rs" <<RUST
//! Every README snippet, against the packaged crates.
#[doc = include_str!("../README.md")]
pub mod readme {}
#[doc = include_str!("../../gcm-proto-$version/README.md")]
pub mod gcm_proto {}
#[doc = include_str!("../../gcm-hyper-$version/README.md")]
pub mod gcm_hyper {}
#[doc = include_str!("../../gcm-mock-$version/README.md")]
pub mod gcm_mock {}
RUST
cat >"$work/Cargo.toml" <<TOML
[workspace]
resolver = "3"
members = ["gcm-proto-$version", "gcm-mock-$version", "gcm-hyper-$version", "gcm-queue-$version", "readme"]

[profile.bench]
debug = true

[patch.crates-io]
gcm-proto = { path = "gcm-proto-$version" }
gcm-mock = { path = "gcm-mock-$version" }
gcm-hyper = { path = "gcm-hyper-$version" }
gcm-queue = { path = "gcm-queue-$version" }
TOML
# The repository's lockfile, so that the tarballs are tested with the same versions.
cp Cargo.lock "$work/Cargo.lock"

cd "$work"
export CARGO_TARGET_DIR="$root/target"  # shared with the workspace: dependencies built once
# The longest tests read no file and ran in the tests step already (a killed worker, FCM
# frozen for 25 s, the 100 000-token campaign): skipped here, where CI's time is short.
cargo test --workspace --offline -- --skip survives_a_killed_worker --skip fcm_frozen_25_s --skip a_campaign_to_100_000
cargo check --workspace --offline --benches  # compile-time paths; the workspace builds them in release
echo "packaged crates: tests, benches and README snippets pass from the tarballs"
