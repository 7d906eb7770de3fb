//! The HTML report of a release record (`rollout-runner report RECORD --html FILE`): one
//! self-contained file (inline CSS and SVG, no script, nothing fetched) with the timeline of
//! steps, the traffic weight and replica counts over time, each metric's values against its
//! conditions with each measurement's verdict, and the outcome with its explanation.
//!
//! The charts are computed here as SVG coordinates and placed by a minijinja template
//! (`html/report.html`), which escapes every text it inserts.
//!
//! The live dashboard (`rollout-runner dashboard`) renders the same page with a [`LiveView`]:
//! the Rollout's state now, its promote / abort / retry buttons and a short script that
//! follows the server's change events (`html/live.js`); and a list of Rollouts
//! ([`dashboard_html`]) in the same style.

use serde::Serialize;

use super::junit::{CaseResult, cases};
use super::record::ReleaseRecord;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 48.0;
const TOP: f64 = 12.0;
const PLOT_WIDTH: f64 = WIDTH - LEFT - 16.0;
const PLOT_HEIGHT: f64 = HEIGHT - TOP - 28.0;

#[derive(Debug, Serialize)]
struct Point {
    x: f64,
    y: f64,
    label: String,
    class: String,
}

#[derive(Debug, Serialize)]
struct Series {
    name: String,
    class: String,
    path: String,
    points: Vec<Point>,
}

#[derive(Debug, Serialize)]
struct Tick {
    at: f64,
    label: String,
}

#[derive(Debug, Serialize)]
struct Chart {
    id: String,
    title: String,
    subtitle: String,
    series: Vec<Series>,
    thresholds: Vec<Threshold>,
    x_ticks: Vec<Tick>,
    y_ticks: Vec<Tick>,
    decision_x: Option<f64>,
    point_count: usize,
}

#[derive(Debug, Serialize)]
struct Threshold {
    y: f64,
    label: String,
}

#[derive(Debug, Serialize)]
struct StepRow {
    name: String,
    started: String,
    duration: String,
    result: String,
    message: String,
}

#[derive(Debug, Serialize)]
struct MeasurementRow {
    at: String,
    metric: String,
    value: String,
    phase: String,
    condition: String,
    message: String,
}

/// The x coordinate of a time, over `[0, span]` seconds.
fn x_of(seconds: f64, span: f64) -> f64 {
    LEFT + PLOT_WIDTH * (seconds / span).clamp(0.0, 1.0)
}

