//! What a step type is: typed params and outputs, an effect, a `describe` for plans that
//! cannot change anything, and `apply`. One Rust type per step type; the schema, `flow steps`
//! and the validation of `with` all come from it.

use crate::context::{PlanContext, StepContext};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;

/// What a step does to the world, which decides what `flow plan` does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// No side effects: runs during plan.
    Read,
    /// Changes the world: plan only describes it.
    Write,
    /// Asks the operator: plan shows the question.
    Interactive,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Read => "read",
            Effect::Write => "write",
            Effect::Interactive => "interactive",
        }
    }
}

/// What a plan line shows about a step: `=` read, `+` create, `~` change, `-` delete or
/// stop, `?` asks, `…` skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Read,
    Create,
    Change,
    Delete,
    Ask,
    Skip,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Read => "=",
            Action::Create => "+",
            Action::Change => "~",
            Action::Delete => "-",
            Action::Ask => "?",
            Action::Skip => "…",
        }
    }
}

/// A step's plan line: its action, a one-line summary, and detail lines under it.
#[derive(Debug, Clone, Serialize)]
pub struct Description {
    pub action: Action,
    pub summary: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl Description {
    pub fn new(action: Action, summary: impl Into<String>) -> Self {
        Self {
            action,
            summary: summary.into(),
            details: Vec::new(),
        }
    }

    pub fn detail(mut self, line: impl Into<String>) -> Self {
        self.details.push(line.into());
        self
    }
}

/// Why a step did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// The step ran and failed; the message says why.
    Failed(String),
    /// The operator said no.
    Declined(String),
    /// An approval or answer is needed and there is no one to give it (exit 3).
    NeedsApproval(String),
}

impl StepError {
    pub fn failed(message: impl Into<String>) -> Self {
        StepError::Failed(message.into())
    }

    pub fn message(&self) -> &str {
        match self {
            StepError::Failed(m) | StepError::Declined(m) | StepError::NeedsApproval(m) => m,
        }
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// One step type. Implement this, then add one line to the registry.
pub trait StepType: Send + Sync + 'static {
    /// The `type:` users write, e.g. `file.write`.
    const NAME: &'static str;
    /// One line for `flow steps`.
    const SUMMARY: &'static str;
    /// The declared effect.
    const EFFECT: Effect;
    /// Whether the playbook may override the effect with `effect: read|write` (generic types).
    const EFFECT_OVERRIDABLE: bool = false;
    /// Which `defaults:` block is merged under this type's `with` (default: the part of the
    /// name before the dot, or the whole name).
    const FAMILY: Option<&'static str> = None;
    /// Outputs whose values are secrets: masked everywhere flow writes.
    const SENSITIVE_OUTPUTS: &'static [&'static str] = &[];
    /// Groups of `with` fields of which exactly one must be given (e.g. `command` or `shell`),
    /// checked before anything runs.
    const EXACTLY_ONE_OF: &'static [&'static [&'static str]] = &[];
    /// Whether a read runs during `flow plan` (false for reads that only pass time, like
    /// `sleep`).
    const RUNS_IN_PLAN: bool = true;
    /// `with` fields whose strings are bare expressions (like `assert.that`): the step gets
    /// each as `values::Evaluated`, the text and its value.
    const EXPRESSION_FIELDS: &'static [&'static str] = &[];
    /// `with` fields holding an expression the step evaluates itself, many times (like
    /// `redis.delete.where` per key), with the extra names it provides. The engine checks their
    /// syntax and references and hands the text over unrendered.
    const DEFERRED_FIELDS: &'static [(&'static str, &'static [&'static str])] = &[];
    /// Names of `with` fields (at any depth) whose values are secrets, like `password`.
    const SECRET_FIELDS: &'static [&'static str] = &[];
    /// A YAML example of the step, shown by `flow steps TYPE` and checked by a test.
    const EXAMPLE: &'static str;

    type Params: DeserializeOwned + JsonSchema + Send + 'static;
    type Outputs: Serialize + JsonSchema + Send + 'static;

    /// Describes what `apply` would do, for the plan. It may look (read-only) at the world —
    /// count the keys a delete would match — but must not change anything.
    fn describe(
        &self,
        params: &Self::Params,
        ctx: &PlanContext,
    ) -> impl Future<Output = Description> + Send;

    /// The effect for these params, when it depends on them (a Redis command is a read or a
    /// write depending on the command); `None` keeps the declared effect.
    fn effect_for(
        &self,
        _params: &Self::Params,
        _ctx: &PlanContext,
    ) -> impl Future<Output = Option<Effect>> + Send {
        async { None }
    }

    /// Does the work.
    fn apply(
        &self,
        params: Self::Params,
        ctx: &StepContext,
    ) -> impl Future<Output = Result<Self::Outputs, StepError>> + Send;
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything the engine knows about a step type without its Rust types: names, schemas.
#[derive(Debug, Clone)]
pub struct StepMeta {
    pub name: &'static str,
    pub summary: &'static str,
    pub effect: Effect,
    pub effect_overridable: bool,
    pub family: String,
    pub sensitive_outputs: &'static [&'static str],
    pub expression_fields: &'static [&'static str],
    pub runs_in_plan: bool,
    pub exactly_one_of: &'static [&'static [&'static str]],
    pub deferred_fields: &'static [(&'static str, &'static [&'static str])],
    pub secret_fields: &'static [&'static str],
    pub example: &'static str,
    pub params_schema: serde_json::Value,
    pub outputs_schema: serde_json::Value,
    /// Output names, in declaration order.
    pub outputs: Vec<String>,
}

