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
    ("client CPU per 1000-token send (gcm-hyper / hyper+serde client)", "e2e-client-cpu/gcm-hyper/1000-tokens", "e2e-client-cpu/baseline/1000-tokens", "time"),
    ("client CPU per 1-token send (gcm-hyper / hyper+serde client)", "e2e-client-cpu/gcm-hyper/1-tokens", "e2e-client-cpu/baseline/1-tokens", "time"),
    ("v1 client CPU per 1000-message fan-out (FcmClient / the same on hyper-util's pool)", "v1-client-cpu/fcm-hyper+gcm-mock/1000-tokens", "v1-client-cpu/fcm-hyper-on-hyper-util+gcm-mock/1000-tokens", "time"),
    ("v1 client CPU per 1000 messages to the fixed server (FcmClient / hyper-util+serde client)", "v1-client-cpu/fcm-hyper+fixed-server/1000-tokens", "v1-client-cpu/baseline-pair/1000-tokens", "time"),
    ("v1 client CPU per 1000 messages to the fixed server (FcmClient / h2+serde client)", "v1-client-cpu/fcm-hyper+fixed-server/1000-tokens", "v1-client-cpu/raw-h2/1000-tokens", "time"),
    ("v1 client CPU, one-message fan-out / legacy 1-token send", "v1-client-cpu/fcm-hyper+gcm-mock/1-tokens", "v1-client-cpu/legacy-gcm-hyper+gcm-mock_1-tokens", "time"),
    ("mock engine, 1000-token JSON send (no IO)", "engine/json-1000-tokens", None, "time"),
    ("mock engine, 1-token JSON send (no IO)", "engine/json-1-tokens", None, "time"),
]


def run_ns(bench):
    """Each run's median, in run order (None where a run is missing)."""
    values = []
    for i in range(1, RUNS + 1):
        path = ROOT / bench / f"run{i}" / "estimates.json"
        values.append(json.loads(path.read_text())["median"]["point_estimate"] if path.exists() else None)
    return values


def median(values):
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def show(ns, kind):
    if ns is None:
        return "—"
    if kind == "rate":
        return f"{1e9 / ns:,.0f}/s"
    return f"{ns / 1000:,.1f} µs" if ns >= 1000 else f"{ns:,.0f} ns"


def ratio(a, b, kind):
    """ours against the baseline of the same run."""
    if a is None or b is None:
        return None
    return a / b if kind == "time" else b / a


def show_ratio(r, kind):
    return f"{r:.2f} ×" if kind == "time" else f"{100 * r:.0f} %"


print("| what | ours | baseline | ratio (median of the runs' ratios) | each run | spread |")
print("|---|---|---|---|---|---|")
for what, ours, base, kind in ROWS:
    a_runs = run_ns(ours)
    if median(a_runs) is None:
        continue
    b_runs = run_ns(base) if base else [None] * RUNS
    ratios = [ratio(a, b, kind) for a, b in zip(a_runs, b_runs)]
    present = [r for r in ratios if r is not None]
    if present:
        mid = statistics.median(present)
        each = ", ".join(show_ratio(r, kind) for r in present)
        spread = f"±{100 * (max(present) - min(present)) / 2 / mid:.0f} %"
        cells = f"{show_ratio(mid, kind)} | [{each}] | {spread}"
    else:
        cells = "— | — | —"
    print(f"| {what} | {show(median(a_runs), kind)} | {show(median(b_runs), kind)} | {cells} |")
