//! `crds/` must hold exactly what the types generate.

use std::path::Path;

#[test]
fn crds_directory_matches_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let expected = rollout_runner::cli::crd_files().expect("CRDs serialize");
    let mut stale = Vec::new();
    for (name, yaml) in &expected {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        if &on_disk != yaml {
            stale.push(name.clone());
        }
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("crds/ exists")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    names.sort();
    let mut expected_names: Vec<String> = expected.iter().map(|(n, _)| n.clone()).collect();
    expected_names.sort();
    assert!(
        stale.is_empty() && names == expected_names,
        "crds/ drifted from the types (stale: {stale:?}, on disk: {names:?}); \
         regenerate with `cargo run -- crds --output-dir crds`"
    );
}

#[test]
fn rollout_crd_is_small_enough_for_client_side_apply() {
    let files = rollout_runner::cli::crd_files().unwrap();
    for (name, yaml) in files {
        assert!(
            yaml.len() < 262_144,
            "{name} is {} bytes: too large for kubectl's last-applied annotation",
            yaml.len()
        );
    }
}
