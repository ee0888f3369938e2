#!/usr/bin/env python3
"""Turn the raw numbers of scripts/compare.sh into markdown tables and an SVG bar chart.

    compare_report.py --results results.tsv --meta meta.tsv [--doc docs/benchmarks.md] [--svg docs/img/compare.svg]

The markdown goes to stdout always. With --doc, it also replaces what lies between the
`<!-- compare:begin -->` and `<!-- compare:end -->` markers of that file (appending the
markers if they are missing). With --svg, a bar chart is written there: per row and server,
median req/s, p99 and server CPU per request, with min–max whiskers. Standard library only.

compare.sh keeps the two input files in docs/data/, so the page and the chart can be
regenerated (or re-analysed) without rerunning anything.

results.tsv, one line per measured run (written by compare.sh's `record`):
    section  row  server  run  rps  p99_ms  cpu_us_per_req  requests  errors
For section "memory" the numeric columns mean instead:
    section  row  server  1    connections  base_kib  kib_per_conn  held_kib  0
and for section "syscalls" (compare.sh SYSCALLS=1):
    section  row  server  1    syscalls_per_req  0  0  requests  syscalls
Optional further columns are key=value pairs that only some sections write:
    overload  p50_ms, p999_ms, unc_p99_ms (the light client's corrected p50/p99.9, uncorrected
              p99), cpu_pct (server CPU, % of one core), flood_rps, flood_mb_s, flood_errors;
              rps is the light client's achieved rate, p99 its corrected p99, cpu 0
    reactors  spread=a/b: the server's established connections per reactor, mid-run
    client    server_cpu_pct, client_cpu_pct: CPU of the server and of the load client, % of
              one core over the client's run
Sections with their own tables: "tls-echo" (servers "plain" and "TLS": one server, two
listeners; the ratio is the cost of TLS), "overload" (no chart), "reactors" (servers
"1 reactor" and "2 reactors"; the ratio is 2 over 1), "client" (no chart; the server column
names the load client, "reactor load" or "tokio_load", both driving one reactor echo server;
the ratio is ours over tokio's).
meta.tsv: key TAB value; `command` and `skipped` may repeat.

"ours" is the server named `reactor`; every other server in a row is a peer. The ratio
columns are ours/peer, computed as the median of the per-run ratios (run i of ours against
run i of the peer, which ran right after it): alternating A/B is what makes those pairs
comparable on a machine whose load drifts.
"""

import argparse
import html
import statistics
import sys
from collections import OrderedDict

OURS = "reactor"
BEGIN = "<!-- compare:begin -->"
END = "<!-- compare:end -->"
COLORS = {
    "reactor": "#d9730d", "nginx": "#2f8f46", "redis": "#c2362f", "tokio": "#3566b8", "threaded": "#8a5cb8",
    "plain": "#e8a464", "TLS": "#d9730d", "1 reactor": "#e8a464", "2 reactors": "#d9730d",
}
# Sections that are not throughput and have their own table (and no chart).
SPECIAL = ("memory", "syscalls", "overload", "client")
# The client section's two load clients (its records name them in the server column).
OUR_CLIENT, PEER_CLIENT = "reactor load", "tokio_load"
TITLES = {
    "http": "HTTP: `GET /`, reactor vs nginx (wrk)",
    "kv": "kv: reactor vs redis-server (redis-benchmark)",
    "memory": "Memory: idle connections",
    "echo": "Echo: reactor vs tokio current_thread vs threaded std (reactor load)",
    "syscalls": "System calls per echoed request (one run per row and server)",
    "tls-echo": "TLS: echo over TLS vs plain, one reactor with both listeners (reactor load)",
    "https": "HTTPS: `GET /` over TLS 1.3, reactor vs nginx (wrk)",
    "overload": "Overload: a light client's latency while another listener is flooded",
    "reactors": "Reactors: `--reactors 1` vs `--reactors 2`, the same load",
    "client": "Client: `reactor load` vs a tokio client (examples/tokio_load.rs), driving the same echo server",
    "post": "HTTP: `POST /echo`, reactor vs nginx with its echo module (reactor load --post)",
}


