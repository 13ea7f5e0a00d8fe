#!/usr/bin/env bash
# pathproof pcap throughput benchmark (on demand; not part of `cargo test`).
#
#   bench/pcap.sh
#
# Builds pathproof (release) and the capture generator, generates the
# benchmark captures if they are missing, then times on the same files, in
# the same run, with a warm page cache:
#   pathproof pcap F --json                                    (the full analysis)
#   tcpdump -nr F 'tcp[tcpflags] & tcp-rst != 0'               (libpcap + BPF)
#   tshark -r F -Y 'tcp.flags.reset==1' -T fields -e frame.number -e ip.ttl
#                                  (small file only unless BENCH_TSHARK_BIG=1)
#   cat F                                                      (page-cache floor)
# and writes a Markdown table to bench/results-<date>.md and stdout.
#
# Environment:
#   BENCH_DIR         where captures and raw results go (default /tmp/pathproof-bench)
#   BENCH_SIZE_MB     size of the big captures (default 2000)
#   BENCH_SMALL_MB    size of the small capture (default 100)
#   BENCH_SEED        generator seed (default 1)
#   BENCH_RUNS        timed runs per command and round (default 3; 1 warm-up run before)
#   BENCH_ROUNDS      rounds (default 4): each round times every command on every
#                     file in turn, so that a machine whose speed drifts during the
#                     run (a shared VM) treats all tools alike; medians are over
#                     all rounds' runs
#   BENCH_TSHARK_BIG  1: run tshark on the big files too (minutes and GBs each)
#   BENCH_TSHARK_RUNS timed tshark runs (default 3)
#   BENCH_FILES       which captures to time (default "big.pcap big.pcapng big_sll.pcap small.pcap")
#   BENCH_PATHPROOF   binary to time instead of the freshly built one
#   BENCH_OUT         results file (default bench/results-$(date +%F).md)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

BENCH_DIR=${BENCH_DIR:-/tmp/pathproof-bench}
SIZE_MB=${BENCH_SIZE_MB:-2000}
SMALL_MB=${BENCH_SMALL_MB:-100}
SEED=${BENCH_SEED:-1}
RUNS=${BENCH_RUNS:-3}
ROUNDS=${BENCH_ROUNDS:-4}
TSHARK_RUNS=${BENCH_TSHARK_RUNS:-3}
FILES=${BENCH_FILES:-big.pcap big.pcapng big_sll.pcap small.pcap}
OUT=${BENCH_OUT:-$repo/bench/results-$(date +%F).md}
TARGET=${CARGO_TARGET_DIR:-$repo/target}

echo "== build (release)" >&2
cargo build --release --quiet --bin pathproof --example gen_capture
PP=${BENCH_PATHPROOF:-$TARGET/release/pathproof}
GEN=$TARGET/release/examples/gen_capture

