//! `cargo xtask bench`: the decoder benchmarks of the `flowlens-benches` crate (criterion, and
//! the allocation report), with any extra arguments passed through to `cargo bench`;
//! `cargo xtask bench ingest [flags]`, the end-to-end ingest bench against a release node; and
//! `cargo xtask bench map [flags]`, the map page's frame costs in headless Chromium.

use crate::error::Result;
use crate::process::{self, Step};

/// Runs `cargo bench -p flowlens-benches` with `extra` appended (e.g. `-- ipfix`), or the ingest
/// or map bench when the first argument names one.
pub fn run(extra: &[String]) -> Result<()> {
    let target_dir = process::ensure_target_dir()?;
    if extra.first().map(String::as_str) == Some("map") {
        // The node embeds the UI it serves.
        crate::web::run(&[])?;
        Step::cargo("build flowlens and the map bench (release)")?
            .args([
                "build",
                "--release",
                "--locked",
                "--package",
                "flowlens",
                "--package",
                "flowlens-benches",
                "--bin",
                "flowlens",
                "--bin",
                "map",
            ])
            .run()?;
        let release = target_dir.join("release");
        return Step::new("map bench", release.join("map").to_string_lossy())
            .current_dir(process::repo_root()?)
            .args([
                "--flowlens".to_string(),
                release.join("flowlens").to_string_lossy().into_owned(),
            ])
            .args(extra.iter().skip(1).cloned())
            .run();
    }
    if extra.first().map(String::as_str) == Some("ingest") {
        Step::cargo("build flowlens and the ingest bench (release)")?
            .args([
                "build",
                "--release",
                "--locked",
                "--package",
                "flowlens",
                "--package",
                "flowlens-benches",
                "--bin",
                "flowlens",
                "--bin",
                "ingest",
            ])
            .run()?;
        let release = target_dir.join("release");
        return Step::new("ingest bench", release.join("ingest").to_string_lossy())
            .current_dir(process::repo_root()?)
            .args([
                "--flowlens".to_string(),
                release.join("flowlens").to_string_lossy().into_owned(),
            ])
            .args(extra.iter().skip(1).cloned())
            .run();
    }
    Step::cargo("benches")?
        .args(["bench", "--locked", "--package", "flowlens-benches"])
        .args(extra.iter().cloned())
        .run()
}