fn y_of(value: f64, low: f64, high: f64) -> f64 {
    let range = if high > low { high - low } else { 1.0 };
    TOP + PLOT_HEIGHT * (1.0 - ((value - low) / range).clamp(0.0, 1.0))
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A step-shaped path (values hold until the next sample) through the points, ending at `end`.
fn step_path(points: &[(f64, f64)], end_x: f64) -> String {
    let mut path = String::new();
    for (i, (x, y)) in points.iter().enumerate() {
        if i == 0 {
            path.push_str(&format!("M{x:.1},{y:.1}"));
        } else {
            path.push_str(&format!(" H{x:.1} V{y:.1}"));
        }
    }
    if !points.is_empty() {
        path.push_str(&format!(" H{end_x:.1}"));
    }
    path
}

fn x_ticks(span: f64) -> Vec<Tick> {
    let step = [
        30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
    ]
    .into_iter()
    .find(|s| span / s <= 8.0)
    .unwrap_or(14400.0);
    let mut ticks = Vec::new();
    let mut t = 0.0;
    while t <= span + 0.001 {
        ticks.push(Tick {
            at: round(x_of(t, span)),
            label: ReleaseRecord::clock(t),
        });
        t += step;
    }
    ticks
}

fn y_ticks(low: f64, high: f64) -> Vec<Tick> {
    (0..=4)
        .map(|i| {
            let value = low + (high - low) * f64::from(i) / 4.0;
            Tick {
                at: round(y_of(value, low, high)),
                label: format_number(value),
            }
        })
        .collect()
}

fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e9 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The number in a measurement's value: `0.5`, `[0.5]` (a Prometheus vector), `{"x": 0.5}`
/// (the first number of a JSON body).
pub fn numeric_value(value: &str) -> Option<f64> {
    fn first(value: &serde_json::Value) -> Option<f64> {
        match value {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.parse().ok(),
            serde_json::Value::Array(items) => items.iter().find_map(first),
            serde_json::Value::Object(map) => map.values().find_map(first),
            _ => None,
        }
    }
    let trimmed = value.trim();
    if let Ok(number) = trimmed.parse::<f64>() {
        return number.is_finite().then_some(number);
    }
    serde_json::from_str::<serde_json::Value>(trimmed)
        .ok()
        .as_ref()
        .and_then(first)
}

/// The numbers a condition compares with (`result[0] >= 0.99` gives 0.99), for the dashed
/// threshold lines.
fn condition_thresholds(condition: &str) -> Vec<f64> {
    let Ok(pattern) = regex::Regex::new(r"(\S*)\s*(?:<=|>=|<|>|==)\s*(-?[0-9]+(?:\.[0-9]+)?)")
    else {
        return Vec::new();
    };
    pattern
        .captures_iter(condition)
        // `len(result) > 0` guards the shape of the result, not its values.
        .filter(|c| {
            !c.get(1)
                .is_some_and(|left| left.as_str().starts_with("len("))
        })
        .filter_map(|c| c.get(2)?.as_str().parse().ok())
        .collect()
}

fn phase_class(phase: &str) -> String {
    match phase {
        "Successful" => "ok",
        "Failed" => "failed",
        "Inconclusive" => "inconclusive",
        "Error" => "error",
        _ => "other",
    }
    .into()
}

fn charts(record: &ReleaseRecord, span: f64) -> Vec<Chart> {
    let decision_x = record
        .decision
        .as_ref()
        .map(|d| round(x_of(d.elapsed_seconds, span)));
    let end_x = x_of(span, span);
    let mut out = Vec::new();

    let traffic: Vec<(f64, f64)> = record
        .traffic
        .iter()
        .map(|t| {
            (
                x_of(t.elapsed_seconds, span),
                y_of(f64::from(t.canary_weight), 0.0, 100.0),
            )
        })
        .collect();
    out.push(Chart {
        id: "traffic".into(),
        title: "Canary traffic weight (%)".into(),
        subtitle: if record.traffic.iter().any(|t| t.source == "step") {
            "no traffic routing: the weight the steps set, carried by replicas".into()
        } else {
            "as the routers report it".into()
        },
        point_count: traffic.len(),
        series: vec![Series {
            name: "canary weight".into(),
            class: "weight".into(),
            path: step_path(&traffic, end_x),
            points: record
                .traffic
                .iter()
                .zip(&traffic)
                .map(|(t, (x, y))| Point {
                    x: round(*x),
                    y: round(*y),
                    label: format!(
                        "{} weight {}%",
                        ReleaseRecord::clock(t.elapsed_seconds),
                        t.canary_weight
                    ),
                    class: "weight".into(),
                })
                .collect(),
        }],
        thresholds: Vec::new(),
        x_ticks: x_ticks(span),
        y_ticks: y_ticks(0.0, 100.0),
        decision_x,
    });

    let most = record
        .pods
        .iter()
        .map(|p| p.replicas.max(p.available_replicas))
        .max()
        .unwrap_or(1)
        .max(1);
    // Whole numbers of pods on each of the four grid lines.
    let most = f64::from((most + 3) / 4 * 4);
    let pod_series = |name: &str, class: &str, get: fn(&super::record::PodSample) -> i32| {
        let coords: Vec<(f64, f64)> = record
            .pods
            .iter()
            .map(|p| {
                (
                    x_of(p.elapsed_seconds, span),
                    y_of(f64::from(get(p)), 0.0, most),
                )
            })
            .collect();
        Series {
            name: name.into(),
            class: class.into(),
            path: step_path(&coords, end_x),
            points: record
                .pods
                .iter()
                .zip(&coords)
                .map(|(p, (x, y))| Point {
                    x: round(*x),
                    y: round(*y),
                    label: format!(
                        "{} {name}: {}",
                        ReleaseRecord::clock(p.elapsed_seconds),
                        get(p)
                    ),
                    class: class.into(),
                })
                .collect(),
        }
    };
    out.push(Chart {
        id: "replicas".into(),
        title: "Replicas".into(),
        subtitle: "pods of the new version (updated) and pods available".into(),
        point_count: record.pods.len(),
        series: vec![
            pod_series("updated", "updated", |p| p.updated_replicas),
            pod_series("available", "available", |p| p.available_replicas),
        ],
        thresholds: Vec::new(),
        x_ticks: x_ticks(span),
        y_ticks: y_ticks(0.0, most),
        decision_x,
    });

    for metric in record.metric_names() {
        let taken: Vec<_> = record
            .measurements
            .iter()
            .filter(|m| m.metric == metric)
            .collect();
        let conditions: Vec<String> = taken
            .first()
            .map(|m| {
                [
                    ("success", &m.success_condition),
                    ("failure", &m.failure_condition),
                ]
                .into_iter()
                .filter(|(_, c)| !c.is_empty())
                .map(|(k, c)| format!("{k}: {c}"))
                .collect()
            })
            .unwrap_or_default();
        let thresholds: Vec<f64> = taken
            .first()
            .map(|m| {
                let mut all = condition_thresholds(&m.success_condition);
                all.extend(condition_thresholds(&m.failure_condition));
                all
            })
            .unwrap_or_default();
        let values: Vec<Option<f64>> = taken.iter().map(|m| numeric_value(&m.value)).collect();
        let known = values.iter().flatten().chain(&thresholds).copied();
        let (mut low, mut high) = known.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
        if !low.is_finite() {
            (low, high) = (0.0, 1.0);
        }
        let pad = ((high - low) * 0.1).max(high.abs() * 0.01).max(1e-6);
        low -= pad;
        high += pad;
        let coords: Vec<(f64, f64)> = taken
            .iter()
            .zip(&values)
            .map(|(m, v)| {
                (
                    x_of(m.elapsed_seconds, span),
                    // A value without a number sits on the axis.
                    v.map_or(TOP + PLOT_HEIGHT, |v| y_of(v, low, high)),
                )
            })
            .collect();
        let path = coords
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_some())
            .enumerate()
            .map(|(i, ((x, y), _))| format!("{}{x:.1},{y:.1}", if i == 0 { "M" } else { " L" }))
            .collect::<String>();
        out.push(Chart {
            id: format!("metric-{metric}"),
            title: format!("Metric {metric}"),
            subtitle: conditions.join("; "),
            point_count: taken.len(),
            series: vec![Series {
                name: metric.clone(),
                class: "metric".into(),
                path,
                points: taken
                    .iter()
                    .zip(&coords)
                    .map(|(m, (x, y))| Point {
                        x: round(*x),
                        y: round(*y),
                        label: format!(
                            "{} {}: {} ({})",
                            ReleaseRecord::clock(m.elapsed_seconds),
                            m.phase,
                            m.value,
                            m.run
                        ),
                        class: phase_class(&m.phase),
                    })
                    .collect(),
            }],
            thresholds: thresholds
                .iter()
                .map(|t| Threshold {
                    y: round(y_of(*t, low, high)),
                    label: format_number(*t),
                })
                .collect(),
            x_ticks: x_ticks(span),
            y_ticks: y_ticks(low, high),
            decision_x,
        });
    }
    out
}

