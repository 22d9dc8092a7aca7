//! Ansible host patterns, as `--limit` takes them: host and group names,
//! `all` / `*`, shell globs (`lb0*`, `web?`, `[ab]*`), subscripts
//! (`web[0]`, `web[1:2]`, `web[-1]`), `!` exclusion and `&` intersection,
//! lists separated by `,` (or `:` when there is no comma).
//!
//! As in Ansible, the plain terms are united first, in order, then every
//! `&` term intersects and every `!` term subtracts; a list with only
//! exclusions starts from `all`. The result keeps inventory order.

use super::Inventory;

/// Why a pattern cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatternError {
    #[error("host pattern `{0}` is empty")]
    Empty(String),
    #[error("host pattern `{0}`: regular expressions (`~`) are not supported")]
    Regex(String),
    #[error("host pattern `{0}` has a bad subscript")]
    Subscript(String),
    #[error("host pattern `{0}`: use [x:y] inclusive subscripts, [x-y] was removed from Ansible")]
    DashRange(String),
}

/// Split a pattern list the way Ansible does.
pub fn split(pattern: &str) -> Vec<String> {
    let sep = if pattern.contains(',') { ',' } else { ':' };
    // An IPv6 address is one term, not a colon-separated list.
    if sep == ':' && pattern.parse::<std::net::Ipv6Addr>().is_ok() {
        return vec![pattern.trim().to_string()];
    }
    // Separators inside `[...]` (subscripts, ranges) do not split.
    let mut terms = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in pattern.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c == sep && depth == 0 {
            terms.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    terms.push(cur);
    terms
        .into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The hosts a pattern selects, in inventory order.
pub fn select(inv: &Inventory, pattern: &str) -> Result<Vec<String>, PatternError> {
    let terms = split(pattern);
    if terms.is_empty() {
        return Err(PatternError::Empty(pattern.to_string()));
    }
    let mut plain = Vec::new();
    let mut and = Vec::new();
    let mut not = Vec::new();
    for t in &terms {
        if let Some(rest) = t.strip_prefix('&') {
            and.push(rest);
        } else if let Some(rest) = t.strip_prefix('!') {
            not.push(rest);
        } else {
            plain.push(t.as_str());
        }
    }
    let mut chosen: Vec<String> = Vec::new();
    if plain.is_empty() {
        chosen = inv.group_hosts("all");
    }
    for t in plain {
        for h in term_hosts(inv, t)? {
            if !chosen.contains(&h) {
                chosen.push(h);
            }
        }
    }
    for t in and {
        let keep = term_hosts(inv, t)?;
        chosen.retain(|h| keep.contains(h));
    }
    for t in not {
        let drop = term_hosts(inv, t)?;
        chosen.retain(|h| !drop.contains(h));
    }
    Ok(inv
        .hosts()
        .iter()
        .map(|h| h.name.clone())
        .filter(|h| chosen.contains(h))
        .collect())
}

/// The hosts of one term, in the order the term lists them.
fn term_hosts(inv: &Inventory, term: &str) -> Result<Vec<String>, PatternError> {
    if term.is_empty() {
        return Err(PatternError::Empty(term.to_string()));
    }
    if term.starts_with('~') {
        return Err(PatternError::Regex(term.to_string()));
    }
    let (base, subscript) = split_subscript(term)?;
    let mut out: Vec<String> = Vec::new();
    let mut add = |hs: Vec<String>| {
        for h in hs {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    };
    if base == "all" || base == "*" {
        add(inv.group_hosts("all"));
    } else if is_glob(base) {
        for g in inv.groups() {
            if glob_match(base, &g.name) {
                add(inv.group_hosts(&g.name));
            }
        }
        add(inv
            .hosts()
            .iter()
            .filter(|h| glob_match(base, &h.name))
            .map(|h| h.name.clone())
            .collect());
    } else if inv.group(base).is_some() {
        // Ansible: a name that is a group means the group, even when a host
        // has the same name (unless the name has a `.`).
        add(inv.group_hosts(base));
        if base.contains('.') && inv.host(base).is_some() {
            add(vec![base.to_string()]);
        }
    } else if inv.host(base).is_some() {
        add(vec![base.to_string()]);
    }
    Ok(match subscript {
        None => out,
        Some((start, end)) => {
            let len = out.len() as i64;
            let norm = |i: i64| if i < 0 { len + i } else { i };
            let (s, e) = (norm(start), end.map_or(norm(start), norm));
            out.into_iter()
                .enumerate()
                .filter(|(i, _)| (s..=e).contains(&(*i as i64)))
                .map(|(_, h)| h)
                .collect()
        }
    })
}

type Subscript = Option<(i64, Option<i64>)>;

/// `web[1:3]` -> (`web`, 1..=3); a glob character class like `[ab]*` is not
/// a subscript.
fn split_subscript(term: &str) -> Result<(&str, Subscript), PatternError> {
    let Some(body) = term.strip_suffix(']') else {
        return Ok((term, None));
    };
    let Some(open) = body.rfind('[') else {
        return Ok((term, None));
    };
    let inner = &body[open + 1..];
    let int = |s: &str| -> bool {
        let digits = s.strip_prefix('-').unwrap_or(s);
        !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
    };
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    // Ansible's subscript forms: `[-?N]` and `[N:]` / `[N:M]`; `[N-M]` is
    // the removed old form; anything else is a glob character class.
    let range = |sep: char| {
        inner
            .split_once(sep)
            .filter(|(a, b)| !a.is_empty() && digits(a) && digits(b))
    };
    if open == 0 {
        return Ok((term, None));
    }
    if range('-').is_some() && !int(inner) {
        return Err(PatternError::DashRange(term.to_string()));
    }
    let bad = || PatternError::Subscript(term.to_string());
    let sub = if int(inner) {
        (inner.parse().map_err(|_| bad())?, None)
    } else if let Some((a, b)) = range(':') {
        let a = a.parse().map_err(|_| bad())?;
        let b = if b.is_empty() {
            -1
        } else {
            b.parse().map_err(|_| bad())?
        };
        (a, Some(b))
    } else {
        return Ok((term, None));
    };
    Ok((&term[..open], Some(sub)))
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Shell-style matching: `*`, `?`, `[abc]`, `[a-z]`, `[!abc]`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_at(&p, &t)
}

fn glob_at(p: &[char], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some('*') => (0..=t.len()).any(|i| glob_at(&p[1..], &t[i..])),
        Some('?') => !t.is_empty() && glob_at(&p[1..], &t[1..]),
        Some('[') => {
            let Some(close) = p.iter().skip(2).position(|c| *c == ']').map(|i| i + 2) else {
                return t.first() == Some(&'[') && glob_at(&p[1..], &t[1..]);
            };
            let Some(c) = t.first() else { return false };
            let (negate, set) = match p[1] {
                '!' => (true, &p[2..close]),
                _ => (false, &p[1..close]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == '-' {
                    hit |= (set[i]..=set[i + 2]).contains(c);
                    i += 3;
                } else {
                    hit |= set[i] == *c;
                    i += 1;
                }
            }
            hit != negate && glob_at(&p[close + 1..], &t[1..])
        }
        Some(c) => t.first() == Some(c) && glob_at(&p[1..], &t[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::yaml;
    use std::path::Path;

    fn lab() -> Inventory {
        let text = concat!(
            "all:\n  children:\n",
            "    web: {hosts: {lb01: , lb02: }}\n",
            "    db: {hosts: {db01: , lb02: }}\n",
            "    mon: {hosts: {mon1: }}\n",
        );
        let node = yaml::load_str(text, Path::new("p.yml")).unwrap();
        Inventory::from_node(Path::new("p.yml"), &node).unwrap()
    }

    #[test]
    fn patterns_select_like_ansible() {
        let inv = lab();
        let cases: &[(&str, &[&str])] = &[
            ("all", &["lb01", "lb02", "db01", "mon1"]),
            ("*", &["lb01", "lb02", "db01", "mon1"]),
            ("web", &["lb01", "lb02"]),
            ("lb01", &["lb01"]),
            ("web:db", &["lb01", "lb02", "db01"]),
            ("web,mon1", &["lb01", "lb02", "mon1"]),
            ("web:&db", &["lb02"]),
            ("web:!db", &["lb01"]),
            ("!web", &["db01", "mon1"]),
            ("lb*", &["lb01", "lb02"]),
            ("?b0[!2]", &["lb01", "db01"]),
            ("d*", &["lb02", "db01"]),
            ("[!l]b0*", &["db01"]),
            ("web[0]", &["lb01"]),
            ("web[-1]", &["lb02"]),
            ("web[0:1],&lb*", &["lb01", "lb02"]),
            ("lb0[!3]", &["lb01", "lb02"]),
            ("web[1:]", &["lb02"]),
            ("nosuch", &[]),
        ];
        for (pattern, want) in cases {
            assert_eq!(select(&inv, pattern).unwrap(), *want, "pattern {pattern}");
        }
    }

    #[test]
    fn unsupported_patterns_are_errors() {
        let inv = lab();
        assert_eq!(
            select(&inv, "~lb.*").unwrap_err(),
            PatternError::Regex("~lb.*".into())
        );
        assert_eq!(
            select(&inv, ",").unwrap_err(),
            PatternError::Empty(",".into())
        );
    }
}
