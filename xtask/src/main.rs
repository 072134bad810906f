//! `cargo xtask`: the FlowLens developer commands (`test`, `run`, `bench`, `fuzz`,
//! `fuzz-api`).
//!
//! These are the README's commands. Each checks what it needs first — installing Debian
//! packages when run as root, printing the exact `sudo apt-get install` line otherwise — then
//! runs its steps in order, printing each step's elapsed time and stopping at the first failure
//! with the step's name. Plain std, no dependencies: it must build before anything else does.

#![deny(clippy::unwrap_used)]

mod bench;
mod error;
mod fuzz;
mod fuzz_api;
mod prereq;
mod process;
mod run;
mod test;
mod web;

use std::process::ExitCode;

/// The help text, printed for `help` and, on stderr, for a missing or unknown command.
const USAGE: &str = "\
usage: cargo xtask <command> [args…]

commands:
  test [cargo test args…]   check prerequisites, then cargo fmt --check, clippy -D warnings,
                            cargo test (the gate CI runs via .ci/run)
  run [flowlens args…]      check prerequisites, build flowlens in release and run it
  web                       build the UI bundle (wasm32) into web/dist, which the node embeds
  bench [cargo bench args…] run the decoder benchmarks (cargo bench -p flowlens-benches)
  bench ingest [flags]      the end-to-end ingest bench (benches/results/ingest.md)
  bench map [flags]         the map page in headless Chromium (benches/results/map.md)
  bench soak [flags]        30 min at 100k flows/s: RSS curve, loss, projection vs its log
  bench faults [flags]      killed/frozen members, nats restart, full disk, exporter faults:
                            flows lost and recovery times, 3 runs each
  fuzz <target> [seconds] [libFuzzer args…]
                            run a proto/fuzz target (default 60 s), installing cargo-fuzz
                            into ~/.cache/flowlens-tools if it is not on PATH
  fuzz-api [seconds]        fuzz the REST API from its OpenAPI document with schemathesis
                            (default 300 s); fails on any 5xx answer
  help                      print this text

CARGO_TARGET_DIR defaults to ~/.cache/flowlens-target.";

/// Dispatches to the subcommand and turns its error into a message and an exit status.
fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let result = match command.as_deref() {
        Some("test") => test::run(&rest),
        Some("run") => run::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("fuzz") => fuzz::run(&rest),
        Some("fuzz-api") => fuzz_api::run(&rest),
        Some("web") => web::run(&rest),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(error::Error::Usage(format!(
            "unknown command `{other}`\n\n{USAGE}"
        ))),
        None => Err(error::Error::Usage(USAGE.to_string())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
