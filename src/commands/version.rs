//! `hactl version [--json]`: hactl's version for people, and as JSON for
//! scripts (the Ansible collection checks it before it runs anything).

use crate::cli::{Context, Error};

pub(super) fn version(ctx: &Context) -> Result<i32, Error> {
    let version = env!("CARGO_PKG_VERSION");
    if ctx.settings.json {
        ctx.out
            .json(&serde_json::json!({"name": "hactl", "version": version}))?;
    } else {
        ctx.out.text(&format!("hactl {version}\n"))?;
    }
    Ok(0)
}
