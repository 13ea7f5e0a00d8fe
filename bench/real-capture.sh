#!/usr/bin/env bash
# The benchmark's real-traffic capture (issue 17): recorded with tcpdump in
# the namespace lab, then enlarged by renumbering its client.
#
#   bench/real-capture.sh            # root; ~3 min for the lab, ~1 min per 2 GB file
#   BENCH_REAL_MB=500 bench/real-capture.sh
#
# 1. Unless $REAL/lab-eth.pcap and lab-sll2.pcap exist (delete them to
#    record again): holds the healthy lab up through the ignored harness
#    `bench_lab_hold` of tests/lab_bench.rs, which runs this script again
#    with --inside. Inside, it starts TLS servers on the broker, a forged-reset
#    rule on r2, tcpdump on conn (`-i eth0`: Ethernet, and `-i any`: SLL2, at
#    the same time) and the workload (see bench/README.md). Every packet stays
#    in the lab's namespaces; the lab's teardown kills what ran there.
# 2. Writes $REAL/lab.json: what is in the lab capture (tshark counts).
# 3. Renumbers the lab captures up to BENCH_REAL_MB (2000) × 10^6 bytes with
#    examples/renumber_capture.rs: real.pcap (Ethernet), real_sll.pcap (SLL2),
#    real.pcapng (Ethernet, pcapng), each with a .json summary, and the
#    Ethernet prefixes real-500.pcap and real-1000.pcap (for RSS growth).
#
# Environment (workload sizes for the lab capture):
#   BENCH_DIR          default /tmp/pathproof-bench; captures go to $BENCH_DIR/real
#   BENCH_REAL_MB      size of the renumbered captures (default 2000)
#   BENCH_REAL_SHORT   short TLS connections by openssl s_client (default 4000)
#   BENCH_REAL_PAR     concurrent s_clients (default 24)
#   BENCH_REAL_BULK    bulk transfers each way (default 3), BENCH_REAL_BULK_MB each (default 4)
#   BENCH_REAL_ABORTS  client resets after a handshake (default 300)
#   BENCH_REAL_KILLS   s_clients killed mid-connection (default 60)
#   BENCH_REAL_REFUSED refused connections (default 200)
#   BENCH_REAL_FORGED  resets forged by r2 after the ClientHello on 443 (default 200)
#   BENCH_REAL_SYNREJ  SYNs to port 7443 answered by a reset from r2 (default 100)
#   BENCH_REAL_DNS     DNS queries (default 300)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
BENCH_DIR=${BENCH_DIR:-/tmp/pathproof-bench}
REAL=${BENCH_REAL_DIR:-$BENCH_DIR/real}
SHORT=${BENCH_REAL_SHORT:-4000}
PAR=${BENCH_REAL_PAR:-24}
BULK=${BENCH_REAL_BULK:-3}
BULK_MB=${BENCH_REAL_BULK_MB:-4}
ABORTS=${BENCH_REAL_ABORTS:-300}
KILLS=${BENCH_REAL_KILLS:-60}
REFUSED=${BENCH_REAL_REFUSED:-200}
FORGED=${BENCH_REAL_FORGED:-200}
SYNREJ=${BENCH_REAL_SYNREJ:-100}
DNSQ=${BENCH_REAL_DNS:-300}
PY=$(command -v python3)

# ------------------------------------------------------------ one client (in conn)
if [[ ${1:-} == --client ]]; then
  # --client short I: one s_client; even I TLS 1.2, odd TLS 1.3; I/2 even
  # the EC broker (198.18.4.2), odd the RSA one (198.18.4.3); every third
  # sends a request and reads the status page, the others close after the
  # handshake.
  i=$3
  ver=$([[ $((i % 2)) == 0 ]] && echo -tls1_2 || echo -tls1_3)
  addr=$([[ $(((i / 2) % 2)) == 0 ]] && echo 198.18.4.2 || echo 198.18.4.3)
  ca=$([[ $addr == 198.18.4.2 ]] && echo "$BENCH_EC_ROOT" || echo "$BENCH_RSA_ROOT")
  args=(-connect "$addr:443" -servername broker1a.lab1.test "$ver" -CAfile "$ca" -verify_quiet)
  if ((i % 3 == 0)); then
    printf 'GET / HTTP/1.0\r\nHost: broker1a.lab1.test\r\n\r\n' |
      timeout 10 openssl s_client "${args[@]}" -quiet -nocommands >/dev/null 2>&1 || true
  else
    timeout 10 openssl s_client "${args[@]}" -nocommands </dev/null >/dev/null 2>&1 || true
  fi
  exit 0
fi

