//! `rollout-runner lint`: read manifests, check them, and report every problem.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::OutputFormat;
use crate::error::ExitStatus;
use crate::manifest::{self, Problem, Rule, Severity, Source};
use crate::render::{self, SourceFile, input};
use crate::validate::{self, ExternalObject, ExternalTemplate, Options};

/// Check Rollouts, AnalysisTemplates, Experiments and the objects they reference, and report
/// every problem with `file:line:column`, the field path and a hint.
///
/// Directories are searched recursively as `plan` and `apply` read them: `.yaml`, `.yml` and
/// `.json` files are manifests, `.j2` files are templates rendered with `--values`/`--set`
/// and the CI context and then checked, and a `values.yaml` or `values-NAME.yaml` beside
/// templates (or a file given with `--values`) is their values,
/// not a manifest (hidden files and directories are skipped). Exit codes: 0 no errors
/// (warnings allowed), 1 errors found, 2 an input could not be read or rendered (missing file,
/// not UTF-8, malformed YAML, a template error).
#[derive(Debug, Args)]
pub(crate) struct LintArgs {
    /// Manifest files, templates (`.j2`), or directories to search.
    #[arg(required = true, value_name = "FILE|DIR")]
    paths: Vec<PathBuf>,

    /// A YAML values file for the templates; repeat to layer them (maps merge, later files
    /// win).
    #[arg(long = "values", value_name = "FILE")]
    values: Vec<PathBuf>,

    /// Set a template value, typed as a YAML scalar: `--set image.tag=1.2.3`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,

    /// Set a template value, always as a string: `--set-string image.tag=1.10`.
    #[arg(long = "set-string", value_name = "KEY=VALUE")]
    set_string: Vec<String>,

    /// The release name templates see as `release.name`.
    #[arg(long, value_name = "NAME")]
    release_name: Option<String>,

    /// An AnalysisTemplate that already exists in the cluster (repeatable); use
    /// `cluster:NAME` for a ClusterAnalysisTemplate.
    #[arg(long = "external-template", value_name = "NAME")]
    external_templates: Vec<ExternalTemplate>,

    /// Another object that already exists in the cluster, as KIND/NAME (repeatable), such as
    /// `service/web-stable`, `ingress/web` or `virtualservice/web`.
    #[arg(long = "external", value_name = "KIND/NAME")]
    external: Vec<ExternalObject>,

    /// Report features rollout-runner does not act on (plugins, routers it does not drive,
    /// ...) as warnings instead of errors.
    #[arg(long)]
    allow_unsupported: bool,

    /// How to print the problems.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,

    /// Also run each Prometheus metric's query once (read-only) and warn when it returns no
    /// series, several series where a condition reads `result[0]`, or values far from every
    /// number the conditions compare with.
    #[arg(long)]
    check_queries: bool,

    /// Prometheus address for metrics that have none (default:
    /// `ARGO_ROLLOUTS_PROMETHEUS_ADDRESS`).
    #[arg(long, value_name = "URL", requires = "check_queries")]
    prometheus_address: Option<String>,

    /// A value for a template argument in checked queries, as NAME=VALUE (repeatable);
    /// arguments without one come from the template's `value`.
    #[arg(long = "query-arg", value_name = "NAME=VALUE", requires = "check_queries", value_parser = parse_query_arg)]
    query_args: Vec<(String, String)>,
}

fn parse_query_arg(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected NAME=VALUE, got `{text}`"))
}

/// What `lint --output json` prints.
#[derive(Debug, Serialize)]
struct Report<'a> {
    problems: &'a [Problem],
    errors: usize,
    warnings: usize,
}

