//! End to end: `rollout-runner drive` sees through releases that something else applied
//! (`apply` without `--wait` here, as Argo CD applies), picking Rollouts by name, label selector
//! or all of a namespace, and leaving settled ones alone. `tests/argocd/e2e` runs the same
//! command as an Argo CD Sync hook (`--argocd-app`).

use crate::drive_e2e::{FIVE_STEPS, assert_exit, canary};
use crate::support::cluster::{self, TestNamespace};
use crate::support::runner::{Manifests, SERVICES, command, finish};

/// The canary of `drive_e2e`, labelled `team: shop`.
fn labelled(image: &str) -> String {
    canary(image, FIVE_STEPS, "", "").replace(
        "metadata: {name: web}",
        "metadata: {name: web, labels: {team: shop}}",
    )
}

async fn apply_only(ns: &str, image: &str) {
    let manifests = Manifests::new(&[
        ("services.yaml", SERVICES),
        ("rollout.yaml", &labelled(image)),
    ]);
    let dir = manifests.path().to_str().expect("a UTF-8 path");
    let run = finish(command(ns, &["apply", dir])).await;
    assert_exit(&run, 0, "apply without --wait");
}

async fn drive(ns: &str, args: &[&str]) -> crate::support::runner::Finished {
    let mut all = vec!["drive", "--timeout", "150s", "--lease-duration", "2s"];
    all.extend_from_slice(args);
    finish(command(ns, &all)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_drive_sees_through_applied_releases_by_selector_name_and_all() {
    let Some(client) = cluster::client().await else {
        return;
    };
    let ns = TestNamespace::create(&client, "drive-existing").await;
    let web = format!("rollout {}/web", ns.name());

    apply_only(ns.name(), "web:1").await;
    let run = drive(ns.name(), &["--selector", "team=shop"]).await;
    assert_exit(&run, 0, "the first version, by selector");
    assert!(
        run.stdout.contains(&format!("{web}: promoted")),
        "{}",
        run.stdout
    );

    let run = drive(ns.name(), &["--all"]).await;
    assert_exit(&run, 0, "nothing applied since");
    assert!(
        run.stdout
            .contains("no Rollout is updating: nothing to release"),
        "{}",
        run.stdout
    );

    apply_only(ns.name(), "web:2").await;
    let run = drive(ns.name(), &["--selector", "team=other"]).await;
    assert_exit(&run, 0, "a selector that matches nothing");
    assert!(
        run.stdout.contains("no Rollout is updating"),
        "{}",
        run.stdout
    );
    let run = drive(ns.name(), &["web"]).await;
    assert_exit(&run, 0, "the canary, by name");
    assert!(
        run.stdout
            .contains(&format!("{web}: promoted: revision 2 is stable")),
        "{}",
        run.stdout
    );

    let run = drive(ns.name(), &["missing"]).await;
    assert_exit(&run, 2, "a Rollout that does not exist");
    assert!(run.stderr.contains("not found"), "{}", run.stderr);
}
