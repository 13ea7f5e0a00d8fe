#!/usr/bin/env python3
"""Turns bench/pcap.sh's raw results into the Markdown report (stdout).

usage: summarize.py BENCH_DIR "FILE FILE ..."
"""
import json
import os
import statistics
import sys

bench_dir, files = sys.argv[1], sys.argv[2].split()
raw = os.path.join(bench_dir, "raw")
TOOLS = ["cat", "pathproof", "tcpdump", "tshark"]


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def timing(name):
    """(median, min, max, cpu mean, runs) in seconds, or None."""
    h = read(os.path.join(raw, name + ".hyperfine.json"))
    if h:
        r = json.loads(h)["results"][0]
        t = r["times"]
        return statistics.median(t), min(t), max(t), r["user"] + r["system"], len(t)
    loop = read(os.path.join(raw, name + ".loop"))
    if loop:
        rows = [list(map(float, l.split()[:3])) for l in loop.splitlines() if l.strip() and l[0].isdigit()]
        wall = [r[0] for r in rows]
        cpu = [r[1] + r[2] for r in rows]
        return statistics.median(wall), min(wall), max(wall), statistics.mean(cpu), len(rows)
    return None


def rss(name):
    r = read(os.path.join(raw, name + ".rss"))
    if not r:
        return None, None
    last = r.strip().splitlines()[-1].split()
    return int(last[0]) / 1024, int(last[1]) if len(last) > 1 else None


def gen_summary(f):
    s = read(os.path.join(bench_dir, f + ".json"))
    return json.loads(s) if s else {}


def fmt_int(n):
    return f"{n:,.0f}"


def rate(n):
    if n >= 1e6:
        return f"{n / 1e6:.2f} M"
    return f"{n / 1e3:.0f} k"


ctx = read(os.path.join(raw, "context.txt"), "")
print("# pathproof pcap benchmark\n")
print("```")
print(ctx.rstrip())
print("```\n")

print("## Captures (written by `examples/gen_capture.rs`)\n")
print("| file | link type | format | size | frames | TCP flows | resets toward client on 443 (injected / genuine) | span |")
print("|---|---|---|---|---|---|---|---|")
for f in files:
    g = gen_summary(f)
    if not g:
        continue
    print(
        f"| {f} | {g['link_type']} | {g['format']} | {g['bytes'] / 1e6:,.0f} MB | {fmt_int(g['frames'])} "
        f"| {fmt_int(g['tcp_flows'])} | {fmt_int(g['rst_toward_client_443'])} ({fmt_int(g['rst_injected_443'])} / "
        f"{fmt_int(g['rst_genuine_443'])}) | {g['span_s']:.0f} s |"
    )

print("\n## Throughput (warm page cache; stdout to /dev/null)\n")
print(
    "MB/s = file bytes / wall median (10^6 B). CPU = user + sys, mean per run (the number that other "
    "jobs on the machine disturb least). Peak RSS from one extra run under `/usr/bin/time`.\n"
)
print("| command | input | runs | wall median s (min–max) | CPU s | MB/s | pkts/s | peak RSS | vs tcpdump (wall / CPU) |")
print("|---|---|---|---|---|---|---|---|---|")
results = {}
rows = []
for f in files:
    g = gen_summary(f)
    path = os.path.join(bench_dir, f)
    size = os.path.getsize(path) if os.path.exists(path) else 0
    frames = g.get("frames", 0)
    for tool in TOOLS:
        name = f"{tool}--{f}"
        t = timing(name)
        if not t:
            continue
        med, lo, hi, cpu, runs = t
        mem, _ = rss(name)
        results[(tool, f)] = (med, cpu, mem)
        rows.append((tool, f, size, frames, t, mem))
def per(x, y, fmt):
    # /usr/bin/time counts in 10 ms steps: a fast run (cat on the small
    # capture) can have a median of 0, which has no rate.
    return format(x / y, fmt) if y > 0 else "–"


