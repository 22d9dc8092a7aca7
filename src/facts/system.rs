//! Facts about the host itself: its hostname, a sysctl, the SELinux mode,
//! the ip_vs module, and whether sudo works without a password.

use super::{Fact, ParseError};
use crate::ssh::{CommandOutput, RemoteCommand};

/// "command not found", as POSIX shells report it.
const NOT_FOUND: i32 = 127;

// ===== hostname =====

/// `uname -n`: the kernel's node name, what VRRP peers and logs call the host.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hostname;

impl Fact for Hostname {
    type Output = String;

    fn name(&self) -> &'static str {
        "hostname"
    }

    fn command(&self) -> RemoteCommand {
        RemoteCommand::new(&["uname", "-n"]).become_(false)
    }

    fn parse(&self, output: &CommandOutput) -> Result<String, ParseError> {
        let name = output.stdout_text().trim().to_string();
        if !output.success() || name.is_empty() {
            return Err(ParseError::unexpected(output));
        }
        Ok(name)
    }
}

// ===== sysctl =====

/// A sysctl value read from `/proc/sys` (no procps needed); `None` when the
/// key does not exist on the host (an IPv6-less kernel has no
/// `net.ipv6.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    key: String,
}

impl Sysctl {
    /// A dotted key such as `net.ipv4.ip_nonlocal_bind`. Keys whose parts
    /// hold dots themselves (VLAN interfaces) are not supported.
    pub fn new(key: &str) -> Option<Sysctl> {
        let valid = !key.is_empty()
            && key.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
        valid.then(|| Sysctl {
            key: key.to_string(),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    fn path(&self) -> String {
        format!("/proc/sys/{}", self.key.replace('.', "/"))
    }
}

impl Fact for Sysctl {
    type Output = Option<String>;

    fn name(&self) -> &'static str {
        "sysctl"
    }

    fn command(&self) -> RemoteCommand {
        RemoteCommand::new(&["cat", "--", &self.path()]).become_(false)
    }

    fn parse(&self, output: &CommandOutput) -> Result<Option<String>, ParseError> {
        if output.success() {
            return Ok(Some(output.stdout_text().trim().to_string()));
        }
        if output.stderr_text().contains("No such file") {
            return Ok(None);
        }
        Err(ParseError::unexpected(output))
    }
}

// ===== SELinux =====

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SelinuxMode {
    Enforcing,
    Permissive,
    Disabled,
    /// No `getenforce`: SELinux tools are not installed.
    Absent,
}

/// `getenforce`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selinux;

impl Fact for Selinux {
    type Output = SelinuxMode;

    fn name(&self) -> &'static str {
        "selinux"
    }

    fn command(&self) -> RemoteCommand {
        RemoteCommand::new(&["getenforce"]).become_(false)
    }

    fn parse(&self, output: &CommandOutput) -> Result<SelinuxMode, ParseError> {
        if output.status == Some(NOT_FOUND) {
            return Ok(SelinuxMode::Absent);
        }
        match (output.success(), output.stdout_text().trim()) {
            (true, "Enforcing") => Ok(SelinuxMode::Enforcing),
            (true, "Permissive") => Ok(SelinuxMode::Permissive),
            (true, "Disabled") => Ok(SelinuxMode::Disabled),
            (true, other) => Err(ParseError::new(format!("unknown mode {other:?}"))),
            (false, _) => Err(ParseError::unexpected(output)),
        }
    }
}

// ===== ip_vs =====

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IpvsState {
    /// `/proc/net/ip_vs` exists: the module is loaded (or built in).
    Loaded,
    /// Not loaded, but `modinfo` finds it (its file, or `(builtin)`).
    Available(String),
    Missing,
}

/// Whether the kernel has IPVS, needed when a pair has virtual servers.
#[derive(Debug, Clone, Copy, Default)]
pub struct IpvsModule;

const IPVS_SCRIPT: &str = "if [ -e /proc/net/ip_vs ]; then echo loaded; \
elif command -v modinfo >/dev/null 2>&1 && modinfo -F filename ip_vs 2>/dev/null; then :; \
else echo missing; fi";

impl Fact for IpvsModule {
    type Output = IpvsState;

    fn name(&self) -> &'static str {
        "ip_vs module"
    }

    fn command(&self) -> RemoteCommand {
        RemoteCommand::new(&["sh", "-c", IPVS_SCRIPT]).become_(false)
    }

