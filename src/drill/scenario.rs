//! The drill scenarios: what each one breaks on which host, how it undoes
//! it, and which RFC 5798 timer bounds the takeover it causes. The
//! commands are data ([`Step`]); `mod.rs` runs them over SSH.
//!
//! | scenario  | fault (on)                         | undo                        | bound                |
//! |-----------|------------------------------------|-----------------------------|----------------------|
//! | graceful  | SIGTERM the agent (master)         | start it                    | Skew_Time            |
//! | kill      | SIGKILL the agent (master)         | start it                    | Master_Down_Interval |
//! | link      | `ip link set IF down` (master)     | `ip link set IF up`         | Master_Down_Interval |
//! | check     | create /run/hactl/fail-CHECK (master) | remove it                | fall x interval + Master_Down_Interval |
//! | drain     | `hactl-agent takeover` (backup)    | `hactl-agent release`       | Skew_Time            |
//! | partition | nft drops VRRP in (backup)         | delete the nft table        | Master_Down_Interval (until two masters) |
//!
//! Skew_Time and Master_Down_Interval are the backup's (RFC 5798 6.1,
//! RFC 3768 6.1), from the plan's priority and advert interval.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hactl_agent::instance::{Version, master_down_interval, skew_time};
use serde::Serialize;

use crate::plan::{CheckPlan, InstancePlan, PairPlan};
use crate::remote_layout as layout;

/// The nftables table a partition drill adds (and the undo deletes).
pub const NFT_TABLE: &str = "hactl_drill";

/// One drill scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    Graceful,
    Kill,
    Link,
    Check,
    Drain,
    Partition,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::Graceful,
        Scenario::Kill,
        Scenario::Link,
        Scenario::Check,
        Scenario::Drain,
        Scenario::Partition,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Graceful => "graceful",
            Scenario::Kill => "kill",
            Scenario::Link => "link",
            Scenario::Check => "check",
            Scenario::Drain => "drain",
            Scenario::Partition => "partition",
        }
    }

    /// Whether the fault is made on the backup (else on the master).
    pub fn on_backup(self) -> bool {
        matches!(self, Scenario::Drain | Scenario::Partition)
    }

    /// Whether the VIP is expected to move to the backup (partition: it is
    /// expected on both).
    pub fn moves_vip(self) -> bool {
        self != Scenario::Partition
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown scenario `{0}` (graceful, kill, link, check, drain, partition)")]
pub struct UnknownScenario(pub String);

impl FromStr for Scenario {
    type Err = UnknownScenario;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.name() == s.trim())
            .ok_or_else(|| UnknownScenario(s.to_string()))
    }
}

/// `graceful,kill` (duplicates dropped, order kept); empty = all.
pub fn parse_list(text: &str) -> Result<Vec<Scenario>, UnknownScenario> {
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let s: Scenario = part.parse()?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if out.is_empty() {
        out = Scenario::ALL.to_vec();
    }
    Ok(out)
}

/// What a drill runs on a host to break or undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Send the agent a signal (`TERM`, `KILL`) without waiting.
    Signal(String),
    /// Wait for a stopping agent to be gone, then start it (a running
    /// agent is left alone).
    RestartAgent,
    /// A command run as root.
    Command(Vec<String>),
}

/// The fault and its undo for one instance of a pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub fault: Step,
    pub undo: Step,
}

/// The tracked check a `check` drill fails: the instance's first tracked
/// check; `None` when it tracks none.
pub fn tracked_check<'a>(pair: &'a PairPlan, instance: &InstancePlan) -> Option<&'a CheckPlan> {
    instance
        .track
        .iter()
        .find_map(|t| pair.checks.iter().find(|c| &c.name == t))
}

