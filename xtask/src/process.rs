//! Running external programs as named, timed steps, and the paths every command shares
//! (repository root, cargo, the shared target directory, the tools directory).
//!
//! A [`Step`] prints its name and command line before it starts and its elapsed time when it
//! ends; a failure becomes [`Error::StepFailed`] naming the step, so the first red line of a CI
//! log says which step broke.

use std::env;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::error::{Error, Result};

/// One external command with a human name, run from a given directory.
#[derive(Debug, Clone)]
pub struct Step {
    /// Short name printed in progress lines and errors (`clippy`, `tests`, …).
    name: String,
    /// Program to run: a name looked up on PATH or a path.
    program: String,
    /// Arguments, in order.
    args: Vec<String>,
    /// Extra environment variables for this step only.
    envs: Vec<(String, OsString)>,
    /// Working directory; the current one when `None`.
    dir: Option<PathBuf>,
}

impl Step {
    /// A step called `name` that runs `program`.
    pub fn new(name: &str, program: impl Into<String>) -> Self {
        Step {
            name: name.to_string(),
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            dir: None,
        }
    }

    /// A step that runs the same cargo that runs xtask, from the repository root.
    pub fn cargo(name: &str) -> Result<Self> {
        Ok(Step::new(name, cargo()).current_dir(repo_root()?))
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for this step.
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.envs.push((key.to_string(), value.into()));
        self
    }

    /// Runs the step from `dir`.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// The command line as a shell user would type it (environment overrides first).
    pub fn command_line(&self) -> String {
        let envs = self
            .envs
            .iter()
            .map(|(key, value)| format!("{key}={}", value.to_string_lossy()));
        // The cargo running xtask is usually a long rustup path; `cargo` reads better and reruns
        // the same toolchain from the repository.
        let program = if self.program == cargo() {
            "cargo".to_string()
        } else {
            self.program.clone()
        };
        let words = std::iter::once(program).chain(self.args.iter().cloned());
        envs.chain(words).collect::<Vec<_>>().join(" ")
    }

    /// The `std` command this step describes.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        for (key, value) in &self.envs {
            command.env(key, value);
        }
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        command
    }

    /// Runs the step with inherited stdio, printing its start and elapsed time.
    pub fn run(&self) -> Result<()> {
        println!("==> {}: {}", self.name, self.command_line());
        let started = Instant::now();
        let status = self.command().status().map_err(|source| Error::Spawn {
            step: self.name.clone(),
            program: self.program.clone(),
            source,
        })?;
        let seconds = started.elapsed().as_secs_f64();
        if status.success() {
            println!("<== {}: ok in {seconds:.1} s", self.name);
            Ok(())
        } else {
            Err(Error::StepFailed {
                step: self.name.clone(),
                command: self.command_line(),
                status,
                seconds,
            })
        }
    }

    /// Runs the step silently and tells whether it started and exited successfully (probes).
    pub fn succeeds_quietly(&self) -> bool {
        self.command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }
}

/// The cargo running xtask (cargo sets `CARGO` for `cargo run`), else `cargo` from PATH.
pub fn cargo() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// The repository root: the parent of this crate's directory.
///
/// Read at run time (`cargo run` sets `CARGO_MANIFEST_DIR`), not baked in at compile time: every
/// checkout shares one target directory, so a cached xtask binary may have been built from a clone
/// that no longer exists.
pub fn repo_root() -> Result<PathBuf> {
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .filter(|root| root.join("Cargo.toml").is_file())
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            Error::Environment(format!(
                "cannot find the repository root above {}",
                manifest_dir.display()
            ))
        })
}

/// The user's home directory, from `HOME`.
pub fn home() -> Result<PathBuf> {
    env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| Error::Environment("HOME is not set".to_string()))
}

/// Where xtask installs cargo tools it builds itself (`cargo install --root`), outside the clone
/// so that they survive `git clean` and are shared by all checkouts.
pub fn tools_root() -> Result<PathBuf> {
    Ok(home()?.join(".cache").join("flowlens-tools"))
}

/// Sets `CARGO_TARGET_DIR` to the shared `$HOME/.cache/flowlens-target` unless it is already
/// set, prints it, and returns it. Every cargo step inherits it.
pub fn ensure_target_dir() -> Result<PathBuf> {
    let dir = match env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let dir = home()?.join(".cache").join("flowlens-target");
            // xtask is single-threaded, so changing its own environment is sound.
            env::set_var("CARGO_TARGET_DIR", &dir);
            dir
        }
    };
    println!("CARGO_TARGET_DIR={}", dir.display());
    Ok(dir)
}

/// Builds the `flowlens` binary (in release when `release`) into `target_dir` and returns its
/// path, checked to be there.
pub fn build_flowlens(target_dir: &Path, release: bool) -> Result<PathBuf> {
    let (name, profile) = if release {
        ("build flowlens (release)", "release")
    } else {
        ("build flowlens", "debug")
    };
    Step::cargo(name)?
        .args([
            "build",
            "--locked",
            "--package",
            "flowlens",
            "--bin",
            "flowlens",
        ])
        .args(release.then_some("--release"))
        .run()?;
    let binary = target_dir.join(profile).join("flowlens");
    if !is_executable(&binary) {
        return Err(Error::Environment(format!(
            "the {profile} build succeeded but {} is missing",
            binary.display()
        )));
    }
    Ok(binary)
}

/// Whether `command` can be run: a path to an executable file, or a name found on PATH.
pub fn on_path(command: &str) -> bool {
    if command.contains('/') {
        return is_executable(Path::new(command));
    }
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| is_executable(&dir.join(command))))
}

/// Whether `path` is a regular file with an execute bit set.
pub fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The current PATH with `dir` in front, for steps that need a freshly installed tool.
pub fn path_with(dir: &Path) -> Result<OsString> {
    let current = env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(dir.to_path_buf()).chain(env::split_paths(&current));
    env::join_paths(dirs)
        .map_err(|err| Error::Environment(format!("cannot add {} to PATH: {err}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_shows_environment_overrides_then_program_and_arguments() {
        let step = Step::new("fuzz", "cargo")
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "fuzz_ipfix"]);
        assert_eq!(
            step.command_line(),
            "RUSTC_BOOTSTRAP=1 cargo fuzz run fuzz_ipfix"
        );
    }

    #[test]
    fn a_failed_step_names_itself_and_passes_the_exit_status_through() {
        let err = Step::new("always fails", "sh")
            .args(["-c", "exit 7"])
            .run()
            .expect_err("sh -c 'exit 7' fails");
        assert_eq!(err.exit_code(), 7);
        assert!(err.to_string().contains("step `always fails` FAILED"));
    }

    #[test]
    fn a_missing_program_is_a_spawn_error_naming_the_step() {
        let err = Step::new("ghost", "/no/such/program/flowlens")
            .run()
            .expect_err("the program does not exist");
        assert!(matches!(err, Error::Spawn { .. }));
        assert_eq!(err.exit_code(), 1);
    }
}
