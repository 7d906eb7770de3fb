//! Integration tests, built as one binary (`autotests = false`).

mod analysis_check;
mod expr_props;
