//! Shared helpers for the integration tests.
//!
//! Each test file that needs them says `mod support;`. Not every test file
//! uses every helper, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod check;
pub mod egress;
pub mod lab;
pub mod sntp;
pub mod talk;
pub mod wire;

/// What a command did, kept for assertion messages.
pub struct CommandOutput {
    pub cmd: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    pub fn of(cmd: String, out: &std::process::Output) -> CommandOutput {
        CommandOutput {
            cmd,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The command, its exit code and its output, for a failing assertion.
    pub fn context(&self) -> String {
        format!(
            "`{}` exited {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd,
            self.code,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}
