#!/usr/bin/env bash
# pathproof egress vs the same checks by hand with the standard tools, on the
# healthy egress lab, in the same run (on demand; needs root).
#
#   sudo bench/egress.sh
#   BENCH_RUNS=10 BENCH_PATHPROOF=/path/to/pathproof sudo -E bench/egress.sh
#
# Brings up the egress lab of tests/support/egress.rs (the test harness
# `egress_lab_hold` in tests/lab_egress.rs holds it up while this script
# runs inside it with --inside, and tears it down afterwards, also on
# failure), then, BENCH_RUNS times (default 5), alternating which goes first:
#
#   (a) pathproof egress --cloud lab1.test --resolver 198.18.10.2
#         --ntp 198.18.4.20 --service-user root --resolv-conf <lab file>
#         --timeout 3 --json --direct
#   (b) the same checks one after another with the standard tools, in one
#       shell inside conn: per name (co2br.lab1.test and the enrollment and
#       update hosts) `dig @198.18.10.2` A, AAAA and A over TCP; `test -r`
#       of the resolv.conf; per address (2 brokers, 3 hosts) `ping -c 1`,
#       `nc -z` 443 and `openssl s_client` (SNI, the lab CA, verify);
#       per broker address `openssl s_client -dtls1_2`; `ntpdig` (SNTP) of
#       198.18.4.20. 31 commands.
#
# Both run inside the lab's conn namespace (one `ip netns exec` each) and
# are timed by wall clock. The script also says whether every check passed
# each time (pathproof: exit 0 and no failed row; tools: every command
# exited 0), so the two columns are the same work done right.
#
# Every packet stays in the lab's namespaces; nothing resolves real names.
#
# Environment:
#   BENCH_RUNS        rounds (default 5)
#   BENCH_PATHPROOF   binary to time (default: a fresh `cargo build --release`)
#   BENCH_OUT         also write the report to this file (default: stdout only)
#
# Exits 1 (after the report) when pathproof did not exit 0 or a tool command
# failed in any round: the lab is healthy, so both must pass everything.
#
# Requirements: root, the lab's tools (see .ci/run), tinyproxy-bin,
# netcat-openbsd (nc), ntpsec-ntpdig (ntpdig) or python3 for the SNTP query.
set -euo pipefail

if [ "${1:-}" != "--inside" ]; then
  cd "$(dirname "$0")/.."
  repo=$PWD
  [ "$(id -u)" = 0 ] || { echo "bench/egress.sh needs root (network namespaces)" >&2; exit 2; }
  for t in ip dig nc openssl ping; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install iproute2 bind9-dnsutils netcat-openbsd openssl iputils-ping)" >&2; exit 2; }
  done
  command -v ntpdig >/dev/null || command -v python3 >/dev/null \
    || { echo "missing ntpdig (apt-get install ntpsec-ntpdig) or python3" >&2; exit 2; }
  if [ -z "${BENCH_PATHPROOF:-}" ]; then
    cargo build --release --quiet
    BENCH_PATHPROOF=${CARGO_TARGET_DIR:-$repo/target}/release/pathproof
  fi
  export BENCH_PATHPROOF
  cargo test --quiet --test lab_egress --no-run
  PATHPROOF_EGRESS_LAB_RUN="$repo/bench/egress.sh --inside" \
    cargo test --quiet --test lab_egress egress_lab_hold -- --ignored --nocapture --test-threads 1
  exit $?
fi

# ---- inside: the lab is up, described by EGRESS_* -------------------------
RUNS=${BENCH_RUNS:-5}
PP=${BENCH_PATHPROOF:-$EGRESS_PATHPROOF}
NS=$EGRESS_NS_CONN
T=$EGRESS_TIMEOUT
RAW=$(mktemp -d /tmp/pathproof-egress-bench.XXXXXX)
trap 'rm -rf "$RAW"' EXIT

# The sequential checks, as a script for one bash inside conn. Prints one
# line per failed command and, last, "N commands, F failed".
cat >"$RAW/tools.sh" <<'EOF'
set -u
n=0; failed=0
run() { n=$((n + 1)); if ! "$@" >/dev/null 2>&1 </dev/null; then failed=$((failed + 1)); echo "FAILED: $*"; fi; }
dig_ok() { out=$(dig +tries=1 +time="$T" "$@") && grep -q 'status: NOERROR' <<<"$out"; }
sntp() {
  if command -v ntpdig >/dev/null; then ntpdig -t "$T" "$1"; else
    python3 - "$1" "$T" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(float(sys.argv[2]))
s.sendto(b'\x23' + 47 * b'\0', (sys.argv[1], 123))
d, _ = s.recvfrom(512); sys.exit(0 if len(d) >= 48 and d[0] & 7 == 4 else 1)
PY
  fi
}
for name in $EGRESS_LOCATOR $EGRESS_HOSTS; do
  run dig_ok @"$EGRESS_RESOLVER" "$name" A
  run dig_ok @"$EGRESS_RESOLVER" "$name" AAAA
  run dig_ok +tcp @"$EGRESS_RESOLVER" "$name" A