# ------------------------------------------------------------ inside the lab
if [[ ${1:-} == --inside ]]; then
  : "${BENCH_NS_CONN:?run through bench_lab_hold}"
  w=$BENCH_WORKDIR/bench
  mkdir -p "$w/www"
  b() { ip netns exec "$BENCH_NS_BROKER" "$@"; }
  c() { ip netns exec "$BENCH_NS_CONN" "$@"; }
  pids=()
  cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
  trap cleanup EXIT
  # A server in the broker, logged (stdin /dev/null: -www and -WWW never
  # read it; the sink has -quiet, which ignores its end).
  serve() { # serve NAME PORT KEY(EC|RSA) ARGS...
    local name=$1 port=$2 key=$3
    shift 3
    local leaf=BENCH_${key}_LEAF k=BENCH_${key}_KEY chain=BENCH_${key}_CHAIN
    (cd "$w/www" && exec ip netns exec "$BENCH_NS_BROKER" openssl s_server -4 -accept "$port" \
      -cert "${!leaf}" -key "${!k}" -cert_chain "${!chain}" "$@" </dev/null >"$w/$name.log" 2>&1) &
    pids+=($!)
  }
  # Broker addresses: .2 EC (the lab's own s_server -www on 443 and three
  # more workers), .3 RSA (four workers), .4 bulk download (s_server -WWW,
  # EC), .5 bulk upload (a sink s_server, RSA), .6 nothing listening (the
  # kernel refuses). All on port 443 as seen from conn: the broker's nat
  # table redirects to the workers (s_server serves one connection at a
  # time). Source ports 20000-20999 (the forged-reset clients) go to a
  # listener that never accepts, so that no worker waits for a ClientHello
  # that r2 swallowed.
  for a in 3 4 5 6; do b ip addr add "198.18.4.$a/24" dev eth0; done
  nat() { b iptables -w -t nat -A PREROUTING -p tcp --dport 443 "$@"; }
  nat --sport 20000:20999 -j REDIRECT --to-ports 5443
  for i in 1 2 3; do
    serve "ec-$i" $((10440 + i)) EC -www
    serve "rsa-$i" $((18440 + i)) RSA -www
    nat -d 198.18.4.2 -m statistic --mode nth --every $((5 - i)) --packet 0 -j REDIRECT --to-ports $((10440 + i))
    nat -d 198.18.4.3 -m statistic --mode nth --every $((5 - i)) --packet 0 -j REDIRECT --to-ports $((18440 + i))
  done
  serve rsa-4 18444 RSA -www
  nat -d 198.18.4.3 -j REDIRECT --to-ports 18444
  serve bulk-down 9443 EC -WWW -http_server_binmode
  nat -d 198.18.4.4 -j REDIRECT --to-ports 9443
  serve bulk-up 9444 RSA -quiet # writes what it receives to its log
  nat -d 198.18.4.5 -j REDIRECT --to-ports 9444
  nat -d 198.18.4.6 -j REDIRECT --to-ports 7
  ip netns exec "$BENCH_NS_BROKER" "$PY" "$here/real-capture.py" holder >"$w/holder.log" 2>&1 &
  pids+=($!)
  # r2 forges: a reset for every ClientHello naming forged.lab1.test, and
  # for every SYN to port 7443.
  ip netns exec "$BENCH_NS_R2" iptables -w -A FORWARD -p tcp --dport 443 \
    -m string --string forged.lab1.test --algo bm -j REJECT --reject-with tcp-reset
  ip netns exec "$BENCH_NS_R2" iptables -w -A FORWARD -p tcp --syn --dport 7443 \
    -j REJECT --reject-with tcp-reset
  head -c $((BULK_MB * 1000000)) /dev/urandom >"$w/www/bulk.bin"
  head -c $((BULK_MB * 1000000)) /dev/urandom >"$w/upload.bin"
  for port in 10441 10442 10443 18441 18442 18443 18444 9443 9444 5443; do
    for _ in $(seq 100); do
      b ss -Hltn "sport = :$port" | grep -q . && break
      sleep 0.1
    done
    b ss -Hltn "sport = :$port" | grep -q . || { echo "nothing listens on broker:$port" >&2; exit 1; }
  done

  # tcpdump on conn, both link types at once.
  # (ip netns exec execs its command: $! is tcpdump itself.)
  ip netns exec "$BENCH_NS_CONN" tcpdump -i eth0 -B 65536 -w "$w/lab-eth.pcap" 2>"$w/tcpdump-eth.log" &
  pids+=($!)
  td_eth=$!
  ip netns exec "$BENCH_NS_CONN" tcpdump -i any -B 65536 -w "$w/lab-sll2.pcap" 2>"$w/tcpdump-any.log" &
  pids+=($!)
  td_any=$!
  for _ in $(seq 100); do
    grep -q listening "$w/tcpdump-eth.log" && grep -q listening "$w/tcpdump-any.log" && break
    sleep 0.1
  done
  sleep 0.5
  t0=$(date +%s.%N)

  # The workload, in parallel groups.
  {
    for i in $(seq "$DNSQ"); do
      case $((i % 5)) in
        0) c dig +short +tries=1 +time=2 @"$BENCH_RESOLVER_ADDR" "nx$i.lab1.test" ;;
        1) c dig +short +tries=1 +time=2 +tcp @"$BENCH_RESOLVER_ADDR" broker1a.lab1.test ;;
        *) c dig +short +tries=1 +time=2 @"$BENCH_RESOLVER_ADDR" co2br.lab1.test ;;
      esac
      sleep 0.05
    done >"$w/dns.log" 2>&1
  } &
  g_dns=$!
  c ping -q -c 20 -i 0.5 198.18.4.2 >"$w/ping.log" 2>&1 &
  g_ping=$!
  seq 0 $((SHORT - 1)) | c xargs -P "$PAR" -n 1 "$0" --client short &
  g_short=$!
  {
    for i in $(seq "$BULK"); do
      printf 'GET /bulk.bin HTTP/1.0\r\n\r\n' | c timeout 120 openssl s_client -connect 198.18.4.4:443 \
        -servername broker1a.lab1.test -quiet -nocommands >"$w/down-$i.out" 2>/dev/null || true
      c timeout 120 openssl s_client -connect 198.18.4.5:443 -servername broker1a.lab1.test \
        -tls1_2 -nocommands <"$w/upload.bin" >/dev/null 2>&1 || true
    done
  } &
  g_bulk=$!
  {
    c "$PY" "$here/real-capture.py" abort "$ABORTS"
    c "$PY" "$here/real-capture.py" refused "$REFUSED"
    c "$PY" "$here/real-capture.py" forged "$FORGED"
    c "$PY" "$here/real-capture.py" synrej "$SYNREJ"
    # s_client killed mid-connection (SIGKILL: the kernel closes the socket;
    # a reset when data was left unread).
    for i in $(seq "$KILLS"); do
      addr=$([[ $((i % 2)) == 0 ]] && echo 198.18.4.2 || echo 198.18.4.3)
      ip netns exec "$BENCH_NS_CONN" openssl s_client -connect "$addr:443" \
        -servername broker1a.lab1.test -quiet </dev/null >/dev/null 2>&1 &
      sleep 0.$((RANDOM % 5 + 1))
      kill -KILL $! 2>/dev/null || true # ip netns exec execs: $! is s_client
      wait $! 2>/dev/null || true
    done
  } >"$w/py.log" 2>&1 &
  g_py=$!
  wait "$g_short" "$g_bulk" "$g_py" "$g_dns" "$g_ping" || true
  t1=$(date +%s.%N)
  sleep 1
  kill -INT "$td_eth" "$td_any"
  wait "$td_eth" "$td_any" || true
  cat "$w/tcpdump-eth.log" "$w/tcpdump-any.log" >&2
  cat "$w/py.log" >&2
  echo "workload: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s" >&2
  down=$(stat -c %s "$w"/down-*.out | paste -sd' ')
  echo "bulk downloads (bytes): $down" >&2
  mkdir -p "$REAL"
  cp "$w/lab-sll2.pcap" "$REAL/lab-sll2.pcap"
  cp "$w/lab-eth.pcap" "$REAL/lab-eth.pcap"
  exit 0
