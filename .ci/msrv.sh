#!/usr/bin/env bash
# The declared MSRV is true: no locked dependency that the crates, their tests or benches
# build declares a newer `rust-version`. (This machine has one toolchain; clippy's
# `incompatible_msrv` lint checks our own code against the same declared version.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --locked | python3 -c '
import json, sys
meta = json.load(sys.stdin)
def version(text):
    parts = [int(part) for part in text.split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))
members = [p for p in meta["packages"] if p["id"] in meta["workspace_members"]]
declared = min(version(p["rust_version"]) for p in members)
resolved = {node["id"] for node in meta["resolve"]["nodes"]}
newer = [
    (p["name"], p["version"], p["rust_version"])
    for p in meta["packages"]
    if p["id"] in resolved and p.get("rust_version") and version(p["rust_version"]) > declared
]
shown = ".".join(map(str, declared))
if newer:
    for name, ver, rust in sorted(newer):
        print(f"{name} {ver} needs Rust {rust}, above the declared {shown}")
    sys.exit(1)
print(f"msrv: every locked dependency builds with Rust {shown}")
'
