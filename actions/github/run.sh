#!/usr/bin/env bash
# shellcheck disable=SC2317 # finish() and its helpers run from the EXIT trap
# The action's run step: turn the inputs (RR_* environment variables, set by action.yml) into
# one rollout-runner command line, as a bash array (no word splitting, no globbing, no
# evaluation), run it, and write the step outputs on every path: success, failure, timeout,
# bad input, a missing binary, a cancelled job. Logic stays in rollout-runner.
#
# List inputs (path, values, set, args) hold one item per line; empty lines are skipped and a
# trailing CR (a CRLF file) is dropped, nothing else is changed.
set -uo pipefail # no -e: every path must reach finish() below

if [ "${BASH_VERSINFO[0]:-0}" -lt 4 ] || { [ "${BASH_VERSINFO[0]}" -eq 4 ] && [ "${BASH_VERSINFO[1]}" -lt 3 ]; }; then
  echo "::error title=rollout-runner::bash 4.3 or newer is needed, this is $BASH_VERSION (macOS: brew install bash)"
  printf 'outcome=error\nexit-code=2\n' >> "${GITHUB_OUTPUT:-/dev/null}"
  exit 2
fi

work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/rollout-runner.XXXXXX") || exit 2
step_output=${GITHUB_OUTPUT:-/dev/null}
rc=""
outcome=""
plan_hash=""
reports=""       # with artifacts: where the record, JUnit and HTML report go
artifact_name=""

# ::error / ::warning workflow commands; the message is escaped so that an input cannot start
# a command of its own.
escape() {
  local s=$1
  s=${s//'%'/'%25'}
  s=${s//$'\r'/'%0D'}
  s=${s//$'\n'/'%0A'}
  printf '%s' "$s"
}
annotate() { printf '::%s title=rollout-runner::%s\n' "$1" "$(escape "$2")"; }
invalid() {
  annotate error "$1"
  rc=2
  outcome=invalid
  exit 2
}

# One step output, in the delimiter form (values could hold anything).
put() {
  local delimiter="rr_${RANDOM}${RANDOM}${RANDOM}"
  printf '%s<<%s\n%s\n%s\n' "$1" "$delimiter" "$2" "$delimiter" >> "$step_output"
}

# The outputs rollout-runner itself wrote (its GitHub reporter: phase, revision, verdict,
# check-url), read from the private file it was given as GITHUB_OUTPUT. Both forms of the file
# format are read; a key written twice (several Rollouts) keeps its last value.
declare -A written=()
read_written() {
  local line key delimiter value
  [ -s "$work/outputs" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line =~ ^([A-Za-z0-9_-]+)\<\<(.+)$ ]]; then
      key=${BASH_REMATCH[1]}
      delimiter=${BASH_REMATCH[2]}
      value=""
      local first=1
      while IFS= read -r line; do
        [ "$line" = "$delimiter" ] && break
        if [ "$first" = 1 ]; then value=$line; first=0; else value+=$'\n'$line; fi
      done
      written[$key]=$value
    elif [[ $line =~ ^([A-Za-z0-9_-]+)=(.*)$ ]]; then
      written[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
    fi
  done < "$work/outputs"
}

# The artifact's files, as step outputs (none when nothing was recorded).
report_outputs() {
  local html=() junit=() file
  if [ -n "$reports" ]; then
    for file in "$reports"/report*.html; do [ -s "$file" ] && html+=("$file"); done
    for file in "$reports"/junit*.xml; do [ -s "$file" ] && junit+=("$file"); done
  fi
  if [ ${#html[@]} -gt 0 ] || [ ${#junit[@]} -gt 0 ]; then
    put report-dir "$reports"
    put artifact-name "$artifact_name"
  else
    put report-dir ""
    put artifact-name ""
  fi
  put html-report "$(printf '%s\n' "${html[@]}" | sed '/^$/d')"
  put junit-report "$(printf '%s\n' "${junit[@]}" | sed '/^$/d')"
}

finish() {
  local status=$?
  [ -n "$rc" ] || rc=$status
  if [ -z "$outcome" ]; then
    case "$rc" in
      0) outcome=success ;;
      1) outcome=failure ;;
      2) outcome=invalid ;;
      3) outcome=timed-out ;;
      130 | 143) outcome=interrupted ;;
      *) outcome=error ;;
    esac
  fi
  read_written
  put outcome "$outcome"
  put exit-code "$rc"
  put plan-hash "${written[plan-hash]:-$plan_hash}"
  put check-run-url "${written[check-run-url]:-${written[check-url]:-}}"
  put revision "${written[revision]:-}"
  put phase "${written[phase]:-}"
  put verdict "${written[verdict]:-}"
  report_outputs
  rm -rf "$work"
  exit "$rc"
}
trap finish EXIT

# Lines of $1 into the array named $2 (appended).
lines() {
  local -n into=$2
  local line
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    [ -n "$line" ] && into+=("$line")
  done <<< "$1"
}

