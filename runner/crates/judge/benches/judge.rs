//! The judge on 2 x 10,000 points: `cargo bench --bench judge`.
//!
//! A plain timing loop (no criterion: one more heavy dependency for one figure). Prints the
//! median and the fastest of the runs.

// A bench reports on stdout.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use rollout_runner_api::crd::{JudgeDirection, JudgeMetric, JudgeMetricSpec};
use rollout_runner_judge as judge;

fn series(center: f64, n: usize, seed: u64) -> Vec<f64> {
    // Lehmer-style generator: spread values without a dependency.
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            center + ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 4.0
        })
        .collect()
}

fn main() {
    let n = 10_000;
    let canary = series(10.2, n, 1);
    let baseline = series(10.0, n, 2);
    let config = JudgeMetric {
        metrics: vec![JudgeMetricSpec {
            name: "latency".into(),
            direction: JudgeDirection::Either,
            ..Default::default()
        }],
        ..Default::default()
    };
    let series = [(canary, baseline)];
    let mut times: Vec<Duration> = Vec::new();
    let mut verdict = None;
    for _ in 0..30 {
        let start = Instant::now();
        let judgement = judge::judge(&config, &series);
        times.push(start.elapsed());
        verdict = Some((judgement.verdict, judgement.metrics[0].classification));
    }
    times.sort();
    println!(
        "judge, 1 metric, 2 x {n} points: median {:?}, fastest {:?} over {} runs ({verdict:?})",
        times[times.len() / 2],
        times[0],
        times.len()
    );
}
