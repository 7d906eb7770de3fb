//! Plans for people: a terminal table, and Markdown for a pull-request comment with a mermaid
//! chart of the traffic over time. Both end with the plan's hash.

use std::fmt::Write as _;

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

use super::{
    AnalysisPlan, MetricPlan, PlanStep, ReleasePlan, Span, Strategy, combined_hash, step_label,
};

/// `90` as `1m30s`, `3600` as `1h`, `0` as `0s`.
pub fn format_seconds(seconds: i64) -> String {
    if seconds <= 0 {
        return "0s".to_string();
    }
    let (h, m, s) = (seconds / 3600, (seconds % 3600) / 60, seconds % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if s > 0 {
        let _ = write!(out, "{s}s");
    }
    out
}

/// `1m`, `1m–5m`, or `≥ 1m` when there is no upper bound.
pub fn format_span(span: &Span) -> String {
    match span.max_seconds {
        Some(max) if max == span.min_seconds => format_seconds(max),
        Some(max) => format!(
            "{}–{}",
            format_seconds(span.min_seconds),
            format_seconds(max)
        ),
        None => format!("≥ {}", format_seconds(span.min_seconds)),
    }
}

fn step_number(plan: &ReleasePlan, step: &PlanStep) -> String {
    if step.kind == "promote" {
        return "end".to_string();
    }
    match plan.strategy {
        Strategy::Canary => format!("{}/{}", step.index + 1, plan.steps.len()),
        Strategy::BlueGreen => (step.index + 1).to_string(),
    }
}

/// The weight as a share of all traffic.
fn percent(plan: &ReleasePlan, weight: i32) -> f64 {
    let max = plan
        .traffic_routing
        .as_ref()
        .map_or(100, |t| t.max_traffic_weight)
        .max(1);
    f64::from(weight) * 100.0 / f64::from(max)
}

fn traffic_text(plan: &ReleasePlan, weight: i32) -> String {
    match &plan.traffic_routing {
        Some(t) if t.max_traffic_weight != 100 => format!("{weight}/{}", t.max_traffic_weight),
        _ => format!("{weight}%"),
    }
}

fn column_names(plan: &ReleasePlan) -> (&'static str, &'static str) {
    match plan.strategy {
        Strategy::Canary => ("canary", "stable"),
        Strategy::BlueGreen => ("new", "old"),
    }
}

fn analysis_summary(run: &AnalysisPlan) -> String {
    if run.error.is_some() {
        return format!(
            "analysis `{}` (unknown metrics)",
            run.templates.join("`, `")
        );
    }
    let metrics: Vec<String> = run.metrics.iter().map(metric_schedule).collect();
    format!("analysis: {}", metrics.join("; "))
}

/// `success-rate: 5 × 1m` and the like.
fn metric_schedule(metric: &MetricPlan) -> String {
    let mut out = metric.name.clone();
    match (metric.count, &metric.interval) {
        (Some(1), _) => out.push_str(": 1 measurement"),
        (Some(n), Some(interval)) => {
            let _ = write!(out, ": {n} × {interval}");
        }
        (Some(n), None) => {
            let _ = write!(out, ": {n} measurements");
        }
        (None, Some(interval)) => {
            let _ = write!(out, ": every {interval} until stopped");
        }
        (None, None) => {}
    }
    if let Some(limit) = metric.consecutive_success_limit {
        let _ = write!(out, ", done after {limit} in a row");
    }
    if let Some(delay) = &metric.initial_delay {
        let _ = write!(out, ", after {delay}");
    }
    if metric.dry_run {
        out.push_str(" (dry run)");
    }
    out
}

/// Short notes for a step's row.
fn row_notes(plan: &ReleasePlan, step: &PlanStep) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(run) = &step.analysis {
        notes.push(analysis_summary(run));
    }
    if let Some(experiment) = &step.experiment {
        let templates: Vec<String> = experiment
            .templates
            .iter()
            .map(|t| match t.weight {
                Some(w) => format!("{} ({}×{}, {w}%)", t.name, t.replicas, t.spec_ref),
                None => format!("{} ({}×{})", t.name, t.replicas, t.spec_ref),
            })
            .collect();
        notes.push(format!("experiment: {}", templates.join(", ")));
        for run in &experiment.analyses {
            notes.push(format!("{} {}", run.name, analysis_summary(&run.analysis)));
        }
    }
    let background_start = plan
        .background_analysis
        .as_ref()
        .and_then(|a| a.starting_step);
    if step.kind != "promote" && background_start == Some(step.index) {
        notes.push("background analysis starts".to_string());
    }
    notes.extend(step.notes.iter().cloned());
    notes
}