done
run test -r "$EGRESS_RESOLV_CONF"
read -r -a hosts <<<"$EGRESS_HOSTS"
read -r -a addrs <<<"$EGRESS_HOST_ADDRS"
pairs=()
for a in $EGRESS_BROKERS; do pairs+=("$EGRESS_LOCATOR $a broker"); done
for i in "${!hosts[@]}"; do pairs+=("${hosts[$i]} ${addrs[$i]} host"); done
for p in "${pairs[@]}"; do
  read -r name addr kind <<<"$p"
  run ping -n -c 1 -W "$T" "$addr"
  run nc -z -w "$T" "$addr" 443
  run timeout "$T" openssl s_client -connect "$addr:443" -servername "$name" -CAfile "$EGRESS_CA" -verify_return_error -brief
  if [ "$kind" = broker ]; then
    run timeout "$T" openssl s_client -dtls1_2 -connect "$addr:443" -servername "$name" -CAfile "$EGRESS_CA" -verify_return_error -brief
  fi
done
run sntp "$EGRESS_NTP"
echo "$n commands, $failed failed"
EOF

now() { echo "$EPOCHREALTIME"; }
# shellcheck disable=SC2086
run_pathproof() {
  local i=$1 t0 t1 rc=0
  t0=$(now)
  ip netns exec "$NS" "$PP" $EGRESS_ARGS --direct >"$RAW/pp.$i.json" 2>"$RAW/pp.$i.err" || rc=$?
  t1=$(now)
  echo "pathproof $i $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}') $rc" >>"$RAW/times"
}
run_tools() {
  local i=$1 t0 t1 rc=0
  t0=$(now)
  ip netns exec "$NS" env T="$T" bash "$RAW/tools.sh" >"$RAW/tools.$i.out" 2>&1 || rc=$?
  t1=$(now)
  echo "tools $i $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}') $rc" >>"$RAW/times"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for i in $(seq 1 "$RUNS"); do
  if [ $((i % 2)) = 1 ]; then run_pathproof "$i"; run_tools "$i"; else run_tools "$i"; run_pathproof "$i"; fi
  sleep 1
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

report() {
  echo "# pathproof egress vs standard tools, healthy egress lab ($(date -u +%FT%TZ))"
  echo
  echo "Kernel $(uname -r), $(nproc) CPUs, load $load_before before, $load_after after; $RUNS rounds, order alternating."
  echo "pathproof: $PP"
  echo
  echo "| run | pathproof egress (s) | exit | rows pass/fail/warn/skip | tools, one after another (s) | commands failed |"
  echo "| --- | --- | --- | --- | --- | --- |"
  for i in $(seq 1 "$RUNS"); do
    pp=$(awk -v i="$i" '$1=="pathproof" && $2==i {print $3, $4}' "$RAW/times")
    tl=$(awk -v i="$i" '$1=="tools" && $2==i {print $3}' "$RAW/times")
    rows=$(python3 -c 'import json,sys
try:
    s = json.load(open(sys.argv[1]))["summary"]; print("%s/%s/%s/%s" % (s["pass"], s["fail"], s["warn"], s["skip"]))
except Exception: print("no JSON")' "$RAW/pp.$i.json" 2>/dev/null || echo "?")
    tf=$(tail -n 1 "$RAW/tools.$i.out")
    echo "| $i | ${pp% *} | ${pp#* } | $rows | $tl | $tf |"
  done
  echo
  med() { awk -v k="$1" '$1==k {print $3}' "$RAW/times" | sort -n | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f s (min %.3f, max %.3f)", m, a[1], a[NR]}'; }
  echo "pathproof egress: median $(med pathproof)"
  echo "standard tools:   median $(med tools)"
  if grep -q '^pathproof .* [^0]$' "$RAW/times"; then
    echo
    echo "pathproof did not exit 0 every time; its stderr (first run that failed):"
    bad=$(awk '$1=="pathproof" && $4!=0 {print $2; exit}' "$RAW/times")
    sed 's/^/    /' "$RAW/pp.$bad.err" | head -20
  fi
  if grep -qh '^FAILED' "$RAW"/tools.*.out; then
    echo
    echo "tool commands that failed:"
    grep -h '^FAILED' "$RAW"/tools.*.out | sort | uniq -c | sed 's/^/    /'
  fi
}
if [ -n "${BENCH_OUT:-}" ]; then report | tee "$BENCH_OUT"; else report; fi
# A comparison is only worth something when both did the whole job right.
if grep -q '^pathproof .* [^0]$' "$RAW/times" || grep -qh '^FAILED' "$RAW"/tools.*.out; then
  echo "bench/egress.sh: not every check passed (see above); the times compare unequal work" >&2
  exit 1
fi