pub(crate) fn run(args: LintArgs) -> anyhow::Result<ExitStatus> {
    let mut problems = Vec::new();
    let mut sources = Vec::new();
    let mut templates = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // A values file that sits among the manifests (`deploy/values-production.yaml`) holds
    // values, not a manifest (as in apply and plan).
    for file in &args.values {
        seen.insert(std::fs::canonicalize(file).unwrap_or_else(|_| file.clone()));
    }
    for path in &args.paths {
        // A directory's `scenario.yaml` is for `simulate`, not a manifest (as in apply and plan).
        let scenario = path
            .is_dir()
            .then(|| path.join(super::inputs::SCENARIO_FILE));
        for file in files_under(path, &mut problems) {
            if scenario.as_ref() == Some(&file) {
                continue;
            }
            // The same file named twice (or found under two directories) is read once.
            if !seen.insert(std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone())) {
                continue;
            }
            match read_source(&file) {
                Ok(source) if render::is_template(&file) => {
                    let mut template = SourceFile::new(file.clone(), source.text);
                    // Relative to its directory, so that same-named templates in two
                    // subdirectories stay apart, as in `render`.
                    if let Ok(relative) = file.strip_prefix(path)
                        && !relative.as_os_str().is_empty()
                    {
                        template.relative = relative.to_path_buf();
                    }
                    templates.push(template);
                }
                Ok(source) => sources.push(source),
                Err(problem) => problems.push(*problem),
            }
        }
    }
    if !templates.is_empty() {
        sources.extend(render_templates(&args, &templates)?);
    }
    let options = Options {
        external_templates: args.external_templates.into_iter().collect(),
        external_objects: args.external.into_iter().collect(),
        allow_unsupported: args.allow_unsupported,
        capabilities: super::inputs::capabilities(),
    };
    let (mut report_problems, file_count) = lint_sources(&sources, &options, problems);
    if args.check_queries {
        let loaded = manifest::load(&sources);
        let check = super::check_queries::QueryCheck {
            prometheus_address: args.prometheus_address.clone().or_else(|| {
                crate::metrics::ProviderSettings::from_process_env().prometheus_address
            }),
            args: args.query_args.iter().cloned().collect(),
        };
        report_problems.extend(super::check_queries::check(&loaded.set, &check));
        let order: Vec<String> = sources.iter().map(Source::display_name).collect();
        manifest::sort_problems(&mut report_problems, &order);
    }
    let errors = report_problems.iter().filter(|p| p.is_error()).count();
    let warnings = report_problems.len() - errors;
    match args.output {
        OutputFormat::Json => {
            let report = Report {
                problems: &report_problems,
                errors,
                warnings,
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        OutputFormat::Text => print!("{}", render_text(&report_problems, file_count)),
    }
    Ok(exit_status(&report_problems))
}

/// Load and validate sources, adding problems met while reading files. Returns every problem,
/// sorted, and the number of files.
pub(crate) fn lint_sources(
    sources: &[Source],
    options: &Options,
    mut read_problems: Vec<Problem>,
) -> (Vec<Problem>, usize) {
    let loaded = manifest::load(sources);
    let mut problems = loaded.problems;
    let validated = validate::validate(&loaded.set, options);
    // A field of Argo's that rollout-runner's types lack is reported once, as unsupported.
    problems.retain(|p| {
        p.rule != Rule::UnknownField
            || !validated
                .iter()
                .any(|v| v.rule == Rule::Unsupported && v.file == p.file && v.path == p.path)
    });
    problems.extend(validated);
    problems.append(&mut read_problems);
    let mut order: Vec<String> = sources.iter().map(Source::display_name).collect();
    order.extend(problems.iter().map(|p| p.file.clone()));
    manifest::sort_problems(&mut problems, &order);
    problems.dedup();
    let files = sources.len()
        + problems
            .iter()
            .filter(|p| p.rule == Rule::Unreadable)
            .count();
    (problems, files)
}

/// 2 when an input could not be read, 1 when there are errors, 0 otherwise.
pub(crate) fn exit_status(problems: &[Problem]) -> ExitStatus {
    if problems.iter().any(|p| p.rule.is_unreadable()) {
        ExitStatus::Error
    } else if problems.iter().any(Problem::is_error) {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    }
}

/// The text report: one block per problem, then a summary line.
pub(crate) fn render_text(problems: &[Problem], files: usize) -> String {
    let mut out = String::new();
    for problem in problems {
        if problem.line > 0 {
            out.push_str(&format!(
                "{}:{}:{}: {}: {}\n",
                problem.file,
                problem.line,
                problem.column,
                problem.severity.as_str(),
                problem.message
            ));
        } else {
            out.push_str(&format!(
                "{}: {}: {}\n",
                problem.file,
                problem.severity.as_str(),
                problem.message
            ));
        }
        match (problem.object.is_empty(), problem.path.is_empty()) {
            (true, true) => {}
            (false, true) => out.push_str(&format!("  --> {}\n", problem.object)),
            (true, false) => out.push_str(&format!("  --> {}\n", problem.path)),
            (false, false) => {
                out.push_str(&format!("  --> {}: {}\n", problem.object, problem.path))
            }
        }
        if let Some(hint) = &problem.hint {
            out.push_str(&format!("  hint: {hint}\n"));
        }
    }
    let errors = problems.iter().filter(|p| p.is_error()).count();
    let warnings = problems.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if problems.is_empty() {
        out.push_str(&format!("no problems in {}\n", plural(files, "file")));
    } else {
        out.push_str(&format!(
            "{}, {} in {}\n",
            plural(errors, "error"),
            plural(warnings, "warning"),
            plural(files, "file")
        ));
    }
    out
}

fn unreadable(file: &Path, message: String, hint: &str) -> Problem {
    Problem {
        severity: Severity::Error,
        rule: Rule::Unreadable,
        file: file.display().to_string(),
        line: 0,
        column: 0,
        object: String::new(),
        path: String::new(),
        message,
        hint: Some(hint.to_string()),
    }
}

/// The files a path names: itself, or the manifest files under a directory (walked by
/// [`input::walk`]: inside the directory, loop-safe), sorted.
fn files_under(path: &Path, problems: &mut Vec<Problem>) -> Vec<PathBuf> {
    if !input::is_dir(path) {
        return vec![path.to_path_buf()];
    }
    match input::walk(path) {
        Err(error) => {
            problems.push(unreadable(&error.path, error.reason(), error.hint()));
            Vec::new()
        }
        // The files `plan` and `apply` would read there, templates included.
        Ok(found) => render::select_files(&found)
            .into_iter()
            .map(|file| path.join(file))
            .collect(),
    }
}

/// Render the templates found among the inputs, as `plan` and `apply` would before checking
/// them. A template error is not a lint finding but an input that cannot be read (exit 2),
/// reported as `render` reports it.
fn render_templates(args: &LintArgs, templates: &[SourceFile]) -> anyhow::Result<Vec<Source>> {
    let values = super::render::RenderInput {
        paths: Vec::new(),
        values: args.values.clone(),
        set: args.set.clone(),
        set_string: args.set_string.clone(),
        release_name: args.release_name.clone(),
    };
    let cwd = std::env::current_dir()?;
    let context = values.context(&crate::ci::CiContext::detect(crate::ci::process_env, &cwd))?;
    Ok(render::render(templates, &context)?
        .into_iter()
        .filter(|file| !file.is_blank())
        .map(|file| Source::rendered(file.source.display().to_string(), file.text))
        .collect())
}

fn read_source(file: &Path) -> Result<Source, Box<Problem>> {
    let text = input::read_text(file)
        .map_err(|error| Box::new(unreadable(file, error.reason(), error.hint())))?;
    let name = if file == Path::new(input::STDIN) {
        super::render::STDIN_NAME.to_string()
    } else {
        file.display().to_string()
    };
    Ok(Source::new(name, text))
}
