#!/usr/bin/env bash
# pathproof trace vs mtr: time to a finished report (on demand; needs root).
#
#   sudo bench/trace.sh
#
# Builds a 10-namespace chain (source n0, routers n1..n8, target n9 with a
# TCP listener on 443; 198.19.<link>.1/.2, like shared/perf.md Part B), then
# times with the same number of rounds (10, 1 s apart):
#   pathproof trace T --report -n -c 10            (TCP/443 + the ICMP control trace)
#   pathproof trace T --report -n -c 10 --icmp
#   mtr -r -n -c 10 T                              (ICMP)
#   mtr -r -n -c 10 --tcp -P 443 T
# in three path states: clean; hop 4 silent (n4 drops its own ICMP output);
# 30 % random loss on the link n4 → n5 (forward direction, iptables
# statistic). Each command runs BENCH_RUNS times (default 3), 6 s apart (the
# routers keep Linux's default ICMP rate limit, 1/s per destination after a
# burst of 6). Records wall, CPU (user+sys), peak RSS, hop count and the
# loss figures of every run, in bench/trace-results-<date>.md.
#
# Every packet stays inside the namespaces this script creates; they are
# deleted on exit (also on error or Ctrl-C).
#
# Environment:
#   BENCH_RUNS       runs per command and state (default 3)
#   BENCH_PATHPROOF  binary to time (default: a fresh release build)
#   BENCH_OUT        results file (default bench/trace-results-$(date +%F).md)
#   BENCH_DIR        raw outputs (default /tmp/pathproof-trace-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
RUNS=${BENCH_RUNS:-3}
OUT=${BENCH_OUT:-$repo/bench/trace-results-$(date +%F).md}
DIR=${BENCH_DIR:-/tmp/pathproof-trace-bench}
TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}

[ "$(id -u)" = 0 ] || { echo "bench/trace.sh needs root (network namespaces)" >&2; exit 2; }
for t in ip iptables mtr python3 /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install iproute2 iptables mtr-tiny python3 time)" >&2; exit 2; }
done

if [ -z "${BENCH_PATHPROOF:-}" ]; then
  cargo build --release --quiet
  BENCH_PATHPROOF=$TARGET_DIR/release/pathproof
fi
PP=$BENCH_PATHPROOF

P="ppbt$$"   # namespace prefix, unique to this run
NS() { echo "${P}-n$1"; }
LISTENER=
down() {
  if [ -n "$LISTENER" ]; then kill "$LISTENER" 2>/dev/null || true; wait "$LISTENER" 2>/dev/null || true; fi
  for i in $(seq 0 9); do ip netns del "$(NS "$i")" 2>/dev/null || true; done
  rm -rf "/etc/netns/$(NS 0)"
}
trap down EXIT INT TERM

up() {
  for i in $(seq 0 9); do ip netns add "$(NS "$i")"; ip -n "$(NS "$i")" link set lo up; done
  for i in $(seq 0 8); do
    ip link add "a$i" netns "$(NS "$i")" type veth peer name "b$i" netns "$(NS $((i + 1)))"
    ip -n "$(NS "$i")" addr add "198.19.$i.1/24" dev "a$i"
    ip -n "$(NS $((i + 1)))" addr add "198.19.$i.2/24" dev "b$i"
    ip -n "$(NS "$i")" link set "a$i" up
    ip -n "$(NS $((i + 1)))" link set "b$i" up
  done
  ip -n "$(NS 0)" route add default via 198.19.0.2
  for j in $(seq 1 8); do
    ip netns exec "$(NS "$j")" sysctl -qw net.ipv4.ip_forward=1
    ip -n "$(NS "$j")" route add default via "198.19.$j.2"
    if [ "$j" -ge 2 ]; then ip -n "$(NS "$j")" route add 198.19.0.0/24 via "198.19.$((j - 1)).1"; fi
  done
  ip -n "$(NS 9)" route add default via 198.19.8.1
  # Reverse DNS stays on loopback if anything asks (every command here has -n).
  mkdir -p "/etc/netns/$(NS 0)"
  echo "nameserver 127.0.0.1" > "/etc/netns/$(NS 0)/resolv.conf"
  ip netns exec "$(NS 9)" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 443)); s.listen(128)
while True:
    c, _ = s.accept(); c.close()' &
  LISTENER=$!
  sleep 0.5
}

