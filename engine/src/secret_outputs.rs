//! Outputs a playbook declares secret on a step — `secret: true` (all of them) or
//! `secret_outputs: [stdout]` — and what that hides from the moment the step starts: the
//! lines of the streams those outputs are made from (a command's stdout), which no view,
//! journal or summary shows; then the values themselves, masked once the step returns them.

use crate::context::PROGRESS_STREAM;
use crate::secrets::Masker;
use crate::step_type::StepMeta;
use serde_json::Value;

/// The outputs of one step that the playbook declared secret.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum SecretOutputs {
    #[default]
    None,
    /// `secret: true`: every output.
    All,
    /// `secret_outputs: [...]`: these.
    Named(Vec<String>),
}

impl SecretOutputs {
    pub fn is_none(&self) -> bool {
        match self {
            SecretOutputs::None => true,
            SecretOutputs::All => false,
            SecretOutputs::Named(names) => names.is_empty(),
        }
    }

    /// Whether the output `name` is declared secret.
    pub fn covers(&self, name: &str) -> bool {
        match self {
            SecretOutputs::None => false,
            SecretOutputs::All => true,
            SecretOutputs::Named(names) => names.iter().any(|n| n == name),
        }
    }

    /// Registers the declared outputs among `outputs` (a step's, or its `undo`'s) as secrets.
    /// With `secret: true`, numbers and booleans stay readable (an `exit_code` of 0 masked
    /// would hide every 0 flow prints); an output named in `secret_outputs` is a secret
    /// whatever its type.
    pub fn learn(&self, outputs: &Value, masker: &Masker) {
        let Value::Object(map) = outputs else { return };
        for (name, value) in map {
            match self {
                SecretOutputs::All if value.is_number() || value.is_boolean() => {}
                _ if self.covers(name) => masker.add(value),
                _ => {}
            }
        }
    }

    /// The lines of the step that are not shown, when any: every stream but progress for
    /// `secret: true`; for named outputs, the streams they are made from (`json` and `lines`
    /// from `stdout`) — or, for a type that does not say, every line (its tables show what it
    /// found).
    pub fn hidden_lines(&self, meta: &StepMeta) -> Option<HiddenLines> {
        match self {
            SecretOutputs::None => None,
            SecretOutputs::All => Some(HiddenLines::All),
            SecretOutputs::Named(names) if names.is_empty() => None,
            SecretOutputs::Named(_) if meta.streams.is_empty() => Some(HiddenLines::All),
            SecretOutputs::Named(names) => {
                let mut streams: Vec<String> = meta
                    .streams
                    .iter()
                    .filter(|(output, _)| names.iter().any(|n| n == output))
                    .map(|(_, stream)| stream.to_string())
                    .collect();
                streams.sort();
                streams.dedup();
                (!streams.is_empty()).then_some(HiddenLines::Streams(streams))
            }
        }
    }
}

/// Which lines of a step are not shown: they make up a secret output.
#[derive(Debug, Clone, PartialEq)]
pub enum HiddenLines {
    /// Every line but progress.
    All,
    Streams(Vec<String>),
}

impl HiddenLines {
    pub fn hides(&self, stream: &str) -> bool {
        match self {
            HiddenLines::All => stream != PROGRESS_STREAM,
            HiddenLines::Streams(streams) => streams.iter().any(|s| s == stream),
        }
    }
}

/// What a view shows in place of the hidden lines of a stream, once.
pub fn hidden_note(stream: &str) -> String {
    format!("[{stream} not shown: the step's output is secret]")
}
