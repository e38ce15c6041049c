//! `choose`: asks the operator to pick one of a list; without a terminal takes the default.

use flow_engine::evaluate::display_value;
use flow_engine::prelude::*;
use serde_json::Value;

pub struct Choose;

/// An option: a plain value, or a label shown for a value.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ChoiceOption {
    Labelled(LabelledOption),
    Plain(Scalar),
}

/// `{ label: "daily/2026-11-22 (3.1 GB)", value: daily/2026-11-22.rdb }`
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelledOption {
    /// What the operator sees.
    pub label: String,
    /// What `steps.<id>.value` becomes.
    pub value: Value,
}

impl ChoiceOption {
    fn value(&self) -> &Value {
        match self {
            ChoiceOption::Labelled(option) => &option.value,
            ChoiceOption::Plain(Scalar(value)) => value,
        }
    }

    fn label(&self) -> String {
        match self {
            ChoiceOption::Labelled(option) => option.label.clone(),
            ChoiceOption::Plain(Scalar(value)) => display_value(value),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChooseParams {
    /// The question.
    pub prompt: String,
    /// What to choose from: strings, or `{ label, value }`.
    pub options: Vec<ChoiceOption>,
    /// The value (or label) taken without a terminal, and preselected with one.
    pub default: Option<Value>,
    /// `false`: take `default` without asking, also on a terminal (e.g. `ask: "{{ params.snapshot
    /// is none }}"`: a param given on the command line answers the question). Default true.
    #[serde(default = "asks")]
    pub ask: bool,
}

fn asks() -> bool {
    true
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ChooseOutputs {
    /// The chosen option's value.
    pub value: Value,
    /// Its position in `options`, from 0.
    pub index: usize,
}

impl ChooseParams {
    fn default_index(&self) -> Result<Option<usize>, String> {
        let Some(default) = self.default.as_ref().filter(|d| !d.is_null()) else {
            return Ok(None);
        };
        self.options
            .iter()
            .position(|o| o.value() == default || Value::String(o.label()) == *default)
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "the default `{}` is not one of the {} options",
                    display_value(default),
                    self.options.len()
                )
            })
    }
}

impl StepType for Choose {
    const NAME: &'static str = "choose";
    const SUMMARY: &'static str =
        "Ask the operator to pick one option; without a terminal the default is taken";
    const EFFECT: Effect = Effect::Interactive;
    const EXAMPLE: &'static str = r#"pick:
  type: choose
  with:
    prompt: Which backup?
    options: "{{ steps.backups.objects | map(attribute='key') | list }}"
    default: "{{ params.snapshot }}""#;
    type Params = ChooseParams;
    type Outputs = ChooseOutputs;

    async fn describe(&self, params: &ChooseParams, _: &PlanContext) -> Description {
        let default = match params.default_index() {
            Ok(Some(i)) => format!(" (default: {})", params.options[i].label()),
            Ok(None) => String::new(),
            Err(e) => format!(" ({e})"),
        };
        if !params.ask
            && let Ok(Some(i)) = params.default_index()
        {
            return Description::new(
                Action::Read,
                format!(
                    "choose: {} → {} (given, not asked)",
                    params.prompt,
                    params.options[i].label()
                ),
            );
        }
        let mut d = Description::new(Action::Ask, format!("choose: {}{default}", params.prompt));
        for option in params.options.iter().take(10) {
            d = d.detail(format!("- {}", option.label()));
        }
        if params.options.len() > 10 {
            d = d.detail(format!("… and {} more", params.options.len() - 10));
        }
        d
    }

    /// Given its answer (`ask: false` with a `default`), it asks nobody: a read, so the plan
    /// takes the answer too and what follows shows the chosen value, not "known after apply".
    async fn effect_for(&self, params: &ChooseParams, _: &PlanContext) -> Option<Effect> {
        (!params.ask && matches!(params.default_index(), Ok(Some(_)))).then_some(Effect::Read)
    }

    async fn apply(
        &self,
        params: ChooseParams,
        ctx: &StepContext,
    ) -> Result<ChooseOutputs, StepError> {
        if params.options.is_empty() {
            return Err(StepError::failed(format!(
                "no options to choose from for \"{}\"",
                params.prompt
            )));
        }
        let default = params.default_index().map_err(StepError::Failed)?;
        let labels: Vec<String> = params.options.iter().map(ChoiceOption::label).collect();
        let index = match default {
            Some(index) if !params.ask => index,
            None if !params.ask => {
                return Err(StepError::failed(format!(
                    "`ask: false` needs a `default` to take for \"{}\"",
                    params.prompt
                )));
            }
            _ => ctx.choose(&params.prompt, &labels, default).await?,
        };
        let value = params
            .options
            .get(index)
            .map(|o| o.value().clone())
            .ok_or_else(|| StepError::failed("no option chosen"))?;
        Ok(ChooseOutputs { value, index })
    }
}
