//! Asking the operator: a trait so the engine can be driven without a terminal, and the
//! terminal implementation (dialoguer).

use std::io;

pub trait Prompter: Send + Sync {
    /// Whether a person can answer (stdin and stderr are a terminal).
    fn is_interactive(&self) -> bool;
    fn confirm(&self, message: &str, table: Option<&str>) -> io::Result<bool>;
    fn choose(&self, prompt: &str, options: &[String], default: Option<usize>)
    -> io::Result<usize>;
    /// A line of text (`secret`: not echoed), asked again until `check` passes; Enter on an
    /// empty line gives `""` (the caller's default).
    fn text(
        &self,
        _prompt: &str,
        _default: Option<&str>,
        _secret: bool,
        _check: &dyn Fn(&str) -> Result<(), String>,
    ) -> io::Result<String> {
        Err(io::Error::other("no terminal"))
    }
}

/// Asks for `ask: true` params on the terminal, when there is one.
pub struct ParamPrompter(pub Box<dyn Prompter>);

impl crate::param::ParamAsker for ParamPrompter {
    fn ask(
        &self,
        spec: &crate::param::ParamSpec,
        check: &dyn Fn(&str) -> Result<(), String>,
    ) -> Option<io::Result<String>> {
        if !self.0.is_interactive() {
            return None;
        }
        let mut prompt = match &spec.description {
            Some(description) => format!("{} ({description})", spec.name),
            None => spec.name.clone(),
        };
        if let Some(var) = &spec.env {
            prompt.push_str(&format!(" [or set {var}]"));
        }
        // A secret's default is never shown.
        let default = spec
            .default
            .as_ref()
            .filter(|_| !spec.secret)
            .map(crate::evaluate::display_value);
        Some(self.0.text(&prompt, default.as_deref(), spec.secret, check))
    }
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

    fn text(
        &self,
        prompt: &str,
        default: Option<&str>,
        secret: bool,
        check: &dyn Fn(&str) -> Result<(), String>,
    ) -> io::Result<String> {
        let prompt = crate::printable::line(prompt).into_owned();
        if secret {
            return dialoguer::Password::new()
                .with_prompt(prompt)
                .allow_empty_password(true)
                .validate_with(|text: &String| check(text))
                .interact()
                .map_err(to_io);
        }
        let prompt = match default {
            Some(default) => format!("{prompt} [Enter: {}]", crate::printable::line(default)),
            None => prompt,
        };
        let input = dialoguer::Input::<String>::new()
            .with_prompt(prompt)
            .allow_empty(true)
            .validate_with(|text: &String| check(text));
        input.interact_text().map_err(to_io)
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
