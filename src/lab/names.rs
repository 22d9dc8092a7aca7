//! How a lab names what it creates. Every name is derived from the lab name
//! alone, so `down` can find a lab's namespaces and links after a crash even
//! when its state file is gone.
//!
//! - switch namespace: `hl-<lab>` (holds the bridges)
//! - host namespaces: `hl-<lab>.<host>`; lab names contain no `.`, so the
//!   prefix `hl-<lab>.` never matches another lab's namespaces
//! - links in the controller's namespace: `hl<tag>.<segment>`, where `<tag>`
//!   is 8 hex digits hashed from the lab name, because interface names are
//!   limited to 15 bytes; each also carries the alias `hactl-lab:<lab>`
//! - inside the switch namespace: bridges `br<segment>`, the controller's
//!   port `c<segment>`, host ports `h<host index>`

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::LabError;

/// The longest lab name: it appears in namespace names and the state path.
pub const MAX_LAB_NAME: usize = 32;

/// A validated lab name: 1 to 32 of `a-z`, `0-9` and `-`, starting with a
/// letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LabName(String);

impl LabName {
    pub fn new(name: &str) -> Result<LabName, LabError> {
        let invalid = |reason| LabError::InvalidName {
            name: name.to_string(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("it is empty"));
        }
        if name.len() > MAX_LAB_NAME {
            return Err(invalid("it is longer than 32 characters"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid("only a-z, 0-9 and - are allowed"));
        }
        if name.starts_with('-') {
            return Err(invalid("it starts with -"));
        }
        Ok(LabName(name.to_string()))
    }

    /// The lab name `hactl lab up FILE` uses: the inventory's file name
    /// without extension, lowercased, other characters turned into `-`,
    /// cut to 32 characters (`inventories/Lab_1.yaml` gives `lab-1`).
    pub fn from_inventory_path(path: &Path) -> Result<LabName, LabError> {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut name: String = stem
            .chars()
            .map(|c| {
                let c = c.to_ascii_lowercase();
                if c.is_ascii_lowercase() || c.is_ascii_digit() {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        name = name.trim_matches('-').to_string();
        name.truncate(MAX_LAB_NAME);
        LabName::new(name.trim_end_matches('-'))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LabName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for LabName {
    type Err = LabError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LabName::new(s)
    }
}

impl TryFrom<String> for LabName {
    type Error = LabError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        LabName::new(&s)
    }
}

impl From<LabName> for String {
    fn from(name: LabName) -> String {
        name.0
    }
}

// ===== derived names =====

pub(crate) fn switch_namespace(lab: &LabName) -> String {
    format!("hl-{lab}")
}

pub(crate) fn host_namespace(lab: &LabName, host: &str) -> String {
    format!("hl-{lab}.{host}")
}

/// Whether a network namespace name belongs to this lab.
pub(crate) fn is_lab_namespace(lab: &LabName, namespace: &str) -> bool {
    let switch = switch_namespace(lab);
    namespace == switch
        || namespace
            .strip_prefix(&switch)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// The prefix of every link the lab puts in the controller's namespace.
pub(crate) fn link_prefix(lab: &LabName) -> String {
    // FNV-1a, 32 bits: stable across releases, unlike std's hasher.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in lab.as_str().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("hl{hash:08x}.")
}

pub(crate) fn controller_link(lab: &LabName, segment: usize) -> String {
    format!("{}{segment}", link_prefix(lab))
}

pub(crate) fn link_alias(lab: &LabName) -> String {
    format!("hactl-lab:{lab}")
}

pub(crate) fn bridge(segment: usize) -> String {
    format!("br{segment}")
}

pub(crate) fn controller_port(segment: usize) -> String {
    format!("c{segment}")
}

pub(crate) fn host_port(host_index: usize) -> String {
    format!("h{host_index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_names_are_validated() {
        for good in ["lab", "a", "prod-2", "0lab", &"x".repeat(32)] {
            assert_eq!(LabName::new(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "-lab",
            "Lab",
            "my.lab",
            "my_lab",
            "a/b",
            &"x".repeat(33),
        ] {
            assert!(LabName::new(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn lab_name_from_inventory_path() {
        let cases = [
            ("inventories/lab.yaml", "lab"),
            ("/etc/ansible/Prod_EU.yml", "prod-eu"),
            ("hosts", "hosts"),
            ("_odd_.yaml", "odd"),
        ];
        for (path, want) in cases {
            let got = LabName::from_inventory_path(Path::new(path)).unwrap();
            assert_eq!(got.as_str(), want, "{path}");
        }
        let long = format!("{}-b.yaml", "a".repeat(31));
        assert_eq!(
            LabName::from_inventory_path(Path::new(&long))
                .unwrap()
                .as_str(),
            "a".repeat(31),
            "a cut that ends in - drops it"
        );
        assert!(LabName::from_inventory_path(Path::new("___.yaml")).is_err());
    }

    #[test]
    fn namespaces_of_one_lab_never_match_another() {
        let a = LabName::new("a").unwrap();
        assert!(is_lab_namespace(&a, "hl-a"));
        assert!(is_lab_namespace(&a, "hl-a.lb1"));
        assert!(is_lab_namespace(&a, &host_namespace(&a, "lb1.example.com")));
        assert!(!is_lab_namespace(&a, "hl-a-b"));
        assert!(!is_lab_namespace(&a, "hl-a-b.lb1"));
        assert!(!is_lab_namespace(&a, "hl-ab"));
        assert!(!is_lab_namespace(&a, "xhl-a"));
    }

    #[test]
    fn controller_links_fit_in_an_interface_name() {
        let a = LabName::new(&"z".repeat(32)).unwrap();
        let b = LabName::new(&"z".repeat(31)).unwrap();
        let link = controller_link(&a, 99);
        assert!(link.len() <= 15, "{link}");
        assert!(link.starts_with(&link_prefix(&a)));
        assert_ne!(link_prefix(&a), link_prefix(&b));
        // FNV-1a("lab"), computed independently; the tag must not change
        // between releases: down relies on it.
        assert_eq!(link_prefix(&LabName::new("lab").unwrap()), "hl626092f4.");
    }
}
