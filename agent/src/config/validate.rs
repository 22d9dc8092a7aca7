//! Checks across blocks, once the whole file is parsed.
//!
//! Names that must be unique (instances, scripts, sync groups, virtual
//! servers), names that refer to other blocks (sync group members), and the
//! VRRP rule that one VRID identifies one virtual router per link and address
//! family (RFC 5798 5.2.3), so two instances on one interface and family may
//! not share it. Script security is checked here because it depends on every
//! block that names a script.

use std::collections::HashMap;

use super::error::{Diagnostic, Origin};
use super::parse::{OWNER_PRIORITY, account_exists, did_you_mean};
use super::{Config, Family, GroupMember, HealthCheck, VrrpInstance, VsTarget};

pub fn check(config: &Config, diags: &mut Vec<Diagnostic>) {
    unique(
        "vrrp_instance",
        config
            .vrrp_instances
            .iter()
            .map(|i| (i.name.clone(), &i.origin)),
        diags,
    );
    unique(
        "vrrp_script",
        config
            .vrrp_scripts
            .iter()
            .map(|s| (s.name.clone(), &s.origin)),
        diags,
    );
    unique(
        "vrrp_sync_group",
        config
            .vrrp_sync_groups
            .iter()
            .map(|g| (g.name.clone(), &g.origin)),
        diags,
    );
    unique(
        "virtual_server",
        config.virtual_servers.iter().map(|v| match &v.target {
            VsTarget::Inet { .. } => (format!("{} {}", v.target, v.protocol), &v.origin),
            _ => (v.target.to_string(), &v.origin),
        }),
        diags,
    );
    unique(
        "virtual_server_group",
        config
            .virtual_server_groups
            .iter()
            .map(|g| (g.name.clone(), &g.origin)),
        diags,
    );
    groups(config, diags);
    vrids(config, diags);
    sync_groups(config, diags);
    owner_weights(config, diags);
    script_security(config, diags);
}

/// `virtual_server group NAME` names a defined group whose addresses are
/// of its real servers' family.
fn groups(config: &Config, diags: &mut Vec<Diagnostic>) {
    let names: Vec<&str> = config
        .virtual_server_groups
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    for v in &config.virtual_servers {
        let VsTarget::Group { name } = &v.target else {
            continue;
        };
        let Some(group) = config
            .virtual_server_groups
            .iter()
            .find(|g| &g.name == name)
        else {
            let mut message =
                format!("virtual_server group '{name}' names no virtual_server_group");
            if let Some(guess) = did_you_mean(name, &names) {
                message.push_str(&format!("; did you mean '{guess}'?"));
            }
            diags.push(Diagnostic::error(&v.origin, message));
            continue;
        };
        let Some(family) = v.real_servers.first().map(|r| Family::of(&r.address)) else {
            continue;
        };
        for m in &group.members {
            if let GroupMember::Inet { first, .. } = m
                && Family::of(first) != family
            {
                diags.push(Diagnostic::error(
                    &v.origin,
                    format!(
                        "virtual_server_group '{name}' has {first} ({}) but the real servers are {family}",
                        Family::of(first)
                    ),
                ));
            }
        }
    }
}

fn unique<'a>(
    what: &str,
    items: impl Iterator<Item = (String, &'a Origin)>,
    diags: &mut Vec<Diagnostic>,
) {
    let mut seen: HashMap<String, &Origin> = HashMap::new();
    for (name, origin) in items {
        if let Some(first) = seen.get(&name) {
            diags.push(Diagnostic::error(
                origin,
                format!("{what} '{name}' is already defined at {first}"),
            ));
        } else {
            seen.insert(name, origin);
        }
    }
}

/// RFC 5798 5.2.3: the VRID identifies the virtual router on its LAN, per
/// address family (IPv4 and IPv6 routers are separate).
fn vrids(config: &Config, diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<(&str, Family, u8), (&str, &Origin)> = HashMap::new();
    for i in &config.vrrp_instances {
        let key = (i.interface.as_str(), i.family, i.virtual_router_id);
        match seen.get(&key) {
            Some((other, origin)) if *other != i.name => diags.push(Diagnostic::error(
                &i.vrid_origin,
                format!(
                    "VRID {} on {} ({}) is already used by vrrp_instance '{other}' at {origin}",
                    i.virtual_router_id, i.interface, i.family
                ),
            )),
            Some(_) => {}
            None => {
                seen.insert(key, (&i.name, &i.vrid_origin));
            }
        }
    }
}

