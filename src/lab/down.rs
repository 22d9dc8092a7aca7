//! `lab down`: remove everything a lab made, from its state file and from
//! the names a lab's namespaces and links must have, so it also works after
//! the controller died halfway through `up` or lost the state file.
//! Processes are ended by PID, only those inside the lab's namespaces.

use std::collections::BTreeSet;
use std::fs;

use super::state::LabState;
use super::system::{
    ip, is_alive, links_with_prefix, namespace_exists, namespace_pids, namespaces, run,
    runs_under_a_host_init, terminate,
};
use super::{DownReport, Lab, LabError, names};

impl Lab {
    /// Removes the lab: its processes, namespaces, links and state directory.
    /// Removing a lab that does not exist changes nothing.
    pub fn down(&self) -> Result<DownReport, LabError> {
        let mut removed = Vec::new();
        let state = match LabState::load(&self.dir) {
            Ok(state) => state,
            // An unreadable record must not keep the lab alive: the names
            // below still find it.
            Err(LabError::StateFile { .. }) => None,
            Err(error) => return Err(error),
        };

        let mut lab_namespaces: BTreeSet<String> = namespaces()?
            .into_iter()
            .filter(|n| names::is_lab_namespace(&self.name, n))
            .collect();
        let mut links: BTreeSet<String> = links_with_prefix(&names::link_prefix(&self.name))?
            .into_iter()
            .collect();
        // The record only adds names the lab could have made: a damaged or
        // foreign state file cannot make down delete anything else.
        if let Some(state) = &state {
            let prefix = names::link_prefix(&self.name);
            lab_namespaces.extend(
                state
                    .namespaces
                    .iter()
                    .filter(|n| names::is_lab_namespace(&self.name, n))
                    .cloned(),
            );
            links.extend(
                state
                    .controller_links
                    .iter()
                    .filter(|l| l.starts_with(&prefix))
                    .cloned(),
            );
        }
        lab_namespaces.retain(|n| namespace_exists(n));

        // Every process inside the lab: the sshd holders and whatever ran
        // there since (agents, keepalived, sessions).
        let mut pids = BTreeSet::new();
        for namespace in &lab_namespaces {
            pids.extend(namespace_pids(namespace)?);
        }
        let pids: Vec<u32> = pids.into_iter().filter(|&p| is_alive(p)).collect();
        // A host's own processes first, each with its grace: when a host's
        // PID 1 (its sshd) or the holder above it ends, the kernel SIGKILLs
        // whatever still runs in the host, and an agent must get its SIGTERM.
        let (guests, holders): (Vec<u32>, Vec<u32>) =
            pids.iter().partition(|&&p| runs_under_a_host_init(p));
        let mut survivors = terminate(&guests);
        survivors.extend(terminate(&holders));
        if !pids.is_empty() {
            removed.push(format!("ended {} processes", pids.len() - survivors.len()));
        }

        for link in &links {
            match run(ip(None).args(["link", "del", link])) {
                Ok(_) => removed.push(format!("deleted link {link}")),
                Err(LabError::CommandFailed { stderr, .. })
                    if stderr.contains("Cannot find device") => {}
                Err(error) => return Err(error),
            }
        }
        for namespace in &lab_namespaces {
            run(ip(None).args(["netns", "del", namespace]))?;
            removed.push(format!("deleted network namespace {namespace}"));
        }
        if !survivors.is_empty() {
            return Err(LabError::ProcessesSurvived {
                lab: self.name.to_string(),
                pids: survivors,
            });
        }
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir).map_err(LabError::io(&self.dir))?;
            removed.push(format!("removed {}", self.dir.display()));
        }
        Ok(DownReport {
            lab: self.name.clone(),
            removed,
        })
    }
}
