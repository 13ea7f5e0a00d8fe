#!/usr/bin/env python3
"""Writes the mtr report fixtures of this folder.

It re-implements how mtr's ui/report.c (report_close, json_close) and
ui/asn.c (fmt_ipinfo) lay out their output, so that the fixtures have mtr's
exact spacing, including its quirks:

* each column is written with snprintf at a fixed offset (`len += width`),
  so a value wider than its column loses its last character to the next
  column: 1405.3 ms prints as "1405." and a 100.0% loss as "100.0";
* without -w the host field ends at column 33 and cuts the name;
* ECMP addresses follow as "    |  `|-- ip" / "    |   |-- ip", or with -z
  as "     AS16509  host"; -e adds MPLS lines, whose S field is printed
  with %c in the -z form (a control byte).

The hop data is made up (documentation address ranges where possible, the
public AWS/Zscaler addresses of the runbook sample elsewhere). Run it from
anywhere: python3 tests/data/mtr/gen_fixtures.py
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))

# key: (title, format, width), from data_fields in ui/mtr.c
FIELDS = {
    " ": (" ", " ", 1),
    "L": ("Loss%", " %4.1f%%", 6),
    "D": ("Drop", " %4d", 5),
    "R": ("Rcv", " %5d", 6),
    "S": ("Snt", " %5d", 6),
    "N": ("Last", " %5.1f", 6),
    "B": ("Best", " %5.1f", 6),
    "A": ("Avg", " %5.1f", 6),
    "W": ("Wrst", " %5.1f", 6),
    "V": ("StDev", " %5.1f", 6),
    "G": ("Gmean", " %5.1f", 6),
}
JSON_KEYS = {"L": "Loss%", "D": "Drop", "R": "Rcv", "S": "Snt", "N": "Last",
             "B": "Best", "A": "Avg", "W": "Wrst", "V": "StDev", "G": "Gmean"}
IIWIDTH = [7, 19, 4, 8, 11]
MAX_FORMAT_STR = 81


class Host:
    def __init__(self, addr=None, name=None, info=None, mpls=()):
        self.addr, self.name, self.info, self.mpls = addr, name, info, list(mpls)


class Hub(Host):
    def __init__(self, n, addr=None, name=None, info=None, stats=None,
                 extra=(), mpls=()):
        super().__init__(addr, name, info, mpls)
        self.n = n
        self.stats = stats or {}
        self.extra = list(extra)


class Ctl:
    def __init__(self, local, wide=False, dns=True, show_ips=False,
                 ipinfo_no=-1, mpls=False, order="LS NABWV"):
        self.local, self.wide, self.dns, self.show_ips = local, wide, dns, show_ips
        self.ipinfo_no, self.mpls, self.order = ipinfo_no, mpls, order


def snprint_addr(ctl, h):
    if h.addr is None:
        s = "???"
    elif not ctl.dns or h.name is None:
        s = h.addr
    elif ctl.show_ips:
        s = "%s (%s)" % (h.name, h.addr)
    else:
        s = h.name
    return s[: MAX_FORMAT_STR - 1]


def fmt_ipinfo(ctl, h):
    w = IIWIDTH[ctl.ipinfo_no % len(IIWIDTH)]
    return ("" if ctl.ipinfo_no else "AS") + ("%-*s" % (w, h.info or "???"))


def put(buf, at, s):
    # snprintf(buf + at, ...): writes s and a NUL; printf stops at the NUL.
    assert at <= len(buf)
    return buf[:at] + s


def stat_value(hub, key):
    return hub.stats[key]


def mpls_lines_plain(labels, lead):
    return ["%s[MPLS: Lbl %d TC %d S %d TTL %d]" % ((lead,) + l) for l in labels]


def mpls_lines_ii(labels):
    # print_mpls(): "       [MPLS: Lbl %lu TC %u S %cu TTL %u]" -- %c of a 0/1.
    return ["       [MPLS: Lbl %d TC %d S %su TTL %d]" % (l[0], l[1], chr(l[2]), l[3])
            for l in labels]


def report(ctl, start, hubs):
    out = ["Start: " + start]
    len_hosts = 33
    printii = ctl.ipinfo_no >= 0
    if ctl.wide:
        len_hosts = len(ctl.local)
        for h in hubs:
            len_hosts = max(len_hosts, len(snprint_addr(ctl, h)))
    len_tmp = len_hosts
    if printii and ctl.wide:
        len_hosts += 1
        len_tmp += IIWIDTH[ctl.ipinfo_no]
        if not ctl.ipinfo_no:
            len_tmp += 2
    buf = "HOST: %-*s" % (len_tmp, ctl.local)
    at = len(buf) if ctl.wide else len_hosts
    for key in ctl.order:
        title, _, width = FIELDS[key]
        buf = put(buf, at, "%*s" % (width, title))
        at += width
    out.append(buf)

    for h in hubs:
        name = snprint_addr(ctl, h)
        if printii:
            buf = " %2d. %s%-*s" % (h.n, fmt_ipinfo(ctl, h), len_hosts, name)
        else:
            buf = " %2d.|-- %-*s" % (h.n, len_hosts, name)
        at = len(buf) if ctl.wide else len_hosts
        for key in ctl.order:
            _, fmt, width = FIELDS[key]
            buf = put(buf, at, fmt % stat_value(h, key) if key != " " else fmt)
            at += width
        out.append(buf)

        for z, e in enumerate(h.extra, start=1):
            if printii:
                if h.mpls and z == 1 and ctl.mpls:
                    out += mpls_lines_ii(h.mpls)
                out.append("     %s%s" % (fmt_ipinfo(ctl, e), snprint_addr(ctl, e)))
                if ctl.mpls:
                    out += mpls_lines_ii(e.mpls)
            else:
                if h.mpls and z == 1 and ctl.mpls:
                    out += mpls_lines_plain(h.mpls, "    |  |+-- ")
                if z == 1:
                    out.append("    |  `|-- %s" % e.addr)
                else:
                    out.append("    |   |-- %s" % e.addr)
                if ctl.mpls:
                    out += mpls_lines_plain(e.mpls, "    |   +-- ")
        if not h.extra and h.mpls and ctl.mpls:
            if printii:
                out += mpls_lines_ii(h.mpls)
            else:
                out += mpls_lines_plain(h.mpls, "    |   +-- ")
    return "\n".join(out) + "\n"


def json_jansson(ctl, dst, tests, hubs):
    """mtr built with jansson: numbers as numbers, JSON_INDENT(4)."""
    hub_list = []
    for h in hubs:
        o = {"count": h.n, "host": snprint_addr(ctl, h)}
        if ctl.ipinfo_no == 0:
            o["ASN"] = fmt_ipinfo(ctl, h).strip()
        for key in ctl.order:
            if key == " ":
                continue
            v = stat_value(h, key)
            o[JSON_KEYS[key]] = v
        hub_list.append(o)
    doc = {"report": {"mtr": {"src": ctl.local, "dst": dst, "tos": 0, "tests": tests,
                               "psize": "64", "bitpattern": "0x00"},
                      "hubs": hub_list}}
    return json.dumps(doc, indent=4) + "\n"


def json_printf(ctl, dst, tests, hubs):
    """mtr without jansson: json_close() of ui/report.c, printf by printf."""
    p = []
    p.append("{\n")
    p.append("  \"report\": {\n")
    p.append("    \"mtr\": {\n")
    p.append("      \"src\": \"%s\",\n" % ctl.local)
    p.append("      \"dst\": \"%s\",\n" % dst)
    p.append("      \"tos\": \"0x%X\",\n" % 0)
    p.append("      \"psize\": \"%d\",\n" % 64)
    p.append("      \"bitpattern\": \"0x%02X\",\n" % 0)
    p.append("      \"tests\": \"%d\"\n" % tests)
    p.append("    },\n")
    p.append("    \"hubs\": [")
    active = list(ctl.order) + [None] * (20 - len(ctl.order))
    for idx, h in enumerate(hubs):
        p.append("{\n" if idx == 0 else "    {\n")
        p.append("      \"count\": \"%d\",\n" % h.n)
        p.append("      \"host\": \"%s\",\n" % snprint_addr(ctl, h))
        if ctl.ipinfo_no == 0:
            p.append("      \"ASN\": \"%s\",\n" % fmt_ipinfo(ctl, h).strip())
        for i, key in enumerate(active):
            j = -1 if key is None else (0 if key == " " else 1)
            if i + 1 == 20:
                p.append("\n")
            elif j > 0 and i != 0:
                p.append(",\n")
            if j <= 0:
                continue
            fmt = FIELDS[key][1]
            v = stat_value(h, key)
            if "f" in fmt:
                p.append("      \"%s\": %.2f" % (JSON_KEYS[key], v))
            else:
                p.append("      \"%s\": %d" % (JSON_KEYS[key], v))
        p.append("    }" if idx + 1 == len(hubs) else "    },\n")
    p.append("]\n")
    p.append("  }\n")
    p.append("}\n")
    return "".join(p)


def st(loss, snt, last, avg, best, wrst, stdev):
    return {"L": loss, "S": snt, "N": last, "A": avg, "B": best, "W": wrst, "V": stdev,
            "D": int(round(snt * loss / 100.0)), "R": snt - int(round(snt * loss / 100.0)),
            "G": avg}


LOST = lambda snt: st(100.0, snt, 0.0, 0.0, 0.0, 0.0, 0.0)


def write(name, text, prompt=None):
    with open(os.path.join(HERE, name), "w", newline="") as f:
        if prompt:
            f.write(prompt + "\n")
        f.write(text)


# --- On-prem App Connector in Frankfurt, default `mtr -r -c 10` (names, narrow) ---
onprem = [
    Hub(1, "10.20.0.1", "_gateway", stats=st(0.0, 10, 0.4, 0.4, 0.3, 0.6, 0.1)),
    Hub(2, "10.20.255.1", None, stats=st(0.0, 10, 1.1, 1.3, 1.0, 2.2, 0.4)),
    Hub(3, None, stats=LOST(10)),
    Hub(4, "4.69.163.254", "ae-1-3502.ear2.Frankfurt1.Level3.net",
        stats=st(10.0, 10, 4.8, 5.0, 4.6, 6.1, 0.5)),
    Hub(5, "62.67.36.138", "ZSCALER-INC.ear2.Frankfurt1.Level3.net",
        stats=st(0.0, 10, 5.2, 5.3, 5.1, 5.9, 0.2)),
    Hub(6, "165.225.72.38", None, stats=st(0.0, 10, 5.6, 5.5, 5.2, 5.9, 0.2)),
]
write("report_default.txt",
      report(Ctl("zpa-connector-fra-01"), "2025-03-05T09:12:44+0100", onprem))
write("report_wide.txt",
      report(Ctl("zpa-connector-fra-01", wide=True), "2025-03-05T09:13:02+0100",
             onprem[:5] + [Hub(6, "165.225.72.38", "fra4-2.sme.zscaler.net",
                               stats=st(0.0, 10, 5.6, 5.5, 5.2, 5.9, 0.2))]))

# --- AWS connector, numeric wide report with ECMP (`mtr -rwn -c 10`) ---
aws = [
    Hub(1, "52.93.8.175", stats=st(0.0, 10, 1.6, 1.7, 1.5, 2.1, 0.2)),
    Hub(2, "240.1.168.13", stats=st(0.0, 10, 1.2, 1.3, 1.1, 1.9, 0.2)),
    Hub(3, "242.4.76.131", stats=st(0.0, 10, 1.3, 1.4, 1.2, 2.0, 0.2),
        extra=[Host("242.4.76.133"), Host("242.4.77.7")]),
    Hub(4, "52.93.11.121", stats=st(0.0, 10, 2.6, 2.6, 2.4, 3.0, 0.2)),
    Hub(5, "27.111.228.245", "53813.sgw.equinix.com",
        stats=st(0.0, 10, 3.4, 3.3, 3.0, 3.9, 0.3)),
    Hub(6, "165.225.112.252", stats=st(0.0, 10, 1.3, 1.4, 1.2, 1.8, 0.2)),
]
write("report_wide_numeric.txt",
      report(Ctl("ip-172-32-10-171.ap-southeast-1.compute.internal", wide=True, dns=False),
             "2025-03-06T05:51:18+0000", aws))

# --- the same with -e: MPLS lines in the plain layout (`mtr -rwne -c 10`) ---
aws_mpls = [
    aws[0],
    Hub(2, "240.1.168.13", stats=st(0.0, 10, 1.2, 1.3, 1.1, 1.9, 0.2),
        mpls=[(24000, 0, 1, 1)]),
    Hub(3, "242.4.76.131", stats=st(0.0, 10, 1.3, 1.4, 1.2, 2.0, 0.2),
        mpls=[(24001, 0, 0, 1), (16005, 0, 1, 1)],
        extra=[Host("242.4.76.133", mpls=[(24017, 0, 1, 1)]), Host("242.4.77.7")]),
] + aws[3:]
write("report_wide_numeric_mpls.txt",
      report(Ctl("ip-172-32-10-171.ap-southeast-1.compute.internal", wide=True, dns=False,
                 mpls=True), "2025-03-06T05:53:40+0000", aws_mpls))

# --- `mtr -rwbzec 100 --tcp -P 443`: AS numbers, names and IPs, ???, ECMP, MPLS ---
asn_hubs = [
    Hub(1, "52.93.8.175", None, "16509", st(0.0, 100, 1.6, 1.7, 1.5, 2.4, 0.2)),
    Hub(2, "240.1.168.13", None, None, st(0.0, 100, 1405.3, 1405.1, 1403.9, 1406.2, 0.4),
        mpls=[(24000, 0, 1, 1)]),
    Hub(3, "242.4.76.131", None, None, st(1.0, 100, 1.3, 1.4, 1.2, 2.0, 0.2),
        extra=[Host("242.4.76.133", None, None), Host("242.4.77.7", None, None)]),
    Hub(4, None, None, None, LOST(100)),
    Hub(5, "52.93.11.121", "ec2-52-93-11-121.ap-southeast-1.compute.amazonaws.com", "16509",
        st(12.0, 100, 2.6, 2.6, 2.4, 3.0, 0.2),
        mpls=[(299808, 0, 0, 1), (16019, 0, 1, 1)],
        extra=[Host("52.93.11.123", "ec2-52-93-11-123.ap-southeast-1.compute.amazonaws.com",
                    "16509")]),
    Hub(6, "27.111.228.245", "53813.sgw.equinix.com", None,
        st(0.0, 100, 3399.2, 3398.7, 3397.0, 3401.1, 1.0)),
    Hub(7, "165.225.112.252", None, "53813", st(0.0, 100, 1.3, 1.4, 1.2, 1.8, 0.2)),
]
write("report_asn_both.txt",
      report(Ctl("ip-172-32-10-171.ap-southeast-1.compute.internal", wide=True,
                 show_ips=True, ipinfo_no=0, mpls=True),
             "2025-03-06T06:16:14+0000", asn_hubs),
      prompt="[admin@ip-172-32-10-171 ~]$ mtr -rwbzec 100 --tcp -P 443 165.225.112.252")

# --- IPv6, wide and numeric (`mtr -6 -rwn -c 10`) ---
v6 = [
    Hub(1, "2001:db8:10::1", stats=st(0.0, 10, 0.5, 0.5, 0.4, 0.7, 0.1)),
    Hub(2, "2001:db8:ffff:100::2", stats=st(0.0, 10, 1.9, 2.0, 1.8, 2.6, 0.2),
        extra=[Host("2001:db8:ffff:100::6")]),
    Hub(3, None, stats=LOST(10)),
    Hub(4, "2400:cb00:2049:1::a29f:1804", stats=st(0.0, 10, 7.7, 7.8, 7.5, 8.3, 0.2)),
    Hub(5, "2a03:eec0:1411::1", stats=st(0.0, 10, 8.1, 8.0, 7.8, 8.4, 0.2)),
]
write("report_ipv6_wide.txt",
      report(Ctl("zpa-connector-v6", wide=True, dns=False), "2025-03-07T11:02:09+0000", v6))
# ... and narrow (`mtr -6 -rn -c 10`): hop 4 is cut to 25 characters, which
# still reads as a (wrong) IPv6 address.
write("report_ipv6_narrow.txt",
      report(Ctl("zpa-connector-v6", dns=False), "2025-03-07T11:03:30+0000", v6))

# --- custom column order (`mtr -r -n -o "SLDR VWBAN"`): all seven, reordered ---
write("report_order.txt",
      report(Ctl("zpa-connector-fra-01", dns=False, order="SLDR VWBAN"),
             "2025-03-05T09:20:00+0100", onprem[:4]))

# --- JSON, jansson build (`mtr --json -b -c 10`) ---
json_hubs = [
    Hub(1, "52.93.8.175", None, stats=st(0.0, 10, 1.62, 1.71, 1.52, 2.13, 0.18)),
    Hub(2, "240.1.168.13", None, stats=st(0.0, 10, 1.23, 1.31, 1.12, 1.92, 0.22)),
    Hub(3, None, stats=LOST(10)),
    Hub(4, "52.93.11.121", "ec2-52-93-11-121.ap-southeast-1.compute.amazonaws.com",
        stats=st(10.0, 10, 2.61, 2.64, 2.41, 3.02, 0.19)),
    Hub(5, "27.111.228.245", "53813.sgw.equinix.com",
        stats=st(0.0, 10, 3.4, 3.31, 3.02, 3.9, 0.27)),
    Hub(6, "165.225.112.252", None, stats=st(0.0, 10, 1.33, 1.41, 1.2, 1.83, 0.19)),
]
write("json_jansson.json",
      json_jansson(Ctl("ip-172-32-10-171.ap-southeast-1.compute.internal", show_ips=True),
                   "165.225.112.252", 10, json_hubs))

# --- JSON, printf build with -z (`mtr --json -z -c 10`): strings for count ---
write("json_printf_asn.json",
      json_printf(Ctl("ip-172-32-10-171.ap-southeast-1.compute.internal", ipinfo_no=0),
                  "165.225.112.252", 10,
                  [Hub(1, "52.93.8.175", None, "16509", st(0.0, 10, 1.62, 1.71, 1.52, 2.13, 0.18)),
                   Hub(2, "240.1.168.13", None, None, st(0.0, 10, 1.23, 1.31, 1.12, 1.92, 0.22)),
                   Hub(3, None, None, None, LOST(10)),
                   Hub(4, "52.93.11.121", "ec2-52-93-11-121.ap-southeast-1.compute.amazonaws.com",
                       "16509", st(10.0, 10, 2.61, 2.64, 2.41, 3.02, 0.19)),
                   Hub(5, "27.111.228.245", "53813.sgw.equinix.com", None,
                       st(0.0, 10, 3.4, 3.31, 3.02, 3.9, 0.27)),
                   Hub(6, "165.225.112.252", None, "53813",
                       st(0.0, 10, 1.33, 1.41, 1.2, 1.83, 0.19))]))

# --- `mtr -rzc 10` (narrow, AS numbers, names): names cut to 19 characters ---
write("report_asn_narrow.txt",
      report(Ctl("zpa-connector-fra-01", ipinfo_no=0), "2025-03-05T09:25:31+0100",
             [Hub(1, "10.20.0.1", "_gateway", None, st(0.0, 10, 0.4, 0.4, 0.3, 0.6, 0.1)),
              Hub(2, "4.69.163.254", "ae-1-3502.ear2.Frankfurt1.Level3.net", "3356",
                  st(0.0, 10, 4.8, 5.0, 4.6, 6.1, 0.5)),
              Hub(3, "165.225.72.38", None, "53813", st(0.0, 10, 5.6, 5.5, 5.2, 5.9, 0.2))]))

# --- a report as pasted into a ticket: prose, code fence, prompts, CRLF,
# tabs for runs of blanks, e-mail quoting, a no-break space ---
pasted = report(Ctl("ip-172-32-10-171.ap-southeast-1.compute.internal", wide=True, dns=False),
                "2025-03-06T05:51:18+0000", aws).rstrip("\n").split("\n")
pasted[2] = pasted[2].replace("        ", "\t")
pasted[3] = "> " + pasted[3]
pasted[4] = pasted[4].replace("    0.0%", "\u00a0\u00a00.0%")
pasted[6] = "> " + pasted[6]
lines = (["Hi team, here is the mtr from the connector:", "",
          "```",
          "[admin@ip-172-32-10-171 ~]$ mtr -rwn -c 10 165.225.112.252"]
         + pasted
         + ["[admin@ip-172-32-10-171 ~]$ ", "```", "", "Thanks, Ana"])
write("pasted_damaged.txt", "\r\n".join(lines) + "\r\n")
