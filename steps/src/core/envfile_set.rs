//! `envfile.set`: sets and unsets keys in an env file — local, or on a host with `ssh:` —
//! keeping everything else.

use super::envfile;
use super::safe_file::{self, edit_locked};
use crate::ssh::{Sessions, SshTarget, remote_file};
use flow_engine::prelude::*;
use indexmap::IndexMap;

pub struct EnvfileSet;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvfileSetParams {
    /// The env file (relative to where flow runs).
    pub path: String,
    /// Keys to set: `{ BLOT_REDIS_HOST: "10.0.0.5" }`.
    #[serde(default)]
    pub set: IndexMap<String, Text>,
    /// Keys to remove.
    #[serde(default)]
    pub unset: Vec<String>,
    /// Keep a copy of the old file as `<path>.<timestamp>.bak` when it changes.
    #[serde(default)]
    pub backup: bool,
    /// Create the file when it does not exist (default: it must exist).
    #[serde(default)]
    pub create: bool,
    /// Edit the file on this host instead of here (an SSH block; `defaults.ssh` applies).
    pub ssh: Option<SshTarget>,
    /// With `ssh:`, read and write the file as root through `sudo -n`.
    #[serde(default)]
    pub sudo: bool,
    /// Who reads the file, which decides how a value that needs quotes is written:
    /// `docker` (`docker run --env-file`: as it is, no quotes), `shell` (a shell or docker
    /// compose: double-quoted), or `auto` (the default: `shell` when the file has an
    /// `export` line or a quoted value; otherwise such a value is refused until `format` says).
    #[serde(default)]
    pub format: envfile::Format,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EnvfileSetOutputs {
    /// Whether the file changed.
    pub changed: bool,
    /// Each key's value before (null when it was not set).
    pub previous: IndexMap<String, Option<String>>,
    /// The backup made, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_path: Option<String>,
}

impl EnvfileSetParams {
    /// A key set to a secret held a secret before: its previous value is masked too (a
    /// rotated token must not show up in `previous`, the plan or the journal).
    fn hide_replaced_secrets(&self, edit: &envfile::Edit, masker: &flow_engine::secrets::Masker) {
        for (key, new) in &self.set {
            if masker.mask(&new.0) != new.0
                && let Some(Some(old)) = edit.previous.get(key)
            {
                masker.add(&serde_json::Value::String(old.clone()));
            }
        }
    }

    /// Values of keys named like secrets (`*PASSWORD*`, `*TOKEN*`, `*SECRET*`, `*KEY*`) are
    /// secrets: the old ones in `previous` (and the plan, the journal) are masked.
    fn hide_secret_named_values(edit: &envfile::Edit, masker: &flow_engine::secrets::Masker) {
        for (key, old) in &edit.previous {
            if let Some(old) = old
                && envfile::is_secret_name(key)
            {
                masker.add(&serde_json::Value::String(old.clone()));
            }
        }
    }

    /// The edit of `text`, with the old values it reveals registered as secrets first.
    fn edit(&self, text: &str, masker: &flow_engine::secrets::Masker) -> envfile::Edit {
        let edit = envfile::edit(
            text,
            &self.values(),
            &self.unset,
            self.format.for_text(text),
        );
        self.hide_old_secrets(&edit, masker);
        edit
    }

    /// Why the values cannot be written to a file holding `text`: one needs quotes and who
    /// reads the file is not known (see [`envfile::Format`]).
    fn unwritable(&self, text: &str) -> Option<String> {
        envfile::needs_a_format(
            self.format.for_text(text),
            self.set.iter().map(|(k, v)| (k, &v.0)),
        )
    }

    /// Registers the old values an edit reveals that are secrets (see the two rules above).
    fn hide_old_secrets(&self, edit: &envfile::Edit, masker: &flow_engine::secrets::Masker) {
        self.hide_replaced_secrets(edit, masker);
        Self::hide_secret_named_values(edit, masker);
    }

    /// The plan of an edit of `text`, the file shown as `shown`.
    fn describe_edit(
        &self,
        text: &str,
        shown: &str,
        masker: &flow_engine::secrets::Masker,
    ) -> Description {
        let edit = self.edit(text, masker);
        let summary = if edit.changed() {
            format!("edit {shown}")
        } else {
            format!("edit {shown} (unchanged)")
        };
        let mut d = Description::new(Action::Change, summary);
        d.details = edit.changes;
        if let Some(why) = self.invalid().or_else(|| self.unwritable(text)) {
            d.details.push(format!("will fail: {why}"));
        }
        d
    }

    /// Why these keys and values cannot be written, naming the first bad key.
    fn invalid(&self) -> Option<String> {
        self.set
            .iter()
            .find_map(|(key, value)| envfile::invalid(key, &value.0))
    }

    fn values(&self) -> IndexMap<String, String> {
        self.set
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect()
    }
}

impl StepType for EnvfileSet {
    const NAME: &'static str = "envfile.set";
    const SUMMARY: &'static str =
        "Set or unset keys in an env file, keeping comments, order and other lines";
    const EFFECT: Effect = Effect::Write;
    const DEFAULTS: Option<&'static str> = Some("envfile");
    const EXAMPLE: &'static str = r#"point_app:
  type: envfile.set
  with:
    path: /etc/blot/secrets.env
    set: { BLOT_REDIS_HOST: "{{ steps.launch.private_ip }}" }
    backup: true"#;
    type Params = EnvfileSetParams;
    type Outputs = EnvfileSetOutputs;

