//! `rollout-runner crds`: print or write the CRDs of the Argo Rollouts API.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::crd;
use crate::error::ExitStatus;

/// Print the CustomResourceDefinitions rollout-runner serves (Rollout, AnalysisTemplate,
/// ClusterAnalysisTemplate, AnalysisRun, Experiment), as one YAML stream.
///
/// Install them with `rollout-runner crds | kubectl apply --server-side -f -`. They are
/// compatible with Argo Rollouts' own: install one set or the other, not both.
#[derive(Debug, Args)]
pub(crate) struct CrdsArgs {
    /// Write one file per CRD (`<plural>.argoproj.io.yaml`) into this directory instead.
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
}

pub(crate) fn run(args: CrdsArgs) -> anyhow::Result<ExitStatus> {
    let files = crd_files()?;
    match args.output_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            for (name, yaml) in files {
                let path = dir.join(name);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("cannot write `{}`", path.display()))?;
            }
        }
        None => {
            let documents: Vec<String> = files.into_iter().map(|(_, yaml)| yaml).collect();
            print!("{}", documents.join("---\n"));
        }
    }
    Ok(ExitStatus::Success)
}

/// File name and YAML of every CRD, as `crds/` holds them.
pub fn crd_files() -> anyhow::Result<Vec<(String, String)>> {
    crd::all_crds()
        .iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let yaml = crd::crd_yaml(crd).context("cannot serialize a CRD")?;
            Ok((format!("{name}.yaml"), yaml))
        })
        .collect()
}
