//! `rollout-runner simulate`: the main job without a cluster.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::error::ExitStatus;
use crate::manifest::DataFile;
use crate::metrics::scripted::parse_series;
use crate::report::record::Recorder;
use crate::report::reporters::Reporters;
use crate::report::terminal::Terminal;
use crate::report::timeline::Timeline;
use crate::report::{Fanout, Reporter};
use crate::simulation::{Scenario, Simulation};

use super::OutputFormat;
use super::inputs::{Inputs, load_inputs};
use super::record_args::{RecordArgs, recorder};
use super::report_args::{ReportArgs, finish_reports, sources_of, start_reporters};

/// Run a release against an in-memory cluster on a virtual clock: the real driver loop
/// (observe, plan, act, record status) with pods that become ready after a delay, scripted
/// metric values and scheduled interventions. An hour-long canary runs in well under a second.
///
/// The simulation starts from a fully available stable version of the Rollout, releases the
/// given one and drives it to its end. Exit codes are those of `apply --wait`: 0 promoted, 1
/// aborted, 2 invalid input, 3 timed out or waiting for a person.
///
/// Example: `rollout-runner simulate examples/canary-analysis-fails`
#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    #[command(flatten)]
    inputs: Inputs,

    /// The scenario: pod behaviour, metric values, interventions. Default: `scenario.yaml` in
    /// the first directory given, if there is one.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,

    /// The Rollout to release when the inputs hold several.
    #[arg(long, value_name = "NAME")]
    rollout: Option<String>,

    /// `text`: live progress and a summary. `json`: the full event timeline.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,

    /// Wait for real instead of jumping the virtual clock.
    #[arg(long)]
    real_time: bool,

    /// Give up after this long (virtual time; overrides the scenario's `timeout`).
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,

    /// A pause waiting for promotion counts as success (exit 0).
    #[arg(long)]
    success_on_pause: bool,

    /// Also print each event (scaling, service switches, traffic).
    #[arg(long, short)]
    verbose: bool,

    /// Replay a release record: its metric values drive the providers and its pod readiness
    /// drives the in-memory cluster, under the Rollout and AnalysisTemplates given (the
    /// recorded ones, or changed ones); says where the new decision differs from the recorded
    /// one. Exit codes are those of the replayed release.
    #[arg(long, value_name = "RECORD")]
    replay: Option<PathBuf>,

    #[command(flatten)]
    records: RecordArgs,

    #[command(flatten)]
    report: ReportArgs,
}

/// The scenario file to use: the one given, or `scenario.yaml` in the first directory.
fn scenario_path(args: &SimulateArgs) -> Option<PathBuf> {
    if let Some(path) = &args.scenario {
        return Some(path.clone());
    }
    args.inputs.scenario_files().into_iter().next()
}

/// Read a scenario; `series: FILE` entries are read relative to the scenario. Every problem
/// is reported at its line, column and field; secret values are never quoted.
fn read_scenario(path: &Path) -> anyhow::Result<Scenario> {
    let text = crate::render::input::read_text(path).context("cannot read the scenario")?;
    let mut file =
        DataFile::parse(&path.display().to_string(), &text).map_err(|problem| invalid(&problem))?;
    check_secrets(&file).map_err(|problem| invalid(&problem))?;
    let mut series_files = Vec::new();
    if let Some(metrics) = file.value.get("metrics").and_then(|m| m.as_object()) {
        for (name, script) in metrics {
            if let Some(series) = script.get("series").and_then(|s| s.as_str()) {
                series_files.push((name.clone(), series.to_string()));
            }
        }
    }
    for (name, series) in series_files {
        let series_path = path.parent().unwrap_or(Path::new(".")).join(&series);
        let place = format!("metrics.{name}.series");
        let series_text = crate::render::input::read_text(&series_path).map_err(|error| {
            invalid(&file.problem(
                &place,
                format!(
                    "metric `{name}`: cannot read the series: {}",
                    error.reason()
                ),
                Some(error.hint().to_string()),
            ))
        })?;
        let points = parse_series(&series_text).map_err(|error| {
            invalid(&file.problem(
                &place,
                format!("metric `{name}`: `{}`: {error}", series_path.display()),
                Some("write CSV rows `seconds,value` or a JSON array of `[seconds, value]` pairs".to_string()),
            ))
        })?;
        let json_points: Vec<serde_json::Value> = points
            .into_iter()
            .map(|(t, v)| {
                let value = if v.0.is_finite() {
                    serde_json::json!(v.0)
                } else {
                    serde_json::json!(crate::metrics::scripted::format_value(v.0))
                };
                serde_json::json!([t, value])
            })
            .collect();
        file.value["metrics"][&name]["series"] = serde_json::Value::Array(json_points);
    }
    file.decode().map_err(|problem| invalid(&problem))
}

