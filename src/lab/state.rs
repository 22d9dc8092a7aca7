//! The lab's record of what it created, written before the things it names
//! exist, so that `down` can undo a lab whose controller crashed halfway
//! through `up`. (`down` also finds the lab's namespaces and links by name,
//! for a state file that never got written.)

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::paths::{state_file, write_if_changed};
use super::{LabError, LabHost, LabName};

/// The state file's format version; bump it when its meaning changes.
const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LabState {
    pub format: u32,
    pub lab: LabName,
    /// The hosts as `up` was asked to build them.
    pub hosts: Vec<LabHost>,
    /// Every network namespace of the lab, the switch first.
    pub namespaces: Vec<String>,
    /// The lab's links in the controller's namespace.
    pub controller_links: Vec<String>,
    /// The namespace holder (sshd) of each host, by host name.
    pub holder_pids: BTreeMap<String, u32>,
}

impl LabState {
    pub fn new(lab: &LabName, hosts: &[LabHost]) -> LabState {
        LabState {
            format: FORMAT,
            lab: lab.clone(),
            hosts: hosts.to_vec(),
            namespaces: Vec::new(),
            controller_links: Vec::new(),
            holder_pids: BTreeMap::new(),
        }
    }

    /// The state file of the lab in `dir`, or `None` when there is none.
    pub fn load(dir: &Path) -> Result<Option<LabState>, LabError> {
        let path = state_file(dir);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LabError::io(&path)(e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| LabError::StateFile { path, source })
    }

    pub fn save(&self, dir: &Path) -> Result<(), LabError> {
        let path = state_file(dir);
        let mut text =
            serde_json::to_string_pretty(self).map_err(|source| LabError::StateFile {
                path: path.clone(),
                source,
            })?;
        text.push('\n');
        write_if_changed(&path, &text, 0o600)?;
        Ok(())
    }

    pub fn record_namespace(&mut self, name: &str) {
        if !self.namespaces.iter().any(|n| n == name) {
            self.namespaces.push(name.to_string());
        }
    }

    pub fn record_controller_link(&mut self, name: &str) {
        if !self.controller_links.iter().any(|n| n == name) {
            self.controller_links.push(name.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn state_round_trips_through_its_file() {
        let dir = std::env::temp_dir().join(format!("hactl-lab-state-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(LabState::load(&dir).unwrap(), None);

        let lab = LabName::new("demo").unwrap();
        let mut state = LabState::new(&lab, &[LabHost::new("lb1", Ipv4Addr::new(10, 0, 0, 1), 24)]);
        state.record_namespace("hl-demo");
        state.record_namespace("hl-demo");
        state.record_controller_link("hl00000000.0");
        state.holder_pids.insert("lb1".to_string(), 4242);
        state.save(&dir).unwrap();
        let loaded = LabState::load(&dir).unwrap().unwrap();
        assert_eq!(loaded, state);
        assert_eq!(loaded.namespaces, ["hl-demo"]);

        fs::write(state_file(&dir), "{ not json").unwrap();
        assert!(matches!(
            LabState::load(&dir),
            Err(LabError::StateFile { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
