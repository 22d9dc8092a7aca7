//! YAML loading the way Ansible reads inventories: YAML 1.1 scalar resolution
//! (PyYAML's implicit resolvers) on top of `yaml-rust2`'s event parser, with the
//! file and line of every value kept for error messages.
//!
//! A YAML 1.2 loader would read `yes` as a string and `0644` as 644; Ansible
//! (PyYAML) reads them as `true` and 420. Only *plain* scalars are resolved: a
//! quoted `"yes"` stays a string. Anchors, aliases and `<<` merge keys work as
//! in PyYAML; a duplicate key keeps its first position and its last value.
//! Timestamps stay strings, as `ansible-inventory` prints them as written.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Where a value was read: file and 1-based line. A source without lines
/// (the JSON of `ansible-inventory --list`, whose variables Ansible has
/// already merged) names instead what the value belongs to, `host lb01`
/// or `group web_lb`, and has line 0.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub file: Arc<PathBuf>,
    pub line: usize,
    pub entity: Option<Arc<str>>,
}

impl Origin {
    pub fn new(file: &Path, line: usize) -> Self {
        Self {
            file: Arc::new(file.to_path_buf()),
            line,
            entity: None,
        }
    }

    /// A value of `entity` (`host lb01`) in a source without lines.
    pub fn of_entity(file: &Path, entity: &str) -> Self {
        Self {
            file: Arc::new(file.to_path_buf()),
            line: 0,
            entity: Some(Arc::from(entity)),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entity {
            Some(entity) => write!(f, "{}: {entity}", self.file.display()),
            None => write!(f, "{}:{}", self.file.display(), self.line),
        }
    }
}

/// A loaded YAML value and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub origin: Origin,
}

/// A mapping key: its text (a null, boolean or number as YAML writes it; a
/// list or mapping key is refused, see [`YamlError::UnhashableKey`]) and its
/// position.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub origin: Origin,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("{origin}: invalid YAML: {message}")]
    Syntax { origin: Origin, message: String },
    #[error("{origin}: unsupported YAML tag `{tag}`")]
    Tag { origin: Origin, tag: String },
    #[error("{origin}: unknown YAML alias")]
    Alias { origin: Origin },
    #[error("{origin}: aliases expand to more than {max} YAML nodes")]
    AliasExpansion { origin: Origin, max: usize },
    /// A sequence or mapping used as a mapping key: Ansible's YAML loader
    /// (PyYAML) refuses it as "found unhashable key", and so do we (as a
    /// JSON name, a key nested in keys would double in length per level).
    #[error("{origin}: {kind} cannot be a mapping key (found unhashable key)")]
    UnhashableKey { origin: Origin, kind: &'static str },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl YamlError {
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            Self::Syntax { origin, .. }
            | Self::Tag { origin, .. }
            | Self::Alias { origin }
            | Self::AliasExpansion { origin, .. }
            | Self::UnhashableKey { origin, .. } => Some(origin),
            Self::Read { .. } => None,
        }
    }
}

// ===== impl Node =====

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    /// A scalar shown as Ansible would template it into a string: used for
    /// names (host and group names, list items that must be strings).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
            Value::Float(f) => Some(python_float_repr(*f)),
            Value::Null => None,
            Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// A short name of the value's type for error messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The plain JSON form (what `ansible-inventory --list` prints). JSON
    /// has no infinity or NaN: they become `null` (a documented difference).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

