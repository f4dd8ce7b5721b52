#!/usr/bin/env python3
"""Benchmark tables and the fuller benchmark report for isolate-service.

  scripts/bench-report.py table RESULTS.jsonl
      Markdown tables of what scripts/bench.sh measured (its JSON lines).
  scripts/bench-report.py vs-node RESULTS.jsonl
      The comparison table of scripts/bench-vs-node.sh: the old Node.js service against ours.
  scripts/bench-report.py full [--seconds N]   (per run, default 5)
      Runs wrk (bench/wrk/json-api.lua) over every scenario at 1, 8 and 64 connections,
      measures start-up time to the first answer and memory per idle worker, and writes
      results/report-<time>/report.md (a Markdown table) and chart.svg (requests/s per
      scenario and connection count).

Nothing is asserted about speed: the figures are for reading and comparing within one run.
Only the Python standard library is used.
"""
import argparse, json, os, re, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVICE = os.path.join(ROOT, "target/release/isolate-service")
LUA = os.path.join(ROOT, "bench/wrk/json-api.lua")

README = {"code": "return env.prices.reduce((a,b) => a+b, 0) / env.prices.length",
          "env": {"prices": [83.50, 84.20, 82.10]}, "timeout": 5000}
HEAVY = "let s = 0; for (let i = 0; i < 1e6; i++) s += Math.sqrt(i); const m = new Map(); for (let i = 0; i < 1e4; i++) m.set('k' + i, i); s + m.size"
SCENARIOS = [
    ("/health (HTTP ceiling)", "/health", None),
    ("/execute trivial, minimal", "/execute", dict(README, preset="minimal")),
    ("/execute trivial, compute", "/execute", dict(README, preset="compute")),
    ("/execute heavy, compute", "/execute", {"code": HEAVY, "preset": "compute", "timeout": 5000}),
]
CONNECTIONS = [1, 8, 64]


def read_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def ms(us):
    return f"{us / 1000:.3f}"


def table(path):
    rows = read_lines(path)
    print("| scenario | connections | req/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | socket errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "rps" in r:
            print(f"| {r['label']} | {r['connections']} | {r['rps']:.0f} | {ms(r['p50_us'])} | {ms(r['p90_us'])} "
                  f"| {ms(r['p99_us'])} | {ms(r['max_us'])} | {r['non2xx']} | {r['errors']} |")
    js = next((r for r in rows if r.get("label") == "execute, JavaScript, data preset"), None)
    ts = next((r for r in rows if r.get("label") == "deno, TypeScript, data preset"), None)
    if js and ts and ts["rps"] > 0 and js["p50_us"] > 0 and js["p99_us"] > 0:
        print()
        print(f"TypeScript /deno against the same JavaScript on /execute: {js['rps'] / ts['rps']:.2f}x the time per "
              f"request (throughput), p50 {ts['p50_us'] / js['p50_us']:.2f}x, p99 {ts['p99_us'] / js['p99_us']:.2f}x "
              "(target: at most 1.5x)")
    spawn = [r for r in rows if "lockdown_us" in r]
    if spawn:
        print()
        print("| workers | lockdown per worker (us) | fork request to ready worker (us) |")
        print("|---|---|---|")
        for r in spawn:
            print(f"| {r['label']} ({r['workers']} live) | {r['lockdown_us']:.0f} | {r['spawn_us']:.0f} |")


def vs_node(path):
    rows = read_lines(path)
    by = {(r.get("service"), r["label"]): r for r in rows if "rps" in r}
    labels = list(dict.fromkeys(r["label"] for r in rows if "rps" in r and r.get("service") == "old"))
    print("| scenario | connections | old req/s | ours req/s | ours / old | p99 old ms | p99 ours ms |")
    print("|---|---|---|---|---|---|---|")
    for label in labels:
        old, ours = by.get(("old", label)), by.get(("ours", label))
        if not old or not ours:
            continue
        ratio = ours["rps"] / old["rps"] if old["rps"] else float("nan")
        print(f"| {label} | {old['connections']} | {old['rps']:.0f} | {ours['rps']:.0f} | {ratio:.2f} "
              f"| {ms(old['p99_us'])} | {ms(ours['p99_us'])} |")
    health = by.get(("ours", "health"))
    one = next((by[("ours", l)] for l in labels if ("ours", l) in by and by[("ours", l)]["connections"] == 1), None)
    if health and one and health["p50_us"] > 0:
        print()
        print(f"Ours at 1 connection: `/health` p50 {ms(health['p50_us'])} ms, `/execute` p50 {ms(one['p50_us'])} ms, "
              f"{one['p50_us'] / health['p50_us']:.1f} times the `/health` p50.")


def wrk(url, body, conns, seconds, label=""):
    env = dict(os.environ, WRK_LABEL=label, WRK_CONNECTIONS=str(conns), WRK_BODY="")
    if body is not None:
        env["WRK_BODY"] = json.dumps(body)
    args = ["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "--timeout", "10s", "-s", LUA, url]
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])


