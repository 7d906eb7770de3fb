//! The operate commands' handling of bad input and of a missing cluster: exit 2 with a hint,
//! before anything is read or written. No cluster needed.

use assert_cmd::cargo::cargo_bin_cmd;
use predicates::prelude::predicate::str::contains;

fn rollout_runner(args: &[&str]) -> assert_cmd::assert::Assert {
    cargo_bin_cmd!("rollout-runner")
        .args(args)
        .env_remove("KUBECONFIG")
        .assert()
}

#[test]
fn set_image_needs_container_equals_image() {
    rollout_runner(&["set", "image", "web", "nginx:1.27"])
        .code(2)
        .stderr(contains("expected CONTAINER=IMAGE, got `nginx:1.27`"))
        .stderr(contains("hint: name the container"));
}

#[test]
fn durations_are_checked_before_connecting() {
    let missing = ["--kubeconfig", "/nonexistent/kubeconfig"];
    rollout_runner(&[&["restart", "web", "--in", "soon"][..], &missing].concat())
        .code(2)
        .stderr(contains("--in `soon`: time: invalid duration"))
        .stderr(contains("hint: use a duration like 90s"));
    rollout_runner(&[&["status", "web", "--watch", "--timeout=-1s"][..], &missing].concat())
        .code(2)
        .stderr(contains("--timeout `-1s` must not be negative"));
    rollout_runner(&[&["get", "web", "--watch", "--timeout", "x"][..], &missing].concat())
        .code(2)
        .stderr(contains("--timeout `x`: time: invalid duration"));
}

#[test]
fn watch_flags_need_watch() {
    rollout_runner(&["status", "web", "--timeout", "5s"])
        .code(2)
        .stderr(contains("--watch"));
    rollout_runner(&["get", "web", "--timeout", "5s"])
        .code(2)
        .stderr(contains("--watch"));
}

#[test]
fn undo_revision_is_a_number() {
    rollout_runner(&["undo", "web", "--to-revision", "-1"]).code(2);
    rollout_runner(&["undo", "web", "--to-revision", "two"]).code(2);
}

#[test]
fn no_cluster_access_is_exit_2() {
    for args in [
        &["status", "web"][..],
        &["get", "web"],
        &["list"],
        &["promote", "web"],
        &["abort", "web"],
        &["retry", "web"],
        &["pause", "web"],
        &["resume", "web"],
        &["restart", "web"],
        &["set", "image", "web", "app=x:1"],
        &["undo", "web"],
    ] {
        rollout_runner(&[args, &["--kubeconfig", "/nonexistent/kubeconfig"]].concat())
            .code(2)
            .stderr(contains(
                "cannot read the kubeconfig `/nonexistent/kubeconfig`",
            ));
    }
}
