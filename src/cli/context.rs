//! The [`Context`] every command runs against, opened once per run: the
//! global settings, the output, and, on first use, the inventory, its
//! plan, the `--limit` selection, the SSH targets and the async runtime.
//! Commands take their own options beside it; none reads the raw
//! arguments or loads the inventory itself.

use std::cell::OnceCell;
use std::time::Duration;

use crate::inventory::{Inventory, pattern};
use crate::lab::{Lab, LabName, LabPaths, SshIdentity};
use crate::output::Output;
use crate::plan::{self, ClusterPlan, Connection};
use crate::ssh::{HostKeyPolicy, KeyExchange, SshOptions, Target};

use super::config::Settings;
use super::error::Error;

/// The SSH target of a host from its connection and the lab, if any.
pub fn target(host: &str, connection: &Connection, lab: Option<&SshIdentity>) -> Target {
    let mut target = Target::new(host, &connection.address);
    target.port = connection.port;
    target.user = connection.user.clone();
    target.become_ = connection.become_;
    target.common_args = connection.common_args.clone();
    target.identity_file = connection
        .identity_file
        .clone()
        .or_else(|| lab.map(|l| l.private_key.clone()));
    target.known_hosts = lab.map(|l| l.known_hosts.clone());
    target
}

/// One run's settings and what it has loaded so far.
pub struct Context {
    pub settings: Settings,
    pub out: Output,
    inventory: OnceCell<Inventory>,
    plan: OnceCell<ClusterPlan>,
    selection: OnceCell<Option<Vec<String>>>,
    runtime: OnceCell<tokio::runtime::Runtime>,
}

impl Context {
    pub fn new(settings: Settings, out: Output) -> Context {
        Context {
            settings,
            out,
            inventory: OnceCell::new(),
            plan: OnceCell::new(),
            selection: OnceCell::new(),
            runtime: OnceCell::new(),
        }
    }

    /// The inventory, read on first use.
    pub fn inventory(&self) -> Result<&Inventory, Error> {
        if let Some(inv) = self.inventory.get() {
            return Ok(inv);
        }
        let path = self
            .settings
            .inventory
            .as_deref()
            .ok_or(Error::NoInventory)?;
        let inv = Inventory::load(path)?;
        Ok(self.inventory.get_or_init(|| inv))
    }

    /// The cluster plan, resolved on first use (secrets given as `{env:
    /// VAR}` come from this process's environment).
    pub fn plan(&self) -> Result<&ClusterPlan, Error> {
        if let Some(plan) = self.plan.get() {
            return Ok(plan);
        }
        let plan = plan::resolve(self.inventory()?, &|k| std::env::var(k).ok())?;
        Ok(self.plan.get_or_init(|| plan))
    }

    /// The hosts `--limit` selects, `None` without a limit; a limit that
    /// matches no host is an error.
    pub fn selection(&self) -> Result<Option<&[String]>, Error> {
        if let Some(selection) = self.selection.get() {
            return Ok(selection.as_deref());
        }
        let selection = match &self.settings.limit {
            None => None,
            Some(limit) => {
                let hosts = pattern::select(self.inventory()?, limit)?;
                if hosts.is_empty() {
                    return Err(Error::NoHosts(limit.clone()));
                }
                Some(hosts)
            }
        };
        Ok(self.selection.get_or_init(|| selection).as_deref())
    }

    /// The plan's pair hosts that `--limit` selects, in plan order.
    pub fn pair_hosts(&self) -> Result<Vec<String>, Error> {
        let plan = self.plan()?;
        let selected = self.selection()?;
        Ok(plan
            .pairs
            .iter()
            .flat_map(|p| p.hosts.iter().map(|h| h.name.clone()))
            .filter(|h| selected.is_none_or(|s| s.contains(h)))
            .collect())
    }

