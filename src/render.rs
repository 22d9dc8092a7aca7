//! Renders each host's files from the cluster plan with minijinja templates:
//! today `keepalived.conf` (templates/keepalived.conf.j2, embedded as the
//! default). A user's own templates come from `--templates DIR` or the
//! host's `hactl_templates_dir`; a file missing there falls back to the
//! built-in one. Output is a pure function of the plan: the same inventory
//! gives byte-identical files.
//!
//! The VRRP password appears only in [`Secrets::Reveal`] renders, which are
//! written to the host's file; anything printed gets `<redacted>`.

use std::path::{Path, PathBuf};

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::plan::secret::REDACTED;
use crate::plan::{CheckPlan, ClusterPlan, HostPlan, PairPlan, State, Vip, format_centis};

/// The built-in templates, by file name.
pub const BUILTIN: &[(&str, &str)] = &[(
    "keepalived.conf.j2",
    include_str!("../templates/keepalived.conf.j2"),
)];

/// Whether the real secret goes into the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    Redact,
    Reveal,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("host `{0}` is not in any hactl pair")]
    UnknownHost(String),
    #[error("cannot read template {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("template {name}")]
    Template {
        name: String,
        #[source]
        source: minijinja::Error,
    },
}

/// One rendered file: where it goes on the host, and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// File name (the deploy step decides the directory).
    pub name: String,
    pub content: String,
}

/// The keepalived.conf of `host`; `templates` overrides the host's
/// `hactl_templates_dir`.
pub fn render_host(
    plan: &ClusterPlan,
    host: &str,
    templates: Option<&Path>,
    secrets: Secrets,
) -> Result<Vec<RenderedFile>, RenderError> {
    let pair = plan
        .pair_of(host)
        .ok_or_else(|| RenderError::UnknownHost(host.to_string()))?;
    let hp = pair
        .host(host)
        .ok_or_else(|| RenderError::UnknownHost(host.to_string()))?;
    let dir = templates
        .map(Path::to_path_buf)
        .or_else(|| hp.templates_dir.clone());
    let env = environment(dir.as_deref())?;
    let ctx = context(pair, hp, secrets);
    let mut out = Vec::new();
    for (file, _) in BUILTIN {
        let tmpl = env
            .get_template(file)
            .map_err(|source| RenderError::Template {
                name: file.to_string(),
                source,
            })?;
        let content = tmpl
            .render(Serde(&ctx))
            .map_err(|source| RenderError::Template {
                name: file.to_string(),
                source,
            })?;
        out.push(RenderedFile {
            name: file.trim_end_matches(".j2").to_string(),
            content,
        });
    }
    Ok(out)
}

fn environment(dir: Option<&Path>) -> Result<Environment<'static>, RenderError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .map_err(|source| RenderError::Template {
            name: "syntax".into(),
            source,
        })?;
    env.set_syntax(syntax);
    for (name, builtin) in BUILTIN {
        let source = match dir.map(|d| d.join(name)) {
            Some(path) if path.is_file() => std::fs::read_to_string(&path)
                .map_err(|source| RenderError::Read { path, source })?,
            _ => builtin.to_string(),
        };
        env.add_template_owned(name.to_string(), source)
            .map_err(|source| RenderError::Template {
                name: name.to_string(),
                source,
            })?;
    }
    Ok(env)
}

// ===== template context =====

#[derive(Serialize)]
struct Context<'a> {
    host: &'a HostPlan,
    pair: PairView<'a>,
    checks: &'a [CheckPlan],
    instances: Vec<InstanceView<'a>>,
    auth_pass: Option<&'a str>,
}

#[derive(Serialize)]
struct PairView<'a> {
    name: &'a str,
    mcast_group: String,
    vrrp_version: u8,
}

#[derive(Serialize)]
struct InstanceView<'a> {
    name: &'a str,
    state: String,
    priority: u8,
    vrid: u8,
    advert_int: String,
    preempt: bool,
    vips: &'a [Vip],
    track: &'a [String],
}

fn context<'a>(pair: &'a PairPlan, host: &'a HostPlan, secrets: Secrets) -> Context<'a> {
    let instances = pair
        .instances
        .iter()
        .filter_map(|i| {
            let role = i.role(&host.name)?;
            // keepalived: with nopreempt every instance must start as BACKUP;
            // the priorities still pick the master.
            let state = if i.preempt { role.state } else { State::Backup };
            Some(InstanceView {
                name: &i.name,
                state: state.to_string(),
                priority: role.priority,
                vrid: i.vrid,
                advert_int: format_centis(i.advert_int),
                preempt: i.preempt,
                vips: &i.vips,
                track: &i.track,
            })
        })
        .collect();
    Context {
        host,
        pair: PairView {
            name: &pair.name,
            mcast_group: pair.mcast_group.to_string(),
            vrrp_version: pair.vrrp_version,
        },
        checks: &pair.checks,
        instances,
        auth_pass: pair.auth_pass.as_ref().map(|s| match secrets {
            Secrets::Reveal => s.expose(),
            Secrets::Redact => REDACTED,
        }),
    }
}