    fn parse(&self, output: &CommandOutput) -> Result<IpvsState, ParseError> {
        let text = output.stdout_text();
        match (output.success(), text.lines().next().map(str::trim)) {
            (true, Some("loaded")) => Ok(IpvsState::Loaded),
            (true, Some("missing")) => Ok(IpvsState::Missing),
            (true, Some(file)) if !file.is_empty() => Ok(IpvsState::Available(file.to_string())),
            _ => Err(ParseError::unexpected(output)),
        }
    }
}

// ===== sudo =====

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SudoState {
    Works,
    NotInstalled,
    /// sudo wants a password or refuses the user; its message.
    Refused(String),
}

/// `sudo -n true`, run as the login user (never through become).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sudo;

impl Fact for Sudo {
    type Output = SudoState;

    fn name(&self) -> &'static str {
        "sudo"
    }

    fn command(&self) -> RemoteCommand {
        RemoteCommand::new(&["sudo", "-n", "true"]).become_(false)
    }

    fn parse(&self, output: &CommandOutput) -> Result<SudoState, ParseError> {
        Ok(match output.status {
            Some(0) => SudoState::Works,
            Some(NOT_FOUND) => SudoState::NotInstalled,
            _ => SudoState::Refused(output.stderr_text().trim().to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::output;
    use super::*;

    #[test]
    fn hostname_is_the_trimmed_node_name() {
        assert_eq!(Hostname.parse(&output(0, "lb1\n", "")).unwrap(), "lb1");
        assert!(Hostname.parse(&output(0, "\n", "")).is_err());
        assert!(Hostname.parse(&output(1, "", "uname: boom")).is_err());
    }

    #[test]
    fn sysctl_keys_map_to_proc_and_absent_keys_are_none() {
        let fact = Sysctl::new("net.ipv4.ip_nonlocal_bind").unwrap();
        assert_eq!(
            fact.command().argv,
            ["cat", "--", "/proc/sys/net/ipv4/ip_nonlocal_bind"]
        );
        assert_eq!(fact.parse(&output(0, "1\n", "")).unwrap(), Some("1".into()));
        let missing = output(
            1,
            "",
            "cat: /proc/sys/net/ipv6/ip_nonlocal_bind: No such file or directory\n",
        );
        assert_eq!(fact.parse(&missing).unwrap(), None);
        assert!(
            fact.parse(&output(1, "", "cat: Permission denied"))
                .is_err()
        );
        for bad in ["", "net..x", "../etc/passwd", "net/ipv4", "a b"] {
            assert!(Sysctl::new(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn selinux_modes() {
        let cases = [
            (0, "Enforcing\n", SelinuxMode::Enforcing),
            (0, "Permissive\n", SelinuxMode::Permissive),
            (0, "Disabled\n", SelinuxMode::Disabled),
            (127, "", SelinuxMode::Absent),
        ];
        for (status, stdout, want) in cases {
            assert_eq!(Selinux.parse(&output(status, stdout, "")).unwrap(), want);
        }
        assert!(Selinux.parse(&output(0, "Maybe\n", "")).is_err());
    }

    #[test]
    fn ipvs_states() {
        assert_eq!(
            IpvsModule.parse(&output(0, "loaded\n", "")).unwrap(),
            IpvsState::Loaded
        );
        let file = "/lib/modules/6.1.0-13-amd64/kernel/net/netfilter/ipvs/ip_vs.ko\n";
        assert_eq!(
            IpvsModule.parse(&output(0, file, "")).unwrap(),
            IpvsState::Available(file.trim().into())
        );
        assert_eq!(
            IpvsModule.parse(&output(0, "missing\n", "")).unwrap(),
            IpvsState::Missing
        );
    }

    #[test]
    fn sudo_states() {
        assert_eq!(Sudo.parse(&output(0, "", "")).unwrap(), SudoState::Works);
        assert_eq!(
            Sudo.parse(&output(127, "", "sh: 1: sudo: not found"))
                .unwrap(),
            SudoState::NotInstalled
        );
        assert_eq!(
            Sudo.parse(&output(1, "", "sudo: a password is required\n"))
                .unwrap(),
            SudoState::Refused("sudo: a password is required".into())
        );
        assert_eq!(Sudo.command().become_, Some(false));
    }
}
