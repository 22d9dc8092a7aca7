//! The property the keepalived.conf fuzz target (`agent/fuzz`, target
//! `config`) and the seeded mutation test of `cargo test` both check, kept
//! here so the two cannot drift (issue 14). For any text read as a
//! keepalived.conf: nothing panics; an invalid file has at least one error,
//! and every diagnostic names the file and a line the file has; a valid
//! file summarizes (`hactl-agent check`) and serializes (`check --json`).
//!
//! Text with `include` is skipped: a glob such as `include /**/*` would
//! read the machine's files, which is the lexer's own tests' business.

use std::path::Path;

use super::{ConfigError, parse_str};

/// Where the fuzzed text pretends to live.
pub const FUZZ_PATH: &str = "/nonexistent/hactl-agent-fuzz/keepalived.conf";

/// How far an input got, for the mutation test's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reached {
    Skipped,
    Invalid,
    Valid,
}

/// Checks the property on `text`; a broken property is an `Err` naming it.
pub fn check_config(text: &str) -> Result<Reached, String> {
    if text.contains("include") {
        return Ok(Reached::Skipped);
    }
    let path = Path::new(FUZZ_PATH);
    let lines = text.lines().count().max(1);
    let located = |d: &super::Diagnostic| {
        d.origin.file == path && d.origin.line >= 1 && d.origin.line as usize <= lines
    };
    match parse_str(text, path) {
        Ok(loaded) => {
            if let Some(w) = loaded.warnings.iter().find(|w| !located(w)) {
                return Err(format!("a warning without its file and line: {w:?}"));
            }
            let summary = crate::check::summary(path, &loaded.config);
            if !summary.starts_with(FUZZ_PATH) {
                return Err(format!("a summary that does not name the file: {summary}"));
            }
            serde_json::to_string(&loaded.config).map_err(|e| format!("json: {e}"))?;
            Ok(Reached::Valid)
        }
        Err(ConfigError::Invalid { diagnostics, .. }) => {
            if !diagnostics.iter().any(super::Diagnostic::is_error) {
                return Err("an invalid file without an error".into());
            }
            match diagnostics.iter().find(|d| !located(d)) {
                Some(d) => Err(format!("a diagnostic without its file and line: {d:?}")),
                None => Ok(Reached::Invalid),
            }
        }
        Err(e) => Err(format!("an error that is not about the text: {e}")),
    }
}
