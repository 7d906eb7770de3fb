//! Analysis: building AnalysisRuns from templates, and (pure) assessment of measurements.

pub mod backtest;
pub mod build;
pub mod run;