    async fn describe(&self, params: &EnvfileSetParams, ctx: &PlanContext) -> Description {
        if let Some(target) = &params.ssh {
            return describe_remote(params, target, ctx).await;
        }
        let path = ctx.resolve_path(&params.path);
        if let Err(e) = safe_file::check_regular(&path) {
            return Description::new(Action::Change, format!("edit {}", params.path))
                .detail(format!("will fail: {e}"));
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(_) if params.create => String::new(),
            Err(e) => {
                return Description::new(Action::Change, format!("edit {}", params.path))
                    .detail(format!("cannot read it now: {e}"));
            }
        };
        params.describe_edit(&text, &params.path, &ctx.emitter.masker)
    }

    async fn apply(
        &self,
        params: EnvfileSetParams,
        ctx: &StepContext,
    ) -> Result<EnvfileSetOutputs, StepError> {
        if let Some(why) = params.invalid() {
            return Err(StepError::failed(format!("{why}; nothing was written")));
        }
        if let Some(target) = &params.ssh {
            return apply_remote(&params, target, ctx).await;
        }
        let path = ctx.resolve_path(&params.path);
        let shown = path.display().to_string();
        let (values, unset) = (params.values(), params.unset.clone());
        let (create, backup, format) = (params.create, params.backup, params.format);
        // Read, edit, back up and replace under the folder's edit lock, so steps and flow
        // processes editing the same file take turns and no key is lost.
        let (edit, backup_path) = edit_locked(&path, move |real| {
            safe_file::check_regular(real).map_err(|e| format!("cannot edit {shown}: {e}"))?;
            let text = match std::fs::read_to_string(real) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => String::new(),
                Err(e) => return Err(format!("cannot read {shown}: {e}")),
            };
            let format = format.for_text(&text);
            if let Some(why) = envfile::needs_a_format(format, values.iter()) {
                return Err(format!("cannot edit {shown}: {why}; nothing was written"));
            }
            let edit = envfile::edit(&text, &values, &unset, format);
            let mut backup_path = None;
            if edit.changed() {
                if backup && !text.is_empty() {
                    let made = safe_file::backup(real, text.as_bytes())
                        .map_err(|e| format!("cannot back up {shown}: {e}"))?;
                    backup_path = Some(made.display().to_string());
                }
                safe_file::replace_file(real, edit.text.as_bytes(), None)
                    .map_err(|e| format!("cannot write {shown}: {e}"))?;
            }
            Ok((edit, backup_path))
        })
        .await
        .map_err(|e| StepError::failed(format!("cannot edit {}: {e}", path.display())))?
        .map_err(StepError::failed)?;
        params.hide_old_secrets(&edit, &ctx.emitter.masker);
        Ok(EnvfileSetOutputs {
            changed: edit.changed(),
            previous: edit.previous,
            backup_path,
        })
    }
}

/// The plan of a remote edit: the host's file read now, the exact line changes.
async fn describe_remote(
    params: &EnvfileSetParams,
    target: &SshTarget,
    ctx: &PlanContext,
) -> Description {
    let shown = format!("{}:{}", target.display(), params.path);
    let headline = Description::new(Action::Change, format!("edit {shown}"));
    if ctx.offline {
        return headline.detail("not read: --offline");
    }
    let read = match ctx.resource::<Sessions>().live(target).await {
        Ok(session) => remote_file::read(&session, &params.path, params.sudo).await,
        Err(e) => Err(e.message().to_string()),
    };
    let text = match read {
        Ok(Some(text)) => text,
        Ok(None) if params.create => String::new(),
        Ok(None) => {
            return headline.detail("will fail: the file does not exist (`create: true` makes it)");
        }
        Err(e) => return headline.detail(format!("cannot read it now: {e}")),
    };
    params.describe_edit(&text, &shown, &ctx.emitter.masker)
}

/// A remote edit: read over the host's connection, edited here, replaced there.
async fn apply_remote(
    params: &EnvfileSetParams,
    target: &SshTarget,
    ctx: &StepContext,
) -> Result<EnvfileSetOutputs, StepError> {
    let shown = format!("{}:{}", target.display(), params.path);
    let session = ctx.resource::<Sessions>().live(target).await?;
    let lock = ctx
        .resource::<remote_file::RemoteEdits>()
        .lock_for(target, &params.path);
    let _turn = lock.lock().await;
    let text = match remote_file::read(&session, &params.path, params.sudo).await {
        Ok(Some(text)) => text,
        Ok(None) if params.create => String::new(),
        Ok(None) => {
            return Err(StepError::failed(format!(
                "cannot edit {shown}: it does not exist (`create: true` makes it)"
            )));
        }
        Err(e) => return Err(StepError::failed(format!("cannot read {shown}: {e}"))),
    };
    if let Some(why) = params.unwritable(&text) {
        return Err(StepError::failed(format!(
            "cannot edit {shown}: {why}; nothing was written"
        )));
    }
    let edit = params.edit(&text, &ctx.emitter.masker);
    let mut backup_path = None;
    if edit.changed() {
        let backup = params.backup && !text.is_empty();
        backup_path = remote_file::replace(
            &session,
            &params.path,
            edit.text.as_bytes(),
            backup,
            params.sudo,
        )
        .await
        .map_err(|e| StepError::failed(format!("cannot write {shown}: {e}")))?;
    }
    Ok(EnvfileSetOutputs {
        changed: edit.changed(),
        previous: edit.previous,
        backup_path,
    })
}