boolean() { # name value
  case "${2,,}" in
    true) return 0 ;;
    false | "") return 1 ;;
    *) invalid "input \`$1\` must be true or false, not \`$2\`" ;;
  esac
}

bin=${RR_BIN:-}
if [ -z "$bin" ]; then
  annotate error "rollout-runner is not installed (see the install step's log)"
  rc=2
  outcome=error
  exit 2
fi

command=${RR_COMMAND:-}
case "$command" in
  apply | plan | simulate | lint | render) kind=manifests ;;
  status | promote | abort | retry | undo | pause | resume) kind=rollout ;;
  comment-command) kind=event ;;
  "") invalid "the \`command\` input is required" ;;
  *) invalid "unknown command \`$command\`: use apply, plan, status, promote, abort, retry, undo, simulate, lint, render, pause, resume or comment-command" ;;
esac

# Validate every boolean up front, whatever the command.
wait=false comment=false pause_ok=false
boolean wait "${RR_WAIT:-}" && wait=true
boolean comment "${RR_COMMENT:-}" && comment=true
boolean success-on-pause "${RR_SUCCESS_ON_PAUSE:-}" && pause_ok=true
artifacts=false
boolean artifacts "${RR_ARTIFACTS:-false}" && artifacts=true

paths=() values=() sets=() extra=()
lines "${RR_PATH:-}" paths
if [ -n "${RR_FILES:-}" ]; then
  # The old `files` input was split on spaces and newlines: keep that for it alone.
  read -r -d '' -a old <<< "$RR_FILES" || true
  paths=("${old[@]}")
fi
lines "${RR_VALUES:-}" values
lines "${RR_SET:-}" sets
lines "${RR_ARGS:-}" extra
for arg in "${extra[@]}"; do
  if [[ $arg == -* && $arg == *" "* && $arg != *=* ]]; then
    annotate warning "args: \`$arg\` is passed as ONE argument; put each argument on its own line"
  fi
done

report=()
case "${RR_REPORT:-}" in
  "" | none) ;;
  *) report=(--report "$RR_REPORT") ;;
esac
connection=()
[ -n "${RR_CONTEXT:-}" ] && connection+=(--context "$RR_CONTEXT")
[ -n "${RR_NAMESPACE:-}" ] && connection+=(--namespace "$RR_NAMESPACE")
waiting=()
[ -n "${RR_TIMEOUT:-}" ] && waiting+=(--timeout "$RR_TIMEOUT")
[ "$pause_ok" = true ] && waiting+=(--success-on-pause)

argv=("$command")
base=() # plan: the arguments that decide the plan (its hash), without reporting
if [ "$kind" = manifests ]; then
  [ ${#paths[@]} -gt 0 ] || paths=(.)
  argv+=("${paths[@]}")
  # lint renders templates as plan and apply do: it takes the same values.
  for file in "${values[@]}"; do argv+=(--values "$file"); done
  for pair in "${sets[@]}"; do argv+=(--set "$pair"); done
  case "$command" in
    plan | simulate) [ -n "${RR_ROLLOUT:-}" ] && argv+=(--rollout "$RR_ROLLOUT") ;;
    *) [ -z "${RR_ROLLOUT:-}" ] || annotate warning "$command takes no rollout input: it is ignored" ;;
  esac
  base=("${argv[@]}")
  case "$command" in
    apply)
      argv+=("${connection[@]}")
      [ -n "${RR_EXPECT_PLAN:-}" ] && argv+=(--expect-plan "$RR_EXPECT_PLAN")
      if [ "$wait" = true ]; then
        argv+=(--wait "${waiting[@]}" "${report[@]}")
      elif [ ${#waiting[@]} -gt 0 ]; then
        annotate warning "timeout and success-on-pause need wait: true; they are ignored"
      fi
      ;;
    simulate) argv+=("${waiting[@]}" "${report[@]}") ;;
    plan) [ "$comment" = true ] && argv+=(--comment "${report[@]}") ;;
  esac
elif [ "$kind" = event ]; then
  # comment-command: the rollout comes from the comment and the pull request's release.
  [ -z "${RR_ROLLOUT:-}" ] || annotate warning "$command takes the rollout from the comment: the rollout input is ignored"
  argv+=("${connection[@]}")
else
  [ -n "${RR_ROLLOUT:-}" ] || invalid "command \`$command\` needs the \`rollout\` input (the Rollout's name)"
  argv+=("$RR_ROLLOUT" "${connection[@]}")
  if [ "$command" = status ] && [ "$wait" = true ]; then
    argv+=(--watch "${waiting[@]}" "${report[@]}")
  elif [ "$command" = status ] && [ ${#waiting[@]} -gt 0 ]; then
    annotate warning "timeout and success-on-pause need wait: true; they are ignored"
  fi
fi
argv+=("${extra[@]}")

# artifacts: the release's record and JUnit, then its HTML report, in a directory that outlives
# this step for the upload step. Only the commands that follow a release record one.
recording=false
case "$command" in
  simulate) recording=true ;;
  apply | status) [ "$wait" = true ] && recording=true ;;
