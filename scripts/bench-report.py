#!/usr/bin/env python3
"""Benchmark report for isolate-service.

Runs the repo's load generator (target/release/isolate-bench) over every scenario at 1, 8 and
64 connections, measures start-up time to the first answer and memory per idle worker, and
writes results/report-<time>/report.md (a Markdown table) and chart.svg (requests/s per
scenario and connection count). Nothing is asserted: the figures are for reading and comparing.

Usage: scripts/bench-report.py [--seconds N]   (per run, default 5)
Only the Python standard library is used.
"""
import argparse, json, os, re, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVICE = os.path.join(ROOT, "target/release/isolate-service")
BENCH = os.path.join(ROOT, "target/release/isolate-bench")

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


def start(config):
    d = tempfile.mkdtemp()
    path = os.path.join(d, "config.toml")
    with open(path, "w") as f:
        f.write(config)
    env = dict(os.environ, ISOLATE_PORT="0", ISOLATE_LOG_LEVEL="warn")
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


def run(url, path, body, conns, seconds):
    args = [BENCH, "--url", url + path, "--connections", str(conns), "--duration", str(seconds),
            "--warmup", "1", "--expect-status", "200", "--json"]
    if body is not None:
        args += ["--body", json.dumps(body)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "isolate-service", "-p", "isolate-bench"], cwd=ROOT, check=True)
    outdir = os.path.join(ROOT, "results", "report-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    os.makedirs(outdir)

    startups = []
    for _ in range(3):
        proc, url, ms = start("")
        startups.append(ms)
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
                r = run(url, path, body, c, a.seconds)
                r["label"] = label
                rows.append(r)
                print(f"{label:28} {c:>3} conn  {r['rps']:>8.0f} req/s  p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  errors {r['errors']}", flush=True)
    finally:
        proc.terminate(); proc.wait()

    with open(os.path.join(outdir, "results.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    svg(rows, os.path.join(outdir, "chart.svg"))
    lines = ["# isolate-service benchmark report", "",
             f"Machine: {os.cpu_count()} CPUs; {a.seconds:g} s per run after a 1 s warm-up; closed loop.", "",
             "| scenario | connections | req/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['label']} | {r['connections']} | {r['rps']:.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['errors']} |" for r in rows]
    lines += ["", "| measure | value |", "|---|---|",
              f"| start-up to first `/execute` answer | {min(startups):.0f} ms (best of 3; {', '.join(f'{s:.0f}' for s in startups)}) |",
              f"| memory per idle worker, PSS (shared pages split) | {sum(pss) / len(pss):.0f} KiB (mean of {len(pss)}) |" if pss else "| memory per idle worker, PSS | n/a |",
              f"| memory per idle worker, RSS | {sum(rss) / len(rss):.0f} KiB |" if rss else "| memory per idle worker, RSS | n/a |",
              "", "![requests/s](chart.svg)", ""]
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines[-8:]))
    print(f"report: {os.path.relpath(outdir, ROOT)}/report.md")


if __name__ == "__main__":
    main()
