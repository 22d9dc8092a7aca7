//! From the keepalived.conf model to what the running daemon needs: the
//! state machine's [`InstanceParams`], the router's sync groups, and for each
//! instance its wire settings ([`WireSettings`]: interface, family,
//! destinations, authentication, VIPs, notify scripts).
//!
//! The conversion is pure: the one thing that depends on the host, the
//! interface's primary address (the advert source and tie-breaker), is
//! passed in by the caller. That keeps it table-testable without sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use thiserror::Error;

use crate::config::{self, Config, Family, VirtualAddress, VrrpInstance};
use crate::instance::{InstanceParams, Track, Version};
use crate::packet::{self, Advertisement, Auth, AuthPass};
use crate::router::SyncGroup;

/// IPv4 multicast group of VRRP (RFC 5798 5.1.1.2).
pub const DEFAULT_GROUP_V4: Ipv4Addr = packet::VRRP_MULTICAST_V4;
/// IPv6 multicast group of VRRP (RFC 5798 5.1.2.2).
pub const DEFAULT_GROUP_V6: Ipv6Addr = packet::VRRP_MULTICAST_V6;

/// Tracked-object names of the instance's own interface are prefixed so they
/// cannot collide with a vrrp_script of the same name.
pub const INTERFACE_TRACK_PREFIX: &str = "interface ";

/// Everything about one instance that is not protocol state.
#[derive(Debug, Clone, PartialEq)]
pub struct WireSettings {
    pub name: String,
    pub interface: String,
    pub family: Family,
    pub vrid: u8,
    pub version: Version,
    /// Where adverts go: the multicast group, or each unicast peer.
    pub destinations: Vec<IpAddr>,
    /// The advert source (the instance's primary address).
    pub source: IpAddr,
    pub auth: Auth,
    pub vips: Vec<VirtualAddress>,
    pub advert_interval: Duration,
    pub notify: NotifyScripts,
    pub garp: GarpSettings,
    /// `use_vmac`: the macvlan that carries the VIPs.
    pub vmac: Option<Vmac>,
    /// `smtp_alert` (or the global default): email each transition.
    pub smtp_alert: bool,
}

/// A VRRP virtual MAC interface (RFC 5798 7.3: 00-00-5E-00-01-{VRID} for
/// IPv4, 00-00-5E-00-02-{VRID} for IPv6), a macvlan on the instance's
/// interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vmac {
    /// `use_vmac NAME`, else keepalived's `vrrp.VRID`.
    pub name: String,
    pub mac: [u8; 6],
}

/// Gratuitous ARP / unsolicited NA timing of a new master
/// (keepalived.conf(5) `garp_master_*`, defaults 5 s, 5 and off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpSettings {
    /// Second burst this long after becoming master; zero: none.
    pub delay: Duration,
    /// Announcements per VIP in each burst.
    pub repeat: u32,
    /// Repeat a burst this often while master.
    pub refresh: Option<Duration>,
}

/// The notify commands of an instance or sync group (keepalived.conf(5)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyScripts {
    pub master: Option<String>,
    pub backup: Option<String>,
    pub fault: Option<String>,
    pub stop: Option<String>,
    pub generic: Option<String>,
}

/// The daemon's plan for one config.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub params: Vec<InstanceParams>,
    pub wire: Vec<WireSettings>,
    pub sync_groups: Vec<SyncGroup>,
    /// Group notify scripts, by group name.
    pub group_notify: Vec<(String, NotifyScripts)>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum GlueError {
    #[error("instance {name}: interface {interface} has no {family} address to send adverts from")]
    NoSource {
        name: String,
        interface: String,
        family: Family,
    },
    #[error("instance {name}: auth type AH is not supported, use PASS")]
    AuthAh { name: String },
}

