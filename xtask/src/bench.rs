//! `cargo xtask bench`: the decoder benchmarks of the `flowlens-benches` crate (criterion, and
//! the allocation report), with any extra arguments passed through to `cargo bench`.

use crate::error::Result;
use crate::process::{self, Step};

/// Runs `cargo bench -p flowlens-benches` with `extra` appended (e.g. `-- ipfix`).
pub fn run(extra: &[String]) -> Result<()> {
    process::ensure_target_dir()?;
    Step::cargo("benches")?
        .args(["bench", "--locked", "--package", "flowlens-benches"])
        .args(extra.iter().cloned())
        .run()
}
