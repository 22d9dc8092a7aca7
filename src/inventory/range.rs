//! Host ranges in inventory host names, as Ansible expands them:
//! `lb[01:04]` (zero-padded when the start has a leading zero, both bounds the
//! same width), `node[a:c]` (single ASCII letters), `web[1:10:2]` (a step),
//! `x[:3]` (start defaults to 0), and several ranges in one name.

/// Why a host range cannot be expanded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RangeError {
    #[error("host range `{0}` needs a start:end or start:end:step")]
    Shape(String),
    #[error("host range `{0}` has no end")]
    NoEnd(String),
    #[error("host range `{0}`: begin and end of a zero-padded range must have the same width")]
    Width(String),
    #[error("host range `{0}` is not a number or letter range")]
    Bounds(String),
    #[error("host range `{0}` has a step that is not a positive number")]
    Step(String),
    #[error("host range `{0}` names more than {MAX_HOSTS} hosts")]
    TooMany(String),
}

/// The most hosts one range pattern may name. Ansible sets no bound; a
/// pattern such as `h[0:18446744073709551600]` (found by the inventory fuzz
/// target, issue 14) would otherwise exhaust memory.
pub const MAX_HOSTS: u64 = 100_000;

/// True when `name` contains a range (`[` ... `:` ... `]`).
pub fn has_range(name: &str) -> bool {
    match (name.find('['), name.find(']')) {
        (Some(open), Some(close)) if open < close => name[open..close].contains(':'),
        _ => false,
    }
}

/// Expand every range in `name`, in order; a name without a range is itself.
pub fn expand(name: &str) -> Result<Vec<String>, RangeError> {
    if !has_range(name) {
        return Ok(vec![name.to_string()]);
    }
    // has_range guarantees both brackets exist, `[` first.
    let open = name.find('[').unwrap_or(0);
    let close = name.find(']').unwrap_or(name.len());
    let (head, inner, tail) = (&name[..open], &name[open + 1..close], &name[close + 1..]);
    let bounds: Vec<&str> = inner.split(':').collect();
    if !(2..=3).contains(&bounds.len()) {
        return Err(RangeError::Shape(name.to_string()));
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    if end.is_empty() {
        return Err(RangeError::NoEnd(name.to_string()));
    }
    let step: usize = match bounds.get(2) {
        None => 1,
        Some(s) => s
            .parse()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| RangeError::Step(name.to_string()))?,
    };
    let width = if beg.len() > 1 && beg.starts_with('0') {
        if beg.len() != end.len() {
            return Err(RangeError::Width(name.to_string()));
        }
        beg.len()
    } else {
        0
    };
    let items: Vec<String> = match (letter_index(beg), letter_index(end)) {
        (Some(b), Some(e)) => {
            if b > e {
                return Err(RangeError::Bounds(name.to_string()));
            }
            LETTERS[b..=e]
                .chars()
                .step_by(step)
                .map(|c| c.to_string())
                .collect()
        }
        _ => {
            let (b, e): (u64, u64) = match (beg.parse(), end.parse()) {
                (Ok(b), Ok(e)) => (b, e),
                _ => return Err(RangeError::Bounds(name.to_string())),
            };
            if e.saturating_sub(b) / step as u64 >= MAX_HOSTS {
                return Err(RangeError::TooMany(name.to_string()));
            }
            (b..=e)
                .step_by(step)
                .map(|i| format!("{i:0>width$}"))
                .collect()
        }
    };
    let mut out = Vec::new();
    for item in items {
        out.extend(expand(&format!("{head}{item}{tail}"))?);
        if out.len() as u64 > MAX_HOSTS {
            return Err(RangeError::TooMany(name.to_string()));
        }
    }
    Ok(out)
}

const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn letter_index(s: &str) -> Option<usize> {
    let mut c = s.chars();
    let ch = c.next()?;
    if c.next().is_some() {
        return None;
    }
    LETTERS.find(ch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14 (found by the inventory fuzz target): a range of 1.8e19
    /// hosts, or nested ranges multiplying past the bound, are errors, not
    /// an exhausted memory.
    #[test]
    fn huge_ranges_are_refused() {
        for name in [
            "zero[:0000000000000000000000000000000000000000018446744073549551600]",
            "h[0:18446744073709551615]",
            "h[0:999][0:999]",
        ] {
            assert!(
                matches!(expand(name), Err(RangeError::TooMany(_))),
                "{name}"
            );
        }
        assert_eq!(expand("h[1:100000]").map(|v| v.len()), Ok(100_000));
    }

    #[test]
    fn ranges_expand_like_ansible() {
        let cases: &[(&str, &[&str])] = &[
            ("lb[01:04]", &["lb01", "lb02", "lb03", "lb04"]),
            ("web[8:10].x", &["web8.x", "web9.x", "web10.x"]),
            ("web[08:10]", &["web08", "web09", "web10"]),
            ("n[a:c]", &["na", "nb", "nc"]),
            ("n[y:B]", &["ny", "nz", "nA", "nB"]),
            ("s[1:7:3]", &["s1", "s4", "s7"]),
            ("y[:2]", &["y0", "y1", "y2"]),
            ("r[1:2]c[a:b]", &["r1ca", "r1cb", "r2ca", "r2cb"]),
            ("plain", &["plain"]),
            ("no[range]", &["no[range]"]),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input).unwrap(), *want, "input {input}");
        }
    }

    #[test]
    fn bad_ranges_are_errors() {
        let cases: &[(&str, RangeError)] = &[
            ("a[01:4]", RangeError::Width("a[01:4]".into())),
            ("a[1:]", RangeError::NoEnd("a[1:]".into())),
            ("a[1:2:3:4]", RangeError::Shape("a[1:2:3:4]".into())),
            ("a[1:x]", RangeError::Bounds("a[1:x]".into())),
            ("a[c:a]", RangeError::Bounds("a[c:a]".into())),
            ("a[1:3:0]", RangeError::Step("a[1:3:0]".into())),
        ];
        for (input, want) in cases {
            assert_eq!(&expand(input).unwrap_err(), want, "input {input}");
        }
    }
}
