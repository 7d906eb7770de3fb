//! `rollout-runner set image`: change a container's image, which starts a new revision.

use clap::{Args, Subcommand};

use crate::error::ExitStatus;
use crate::operate::{Operation, patches};

use super::operations::{RolloutArg, operate};

#[derive(Debug, Subcommand)]
pub(crate) enum SetCommand {
    /// Set the image of a container (`*` for every container), as `kubectl argo rollouts set
    /// image`; the rollout releases it with its strategy.
    Image(SetImageArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SetImageArgs {
    #[command(flatten)]
    target: RolloutArg,

    /// `CONTAINER=IMAGE`, e.g. `app=registry.example/app:1.2.3`.
    #[arg(value_name = "CONTAINER=IMAGE", value_parser = container_image)]
    image: (String, String),
}

/// Parse `CONTAINER=IMAGE`.
fn container_image(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((container, image)) if !container.is_empty() && !image.is_empty() => {
            Ok((container.to_string(), image.to_string()))
        }
        _ => Err(format!(
            "expected CONTAINER=IMAGE, got `{text}`\n\nhint: name the container, e.g. \
             `app=nginx:1.27`, or use `*=IMAGE` for every container"
        )),
    }
}

pub(crate) fn run(command: SetCommand) -> anyhow::Result<ExitStatus> {
    match command {
        SetCommand::Image(args) => {
            let (container, image) = args.image;
            let operation = Operation::SetImage { container, image };
            operate(&args.target, "set the image of", false, |rollout, _| {
                patches(rollout, &operation)
            })
        }
    }
}
