#!/usr/bin/env bash
# pathproof pcap against tcpdump's RST filter on the real-traffic captures
# of bench/real-capture.sh (issue 17). On demand; never part of the tests.
#
#   bench/real.sh                       # root; builds them first if missing
#   BENCH_ROUNDS=2 BENCH_RUNS=1 bench/real.sh
#
# Per round, for each capture in turn (Ethernet pcap, pcapng, SLL2 pcap; page
# cache warmed with `cat` first), BENCH_RUNS runs each of
#   cat F
#   pathproof pcap F --json
#   tcpdump -nr F 'tcp[tcpflags] & tcp-rst != 0'
# under /usr/bin/time (wall, user, sys, peak RSS of every run); medians over
# all rounds, so that a machine whose speed drifts during the run treats all
# tools alike. Then pathproof once on the 500 MB, 1 GB and full Ethernet
# captures (same traffic, prefixes of each other) for its peak RSS growth.
# Writes bench/real-results-<date>.md (and stdout); raw rows and reports in
# $BENCH_DIR/real/raw/.
#
# Environment:
#   BENCH_DIR        default /tmp/pathproof-bench (captures in $BENCH_DIR/real)
#   BENCH_REAL_MB    size of the captures (default 2000), passed to real-capture.sh
#   BENCH_ROUNDS     rounds (default 4)
#   BENCH_RUNS       runs per command, file and round (default 2)
#   BENCH_PATHPROOF  binary to time instead of the freshly built one
#   BENCH_OUT        results file (default bench/real-results-$(date +%F).md)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
BENCH_DIR=${BENCH_DIR:-/tmp/pathproof-bench}
REAL=${BENCH_REAL_DIR:-$BENCH_DIR/real}
ROUNDS=${BENCH_ROUNDS:-4}
RUNS=${BENCH_RUNS:-2}
OUT=${BENCH_OUT:-$repo/bench/real-results-$(date +%F).md}
TARGET=${CARGO_TARGET_DIR:-$repo/target}
FILES="real.pcap real.pcapng real_sll.pcap"

