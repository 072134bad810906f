//! The one error type of xtask: every variant says which step or prerequisite failed and how.

use std::fmt;
use std::io;
use std::process::ExitStatus;

/// Shorthand for results whose error is an xtask [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong while running a developer command.
#[derive(Debug)]
pub enum Error {
    /// The command line was wrong; the message says how. Exits with status 2.
    Usage(String),
    /// A program could not be started at all (not installed, not executable, …).
    Spawn {
        /// The step that tried to start it.
        step: String,
        /// The program's name or path.
        program: String,
        /// Why the operating system refused.
        source: io::Error,
    },
    /// A step ran and exited unsuccessfully.
    StepFailed {
        /// The step's name, as printed when it started.
        step: String,
        /// The full command line, so it can be rerun by hand.
        command: String,
        /// How the process ended.
        status: ExitStatus,
        /// Seconds the step ran before failing.
        seconds: f64,
    },
    /// Something the command needs is missing and xtask cannot (or may not) install it.
    Prerequisite(String),
    /// Reading or inspecting a file or the environment failed.
    Environment(String),
}

impl Error {
    /// The process exit status xtask ends with: 2 for usage errors, the failed step's own status
    /// when it has one (so `cargo xtask run` passes the node's status through), otherwise 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::StepFailed { status, .. } => status
                .code()
                .and_then(|code| u8::try_from(code).ok())
                .filter(|code| *code != 0)
                .unwrap_or(1),
            Error::Spawn { .. } | Error::Prerequisite(_) | Error::Environment(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) => write!(f, "{message}"),
            Error::Spawn {
                step,
                program,
                source,
            } => write!(f, "step `{step}` could not start `{program}`: {source}"),
            Error::StepFailed {
                step,
                command,
                status,
                seconds,
            } => write!(
                f,
                "step `{step}` FAILED after {seconds:.1} s ({status})\n    command: {command}"
            ),
            Error::Prerequisite(message) => write!(f, "missing prerequisite: {message}"),
            Error::Environment(message) => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}
