#!/usr/bin/env bash
# Before/after: two pathproof binaries on the same captures, in the same run.
#
#   bench/compare.sh OLD_BIN NEW_BIN [CAPTURE...]
#
# Default captures: the big files of bench/pcap.sh in BENCH_DIR (default
# /tmp/pathproof-bench; run bench/pcap.sh once to generate them). Per round,
# each capture is analysed by both binaries (`pcap F --json`, page cache
# warm), the order flipping every round so that the machine's drift (±20 %
# over minutes on this shared VM) hits both alike; BENCH_ROUNDS (8) rounds.
# Prints, per capture and binary, the median wall time with min–max and
# the median CPU time (user + sys: less sensitive to a loaded machine than
# the wall), the peak RSS, the ratios new/old, and whether both reports carry the same
# verdict. On demand only; never part of the test suite.
set -euo pipefail
old=${1:?usage: bench/compare.sh OLD_BIN NEW_BIN [CAPTURE...]}
new=${2:?usage: bench/compare.sh OLD_BIN NEW_BIN [CAPTURE...]}
shift 2
BENCH_DIR=${BENCH_DIR:-/tmp/pathproof-bench}
ROUNDS=${BENCH_ROUNDS:-8}
if [[ $# -gt 0 ]]; then
  files=("$@")
else
  files=("$BENCH_DIR"/big.pcap "$BENCH_DIR"/big.pcapng "$BENCH_DIR"/big_sll.pcap)
fi
for f in "${files[@]}"; do
  [[ -r $f ]] || { echo "compare: cannot read $f (run bench/pcap.sh first)" >&2; exit 2; }
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run() { # bin file tag -> appends "wall_s rss_kb user_s sys_s" to $out/tag
  /usr/bin/time -f "%e %M %U %S" -o "$out/t" "$1" pcap "$2" --json >"$out/json.$3" 2>/dev/null || true
  # GNU time first says "Command exited with non-zero status N" (a failure verdict).
  tail -n 1 "$out/t" >>"$out/$3"
}

echo "old: $old"
echo "new: $new"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for f in "${files[@]}"; do cat "$f" >/dev/null; done
for ((r = 0; r < ROUNDS; r++)); do
  for i in "${!files[@]}"; do
    f=${files[$i]}
    if ((r % 2 == 0)); then
      run "$old" "$f" "old.$i"; run "$new" "$f" "new.$i"
    else
      run "$new" "$f" "new.$i"; run "$old" "$f" "old.$i"
    fi
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n| capture | old wall (min–max) | new wall (min–max) | new/old wall | old CPU | new CPU | new/old CPU | old RSS | new RSS | same verdict |\n|---|---|---|---|---|---|---|---|---|---|\n'
for i in "${!files[@]}"; do
  python3 - "$out" "$i" "${files[$i]}" <<'PY'
import json, statistics, sys
out, i, name = sys.argv[1], sys.argv[2], sys.argv[3]
def load(tag):
    rows = [l.split() for l in open(f"{out}/{tag}.{i}") if l.strip()]
    wall = [float(r[0]) for r in rows]
    cpu = [float(r[2]) + float(r[3]) for r in rows]
    return (statistics.median(wall), min(wall), max(wall),
            max(int(r[1]) for r in rows) / 1024, statistics.median(cpu))
def verdict(tag):
    try:
        v = json.load(open(f"{out}/json.{tag}.{i}"))["verdict"]
        return (v["class"], v["hop"])
    except Exception:
        return None
o, n = load("old"), load("new")
print(f"| {name} | {o[0]:.2f} s ({o[1]:.2f}–{o[2]:.2f}) | {n[0]:.2f} s ({n[1]:.2f}–{n[2]:.2f}) "
      f"| {n[0] / o[0]:.2f} | {o[4]:.2f} s | {n[4]:.2f} s | {n[4] / o[4]:.2f} "
      f"| {o[3]:.0f} MiB | {n[3]:.0f} MiB | {verdict('old') == verdict('new')} |")
PY
done