BENCH_DIR=$BENCH_DIR bench/real-capture.sh
cargo build --release --quiet --bin pathproof
PP=${BENCH_PATHPROOF:-$TARGET/release/pathproof}
raw=$REAL/raw
mkdir -p "$raw"
rm -f "$raw"/*

{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
  echo "loadavg_before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "pathproof: $PP ($(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo ?))"
  echo "tcpdump: $(tcpdump --version 2>&1 | head -1)"
  echo "busiest processes before the run:"
  ps -eo pcpu=,comm= --sort=-pcpu | head -5 | sed 's/^/  /'
} >"$raw/context.txt"

timed() { # timed TAG CMD...: appends "wall user sys rss_kb exit" to $raw/TAG
  /usr/bin/time -f '%e %U %S %M %x' -o "$raw/t" "${@:2}" >/dev/null 2>&1 || true
  tail -n 1 "$raw/t" >>"$raw/$1"
}

cd "$REAL"
for round in $(seq "$ROUNDS"); do
  for f in $FILES; do
    echo "== round $round: $f" >&2
    cat "$f" >/dev/null
    for _ in $(seq "$RUNS"); do
      timed "cat--$f" cat "$f"
      timed "pathproof--$f" "$PP" pcap "$f" --json
      timed "tcpdump--$f" tcpdump -nr "$f" 'tcp[tcpflags] & tcp-rst != 0'
    done
  done
done
for f in real-500.pcap real-1000.pcap real.pcap; do
  [[ -s $f ]] || continue
  echo "== growth: $f" >&2
  cat "$f" >/dev/null
  timed "growth--$f" "$PP" pcap "$f" --json
done
# Reports (not timed): verdict, flows, resets; tcpdump's reset count.
for f in $FILES; do
  "$PP" pcap "$f" --json >"$raw/report--$f.json" 2>/dev/null || true
  tcpdump -nr "$f" 'tcp[tcpflags] & tcp-rst != 0' 2>/dev/null | wc -l >"$raw/tcpdump-rsts--$f"
done
echo "loadavg_after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$raw/context.txt"

python3 - "$REAL" "$FILES" <<'PY' | tee "$OUT"
import json, os, statistics, sys
real, files = sys.argv[1], sys.argv[2].split()
raw = os.path.join(real, "raw")

def rows(tag):
    p = os.path.join(raw, tag)
    if not os.path.exists(p):
        return []
    out = []
    for line in open(p):
        parts = line.split()
        if len(parts) >= 4 and not line.startswith("Command"):
            out.append([float(x) for x in parts[:4]])
    return out

def stats(tag):
    r = rows(tag)
    if not r:
        return None
    wall = [x[0] for x in r]
    cpu = [x[1] + x[2] for x in r]
    return {"med": statistics.median(wall), "min": min(wall), "max": max(wall),
            "cpu": statistics.median(cpu), "rss": max(x[3] for x in r) / 1024, "n": len(r)}

print("# pathproof on the real-traffic captures (bench/real.sh)\n")
print("```")
print(open(os.path.join(raw, "context.txt")).read().rstrip())
print("```\n")
lab = json.load(open(os.path.join(real, "lab.json")))
print(f"Lab capture `lab-eth.pcap`: {lab['packets']:,} packets, {lab['tcp_streams']:,} TCP connections, "
      f"{lab['client_hellos']:,} ClientHellos; ServerHellos TLS 1.2 ECDSA {lab.get('server_hello_tls1.2_ecdsa', 0)}, "
      f"TLS 1.2 RSA {lab.get('server_hello_tls1.2_rsa', 0)}, TLS 1.3 ECDSA {lab.get('server_hello_tls1.3_ecdsa', 0)}, "
      f"TLS 1.3 RSA {lab.get('server_hello_tls1.3_rsa', 0)}; resets from the client {lab.get('rst_from_client', 0)}, "
      f"from the broker {lab.get('rst_from_server_ttl61', 0)}, forged by r2 {lab.get('rst_forged_by_r2_ttl63', 0)}; "
      f"{lab.get('dns_queries', 0)} DNS queries.\n")
print("| file | bytes | frames | copies | pathproof flows | pathproof resets | tcpdump resets | verdict |")
print("|---|---|---|---|---|---|---|---|")
for f in files:
    s = json.load(open(os.path.join(real, f + ".json")))
    try:
        r = json.load(open(os.path.join(raw, f"report--{f}.json")))
        flows, rsts = r["flows_total"], r["rsts_total"]
        verdict = f"{r['verdict']['class']} hop {r['verdict']['hop']}"
    except Exception:
        flows = rsts = verdict = "?"
    tr = open(os.path.join(raw, f"tcpdump-rsts--{f}")).read().strip()
    print(f"| {f} | {s['bytes']:,} | {s['frames']:,} | {s['full_copies']}{'+' if s['partial_copy'] else ''} "
          f"| {flows:,} | {rsts:,} | {int(tr):,} | {verdict} |")
print()
print("| file | pathproof wall median (min–max) | CPU | peak RSS | tcpdump wall median (min–max) | CPU | peak RSS | "
      "pathproof/tcpdump wall | CPU | cat |")
print("|---|---|---|---|---|---|---|---|---|---|")
for f in files:
    p, t, c = stats(f"pathproof--{f}"), stats(f"tcpdump--{f}"), stats(f"cat--{f}")
    if not p or not t:
        continue
    print(f"| {f} | {p['med']:.2f} s ({p['min']:.2f}–{p['max']:.2f}) | {p['cpu']:.2f} s | {p['rss']:.0f} MiB "
          f"| {t['med']:.2f} s ({t['min']:.2f}–{t['max']:.2f}) | {t['cpu']:.2f} s | {t['rss']:.0f} MiB "
          f"| {p['med'] / t['med']:.2f} | {p['cpu'] / t['cpu']:.2f} | {c['med']:.2f} s |")
print(f"\n(n = {stats('pathproof--' + files[0])['n']} runs per cell.)\n")
print("pathproof's peak RSS as the Ethernet capture grows (prefixes of the same traffic):\n")
print("| file | bytes | frames | wall | CPU | peak RSS |")
print("|---|---|---|---|---|---|")
for f in ["real-500.pcap", "real-1000.pcap", "real.pcap"]:
    g = stats(f"growth--{f}")
    if not g:
        continue
    s = json.load(open(os.path.join(real, f + ".json")))
    print(f"| {f} | {s['bytes']:,} | {s['frames']:,} | {g['med']:.2f} s | {g['cpu']:.2f} s | {g['rss']:.0f} MiB |")
PY
echo "written: $OUT" >&2
