#!/usr/bin/env bash
# Time `analysis backtest` over a 24 h window at 1 m steps (1,441 measurements) against a real
# Prometheus holding 24 h of a one-minute series.
#
#   cargo build --release && runner/benches/backtest.sh
#
# Needs `prometheus` and `promtool` on PATH. Uses a temporary directory and a free port, and
# stops the Prometheus it started.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${ROLLOUT_RUNNER_BIN:-$root/target/release/rollout-runner}"
work="$(mktemp -d)"
prometheus_pid=""
cleanup() {
  if [[ -n "$prometheus_pid" ]]; then kill "$prometheus_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

now=$(( $(date +%s) / 60 * 60 ))
start=$(( now - 86400 ))
{
  echo "# TYPE bench_success gauge"
  for (( i = 0; i <= 1440; i++ )); do
    value=0.99
    if (( i >= 600 && i < 610 )); then value=0.80; fi
    echo "bench_success{service=\"web\"} $value $(( start + 60 * i ))"
  done
  echo "# EOF"
} > "$work/series.om"
promtool tsdb create-blocks-from openmetrics "$work/series.om" "$work/tsdb" > /dev/null
printf 'global:\n  scrape_interval: 1h\n' > "$work/prometheus.yml"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$port" > /dev/null 2>&1 &
prometheus_pid=$!
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$port/-/ready" > /dev/null 2>&1 && break
  sleep 0.2
done

cat > "$work/template.yaml" <<'YAML'
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
spec:
  args:
  - name: service
  metrics:
  - name: success-rate
    interval: 1m
    failureLimit: 3
    successCondition: result[0] >= 0.95
    provider:
      prometheus:
        query: bench_success{service="{{args.service}}"}
YAML

from=$(date -u -d "@$start" +%Y-%m-%dT%H:%M:%SZ)
to=$(date -u -d "@$now" +%Y-%m-%dT%H:%M:%SZ)
for run in 1 2 3; do
  begin=$(date +%s.%N)
  "$bin" analysis backtest "$work/template.yaml" --args service=web --from "$from" --to "$to" \
    --step 1m --prometheus-address "http://127.0.0.1:$port" --output json > "$work/report.json"
  end=$(date +%s.%N)
  intervals=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(len(r["intervals"]), r["metrics"]["success-rate"]["failed"], r["verdict"])' "$work/report.json")
  echo "run $run: $(echo "$end - $begin" | bc) s for (intervals, failed, verdict) = $intervals"
done
