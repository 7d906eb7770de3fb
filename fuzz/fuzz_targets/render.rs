//! Templates: an arbitrary `.j2` template rendered with values parsed from the part after the
//! first NUL byte, as `render`, `lint`, `plan` and `apply` render one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollout_runner_render::{Context, SourceFile, Values, render};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (template, values_yaml) = text.split_once('\0').unwrap_or((text, ""));
    let mut values = Values::new();
    if values
        .merge_yaml(std::path::Path::new("values.yaml"), values_yaml)
        .is_err()
    {
        values = Values::new();
    }
    let _ = render(
        &[SourceFile::new("fuzz.yaml.j2", template)],
        &Context::new(values),
    );
});