fn headline(plan: &ReleasePlan) -> String {
    let strategy = match plan.strategy {
        Strategy::Canary => "canary",
        Strategy::BlueGreen => "blue-green",
    };
    let mut parts = vec![format!("{strategy}, {} replica(s)", plan.replicas)];
    match (&plan.traffic_routing, plan.strategy) {
        (Some(routing), _) => {
            parts.push(format!("traffic routing: {}", routing.routers.join(", ")))
        }
        (None, Strategy::Canary) => parts.push(format!(
            "no traffic routing (weights are pod shares; maxSurge {}, maxUnavailable {})",
            plan.max_surge.unwrap_or(0),
            plan.max_unavailable.unwrap_or(0)
        )),
        (None, Strategy::BlueGreen) => {}
    }
    if plan.min_ready_seconds > 0 {
        parts.push(format!("minReadySeconds {}", plan.min_ready_seconds));
    }
    parts.join(", ")
}

fn duration_line(plan: &ReleasePlan) -> String {
    let min = format_seconds(plan.duration.min_seconds);
    match plan.duration.max_seconds {
        Some(max) if max == plan.duration.min_seconds => format!("takes {min}"),
        Some(max) => format!("takes {min} to {}", format_seconds(max)),
        None => format!("takes at least {min}, and waits for a person"),
    }
}

/// The "takes" column: a step that waits for a person says so.
fn takes(step: &PlanStep) -> String {
    match (step.waits_for_promotion, step.duration.min_seconds) {
        (true, 0) => "until promoted".to_string(),
        (true, min) => format!("≥ {}, until promoted", format_seconds(min)),
        (false, _) => format_span(&step.duration),
    }
}

/// The plan as a terminal table, with analysis queries, traffic objects and the hash.
/// Where the pods come from with a `workloadRef`, and what `scaleDown` does to the workload.
fn workload_line(plan: &ReleasePlan) -> Option<String> {
    let workload = plan.workload.as_ref()?;
    let effect = match workload.scale_down.as_str() {
        "onsuccess" => "it is scaled to 0 once the Rollout is Healthy",
        "progressively" => {
            "it is scaled down as the Rollout's pods become ready, and to 0 once the Rollout is Healthy"
        }
        _ => "it keeps its replicas",
    };
    let migration = if workload.scale_down == "never" {
        ""
    } else {
        " (first revision only)"
    };
    Some(format!(
        "Pod template: from {} `{}` (workloadRef, scaleDown: {}): {effect}{migration}",
        workload.kind, workload.name, workload.scale_down
    ))
}

