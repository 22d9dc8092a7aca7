//! `hactl_checks`: the pair's vrrp_script definitions, each with its keys
//! checked and, when the inventory carries it, the script's text.

use super::*;

impl Resolver<'_> {
    pub(super) fn checks(&mut self, node: &Node) -> Vec<CheckPlan> {
        let key = "hactl_checks";
        let Some(entries) = node.as_map() else {
            self.err_at(
                node,
                key,
                "must map check names to {script, interval, weight, ...}".into(),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let Some(fields) = v.as_map() else {
                self.err_at(
                    v,
                    key,
                    format!("check `{}` must be a mapping with a script", k.name),
                );
                continue;
            };
            for (fk, _) in fields {
                if !CHECK_KEYS.contains(&fk.name.as_str()) {
                    let hint = did_you_mean(&fk.name, CHECK_KEYS);
                    self.err(
                        Some(fk.origin.clone()),
                        key,
                        format!("check `{}` has an unknown key `{}`{hint}", k.name, fk.name),
                    );
                }
            }
            if !is_token(&k.name) {
                self.err(
                    Some(k.origin.clone()),
                    key,
                    format!(
                        "check name `{}` may only hold letters, digits, `_`, `-` and `.`",
                        k.name
                    ),
                );
                continue;
            }
            let script = match v.get("script").and_then(Node::as_str) {
                Some(s) if !s.trim().is_empty() && !s.contains(['"', '\n', '\\']) => s.to_string(),
                _ => {
                    self.err_at(v, key, format!("check `{}` needs a script (a command line without quotes or backslashes)", k.name));
                    continue;
                }
            };
            let mut num = |field: &str, lo: i64, hi: i64| -> Option<i64> {
                let n = v.get(field)?;
                match n.value {
                    Value::Int(i) if (lo..=hi).contains(&i) => Some(i),
                    _ => {
                        self.err_at(
                            n,
                            key,
                            format!(
                                "check `{}`: {field} must be an integer from {lo} to {hi}",
                                k.name
                            ),
                        );
                        None
                    }
                }
            };
            let interval = num("interval", 1, 3600).unwrap_or(2) as u32;
            let timeout = num("timeout", 1, 3600).map(|t| t as u32);
            let weight = num("weight", -253, 253).unwrap_or(0) as i32;
            let fall = num("fall", 1, 1000).map(|t| t as u32);
            let rise = num("rise", 1, 1000).map(|t| t as u32);
            let user = match v.get("user") {
                None => None,
                Some(u) => match u.as_str() {
                    Some(name) if is_token(name) => Some(name.to_string()),
                    _ => {
                        self.err_at(
                            u,
                            key,
                            format!("check `{}`: user must be a user name", k.name),
                        );
                        None
                    }
                },
            };
            let content = match v.get("content") {
                None => None,
                Some(c) => match (c.as_str(), script.starts_with('/')) {
                    (Some(text), true) => Some(text.to_string()),
                    (Some(_), false) => {
                        self.err_at(
                            c,
                            key,
                            format!("check `{}`: content needs an absolute script path", k.name),
                        );
                        None
                    }
                    (None, _) => {
                        self.err_at(
                            c,
                            key,
                            format!("check `{}`: content must be the script's text", k.name),
                        );
                        None
                    }
                },
            };
            out.push(CheckPlan {
                name: k.name.clone(),
                script,
                interval,
                timeout,
                weight,
                fall,
                rise,
                user,
                content,
            });
        }
        out
    }
}
