#!/usr/bin/env python3
"""What is in a lab capture of bench/real-capture.sh, counted by tshark.

  real-summary.py CAPTURE      -> JSON on stdout

Broker addresses (see real-capture.sh): 198.18.4.2 EC P-256 (short TLS),
.3 RSA 2048 (short TLS), .4 bulk download (EC), .5 bulk upload (RSA),
.6 refuses; port 7443 is reset by r2 at the SYN. The client is 198.18.1.1.
"""
import collections
import json
import subprocess
import sys

CLIENT = "198.18.1.1"
KEY = {"198.18.4.2": "ecdsa", "198.18.4.4": "ecdsa", "198.18.4.3": "rsa", "198.18.4.5": "rsa"}
FIELDS = ["frame.len", "ip.src", "ip.dst", "ip.ttl", "udp.port", "tcp.srcport", "tcp.dstport",
          "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.reset", "tcp.stream", "tcp.len",
          "tls.handshake.type", "tls.handshake.extensions.supported_version", "dns.flags.response",
          "dns.flags.rcode", "arp.opcode", "icmp.type"]


def main():
    cap = sys.argv[1]
    cmd = ["tshark", "-n", "-r", cap, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    c = collections.Counter()
    streams, syn_streams = set(), set()
    by_port = collections.Counter()
    for line in out.splitlines():
        v = dict(zip(FIELDS, line.split("\t")))
        c["packets"] += 1
        c["bytes_on_wire"] += int(v["frame.len"] or 0)
        if v["arp.opcode"]:
            c["arp"] += 1
        if v["icmp.type"]:
            c["icmp"] += 1
        if v["dns.flags.response"] == "0":
            c["dns_queries"] += 1
        elif v["dns.flags.response"] == "1":
            c["dns_answers"] += 1
            if v["dns.flags.rcode"] == "3":
                c["dns_nxdomain"] += 1
        if not v["tcp.stream"]:
            continue
        stream = int(v["tcp.stream"])
        streams.add(stream)
        src, dst = v["ip.src"], v["ip.dst"]
        if v["tcp.flags.syn"] == "1" and v["tcp.flags.ack"] == "0" and stream not in syn_streams:
            syn_streams.add(stream)
            by_port[f"{dst}:{v['tcp.dstport']}"] += 1
        if v["tcp.flags.reset"] == "1":
            if src == CLIENT:
                c["rst_from_client"] += 1
            elif v["ip.ttl"] == "63":
                c["rst_forged_by_r2_ttl63"] += 1
            else:
                c[f"rst_from_server_ttl{v['ip.ttl']}"] += 1
        types = v["tls.handshake.type"].split(",")
        if "2" in types and src != CLIENT:
            ver = "1.3" if "0x0304" in v["tls.handshake.extensions.supported_version"] else "1.2"
            c[f"server_hello_tls{ver}_{KEY.get(src, src)}"] += 1
        if "1" in types and src == CLIENT:
            c["client_hellos"] += 1
    c["tcp_streams"] = len(streams)
    c["tcp_connections_opened"] = len(syn_streams)
    result = {"capture": cap, **dict(sorted(c.items())), "syns_by_destination": dict(sorted(by_port.items()))}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
