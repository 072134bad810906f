//! `cargo xtask bench`: the decoder benchmarks of the `flowlens-benches` crate (criterion, and
//! the allocation report), with any extra arguments passed through to `cargo bench`;
//! `cargo xtask bench ingest [flags]`, the end-to-end ingest bench against a release node and
//! nfdump's collectors side by side;
//! `cargo xtask bench map [flags]`, the map page's frame costs in headless Chromium; and
//! `cargo xtask bench soak [flags]`, a long steady run (RSS curve, loss, projection vs replay);
//! and `cargo xtask bench faults [flags]`, the fault scenarios' table of loss and recovery.

use std::path::Path;

use crate::error::Result;
use crate::process::{self, Step};

/// Runs `cargo bench -p flowlens-benches` with `extra` appended (e.g. `-- ipfix`), or the ingest
/// or map bench when the first argument names one.
pub fn run(extra: &[String]) -> Result<()> {
    let target_dir = process::ensure_target_dir()?;
    match extra.first().map(String::as_str) {
        Some("map") => {
            // The node embeds the UI it serves.
            crate::web::run(&[])?;
            end_to_end(&target_dir, "map", &extra[1..])
        }
        Some("soak") => end_to_end(&target_dir, "soak", &extra[1..]),
        Some("faults") => {
            crate::prereq::ensure_debian_packages(crate::prereq::TEST_PACKAGES)?;
            end_to_end(&target_dir, "faults", &extra[1..])
        }
        Some("ingest") => {
            crate::prereq::ensure_debian_packages(crate::prereq::BENCH_PACKAGES)?;
            end_to_end(&target_dir, "ingest", &extra[1..])
        }
        _ => Step::cargo("benches")?
            .args(["bench", "--locked", "--package", "flowlens-benches"])
            .args(extra.iter().cloned())
            .run(),
    }
}

/// Builds a release `flowlens` and the bench binary `bench`, then runs it against that node
/// binary with `flags`.
fn end_to_end(target_dir: &Path, bench: &str, flags: &[String]) -> Result<()> {
    Step::cargo(&format!("build flowlens and the {bench} bench (release)"))?
        .args(["build", "--release", "--locked", "--package", "flowlens"])
        .args([
            "--package",
            "flowlens-benches",
            "--bin",
            "flowlens",
            "--bin",
            bench,
        ])
        .run()?;
    let release = target_dir.join("release");
    Step::new(
        &format!("{bench} bench"),
        release.join(bench).to_string_lossy(),
    )
    .current_dir(process::repo_root()?)
    .args([
        "--flowlens".to_string(),
        release.join("flowlens").to_string_lossy().into_owned(),
    ])
    .args(flags.iter().cloned())
    .run()
}