/// Builds the plan. `primary` answers the interface's primary address of a
/// family (IPv4: its first address; IPv6: its link-local address).
pub fn plan(
    config: &Config,
    primary: &dyn Fn(&str, Family) -> Option<IpAddr>,
) -> Result<Plan, GlueError> {
    let mut params = Vec::new();
    let mut wire = Vec::new();
    for instance in &config.vrrp_instances {
        let settings = wire_settings(config, instance, primary)?;
        params.push(instance_params(config, instance, settings.source));
        wire.push(settings);
    }
    let sync_groups = config
        .vrrp_sync_groups
        .iter()
        .map(|g| SyncGroup {
            name: g.name.clone(),
            members: g.group.iter().map(|n| n.name.clone()).collect(),
        })
        .collect();
    let group_notify = config
        .vrrp_sync_groups
        .iter()
        .map(|g| {
            let scripts = NotifyScripts {
                master: g.notify_master.clone(),
                backup: g.notify_backup.clone(),
                fault: g.notify_fault.clone(),
                stop: None,
                generic: g.notify.clone(),
            };
            (g.name.clone(), scripts)
        })
        .collect();
    Ok(Plan {
        params,
        wire,
        sync_groups,
        group_notify,
    })
}

fn version_of(instance: &VrrpInstance) -> Version {
    if instance.version == 3 || instance.family == Family::Ipv6 {
        Version::V3
    } else {
        Version::V2
    }
}

/// The state machine's view of one `vrrp_instance`.
pub fn instance_params(config: &Config, instance: &VrrpInstance, source: IpAddr) -> InstanceParams {
    let mut tracks = Vec::new();
    // keepalived: the instance's own interface going down means FAULT
    // unless dont_track_primary.
    if !instance.dont_track_primary {
        tracks.push(Track {
            name: format!("{INTERFACE_TRACK_PREFIX}{}", instance.interface),
            weight: 0,
        });
    }
    for t in &instance.track_interface {
        tracks.push(Track {
            name: format!("{INTERFACE_TRACK_PREFIX}{}", t.name),
            weight: t.weight.unwrap_or(0),
        });
    }
    for t in &instance.track_script {
        let script = config.vrrp_scripts.iter().find(|s| s.name == t.name);
        let weight = t.weight.unwrap_or(script.map_or(0, |s| s.weight));
        // keepalived.conf(5) `weight W reverse`: the priority falls while the
        // script is up and rises while it is down. The runner reports the
        // inverted status ([`crate::track`]), so the weight changes sign.
        let reverse = script.is_some_and(|s| s.weight_reverse);
        tracks.push(Track {
            name: t.name.clone(),
            weight: if reverse { -weight } else { weight },
        });
    }
    InstanceParams {
        name: instance.name.clone(),
        vrid: instance.virtual_router_id,
        version: version_of(instance),
        base_priority: instance.priority,
        advert_interval: instance.advert_int,
        preempt: !instance.nopreempt,
        preempt_delay: instance.preempt_delay.unwrap_or(Duration::ZERO),
        primary_address: source,
        initial_state: instance.state,
        tracks,
        answer_lower_priority: true,
    }
}

fn wire_settings(
    config: &Config,
    instance: &VrrpInstance,
    primary: &dyn Fn(&str, Family) -> Option<IpAddr>,
) -> Result<WireSettings, GlueError> {
    let family = instance.family;
    let source = instance
        .unicast_src_ip
        .filter(|_| !instance.unicast_peer.is_empty())
        .or(instance.mcast_src_ip)
        .or_else(|| primary(&instance.interface, family))
        .ok_or_else(|| GlueError::NoSource {
            name: instance.name.clone(),
            interface: instance.interface.clone(),
            family,
        })?;
    let destinations = if instance.unicast_peer.is_empty() {
        vec![match family {
            Family::Ipv4 => IpAddr::V4(
                config
                    .global_defs
                    .vrrp_mcast_group4
                    .unwrap_or(DEFAULT_GROUP_V4),
            ),
            Family::Ipv6 => IpAddr::V6(
                config
                    .global_defs
                    .vrrp_mcast_group6
                    .unwrap_or(DEFAULT_GROUP_V6),
            ),
        }]
    } else {
        instance.unicast_peer.clone()
    };
    let version = version_of(instance);
    let auth = match (&instance.authentication, version) {
        (Some(a), Version::V2) => match a.auth_type {
            config::AuthType::Pass => {
                Auth::Pass(AuthPass::truncated(a.auth_pass.expose().as_bytes()))
            }
            config::AuthType::Ah => {
                return Err(GlueError::AuthAh {
                    name: instance.name.clone(),
                });
            }
        },
        _ => Auth::None,
    };
    Ok(WireSettings {
        name: instance.name.clone(),
        interface: instance.interface.clone(),
        family,
        vrid: instance.virtual_router_id,
        version,
        destinations,
        source,
        auth,
        vips: instance.virtual_ipaddress.clone(),
        advert_interval: instance.advert_int,
        notify: NotifyScripts {
            master: instance.notify_master.clone(),
            backup: instance.notify_backup.clone(),
            fault: instance.notify_fault.clone(),
            stop: instance.notify_stop.clone(),
            generic: instance.notify.clone(),
        },
        vmac: instance.use_vmac.as_ref().map(|name| Vmac {
            name: name
                .clone()
                .unwrap_or_else(|| format!("vrrp.{}", instance.virtual_router_id)),
            mac: [
                0x00,
                0x00,
                0x5e,
                0x00,
                if family == Family::Ipv4 { 0x01 } else { 0x02 },
                instance.virtual_router_id,
            ],
        }),
        smtp_alert: instance
            .smtp_alert
            .or(config.global_defs.smtp_alert_vrrp)
            .or(config.global_defs.smtp_alert)
            .unwrap_or(false),
        garp: GarpSettings {
            delay: instance
                .garp_master_delay
                .or(config.global_defs.vrrp_garp_master_delay)
                .unwrap_or(Duration::from_secs(5)),
            repeat: instance
                .garp_master_repeat
                .or(config.global_defs.vrrp_garp_master_repeat)
                .unwrap_or(5)
                .max(1),
            refresh: instance
                .garp_master_refresh
                .or(config.global_defs.vrrp_garp_master_refresh)
                .filter(|d| !d.is_zero()),
        },
    })
}

