//! All terminal output goes through here: results on stdout (tables, JSON,
//! rendered files), diagnostics on stderr, so `--json` output stays alone on
//! stdout and nothing interleaves.

use std::io::{IsTerminal, Write};

use comfy_table::{ContentArrangement, Table, presets};

/// stdout could not be written (a closed pipe among others).
#[derive(Debug)]
pub struct StdoutError(pub std::io::Error);

/// Where and how to print.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub color: bool,
}

impl Output {
    /// Colour only when asked for and stderr is a terminal.
    pub fn new(color: bool) -> Self {
        Self {
            color: color && std::io::stderr().is_terminal(),
        }
    }

    /// Should stdout get colours?
    pub fn stdout_color(&self) -> bool {
        self.color && std::io::stdout().is_terminal()
    }

    /// Text on stdout, as is.
    pub fn text(&self, text: &str) -> Result<(), StdoutError> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).map_err(StdoutError)?;
        out.flush().map_err(StdoutError)
    }

    /// JSON on stdout, 4-space indented like `ansible-inventory`, keys
    /// sorted, one trailing newline.
    pub fn json(&self, value: &impl serde::Serialize) -> Result<(), StdoutError> {
        let value = serde_json::to_value(value).map_err(|e| StdoutError(e.into()))?;
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        serde::Serialize::serialize(&value, &mut ser).map_err(|e| StdoutError(e.into()))?;
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

// ===== progress =====

/// A progress bar on stderr, drawn only on a terminal and never with
/// `--json`; otherwise every call does nothing.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// A bar of `len` steps, when `visible` and stderr is a terminal.
    pub fn new(len: usize, visible: bool) -> Progress {
        let bar = (visible && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(len as u64);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{spinner} [{pos}/{len}] {wide_msg}")
            {
                bar.set_style(style);
            }
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Progress { bar }
    }

    /// A bar that never draws.
    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    pub fn message(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    pub fn advance(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Removes the bar before results are printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

// ===== tables =====

/// A table for a report: condensed UTF-8 lines, no wrapping, no colour.
pub fn plain_table(header: Vec<&str>) -> Table {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_content_arrangement(ContentArrangement::Disabled);
    table.force_no_tty();
    table.set_header(header);
    table
}

/// Compares `got` with the golden file `src/testdata/NAME`;
/// `HACTL_UPDATE_GOLDEN=1` rewrites it.
#[cfg(test)]
#[track_caller]
pub(crate) fn golden(name: &str, got: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/testdata")
        .join(name);
    if std::env::var_os("HACTL_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} ({e}); run with HACTL_UPDATE_GOLDEN=1", path.display()));
    assert_eq!(got, want, "{name}");
}