def start(config):
    d = tempfile.mkdtemp()
    path = os.path.join(d, "config.toml")
    with open(path, "w") as f:
        f.write(config)
    env = dict(os.environ, ISOLATE_PORT="0", ISOLATE_LOG_LEVEL="warn")
    env.pop("ISOLATE_AUTH_TOKEN", None)
    t0 = time.monotonic()
    proc = subprocess.Popen([SERVICE, "--config", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    line = proc.stdout.readline()
    m = re.search(r"listening on (http://\S+)", line)
    if not m:
        proc.kill()
        sys.exit("the service did not start")
    url = m.group(1)
    body = json.dumps(README).encode()
    urllib.request.urlopen(urllib.request.Request(url + "/execute", data=body), timeout=10).read()
    return proc, url, (time.monotonic() - t0) * 1000


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None


def svg(rows, path):
    w, h, left, top, bottom = 760, 360, 200, 30, 40
    groups = [s[0] for s in SCENARIOS]
    top_rps = max(r["rps"] for r in rows) or 1
    colors = {1: "#9ecae1", 8: "#4292c6", 64: "#08519c"}
    bar_h = (h - top - bottom) / len(groups) / (len(CONNECTIONS) + 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<text x="{left}" y="18" font-weight="bold">requests/s by scenario and connections (log scale)</text>']
    import math
    scale = lambda v: (w - left - 80) * math.log10(max(v, 1)) / math.log10(max(top_rps, 10))
    for gi, g in enumerate(groups):
        y0 = top + gi * bar_h * (len(CONNECTIONS) + 1)
        parts.append(f'<text x="{left - 8}" y="{y0 + bar_h * 2}" text-anchor="end">{g}</text>')
        for ci, c in enumerate(CONNECTIONS):
            r = next((r for r in rows if r["label"] == g and r["connections"] == c), None)
            if not r:
                continue
            y = y0 + ci * bar_h
            parts.append(f'<rect x="{left}" y="{y:.1f}" width="{scale(r["rps"]):.1f}" height="{bar_h - 2:.1f}" fill="{colors[c]}"/>')
            parts.append(f'<text x="{left + scale(r["rps"]) + 4:.1f}" y="{y + bar_h - 4:.1f}">{r["rps"]:.0f}</text>')
    for i, c in enumerate(CONNECTIONS):
        parts.append(f'<rect x="{left + i * 90}" y="{h - 22}" width="12" height="12" fill="{colors[c]}"/><text x="{left + i * 90 + 16}" y="{h - 12}">{c} conn.</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts))


def full(a):
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "isolate-service"], cwd=ROOT, check=True)
    outdir = os.path.join(ROOT, "results", "report-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    os.makedirs(outdir)

    startups = []
    for _ in range(3):
        proc, url, startup_ms = start("")
        startups.append(startup_ms)
        proc.terminate(); proc.wait()

    proc, url, _ = start("[workers]\nmax_concurrent = 64\nqueue_size = 256\n")
    try:
        time.sleep(1)
        status = json.load(urllib.request.urlopen(url + "/status"))
        idle = [w for w in status["workers"] if w["state"] == "idle"]
        pss = [p for p in (pss_kib(w["pid"]) for w in idle) if p]
        rss = [w["rssBytes"] // 1024 for w in idle if w.get("rssBytes")]
        rows = []
        for label, path, body in SCENARIOS:
            for c in CONNECTIONS:
                wrk(url + path, body, c, 1)  # warm-up
                r = wrk(url + path, body, c, a.seconds, label)
                rows.append(r)
                print(f"{label:28} {c:>3} conn  {r['rps']:>8.0f} req/s  p50 {ms(r['p50_us'])} ms  "
                      f"p99 {ms(r['p99_us'])} ms  non-2xx {r['non2xx']}  errors {r['errors']}", flush=True)
    finally:
        proc.terminate(); proc.wait()

    with open(os.path.join(outdir, "results.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    svg(rows, os.path.join(outdir, "chart.svg"))
    lines = ["# isolate-service benchmark report", "",
             f"Machine: {os.cpu_count()} CPUs; wrk -t1, {a.seconds:g} s per run after a 1 s warm-up; closed loop.", "",
             "| scenario | connections | req/s | p50 ms | p99 ms | non-2xx | socket errors |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['label']} | {r['connections']} | {r['rps']:.0f} | {ms(r['p50_us'])} | {ms(r['p99_us'])} | {r['non2xx']} | {r['errors']} |" for r in rows]
    lines += ["", "| measure | value |", "|---|---|",
              f"| start-up to first `/execute` answer | {min(startups):.0f} ms (best of 3; {', '.join(f'{s:.0f}' for s in startups)}) |",
              f"| memory per idle worker, PSS (shared pages split) | {sum(pss) / len(pss):.0f} KiB (mean of {len(pss)}) |" if pss else "| memory per idle worker, PSS | n/a |",
              f"| memory per idle worker, RSS | {sum(rss) / len(rss):.0f} KiB |" if rss else "| memory per idle worker, RSS | n/a |",
              "", "![requests/s](chart.svg)", ""]
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines[-8:]))
    print(f"report: {os.path.relpath(outdir, ROOT)}/report.md")


def main():
    ap = argparse.ArgumentParser(description="Benchmark tables and the fuller benchmark report.")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("table", help="tables of scripts/bench.sh's JSON lines").add_argument("results")
    sub.add_parser("vs-node", help="the table of scripts/bench-vs-node.sh").add_argument("results")
    f = sub.add_parser("full", help="run the fuller report")
    f.add_argument("--seconds", type=float, default=5)
    a = ap.parse_args()
    if a.command == "table":
        table(a.results)
    elif a.command == "vs-node":
        vs_node(a.results)
    else:
        full(a)


if __name__ == "__main__":
    main()
