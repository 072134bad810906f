//! `cargo xtask run`: build the `flowlens` binary in release and start it.
//!
//! Today the binary only reports what this build can do. When the node lands, this command
//! grows the steps the README promises, in this order: prerequisites, the web UI build (embedded
//! into the binary at compile time, so it must come first), the release build, then
//! `flowlens node` with a default config.

use crate::error::{Error, Result};
use crate::prereq;
use crate::process::{self, Step};

/// Checks prerequisites, builds `flowlens` in release and runs it with `extra` as its arguments.
pub fn run(extra: &[String]) -> Result<()> {
    prereq::ensure_all()?;
    let target_dir = process::ensure_target_dir()?;
    Step::cargo("build flowlens (release)")?
        .args([
            "build",
            "--release",
            "--locked",
            "--package",
            "flowlens",
            "--bin",
            "flowlens",
        ])
        .run()?;
    let binary = target_dir.join("release").join("flowlens");
    if !process::is_executable(&binary) {
        return Err(Error::Environment(format!(
            "the release build succeeded but {} is missing",
            binary.display()
        )));
    }
    Step::new("flowlens", binary.to_string_lossy())
        .current_dir(process::repo_root()?)
        .args(extra.iter().cloned())
        .run()
}
