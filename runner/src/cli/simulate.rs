//! `rollout-runner simulate`: the main job without a cluster.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::error::ExitStatus;
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

/// Read a scenario; `series: FILE` entries are read relative to the scenario.
fn read_scenario(path: &Path) -> anyhow::Result<Scenario> {
    let text = crate::render::input::read_text(path).context("cannot read the scenario")?;
    // Without source snippets: the scenario holds secret values.
    let mut raw: serde_json::Value = serde_saphyr::from_str(&text).map_err(|error| {
        let rendered = error.render_with_options(serde_saphyr::render_options! {
            snippets: serde_saphyr::SnippetMode::Off,
        });
        anyhow::anyhow!(
            "invalid scenario `{}`: {rendered}\n\nhint: fix the YAML syntax at this position",
            path.display()
        )
    })?;
    check_secrets(path, &raw)?;
    if let Some(metrics) = raw.get_mut("metrics").and_then(|m| m.as_object_mut()) {
        for (name, script) in metrics.iter_mut() {
            let Some(file) = script
                .get("series")
                .and_then(|s| s.as_str())
                .map(String::from)
            else {
                continue;
            };
            let series_path = path.parent().unwrap_or(Path::new(".")).join(&file);
            let series_text = crate::render::input::read_text(&series_path)
                .with_context(|| format!("metric `{name}`: cannot read the series"))?;
            let points = parse_series(&series_text).map_err(|e| {
                anyhow::anyhow!("metric `{name}`: `{}`: {e}", series_path.display())
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
            script["series"] = serde_json::Value::Array(json_points);
        }
    }
    serde_json::from_value(raw).with_context(|| format!("invalid scenario `{}`", path.display()))
}

/// `secrets:` must map names to maps of strings. Checked here so that a mistyped value is
/// reported by its place, never echoed (serde's message quotes it).
fn check_secrets(path: &Path, raw: &serde_json::Value) -> anyhow::Result<()> {
    let Some(secrets) = raw.get("secrets") else {
        return Ok(());
    };
    let hint = "hint: write `secrets: {NAME: {KEY: \"VALUE\"}}`, each value a quoted string";
    let Some(secrets) = secrets.as_object() else {
        anyhow::bail!(
            "invalid scenario `{}`: `secrets` must be a mapping of secret names\n\n{hint}",
            path.display()
        );
    };
    for (name, data) in secrets {
        let Some(data) = data.as_object() else {
            anyhow::bail!(
                "invalid scenario `{}`: `secrets.{name}` must be a mapping of keys to values\n\n{hint}",
                path.display()
            );
        };
        for (key, value) in data {
            if !value.is_string() {
                anyhow::bail!(
                    "invalid scenario `{}`: `secrets.{name}.{key}` must be a string (its value is not shown)\n\n{hint}",
                    path.display()
                );
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