/// What the live dashboard adds to a report page.
#[derive(Debug, Clone, Serialize)]
pub struct LiveView {
    /// The Rollout's phase now (`Healthy`, `Paused`, ...).
    pub phase: String,
    pub message: String,
    /// `2/4`, or empty.
    pub step: String,
    pub weight: Option<i32>,
    pub actions: Vec<LiveAction>,
    /// The operations' URL prefix (`/api/rollouts/NS/NAME/`).
    pub action_path: String,
    /// The token the page sends with each operation.
    pub token: String,
    /// The nonce of the page's script (its Content-Security-Policy allows no other).
    pub nonce: String,
}

/// A button of the live page.
#[derive(Debug, Clone, Serialize)]
pub struct LiveAction {
    /// `promote`, `abort`, `retry`: the last segment of its URL.
    pub name: String,
    pub label: String,
    pub enabled: bool,
}

/// One line of the dashboard's list of Rollouts.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutRow {
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub message: String,
    pub step: String,
    pub weight: Option<i32>,
    /// The Rollout's page.
    pub path: String,
}

fn environment() -> Result<minijinja::Environment<'static>, String> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    for (name, source) in [
        ("report.html", include_str!("html/report.html")),
        ("report.css", include_str!("html/report.css")),
        ("live.css", include_str!("html/live.css")),
        ("live.js", include_str!("html/live.js")),
        ("live-header.html", include_str!("html/live-header.html")),
        ("live-state.html", include_str!("html/live-state.html")),
        ("dashboard.html", include_str!("html/dashboard.html")),
    ] {
        env.add_template(name, source).map_err(|e| e.to_string())?;
    }
    Ok(env)
}