fn sync_groups(config: &Config, diags: &mut Vec<Diagnostic>) {
    let names: Vec<&str> = config
        .vrrp_instances
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    let mut member_of: HashMap<&str, &str> = HashMap::new();
    for g in &config.vrrp_sync_groups {
        for m in &g.group {
            if !names.contains(&m.name.as_str()) {
                let mut message = format!(
                    "vrrp_sync_group '{}' names no vrrp_instance '{}'",
                    g.name, m.name
                );
                if let Some(guess) = did_you_mean(&m.name, &names) {
                    message.push_str(&format!("; did you mean '{guess}'?"));
                }
                diags.push(Diagnostic::error(&m.origin, message));
            } else if let Some(other) = member_of.insert(&m.name, &g.name)
                && other != g.name
            {
                diags.push(Diagnostic::error(
                    &m.origin,
                    format!(
                        "vrrp_instance '{}' is already in vrrp_sync_group '{other}'",
                        m.name
                    ),
                ));
            }
        }
        if g.group.len() == 1 {
            diags.push(Diagnostic::warning(
                &g.origin,
                format!("vrrp_sync_group '{}' has a single instance", g.name),
            ));
        }
    }
    // keepalived ignores tracking weights of synced instances: the group
    // moves as one, so a weight would move only one of them.
    for i in &config.vrrp_instances {
        if member_of.contains_key(i.name.as_str()) && has_weights(config, i) {
            diags.push(Diagnostic::warning(
                &i.origin,
                format!(
                    "tracking weights of vrrp_instance '{}' are ignored in a sync group, as keepalived does",
                    i.name
                ),
            ));
        }
    }
}

/// Whether any tracked script or interface of `i` moves its priority.
fn has_weights(config: &Config, i: &VrrpInstance) -> bool {
    let script_weight = |name: &str| {
        config
            .vrrp_scripts
            .iter()
            .find(|s| s.name == name)
            .map_or(0, |s| s.weight)
    };
    i.track_script
        .iter()
        .any(|t| t.weight.unwrap_or_else(|| script_weight(&t.name)) != 0)
        || i.track_interface
            .iter()
            .any(|t| t.weight.is_some_and(|w| w != 0))
}

/// RFC 5798 6.1: the address owner always has priority 255, so tracking
/// cannot lower it; keepalived ignores the weights.
fn owner_weights(config: &Config, diags: &mut Vec<Diagnostic>) {
    for i in &config.vrrp_instances {
        if i.priority == OWNER_PRIORITY && has_weights(config, i) {
            diags.push(Diagnostic::warning(
                &i.origin,
                format!(
                    "tracking weights of vrrp_instance '{}' do not apply to the address owner \
                     (priority 255), as in keepalived",
                    i.name
                ),
            ));
        }
    }
}

/// keepalived runs scripts as root and complains unless
/// `enable_script_security` is set; with it set and no `script_user` it
/// needs the user `keepalived_script` to exist.
fn script_security(config: &Config, diags: &mut Vec<Diagnostic>) {
    let first_script = config
        .vrrp_scripts
        .first()
        .map(|s| &s.origin)
        .or_else(|| {
            config
                .vrrp_instances
                .iter()
                .find(|i| {
                    i.notify_master.is_some()
                        || i.notify_backup.is_some()
                        || i.notify_fault.is_some()
                        || i.notify_stop.is_some()
                        || i.notify.is_some()
                })
                .map(|i| &i.origin)
        })
        .or_else(|| {
            config
                .vrrp_sync_groups
                .iter()
                .find(|g| {
                    g.notify_master.is_some()
                        || g.notify_backup.is_some()
                        || g.notify_fault.is_some()
                        || g.notify.is_some()
                })
                .map(|g| &g.origin)
        })
        .or_else(|| {
            config
                .virtual_servers
                .iter()
                .find(|v| {
                    v.quorum_up.is_some()
                        || v.quorum_down.is_some()
                        || v.real_servers.iter().any(|r| {
                            r.notify_up.is_some()
                                || r.notify_down.is_some()
                                || r.checks
                                    .iter()
                                    .any(|c| matches!(c, HealthCheck::Misc { .. }))
                        })
                })
                .map(|v| &v.origin)
        });
    let Some(origin) = first_script else {
        return;
    };
    let g = &config.global_defs;
    if !g.enable_script_security {
        diags.push(Diagnostic::warning(
            origin,
            "scripts are configured but global_defs has no enable_script_security",
        ));
    } else if g.script_user.is_none() && !account_exists("/etc/passwd", "keepalived_script") {
        diags.push(Diagnostic::error(
            origin,
            "enable_script_security without script_user needs the user 'keepalived_script', \
             which does not exist on this host",
        ));
    }
}
