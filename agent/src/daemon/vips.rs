//! The virtual addresses on the host: adding and removing them
//! ([`VipDriver`]) and remembering which ones this agent added
//! ([`VipLedger`]), so that the leftovers of a killed agent can be removed
//! when the next one starts, before its first election.
//!
//! The driver speaks rtnetlink ([`crate::netlink`]); both directions are
//! idempotent: adding a present address and removing an absent one succeed.
//!
//! The ledger is one JSON file in the state directory, rewritten atomically
//! (write to a temporary file, fsync, rename, fsync the directory) on every
//! change. It is written before an address is added, so a crash between the
//! two leaves at worst a record of an address that is not there, which
//! cleanup tolerates. A ledger that is not valid JSON anyway (a disk that
//! lied, a hand edit) does not stop the agent (issue 14): every entry that
//! can still be read is kept, so its address is cleaned up, the unreadable
//! rest is logged, and the file is kept aside as `vips.json.corrupt`.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{IpPrefix, VirtualAddress};
use crate::netlink::{Netlink, NetlinkError, Scope, Vip};

/// File name of the ledger inside the state directory.
pub const LEDGER_FILE: &str = "vips.json";

#[derive(Debug, Error)]
pub enum VipError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("the vip ledger names an invalid address {address:?}")]
    LedgerAddress { address: String },
    #[error("cannot write the vip ledger {path}")]
    LedgerWrite {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the vip ledger {path}")]
    LedgerRead {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the vip ledger {path} is not valid json")]
    LedgerJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// One address this agent put on an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub interface: String,
    /// `ADDR/LEN`.
    pub address: String,
}

/// Adds and removes VIPs over rtnetlink, in the namespace it was opened in.
#[derive(Debug)]
pub struct VipDriver {
    netlink: Netlink,
}

impl VipDriver {
    /// Opens the netlink socket; needs a running tokio runtime.
    pub fn open() -> Result<VipDriver, VipError> {
        Ok(VipDriver {
            netlink: Netlink::open()?,
        })
    }

    /// Puts `vip` on `interface` (prefix, brd, scope and label as configured).
    pub async fn add(&self, interface: &str, vip: &VirtualAddress) -> Result<(), VipError> {
        let mut request = Vip::with_prefix(vip.address.addr, vip.address.len);
        if let Some(IpAddr::V4(brd)) = vip.brd {
            request.broadcast = Some(brd);
        }
        if let Some(scope) = &vip.scope {
            // The config parser accepts ip-address(8) names only; anything
            // else would have been refused there.
            request.scope = scope.parse().unwrap_or(Scope::Global);
        }
        request.label.clone_from(&vip.label);
        self.netlink.add_address(interface, &request).await?;
        Ok(())
    }

    /// Takes `address` (`ADDR/LEN`) off `interface`; absent is fine, and so
    /// is an interface that no longer exists (the address went with it).
    pub async fn remove(&self, interface: &str, address: &str) -> Result<(), VipError> {
        let prefix: IpPrefix = address.parse().map_err(|_| VipError::LedgerAddress {
            address: address.to_owned(),
        })?;
        let vip = Vip::with_prefix(prefix.addr, prefix.len);
        match self.netlink.remove_address(interface, &vip).await {
            Ok(_) | Err(NetlinkError::NoSuchInterface { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `address` is on `interface` now.
    pub async fn present(&self, interface: &str, address: IpAddr) -> bool {
        self.netlink
            .has_address(interface, address)
            .await
            .unwrap_or(false)
    }

    pub fn netlink(&self) -> &Netlink {
        &self.netlink
    }
}

/// Writes `value` as JSON to `path` atomically: a temporary file beside
/// it, then a rename, so a crash leaves the old file or the new one.
pub(crate) fn save_json(path: &Path, value: &impl Serialize) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(value)?;
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&text)?;
        // The data is on disk before the name points at it: a power loss
        // after the rename cannot leave an empty or partial ledger.
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// What can still be read of a ledger that is not valid JSON: every
/// `{...}` object that is a whole entry with a valid address, and how many
/// bytes were not part of such an entry.
fn salvage(text: &str) -> (Vec<LedgerEntry>, usize) {
    let mut entries = Vec::new();
    let mut used = 0;
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let object = &rest[open..=open + close];
        if let Ok(entry) = serde_json::from_str::<LedgerEntry>(object)
            && entry.address.parse::<IpPrefix>().is_ok()
            && !entry.interface.is_empty()
        {
            used += object.len();
            if !entries.contains(&entry) {
                entries.push(entry);
            }
        }
        rest = &rest[open + close + 1..];
    }
    (entries, text.len().saturating_sub(used))
}

/// The record of added VIPs in the state directory.
#[derive(Debug, Clone)]
pub struct VipLedger {
    path: PathBuf,
    entries: Vec<LedgerEntry>,
}

impl VipLedger {
    /// Opens the ledger of `state_dir`, reading what a predecessor left. A
    /// corrupt ledger is recovered (see the module doc); `log` says what was
    /// kept and what was lost.
    pub fn open(state_dir: &Path, log: fn(&str)) -> Result<VipLedger, VipError> {
        let path = state_dir.join(LEDGER_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(VipError::LedgerRead { path, source }),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(VipLedger {
                path,
                entries: Vec::new(),
            });
        }
        let parsed = serde_json::from_slice::<Vec<LedgerEntry>>(&bytes);
        let entries = match parsed {
            Ok(entries) => entries,
            Err(e) => {
                let text = String::from_utf8_lossy(&bytes);
                let (entries, unread) = salvage(&text);
                let aside = path.with_extension("json.corrupt");
                let kept = std::fs::rename(&path, &aside).map_or_else(
                    |e| format!("could not keep it aside ({e})"),
                    |()| format!("kept as {}", aside.display()),
                );
                log(&format!(
                    "the vip ledger {} is corrupt ({e}): recovered {} entr{} ({}), {unread} of {} byte(s) were not part of one; {kept}",
                    path.display(),
                    entries.len(),
                    if entries.len() == 1 { "y" } else { "ies" },
                    entries
                        .iter()
                        .map(|e| format!("{} on {}", e.address, e.interface))
                        .collect::<Vec<_>>()
                        .join(", "),
                    bytes.len(),
                ));
                let ledger = VipLedger { path, entries };
                ledger.save()?;
                return Ok(ledger);
            }
        };
        Ok(VipLedger { path, entries })
    }

    pub fn entries(&self) -> &[LedgerEntry] {
        &self.entries
    }

    /// Records an address about to be added.
    pub fn record(&mut self, entry: LedgerEntry) -> Result<(), VipError> {
        if !self.entries.contains(&entry) {
            self.entries.push(entry);
            self.save()?;
        }
        Ok(())
    }

    /// Forgets an address that was removed.
    /// Records `entries` with one write of the ledger (a batch of takeovers).
    pub fn record_many(&mut self, entries: &[LedgerEntry]) -> Result<(), VipError> {
        let before = self.entries.len();
        for e in entries {
            if !self.entries.contains(e) {
                self.entries.push(e.clone());
            }
        }
        if self.entries.len() != before {
            self.save()?;
        }
        Ok(())
    }

    /// Forgets `entries` with one write of the ledger.
    pub fn forget_many(&mut self, entries: &[LedgerEntry]) -> Result<(), VipError> {
        let before = self.entries.len();
        self.entries.retain(|e| !entries.contains(e));
        if self.entries.len() != before {
            self.save()?;
        }
        Ok(())
    }

    pub fn forget(&mut self, entry: &LedgerEntry) -> Result<(), VipError> {
        let before = self.entries.len();
        self.entries.retain(|e| e != entry);
        if self.entries.len() != before {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<(), VipError> {
        save_json(&self.path, &self.entries).map_err(|source| VipError::LedgerWrite {
            path: self.path.clone(),
            source,
        })
    }

    /// Removes every recorded address and empties the ledger; returns what
    /// was removed. An address that cannot be removed stays recorded.
    pub async fn clean(&mut self, driver: &VipDriver) -> Result<Vec<LedgerEntry>, VipError> {
        let mut removed = Vec::new();
        let mut first_error = None;
        for entry in self.entries.clone() {
            match driver.remove(&entry.interface, &entry.address).await {
                Ok(()) => {
                    self.forget(&entry)?;
                    removed.push(entry);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hactl-ledger-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch");
        dir
    }

    fn quiet(_: &str) {}

    /// Issue 14: a corrupt vips.json no longer stops the agent: the
    /// entries that can be read are kept (their addresses get cleaned up),
    /// the file is kept aside, and the ledger is whole again.
    #[test]
    fn a_corrupt_ledger_is_recovered() {
        let cases: &[(&str, &[&str])] = &[
            // Cut short by a crash mid-write (the old, fsync-less code).
            (
                r#"[{"interface":"eth0","address":"10.0.0.50/24"},{"interface":"eth0","addr"#,
                &["10.0.0.50/24"],
            ),
            // Garbage around good entries; a bad address is dropped.
            (
                "\0\0junk{\"interface\":\"eth1\",\"address\":\"10.0.1.5/24\"} {\"interface\":\"eth1\",\"address\":\"not-an-ip\"}]",
                &["10.0.1.5/24"],
            ),
            ("{{{{", &[]),
            ("\u{1}\u{2}", &[]),
        ];
        for (i, (text, want)) in cases.iter().enumerate() {
            let dir = scratch(&i.to_string());
            std::fs::write(dir.join(LEDGER_FILE), text).expect("write");
            let ledger = VipLedger::open(&dir, quiet).expect("recovers");
            let got: Vec<&str> = ledger
                .entries()
                .iter()
                .map(|e| e.address.as_str())
                .collect();
            assert_eq!(&got, want, "{text:?}");
            assert!(dir.join("vips.json.corrupt").exists());
            // What was rewritten reads back cleanly.
            let again = VipLedger::open(&dir, |l| panic!("logged again: {l}")).expect("reopen");
            assert_eq!(again.entries(), ledger.entries());
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn a_good_ledger_round_trips_through_fsynced_saves() {
        let dir = scratch("good");
        let mut ledger = VipLedger::open(&dir, quiet).expect("empty");
        let entry = LedgerEntry {
            interface: "eth0".into(),
            address: "10.0.0.9/24".into(),
        };
        ledger.record(entry.clone()).expect("record");
        assert!(!dir.join("vips.json.tmp").exists());
        let read = VipLedger::open(&dir, |l| panic!("{l}")).expect("read");
        assert_eq!(read.entries(), [entry]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
