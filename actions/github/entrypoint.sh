#!/bin/sh
# The GitHub Action's entrypoint (busybox sh in the image): turn the action's inputs
# (INPUT_* variables) into rollout-runner flags. Logic stays in rollout-runner.
set -eu

if [ -n "${INPUT_KUBECONFIG:-}" ]; then
  umask 077
  dir="${HOME:-/github/home}/.kube"
  mkdir -p "$dir"
  printf '%s\n' "$INPUT_KUBECONFIG" > "$dir/rollout-runner-config"
  export KUBECONFIG="$dir/rollout-runner-config"
  umask 022
fi

set -- "${INPUT_COMMAND:?the command input is required}"
if [ "$INPUT_COMMAND" = status ]; then
  # status takes the Rollout's name, not manifests.
  set -- "$@" "${INPUT_ROLLOUT:?the rollout input is required with command: status}"
else
  # files, values and args: newline- or space-separated; set: one KEY=VALUE per line.
  for file in ${INPUT_FILES:-.}; do set -- "$@" "$file"; done
  for file in ${INPUT_VALUES:-}; do set -- "$@" --values "$file"; done
  while IFS= read -r pair; do
    [ -n "$pair" ] && set -- "$@" --set "$pair"
  done <<EOT
${INPUT_SET:-}
EOT
fi
case "$INPUT_COMMAND" in
  apply|simulate|status)
    if [ -n "${INPUT_TIMEOUT:-}" ]; then set -- "$@" --timeout "$INPUT_TIMEOUT"; fi
    if [ "${INPUT_SUCCESS_ON_PAUSE:-false}" = "true" ]; then set -- "$@" --success-on-pause; fi
    case "${INPUT_REPORT:-github}" in
      none | "") ;;
      *) set -- "$@" --report "${INPUT_REPORT:-github}" ;;
    esac
    ;;
esac
case "$INPUT_COMMAND" in
  plan)
    if [ -n "${INPUT_ROLLOUT:-}" ]; then set -- "$@" --rollout "$INPUT_ROLLOUT"; fi
    if [ "${INPUT_COMMENT:-false}" = "true" ]; then
      set -- "$@" --comment
      case "${INPUT_REPORT:-github}" in
        none | "") ;;
        *) set -- "$@" --report "${INPUT_REPORT:-github}" ;;
      esac
    fi
    ;;
  simulate)
    if [ -n "${INPUT_ROLLOUT:-}" ]; then set -- "$@" --rollout "$INPUT_ROLLOUT"; fi
    ;;
  apply)
    if [ -n "${INPUT_EXPECT_PLAN:-}" ]; then set -- "$@" --expect-plan "$INPUT_EXPECT_PLAN"; fi
    ;;
esac
for arg in ${INPUT_ARGS:-}; do set -- "$@" "$arg"; done

exec rollout-runner "$@"
