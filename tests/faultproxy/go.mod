module github.com/rollout-runner/rollout-runner/tests/faultproxy

go 1.26