impl WireSettings {
    /// The advertisement this instance sends with `priority`.
    pub fn advertisement(&self, priority: u8) -> Advertisement {
        let cs = self.advert_interval.as_millis() / 10;
        Advertisement {
            version: self.version,
            vrid: self.vrid,
            priority,
            advert_interval_cs: u16::try_from(cs).unwrap_or(u16::MAX),
            auth: self.auth.clone(),
            addresses: self
                .vips
                .iter()
                .map(|v| v.address.addr)
                .filter(|a| a.is_ipv4() == (self.family == Family::Ipv4))
                .collect(),
        }
    }

    /// The interface a VIP goes on: its own `dev`, else the virtual MAC
    /// interface, else the instance's.
    pub fn vip_interface<'a>(&'a self, vip: &'a VirtualAddress) -> &'a str {
        vip.dev
            .as_deref()
            .or(self.vmac.as_ref().map(|v| v.name.as_str()))
            .unwrap_or(&self.interface)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse_str;

    const ETH0_V4: &str = "10.0.0.1";
    const ETH0_V6: &str = "fe80::1";

    fn plan_of(text: &str) -> Plan {
        let loaded = parse_str(text, Path::new("test.conf")).expect("valid config");
        let primary = |interface: &str, family: Family| match (interface, family) {
            ("eth0", Family::Ipv4) => ETH0_V4.parse().ok(),
            ("eth0", Family::Ipv6) => ETH0_V6.parse().ok(),
            _ => None,
        };
        plan(&loaded.config, &primary).expect("plan")
    }

    fn instance(body: &str) -> String {
        format!(
            "vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 7\n  \
             priority 100\n{body}}}\n"
        )
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    /// One row per conversion rule: config lines -> the fields they set.
    #[test]
    fn conversion_table() {
        struct Row {
            name: &'static str,
            global: &'static str,
            body: &'static str,
            version: Version,
            source: &'static str,
            destinations: &'static [&'static str],
            preempt: bool,
            advert_ms: u64,
        }
        let v4vip = "  virtual_ipaddress {\n    10.0.0.50/24\n  }\n";
        let rows = [
            Row {
                name: "v2 default, multicast 224.0.0.18 from the primary",
                global: "",
                body: "  advert_int 1\n",
                version: Version::V2,
                source: ETH0_V4,
                destinations: &["224.0.0.18"],
                preempt: true,
                advert_ms: 1000,
            },
            Row {
                name: "global group and version",
                global: "  vrrp_mcast_group4 224.0.0.33\n  vrrp_version 3\n",
                body: "  advert_int 0.5\n",
                version: Version::V3,
                source: ETH0_V4,
                destinations: &["224.0.0.33"],
                preempt: true,
                advert_ms: 500,
            },
            Row {
                name: "unicast peers from unicast_src_ip, nopreempt",
                global: "",
                body: "  unicast_src_ip 10.0.0.9\n  unicast_peer {\n    10.0.0.2\n    10.0.0.3\n  }\n  nopreempt\n",
                version: Version::V2,
                source: "10.0.0.9",
                destinations: &["10.0.0.2", "10.0.0.3"],
                preempt: false,
                advert_ms: 1000,
            },
            Row {
                name: "mcast_src_ip overrides the primary",
                global: "",
                body: "  mcast_src_ip 10.0.0.8\n",
                version: Version::V2,
                source: "10.0.0.8",
                destinations: &["224.0.0.18"],
                preempt: true,
                advert_ms: 1000,
            },
        ];
        for row in rows {
            let text = format!(
                "global_defs {{\n{}}}\n{}",
                row.global,
                instance(&format!("{}{v4vip}", row.body))
            );
            let plan = plan_of(&text);
            let (p, w) = (&plan.params[0], &plan.wire[0]);
            assert_eq!(p.version, row.version, "{}", row.name);
            assert_eq!(w.source, ip(row.source), "{}", row.name);
            assert_eq!(p.primary_address, ip(row.source), "{}", row.name);
            let dst: Vec<IpAddr> = row.destinations.iter().map(|d| ip(d)).collect();
            assert_eq!(w.destinations, dst, "{}", row.name);
            assert_eq!(p.preempt, row.preempt, "{}", row.name);
            assert_eq!(
                p.advert_interval,
                Duration::from_millis(row.advert_ms),
                "{}",
                row.name
            );
        }
    }

    #[test]
    fn ipv6_instance_speaks_v3_from_the_link_local_address() {
        let plan = plan_of(&instance(
            "  virtual_ipaddress {\n    2001:db8::50/64\n  }\n",
        ));
        let w = &plan.wire[0];
        assert_eq!((w.version, w.family), (Version::V3, Family::Ipv6));
        assert_eq!(w.source, ip(ETH0_V6));
        assert_eq!(w.destinations, vec![IpAddr::V6(DEFAULT_GROUP_V6)]);
        assert_eq!(w.advertisement(100).addresses, vec![ip("2001:db8::50")]);
    }

    #[test]
    fn tracks_get_the_interface_and_script_weights() {
        let text = format!(
            "vrrp_script chk {{\n  script \"/bin/true\"\n  weight -30\n}}\n\
             vrrp_script other {{\n  script \"/bin/true\"\n  weight 5\n}}\n{}",
            instance(
                "  track_script {\n    chk\n    other weight -7\n  }\n  \
                 virtual_ipaddress {\n    10.0.0.50/24\n  }\n"
            )
        );
        let plan = plan_of(&text);
        let tracks: Vec<(&str, i32)> = plan.params[0]
            .tracks
            .iter()
            .map(|t| (t.name.as_str(), t.weight))
            .collect();
        assert_eq!(tracks, [("interface eth0", 0), ("chk", -30), ("other", -7)]);
    }

    #[test]
    fn reverse_scripts_change_the_weight_sign() {
        let text = format!(
            "vrrp_script chk {{\n  script \"/bin/true\"\n  weight 10 reverse\n}}\n{}",
            instance(
                "  track_script {\n    chk\n  }\n  virtual_ipaddress {\n    10.0.0.50/24\n  }\n"
            )
        );
        let plan = plan_of(&text);
        assert_eq!(plan.params[0].tracks[1].weight, -10);
    }

    #[test]
    fn v2_pass_auth_goes_on_the_wire_and_no_source_is_an_error() {
        let text = instance(
            "  authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }\n  \
             virtual_ipaddress {\n    10.0.0.50/24\n  }\n",
        );
        let planned = plan_of(&text);
        assert_eq!(
            planned.wire[0].auth,
            Auth::Pass(AuthPass::truncated(b"s3cret"))
        );

        let on_eth9 = text.replace("interface eth0", "interface eth9");
        let loaded = parse_str(&on_eth9, Path::new("t.conf")).expect("valid");
        let err = plan(&loaded.config, &|_, _| None).expect_err("no address");
        assert_eq!(
            err.to_string(),
            "instance VI_1: interface eth9 has no IPv4 address to send adverts from"
        );
    }
}