/// A scenario problem as the command's error (exit 2): `file:line:column: invalid scenario:
/// message`, then the field and the hint.
fn invalid(problem: &crate::manifest::Problem) -> anyhow::Error {
    let place = match problem.line {
        0 => problem.file.clone(),
        line => format!("{}:{line}:{}", problem.file, problem.column),
    };
    let mut text = format!("{place}: invalid scenario: {}", problem.message);
    if !problem.path.is_empty() {
        text.push_str(&format!("\n  --> {}", problem.path));
    }
    if let Some(hint) = &problem.hint {
        text.push_str(&format!("\n  hint: {hint}"));
    }
    anyhow::anyhow!(text)
}

/// `secrets:` must map names to maps of strings. Checked here so that a mistyped value is
/// reported by its place, never echoed (serde's message quotes it).
fn check_secrets(file: &DataFile) -> Result<(), Box<crate::manifest::Problem>> {
    let Some(secrets) = file.value.get("secrets") else {
        return Ok(());
    };
    let hint = || {
        Some("write `secrets: {NAME: {KEY: \"VALUE\"}}`, each value a quoted string".to_string())
    };
    let Some(secrets) = secrets.as_object() else {
        return Err(Box::new(file.problem(
            "secrets",
            "`secrets` must be a mapping of secret names",
            hint(),
        )));
    };
    for (name, data) in secrets {
        let Some(data) = data.as_object() else {
            return Err(Box::new(file.problem(
                &format!("secrets.{name}"),
                format!("`secrets.{name}` must be a mapping of keys to values"),
                hint(),
            )));
        };
        for (key, value) in data {
            if !value.is_string() {
                return Err(Box::new(file.problem(
                    &format!("secrets.{name}.{key}"),
                    format!("`secrets.{name}.{key}` must be a string (its value is not shown)"),
                    hint(),
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn run(args: SimulateArgs) -> anyhow::Result<ExitStatus> {
    let scenario_file = scenario_path(&args);
    let mut scenario = match &scenario_file {
        Some(path) => read_scenario(path)?,
        None => Scenario::default(),
    };
    if let Some(timeout) = &args.timeout {
        scenario.timeout = Some(timeout.clone());
    }
    scenario.success_on_pause |= args.success_on_pause;
    let exclude: Vec<PathBuf> = scenario_file.iter().cloned().collect();
    let set = match load_inputs(&args.inputs, &exclude)? {
        Ok(set) => set,
        Err(status) => return Ok(status),
    };

    let replay = match &args.replay {
        Some(path) => Some(super::report::read_record(path)?),
        None => None,
    };
    let rollout_name = args.rollout.clone().or_else(|| {
        let recorded = &replay.as_ref()?.rollout.name;
        let several = set.rollouts().count() > 1;
        (several && set.rollouts().any(|(_, r)| r.name() == recorded)).then(|| recorded.clone())
    });
    if let Some(record) = &replay {
        let image = set
            .rollouts()
            .find(|(_, r)| rollout_name.as_deref().is_none_or(|n| r.name() == n))
            .and_then(|(_, r)| {
                r.spec
                    .template
                    .as_ref()?
                    .spec
                    .as_ref()?
                    .containers
                    .first()?
                    .image
                    .clone()
            });
        scenario = crate::replay::replay_scenario(record, &scenario, image.as_deref());
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let simulation = Simulation::prepare(&set, &scenario, rollout_name.as_deref(), args.real_time)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let ci = crate::ci::CiContext::detect(crate::ci::process_env, &std::env::current_dir()?);
        let mut reporters = start_reporters(&args.report, &ci, sources_of(&set))?;
        let mut recorder = recorder("simulate", Some(&set), rollout_name.as_deref());
        let replay_metrics = replay
            .as_ref()
            .map(|record| crate::replay::recorded_metrics(record, simulation.released_at));
        let replay_metrics = replay_metrics.as_ref();
        let stdout = std::io::stdout();
        match args.output {
            OutputFormat::Text => {
                let mut terminal = Terminal::new(std::io::stdout());
                terminal.verbose = args.verbose;
                for name in &simulation.created_services {
                    let _ = writeln!(
                        std::io::stderr(),
                        "note: service `{name}` is not among the inputs; the simulation created it"
                    );
                }
                let outcome = drive(&simulation, replay_metrics, &mut terminal, &mut reporters, &mut recorder).await;
                finish_reports(reporters).await;
                let outcome = outcome?;
                recorder.record.api_writes.total = Some(simulation.cluster.api_writes());
                args.records.write(&recorder.record, false)?;
                let mut out = terminal.into_inner();
                let elapsed = crate::cluster::Cluster::now(&simulation.cluster)
                    .duration_since(simulation.released_at);
                let _ = writeln!(
                    out,
                    "\nsimulated {}, {} API writes, exit code {}",
                    crate::crd::duration::format_go_seconds(elapsed.as_secs()),
                    simulation.cluster.api_writes(),
                    outcome.exit_status().code()
                );
                if let Some(workload) = simulation.workload() {
                    let _ = writeln!(
                        out,
                        "{} {}: {} replicas at the end",
                        workload.kind,
                        workload.name,
                        workload.replicas.unwrap_or(0)
                    );
                }
                if let Some(record) = &replay {
                    let comparison = crate::replay::compare(record, &recorder.record);
                    let _ = writeln!(out, "replay: {}", comparison.text);
                }
                Ok(outcome.exit_status())
            }
            OutputFormat::Json => {
                let mut timeline = Timeline::default();
                let outcome = drive(&simulation, replay_metrics, &mut timeline, &mut reporters, &mut recorder).await;
                let reports = finish_reports(reporters).await;
                let outcome = outcome?;
                recorder.record.api_writes.total = Some(simulation.cluster.api_writes());
                args.records.write(&recorder.record, false)?;
                let elapsed = crate::cluster::Cluster::now(&simulation.cluster)
                    .duration_since(simulation.released_at);
                let report = serde_json::json!({
                    "rollout": format!("{}/{}", simulation.rollout.namespace_or_default(), simulation.rollout.name()),
                    "outcome": outcome,
                    "exitCode": outcome.exit_status().code(),
                    "simulatedSeconds": elapsed.as_secs_f64(),
                    "apiWrites": simulation.cluster.api_writes(),
                    "workload": simulation.workload(),
                    "reports": reports,
                    "timeline": timeline.entries,
                    "replay": replay.as_ref().map(|record| crate::replay::compare(record, &recorder.record)),
                });
                let mut out = stdout.lock();
                serde_json::to_writer_pretty(&mut out, &report)?;
                let _ = writeln!(out);
                Ok(outcome.exit_status())
            }
        }
    })
}

/// Drive the simulation with the output reporter and the forge reporters side by side.
async fn drive(
    simulation: &Simulation,
    replay: Option<&crate::metrics::recorded::Recorded>,
    output: &mut dyn Reporter,
    reporters: &mut Reporters,
    recorder: &mut Recorder,
) -> Result<crate::report::Outcome, crate::driver::DriverError> {
    let mut fanout = Fanout(vec![output, reporters, recorder]);
    match replay {
        Some(metrics) => simulation.run_with(metrics, &mut fanout).await,
        None => simulation.run(&mut fanout).await,
    }
}