fn python_float_repr(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if f.is_nan() {
        return "nan".to_string();
    }
    let s = f.to_string();
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

// ===== loading =====

/// Read and parse one YAML file (the first document). An empty file is null.
pub fn load_file(path: &Path) -> Result<Node, YamlError> {
    let text = std::fs::read_to_string(path).map_err(|source| YamlError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(&text, path)
}

/// Parse YAML text; `path` is only used for origins.
pub fn load_str(text: &str, path: &Path) -> Result<Node, YamlError> {
    let file = Arc::new(path.to_path_buf());
    let mut builder = Builder {
        file: file.clone(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        aliased: 0,
        root: None,
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, false) {
        let line = e.marker().line().max(1);
        return Err(YamlError::Syntax {
            origin: Origin {
                file,
                line,
                entity: None,
            },
            message: e.info().to_string(),
        });
    }
    if let Some(e) = builder.error {
        return Err(e);
    }
    Ok(builder.root.unwrap_or(Node {
        value: Value::Null,
        origin: Origin {
            file,
            line: 1,
            entity: None,
        },
    }))
}

enum Frame {
    Seq {
        anchor: usize,
        origin: Origin,
        items: Vec<Node>,
    },
    Map {
        anchor: usize,
        origin: Origin,
        entries: Vec<(Key, Node)>,
        merges: Vec<Node>,
        pending_key: Option<Node>,
    },
}

struct Builder {
    file: Arc<PathBuf>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    /// Nodes copied in by aliases so far, against [`ALIASED_NODES_MAX`].
    aliased: usize,
    root: Option<Node>,
    error: Option<YamlError>,
}

impl Builder {
    fn origin(&self, mark: Marker) -> Origin {
        Origin {
            file: self.file.clone(),
            line: mark.line().max(1),
            entity: None,
        }
    }

    fn fail(&mut self, e: YamlError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn push_node(&mut self, node: Node) {
        if let Err(e) = self.place(node) {
            self.fail(e);
        }
    }

    fn place(&mut self, node: Node) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                merges,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => {
                    let is_merge = matches!(&key.value, Value::Str(s) if s == "<<")
                        && matches!(node.value, Value::Map(_) | Value::Seq(_));
                    if is_merge {
                        merges.push(node);
                    } else {
                        insert_entry(entries, key_of(&key)?, node);
                    }
                }
            },
        }
        Ok(())
    }
}

/// How many nodes aliases may copy into one document: far above any
/// inventory (an alias copies a group's vars, a few hundred nodes), far
/// below what nested aliases can reach in a few lines ("billion laughs").
const ALIASED_NODES_MAX: usize = 1_000_000;

/// The nodes in `node`, or `None` past `limit`.
fn count_nodes(node: &Node, limit: usize) -> Option<usize> {
    let mut count = 0usize;
    let mut todo = vec![node];
    while let Some(n) = todo.pop() {
        count += 1;
        if count > limit {
            return None;
        }
        match &n.value {
            Value::Seq(items) => todo.extend(items),
            Value::Map(entries) => todo.extend(entries.iter().map(|(_, v)| v)),
            _ => {}
        }
    }
    Some(count)
}

fn key_of(node: &Node) -> Result<Key, YamlError> {
    let name = match &node.value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Seq(_) | Value::Map(_) => {
            return Err(YamlError::UnhashableKey {
                origin: node.origin.clone(),
                kind: node.kind(),
            });
        }
        _ => node.scalar_text().unwrap_or_default(),
    };
    Ok(Key {
        name,
        origin: node.origin.clone(),
    })
}

fn insert_entry(entries: &mut Vec<(Key, Node)>, key: Key, value: Node) {
    if let Some(slot) = entries.iter_mut().find(|(k, _)| k.name == key.name) {
        slot.1 = value;
    } else {
        entries.push((key, value));
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let origin = self.origin(mark);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let value = match resolve_scalar(&text, style, tag.as_ref()) {
                    Ok(v) => v,
                    Err(tag) => return self.fail(YamlError::Tag { origin, tag }),
                };
                let node = Node { value, origin };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push_node(node);
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let budget = ALIASED_NODES_MAX - self.aliased;
                    match count_nodes(node, budget) {
                        Some(n) => {
                            self.aliased += n;
                            let node = node.clone();
                            self.push_node(node);
                        }
                        None => self.fail(YamlError::AliasExpansion {
                            origin,
                            max: ALIASED_NODES_MAX,
                        }),
                    }
                }
                None => self.fail(YamlError::Alias { origin }),
            },
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                anchor,
                origin,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                anchor,
                origin,
                entries: Vec::new(),
                merges: Vec::new(),
                pending_key: None,
            }),
            Event::SequenceEnd => {
                if let Some(Frame::Seq {
                    anchor,
                    origin,
                    items,
                }) = self.stack.pop()
                {
                    let node = Node {
                        value: Value::Seq(items),
                        origin,
                    };
                    if anchor > 0 {
                        self.anchors.insert(anchor, node.clone());
                    }
                    self.push_node(node);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    anchor,
                    origin,
                    mut entries,
                    merges,
                    ..
                }) = self.stack.pop()
                {
                    // PyYAML: explicit keys win over merged ones; among merged
                    // maps the earlier one wins.
                    let mut merged: Vec<(Key, Node)> = Vec::new();
                    for m in merges {
                        let maps: Vec<Node> = match m.value {
                            Value::Seq(items) => items,
                            _ => vec![m],
                        };
                        for map in maps {
                            if let Value::Map(es) = map.value {
                                for (k, v) in es {
                                    if !merged.iter().any(|(mk, _)| mk.name == k.name) {
                                        merged.push((k, v));
                                    }
                                }
                            }
                        }
                    }
                    if !merged.is_empty() {
                        for (k, v) in std::mem::take(&mut entries) {
                            insert_entry(&mut merged, k, v);
                        }
                        entries = merged;
                    }
                    let node = Node {
                        value: Value::Map(entries),
                        origin,
                    };
                    if anchor > 0 {
                        self.anchors.insert(anchor, node.clone());
                    }
                    self.push_node(node);
                }
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

// ===== YAML 1.1 scalar resolution =====

