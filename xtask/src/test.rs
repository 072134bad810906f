//! `cargo xtask test`: the whole gate CI runs — prerequisites, the UI bundle (`cargo xtask web`),
//! then format check, lint (host crates, then the UI for wasm32), tests (the browser tests among
//! them).
//!
//! Every cargo step uses the same package selection (none given: the workspace's
//! `default-members`, which leave out the wasm-only `web` crate), so features unify the same way
//! in clippy and test and nothing is rebuilt between steps for a different feature set.

use std::time::Instant;

use crate::error::Result;
use crate::prereq;
use crate::process::{self, Step};

/// Runs the gate; `extra` arguments go to `cargo test` (e.g. a test-name filter).
pub fn run(extra: &[String]) -> Result<()> {
    let started = Instant::now();
    prereq::ensure_for_tests()?;
    process::ensure_target_dir()?;
    // The UI first: the node embeds web/dist when it is built, and the browser tests need it.
    crate::web::run(&[])?;
    let steps = [
        Step::cargo("format check")?.args(["fmt", "--all", "--", "--check"]),
        Step::cargo("clippy")?.args([
            "clippy",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
        Step::cargo("clippy (UI, wasm32)")?.args([
            "clippy",
            "--locked",
            "--package",
            "flowlens-web",
            "--target",
            "wasm32-unknown-unknown",
            "--",
            "-D",
            "warnings",
        ]),
        Step::cargo("tests")?
            .args(["test", "--locked"])
            .args(extra.iter().cloned()),
    ];
    for step in &steps {
        step.run()?;
    }
    println!(
        "all steps passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
