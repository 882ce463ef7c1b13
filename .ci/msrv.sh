#!/usr/bin/env bash
# Each crate's declared MSRV is true: no locked dependency that it, its tests or its benches
# build declares a newer `rust-version`. (This machine has one toolchain; clippy's
# `incompatible_msrv` lint checks our own code against the same declared versions.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --locked | python3 -c '
import json, sys
meta = json.load(sys.stdin)
def version(text):
    parts = [int(part) for part in text.split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))
packages = {p["id"]: p for p in meta["packages"]}
nodes = {node["id"]: node for node in meta["resolve"]["nodes"]}
failed = False
for member in meta["workspace_members"]:
    declared = version(packages[member]["rust_version"])
    # Everything the member builds: its dependencies of every kind, then theirs (normal and build).
    seen, todo = set(), [dep["pkg"] for dep in nodes[member]["deps"]]
    while todo:
        pkg = todo.pop()
        if pkg in seen or pkg in meta["workspace_members"]:
            continue
        seen.add(pkg)
        todo += [dep["pkg"] for dep in nodes[pkg]["deps"]
                 if any(kind["kind"] in (None, "build") for kind in dep["dep_kinds"])]
    shown, crate = ".".join(map(str, declared)), packages[member]["name"]
    newer = sorted((packages[p]["name"], packages[p]["version"], packages[p]["rust_version"]) for p in seen
                   if packages[p].get("rust_version") and version(packages[p]["rust_version"]) > declared)
    for name, ver, rust in newer:
        print(f"{crate}: {name} {ver} needs Rust {rust}, above the declared {shown}")
        failed = True
    if not newer:
        print(f"msrv: {crate} and every locked dependency build with Rust {shown}")
sys.exit(1 if failed else 0)
'
