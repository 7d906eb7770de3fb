//! `rollout-runner render`: templates in, manifests out.
//!
//! Reads the files and values, detects the CI context, calls [`crate::render`] and prints a
//! YAML stream or writes a directory. [`RenderInput`] is the part `lint`, `plan` and `apply`
//! share: flatten it into their arguments and call [`RenderInput::render`].

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::ci::{self, CiContext};
use crate::error::ExitStatus;
use crate::render::{self, Release, RenderedFile, SourceFile, Values, input};

/// Inputs, values and release: what every command that reads manifests takes.
#[derive(Debug, Clone, clap::Args)]
pub struct RenderInput {
    /// Manifest or template files, or directories to read recursively; `-` reads a YAML
    /// stream from standard input (as from `helm template` or `kustomize build`).
    ///
    /// Files ending in `.j2` are minijinja templates (the output drops `.j2`); other
    /// `.yaml`, `.yml` and `.json` files pass through unchanged. In a directory, hidden files
    /// are skipped, and so are `values.yaml` and `values-NAME.yaml` next to `.j2` templates
    /// (pass one with `--values`); a file given with `--values` is never read as a manifest.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// A YAML values file; repeat to layer them (maps merge, later files win).
    #[arg(long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,

    /// Set a value, typed as a YAML scalar: `--set image.tag=1.2.3`, `--set replicas=3`.
    ///
    /// Applied after the values files. Dots make nested keys (`\.` is a literal dot).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Set a value, always as a string: `--set-string image.tag=1.10`.
    ///
    /// Applied after `--set`.
    #[arg(long = "set-string", value_name = "KEY=VALUE")]
    pub set_string: Vec<String>,

    /// The release name templates see as `release.name`.
    #[arg(long, value_name = "NAME")]
    pub release_name: Option<String>,
}

/// Arguments of `rollout-runner render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub input: RenderInput,

    /// Write one file per input under DIR (same relative path, `.j2` dropped) instead of a
    /// YAML stream on stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

impl RenderInput {
    /// Read the inputs and values, detect the CI context from the environment and the git
    /// repository around the working directory, and render.
    pub fn render(&self) -> anyhow::Result<Vec<RenderedFile>> {
        let cwd = std::env::current_dir().context("cannot read the working directory")?;
        let ci = CiContext::detect(ci::process_env, &cwd);
        self.render_with(&ci)
    }

    /// Like [`RenderInput::render`], with the CI context given.
    pub fn render_with(&self, ci: &CiContext) -> anyhow::Result<Vec<RenderedFile>> {
        self.render_excluding(ci, &[])
    }

    /// Like [`RenderInput::render_with`], leaving out the given files (a scenario that sits
    /// among the manifests) and the `--values` files (`deploy/values-production.yaml` beside
    /// the templates it fills holds values, not a manifest).
    pub fn render_excluding(
        &self,
        ci: &CiContext,
        exclude: &[PathBuf],
    ) -> anyhow::Result<Vec<RenderedFile>> {
        let mut sources = read_sources(&self.paths)?;
        sources.retain(|source| {
            !exclude
                .iter()
                .chain(&self.values)
                .any(|path| same_file(path, &source.path))
        });
        Ok(render::render(&sources, &self.context(ci)?)?)
    }

    /// What templates see: the values (files, then `--set`, then `--set-string`), the CI
    /// context and the release.
    pub fn context(&self, ci: &CiContext) -> anyhow::Result<render::Context> {
        Ok(render::Context::new(self.values()?)
            .with_ci(ci)
            .with_release(Release {
                name: self.release_name.clone(),
            }))
    }

    fn values(&self) -> anyhow::Result<Values> {
        let mut values = Values::new();
        for file in &self.values {
            let text = input::read_text(file).context("--values")?;
            values.merge_yaml(file, &text)?;
        }
        for arg in &self.set {
            values.set(arg)?;
        }
        for arg in &self.set_string {
            values.set_string(arg)?;
        }
        Ok(values)
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Read every input: files as given, directories walked and filtered by
/// [`render::select_files`], `-` from standard input; all through [`input`], bounded.
pub fn read_sources(paths: &[PathBuf]) -> anyhow::Result<Vec<SourceFile>> {
    let mut sources = Vec::new();
    let mut stdin_read = false;
    for path in paths {
        if path == Path::new(input::STDIN) {
            if std::mem::replace(&mut stdin_read, true) {
                bail!("`-` (standard input) is named twice\n\nhint: name it once");
            }
            let text = input::read_text(path)?;
            sources.push(SourceFile::new(STDIN_NAME, text));
        } else if input::is_dir(path) {
            let found = input::walk(path)?;
            let selected = render::select_files(&found);
            if selected.is_empty() {
                bail!(
                    "`{}` holds no manifests or templates\n\n\
                     hint: rollout-runner reads `.yaml`, `.yml`, `.json` and `.j2` files",
                    path.display()
                );
            }
            for relative in selected {
                let full = path.join(&relative);
                let text = input::read_text(&full)?;
                sources.push(SourceFile {
                    path: full,
                    relative,
                    text,
                });
            }
        } else {
            let text = input::read_text(path)?;
            sources.push(SourceFile::new(path.clone(), text));
        }
    }
    Ok(sources)
}

/// How manifests read from standard input are named in messages.
pub const STDIN_NAME: &str = "<stdin>";

/// Run `rollout-runner render`.
pub fn run(args: RenderArgs) -> anyhow::Result<ExitStatus> {
    let rendered = args.input.render()?;
    match &args.out {
        None => {
            let stream = to_stream(&rendered);
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(stream.as_bytes())
                .and_then(|()| stdout.flush())
                .context("cannot write to stdout")?;
        }
        Some(out) => {
            let mut written = 0;
            for file in &rendered {
                if file.templated && file.is_blank() {
                    continue;
                }
                let target = out.join(&file.name);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("cannot create `{}`", parent.display()))?;
                }
                std::fs::write(&target, &file.text)
                    .with_context(|| format!("cannot write `{}`", target.display()))?;
                written += 1;
            }
            eprintln!("wrote {written} file(s) to {}", out.display());
        }
    }
    Ok(ExitStatus::Success)
}

/// A multi-document YAML stream: each file preceded by `---` and a `# Source:` comment, as
/// `helm template` prints it. Blank outputs are left out.
pub fn to_stream(rendered: &[RenderedFile]) -> String {
    let mut out = String::new();
    for file in rendered.iter().filter(|file| !file.is_blank()) {
        out.push_str("---\n# Source: ");
        out.push_str(&file.source.display().to_string());
        out.push('\n');
        let mut text = file.text.as_str();
        // A leading document marker would open an empty document after the comment.
        let first_line_end = text.find('\n').map_or(text.len(), |at| at + 1);
        if text[..first_line_end].trim_end() == "---" {
            text = &text[first_line_end..];
        }
        out.push_str(text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}
