//! Tokens of keepalived.conf, each with its file and line, and `include`.
//!
//! The grammar is line based (keepalived.conf(5)): words separated by blanks,
//! `"quoted strings"` that keep their blanks, `{` and `}` as tokens of their
//! own, and comments from a `!` or `#` outside quotes (even inside a word,
//! as keepalived reads `priority 100#x` as `priority 100`) to the end of the
//! line. `include PATTERN` splices the files matching a glob in place; a
//! relative pattern is relative to the directory of the including file, as
//! keepalived changes into that directory while it reads an included file.
//! Plain `include` does not fail on a pattern that matches nothing (keepalived
//! only says so); we warn.

use std::path::{Path, PathBuf};

use super::error::{Diagnostic, Origin};

/// How deep includes may nest; deeper is almost surely a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// A bare word or a quoted string (quotes removed).
    Word(String),
    Open,
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub origin: Origin,
}

/// Lex the main file's `text` (already read) and everything it includes.
pub fn lex_main(text: &str, path: &Path, diags: &mut Vec<Diagnostic>) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut stack = vec![canonical(path)];
    lex_text(text, path, &mut stack, &mut tokens, diags);
    tokens
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn lex_text(
    text: &str,
    path: &Path,
    stack: &mut Vec<PathBuf>,
    tokens: &mut Vec<Token>,
    diags: &mut Vec<Diagnostic>,
) {
    for (index, line) in text.lines().enumerate() {
        let origin = Origin {
            file: path.to_path_buf(),
            line: u32::try_from(index + 1).unwrap_or(u32::MAX),
        };
        let words = match lex_line(line) {
            Ok(words) => words,
            Err(message) => {
                diags.push(Diagnostic::error(&origin, message));
                continue;
            }
        };
        if let Some(TokenKind::Word(first)) = words.first()
            && first == "include"
        {
            include(&words[1..], &origin, stack, tokens, diags);
            continue;
        }
        tokens.extend(words.into_iter().map(|kind| Token {
            kind,
            origin: origin.clone(),
        }));
    }
}

/// Split one line into tokens, dropping its comment.
pub fn lex_line(line: &str) -> Result<Vec<TokenKind>, String> {
    let mut out = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '!' | '#' => break,
            '{' => {
                chars.next();
                out.push(TokenKind::Open);
            }
            '}' => {
                chars.next();
                out.push(TokenKind::Close);
            }
            '"' => {
                chars.next();
                let rest = &line[start + 1..];
                match rest.find('"') {
                    Some(end) => {
                        out.push(TokenKind::Word(rest[..end].to_string()));
                        // Skip the string and its closing quote.
                        let stop = start + 1 + end;
                        while chars.next_if(|&(i, _)| i <= stop).is_some() {}
                    }
                    None => return Err("unterminated quoted string".to_string()),
                }
            }
            _ => {
                let mut end = line.len();
                while let Some(&(i, c)) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '{' | '}' | '"' | '!' | '#') {
                        end = i;
                        break;
                    }
                    chars.next();
                }
                out.push(TokenKind::Word(line[start..end].to_string()));
            }
        }
    }
    Ok(out)
}

fn include(
    args: &[TokenKind],
    origin: &Origin,
    stack: &mut Vec<PathBuf>,
    tokens: &mut Vec<Token>,
    diags: &mut Vec<Diagnostic>,
) {
    let pattern = match args {
        [TokenKind::Word(p)] => p,
        _ => {
            diags.push(Diagnostic::error(
                origin,
                "include takes exactly one file name or glob pattern",
            ));
            return;
        }
    };
    let base = origin.file.parent().unwrap_or(Path::new(""));
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        base.join(pattern)
    };
    let Some(full_text) = full.to_str() else {
        diags.push(Diagnostic::error(origin, "include path is not valid UTF-8"));
        return;
    };
    let paths = match glob::glob(full_text) {
        Ok(paths) => paths,
        Err(e) => {
            diags.push(Diagnostic::error(
                origin,
                format!("invalid include pattern '{pattern}': {}", e.msg),
            ));
            return;
        }
    };
    let mut matched = 0;
    for entry in paths {
        let file = match entry {
            Ok(file) => file,
            Err(e) => {
                diags.push(Diagnostic::error(
                    origin,
                    format!("cannot read {}: {}", e.path().display(), e.error()),
                ));
                continue;
            }
        };
        matched += 1;
        if stack.len() > MAX_INCLUDE_DEPTH {
            diags.push(Diagnostic::error(
                origin,
                format!("includes nest deeper than {MAX_INCLUDE_DEPTH} levels"),
            ));
            return;
        }
        let key = canonical(&file);
        if stack.contains(&key) {
            diags.push(Diagnostic::error(
                origin,
                format!("include loop: {} includes itself", file.display()),
            ));
            continue;
        }
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                stack.push(key);
                lex_text(&text, &file, stack, tokens, diags);
                stack.pop();
            }
            Err(e) => diags.push(Diagnostic::error(
                origin,
                format!("cannot read {}: {e}", file.display()),
            )),
        }
    }
    if matched == 0 {
        diags.push(Diagnostic::warning(
            origin,
            format!("include '{pattern}' matches no file"),
        ));
    }
}
