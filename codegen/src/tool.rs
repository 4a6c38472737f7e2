//! Running an external tool and keeping what it printed.

use std::path::Path;
use std::process::Command;

use crate::CodegenError;

/// What a finished tool run left: its exit code (None when a signal ended it) and its output.
pub(crate) struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// stdout then stderr, for error messages.
    pub fn output(&self) -> String {
        let mut s = self.stdout.clone();
        if !self.stderr.is_empty() {
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(&self.stderr);
        }
        s
    }
}

/// Runs `program args…` in `cwd`; a missing program is `ToolMissing` with the install hint.
pub(crate) fn run(
    program: &str,
    args: &[String],
    cwd: &Path,
    hint: &str,
) -> Result<Ran, CodegenError> {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CodegenError::ToolMissing {
                    tool: program.into(),
                    hint: hint.into(),
                }
            } else {
                CodegenError::Io {
                    path: program.into(),
                    message: e.to_string(),
                }
            }
        })?;
    Ok(Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The last `n` lines of a long tool output.
pub(crate) fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