/// The steps of `scenario` for `instance`; `Err` with the reason when the
/// scenario does not apply to it.
pub fn plan(
    scenario: Scenario,
    pair: &PairPlan,
    instance: &InstancePlan,
    interface: &str,
) -> Result<Plan, String> {
    let cmd = |argv: &[&str]| Step::Command(argv.iter().map(|s| s.to_string()).collect());
    Ok(match scenario {
        Scenario::Graceful => Plan {
            fault: Step::Signal("TERM".into()),
            undo: Step::RestartAgent,
        },
        Scenario::Kill => Plan {
            fault: Step::Signal("KILL".into()),
            undo: Step::RestartAgent,
        },
        Scenario::Link => Plan {
            fault: cmd(&["ip", "link", "set", interface, "down"]),
            undo: cmd(&["ip", "link", "set", interface, "up"]),
        },
        Scenario::Check => {
            let check = tracked_check(pair, instance)
                .ok_or_else(|| format!("instance {} tracks no check", instance.name))?;
            let flag = layout::check_fail_flag(&check.name);
            Plan {
                fault: cmd(&["touch", &flag]),
                undo: cmd(&["rm", "-f", &flag]),
            }
        }
        Scenario::Drain => {
            if pair.backend != crate::plan::Backend::Agent {
                return Err("drain needs the hactl-agent backend".to_string());
            }
            let control = |verb: &str| {
                cmd(&[
                    layout::AGENT_BIN,
                    verb,
                    "--instance",
                    &instance.name,
                    "--socket",
                    layout::AGENT_SOCKET,
                ])
            };
            Plan {
                fault: control("takeover"),
                undo: control("release"),
            }
        }
        Scenario::Partition => Plan {
            fault: cmd(&["nft", "-f", "-"]),
            // Gone already is fine; failing to delete it is not hidden.
            undo: cmd(&[
                "sh",
                "-c",
                &format!(
                    "nft list table inet {NFT_TABLE} >/dev/null 2>&1 || exit 0; nft delete table inet {NFT_TABLE}"
                ),
            ]),
        },
    })
}

/// The nft script a partition feeds to `nft -f -`: VRRP (IP protocol
/// 112) dropped on input.
pub fn partition_ruleset() -> String {
    format!(
        "add table inet {NFT_TABLE}\n\
         add chain inet {NFT_TABLE} input {{ type filter hook input priority -10 ; policy accept ; }}\n\
         add rule inet {NFT_TABLE} input ip protocol 112 drop\n"
    )
}

/// The RFC bound of the takeover `scenario` causes, for a backup of
/// `backup_priority`.
pub fn bound(
    scenario: Scenario,
    pair: &PairPlan,
    instance: &InstancePlan,
    backup_priority: u8,
) -> Duration {
    let version = if pair.vrrp_version == 3 {
        Version::V3
    } else {
        Version::V2
    };
    let advert = Duration::from_millis(u64::from(instance.advert_int) * 10);
    let skew = skew_time(version, backup_priority, advert);
    let mdi = master_down_interval(version, backup_priority, advert);
    match scenario {
        Scenario::Graceful | Scenario::Drain => skew,
        Scenario::Kill | Scenario::Link | Scenario::Partition => mdi,
        Scenario::Check => {
            let detect = tracked_check(pair, instance).map_or(Duration::ZERO, |c| {
                Duration::from_secs(u64::from(c.interval) * u64::from(c.fall.unwrap_or(1).max(1)))
            });
            detect + mdi
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lists() {
        assert_eq!(
            parse_list("kill, graceful,kill").unwrap(),
            vec![Scenario::Kill, Scenario::Graceful]
        );
        assert_eq!(parse_list("").unwrap(), Scenario::ALL.to_vec());
        assert_eq!(
            parse_list("graceful,reboot"),
            Err(UnknownScenario("reboot".to_string()))
        );
    }

    #[test]
    fn partition_drops_vrrp_in_its_own_table() {
        let rules = partition_ruleset();
        assert!(rules.contains("add table inet hactl_drill"));
        assert!(rules.contains("hook input"));
        assert!(rules.contains("ip protocol 112 drop"));
    }
}
