//! Asking the operator: a trait so the engine can be driven without a terminal, and the
//! terminal implementation (dialoguer).

use std::io;

pub trait Prompter: Send + Sync {
    /// Whether a person can answer (stdin and stderr are a terminal).
    fn is_interactive(&self) -> bool;
    fn confirm(&self, message: &str, table: Option<&str>) -> io::Result<bool>;
    fn choose(&self, prompt: &str, options: &[String], default: Option<usize>)
    -> io::Result<usize>;
}

/// Prompts on the terminal through stderr, so stdout stays clean for data.
pub struct TerminalPrompter;

impl TerminalPrompter {
    pub fn detect() -> Box<dyn Prompter> {
        use std::io::IsTerminal;
        if io::stdin().is_terminal() && io::stderr().is_terminal() {
            Box::new(TerminalPrompter)
        } else {
            Box::new(NoTerminal)
        }
    }
}

fn to_io(error: dialoguer::Error) -> io::Error {
    match error {
        dialoguer::Error::IO(e) => e,
    }
}

impl Prompter for TerminalPrompter {
    fn is_interactive(&self) -> bool {
        true
    }

    fn confirm(&self, message: &str, table: Option<&str>) -> io::Result<bool> {
        // What a question shows comes from params and command output: its control
        // characters are shown, not sent to the terminal.
        if let Some(table) = table {
            eprint!("{}", crate::printable::block(table));
        }
        dialoguer::Confirm::new()
            .with_prompt(crate::printable::line(message))
            .default(false)
            .wait_for_newline(true)
            .interact()
            .map_err(to_io)
    }

    fn choose(
        &self,
        prompt: &str,
        options: &[String],
        default: Option<usize>,
    ) -> io::Result<usize> {
        let options: Vec<String> = options
            .iter()
            .map(|o| crate::printable::line(o).into_owned())
            .collect();
        dialoguer::Select::new()
            .with_prompt(crate::printable::line(prompt))
            .items(&options)
            .default(default.unwrap_or(0))
            .interact()
            .map_err(to_io)
    }
}

/// No one to ask: every question needs a flag or a default.
pub struct NoTerminal;

impl Prompter for NoTerminal {
    fn is_interactive(&self) -> bool {
        false
    }

    fn confirm(&self, _: &str, _: Option<&str>) -> io::Result<bool> {
        Err(io::Error::other("no terminal"))
    }

    fn choose(&self, _: &str, _: &[String], _: Option<usize>) -> io::Result<usize> {
        Err(io::Error::other("no terminal"))
    }
}
