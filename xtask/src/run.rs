//! `cargo xtask run`: build the `flowlens` binary in release and start a single node with the
//! built-in defaults (data in `./data`, API on http://127.0.0.1:8080, flows on UDP 2055, 4739 and
//! 6343; no NATS). Arguments replace the default `node` command line (`cargo xtask run simulate
//! --to 127.0.0.1:2055`). The web UI is built first (`cargo xtask web`): the binary embeds it.

use crate::error::Result;
use crate::prereq;
use crate::process::{self, Step};

/// Checks prerequisites, builds `flowlens` in release and runs it with `extra` as its arguments
/// (`node` when there are none).
pub fn run(extra: &[String]) -> Result<()> {
    prereq::ensure_all()?;
    let target_dir = process::ensure_target_dir()?;
    // The node embeds the UI bundle when it is built.
    crate::web::run(&[])?;
    let binary = process::build_flowlens(&target_dir, true)?;
    Step::new("flowlens", binary.to_string_lossy())
        .current_dir(process::repo_root()?)
        .args(if extra.is_empty() {
            vec!["node".to_string()]
        } else {
            extra.to_vec()
        })
        .run()
}
