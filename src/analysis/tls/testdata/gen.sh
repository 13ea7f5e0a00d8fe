#!/bin/sh
# Regenerates the TLS fixtures of src/analysis/tls (see README.md here).
# Loopback only: openssl s_server / s_client on 127.0.0.1, tcpdump on lo,
# tshark "follow tcp" to dump each direction's byte stream.
# Needs root (tcpdump), openssl 3, faketime, tshark, python3.
set -eu
OUT=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
PORT=44331
SNI=co2br.prod.zpath.net

# Chain 1: a broker-like RSA leaf under a CA with O=Zscaler Inc.
openssl req -x509 -newkey rsa:2048 -nodes -keyout zca.key -out zca.pem -days 3650 \
  -subj "/C=US/O=Zscaler Inc./CN=Test Zscaler Intermediate Root CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout zleaf.key -out zleaf.csr \
  -subj "/C=US/O=Zscaler Inc./CN=$SNI" 2>/dev/null
printf 'subjectAltName=DNS:%s,DNS:*.prod.zpath.net\n' "$SNI" > san.ext
openssl x509 -req -in zleaf.csr -CA zca.pem -CAkey zca.key -CAcreateserial -days 825 \
  -extfile san.ext -out zleaf.pem 2>/dev/null
cp zca.pem zchain.pem  # the chain beyond the leaf

# Chain 2: an inspecting proxy's chain: Ed25519 CA with O=Safemarch Inc, EC P-256
# leaf for the same name whose notBefore is 2036-01-01 (the future).
openssl req -x509 -newkey ed25519 -nodes -keyout sca.key -out sca.pem -days 3650 \
  -subj "/C=US/O=Safemarch Inc/CN=Safemarch Inspection CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout sleaf.key \
  -out sleaf.csr -subj "/CN=$SNI" 2>/dev/null
faketime '2036-01-01 00:00:00' openssl x509 -req -in sleaf.csr -CA sca.pem -CAkey sca.key \
  -CAcreateserial -days 365 -extfile san.ext -out sleaf.pem 2>/dev/null
cp sca.pem schain.pem

# run NAME CERT KEY CHAIN VERSION CLIENT_OPTS...: one handshake, captured.
run() {
  name=$1 cert=$2 key=$3 chain=$4 ver=$5
  shift 5
  tcpdump -i lo -U -s 0 -w "$name.pcap" "tcp port $PORT" 2>/dev/null &
  td=$!
  sleep 1
  openssl s_server -accept "127.0.0.1:$PORT" -cert "$cert" -key "$key" -cert_chain "$chain" \
    "$ver" -www -naccept 1 >/dev/null 2>&1 &
  sv=$!
  sleep 1
  printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -connect "127.0.0.1:$PORT" \
    -servername "$SNI" "$ver" "$@" >/dev/null 2>&1 || true
  sleep 1
  kill "$sv" 2>/dev/null || true
  wait "$sv" 2>/dev/null || true
  kill "$td"
  wait "$td" 2>/dev/null || true
  # follow,tcp,raw: client bytes unindented, server bytes indented by a tab.
  tshark -r "$name.pcap" -qz follow,tcp,raw,0 | python3 -c '
import sys
c, s, on = bytearray(), bytearray(), False
for line in sys.stdin:
    if line.startswith("Node 1:"):
        on = True
        continue
    if not on or line.startswith("="):
        continue
    h = line.strip()
    (s if line.startswith("\t") else c).extend(bytes.fromhex(h))
open(sys.argv[1] + "_client.bin", "wb").write(c)
open(sys.argv[1] + "_server.bin", "wb").write(s)
' "$OUT/$name"
}

# TLS 1.2 accepted (client trusts the Zscaler-like CA) with one HTTP exchange.
run tls12_ok zleaf.pem zleaf.key zchain.pem -tls1_2 -CAfile zca.pem -verify_return_error
# TLS 1.2 rejected: Safemarch chain, client trusts only the Zscaler-like CA → alert in clear.
run tls12_reject sleaf.pem sleaf.key schain.pem -tls1_2 -CAfile zca.pem -verify_return_error
# TLS 1.3 accepted: certificates are encrypted.
run tls13_ok zleaf.pem zleaf.key zchain.pem -tls1_3 -CAfile zca.pem -verify_return_error
# TLS 1.3 rejected: the client's alert is encrypted (one 19-byte record) then it closes.
run tls13_reject sleaf.pem sleaf.key schain.pem -tls1_3 -CAfile zca.pem -verify_return_error

# The two leaf certificates alone, DER, for the certificate decoder's tests.
openssl x509 -in zleaf.pem -outform der -out "$OUT/zscaler_leaf.der"
openssl x509 -in sleaf.pem -outform der -out "$OUT/safemarch_future_leaf.der"
ls -l "$OUT"
