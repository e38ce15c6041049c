//! What a command step runs — `exec` here, `ssh.exec` on a host: an argv that no shell
//! re-interprets, or an explicit `shell:` script. Exactly one of the two.

use flow_engine::prelude::*;
use flow_engine::template_env::shell_quote;

pub enum Program {
    Argv(Vec<String>),
    Shell(String),
}

impl Program {
    /// The program of a step's `command` / `shell` fields.
    pub fn from_fields(
        command: &Option<Vec<Text>>,
        shell: &Option<String>,
    ) -> Result<Self, String> {
        match (command, shell) {
            (Some(argv), None) if !argv.is_empty() => {
                Ok(Program::Argv(argv.iter().map(|t| t.0.clone()).collect()))
            }
            (Some(_), None) => Err("`command` is empty: give the program and its arguments".into()),
            (None, Some(script)) => Ok(Program::Shell(script.clone())),
            (Some(_), Some(_)) => {
                Err("give either `command` (an argv list) or `shell` (a script), not both".into())
            }
            (None, None) => Err("give `command` (an argv list) or `shell` (a script)".into()),
        }
    }

    /// As a shell would read it: each argument quoted, or the script itself.
    pub fn shown(&self) -> String {
        match self {
            Program::Argv(argv) => argv
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
            Program::Shell(script) => script.clone(),
        }
    }

    /// A command line for a shell that runs exactly this: the quoted argv, or `sh -c SCRIPT`.
    pub fn command_line(&self) -> String {
        match self {
            Program::Argv(_) => self.shown(),
            Program::Shell(script) => format!("sh -c {}", shell_quote(script)),
        }
    }

    /// The argv to spawn directly.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Program::Argv(argv) => argv.clone(),
            Program::Shell(script) => vec!["sh".into(), "-c".into(), script.clone()],
        }
    }
}
