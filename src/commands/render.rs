//! `hactl render --host HOST [--file NAME]`: the files a host would get
//! (keepalived.conf, the agent's systemd unit, check scripts), secrets
//! redacted on stdout, each after a `==> PATH <==` line when there are
//! several; with `--out DIR` written in full (mode 0600) under their names.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{Context, Error};
use crate::render::{self, Secrets};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderCommand {
    pub host: String,
    /// Only this file (`keepalived.conf`, `hactl-agent.service`, ...).
    pub file: Option<String>,
    pub out: Option<PathBuf>,
}

impl RenderCommand {
    pub fn execute(&self, ctx: &Context) -> Result<i32, Error> {
        let plan = ctx.plan()?;
        let templates = ctx.settings.templates.as_deref();
        let secrets = if self.out.is_some() {
            Secrets::Reveal
        } else {
            Secrets::Redact
        };
        let mut files = render::render_host(plan, &self.host, templates, secrets)?;
        if let Some(name) = &self.file {
            let names: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
            files.retain(|f| &f.name == name);
            if files.is_empty() {
                return Err(Error::Usage(format!(
                    "{} gets no file {name}; its files: {}",
                    self.host,
                    names.join(", ")
                )));
            }
        }
        if let Some(dir) = &self.out {
            for file in &files {
                write_private(&dir.join(&file.name), &file.content)?;
            }
        } else if ctx.settings.json {
            let files: Vec<serde_json::Value> = files
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "name": f.name,
                        "path": f.path,
                        "mode": format!("{:04o}", f.mode),
                        "install": f.install,
                        "content": f.content,
                    })
                })
                .collect();
            ctx.out
                .json(&serde_json::json!({"host": self.host, "files": files}))?;
        } else if let [file] = files.as_slice() {
            ctx.out.text(&file.content)?;
        } else {
            let text: Vec<String> = files
                .iter()
                .map(|f| format!("==> {} <==\n{}", f.path, f.content))
                .collect();
            ctx.out.text(&text.join("\n"))?;
        }
        Ok(0)
    }
}

/// Write a file readable by its owner only (mode 0600), atomically: a
/// temporary file in the same directory, then a rename.
fn write_private(path: &Path, content: &str) -> Result<(), Error> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    f.write_all(content.as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}