/// The object-safe face of a step type, with JSON in and out; the engine only sees this.
pub trait DynStepType: Send + Sync {
    fn meta(&self) -> &StepMeta;
    fn describe_json<'a>(
        &'a self,
        params: serde_json::Value,
        ctx: &'a PlanContext,
    ) -> BoxFuture<'a, Result<Description, String>>;
    fn effect_json<'a>(
        &'a self,
        params: serde_json::Value,
        ctx: &'a PlanContext,
    ) -> BoxFuture<'a, Option<Effect>>;
    fn apply_json<'a>(
        &'a self,
        params: serde_json::Value,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>>;
}

pub(crate) struct Erased<T: StepType> {
    pub inner: T,
    pub meta: StepMeta,
}

impl<T: StepType> Erased<T> {
    pub fn new(inner: T) -> Self {
        let params_schema = crate::schema::schema_of::<T::Params>();
        let outputs_schema = crate::schema::schema_of::<T::Outputs>();
        let outputs = outputs_schema
            .get("properties")
            .and_then(|p| p.as_object())
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let family = T::FAMILY
            .map(str::to_string)
            .unwrap_or_else(|| T::NAME.split('.').next().unwrap_or(T::NAME).to_string());
        Self {
            inner,
            meta: StepMeta {
                name: T::NAME,
                summary: T::SUMMARY,
                effect: T::EFFECT,
                effect_overridable: T::EFFECT_OVERRIDABLE,
                family,
                sensitive_outputs: T::SENSITIVE_OUTPUTS,
                expression_fields: T::EXPRESSION_FIELDS,
                runs_in_plan: T::RUNS_IN_PLAN,
                exactly_one_of: T::EXACTLY_ONE_OF,
                deferred_fields: T::DEFERRED_FIELDS,
                secret_fields: T::SECRET_FIELDS,
                example: T::EXAMPLE,
                params_schema,
                outputs_schema,
                outputs,
            },
        }
    }
}

/// Deserializes rendered params, naming the field that does not fit.
pub fn params_from_json<P: DeserializeOwned>(value: serde_json::Value) -> Result<P, String> {
    serde_path_to_error::deserialize(value).map_err(|e| match e.path().to_string().as_str() {
        "." => format!("invalid `with`: {}", e.inner()),
        path => format!("invalid `with.{path}`: {}", e.inner()),
    })
}

impl<T: StepType> DynStepType for Erased<T> {
    fn meta(&self) -> &StepMeta {
        &self.meta
    }

    fn describe_json<'a>(
        &'a self,
        params: serde_json::Value,
        ctx: &'a PlanContext,
    ) -> BoxFuture<'a, Result<Description, String>> {
        Box::pin(async move {
            let params = crate::schema::coerce(params, &self.meta.params_schema);
            let params = params_from_json::<T::Params>(params)?;
            Ok(self.inner.describe(&params, ctx).await)
        })
    }

    fn effect_json<'a>(
        &'a self,
        params: serde_json::Value,
        ctx: &'a PlanContext,
    ) -> BoxFuture<'a, Option<Effect>> {
        Box::pin(async move {
            let params = crate::schema::coerce(params, &self.meta.params_schema);
            let params = params_from_json::<T::Params>(params).ok()?;
            self.inner.effect_for(&params, ctx).await
        })
    }

    fn apply_json<'a>(
        &'a self,
        params: serde_json::Value,
        ctx: &'a StepContext,
    ) -> BoxFuture<'a, Result<serde_json::Value, StepError>> {
        Box::pin(async move {
            let params = crate::schema::coerce(params, &self.meta.params_schema);
            let params = params_from_json::<T::Params>(params).map_err(StepError::Failed)?;
            let outputs = self.inner.apply(params, ctx).await?;
            serde_json::to_value(outputs)
                .map_err(|e| StepError::failed(format!("outputs cannot be recorded: {e}")))
        })
    }
}