TGT=198.19.8.2
mkdir -p "$DIR"
rm -f "$DIR"/*.out "$DIR"/*.time
up

state_clean() { :; }
state_silent() { ip netns exec "$(NS 4)" iptables -A OUTPUT -p icmp -j DROP; }
state_loss() { ip netns exec "$(NS 4)" iptables -A FORWARD -o a4 -m statistic --mode random --probability 0.30 -j DROP; }
state_reset() { for i in $(seq 1 8); do ip netns exec "$(NS "$i")" iptables -F; done; }

declare -A CMDS=(
  [pathproof-tcp]="$PP trace $TGT --report -n -c 10"
  [pathproof-icmp]="$PP trace $TGT --report -n -c 10 --icmp"
  [mtr-icmp]="mtr -r -n -c 10 $TGT"
  [mtr-tcp]="mtr -r -n -c 10 --tcp -P 443 $TGT"
)
ORDER="pathproof-tcp pathproof-icmp mtr-icmp mtr-tcp"

for state in clean silent loss; do
  state_reset
  "state_$state"
  for tool in $ORDER; do
    for run in $(seq 1 "$RUNS"); do
      sleep 6
      base="$DIR/$state.$tool.$run"
      # shellcheck disable=SC2086
      ip netns exec "$(NS 0)" /usr/bin/time -f "%e %U %S %M" -o "$base.time" ${CMDS[$tool]} >"$base.out" 2>&1 || true
      echo "$state $tool run $run: $(cat "$base.time")" >&2
    done
  done
done

python3 - "$DIR" "$OUT" "$RUNS" "$(uname -r)" "$(nproc)" "$(uptime)" <<'EOF'
import re, statistics, sys, datetime
d, out, runs, kernel, cpus, load = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
states = [("clean", "clean 9-hop path"), ("silent", "hop 4 silent"), ("loss", "30 % loss n4 → n5")]
tools = [("pathproof-tcp", "`pathproof trace --report -n -c 10` (TCP/443 + ICMP control)"),
         ("pathproof-icmp", "`pathproof trace --report -n -c 10 --icmp`"),
         ("mtr-icmp", "`mtr -r -n -c 10`"),
         ("mtr-tcp", "`mtr -r -n -c 10 --tcp -P 443`")]

def parse_pathproof(text):
    # main table only: rows " N. host  loss% snt ..." before a blank line
    hops = []
    for line in text.split("\n\nControl trace")[0].splitlines():
        m = re.match(r"\s+(\d+)\. (\S+)(?: \*)?\s+([\d.]+)%\s+(\d+)", line)
        if m:
            hops.append((int(m.group(1)), m.group(2), float(m.group(3))))
    return hops

def parse_mtr(text):
    hops = []
    for line in text.splitlines():
        m = re.match(r"\s*(\d+)\.\|--\s+(\S+)\s+([\d.]+)%?\s+(\d+)", line)  # "???" rows print no %
        if m:
            hops.append((int(m.group(1)), m.group(2), float(m.group(3))))
    return hops

def findings(text):
    return [l.split()[1] for l in text.splitlines() if re.match(r"\s+(CRITICAL|warning|info)\s", l)]

rows, medians = [], {}
for s, sname in states:
    for t, tname in tools:
        walls, cpus_, rss, hopcounts, losses, finds = [], [], [], [], [], set()
        for r in range(1, runs + 1):
            try:
                e, u, sy, m = open(f"{d}/{s}.{t}.{r}.time").read().split()[-4:]
            except Exception:
                continue
            walls.append(float(e)); cpus_.append(float(u) + float(sy)); rss.append(int(m) / 1024)
            text = open(f"{d}/{s}.{t}.{r}.out", errors="replace").read()
            hops = parse_pathproof(text) if t.startswith("pathproof") else parse_mtr(text)
            hopcounts.append(len(hops))
            losses.append(" ".join(f"{l:.0f}" for _, _, l in hops))
            finds.update(findings(text))
        if not walls:
            continue
        med = statistics.median(walls)
        medians[(s, t)] = med
        rows.append(f"| {sname} | {tname} | {med:.2f} ({min(walls):.2f}–{max(walls):.2f}) | "
                    f"{statistics.median(cpus_):.2f} | {max(rss):.0f} MiB | {statistics.median(hopcounts):.0f} | "
                    f"{'; '.join(losses)} | {', '.join(sorted(finds)) or '—'} |")

lines = [f"# pathproof trace vs mtr, {datetime.date.today()}", "",
         f"Chain lab of bench/trace.sh: source, 8 routers, target (9 hops). Linux {kernel}, {cpus} cores, "
         f"shared machine (load at the end: {load.split('load average:')[-1].strip()}). {runs} runs per row, 6 s apart; "
         "routers keep the kernel's default ICMP rate limit. Wall = `/usr/bin/time` elapsed (10 ms resolution), "
         "CPU = user + sys of the traced command, RSS = peak resident set.", "",
         "| path | command | wall s median (min–max) | CPU s | RSS | hops | loss % per hop, each run | findings |",
         "|---|---|---|---|---|---|---|---|", *rows, "", "## Ratios (median wall, pathproof / mtr, same protocol and path)", ""]
for s, sname in states:
    for pp, mt in (("pathproof-icmp", "mtr-icmp"), ("pathproof-tcp", "mtr-tcp")):
        if (s, pp) in medians and (s, mt) in medians and medians[(s, mt)] > 0:
            lines.append(f"- {sname}: `{pp}` / `{mt}` = {medians[(s, pp)]:.2f} / {medians[(s, mt)]:.2f} s = "
                         f"**{medians[(s, pp)] / medians[(s, mt)]:.2f}×**")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
echo "raw outputs in $DIR; results in $OUT" >&2
