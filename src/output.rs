//! All terminal output goes through here: results on stdout (tables, JSON,
//! rendered files), diagnostics on stderr, so `--json` output stays alone on
//! stdout and nothing interleaves.

use std::io::Write;

use crate::error::Error;

/// Where and how to print.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub color: bool,
}

impl Output {
    pub fn new(color: bool) -> Self {
        Self { color }
    }

    /// Text on stdout, as is.
    pub fn text(&self, text: &str) -> Result<(), Error> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).map_err(Error::Stdout)?;
        out.flush().map_err(Error::Stdout)
    }

    /// JSON on stdout, 4-space indented like `ansible-inventory`, one
    /// trailing newline.
    pub fn json(&self, value: &serde_json::Value) -> Result<(), Error> {
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        serde::Serialize::serialize(value, &mut ser).map_err(|e| Error::Stdout(e.into()))?;
        buf.push(b'\n');
        self.text(&String::from_utf8_lossy(&buf))
    }

    /// One diagnostic line on stderr, prefixed `error: ` (red on a colour
    /// terminal).
    pub fn error(&self, message: &str) {
        let prefix = if self.color {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        let _ = writeln!(std::io::stderr().lock(), "{prefix}: {message}");
    }
}
