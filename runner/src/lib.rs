//! rollout-runner: progressive delivery for Kubernetes, run from CI.