pub fn table(plan: &ReleasePlan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Rollout {}: {}", plan.rollout(), headline(plan));
    if !plan.images.is_empty() {
        let _ = writeln!(out, "Images: {}", plan.images.join(", "));
    }
    if let Some(line) = workload_line(plan) {
        let _ = writeln!(out, "{line}");
    }
    let (canary, stable) = column_names(plan);
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(vec![
            "step", "action", canary, stable, "traffic", "starts", "takes", "notes",
        ]);
    for step in plan.steps.iter().chain([&plan.promotion]) {
        table.add_row(vec![
            step_number(plan, step),
            step.description.clone(),
            step.canary_replicas.to_string(),
            step.stable_replicas.to_string(),
            traffic_text(plan, step.traffic_weight),
            format_span(&step.start),
            takes(step),
            row_notes(plan, step).join("\n"),
        ]);
    }
    for index in [2, 3, 4] {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let _ = writeln!(out, "{table}");
    let _ = writeln!(
        out,
        "The release {}. Times assume pods start at once and every analysis passes.",
        duration_line(plan)
    );

    let analyses = plan.analyses();
    if !analyses.is_empty() {
        let _ = writeln!(out, "\nAnalysis:");
        for (label, run) in analyses {
            let _ = writeln!(out, "  {}", run_heading(plan, &label, run));
            if !run.args.is_empty() {
                let _ = writeln!(out, "    args: {}", run_args(run).join(", "));
            }
            for metric in &run.metrics {
                let _ = writeln!(
                    out,
                    "    {} ({}){}",
                    metric_schedule(metric),
                    metric.provider,
                    metric_takes(metric)
                );
                if let Some(query) = &metric.query {
                    for (i, line) in query.lines().enumerate() {
                        let lead = if i == 0 { "query:" } else { "      " };
                        let _ = writeln!(out, "      {lead} {line}");
                    }
                }
                if let Some(condition) = &metric.success_condition {
                    let _ = writeln!(out, "      success when: {condition}");
                }
                if let Some(condition) = &metric.failure_condition {
                    let _ = writeln!(out, "      failure when: {condition}");
                }
            }
        }
    }

    let writes = traffic_rows(plan);
    if !writes.is_empty() {
        let _ = writeln!(out, "\nTraffic objects:");
        for (label, object, when, path, value) in writes {
            let when = if when.is_empty() {
                String::new()
            } else {
                format!(" ({when})")
            };
            let _ = writeln!(out, "  {label}{when}: {object} {path} = {value}");
        }
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "\nWarnings:");
        for warning in &plan.warnings {
            let _ = writeln!(out, "  {warning}");
        }
    }
    let _ = writeln!(out, "\nPlan hash: {}", plan.hash);
    out
}

fn run_heading(plan: &ReleasePlan, label: &str, run: &AnalysisPlan) -> String {
    let mut heading = if label == "background" {
        match run.starting_step {
            Some(from) if from > 0 && from < plan.steps.len() => {
                format!("background, from step {} until promotion", from + 1)
            }
            _ => "background, until promotion".to_string(),
        }
    } else {
        label.to_string()
    };
    let _ = write!(heading, ": {}", run.templates.join(", "));
    if let Some(error) = &run.error {
        let _ = write!(heading, " ({error})");
    } else if run.runs_until_stopped {
        if label != "background" {
            heading.push_str(", runs until promoted");
        }
    } else if label != "background" {
        let _ = write!(heading, ", takes {}", format_span(&run.duration));
    }
    heading
}

fn run_args(run: &AnalysisPlan) -> Vec<String> {
    run.args
        .iter()
        .map(|a| format!("{}={}", a.name, a.value))
        .collect()
}

/// `, takes 4m` for a metric that ends on its own.
fn metric_takes(metric: &MetricPlan) -> String {
    if metric.count.is_none() && metric.consecutive_success_limit.is_none() {
        return String::new();
    }
    format!(", takes {}", format_span(&metric.duration))
}

/// (step label, `Kind name`, when, path, value) for every traffic write.
fn traffic_rows(plan: &ReleasePlan) -> Vec<(String, String, String, String, String)> {
    let mut rows = Vec::new();
    for step in plan.steps.iter().chain([&plan.promotion]) {
        let label = step_label(plan, step);
        for object in &step.traffic {
            for field in &object.fields {
                rows.push((
                    label.clone(),
                    format!("{} {}", object.kind, object.name),
                    object.when.clone(),
                    field.path.clone(),
                    field.value.clone(),
                ));
            }
        }
    }
    rows
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', "<br>")
}

