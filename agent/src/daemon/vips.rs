//! The virtual addresses on the host: adding and removing them
//! ([`VipDriver`]) and remembering which ones this agent added
//! ([`VipLedger`]), so that the leftovers of a killed agent can be removed
//! when the next one starts, before its first election.
//!
//! The driver speaks rtnetlink ([`crate::netlink`]); both directions are
//! idempotent: adding a present address and removing an absent one succeed.
//!
//! The ledger is one JSON file in the state directory, rewritten atomically
//! (write to a temporary file, rename) on every change. It is written before
//! an address is added, so a crash between the two leaves at worst a record
//! of an address that is not there, which cleanup tolerates.

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
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The record of added VIPs in the state directory.
#[derive(Debug, Clone)]
pub struct VipLedger {
    path: PathBuf,
    entries: Vec<LedgerEntry>,
}

impl VipLedger {
    /// Opens the ledger of `state_dir`, reading what a predecessor left.
    pub fn open(state_dir: &Path) -> Result<VipLedger, VipError> {
        let path = state_dir.join(LEDGER_FILE);
        let entries = match std::fs::read(&path) {
            Ok(bytes) if bytes.is_empty() => Vec::new(),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| VipError::LedgerJson {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(VipError::LedgerRead { path, source }),
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
