#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The alert rules behave: `promtool test rules` runs tests/deploy/alerts_test.yaml (a firing
# and a quiet case for every alert in deploy/prometheus/alerts.yaml) against the rules of the
# PrometheusRule's spec.groups, and `promtool check rules` accepts them. Every alert of the
# file must have a test. promtool comes from Debian's prometheus package (deploy/local/deps.sh
# installs it); without it the test says so and is skipped (77).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v promtool >/dev/null; then
    echo "promtool not installed (apt-get install prometheus): alert rule tests skipped" >&2
    exit 77
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
python3 - "$SRC" "$T" <<'PY'
import sys, yaml
src, t = sys.argv[1:3]
doc = yaml.safe_load(open(f"{src}/deploy/prometheus/alerts.yaml"))
yaml.safe_dump({"groups": doc["spec"]["groups"]}, open(f"{t}/rules.yaml", "w"))
alerts = {r["alert"] for g in doc["spec"]["groups"] for r in g["rules"] if "alert" in r}
tests = yaml.safe_load(open(f"{src}/tests/deploy/alerts_test.yaml"))
tested = {c["alertname"] for g in tests["tests"] for c in g.get("alert_rule_test", [])}
firing = {c["alertname"] for g in tests["tests"] for c in g.get("alert_rule_test", []) if c.get("exp_alerts")}
quiet = {c["alertname"] for g in tests["tests"] for c in g.get("alert_rule_test", []) if not c.get("exp_alerts")}
missing = sorted(alerts - tested)
unknown = sorted(tested - alerts)
nofire = sorted(alerts - firing)
noquiet = sorted(alerts - quiet)
if missing or unknown or nofire or noquiet:
    sys.exit(f"alert tests incomplete: untested {missing}, unknown {unknown}, never firing {nofire}, never quiet {noquiet}")
print(f"ok - {len(alerts)} alerts, each with a firing and a quiet case")
PY
cp "$SRC/tests/deploy/alerts_test.yaml" "$T/"
promtool check rules "$T/rules.yaml"
(cd "$T" && promtool test rules alerts_test.yaml)
echo "ok - promtool test rules: every case passes"