    /// The plan cut down to the pairs with a selected host (a pair is
    /// worked on as a whole: audit, drills); the whole plan without
    /// `--limit`.
    pub fn selected_pairs(&self) -> Result<ClusterPlan, Error> {
        let mut plan = self.plan()?.clone();
        if let Some(selected) = self.selection()? {
            plan.pairs
                .retain(|p| p.hosts.iter().any(|h| selected.contains(&h.name)));
            if plan.pairs.is_empty() {
                let limit = self.settings.limit.clone().unwrap_or_default();
                return Err(Error::NoHosts(limit));
            }
        }
        Ok(plan)
    }

    /// The lab `hactl lab up` built for this inventory, if any.
    pub fn lab(&self) -> Result<Option<Lab>, Error> {
        let inv = self.inventory()?;
        let Ok(name) = LabName::from_inventory_path(&inv.path) else {
            return Ok(None);
        };
        let lab = Lab::new(name, &LabPaths::new(&self.settings.lab_root));
        Ok(lab.exists().then_some(lab))
    }

    /// The lab's SSH key and known_hosts, when a lab is built.
    pub fn lab_identity(&self) -> Result<Option<SshIdentity>, Error> {
        Ok(self.lab()?.map(|lab| lab.ssh_identity()))
    }

    /// The SSH targets of `hosts` (pair hosts of the plan), in that order.
    /// When `hactl lab up` has built a lab for this inventory, its key and
    /// known_hosts are used for every host that does not name its own key,
    /// so the unchanged inventory works against the lab with strict host
    /// keys.
    pub fn targets(&self, hosts: &[String]) -> Result<Vec<Target>, Error> {
        let plan = self.plan()?;
        let lab = self.lab_identity()?;
        hosts
            .iter()
            .map(|name| {
                let host = plan
                    .pair_of(name)
                    .and_then(|p| p.host(name))
                    .ok_or_else(|| {
                        Error::Usage(format!("host `{name}` is not in any hactl pair"))
                    })?;
                Ok(target(name, &host.connection, lab.as_ref()))
            })
            .collect()
    }

    /// SSH settings of the commands that reach hosts: `--forks`, strict
    /// host keys unless trust on first use is asked for, a 5 s connect
    /// timeout.
    pub fn ssh_options(&self, accept_new_host_keys: bool) -> SshOptions {
        SshOptions {
            forks: self.settings.forks,
            host_key_policy: if accept_new_host_keys {
                HostKeyPolicy::AcceptNew
            } else {
                HostKeyPolicy::Strict
            },
            connect_timeout: Duration::from_secs(5),
            key_exchange: if self.settings.ssh_default_kex {
                KeyExchange::System
            } else {
                KeyExchange::Fast
            },
            ..SshOptions::default()
        }
    }

    /// The async runtime of the commands that reach hosts (two worker
    /// threads: the work is waiting on SSH).
    pub fn runtime(&self) -> Result<&tokio::runtime::Runtime, Error> {
        if let Some(rt) = self.runtime.get() {
            return Ok(rt);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        Ok(self.runtime.get_or_init(|| rt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    #[test]
    fn a_lab_supplies_key_and_known_hosts_unless_the_host_names_a_key() {
        let lab = SshIdentity {
            private_key: PathBuf::from("/lab/id_ed25519"),
            known_hosts: PathBuf::from("/lab/known_hosts"),
            ssh_config: PathBuf::from("/lab/ssh_config"),
        };
        let plain = Connection {
            address: "10.0.0.1".into(),
            port: 22,
            user: "root".into(),
            ..Connection::default()
        };
        let a = target("a", &plain, Some(&lab));
        assert_eq!(
            a.identity_file.as_deref(),
            Some(Path::new("/lab/id_ed25519"))
        );
        assert_eq!(
            a.known_hosts.as_deref(),
            Some(Path::new("/lab/known_hosts"))
        );
        let own = Connection {
            identity_file: Some(PathBuf::from("/own")),
            ..plain.clone()
        };
        let b = target("b", &own, Some(&lab));
        assert_eq!(b.identity_file.as_deref(), Some(Path::new("/own")));
        let c = target("c", &plain, None);
        assert_eq!((c.identity_file, c.known_hosts), (None, None));
    }
}