for tool, f, size, frames, (med, lo, hi, cpu, runs), mem in rows:
    ratio = ""
    if tool != "tcpdump" and ("tcpdump", f) in results:
        tmed, tcpu, _ = results[("tcpdump", f)]
        ratio = f"{per(med, tmed, '.2f')}× / {per(cpu, tcpu, '.2f')}×"
    cmd = read(os.path.join(raw, f"{tool}--{f}.cmd"), tool).strip()
    cmd = cmd.replace(f, "F")
    if tool == "pathproof":
        cmd = "pathproof pcap F --json"
    mem_s = f"{mem:,.0f} MiB" if mem is not None else "?"
    print(
        f"| `{cmd}` | {f} | {runs} | {med:.3f} ({lo:.3f}–{hi:.3f}) | {cpu:.2f} | {per(size / 1e6, med, ',.0f')} "
        f"| {rate(frames / med) if med > 0 else '–'} | {mem_s} | {ratio} |"
    )

print("\n### pathproof / tcpdump\n")
print("| input | wall ratio | CPU ratio | pathproof ns/frame (CPU) | tcpdump ns/frame (CPU) |")
print("|---|---|---|---|---|")
for f in files:
    if ("pathproof", f) in results and ("tcpdump", f) in results:
        pm, pc, _ = results[("pathproof", f)]
        tm, tc, _ = results[("tcpdump", f)]
        frames = gen_summary(f).get("frames", 1)
        print(f"| {f} | {per(pm, tm, '.2f')}× | {per(pc, tc, '.2f')}× | {pc / frames * 1e9:.0f} | {tc / frames * 1e9:.0f} |")

print("\n## Memory flatness (pathproof peak RSS)\n")
small = [f for f in files if f.startswith("small")]
big = [f for f in files if f.startswith("big")]
for s in small:
    for b in big:
        if ("pathproof", s) in results and ("pathproof", b) in results:
            ms, mb = results[("pathproof", s)][2], results[("pathproof", b)][2]
            gs, gb = gen_summary(s), gen_summary(b)
            print(
                f"- {s} ({gs.get('bytes', 0) / 1e6:,.0f} MB, {fmt_int(gs.get('frames', 0))} frames): {ms:,.0f} MiB; "
                f"{b} ({gb.get('bytes', 0) / 1e6:,.0f} MB, {fmt_int(gb.get('frames', 0))} frames): {mb:,.0f} MiB "
                f"→ ×{mb / ms:.2f} for ×{gb.get('frames', 0) / max(gs.get('frames', 1), 1):.1f} the frames"
            )

print("\n## Counts: pathproof's report against the generator's summary\n")
print(
    "| input | frames (gen / pathproof) | TCP flows (gen / pathproof) | RSTs in file (gen / tcpdump) "
    "| resets to client on 443 (gen / pathproof `rsts_total`; `rsts[]` lists the kept flows') | pathproof origin injected / target / unclear "
    "| gen injected / genuine | verdict (exit) |"
)
print("|---|---|---|---|---|---|---|---|")
for f in files:
    g = gen_summary(f)
    rep = read(os.path.join(raw, f"report--{f}.json"))
    if not g or not rep:
        continue
    try:
        r = json.loads(rep)
    except json.JSONDecodeError:
        print(f"| {f} | report is not JSON | | | | | | |")
        continue
    origins = {"injected": 0, "target": 0, "unclear": 0}
    for x in r["rsts"]:
        origins[x["origin"]] = origins.get(x["origin"], 0) + 1
    td = read(os.path.join(raw, f"tcpdump-rsts--{f}"), "?").strip()
    gen_rsts = sum(g["rst_ttl"].values())
    code = rss(f"pathproof--{f}")[1]
    mark = lambda a, b: f"{fmt_int(a)} / {fmt_int(b)}" + ("" if a == b else " ≠")
    print(
        f"| {f} | {mark(g['frames'], r['input']['frames'])} | {mark(g['tcp_flows'], r['flows_total'])} "
        f"| {fmt_int(gen_rsts)} / {td} | {mark(g['rst_toward_client_443'], r.get('rsts_total', len(r['rsts'])))} ({fmt_int(len(r['rsts']))} listed) "
        f"| {origins['injected']} / {origins['target']} / {origins['unclear']} "
        f"| {g['rst_injected_443']} / {g['rst_genuine_443']} | {r['verdict']['class']} ({code}) |"
    )
