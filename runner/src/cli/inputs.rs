//! The input step shared by `simulate`, `plan` and `apply`: render templates, load every
//! document, validate, and refuse to go on when anything is wrong.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;

use crate::ci::{self, CiContext};
use crate::error::ExitStatus;
use crate::manifest::{ManifestSet, Source};
use crate::validate::support::Capability;
use crate::validate::{ExternalObject, ExternalTemplate, Options};

use super::lint::{lint_sources, render_text};
use super::render::RenderInput;

/// Manifests and templates, with what lint may assume exists elsewhere.
#[derive(Debug, Args)]
pub(crate) struct Inputs {
    #[command(flatten)]
    pub(crate) render: RenderInput,

    /// An AnalysisTemplate that already exists in the cluster (repeatable); `cluster:NAME`
    /// for a ClusterAnalysisTemplate.
    #[arg(long = "external-template", value_name = "NAME")]
    pub(crate) external_templates: Vec<ExternalTemplate>,

    /// Another object that already exists in the cluster, as KIND/NAME (repeatable).
    #[arg(long = "external", value_name = "KIND/NAME")]
    pub(crate) external: Vec<ExternalObject>,

    /// Go on when the inputs use features rollout-runner does not act on (plugins, routers it
    /// does not drive, ...): they become warnings, and rollout-runner does not act on them.
    #[arg(long)]
    pub(crate) allow_unsupported: bool,
}

impl Inputs {
    /// The `scenario.yaml` of each input directory: simulation scenarios, not manifests.
    pub(crate) fn scenario_files(&self) -> Vec<PathBuf> {
        self.render
            .paths
            .iter()
            .filter(|p| p.is_dir())
            .map(|dir| dir.join(SCENARIO_FILE))
            .filter(|file| file.is_file())
            .collect()
    }
}

/// The file a directory's simulation scenario is in (left out of its manifests).
pub(crate) const SCENARIO_FILE: &str = "scenario.yaml";

/// What this build and configuration provide of the features lint otherwise reports as
/// unsupported.
pub(crate) fn capabilities() -> BTreeSet<Capability> {
    // The in-cluster controller delivers notification subscriptions; lint warns about the
    // services and triggers it does not serve.
    let mut capabilities = BTreeSet::from([Capability::Notifications]);
    if cfg!(feature = "provider-cloudwatch") {
        capabilities.insert(Capability::CloudWatch);
    }
    capabilities
}

/// Render, load and validate the inputs (leaving out `exclude`). Problems go to stderr; any
/// error means invalid input, and the command should exit with the returned status.
pub(crate) fn load_inputs(
    inputs: &Inputs,
    exclude: &[PathBuf],
) -> anyhow::Result<Result<ManifestSet, ExitStatus>> {
    let cwd = std::env::current_dir()?;
    let ci = CiContext::detect(ci::process_env, &cwd);
    let rendered = inputs.render.render_excluding(&ci, exclude)?;
    let sources: Vec<Source> = rendered
        .iter()
        .filter(|file| !file.is_blank())
        .map(|file| {
            let name = file.source.display().to_string();
            if file.templated {
                Source::rendered(name, file.text.clone())
            } else {
                Source::new(name, file.text.clone())
            }
        })
        .collect();
    let options = Options {
        external_templates: inputs.external_templates.iter().cloned().collect(),
        external_objects: inputs.external.iter().cloned().collect(),
        allow_unsupported: inputs.allow_unsupported,
        capabilities: capabilities(),
    };
    let (problems, files) = lint_sources(&sources, &options, Vec::new());
    if !problems.is_empty() {
        eprint!("{}", render_text(&problems, files));
    }
    if problems.iter().any(|p| p.is_error()) {
        eprintln!("error: the inputs have problems; nothing was done");
        return Ok(Err(ExitStatus::Error));
    }
    let loaded = crate::manifest::load(&sources);
    Ok(Ok(loaded.set))
}