fn code(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    format!("`{}`", text.replace('`', "'").replace('|', "\\|"))
}

/// Markdown for a pull-request comment: for each plan a summary, the step table, the traffic
/// chart, analysis queries and traffic objects, and the hash. Several plans end with their
/// combined hash ([`combined_hash`]).
pub fn markdown(plans: &[ReleasePlan]) -> String {
    let mut out = String::new();
    let hash = combined_hash(plans);
    let _ = writeln!(out, "<!-- rollout-runner plan {hash} -->");
    for (i, plan) in plans.iter().enumerate() {
        if i > 0 {
            let _ = writeln!(out, "\n---\n");
        }
        markdown_plan(&mut out, plan);
    }
    if plans.len() > 1 {
        let _ = writeln!(out, "\n<sub>All plans: `{hash}`</sub>");
    }
    out
}

fn markdown_plan(out: &mut String, plan: &ReleasePlan) {
    let _ = writeln!(out, "### Release plan for `{}`\n", plan.rollout());
    let steps = match plan.strategy {
        Strategy::Canary => format!("{} step(s)", plan.steps.len()),
        Strategy::BlueGreen => format!("{} phase(s)", plan.steps.len()),
    };
    let _ = writeln!(
        out,
        "{}; {steps}; the release **{}**.\n",
        capitalise(&headline(plan)),
        duration_line(plan)
    );
    if !plan.images.is_empty() {
        let images: Vec<String> = plan.images.iter().map(|i| code(i)).collect();
        let _ = writeln!(out, "Images: {}\n", images.join(", "));
    }
    if let Some(line) = workload_line(plan) {
        let _ = writeln!(out, "{line}\n");
    }
    let (canary, stable) = column_names(plan);
    let _ = writeln!(
        out,
        "| Step | Action | {} | {} | Traffic | Starts | Takes | Notes |",
        capitalise(canary),
        capitalise(stable)
    );
    let _ = writeln!(
        out,
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for step in plan.steps.iter().chain([&plan.promotion]) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            step_number(plan, step),
            code(&step.description),
            step.canary_replicas,
            step.stable_replicas,
            traffic_text(plan, step.traffic_weight),
            format_span(&step.start),
            takes(step),
            cell(&row_notes(plan, step).join("\n")),
        );
    }
    let _ = writeln!(
        out,
        "\nTimes assume pods start at once and every analysis passes.\n"
    );
    let _ = writeln!(out, "{}", chart(plan));

    let analyses = plan.analyses();
    if !analyses.is_empty() {
        let _ = writeln!(out, "<details><summary>Analysis</summary>\n");
        for (label, run) in analyses {
            let _ = writeln!(out, "**{}**\n", cell(&run_heading(plan, &label, run)));
            if !run.args.is_empty() {
                let args: Vec<String> = run_args(run).iter().map(|a| code(a)).collect();
                let _ = writeln!(out, "Arguments: {}\n", args.join(", "));
            }
            for metric in &run.metrics {
                let _ = writeln!(
                    out,
                    "- `{}` ({}){}{}",
                    metric_schedule(metric),
                    metric.provider,
                    metric_takes(metric),
                    metric
                        .success_condition
                        .as_deref()
                        .map(|c| format!("; succeeds when {}", code(c)))
                        .unwrap_or_default()
                );
                if let Some(condition) = &metric.failure_condition {
                    let _ = writeln!(out, "  fails when {}", code(condition));
                }
                if let Some(query) = &metric.query {
                    let _ = writeln!(out, "\n  ```");
                    for line in query.lines() {
                        let _ = writeln!(out, "  {line}");
                    }
                    let _ = writeln!(out, "  ```\n");
                }
            }
        }
        let _ = writeln!(out, "</details>\n");
    }

    let writes = traffic_rows(plan);
    if !writes.is_empty() {
        let _ = writeln!(out, "<details><summary>Traffic objects</summary>\n");
        let _ = writeln!(out, "| Step | Object | Field | Value |");
        let _ = writeln!(out, "| --- | --- | --- | --- |");
        for (label, object, when, path, value) in writes {
            let label = if when.is_empty() {
                label
            } else {
                format!("{label} ({when})")
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(&label),
                code(&object),
                code(&path),
                code(&value)
            );
        }
        let _ = writeln!(out, "\n</details>\n");
    }
    for warning in &plan.warnings {
        let _ = writeln!(out, "> **Warning:** {}\n", cell(warning));
    }
    let _ = writeln!(out, "<sub>Plan `{}`</sub>", plan.hash);
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A mermaid `xychart-beta` line of the traffic share over time, on the slowest path. Steps
/// without an upper bound are drawn with a nominal width; when every step is instant the chart
/// goes step by step instead.
fn chart(plan: &ReleasePlan) -> String {
    let entries: Vec<&PlanStep> = plan.steps.iter().chain([&plan.promotion]).collect();
    let finite: i64 = entries.iter().filter_map(|s| s.duration.max_seconds).sum();
    let nominal = (finite / 10).max(60);
    let segments: Vec<(i64, f64)> = entries
        .iter()
        .map(|s| {
            (
                s.duration.max_seconds.unwrap_or(nominal),
                percent(plan, s.traffic_weight),
            )
        })
        .collect();
    let total: i64 = segments.iter().map(|(d, _)| d).sum();
    let mut out = String::from("```mermaid\nxychart-beta\n");
    let value = |v: f64| format!("{}", (v * 10.0).round() / 10.0);
    if total == 0 {
        let labels: Vec<String> = entries
            .iter()
            .map(|s| format!("\"{}\"", step_number(plan, s)))
            .collect();
        let values: Vec<String> = segments.iter().map(|(_, v)| value(*v)).collect();
        let _ = writeln!(
            out,
            "    title \"Traffic to the new version, step by step (every step is instant)\""
        );
        let _ = writeln!(out, "    x-axis \"step\" [{}]", labels.join(", "));
        let _ = writeln!(
            out,
            "    y-axis \"traffic to the new version (%)\" 0 --> 100"
        );
        let _ = writeln!(out, "    line [{}]", values.join(", "));
        out.push_str("```\n");
        return out;
    }
    let (unit, unit_name) = if total <= 300 {
        (1, "seconds")
    } else if total <= 3 * 3600 {
        (60, "minutes")
    } else {
        (3600, "hours")
    };
    const NICE: [i64; 18] = [
        1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
    ];
    let wanted = (total + 99) / 100;
    let step = NICE
        .iter()
        .copied()
        .find(|n| *n >= wanted)
        .unwrap_or(wanted);
    let points = (total + step - 1) / step;
    let weight_at = |t: i64| {
        let mut start = 0;
        for (duration, weight) in &segments {
            if t < start + duration {
                return *weight;
            }
            start += duration;
        }
        segments.last().map_or(100.0, |(_, w)| *w)
    };
    let values: Vec<String> = (0..=points).map(|j| value(weight_at(j * step))).collect();
    let end = (points * step) as f64 / unit as f64;
    let _ = writeln!(
        out,
        "    title \"Traffic to the new version over time (slowest path)\""
    );
    let _ = writeln!(
        out,
        "    x-axis \"{unit_name} since the release\" 0 --> {}",
        value(end)
    );
    let _ = writeln!(
        out,
        "    y-axis \"traffic to the new version (%)\" 0 --> 100"
    );
    let _ = writeln!(out, "    line [{}]", values.join(", "));
    out.push_str("```\n");
    if entries.iter().any(|s| !s.duration.is_bounded()) {
        let _ = writeln!(
            out,
            "\nSteps that wait for a person are drawn {} long.",
            format_seconds(nominal)
        );
    }
    out
}
