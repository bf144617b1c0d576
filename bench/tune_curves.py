#!/usr/bin/env python3
"""Best-so-far curves of tuner runs, from `edgetrain tune list --run N --json`.

    bench/tune_curves.py BUDGET RUN.json [RUN.json ...]

For each run: at each checkpoint (5, 10, 20, 30 minutes within BUDGET, or
quarters of BUDGET when it is under 10 minutes), the highest int8 validation
accuracy of any rung finished by then (trials over a budget are never
trained). A rung's finish time is its history entry's "at" (Unix seconds),
counted from the run's created_at. Only the standard library."""
import datetime
import json
import re
import sys


def seconds(text):
    m = re.fullmatch(r"\s*([0-9.]+)\s*(s|m|h|min)?\s*", text)
    if not m:
        sys.exit(f"budget '{text}': e.g. 30m, 600s, 1h")
    unit = {None: 1, "s": 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]
    return float(m.group(1)) * unit


def points(path):
    with open(path) as f:
        j = json.load(f)
    run = j["run"]
    t0 = datetime.datetime.strptime(run["created_at"], "%Y-%m-%dT%H:%M:%SZ")
    t0 = t0.replace(tzinfo=datetime.timezone.utc).timestamp()
    pts = []
    for t in j["trials"]:
        for h in t.get("history") or []:
            if h.get("int8") is not None and "at" in h:
                pts.append((h["at"] - t0, h["int8"], t["id"], h["epochs"]))
    trained = sum(1 for t in j["trials"] if t.get("history"))
    return run, sorted(pts), trained


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    budget = seconds(sys.argv[1])
    marks = [m * 60 for m in (5, 10, 20, 30) if m * 60 <= budget + 1]
    if budget < 600:
        marks = [budget * q for q in (0.25, 0.5, 0.75, 1.0)]
    elif not marks or marks[-1] < budget - 1:
        marks.append(budget)
    runs = [points(p) for p in sys.argv[2:]]
    names = [r[0]["strategy"] + " (run %d)" % r[0]["id"] for r in runs]
    print("Best int8 validation accuracy so far (trials within the budgets), %s per run" %
          sys.argv[1])
    print("%8s" % "minute" + "".join("%22s" % n for n in names))
    for m in marks:
        row = "%8.1f" % (m / 60)
        for _, pts, _ in runs:
            best = max((a for at, a, _, _ in pts if at <= m), default=None)
            row += "%22s" % ("-" if best is None else "%.2f%%" % (100 * best))
        print(row)
    # Rungs still training at the budget stop there and record what they
    # have a few seconds later (the tuner's deadline): the run's end.
    row = "%8s" % "end"
    for _, pts, _ in runs:
        best = max((a for _, a, _, _ in pts), default=None)
        row += "%22s" % ("-" if best is None else "%.2f%%" % (100 * best))
    print(row)
    for (run, pts, trained), name in zip(runs, names):
        best = max(pts, key=lambda p: p[1], default=None)
        c = run["counts"]
        print("%s: %d trials trained (%d done, %d pruned), %d skipped, %d failed; %s" %
              (name, trained, c["done"], c["pruned"], c["skipped"], c["failed"],
               "best: trial %d, %.2f%% after %d epochs at %.2f min" %
               (best[2], 100 * best[1], best[3], best[0] / 60) if best else "nothing trained"))


if __name__ == "__main__":
    main()
