#!/usr/bin/env bash
# Rewrites the bundled sample captures in captures/ from the namespace lab
# (tests/support/lab.rs): every scenario is built, its workload captured on
# `conn`, checked by the lab self-test, and copied into captures/.
#
# Needs root and the Debian packages iproute2 iptables ethtool openssl
# tcpdump wireshark-common (editcap) iputils-ping mtr-tiny procps util-linux
# dnsmasq-base (the lab resolver) bind9-dnsutils (dig) faketime.
# Touches nothing outside the network namespaces it creates (198.18.0.0/15)
# and /etc/netns/<its conn namespace>/ (removed at teardown).
#
# ONLY=name,name tests/lab/regen-captures.sh rewrites only those captures
# (scenario ids, or intercept-proxy-tls13).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
    echo "regen-captures.sh: needs root (network namespaces)" >&2
    exit 1
fi
PATHPROOF_LAB_REQUIRED=1 ONLY="${ONLY:-}" exec cargo test --test lab_selftest -- \
    --ignored --exact regenerate_bundled_captures --nocapture --test-threads=1
