//! Renders each host's files from the cluster plan: `keepalived.conf`
//! (templates/keepalived.conf.j2, embedded as the default), the systemd
//! unit of the agent (templates/hactl-agent.service.j2, installed where
//! systemd runs) and the check scripts the inventory carries (`content:`).
//! Every file deploy writes comes from here, so `hactl render` shows
//! exactly what a host gets. A user's own templates come from `--templates DIR` or the
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
use crate::plan::{
    Backend, CheckPlan, ClusterPlan, HostPlan, PairPlan, State, Vip, VirtualServerPlan,
    format_centis,
};
use crate::remote_layout as layout;

/// The built-in templates, by file name.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "keepalived.conf.j2",
        include_str!("../templates/keepalived.conf.j2"),
    ),
    (
        "hactl-agent.service.j2",
        include_str!("../templates/hactl-agent.service.j2"),
    ),
];

/// The name of the VRRP config among a host's files.
pub const CONFIG: &str = "keepalived.conf";
/// The name of the agent's systemd unit among a host's files.
pub const UNIT: &str = "hactl-agent.service";

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
    #[error("host `{host}`")]
    Mismatch {
        host: String,
        #[source]
        source: crate::rendered::Mismatch,
    },
    #[error("template {name}")]
    Template {
        name: String,
        #[source]
        source: minijinja::Error,
    },
}

/// When deploy installs a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Install {
    Always,
    /// Only on hosts where systemd is PID 1 (the agent's unit).
    WithSystemd,
}

/// What a file is to deploy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    /// The daemon's configuration: validated on the host before it
    /// replaces the old one; a change means a reload.
    Config,
    /// A check script the configuration runs: installed before the
    /// configuration is validated.
    CheckScript,
    /// The agent's systemd unit.
    Unit,
}

/// One rendered file: where it goes on the host, and its content.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// The file's name (`keepalived.conf`, `hactl-agent.service`, a check
    /// script's file name).
    pub name: String,
    /// Where it goes on the host.
    pub path: String,
    pub mode: u32,
    pub role: FileRole,
    pub install: Install,
    pub content: String,
}

/// Without the content: a revealed config holds the VRRP password (issue 14).
impl std::fmt::Debug for RenderedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderedFile")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("role", &self.role)
            .field("install", &self.install)
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .finish()
    }
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
    let render = |file: &str| -> Result<String, RenderError> {
        let template = format!("{file}.j2");
        env.get_template(&template)
            .and_then(|t| t.render(Serde(&ctx)))
            .map_err(|source| RenderError::Template {
                name: template,
                source,
            })
    };
    let mut out = Vec::new();
    for check in &pair.checks {
        if let Some(content) = &check.content {
            // Written as root: only directly in the checks directory (the
            // plan refuses anything else; this holds for a plan made by
            // other means too).
            let name = check.script.rsplit('/').next().unwrap_or(&check.script);
            let dir = check.script.strip_suffix(name).unwrap_or_default();
            if dir.trim_end_matches('/') != layout::CHECKS_DIR
                || name.is_empty()
                || name.starts_with('.')
                || name.contains(char::is_whitespace)
            {
                return Err(RenderError::Mismatch {
                    host: host.to_string(),
                    source: crate::rendered::Mismatch(vec![format!(
                        "check `{}` would write its script outside {}",
                        check.name,
                        layout::CHECKS_DIR
                    )]),
                });
            }
            out.push(RenderedFile {
                name: name.to_string(),
                path: check.script.clone(),
                mode: 0o755,
                role: FileRole::CheckScript,
                install: Install::Always,
                content: content.clone(),
            });
        }
    }
    if pair.backend == Backend::Agent {
        out.push(RenderedFile {
            name: UNIT.to_string(),
            path: layout::AGENT_UNIT_FILE.to_string(),
            mode: 0o644,
            role: FileRole::Unit,
            install: Install::WithSystemd,
            content: render(UNIT)?,
        });
    }
    let config = render(CONFIG)?;
    // Issue 14: the file must parse to exactly the plan's instances,
    // scripts and addresses before anything shows or uploads it.
    crate::rendered::check(pair, hp, &config, ctx.auth_pass).map_err(|source| {
        RenderError::Mismatch {
            host: host.to_string(),
            source,
        }
    })?;
    out.push(RenderedFile {
        name: CONFIG.to_string(),
        path: layout::config_path(pair.backend).to_string(),
        mode: 0o600,
        role: FileRole::Config,
        install: Install::Always,
        content: config,
    });
    Ok(out)
}

/// The host's `keepalived.conf`, as [`render_host`] renders it.
pub fn render_config(
    plan: &ClusterPlan,
    host: &str,
    templates: Option<&Path>,
    secrets: Secrets,
) -> Result<String, RenderError> {
    Ok(render_host(plan, host, templates, secrets)?
        .into_iter()
        .find(|f| f.role == FileRole::Config)
        .map(|f| f.content)
        .unwrap_or_default())
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
    virtual_servers: &'a [VirtualServerPlan],
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
        virtual_servers: &pair.virtual_servers,
        auth_pass: pair.auth_pass.as_ref().map(|s| match secrets {
            Secrets::Reveal => s.expose(),
            Secrets::Redact => REDACTED,
        }),
    }
}