def read_tsv(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def load(results_path):
    """{section: {row: {server: {run: record}}}}, each level in first-seen order."""
    data = OrderedDict()
    for f in read_tsv(results_path):
        section, row, server, run = f[0], f[1], f[2], int(f[3])
        rps, p99, cpu, requests, errors = float(f[4]), float(f[5]), float(f[6]), float(f[7]), int(f[8])
        extra = dict(kv.split("=", 1) for kv in f[9:] if "=" in kv)
        rec = {"rps": rps, "p99": p99, "cpu": cpu, "requests": requests, "errors": errors, "extra": extra}
        data.setdefault(section, OrderedDict()).setdefault(row, OrderedDict()).setdefault(server, {})[run] = rec
    return data


# ------------------------------------------------------------------------------ numbers
def med(values):
    return statistics.median(values) if values else float("nan")


def spread(values, fmt):
    """'median (min–max)', or just the value for a single run."""
    if not values:
        return "—"
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(med(values))} ({fmt(min(values))}–{fmt(max(values))})"


def kilo(x):
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k"


def ms(x):
    return f"{x:.2f}" if x >= 0.1 else f"{x:.3f}"


def us(x):
    return f"{x:.2f}"


def paired_ratio(ours, peer, key):
    """Median over runs present for both of ours[run][key] / peer[run][key]."""
    runs = sorted(set(ours) & set(peer))
    ratios = [ours[r][key] / peer[r][key] for r in runs if peer[r][key] > 0]
    return f"{med(ratios):.2f}×" if ratios else "—"


def xval(rec, key):
    """A float from a record's key=value columns (nan if absent or unreadable)."""
    try:
        return float(rec["extra"][key])
    except (KeyError, ValueError):
        return float("nan")


def error_notes(rows):
    notes = []
    for row, servers in rows.items():
        for server, runs in servers.items():
            errors = sum(r["errors"] for r in runs.values())
            if errors:
                notes.append(f"{server} / {row}: {errors} errors over its runs.")
    return notes


# ------------------------------------------------------------------------------ markdown
def throughput_table(rows):
    # The user/kernel split is in runs recorded since it was added (key user_us); older result
    # files render without those two columns.
    split = any(
        "user_us" in rec["extra"] for servers in rows.values() for runs in servers.values() for rec in runs.values()
    )
    out = [
        "| row | server | req/s median (min–max) | p99 ms median (min–max) "
        "| server CPU µs/req median (min–max) "
        + ("| of which user / kernel µs/req | " if split else "| ")
        + "runs | ours/peer req/s | ours/peer CPU/req |"
        + (" ours/peer user, kernel |" if split else ""),
        "|---|---|---:|---:|---:|" + ("---:|" if split else "") + "---:|---:|---:|" + ("---:|" if split else ""),
    ]
    notes = []
    for row, servers in rows.items():
        ours = servers.get(OURS, {})
        for rec in (rec for runs in servers.values() for rec in runs.values()):
            rec["user"] = xval(rec, "user_us")
            rec["kernel"] = rec["cpu"] - rec["user"]
        for server, runs in servers.items():
            recs = [runs[r] for r in sorted(runs)]
            if server == OURS or not ours:
                r_rps = r_cpu = r_split = "—"
            else:
                r_rps, r_cpu = paired_ratio(ours, runs, "rps"), paired_ratio(ours, runs, "cpu")
                r_split = f"{paired_ratio(ours, runs, 'user')}, {paired_ratio(ours, runs, 'kernel')}"
            name = f"**{server}**" if server == OURS else server
            user_kernel = f"| {us(med([x['user'] for x in recs]))} / {us(med([x['kernel'] for x in recs]))} " if split else ""
            out.append(
                f"| {row} | {name} | {spread([x['rps'] for x in recs], kilo)} "
                f"| {spread([x['p99'] for x in recs], ms)} | {spread([x['cpu'] for x in recs], us)} "
                f"{user_kernel}| {len(recs)} | {r_rps} | {r_cpu} |" + (f" {r_split} |" if split else "")
            )
            errors = sum(x["errors"] for x in recs)
            if errors:
                notes.append(f"{server} / {row}: {errors} socket errors or non-2xx replies over its runs.")
    return out, notes


