//! `log`: prints a message and/or a table.

use flow_engine::prelude::*;

pub struct Log;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// Text to print.
    pub message: Option<String>,
    /// A value printed as a table: a list of mappings gets a column per key.
    pub table: Option<serde_json::Value>,
}

impl StepType for Log {
    const NAME: &'static str = "log";
    const SUMMARY: &'static str = "Print a message and/or a table";
    const EFFECT: Effect = Effect::Read;
    const EXAMPLE: &'static str = r#"report:
  type: log
  with:
    message: "Launched {{ steps.launch.instance_id }}"
    table: "{{ steps.compare.rows }}""#;
    type Params = LogParams;
    type Outputs = NoOutputs;

    async fn describe(&self, params: &LogParams, _: &PlanContext) -> Description {
        let text = params.message.clone().unwrap_or_else(|| "(table)".into());
        Description::new(
            Action::Read,
            format!("log: {}", text.lines().next().unwrap_or("")),
        )
    }

    async fn apply(&self, params: LogParams, ctx: &StepContext) -> Result<NoOutputs, StepError> {
        if let Some(message) = &params.message {
            for line in message.lines() {
                ctx.output("log", line);
            }
        }
        if let Some(table) = &params.table {
            for line in flow_engine::table::render_value(table).lines() {
                ctx.output("log", line);
            }
        }
        Ok(NoOutputs {})
    }
}
