//! The manifest loader and validation on arbitrary text: what `lint`, `plan` and `apply` do
//! with a file before anything else. Any panic, abort or runaway allocation is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollout_runner_core::manifest::{self, Source};
use rollout_runner_core::validate::{self, Options};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let loaded = manifest::load(&[Source::new("fuzz.yaml", text)]);
    let _ = validate::validate(&loaded.set, &Options::default());
});