mkdir -p "$BENCH_DIR/raw"
rm -f "$BENCH_DIR"/raw/*

# ---------------------------------------------------------------- captures
gen() { # gen NAME SIZE_MB ARGS...: generates NAME (+ NAME.json summary) if missing
  local name=$1 size=$2
  shift 2
  if [[ -s $BENCH_DIR/$name && -s $BENCH_DIR/$name.json ]]; then
    return
  fi
  echo "== generate $name ($size MB)" >&2
  "$GEN" --out "$BENCH_DIR/$name" --size-mb "$size" --seed "$SEED" "$@" >"$BENCH_DIR/$name.json.tmp"
  mv "$BENCH_DIR/$name.json.tmp" "$BENCH_DIR/$name.json"
}
gen big.pcap "$SIZE_MB" --link ethernet --format pcap
gen big.pcapng "$SIZE_MB" --link ethernet --format pcapng
gen big_sll.pcap "$SIZE_MB" --link sll2 --format pcap
gen small.pcap "$SMALL_MB" --link ethernet --format pcap

# ---------------------------------------------------------------- context
{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
  echo "loadavg_before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "pathproof: $PP ($(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo ?))"
  echo "tcpdump: $(tcpdump --version 2>&1 | head -1 || echo none)"
  echo "tshark: $(tshark --version 2>/dev/null | head -1 || echo none)"
  echo "hyperfine: $(hyperfine --version 2>/dev/null || echo none)"
} >"$BENCH_DIR/raw/context.txt"
echo "busiest processes before the run:" >>"$BENCH_DIR/raw/context.txt"
ps -eo pcpu=,comm= --sort=-pcpu | head -5 | sed 's/^/  /' >>"$BENCH_DIR/raw/context.txt"

# ---------------------------------------------------------------- timing
# measure NAME FILE RUNS COMMAND: wall/CPU per run (hyperfine, or a loop with
# /usr/bin/time), appended to the runs of earlier rounds; in the first round,
# one more run under /usr/bin/time for the peak RSS.
# COMMAND is one string, split like a shell would (paths must have no spaces).
measure() {
  local name=$1 file=$2 runs=$3 cmd=$4
  local raw=$BENCH_DIR/raw/$name
  echo "== round $round: $name: $cmd" >&2
  echo "$file" >"$raw.file"
  echo "$cmd" >"$raw.cmd"
  local -a argv
  eval "argv=($cmd)"
  if command -v hyperfine >/dev/null; then
    hyperfine -N -i --style none --warmup 1 --runs "$runs" --export-json "$raw.round$round.json" -- "$cmd" >&2
    python3 - "$raw" <<'PY'
import glob, json, sys
raw = sys.argv[1]
times, cpu = [], []
for f in sorted(glob.glob(raw + ".round*.json")):
    r = json.load(open(f))["results"][0]
    times += r["times"]
    cpu += [r["user"] + r["system"]] * len(r["times"])
merged = {"results": [{"times": times, "user": sum(cpu) / len(cpu), "system": 0.0}]}
json.dump(merged, open(raw + ".hyperfine.json", "w"))
PY
  else
    "${argv[@]}" >/dev/null 2>&1 || true # warm-up
    for _ in $(seq "$runs"); do
      /usr/bin/time -f '%e %U %S' -a -o "$raw.loop" "${argv[@]}" >/dev/null 2>&1 || true
    done
  fi
  if [[ $round == 1 ]]; then
    # Peak RSS (KiB) and the exit code, from one more run.
    /usr/bin/time -f '%M %x' -o "$raw.rss" "${argv[@]}" >/dev/null 2>&1 || true
  fi
}

cd "$BENCH_DIR"
for f in $FILES; do
  [[ -s $f ]] || { echo "missing $BENCH_DIR/$f" >&2; exit 1; }
done
for round in $(seq "$ROUNDS"); do
  for f in $FILES; do
    cat "$f" >/dev/null # warm the page cache
    measure "cat--$f" "$f" "$RUNS" "cat $f"
    measure "pathproof--$f" "$f" "$RUNS" "$PP pcap $f --json"
    measure "tcpdump--$f" "$f" "$RUNS" "tcpdump -nr $f 'tcp[tcpflags] & tcp-rst != 0'"
  done
done
round=1
for f in $FILES; do
  if command -v tshark >/dev/null && { [[ $f == small.* ]] || [[ ${BENCH_TSHARK_BIG:-0} == 1 ]]; }; then
    measure "tshark--$f" "$f" "$TSHARK_RUNS" "tshark -r $f -Y 'tcp.flags.reset==1' -T fields -e frame.number -e ip.ttl"
  fi
done

# ---------------------------------------------------------------- counts (not timed)
# What pathproof reports against what the generator wrote, and tcpdump's RST count.
for f in $FILES; do
  "$PP" pcap "$f" --json >"raw/report--$f.json" 2>"raw/report--$f.err" || true
  tcpdump -nr "$f" 'tcp[tcpflags] & tcp-rst != 0' 2>/dev/null | wc -l >"raw/tcpdump-rsts--$f"
done
echo "loadavg_after: $(cut -d' ' -f1-3 /proc/loadavg)" >>raw/context.txt

python3 "$repo/bench/summarize.py" "$BENCH_DIR" "$FILES" | tee "$OUT"
echo "written: $OUT" >&2