esac
if [ "$artifacts" = true ] && [ "$recording" = true ]; then
  artifact_name=${RR_ARTIFACT_NAME:-rollout-runner-${GITHUB_JOB:-job}-$command-${ROLLOUT_RUNNER_ENVIRONMENT:-${RR_ROLLOUT:-release}}-${GITHUB_RUN_ATTEMPT:-1}}
  artifact_name=${artifact_name//[^A-Za-z0-9._-]/-}
  reports="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/rollout-runner-reports/$artifact_name"
  rm -rf "$reports"
  mkdir -p "$reports" || invalid "cannot create $reports"
  argv+=(--record "$reports/record.json" --junit "$reports/junit.xml")
  # The check run and the comment link the run's artifacts: the artifact's own URL is known
  # only after the upload step.
  if [ -z "${ROLLOUT_RUNNER_REPORT_URL:-}" ] && [ -n "${GITHUB_REPOSITORY:-}" ] && [ -n "${GITHUB_RUN_ID:-}" ]; then
    export ROLLOUT_RUNNER_REPORT_URL="${GITHUB_SERVER_URL:-https://github.com}/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID#artifacts"
  fi
fi

# A kubeconfig given as content: a private file for this step only (removed at the end).
if [ -n "${RR_KUBECONFIG:-}" ]; then
  (umask 077 && printf '%s\n' "$RR_KUBECONFIG" > "$work/kubeconfig")
  export KUBECONFIG="$work/kubeconfig"
fi
unset RR_KUBECONFIG

printf 'rollout-runner'
printf ' %q' "${argv[@]}"
printf '\n'

# Run it in the background so that a cancelled job (SIGINT/SIGTERM to this shell) is passed on
# as SIGTERM: rollout-runner then stops between actions, flushes its reports and exits 130, and
# the outputs are still written. (Background jobs ignore SIGINT in a non-interactive shell.)
: > "$work/outputs"
if [ "$command" = plan ]; then
  GITHUB_OUTPUT="$work/outputs" "$bin" "${argv[@]}" > "$work/stdout" &
else
  GITHUB_OUTPUT="$work/outputs" "$bin" "${argv[@]}" &
fi
child=$!
trap 'kill -TERM "$child" 2>/dev/null' INT TERM HUP
while :; do
  wait "$child"
  rc=$?
  kill -0 "$child" 2>/dev/null || break
done
if [ "$rc" -gt 128 ]; then # the wait was interrupted: collect the real status
  wait "$child" 2>/dev/null
  last=$?
  [ "$last" -eq 127 ] || rc=$last
fi
trap - INT TERM HUP

# The HTML report of each record written (one per Rollout), whatever the release's outcome.
if [ -n "$reports" ]; then
  for record in "$reports"/record*.json; do
    [ -s "$record" ] || continue
    page=${record##*/}
    page="$reports/report${page#record}"
    "$bin" report "$record" --html "${page%.json}.html" ||
      annotate warning "cannot render the HTML report of ${record##*/}"
  done
fi

# plan: the hash apply --expect-plan takes (the combined one when there are several plans).
if [ "$command" = plan ]; then
  cat "$work/stdout"
  hash_of() { # stdout of plan -> the hash, when it names exactly one
    local marker hashes
    marker=$(grep -oE '<!-- rollout-runner plan sha256:[0-9a-f]{64} -->' "$1" | tail -n 1)
    if [ -n "$marker" ]; then
      grep -oE 'sha256:[0-9a-f]{64}' <<< "$marker"
      return
    fi
    hashes=$({ grep -oE '^Plan hash: sha256:[0-9a-f]{64}' "$1"; grep -oE '"hash": *"sha256:[0-9a-f]{64}"' "$1"; } |
      grep -oE 'sha256:[0-9a-f]{64}')
    [ "$(grep -c . <<< "$hashes")" = 1 ] && printf '%s\n' "$hashes"
  }
  if [ "$rc" = 0 ]; then
    plan_hash=$(hash_of "$work/stdout")
    if [ -z "$plan_hash" ]; then
      # Several plans in a table or JSON: ask for markdown, which ends with the combined hash.
      again=("${base[@]}")
      skip=0
      for arg in "${extra[@]}"; do
        if [ $skip = 1 ]; then skip=0; continue; fi
        case "$arg" in
          --output) skip=1 ;;
          --output=* | --comment) ;;
          *) again+=("$arg") ;;
        esac
      done
      "$bin" "${again[@]}" --output markdown > "$work/markdown" 2> /dev/null &&
        plan_hash=$(hash_of "$work/markdown")
    fi
  fi
fi
exit "$rc"