def memory_table(rows):
    out = [
        "| row | server | connections | RSS before (MiB) | RSS holding them (MiB) | KiB per connection | ours/peer |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row, servers in rows.items():
        ours = servers.get(OURS, {}).get(1)
        for server, runs in servers.items():
            r = runs[1]
            ratio = "—"
            if server != OURS and ours and r["cpu"] > 0:
                ratio = f"{ours['cpu'] / r['cpu']:.2f}×"
            name = f"**{server}**" if server == OURS else server
            out.append(
                f"| {row} | {name} | {int(r['rps']):,} | {r['p99'] / 1024:.1f} "
                f"| {r['requests'] / 1024:.1f} | {r['cpu']:.2f} | {ratio} |"
            )
    return out


def syscalls_table(rows):
    out = [
        "| row | server | syscalls per request | requests | ours/peer |",
        "|---|---|---:|---:|---:|",
    ]
    for row, servers in rows.items():
        ours = servers.get(OURS, {}).get(1)
        for server, runs in servers.items():
            r = runs[1]
            ratio = "—"
            if server != OURS and ours and r["rps"] > 0:
                ratio = f"{ours['rps'] / r['rps']:.2f}×"
            name = f"**{server}**" if server == OURS else server
            out.append(f"| {row} | {name} | {r['rps']:.3f} | {int(r['requests']):,} | {ratio} |")
    return out


def tls_echo_table(rows):
    """plain vs TLS on one server: each row's two servers side by side, and the cost ratios."""
    out = [
        "| messages | plain req/s | TLS req/s | plain/TLS req/s (goal ≤ 1.5×) | plain CPU µs/req "
        "| TLS CPU µs/req | TLS/plain CPU/req | plain p99 ms | TLS p99 ms | runs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row, servers in rows.items():
        plain, tls = servers.get("plain", {}), servers.get("TLS", {})
        col = lambda runs, key, fmt: spread([runs[r][key] for r in sorted(runs)], fmt)
        out.append(
            f"| {row} | {col(plain, 'rps', kilo)} | {col(tls, 'rps', kilo)} | {paired_ratio(plain, tls, 'rps')} "
            f"| {col(plain, 'cpu', us)} | {col(tls, 'cpu', us)} | {paired_ratio(tls, plain, 'cpu')} "
            f"| {col(plain, 'p99', ms)} | {col(tls, 'p99', ms)} | {min(len(plain), len(tls))} |"
        )
    return out


def overload_table(rows):
    out = [
        "| light client | achieved req/s | p50 ms | p99 ms | p99.9 ms | uncorrected p99 ms "
        "| flood req/s | flood MB/s in | server CPU % | runs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    p99s = {}
    for row, servers in rows.items():
        for _server, runs in servers.items():
            recs = [runs[r] for r in sorted(runs)]
            p99s[row] = runs
            flood = [xval(r, "flood_rps") for r in recs]
            has_flood = any(x == x for x in flood)  # not all nan
            out.append(
                f"| {row} | {spread([r['rps'] for r in recs], kilo)} "
                f"| {spread([xval(r, 'p50_ms') for r in recs], ms)} | {spread([r['p99'] for r in recs], ms)} "
                f"| {spread([xval(r, 'p999_ms') for r in recs], ms)} | {spread([xval(r, 'unc_p99_ms') for r in recs], ms)} "
                f"| {spread(flood, kilo) if has_flood else '—'} "
                f"| {spread([xval(r, 'flood_mb_s') for r in recs], lambda x: f'{x:.0f}') if has_flood else '—'} "
                f"| {spread([xval(r, 'cpu_pct') for r in recs], lambda x: f'{x:.0f}')} | {len(recs)} |"
            )
    names = list(p99s)
    if len(names) == 2:
        alone, flooded = p99s[names[0]], p99s[names[1]]
        runs = sorted(set(alone) & set(flooded))
        r99 = [flooded[r]["p99"] / alone[r]["p99"] for r in runs if alone[r]["p99"] > 0]
        r999 = [xval(flooded[r], "p999_ms") / xval(alone[r], "p999_ms") for r in runs if xval(alone[r], "p999_ms") > 0]
        if r99:
            out += ["", f"Under the flood, the light client's p99 is {med(r99):.2f}× and its p99.9 "
                    f"{med(r999):.2f}× what they are alone (median of per-run ratios)."]
    return out


def reactors_table(rows):
    out = [
        "| row | reactors | req/s median (min–max) | p99 ms median (min–max) | server CPU µs/req median (min–max) "
        "| runs | req/s vs 1 reactor | connections per reactor (each run) |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row, servers in rows.items():
        names = list(servers)
        base = servers[names[0]]
        for server, runs in servers.items():
            recs = [runs[r] for r in sorted(runs)]
            ratio = "—" if server == names[0] else paired_ratio(runs, base, "rps")
            spreads = ", ".join(r["extra"].get("spread", "?") for r in recs)
            out.append(
                f"| {row} | {server} | {spread([x['rps'] for x in recs], kilo)} "
                f"| {spread([x['p99'] for x in recs], ms)} | {spread([x['cpu'] for x in recs], us)} "
                f"| {len(recs)} | {ratio} | {spreads} |"
            )
    return out


def client_table(rows):
    """The two load clients against one server: throughput, p99, and where the CPU went."""
    out = [
        "| row | client | req/s median (min–max) | p99 ms median (min–max) | server CPU µs/req "
        "| server CPU % | client CPU % | runs | ours/tokio req/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pct = lambda x: f"{x:.0f}"
    for row, clients in rows.items():
        ours = clients.get(OUR_CLIENT, {})
        for client, runs in clients.items():
            recs = [runs[r] for r in sorted(runs)]
            ratio = paired_ratio(ours, runs, "rps") if client == PEER_CLIENT and ours else "—"
            name = f"**{client}**" if client == OUR_CLIENT else client
            out.append(
                f"| {row} | {name} | {spread([x['rps'] for x in recs], kilo)} "
                f"| {spread([x['p99'] for x in recs], ms)} | {spread([x['cpu'] for x in recs], us)} "
                f"| {spread([xval(x, 'server_cpu_pct') for x in recs], pct)} "
                f"| {spread([xval(x, 'client_cpu_pct') for x in recs], pct)} | {len(recs)} | {ratio} |"
            )
    return out


def markdown(data, meta, svg_rel):
    one = {k: v[0] for k, v in meta.items()}
    out = [f"### Run of {one.get('date', '?')}", ""]
    if one.get("note"):
        out += [f"> **{one['note']}**", ""]
    out += [
        "| | |",
        "|---|---|",
        f"| machine | {one.get('cpu', '?')}, {one.get('cores', '?')} cores, Linux {one.get('kernel', '?')} |",
        f"| load average (1/5/15 min) | {one.get('loadavg_start', '?')} at start, {one.get('loadavg_end', '?')} at end |",
        f"| reactor | `{one.get('reactor', '?')}`, {one.get('rustc', '?')}, `cargo build --release` |",
        f"| peers | nginx {one.get('nginx', '?')}, redis-server {one.get('redis', '?')}, "
        f"tokio {one.get('tokio', '?')} (examples/tokio_echo.rs), examples/threaded_echo.rs |",
        f"| clients | wrk {one.get('wrk', '?')}, redis-benchmark {one.get('redis_benchmark', '?')} |",
        f"| settings | `{one.get('settings', '?')}` |",
        f"| pinning | {one.get('pinning', '?')} |",
    ]
    for key in ("reply_bytes_reactor", "reply_bytes_nginx"):
        if key in one:
            out.append(f"| `GET /` reply, {key.rsplit('_', 1)[1]} | {one[key]} bytes (head+body) |")
    for key in ("tls_reactor", "tls_nginx"):
        if key in one:
            out.append(f"| HTTPS, {key.split('_', 1)[1]} (as `openssl s_client` negotiates) | {one[key]} |")
    out.append("")
    for section, rows in data.items():
        out += [f"#### {TITLES.get(section, section)}", ""]
        if section == "syscalls":
            out += syscalls_table(rows)
            out += ["", "Every system call the server's threads entered during one `reactor load` run, "
                    "from before the first connect to after the last close, ÷ requests completed.", ""]
        elif section == "tls-echo":
            out += tls_echo_table(rows)
            out += ["", "One `reactor serve` with a plain and a `tls://` echo listener; the same "
                    "`reactor load` settings against each, alternating (with `--tls --ca cert.pem` for TLS). "
                    "Handshakes happen before measuring starts: this is the cost of TLS on established sessions.", ""]
            out += [f"*{n}*" for n in error_notes(rows)] + ([""] if error_notes(rows) else [])
        elif section == "https":
            table, notes = throughput_table(rows)
            out += table + ["", "Goal (issue 5): reactor's req/s ≥ nginx's. Both serve the same certificate "
                            "(P-256); nginx is limited to TLS 1.3 (`ssl_protocols TLSv1.3`), reactor (rustls) "
                            "offers 1.3 and 1.2 and wrk's OpenSSL picks 1.3 with both.", ""]
            out += [f"*{n}*" for n in notes] + ([""] if notes else [])
        elif section == "overload":
            out += overload_table(rows)
            out += ["", "Latencies of the light client (open loop: counted from when each request was due), "
                    "medians (min–max) over the runs. Both clients run on the same core (the client core), "
                    "so under the flood the light client also competes with the flood for CPU: its "
                    "latency includes that, not only the server's. A corrected p99 far above the "
                    "uncorrected one means the delay was before the request left the client (waiting "
                    "for its core or its connection), not in the server. Server CPU % (of one core, "
                    "over the run) says whether the flood saturated the server at all; well below 100 "
                    "means the flood was limited by the client core, not by the server.", ""]
            out += [f"*{n}*" for n in error_notes(rows)] + ([""] if error_notes(rows) else [])
        elif section == "reactors":
            out += reactors_table(rows)
            out += ["", "1 reactor: server on the server core, client on the client core, as in every other "
                    "section. 2 reactors: server and client both allowed on both cores. **On a 2-core "
                    "machine the load generator competes with the two reactors for the same cores**, so "
                    "this shows what a second reactor buys here, not how it scales on a larger machine. "
                    "Connections per reactor: established connections registered in each reactor's epoll "
                    "instance halfway through the run.", ""]
            out += [f"*{n}*" for n in error_notes(rows)] + ([""] if error_notes(rows) else [])
        elif section == "client":
            out += client_table(rows)
            out += ["", "One `reactor serve --echo` on the server core; `reactor load echo` and "
                    "`examples/tokio_load` (tokio `current_thread`, one task per connection, every echoed "
                    "byte checked, as ours does) take turns driving it from the client core with the same "
                    "connections, message size and depth. Goal (issue 8): ours/tokio req/s ≥ 1.0×, i.e. "
                    "our load generator drives the server at least as hard as a tokio client would. "
                    "Server CPU µs/req shows whether the server did the same work per request for both; "
                    "CPU % (of one core, over the client's run) shows which side was the limit: a client "
                    "near 100% with the server well below it is client-bound.", ""]
            out += [f"*{n}*" for n in error_notes(rows)] + ([""] if error_notes(rows) else [])
        elif section == "memory":
            out += memory_table(rows)
            out += ["", "KiB per connection = (RSS holding them − RSS before) ÷ connections; RSS summed "
                    "over the server's processes (VmRSS). Kernel socket buffers are not in RSS.", ""]
        else:
            table, notes = throughput_table(rows)
            out += table + [""]
            out += [f"*{n}*" for n in notes] + ([""] if notes else [])
    for skipped in meta.get("skipped", []):
        out += [f"*{skipped}.*", ""]
    if svg_rel and any(s not in SPECIAL for s in data):
        out += [f"![median throughput and p99 per row and server]({svg_rel})", ""]
    out += ["Commands:", "", "```sh"] + meta.get("command", []) + ["```"]
    return "\n".join(out) + "\n"


def update_doc(path, section_md):
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# Benchmarks\n"
    block = (
        f"{BEGIN}\n<!-- written by scripts/compare.sh; everything between these markers is replaced "
        f"on each run -->\n\n{section_md}\n{END}"
    )
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


# ------------------------------------------------------------------------------ SVG
def svg_chart(data, meta):
    """Horizontal bars, one block per section, one line per row and server; three panels:
    median req/s, median p99, median server CPU per request, each with a min–max whisker.

    Bars are scaled per row (the longest bar of a row, whisker included, fills the panel):
    the chart is for comparing ours with the peer within a row; the printed values carry the
    absolute numbers. A single scale would make the -P 1 rows invisible next to -P 16."""
    sections = [(s, rows) for s, rows in data.items() if s not in SPECIAL]
    panels = (
        ("rps", "req/s (more is better)", kilo),
        ("p99", "p99 latency, ms (less is better)", ms),
        ("cpu", "server CPU µs/request (less is better)", us),
    )
    bar_h, gap, label_w, bar_w, value_w, pad = 16, 4, 150, 190, 64, 14
    panel_w = bar_w + value_w
    width = pad + label_w + len(panels) * panel_w + pad
    note = meta.get("note", [""])[0]
    subtitle = f"reactor vs peers · {meta.get('date', ['?'])[0]} · {meta.get('cpu', ['?'])[0]}, {meta.get('cores', ['?'])[0]} cores"
    parts = [f'<text x="{pad}" y="18" class="s">{html.escape(subtitle)}</text>']
    y = 22
    if note:
        parts.append(f'<text x="{pad}" y="36" class="n">{html.escape(note)}</text>')
        y = 40
    parts.append(f'<text x="{pad}" y="{y + 14}" class="s">bars scaled per row; whiskers: min–max over the runs; values: medians</text>')
    y += 42
    for section, rows in sections:
        parts.append(f'<text x="{pad}" y="{y}" class="h">{html.escape(TITLES.get(section, section).replace("`", ""))}</text>')
        y += 8
        for col, (_, unit, _) in enumerate(panels):
            parts.append(f'<text x="{pad + label_w + col * panel_w}" y="{y + 12}" class="u">{html.escape(unit)}</text>')
        y += 20
        for row, servers in rows.items():
            for server, runs in servers.items():
                parts.append(f'<text x="{pad + label_w - 6}" y="{y + 12}" class="l">{html.escape(row)} · {html.escape(server)}</text>')
                for col, (key, _, fmt) in enumerate(panels):
                    top = max(r[key] for runs_ in servers.values() for r in runs_.values()) or 1
                    x0 = pad + label_w + col * panel_w
                    vals = [r[key] for r in runs.values()]
                    m = med(vals)
                    w, lo, hi = (bar_w * v / top for v in (m, min(vals), max(vals)))
                    color = COLORS.get(server, "#777")
                    parts.append(f'<rect x="{x0}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
                    if len(vals) > 1:
                        cy = y + bar_h / 2
                        parts.append(f'<line x1="{x0 + lo:.1f}" y1="{cy}" x2="{x0 + hi:.1f}" y2="{cy}" class="w"/>')
                    parts.append(f'<text x="{x0 + max(w, hi) + 4:.1f}" y="{y + 12}" class="v">{fmt(m)}</text>')
                y += bar_h + gap
            y += 2 * gap
        y += 24
    height = y
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">',
            "<style>.h{font-size:14px;font-weight:bold}.u{font-size:11px;fill:#555}.l{font-size:11px;text-anchor:end}"
            ".v{font-size:11px}.w{stroke:#000;stroke-width:1.2}.s{font-size:11px;fill:#555}"
            ".n{font-size:12px;font-weight:bold;fill:#b00}</style>",
            f'<rect width="{width}" height="{height}" fill="#fff"/>',
            *parts,
            "</svg>",
            "",
        ]
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--doc")
    ap.add_argument("--svg")
    a = ap.parse_args()
    data = load(a.results)
    meta = OrderedDict()
    for f in read_tsv(a.meta):
        meta.setdefault(f[0], []).append(f[1] if len(f) > 1 else "")
    if not data:
        print("no results recorded", file=sys.stderr)
    svg_rel = "img/compare.svg" if a.svg else None
    md = markdown(data, meta, svg_rel)
    print(md)
    if a.svg and any(s not in SPECIAL for s in data):
        with open(a.svg, "w") as f:
            f.write(svg_chart(data, meta))
        print(f"wrote {a.svg}", file=sys.stderr)
    if a.doc:
        update_doc(a.doc, md)
        print(f"updated {a.doc}", file=sys.stderr)


if __name__ == "__main__":
    main()
