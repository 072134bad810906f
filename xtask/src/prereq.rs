//! Prerequisites: what `cargo xtask` needs on the machine, checked every time and installed when
//! possible, so one command takes a fresh Debian 12 + rustup stable machine to a green run.
//!
//! Debian packages are installed with apt-get when xtask runs as root; otherwise xtask prints
//! the exact `sudo apt-get install` line and stops. rustup components are added with rustup.
//! Cargo tools go to `$HOME/.cache/flowlens-tools` (see [`crate::process::tools_root`]).

use std::fs;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::process::{self, Step};

/// Debian packages every command needs, as (package, command whose presence proves it is
/// installed): none. The UI builds with rustup's wasm32 target (`cargo xtask web` adds it) and
/// `wasm-bindgen-cli` from crates.io. Captures are committed, so no exporter is needed
/// (`tests/data/generate.sh` documents what regenerating them takes).
pub const DEBIAN_PACKAGES: &[(&str, &str)] = &[];

/// Debian packages only the tests need: a real NATS server for the Raft-over-NATS tests
/// (a single node runs without one), Chromium with its WebDriver for the UI tests, and nfdump's
/// collectors, which the ingest bench (and its reduced form among the tests) runs beside
/// FlowLens.
pub const TEST_PACKAGES: &[(&str, &str)] = &[
    ("nats-server", "/usr/sbin/nats-server"),
    ("chromium", "/usr/bin/chromium"),
    ("chromium-driver", "/usr/bin/chromedriver"),
    ("nfdump", "/usr/bin/nfcapd"),
    ("nfdump-sflow", "/usr/bin/sfcapd"),
];

/// Debian packages the side-by-side ingest bench runs: nfdump's `nfcapd` and `sfcapd`.
pub const BENCH_PACKAGES: &[(&str, &str)] = &[
    ("nfdump", "/usr/bin/nfcapd"),
    ("nfdump-sflow", "/usr/bin/sfcapd"),
];

/// rustup components, as (component, cargo subcommand it provides).
pub const RUSTUP_COMPONENTS: &[(&str, &str)] = &[("rustfmt", "fmt"), ("clippy", "clippy")];

/// Checks (and where possible installs) every prerequisite of running a node.
pub fn ensure_all() -> Result<()> {
    ensure_debian_packages(DEBIAN_PACKAGES)?;
    ensure_rustup_components(RUSTUP_COMPONENTS)
}

/// [`ensure_all`], and what the tests need besides.
pub fn ensure_for_tests() -> Result<()> {
    ensure_all()?;
    ensure_debian_packages(TEST_PACKAGES)
}

/// Makes sure each listed package's command is present, installing the missing packages with
/// `apt-get install -y` as root (`apt-get update` first only if the install fails).
pub fn ensure_debian_packages(packages: &[(&str, &str)]) -> Result<()> {
    let missing = missing_packages(packages);
    if missing.is_empty() {
        println!(
            "prerequisites: Debian packages present ({})",
            packages.len()
        );
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root()? {
        return Err(Error::Prerequisite(format!(
            "Debian packages not installed: {list}\nInstall them with:\n    sudo apt-get install -y {list}"
        )));
    }
    let install = Step::new("install Debian packages", "apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y"])
        .args(missing.iter().copied());
    if let Err(first) = install.run() {
        println!("apt-get install failed ({first}); updating the package lists and retrying");
        Step::new("update package lists", "apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .arg("update")
            .run()?;
        install.run()?;
    }
    let still_missing = missing_packages(packages);
    if still_missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Prerequisite(format!(
            "apt-get reported success but these packages' commands are still missing: {}",
            still_missing.join(" ")
        )))
    }
}

/// The packages whose command is not found, each once, in list order.
fn missing_packages<'a>(packages: &[(&'a str, &str)]) -> Vec<&'a str> {
    let mut missing: Vec<&str> = Vec::new();
    for (package, command) in packages {
        if !process::on_path(command) && !missing.contains(package) {
            missing.push(package);
        }
    }
    missing
}

/// Whether xtask runs as root (effective uid 0), from `/proc/self/status`, else from `id -u`.
pub fn is_root() -> Result<bool> {
    if let Ok(status) = fs::read_to_string("/proc/self/status") {
        let effective_uid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|uids| uids.split_whitespace().nth(1));
        if let Some(uid) = effective_uid {
            return Ok(uid == "0");
        }
    }
    let output = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map_err(|err| {
            Error::Environment(format!("cannot tell whether this is root: `id -u`: {err}"))
        })?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// Makes sure each cargo subcommand answers `--version`, adding missing components with rustup.
pub fn ensure_rustup_components(components: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = components
        .iter()
        .filter(|(_, subcommand)| {
            !Step::new("probe", process::cargo())
                .args([*subcommand, "--version"])
                .succeeds_quietly()
        })
        .map(|(component, _)| *component)
        .collect();
    if missing.is_empty() {
        println!(
            "prerequisites: rustup components present ({})",
            components.len()
        );
        return Ok(());
    }
    if !process::on_path("rustup") {
        return Err(Error::Prerequisite(format!(
            "rust components not installed: {}; install Rust with rustup (https://rustup.rs) \
             and run `rustup component add {}`",
            missing.join(" "),
            missing.join(" ")
        )));
    }
    Step::new("add rustup components", "rustup")
        .args(["component", "add"])
        .args(missing.iter().copied())
        .run()
}

/// Makes sure the cargo tool `binary` (from crate `krate`) can run. When it is not on PATH it is
/// installed with `cargo install --locked` into the tools root, once. Returns the directory to
/// put in front of PATH for steps that run it, or `None` when PATH already has it.
pub fn ensure_cargo_tool(krate: &str, binary: &str) -> Result<Option<PathBuf>> {
    if process::on_path(binary) {
        return Ok(None);
    }
    let root = process::tools_root()?;
    let bin = root.join("bin");
    if !process::is_executable(&bin.join(binary)) {
        Step::new(&format!("install {krate}"), process::cargo())
            .args(["install", krate, "--locked", "--root"])
            .arg(root.to_string_lossy())
            .run()?;
    }
    if process::is_executable(&bin.join(binary)) {
        println!("prerequisites: {binary} from {}", bin.display());
        Ok(Some(bin))
    } else {
        Err(Error::Prerequisite(format!(
            "`cargo install {krate}` finished but {} is not there",
            bin.join(binary).display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_each_package_whose_command_is_missing_once_in_order() {
        let packages = [
            ("no-such-package", "no-such-command-flowlens"),
            ("coreutils", "ls"),
            ("no-such-package", "another-missing-command-flowlens"),
            ("other-package", "/no/such/path/flowlens"),
        ];
        assert_eq!(
            missing_packages(&packages),
            ["no-such-package", "other-package"]
        );
    }
}
