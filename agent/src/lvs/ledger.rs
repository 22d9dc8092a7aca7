//! Which IPVS services this agent created: `ipvs.json` in the state
//! directory, beside the VIP ledger and written the same way (atomically,
//! before the service is created). Shutdown deletes exactly these, and a
//! restarted agent adopts them: a service that was in the kernel before
//! the agent came is never in it, so it is never deleted.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::daemon::vips::save_json;
use crate::ipvs::ServiceKey;

/// File name of the ledger inside the state directory.
pub const LEDGER_FILE: &str = "ipvs.json";

#[derive(Debug, Error)]
pub enum LedgerError {
    #[error("cannot read the ipvs ledger {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the ipvs ledger {path} is not valid json")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write the ipvs ledger {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct ServiceLedger {
    path: PathBuf,
    owned: BTreeSet<ServiceKey>,
}

impl ServiceLedger {
    pub fn open(state_dir: &Path) -> Result<ServiceLedger, LedgerError> {
        let path = state_dir.join(LEDGER_FILE);
        let owned = match std::fs::read(&path) {
            Ok(bytes) if bytes.is_empty() => BTreeSet::new(),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| LedgerError::Json {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeSet::new(),
            Err(source) => return Err(LedgerError::Read { path, source }),
        };
        Ok(ServiceLedger { path, owned })
    }

    pub fn owned(&self) -> &BTreeSet<ServiceKey> {
        &self.owned
    }

    /// Records a service about to be created.
    pub fn record(&mut self, key: ServiceKey) -> Result<(), LedgerError> {
        if self.owned.insert(key) {
            self.save()?;
        }
        Ok(())
    }

    /// Forgets a service that was deleted (or is gone).
    pub fn forget(&mut self, key: &ServiceKey) -> Result<(), LedgerError> {
        if self.owned.remove(key) {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<(), LedgerError> {
        save_json(&self.path, &self.owned).map_err(|source| LedgerError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Family, Protocol};

    #[test]
    fn records_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("hactl-ipvs-ledger-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = ServiceKey::Inet {
            protocol: Protocol::Tcp,
            address: "10.0.0.50".parse().expect("ip"),
            port: 80,
        };
        let b = ServiceKey::Fwmark {
            family: Family::Ipv4,
            mark: 7,
        };
        let mut ledger = ServiceLedger::open(&dir).expect("open");
        ledger.record(a).expect("record");
        ledger.record(b).expect("record");
        ledger.forget(&a).expect("forget");
        let again = ServiceLedger::open(&dir).expect("reopen");
        assert_eq!(again.owned(), &BTreeSet::from([b]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
