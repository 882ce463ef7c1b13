"""Prints the BENCHMARKS.md rows from criterion's saved baselines run1..runN."""
import json
import statistics
import sys
from pathlib import Path

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
ROOT = Path("target/criterion")

# (what, ours, baseline, kind): "time" rows compare times (ratio = ours / baseline);
# "rate" rows compare throughput (ratio = baseline time / our time).
ROWS = [
    ("encode 1000-token request", "encode/gcm-proto/1000", "encode/baseline/1000", "time"),
    ("encode 100-token request", "encode/gcm-proto/100", "encode/baseline/100", "time"),
    ("encode 1-token request", "encode/gcm-proto/1", "encode/baseline/1", "time"),
    ("encode plain-text unicast", "encode/gcm-proto_plain-text", None, "time"),
    ("decode 1000-result response", "decode/gcm-proto/1000", "decode/baseline/1000", "time"),
    ("decode 1-result response", "decode/gcm-proto/1", "decode/baseline/1", "time"),
    ("decode plain text", "decode/gcm-proto_plain-text", None, "time"),
    ("e2e 1000 tokens, 1 in flight (gcm-hyper + gcm-mock)", "e2e/gcm-hyper+gcm-mock/1000-tokens-1-in-flight", "e2e/baseline-pair/1000-tokens-1-in-flight", "rate"),
    ("e2e 1000 tokens, 1 in flight (gcm-hyper + fixed server)", "e2e/gcm-hyper+fixed-server/1000-tokens-1-in-flight", "e2e/baseline-pair/1000-tokens-1-in-flight", "rate"),
    ("e2e 1 token, 1 in flight (gcm-hyper + gcm-mock)", "e2e/gcm-hyper+gcm-mock/1-tokens-1-in-flight", "e2e/baseline-pair/1-tokens-1-in-flight", "rate"),
    ("e2e 1 token, 1 in flight (gcm-hyper + fixed server)", "e2e/gcm-hyper+fixed-server/1-tokens-1-in-flight", "e2e/baseline-pair/1-tokens-1-in-flight", "rate"),
    ("e2e 1 token, 16 in flight (gcm-hyper + gcm-mock)", "e2e/gcm-hyper+gcm-mock/1-tokens-16-in-flight", "e2e/baseline-pair/1-tokens-16-in-flight", "rate"),
    ("e2e 1 token, 16 in flight (gcm-hyper + fixed server)", "e2e/gcm-hyper+fixed-server/1-tokens-16-in-flight", "e2e/baseline-pair/1-tokens-16-in-flight", "rate"),
    ("gcm-mock, 1-token bodies, 16 connections", "load-16-connections/gcm-mock/1-tokens", "load-16-connections/minimal-server/1-tokens", "rate"),
    ("gcm-mock, 1000-token bodies, 16 connections", "load-16-connections/gcm-mock/1000-tokens", "load-16-connections/minimal-server/1000-tokens", "rate"),
    ("v1 encode 1 message", "v1-codec/gcm-proto_encode", "v1-codec/baseline_encode", "time"),
    ("v1 decode an UNREGISTERED error", "v1-codec/gcm-proto_decode-error", "v1-codec/baseline_decode-error", "time"),
    ("v1 multicast encode, 1000 tokens", "v1-codec/gcm-proto_multicast-encode-1000", "v1-codec/baseline_encode-1000", "time"),
    ("v1 multicast encode beside the old per-token encode", "v1-codec/gcm-proto_multicast-encode-1000", "v1-codec/fan-out_encode-1000", "time"),
    ("v1 multicast to 1000 tokens (FcmClient + gcm-mock)", "v1/fcm-hyper+gcm-mock/1000-tokens", "v1/baseline-pair/1000-tokens", "rate"),
    ("v1 multicast to 1000 tokens (FcmClient + fixed server)", "v1/fcm-hyper+fixed-server/1000-tokens", "v1/baseline-pair/1000-tokens", "rate"),
    ("v1 multicast to 100 tokens (FcmClient + gcm-mock)", "v1/fcm-hyper+gcm-mock/100-tokens", "v1/baseline-pair/100-tokens", "rate"),
    ("v1 multicast to 100 tokens (FcmClient + fixed server)", "v1/fcm-hyper+fixed-server/100-tokens", "v1/baseline-pair/100-tokens", "rate"),
    ("mock engine, 1000-token JSON send (no IO)", "engine/json-1000-tokens", None, "time"),
    ("mock engine, 1-token JSON send (no IO)", "engine/json-1-tokens", None, "time"),
]


def median_ns(bench):
    values = []
    for i in range(1, RUNS + 1):
        path = ROOT / bench / f"run{i}" / "estimates.json"
        if path.exists():
            values.append(json.loads(path.read_text())["median"]["point_estimate"])
    return statistics.median(values) if values else None


def show(ns, kind):
    if ns is None:
        return "—"
    if kind == "rate":
        return f"{1e9 / ns:,.0f}/s"
    return f"{ns / 1000:,.1f} µs" if ns >= 1000 else f"{ns:,.0f} ns"


print("| what | ours | baseline | ratio |")
print("|---|---|---|---|")
for what, ours, base, kind in ROWS:
    a, b = median_ns(ours), median_ns(base) if base else None
    if a is None:
        continue
    if b is None:
        ratio = "—"
    elif kind == "time":
        ratio = f"{a / b:.2f} ×"
    else:
        ratio = f"{100 * b / a:.0f} %"
    print(f"| {what} | {show(a, kind)} | {show(b, kind)} | {ratio} |")
