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
            if !self.rule(
                Some(k.origin.clone()),
                key,
                &format!("check name {:?}", k.name),
                names::word(&k.name, 64),
            ) {
                continue;
            }
            let script = match v.get("script").and_then(Node::as_str) {
                Some(s) => {
                    let at = v.get("script").unwrap_or(v);
                    let what = format!("check `{}`: script", k.name);
                    if !self.rule(Some(at.origin.clone()), key, &what, names::command_line(s)) {
                        continue;
                    }
                    s.to_string()
                }
                None => {
                    self.err_at(
                        v,
                        key,
                        format!("check `{}` needs a script (a command line)", k.name),
                    );
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
                    Some(name) if names::user(name).is_ok() => Some(name.to_string()),
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
                Some(c) => match (c.as_str(), names::content_path(&script)) {
                    (Some(text), Ok(())) => Some(text.to_string()),
                    (Some(_), Err(rule)) => {
                        let at = v.get("script").unwrap_or(c);
                        self.err_at(at, key, format!("check `{}`: {rule}", k.name));
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