fi

# ------------------------------------------------------------ outside
[[ $(id -u) == 0 ]] || { echo "real-capture: needs root (network namespaces)" >&2; exit 1; }
MB=${BENCH_REAL_MB:-2000}
TARGET=${CARGO_TARGET_DIR:-$repo/target}
mkdir -p "$REAL"
cd "$repo"
if [[ ! -s $REAL/lab-eth.pcap || ! -s $REAL/lab-sll2.pcap ]]; then
  echo "== record the lab capture" >&2
  PATHPROOF_BENCH_LAB_RUN="$here/real-capture.sh --inside" \
    cargo test --quiet --test lab_bench bench_lab_hold -- --ignored --nocapture >&2
fi
echo "== build (release)" >&2
cargo build --release --quiet --bin pathproof --example renumber_capture
RENUM=$TARGET/release/examples/renumber_capture

echo "== count what is in the lab capture" >&2
"$PY" "$here/real-summary.py" "$REAL/lab-eth.pcap" >"$REAL/lab.json.tmp"
mv "$REAL/lab.json.tmp" "$REAL/lab.json"
cat "$REAL/lab.json" >&2

renum() { # renum OUT IN MB ARGS...
  local out=$1 in=$2 mb=$3
  shift 3
  if [[ -s $REAL/$out && -s $REAL/$out.json ]] && grep -q "\"size_mb\": $mb\b" "$REAL/$out.json"; then
    return
  fi
  echo "== renumber $in -> $out ($mb MB)" >&2
  "$RENUM" --in "$REAL/$in" --out "$REAL/$out" --size-mb "$mb" "$@" >"$REAL/$out.json.tmp"
  mv "$REAL/$out.json.tmp" "$REAL/$out.json"
}
renum real.pcap lab-eth.pcap "$MB"
renum real_sll.pcap lab-sll2.pcap "$MB"
renum real.pcapng lab-eth.pcap "$MB" --pcapng
for p in 500 1000; do
  if ((p < MB)); then renum "real-$p.pcap" lab-eth.pcap "$p"; fi
done
ls -l "$REAL" >&2
