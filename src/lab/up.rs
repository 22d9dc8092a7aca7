//! `lab up`: build or repair a lab. Each step reads a fact first and acts
//! only when the machine differs from the wanted lab, recording what it
//! changed, so a second `up` changes nothing and says so.
//!
//! ```text
//!  controller namespace      switch namespace hl-<lab>      host namespaces
//!
//!  hl<tag>.0 ──── veth ─────── c0 ─┐                        hl-<lab>.lb1
//!  10.x.y.254/24                   br0 ─ h0 ──── veth ───── eth0 10.x.y.1/24
//!  (routes the lab subnet          │                        hl-<lab>.lb2
//!   and nothing else)              └──── h1 ──── veth ───── eth0 10.x.y.2/24
//! ```
//!
//! The bridges live in their own namespace, so they carry nothing but the
//! lab's traffic and the controller's namespace gains one veth per subnet.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::paths::{
    PRIVATE_DIRS, PRIVATE_HOSTS_FILE, client_key, ensure_dir, host_private_dir, known_hosts,
    ssh_config, write_if_changed,
};
use super::ssh::{
    answers_ssh, ensure_key, public_key_path, read_public_key, render_etc_hosts,
    render_known_hosts, render_ssh_config, render_sshd_config,
};
use super::state::LabState;
use super::system::{conflicting_route, ip, link, namespace_exists, run, wait_for};
use super::topology::{Segment, plan};
use super::{Lab, LabError, LabHost, UpReport, holder, names};

/// How long `up` waits for every sshd to answer.
const SSHD_TIMEOUT: Duration = Duration::from_secs(10);

impl Lab {
    /// Builds the lab with `hosts`, or repairs what is missing of it.
    pub fn up(&self, hosts: &[LabHost]) -> Result<UpReport, LabError> {
        let segments = plan(hosts)?;
        let previous = LabState::load(&self.dir)?;
        if previous.as_ref().is_some_and(|p| p.hosts != hosts) {
            return Err(LabError::SpecChanged {
                lab: self.name.to_string(),
            });
        }
        for (index, segment) in segments.iter().enumerate() {
            let own = names::controller_link(&self.name, index);
            if let Some((_, device)) =
                conflicting_route((segment.network, segment.prefix_len), &own)?
            {
                return Err(LabError::SubnetInUse {
                    subnet: segment.cidr(),
                    device,
                });
            }
        }

        let mut build = Build {
            lab: self,
            state: previous.unwrap_or_else(|| LabState::new(&self.name, hosts)),
            changes: Vec::new(),
        };
        build.directories(hosts)?;
        build.record_intent(&segments)?;
        build.switch(&segments)?;
        for (index, host) in hosts.iter().enumerate() {
            let segment = segments
                .iter()
                .position(|s| s.hosts.contains(&index))
                .unwrap_or_default();
            build.host_network(index, host, segment)?;
        }
        build.host_files(hosts)?;
        build.holders(hosts)?;
        build.wait_for_sshd(hosts)?;
        build.client_files(hosts)?;
        Ok(UpReport {
            lab: self.name.clone(),
            changes: build.changes,
            identity: self.ssh_identity(),
        })
    }
}

/// One run of `up`: the lab, its state record and what this run changed.
struct Build<'a> {
    lab: &'a Lab,
    state: LabState,
    changes: Vec<String>,
}

