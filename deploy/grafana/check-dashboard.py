#!/usr/bin/env python3
"""Checks the Grafana dashboard deploy/grafana/rebalancer.json (run by .ci/alert-checks).

Why: Grafana accepts a dashboard whose queries do not parse and shows "no data";
a hard-coded data source uid breaks the import on every other Grafana. This
checks, with the standard library and promtool only:

- the file is JSON with uid, title, a description and schemaVersion >= 38;
- a `datasource` variable of type datasource (prometheus), and every data
  source reference is `${datasource}` (no hard-coded uid);
- panel ids are unique; every panel has a title and a description, lies inside
  the 24-column grid and overlaps no other;
- every PromQL expression (panel targets, and the selector of each
  `label_values(...)` variable query) parses: each becomes a recording rule of
  a temporary rules file, one group per panel query, checked by
  `promtool check rules` (Grafana's $__rate_interval and variables replaced by
  a duration or a plain string first);
- with --metrics FILE (a /metrics scrape of `rebalancer run`): every
  rebalancer_* and process_* metric the dashboard and the --rules files use is
  in it, so a renamed metric fails here instead of as an empty panel.

Usage: check-dashboard.py DASHBOARD.json [--rules RULES.yml ...] [--metrics FILE]
Exits 1 naming each problem (panel title, query refId, what to fix).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_BUILTIN_UID = "-- Grafana --"
# Grafana's own interval variables become durations; any other variable
# ($job, ${instance}) becomes a plain word (they sit inside label matchers).
DURATION_VARS = re.compile(r"\$\{?(__rate_interval|__interval|__range)\}?")
OTHER_VARS = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}?")
LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", re.S)
# Metric names of ours: not preceded by ':' or a word character, so the
# recording rule `instance:rebalancer_x` is not taken for `rebalancer_x`.
METRIC_NAME = re.compile(r"(?<![:\w])((?:rebalancer|process)_[a-z0-9_]+)")


def substitute(expr):
    expr = DURATION_VARS.sub("5m", expr)
    return OTHER_VARS.sub("x", expr)


def walk(node, path="$"):
    """Yields (path, dict) for every object in the JSON tree."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}[{i}]")


def all_panels(dash):
    for p in dash.get("panels", []):
        yield p
        yield from p.get("panels", []) if p.get("type") == "row" else []


def check_structure(dash, problems):
    for key in ("uid", "title", "description"):
        if not str(dash.get(key, "")).strip():
            problems.append(f"top level: `{key}` is missing or empty; set it")
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 38:
        problems.append(f"top level: schemaVersion is {dash.get('schemaVersion')!r}; need >= 38 (Grafana 10)")
    variables = dash.get("templating", {}).get("list", [])
    ds = [v for v in variables if v.get("name") == "datasource"]
    if not ds or ds[0].get("type") != "datasource" or ds[0].get("query") != "prometheus":
        problems.append('templating: need a variable named "datasource" of type "datasource" with query "prometheus"')
    for path, obj in walk(dash):
        ref = obj.get("datasource")
        if ref is None or path.startswith("$.templating") and obj.get("type") == "datasource":
            continue
        if isinstance(ref, dict) and ref.get("uid") == GRAFANA_BUILTIN_UID:
            continue
        if ref != DATASOURCE_REF:
            problems.append(f"{path}: datasource is {json.dumps(ref)}; use {json.dumps(DATASOURCE_REF)} (no hard-coded uid)")


def check_panels(dash, problems):
    seen = {}
    boxes = []
    for p in all_panels(dash):
        title = p.get("title", "")
        where = f"panel {p.get('id')} {title!r}"
        if p.get("id") in seen:
            problems.append(f"{where}: id {p.get('id')} is also panel {seen[p['id']]!r}; ids must be unique")
        seen[p.get("id")] = title
        if not title.strip():
            problems.append(f"{where}: no title")
        if p.get("type") != "row" and not str(p.get("description", "")).strip():
            problems.append(f"{where}: no description (what it shows and which alert it matches)")
        g = p.get("gridPos", {})
        x, y, w, h = (g.get(k) for k in ("x", "y", "w", "h"))
        if not all(isinstance(v, int) for v in (x, y, w, h)) or x < 0 or w <= 0 or h <= 0 or x + w > 24:
            problems.append(f"{where}: gridPos {g} is not inside the 24-column grid")
            continue
        for other, (ox, oy, ow, oh) in boxes:
            if x < ox + ow and ox < x + w and y < oy + oh and oy < y + h:
                problems.append(f"{where}: overlaps panel {other!r}; move its gridPos")
        boxes.append((title, (x, y, w, h)))


def queries(dash):
    """(where, PromQL) for every panel target and label_values variable."""
    for p in all_panels(dash):
        for t in p.get("targets", []):
            if "expr" in t:
                yield f"panel {p.get('id')} {p.get('title')!r} query {t.get('refId')}", t["expr"]
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else q or ""
        m = LABEL_VALUES.match(q)
        yield f"variable {v.get('name')!r}", m.group(1) if m else q


def check_promql(dash, problems):
    exprs = list(queries(dash))
    if not exprs:
        problems.append("no PromQL expressions found in panels[].targets[].expr")
        return exprs
    lines = ["groups:"]
    for where, expr in exprs:
        lines.append(f"  - name: {json.dumps(where)}")
        lines.append("    rules:")
        lines.append("      - record: dashboard:check")
        lines.append(f"        expr: {json.dumps(substitute(expr))}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dashboard-queries.rules.yml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        try:
            out = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
        except FileNotFoundError:
            problems.append("promtool is not installed (Debian: apt-get install prometheus)")
            return exprs
        if out.returncode != 0:
            problems.append("PromQL that does not parse (promtool check rules):\n" + (out.stdout + out.stderr).strip())
    return exprs


def metric_names(text):
    return set(METRIC_NAME.findall(text))


def exposed_names(path):
    names = set()
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dashboard")
    ap.add_argument("--rules", action="append", default=[], help="a rules file whose metric names are checked too")
    ap.add_argument("--metrics", help="a /metrics scrape of rebalancer run: every metric used must be in it")
    args = ap.parse_args()

    problems = []
    try:
        with open(args.dashboard) as f:
            dash = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        print(f"{args.dashboard}: not readable JSON: {e}", file=sys.stderr)
        return 1
    check_structure(dash, problems)
    check_panels(dash, problems)
    exprs = check_promql(dash, problems)
    if args.metrics:
        used = {}
        for where, expr in exprs:
            for n in metric_names(expr):
                used.setdefault(n, where)
        for rules in args.rules:
            with open(rules) as f:
                for n in metric_names(f.read()):
                    used.setdefault(n, rules)
        have = exposed_names(args.metrics)
        for n, where in sorted(used.items()):
            if n not in have:
                problems.append(f"{where}: metric {n} is not in {args.metrics} (renamed or not registered at start-up?)")
    if problems:
        for p in problems:
            print(f"{args.dashboard}: {p}", file=sys.stderr)
        return 1
    panels = sum(1 for p in all_panels(dash) if p.get("type") != "row")
    extra = f", metric names checked against {args.metrics}" if args.metrics else ""
    print(f"{args.dashboard}: ok ({panels} panels, {len(exprs)} PromQL expressions parse{extra})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
