//! `cargo xtask fuzz <target> [seconds] [libFuzzer args…]`: run one libFuzzer target of
//! `proto/fuzz` for a bounded time on the stable toolchain.
//!
//! cargo-fuzz passes nightly-only flags (`-Zsanitizer`, `-Cpasses=sancov-module`, …), which
//! `RUSTC_BOOTSTRAP=1` unlocks on stable; `-Zbuild-std` is not needed. The fuzz crate has its
//! own workspace and lock file, and builds into its own target directory so its instrumented
//! artifacts never evict the shared target's. See `proto/fuzz/README.md` for corpora, crashes
//! and regression tests.

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};
use crate::prereq;
use crate::process::{self, Step};

/// Seconds a run lasts when none are given.
const DEFAULT_SECONDS: u64 = 60;

/// libFuzzer's memory cap in MiB: a blow-up fails as out-of-memory instead of swapping.
const RSS_LIMIT_MB: u32 = 2048;

/// Runs `cargo fuzz run` for the target named in `args`, from `proto/fuzz`.
pub fn run(args: &[String]) -> Result<()> {
    let fuzz_dir = process::repo_root()?.join("proto").join("fuzz");
    let targets = targets(&fuzz_dir)?;
    let Some(target) = args.first() else {
        return Err(Error::Usage(format!(
            "usage: cargo xtask fuzz <target> [seconds] [libFuzzer args…]\ntargets: {}",
            targets.join(", ")
        )));
    };
    if !targets.contains(target) {
        return Err(Error::Usage(format!(
            "no fuzz target `{target}` in {}; targets: {}",
            fuzz_dir.join("fuzz_targets").display(),
            targets.join(", ")
        )));
    }
    let seconds = match args.get(1) {
        None => DEFAULT_SECONDS,
        Some(text) => text.parse::<u64>().map_err(|err| {
            Error::Usage(format!(
                "fuzz: seconds must be a whole number, got `{text}`: {err}"
            ))
        })?,
    };
    let libfuzzer_args = args.iter().skip(2).filter(|arg| arg.as_str() != "--");

    let mut step = Step::new(&format!("fuzz {target} for {seconds} s"), process::cargo())
        .current_dir(&fuzz_dir)
        .env("RUSTC_BOOTSTRAP", "1");
    if let Some(tools_bin) = prereq::ensure_cargo_tool("cargo-fuzz", "cargo-fuzz")? {
        step = step.env("PATH", process::path_with(&tools_bin)?);
    }
    let target_dir = process::home()?.join(".cache").join("flowlens-fuzz-target");
    let corpus = fuzz_dir.join("corpus").join(target);
    if is_empty_dir(&corpus) {
        // Start from valid packets built by `proto::encode`, not from nothing: the templated
        // targets reach data sets only once a template parses.
        Step::new("fuzz: write seed corpora", process::cargo())
            .current_dir(&fuzz_dir)
            .env("CARGO_TARGET_DIR", target_dir.clone())
            .args(["run", "--quiet", "--example", "seeds"])
            .run()?;
    }
    step.args([
        "fuzz",
        "run",
        target.as_str(),
        "--sanitizer",
        "none",
        "--target-dir",
    ])
    .arg(target_dir.to_string_lossy())
    .arg("--")
    .arg(format!("-max_total_time={seconds}"))
    .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
    .args(libfuzzer_args.cloned())
    .run()
}

/// Whether `dir` is missing or holds no entries.
fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).map_or(true, |mut entries| entries.next().is_none())
}

/// The fuzz targets: the file stems of `fuzz_targets/*.rs`, sorted.
fn targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let dir = fuzz_dir.join("fuzz_targets");
    let entries = fs::read_dir(&dir)
        .map_err(|err| Error::Environment(format!("cannot list {}: {err}", dir.display())))?;
    let mut targets = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|err| Error::Environment(format!("cannot list {}: {err}", dir.display())))?
            .path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            if let Some(stem) = path.file_stem() {
                targets.push(stem.to_string_lossy().into_owned());
            }
        }
    }
    targets.sort();
    Ok(targets)
}