impl Build<'_> {
    fn change(&mut self, what: String) {
        self.changes.push(what);
    }

    fn dir(&self) -> &Path {
        &self.lab.dir
    }

    fn directories(&mut self, hosts: &[LabHost]) -> Result<(), LabError> {
        if let Some(root) = self.dir().parent() {
            ensure_dir(root, 0o755)?;
        }
        // The lab directory holds the private key: root only.
        if ensure_dir(self.dir(), 0o700)? {
            self.change(format!("created state directory {}", self.dir().display()));
        }
        for host in hosts {
            let mut created = false;
            for inside in PRIVATE_DIRS {
                created |= ensure_dir(&host_private_dir(self.dir(), &host.name, inside), 0o755)?;
            }
            if created {
                self.change(format!("created private directories of {}", host.name));
            }
        }
        Ok(())
    }

    /// Names everything before it exists, so a crash leaves a state file
    /// that `down` can follow.
    fn record_intent(&mut self, segments: &[Segment]) -> Result<(), LabError> {
        let lab = &self.lab.name;
        self.state.record_namespace(&names::switch_namespace(lab));
        for host in self.state.hosts.clone() {
            self.state
                .record_namespace(&names::host_namespace(lab, &host.name));
        }
        for index in 0..segments.len() {
            self.state
                .record_controller_link(&names::controller_link(lab, index));
        }
        self.state.save(&self.lab.dir)
    }

    fn namespace(&mut self, name: &str) -> Result<(), LabError> {
        if !namespace_exists(name) {
            run(ip(None).args(["netns", "add", name]))?;
            self.change(format!("created network namespace {name}"));
        }
        Ok(())
    }

    /// The switch namespace, a bridge per segment and the controller's veth
    /// onto each bridge.
    fn switch(&mut self, segments: &[Segment]) -> Result<(), LabError> {
        let lab = self.lab.name.clone();
        let switch = names::switch_namespace(&lab);
        self.namespace(&switch)?;
        for (index, segment) in segments.iter().enumerate() {
            let bridge = names::bridge(index);
            if link(Some(&switch), &bridge)?.is_none() {
                run(ip(Some(&switch)).args(["link", "add", &bridge, "type", "bridge"]))?;
                self.change(format!("created bridge {bridge} in {switch}"));
            }
            self.link_state(Some(&switch), &bridge, None, None)?;

            let controller = names::controller_link(&lab, index);
            let port = names::controller_port(index);
            if link(None, &controller)?.is_none() {
                run(ip(None)
                    .args(["link", "add", &controller, "type", "veth"])
                    .args(["peer", "name", &port, "netns", &switch]))?;
                run(ip(None).args([
                    "link",
                    "set",
                    &controller,
                    "alias",
                    &names::link_alias(&lab),
                ]))?;
                // IPv4 only: no link-local address or IPv6 route on the
                // controller side, nothing but the lab subnet goes here.
                let ipv6 = format!("/proc/sys/net/ipv6/conf/{controller}/disable_ipv6");
                if Path::new(&ipv6).exists() {
                    std::fs::write(&ipv6, "1").map_err(LabError::io(&ipv6))?;
                }
                self.change(format!(
                    "created {controller}, the controller's link to {}",
                    segment.cidr()
                ));
            }
            self.link_state(Some(&switch), &port, Some(&bridge), None)?;
            self.link_state(
                None,
                &controller,
                None,
                Some((segment.controller_address, segment.prefix_len)),
            )?;
        }
        Ok(())
    }

    /// A host's namespace, its veth onto the bridge, its address and lo.
    fn host_network(
        &mut self,
        index: usize,
        host: &LabHost,
        segment: usize,
    ) -> Result<(), LabError> {
        let lab = self.lab.name.clone();
        let switch = names::switch_namespace(&lab);
        let namespace = names::host_namespace(&lab, &host.name);
        self.namespace(&namespace)?;
        let port = names::host_port(index);
        if link(Some(&switch), &port)?.is_none() {
            run(ip(Some(&switch))
                .args(["link", "add", &port, "type", "veth"])
                .args(["peer", "name", &host.interface, "netns", &namespace]))?;
            self.change(format!("created {} of {}", host.interface, host.name));
        }
        self.link_state(Some(&switch), &port, Some(&names::bridge(segment)), None)?;
        self.link_state(
            Some(&namespace),
            &host.interface,
            None,
            Some((host.address, host.prefix_len)),
        )?;
        self.link_state(Some(&namespace), "lo", None, None)
    }

    /// Brings a link up, into its bridge and onto its address, as needed.
    fn link_state(
        &mut self,
        namespace: Option<&str>,
        name: &str,
        master: Option<&str>,
        address: Option<(Ipv4Addr, u8)>,
    ) -> Result<(), LabError> {
        let place = namespace.unwrap_or("the controller's namespace");
        let facts = link(namespace, name)?.ok_or_else(|| LabError::UnexpectedOutput {
            command: format!("ip link show dev {name}"),
            reason: format!("{name} vanished from {place}"),
        })?;
        // (No let chains: the workspace's rust-version is 1.85.)
        if let Some(master) = master.filter(|m| facts.master.as_deref() != Some(*m)) {
            run(ip(namespace).args(["link", "set", name, "master", master]))?;
            self.change(format!("attached {name} to {master} in {place}"));
        }
        if let Some((address, prefix_len)) = address.filter(|a| !facts.ipv4.contains(a)) {
            let cidr = format!("{address}/{prefix_len}");
            run(ip(namespace).args(["addr", "add", &cidr, "dev", name]))?;
            self.change(format!("added {cidr} to {name} in {place}"));
        }
        if !facts.up {
            run(ip(namespace).args(["link", "set", name, "up"]))?;
            self.change(format!("brought {name} up in {place}"));
        }
        Ok(())
    }

    /// Keys, sshd configuration and /etc/hosts of every host.
    fn host_files(&mut self, hosts: &[LabHost]) -> Result<(), LabError> {
        let key = client_key(self.dir());
        if ensure_key(&key, &format!("hactl-lab-{}", self.lab.name))? {
            self.change(format!("made the lab key {}", key.display()));
        }
        let authorized = format!(
            "{} hactl-lab-{}\n",
            read_public_key(&public_key_path(&key))?,
            self.lab.name
        );
        let etc_hosts = render_etc_hosts(&self.lab.name, hosts);
        for host in hosts {
            // Written once: the lab's hosts never change while it is up, and
            // a replaced file would not show through the running bind mount.
            let path = host_private_dir(self.dir(), &host.name, PRIVATE_HOSTS_FILE);
            if write_if_changed(&path, &etc_hosts, 0o644)? {
                self.change(format!("wrote /etc/hosts of {}", host.name));
            }
            let etc_ssh = host_private_dir(self.dir(), &host.name, "/etc/ssh");
            if ensure_key(
                &etc_ssh.join("ssh_host_ed25519_key"),
                &format!("root@{}", host.name),
            )? {
                self.change(format!("made the host key of {}", host.name));
            }
            if write_if_changed(&etc_ssh.join("authorized_keys"), &authorized, 0o600)? {
                self.change(format!("authorized the lab key on {}", host.name));
            }
            let config = render_sshd_config(&self.lab.name, host);
            if write_if_changed(&etc_ssh.join("sshd_config"), &config, 0o644)? {
                self.change(format!("wrote the sshd_config of {}", host.name));
                // sshd rereads its configuration on SIGHUP (sshd(8)).
                let namespace = names::host_namespace(&self.lab.name, &host.name);
                if let Some(pid) = holder::running_pid(self.dir(), host, &namespace) {
                    run(Command::new("kill").args(["-HUP", &pid.to_string()]))?;
                    self.change(format!("reloaded sshd on {}", host.name));
                }
            }
        }
        Ok(())
    }

    fn holders(&mut self, hosts: &[LabHost]) -> Result<(), LabError> {
        for host in hosts {
            let namespace = names::host_namespace(&self.lab.name, &host.name);
            let pid = match holder::running_pid(self.dir(), host, &namespace) {
                Some(pid) => pid,
                None => {
                    let pid = holder::start(self.dir(), host, &namespace)?;
                    self.change(format!("started sshd of {} (pid {pid})", host.name));
                    pid
                }
            };
            self.state.holder_pids.insert(host.name.clone(), pid);
            self.state.save(&self.lab.dir)?;
        }
        Ok(())
    }

    fn wait_for_sshd(&mut self, hosts: &[LabHost]) -> Result<(), LabError> {
        let deadline = Instant::now() + SSHD_TIMEOUT;
        for host in hosts {
            let left = deadline.saturating_duration_since(Instant::now());
            let probe = Duration::from_millis(500);
            let namespace = names::host_namespace(&self.lab.name, &host.name);
            let mut died = false;
            let answered = wait_for(left, || {
                // A holder that died (sshd refused its config, the port is
                // taken) will never answer: fail now, with its log.
                died = holder::running_pid(self.dir(), host, &namespace).is_none();
                died || answers_ssh(host.address, host.ssh_port, probe)
            });
            if died {
                return Err(LabError::HolderDidNotStart {
                    host: host.name.clone(),
                    log: holder::log_tail(self.dir(), &host.name),
                });
            }
            if !answered {
                return Err(LabError::SshdTimeout {
                    host: host.name.clone(),
                    address: host.address,
                    port: host.ssh_port,
                    seconds: SSHD_TIMEOUT.as_secs(),
                    log: holder::log_tail(self.dir(), &host.name),
                });
            }
        }
        Ok(())
    }

    /// The controller's known_hosts and ssh_config.
    fn client_files(&mut self, hosts: &[LabHost]) -> Result<(), LabError> {
        let mut keys = Vec::new();
        for host in hosts {
            let etc_ssh = host_private_dir(self.dir(), &host.name, "/etc/ssh");
            keys.push((
                host,
                read_public_key(&etc_ssh.join("ssh_host_ed25519_key.pub"))?,
            ));
        }
        let path = known_hosts(self.dir());
        if write_if_changed(&path, &render_known_hosts(&keys), 0o644)? {
            self.change(format!("wrote {}", path.display()));
        }
        let path = ssh_config(self.dir());
        let config = render_ssh_config(&self.lab.name, hosts, &self.lab.ssh_identity());
        if write_if_changed(&path, &config, 0o644)? {
            self.change(format!("wrote {}", path.display()));
        }
        Ok(())
    }
}
