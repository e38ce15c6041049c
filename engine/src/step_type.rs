//! What a step type is: typed params and outputs, an effect, a `describe` for plans that
//! cannot change anything, and `apply`. One Rust type per step type; the schema, `flow steps`
//! and the validation of `with` all come from it.

use crate::context::{PlanContext, StepContext};
pub use crate::kinds::{Action, Description, Effect, StepError};
use crate::permission::{PermissionContext, Permissions};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;

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
    /// The `defaults:` key merged at the top of this type's `with` (`exec`, `file`), for types
    /// where a shared default makes sense. Connection blocks bring their own key (`redis`)
    /// through their schema, wherever they appear.
    const DEFAULTS: Option<&'static str> = None;
    /// Groups of `with` fields of which exactly one must be given (e.g. `command` or `shell`),
    /// checked before anything runs.
    const EXACTLY_ONE_OF: &'static [&'static [&'static str]] = &[];
    /// Whether a read runs during `flow plan` (false for reads that only pass time, like
    /// `sleep`).
    const RUNS_IN_PLAN: bool = true;
    /// A YAML example of the step, shown by `flow steps TYPE` and checked by a test.
    const EXAMPLE: &'static str;
    /// Whether the plan line names exactly what apply acts on (the keys a delete would
    /// remove): applying a saved plan then refuses when that line would read differently now.
    const PLAN_IS_BINDING: bool = false;
    /// Which stream of lines each output is made from, as `(output, stream)`: `exec`'s
    /// `json` and `lines` come from `stdout`. A step whose output is declared secret does not
    /// show those lines; a type that says nothing here shows none of its lines then.
    const STREAMS: &'static [(&'static str, &'static str)] = &[];

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

    /// The cloud permissions (IAM statements) the calls of this step need — those `describe`
    /// makes during plan and those `apply` makes — for `flow policy`. The params come as
    /// `flow plan --offline` renders them (`params.typed()?` gives them typed): a value known
    /// only after apply reads `(known after apply: …)`, which
    /// [`crate::permission::pattern`] turns into `*`. Types that call no cloud API keep the
    /// default: none (and their params are not even read).
    fn permissions(
        &self,
        _params: &RenderedParams<Self::Params>,
        _ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        Ok(Permissions::default())
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything the engine knows about a step type without its Rust types: names, schemas, and
/// the facts its schemas mark (secret, expression and deferred fields, connection blocks).
#[derive(Debug, Clone)]
pub struct StepMeta {
    pub name: &'static str,
    pub summary: &'static str,
    pub effect: Effect,
    pub effect_overridable: bool,
    /// The `defaults:` key merged at the top of `with`, if any (see `StepType::DEFAULTS`).
    pub defaults: Option<&'static str>,
    pub runs_in_plan: bool,
    /// See `StepType::PLAN_IS_BINDING`.
    pub plan_is_binding: bool,
    /// See `StepType::STREAMS`.
    pub streams: &'static [(&'static str, &'static str)],
    pub exactly_one_of: &'static [&'static [&'static str]],
    pub example: &'static str,
    pub params_schema: serde_json::Value,
    pub outputs_schema: serde_json::Value,
    /// Output names, in declaration order.
    pub outputs: Vec<String>,
    /// Outputs marked secret: masked everywhere once a step returns them.
    pub sensitive_outputs: Vec<String>,
    /// Outputs that are secret for some values only, with when (`ssm.get`'s `value`, when the
    /// parameter is a SecureString): masked when the step says so at run time.
    pub maybe_secret_outputs: Vec<(String, String)>,
    /// Top-level `with` fields that end up in a process's command line (`exec`'s `command`
    /// and `shell`), where every local user can read them.
    pub argv_fields: Vec<String>,
    /// `with` fields (at any depth) marked secret, like a Redis block's `password`.
    pub secret_fields: Vec<String>,
    /// Top-level `with` fields holding bare expressions (like `assert.that`).
    pub expression_fields: Vec<String>,
    /// Top-level `with` fields the step evaluates itself, with the names it provides.
    pub deferred_fields: Vec<(String, Vec<String>)>,
}

impl StepMeta {
    /// The `defaults:` keys this type takes: its own, and those of its connection blocks.
    pub fn defaults_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.defaults.map(str::to_string).into_iter().collect();
        crate::schema::defaults_blocks(&self.params_schema, &mut |key, _, _| {
            keys.push(key.to_string())
        });
        keys.sort();
        keys.dedup();
        keys
    }
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
    /// The permissions for rendered params that may hold unknowns (see
    /// `StepType::permissions`).
    fn permissions_json(
        &self,
        params: &serde_json::Value,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String>;
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
        use crate::schema::{marked_fields, marked_fields_deep};
        use crate::values::{
            ARGV_MARK, DEFERRED_MARK, EXPRESSION_MARK, MAYBE_SECRET_MARK, SECRET_MARK,
        };
        let meta = StepMeta {
            name: T::NAME,
            summary: T::SUMMARY,
            effect: T::EFFECT,
            effect_overridable: T::EFFECT_OVERRIDABLE,
            defaults: T::DEFAULTS,
            runs_in_plan: T::RUNS_IN_PLAN,
            plan_is_binding: T::PLAN_IS_BINDING,
            streams: T::STREAMS,
            exactly_one_of: T::EXACTLY_ONE_OF,
            example: T::EXAMPLE,
            sensitive_outputs: marked_fields(&outputs_schema, SECRET_MARK)
                .into_iter()
                .map(|(name, _)| name)
                .collect(),
            maybe_secret_outputs: marked_fields(&outputs_schema, MAYBE_SECRET_MARK)
                .into_iter()
                .map(|(name, when)| (name, when.as_str().unwrap_or("").to_string()))
                .collect(),
            argv_fields: marked_fields(&params_schema, ARGV_MARK)
                .into_iter()
                .map(|(name, _)| name)
                .collect(),
            secret_fields: marked_fields_deep(&params_schema, SECRET_MARK),
            expression_fields: marked_fields(&params_schema, EXPRESSION_MARK)
                .into_iter()
                .map(|(name, _)| name)
                .collect(),
            deferred_fields: marked_fields(&params_schema, DEFERRED_MARK)
                .into_iter()
                .map(|(name, names)| {
                    let names = names
                        .as_array()
                        .map(|n| {
                            n.iter()
                                .filter_map(|v| v.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default();
                    (name, names)
                })
                .collect(),
            params_schema,
            outputs_schema,
            outputs,
        };
        Self { inner, meta }
    }
}

/// Deserializes rendered params, naming the field that does not fit — in the user's terms
/// where serde has none ("expected a text, or a list of texts; found a mapping" instead of
/// "did not match any variant of untagged enum").
pub fn params_from_json<P: DeserializeOwned + JsonSchema>(
    value: serde_json::Value,
) -> Result<P, String> {
    let error = match serde_path_to_error::deserialize::<_, P>(&value) {
        Ok(params) => return Ok(params),
        Err(error) => error,
    };
    let mut message = error.inner().to_string();
    // serde's own words ("invalid type: map, expected a sequence", "untagged enum") say what
    // Rust expected; the schema says it as the playbook is written.
    if message.contains("did not match any variant of untagged enum")
        || message.starts_with("invalid type:")
    {
        use crate::expected::Segment;
        use serde_path_to_error::Segment as At;
        let path: Vec<Segment> = error
            .path()
            .iter()
            .filter_map(|segment| match segment {
                At::Map { key } => Some(Segment::Key(key.as_str())),
                At::Seq { index } => Some(Segment::Index(*index)),
                _ => None,
            })
            .collect();
        let schema = crate::schema::schema_of::<P>();
        if let Some(explained) = crate::expected::explain(&schema, &value, &path) {
            message = explained;
        }
    }
    Err(match error.path().to_string().as_str() {
        "." => format!("invalid `with`: {message}"),
        path => format!("invalid `with.{path}`: {message}"),
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

    fn permissions_json(
        &self,
        params: &serde_json::Value,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let rendered = RenderedParams {
            value: params,
            schema: &self.meta.params_schema,
            left_out: std::sync::Mutex::new(Vec::new()),
            typed: std::marker::PhantomData,
        };
        let mut permissions = self.inner.permissions(&rendered, ctx)?;
        for field in rendered
            .left_out
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
        {
            permissions.notes.push(format!(
                "`with.{field}` is known only after apply: these permissions are those of the step without it"
            ));
        }
        Ok(permissions)
    }
}

/// A step's params as `flow policy` renders them, read typed on demand.
pub struct RenderedParams<'a, P> {
    value: &'a serde_json::Value,
    schema: &'a serde_json::Value,
    /// Fields left out to read the rest (see `typed`).
    left_out: std::sync::Mutex<Vec<String>>,
    typed: std::marker::PhantomData<fn() -> P>,
}

impl<P: DeserializeOwned + JsonSchema> RenderedParams<'_, P> {
    /// The params typed, unknowns as their `(known after apply: …)` text. A whole value known
    /// only after apply where the type wants a number, a list or a map (`count: "{{
    /// steps.x.n }}"`) does not fit: it is left out — all such fields, or one at a time —
    /// and the permissions are those of the step without it (a note says so).
    pub fn typed(&self) -> Result<P, String> {
        let parse = |value: &serde_json::Value| {
            let value = crate::evaluate::unknowns_as_text(value);
            let value = crate::schema::coerce(value, self.schema);
            params_from_json::<P>(value)
        };
        let error = match parse(self.value) {
            Ok(typed) => return Ok(typed),
            Err(error) => error,
        };
        let Some(map) = self.value.as_object() else {
            return Err(error);
        };
        let unknown: Vec<&String> = map
            .iter()
            .filter(|(_, v)| v.get(crate::evaluate::UNKNOWN_KEY).is_some())
            .map(|(k, _)| k)
            .collect();
        let without = |left_out: &[&String]| {
            let mut map = map.clone();
            map.retain(|k, _| !left_out.contains(&k));
            serde_json::Value::Object(map)
        };
        let mut tries = vec![unknown.clone()];
        tries.extend(unknown.iter().map(|k| vec![*k]));
        for left_out in tries.iter().filter(|t| !t.is_empty()) {
            if let Ok(typed) = parse(&without(left_out)) {
                self.left_out
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(left_out.iter().map(|k| k.to_string()));
                return Ok(typed);
            }
        }
        Err(error)
    }
}
