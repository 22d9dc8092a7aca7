//! Tracked objects: `vrrp_script` runners and interface link state.
//!
//! A vrrp_script (keepalived.conf(5)) runs every `interval`; exit 0 is a
//! success, anything else (or running past `timeout`) a failure. The script
//! goes down after `fall` failures in a row and up again after `rise`
//! successes in a row; each change is reported once to the daemon, which
//! feeds it to the state machine as `TrackChanged` (the weight is applied
//! there). Scripts start up, as the state machine's tracks do.
//!
//! Script security (keepalived's `enable_script_security`, see
//! [`crate::script_security`]): a script whose file, or any directory above
//! it (through symlinks too), is writable by a non-root user is never run
//! and counts as down, so a user who could edit it cannot get code run as
//! root or decide the failover. A command without a path is found in PATH
//! once, and that file is what runs.
//!
//! Interfaces are followed through rtnetlink link notifications; a change
//! of up-and-running is reported like a script's.

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::config::VrrpScript;
use crate::netlink::{LinkEvent, LinkEvents, LinkStates};
use crate::notify::{Outcome, RunAs, run_script, split_command};

/// A tracked object changed: its name as the state machine knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackUpdate {
    pub name: String,
    pub up: bool,
}

/// Rise/fall counting of one script (pure, unit-tested).
///
/// The status starts unknown: the first `rise` successes or `fall`
/// failures in a row settle it and are reported, so a runner started at a
/// reload tells the (kept) instance where the script stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiseFall {
    rise: u32,
    fall: u32,
    up: Option<bool>,
    last: Option<bool>,
    streak: u32,
}

impl RiseFall {
    pub fn new(rise: u32, fall: u32) -> RiseFall {
        RiseFall {
            rise: rise.max(1),
            fall: fall.max(1),
            up: None,
            last: None,
            streak: 0,
        }
    }

    /// Up until known otherwise, like the state machine's tracks.
    pub fn is_up(&self) -> bool {
        self.up.unwrap_or(true)
    }

    /// Records one result; returns the status when it changed or was first
    /// settled.
    pub fn record(&mut self, success: bool) -> Option<bool> {
        if self.up == Some(success) {
            self.streak = 0;
            self.last = Some(success);
            return None;
        }
        if self.last != Some(success) {
            self.streak = 0;
        }
        self.last = Some(success);
        self.streak += 1;
        let needed = if success { self.rise } else { self.fall };
        if self.streak >= needed {
            self.up = Some(success);
            self.streak = 0;
            Some(success)
        } else {
            None
        }
    }
}

pub use crate::script_security::insecure_reason;

/// Runs one vrrp_script forever, reporting status changes.
pub async fn run_vrrp_script(
    script: VrrpScript,
    run_as: Option<RunAs>,
    secure: bool,
    updates: mpsc::Sender<TrackUpdate>,
    log: fn(&str),
) {
    let mut argv = split_command(&script.script);
    let program = argv.first().cloned().unwrap_or_default();
    if secure && let Some(why) = insecure_reason(&program) {
        log(&format!(
            "vrrp_script {}: refused by enable_script_security: {why}",
            script.name
        ));
        let _ = updates
            .send(TrackUpdate {
                name: script.name.clone(),
                up: script.weight_reverse,
            })
            .await;
        return;
    }
    // Run the very file the check above (and `hactl-agent check`) judged,
    // found as execvp finds it.
    if let (Some(first), Some(found)) = (
        argv.first_mut(),
        crate::script_security::resolve_program(&program),
    ) {
        *first = found.to_string_lossy().into_owned();
    }
    // `weight ... reverse`: the state machine sees the opposite status
    // (and the weight with the opposite sign, see crate::glue).
    let reverse = script.weight_reverse;
    let timeout = script.timeout.unwrap_or(script.interval);
    let mut counter = RiseFall::new(script.rise, script.fall);
    let mut ticker = tokio::time::interval(script.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let success = matches!(
            run_script(&argv, run_as, timeout).await,
            Outcome::Exited(Some(0))
        );
        if let Some(up) = counter.record(success) {
            let update = TrackUpdate {
                name: script.name.clone(),
                up: up != reverse,
            };
            if updates.send(update).await.is_err() {
                return;
            }
        }
    }
}

/// Reports the link changes of `interfaces` from the kernel's rtnetlink
/// notifications (`events`, opened before the caller read the initial
/// states, so no change falls between the two); `name_of` maps an interface
/// to its track name. A removed interface counts as down.
pub async fn watch_links(
    events: LinkEvents,
    interfaces: Vec<String>,
    name_of: fn(&str) -> String,
    updates: mpsc::Sender<TrackUpdate>,
) {
    let mut stream = events.transitions(LinkStates::default());
    while let Some(event) = stream.next().await {
        let (name, up) = match &event {
            LinkEvent::Changed(link) => (link.name.as_str(), link.is_up()),
            LinkEvent::Removed { name, .. } => (name.as_str(), false),
        };
        if !interfaces.iter().any(|i| i == name) {
            continue;
        }
        let update = TrackUpdate {
            name: name_of(name),
            up,
        };
        if updates.send(update).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_fall_needs_streaks() {
        let mut rf = RiseFall::new(2, 3);
        assert!(rf.is_up(), "unknown counts as up");
        assert_eq!(rf.record(true), None);
        assert_eq!(rf.record(true), Some(true), "rise successes settle it");
        assert_eq!(rf.record(false), None);
        assert_eq!(rf.record(false), None);
        assert_eq!(rf.record(true), None, "a success breaks the fall streak");
        assert_eq!(rf.record(false), None);
        assert_eq!(rf.record(false), None);
        assert_eq!(rf.record(false), Some(false));
        assert!(!rf.is_up());
        assert_eq!(rf.record(true), None);
        assert_eq!(rf.record(false), None, "a failure breaks the rise streak");
        assert_eq!(rf.record(true), None);
        assert_eq!(rf.record(true), Some(true));
    }

    #[test]
    fn first_failures_settle_down() {
        let mut rf = RiseFall::new(1, 2);
        assert_eq!(rf.record(false), None);
        assert_eq!(rf.record(false), Some(false));
    }
}