/// The dashboard's list of Rollouts in `scope` (a namespace, or "all namespaces").
pub fn dashboard_html(scope: &str, rows: &[RolloutRow], live: &LiveView) -> Result<String, String> {
    let env = environment()?;
    let template = env
        .get_template("dashboard.html")
        .map_err(|e| e.to_string())?;
    template
        .render(minijinja::value::Serde(
            serde_json::json!({ "scope": scope, "rows": rows, "live": live }),
        ))
        .map_err(|e| e.to_string())
}

/// The report as one HTML document.
pub fn to_html(record: &ReleaseRecord) -> Result<String, String> {
    render(record, None)
}

/// The report of a release going on, with the Rollout's state now and its buttons.
pub fn to_live_html(record: &ReleaseRecord, live: &LiveView) -> Result<String, String> {
    render(record, Some(live))
}

fn render(record: &ReleaseRecord, live: Option<&LiveView>) -> Result<String, String> {
    let span = record
        .duration_seconds()
        .max(
            record
                .measurements
                .iter()
                .map(|m| m.elapsed_seconds)
                .fold(0.0, f64::max),
        )
        .max(1.0);
    let steps: Vec<StepRow> = cases(record)
        .into_iter()
        .filter(|c| c.classname.ends_with(".steps"))
        .map(|case| {
            let index = case
                .name
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.split('/').next())
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or(0)
                - 1;
            let started = record
                .statuses
                .iter()
                .find(|s| s.step.is_some_and(|s| i64::from(s) >= index))
                .map(|s| ReleaseRecord::clock(s.elapsed_seconds))
                .unwrap_or_default();
            let (result, message) = match case.result {
                CaseResult::Passed => ("passed", String::new()),
                CaseResult::Failed { message, .. } => ("failed", message),
                CaseResult::Error { message } => ("unfinished", message),
                CaseResult::Skipped { message } => ("skipped", message),
            };
            StepRow {
                name: case.name,
                started,
                duration: if result == "skipped" {
                    String::new()
                } else {
                    ReleaseRecord::clock(case.seconds)
                },
                result: result.into(),
                message,
            }
        })
        .collect();
    let measurements: Vec<MeasurementRow> = record
        .measurements
        .iter()
        .map(|m| MeasurementRow {
            at: ReleaseRecord::clock(m.elapsed_seconds),
            metric: m.metric.clone(),
            value: m.value.clone(),
            phase: m.phase.clone(),
            condition: m.success_condition.clone(),
            message: m.message.clone(),
        })
        .collect();
    let failed: Vec<&MeasurementRow> = measurements
        .iter()
        .filter(|m| m.phase == "Failed" || m.phase == "Error")
        .collect();
    let explanation = match &record.decision {
        Some(d) if d.message.is_empty() => d.describe(),
        Some(d) => format!("{}: {}", d.describe(), d.message),
        None => "no decision was recorded".into(),
    };
    let verdict_class = match record.decision.as_ref().map(|d| d.verdict.as_str()) {
        Some("promoted") => "ok",
        Some(_) => "failed",
        None => "other",
    };
    let env = environment()?;
    let template = env.get_template("report.html").map_err(|e| e.to_string())?;
    template
        .render(minijinja::value::Serde(serde_json::json!({
            "record": record,
            "charts": charts(record, span),
            "steps": &steps,
            "measurements": &measurements,
            "failed": &failed,
            "explanation": explanation,
            "verdict_class": verdict_class,
            "width": WIDTH,
            "height": HEIGHT,
            "left": LEFT,
            "top": TOP,
            "bottom": TOP + PLOT_HEIGHT,
            "right": LEFT + PLOT_WIDTH,
            "duration": ReleaseRecord::clock(span),
            "live": live,
        })))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_thresholds_are_read_as_numbers() {
        assert_eq!(numeric_value("[0.92]"), Some(0.92));
        assert_eq!(numeric_value("0.5"), Some(0.5));
        assert_eq!(numeric_value("{\"rate\": 3}"), Some(3.0));
        assert_eq!(numeric_value("NaN"), None);
        assert_eq!(numeric_value("*****"), None);
        assert_eq!(
            condition_thresholds("len(result) > 0 && result[0] >= 0.99"),
            vec![0.99]
        );
        assert_eq!(
            condition_thresholds("result < 0.5 || result > 2"),
            vec![0.5, 2.0]
        );
    }
}