fn resolve_scalar(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(tag) = tag {
        let name = tag.suffix.as_str();
        let core = tag.handle == "!!" || tag.handle.starts_with("tag:yaml.org,2002");
        return match (core, name) {
            (true, "str") | (false, "unsafe") => Ok(Value::Str(text.to_string())),
            (true, "int") => parse_int(text)
                .map(Value::Int)
                .ok_or(format!("!!int {text}")),
            (true, "float") => parse_float(text)
                .or_else(|| parse_int(text).map(|i| i as f64))
                .map(Value::Float)
                .ok_or(format!("!!float {text}")),
            (true, "bool") => parse_bool(text)
                .map(Value::Bool)
                .ok_or(format!("!!bool {text}")),
            (true, "null") => Ok(Value::Null),
            _ => Err(format!("{}{}", tag.handle, tag.suffix)),
        };
    }
    if style != TScalarStyle::Plain {
        return Ok(Value::Str(text.to_string()));
    }
    Ok(resolve_plain(text))
}

/// PyYAML's implicit resolvers for a plain scalar.
pub fn resolve_plain(s: &str) -> Value {
    if matches!(s, "" | "~" | "null" | "Null" | "NULL") {
        return Value::Null;
    }
    if let Some(b) = parse_bool(s) {
        return Value::Bool(b);
    }
    if let Some(i) = parse_int(s) {
        return Value::Int(i);
    }
    if let Some(f) = parse_float(s) {
        return Value::Float(f);
    }
    Value::Str(s.to_string())
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn split_sign(s: &str) -> (i64, &str) {
    if let Some(r) = s.strip_prefix('-') {
        (-1, r)
    } else if let Some(r) = s.strip_prefix('+') {
        (1, r)
    } else {
        (1, s)
    }
}

fn all_of(s: &str, f: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.chars().all(f)
}

fn radix(digits: &str, base: u32) -> Option<i64> {
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() {
        return None;
    }
    i64::from_str_radix(&clean, base).ok()
}

/// A sexagesimal tail `:[0-5]?[0-9]` repeated at least once.
fn sexagesimal_parts(tail: &str) -> Option<Vec<i64>> {
    let parts: Vec<&str> = tail.split(':').collect();
    let mut out = Vec::new();
    for p in parts {
        let ok = match p.as_bytes() {
            [d] => d.is_ascii_digit(),
            [a, b] => (b'0'..=b'5').contains(a) && b.is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return None;
        }
        out.push(p.parse().ok()?);
    }
    Some(out)
}

fn parse_int(s: &str) -> Option<i64> {
    let (sign, r) = split_sign(s);
    let magnitude = if let Some(b) = r.strip_prefix("0b") {
        all_of(b, |c| matches!(c, '0' | '1' | '_')).then_some(())?;
        radix(b, 2)?
    } else if let Some(x) = r.strip_prefix("0x") {
        all_of(x, |c| c.is_ascii_hexdigit() || c == '_').then_some(())?;
        radix(x, 16)?
    } else if r == "0" {
        0
    } else if let Some(o) = r.strip_prefix('0') {
        all_of(o, |c| matches!(c, '0'..='7' | '_')).then_some(())?;
        radix(o, 8)?
    } else if r.starts_with(|c: char| matches!(c, '1'..='9')) {
        let (head, tail) = match r.split_once(':') {
            Some((h, t)) => (h, Some(t)),
            None => (r, None),
        };
        all_of(head, |c| c.is_ascii_digit() || c == '_').then_some(())?;
        let mut v = radix(head, 10)?;
        if let Some(tail) = tail {
            for part in sexagesimal_parts(tail)? {
                v = v.checked_mul(60)?.checked_add(part)?;
            }
        }
        v
    } else {
        return None;
    };
    magnitude.checked_mul(sign)
}

fn is_exponent(e: &str) -> bool {
    let mut c = e.chars();
    matches!(c.next(), Some('e' | 'E'))
        && matches!(c.next(), Some('-' | '+'))
        && all_of(c.as_str(), |c| c.is_ascii_digit())
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let (sign, r) = split_sign(s);
    let sign = sign as f64;
    if matches!(r, ".inf" | ".Inf" | ".INF") {
        return Some(sign * f64::INFINITY);
    }
    let clean = |t: &str| -> Option<f64> {
        let c: String = t.chars().filter(|c| *c != '_').collect();
        c.parse::<f64>().ok()
    };
    // `[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*`
    if let Some((head, rest)) = r.split_once(':') {
        let (tail, frac) = rest.rsplit_once('.')?;
        if !r.starts_with(|c: char| c.is_ascii_digit())
            || !all_of(head, |c| c.is_ascii_digit() || c == '_')
            || !frac.chars().all(|c| c.is_ascii_digit() || c == '_')
        {
            return None;
        }
        let mut v = clean(head)?;
        let parts = sexagesimal_parts(tail)?;
        let last = parts.len() - 1;
        for (i, p) in parts.into_iter().enumerate() {
            v = v * 60.0 + p as f64;
            if i == last {
                let f = clean(&format!("0.{frac}0"))?;
                v += f;
            }
        }
        return Some(sign * v);
    }
    let (int_part, rest) = r.split_once('.')?;
    let (frac, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if !exp.is_empty() && !is_exponent(exp) {
        return None;
    }
    if !frac.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return None;
    }
    if int_part.is_empty() {
        // `\.[0-9][0-9_]*`: no sign allowed in this form.
        if s.starts_with(['-', '+']) || !frac.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
    } else if !int_part.starts_with(|c: char| c.is_ascii_digit())
        || !all_of(int_part, |c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let text = format!(
        "{}.{}0{}",
        int_part.replace('_', ""),
        frac.replace('_', ""),
        exp
    );
    let text = if int_part.is_empty() {
        format!("0{text}")
    } else {
        text
    };
    Some(sign * text.parse::<f64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_resolve_as_yaml_1_1() {
        let cases: &[(&str, Value)] = &[
            ("yes", Value::Bool(true)),
            ("Off", Value::Bool(false)),
            ("y", Value::Str("y".into())),
            ("0644", Value::Int(420)),
            ("0x1F", Value::Int(31)),
            ("0b101", Value::Int(5)),
            ("1_000", Value::Int(1000)),
            ("-12", Value::Int(-12)),
            ("1:20", Value::Int(80)),
            ("09", Value::Str("09".into())),
            ("1e3", Value::Str("1e3".into())),
            ("1.5e+3", Value::Float(1500.0)),
            ("1.5", Value::Float(1.5)),
            (".5", Value::Float(0.5)),
            ("1.", Value::Float(1.0)),
            ("1:30.5", Value::Float(90.5)),
            ("~", Value::Null),
            ("", Value::Null),
            ("2020-1-2", Value::Str("2020-1-2".into())),
            ("10.0.0.1", Value::Str("10.0.0.1".into())),
            ("0o17", Value::Str("0o17".into())),
        ];
        for (input, want) in cases {
            assert_eq!(&resolve_plain(input), want, "input {input:?}");
        }
    }

    #[test]
    fn quoted_scalars_stay_strings_and_lines_are_kept() {
        let n = load_str("a: \"yes\"\nb: yes\nc: 'on'\n", Path::new("f.yml")).unwrap();
        assert_eq!(n.get("a").unwrap().value, Value::Str("yes".into()));
        assert_eq!(n.get("b").unwrap().value, Value::Bool(true));
        assert_eq!(n.get("c").unwrap().value, Value::Str("on".into()));
        assert_eq!(n.get("b").unwrap().origin.line, 2);
        assert_eq!(n.get("c").unwrap().origin.to_string(), "f.yml:3");
    }

    #[test]
    fn merge_keys_and_aliases() {
        let text = "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n";
        let n = load_str(text, Path::new("f")).unwrap();
        let m = n.get("m").unwrap();
        assert_eq!(m.get("x").unwrap().value, Value::Int(1));
        assert_eq!(m.get("y").unwrap().value, Value::Int(3));
    }

    #[test]
    fn syntax_error_has_a_line() {
        let err = load_str("a: 1\nb: [1, 2\nc: 3\n", Path::new("bad.yml")).unwrap_err();
        let origin = err.origin().unwrap();
        assert!(origin.line >= 2, "{err}");
        assert!(err.to_string().starts_with("bad.yml:"), "{err}");
    }

    #[test]
    fn a_list_or_mapping_as_a_key_is_refused_with_its_line() {
        // Nested mapping keys once grew their JSON names 2^depth long
        // (a fuzzed inventory of 283 bytes took 4 GB).
        let depth = 40;
        let nested = "{".repeat(depth) + &"}".repeat(depth);
        let text = format!("all:\n  g: {{{nested}: x}}\n");
        let err = load_str(&text, Path::new("k.yml")).unwrap_err();
        assert_eq!(err.origin().unwrap().line, 2, "{err}");
        assert!(err.to_string().contains("cannot be a mapping key"), "{err}");
        let err = load_str("[a, b]: 1\n", Path::new("k.yml")).unwrap_err();
        assert!(
            err.to_string().starts_with("k.yml:1: a list cannot"),
            "{err}"
        );
    }

    #[test]
    fn nested_aliases_stop_at_the_expansion_limit() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            let items = [prev.as_str(); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        let err = load_str(&text, Path::new("lol.yml")).unwrap_err();
        assert!(
            err.to_string().contains("aliases expand to more than"),
            "{err}"
        );
        assert!(err.origin().unwrap().line >= 6, "{err}");
    }
}
