//! The lab's facts about this machine and its one way to run a system tool.
//! A fact is a command plus a pure parser of its output (the parsers are
//! tested on captured output); every failed command becomes a
//! `LabError::CommandFailed` with its stderr.

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::LabError;
use super::topology::overlaps;

/// Where `ip netns` keeps its namespace handles.
pub(crate) const NETNS_DIR: &str = "/run/netns";

// ===== commands =====

/// The command line as a person would type it, for error messages.
pub(crate) fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    for arg in command.get_args() {
        let arg = arg.to_string_lossy();
        if !arg.is_empty()
            && arg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+".contains(&b))
        {
            words.push(arg.into_owned());
        } else {
            words.push(shell_quote(&arg));
        }
    }
    words.join(" ")
}

/// Quotes a word for `sh`.
pub(crate) fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Runs a command to completion and returns its stdout; a non-zero exit is
/// an error carrying stderr.
pub(crate) fn run(command: &mut Command) -> Result<String, LabError> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn {
            command: describe(command),
            source,
        })?;
    if !output.status.success() {
        return Err(LabError::CommandFailed {
            command: describe(command),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `ip`, optionally aimed at a named network namespace.
pub(crate) fn ip(namespace: Option<&str>) -> Command {
    let mut command = Command::new("ip");
    if let Some(namespace) = namespace {
        command.args(["-n", namespace]);
    }
    command
}

// ===== namespaces =====

pub(crate) fn namespace_exists(name: &str) -> bool {
    Path::new(NETNS_DIR).join(name).exists()
}

/// The names of all named network namespaces on this machine.
pub(crate) fn namespaces() -> Result<Vec<String>, LabError> {
    let listing = run(ip(None).args(["-j", "netns", "list"]))?;
    parse_namespaces(&listing).map_err(|reason| LabError::UnexpectedOutput {
        command: "ip -j netns list".to_string(),
        reason,
    })
}

fn parse_namespaces(listing: &str) -> Result<Vec<String>, String> {
    // Without any namespace, iproute2 prints nothing at all.
    if listing.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_str(listing).map_err(|e| e.to_string())?;
    let entries = value.as_array().ok_or("not a JSON array")?;
    Ok(entries
        .iter()
        .filter_map(|entry| entry.get("name")?.as_str().map(str::to_string))
        .collect())
}

/// The inode of a named namespace, the identity `/proc/PID/ns/net` shows.
pub(crate) fn namespace_inode(name: &str) -> Option<u64> {
    fs::metadata(Path::new(NETNS_DIR).join(name))
        .ok()
        .map(|m| m.ino())
}

/// Every process in a named network namespace.
pub(crate) fn namespace_pids(name: &str) -> Result<Vec<u32>, LabError> {
    let listing = run(ip(None).args(["netns", "pids", name]))?;
    Ok(listing
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect())
}

// ===== links =====

/// What the lab needs to know about one link.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct LinkFacts {
    pub up: bool,
    pub master: Option<String>,
    pub ipv4: Vec<(Ipv4Addr, u8)>,
}

/// The facts of a link, or `None` when it does not exist.
pub(crate) fn link(namespace: Option<&str>, name: &str) -> Result<Option<LinkFacts>, LabError> {
    let mut command = ip(namespace);
    command.args(["-j", "addr", "show", "dev", name]);
    match run(&mut command) {
        Ok(listing) => {
            parse_link(&listing)
                .map(Some)
                .map_err(|reason| LabError::UnexpectedOutput {
                    command: describe(&command),
                    reason,
                })
        }
        Err(LabError::CommandFailed { stderr, .. }) if stderr.contains("does not exist") => {
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

fn parse_link(listing: &str) -> Result<LinkFacts, String> {
    let value: Value = serde_json::from_str(listing).map_err(|e| e.to_string())?;
    let entry = value
        .as_array()
        .and_then(|a| a.first())
        .ok_or("no link in the listing")?;
    let up = entry
        .get("flags")
        .and_then(Value::as_array)
        .is_some_and(|flags| flags.iter().any(|f| f == "UP"));
    let master = entry
        .get("master")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut ipv4 = Vec::new();
    for address in entry
        .get("addr_info")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if address.get("family").and_then(Value::as_str) != Some("inet") {
            continue;
        }
        let local = address
            .get("local")
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok());
        let prefix_len = address
            .get("prefixlen")
            .and_then(Value::as_u64)
            .and_then(|p| u8::try_from(p).ok());
        if let (Some(local), Some(prefix_len)) = (local, prefix_len) {
            ipv4.push((local, prefix_len));
        }
    }
    Ok(LinkFacts { up, master, ipv4 })
}

/// Names of the links in the controller's namespace that start with `prefix`.
pub(crate) fn links_with_prefix(prefix: &str) -> Result<Vec<String>, LabError> {
    let listing = run(ip(None).args(["-j", "link", "show"]))?;
    let value: Value = serde_json::from_str(&listing).map_err(|e| LabError::UnexpectedOutput {
        command: "ip -j link show".to_string(),
        reason: e.to_string(),
    })?;
    Ok(value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|link| link.get("ifname")?.as_str())
        .filter(|name| name.starts_with(prefix))
        .map(str::to_string)
        .collect())
}

// ===== routes =====

/// A route of the controller that already covers part of a lab subnet and
/// does not go through `own_link`: `(destination, device)`.
pub(crate) fn conflicting_route(
    subnet: (Ipv4Addr, u8),
    own_link: &str,
) -> Result<Option<(String, String)>, LabError> {
    let listing = run(ip(None).args(["-j", "-4", "route", "show", "table", "all"]))?;
    parse_conflicting_route(&listing, subnet, own_link).map_err(|reason| {
        LabError::UnexpectedOutput {
            command: "ip -j -4 route show table all".to_string(),
            reason,
        }
    })
}

fn parse_conflicting_route(
    listing: &str,
    subnet: (Ipv4Addr, u8),
    own_link: &str,
) -> Result<Option<(String, String)>, String> {
    if listing.trim().is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(listing).map_err(|e| e.to_string())?;
    for route in value.as_array().ok_or("not a JSON array")? {
        let Some(dst) = route.get("dst").and_then(Value::as_str) else {
            continue;
        };
        let device = route.get("dev").and_then(Value::as_str).unwrap_or("?");
        // The default route covers everything and is not a claim on the lab
        // subnet; our own link's routes are the lab's.
        if dst == "default" || device == own_link {
            continue;
        }
        let (address, prefix_len) = match dst.split_once('/') {
            Some((a, p)) => (a, p.parse::<u8>().map_err(|e| format!("{dst}: {e}"))?),
            None => (dst, 32),
        };
        let Ok(address) = address.parse::<Ipv4Addr>() else {
            continue;
        };
        if prefix_len == 0 {
            continue;
        }
        if overlaps((address, prefix_len), subnet) {
            return Ok(Some((dst.to_string(), device.to_string())));
        }
    }
    Ok(None)
}

// ===== processes =====

/// Whether a process runs; a zombie counts as gone (on machines whose init
/// does not reap, killed daemons stay zombies forever).
pub(crate) fn is_alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which may itself hold ") ".
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

/// The network namespace inode of a process.
pub(crate) fn net_namespace_of(pid: u32) -> Option<u64> {
    let link = fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let link = link.to_string_lossy();
    link.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// Whether a process lives in a nested PID namespace without being its
/// init: `NSpid` lists its PID in each namespace, outermost first, and the
/// last is 1 only for an init.
pub(crate) fn runs_under_a_host_init(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| nested_non_init(&status))
        .unwrap_or(false)
}

fn nested_non_init(status: &str) -> Option<bool> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    let ids: Vec<&str> = line.split_whitespace().collect();
    Some(ids.len() > 1 && ids.last() != Some(&"1"))
}

/// Ends processes by PID: SIGTERM, then SIGKILL for those still alive after
/// a grace period. Returns the PIDs that outlived both.
pub(crate) fn terminate(pids: &[u32]) -> Vec<u32> {
    for (signal, grace) in [
        ("-TERM", Duration::from_secs(3)),
        ("-KILL", Duration::from_secs(2)),
    ] {
        let alive: Vec<u32> = pids.iter().copied().filter(|&p| is_alive(p)).collect();
        if alive.is_empty() {
            return alive;
        }
        // A process may exit between the check and the signal: kill's
        // complaint about it is expected, the polling below decides.
        let _ = Command::new("kill")
            .arg(signal)
            .args(alive.iter().map(u32::to_string))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while alive.iter().any(|&p| is_alive(p)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
    }
    pids.iter().copied().filter(|&p| is_alive(p)).collect()
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub(crate) fn wait_for(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_pid_namespaces() {
        assert_eq!(
            nested_non_init("Name:\tsleep\nNSpid:\t4242\t17\n"),
            Some(true)
        );
        assert_eq!(nested_non_init("NSpid:\t4242\t1\n"), Some(false));
        assert_eq!(nested_non_init("NSpid:\t4242\n"), Some(false));
        assert_eq!(nested_non_init("Name:\tx\n"), None);
    }

    #[test]
    fn namespace_listing() {
        assert_eq!(parse_namespaces("").unwrap(), Vec::<String>::new());
        let listing = r#"[{"name":"hl-a.lb1","id":3},{"name":"kxtest"}]"#;
        assert_eq!(parse_namespaces(listing).unwrap(), ["hl-a.lb1", "kxtest"]);
        assert!(parse_namespaces("{").is_err());
    }

    #[test]
    fn link_facts() {
        // Captured from `ip -j addr show dev X` (iproute2 6.1).
        let listing = r#"[{"ifindex":9,"link":"hltest1","ifname":"hltest0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"master":"br0","addr_info":[{"family":"inet","local":"10.213.250.1","prefixlen":24,"scope":"global"},{"family":"inet6","local":"fe80::1","prefixlen":64}]}]"#;
        assert_eq!(
            parse_link(listing).unwrap(),
            LinkFacts {
                up: true,
                master: Some("br0".to_string()),
                ipv4: vec![(Ipv4Addr::new(10, 213, 250, 1), 24)],
            }
        );
        let down = r#"[{"ifname":"x","flags":["BROADCAST","MULTICAST","M-DOWN"],"addr_info":[]}]"#;
        assert_eq!(parse_link(down).unwrap(), LinkFacts::default());
        assert!(parse_link("[]").is_err());
    }

    #[test]
    fn routes_that_claim_a_lab_subnet() {
        // Captured from `ip -j -4 route show table all` (iproute2 6.1).
        let listing = r#"[{"dst":"default","gateway":"192.0.2.1","dev":"eth0","flags":[]},{"dst":"192.0.2.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.0.2.2","flags":[]},{"type":"local","dst":"10.213.250.1","dev":"hltest0","table":"local","protocol":"kernel","scope":"host","prefsrc":"10.213.250.1","flags":[]},{"dst":"10.213.7.0/24","dev":"hl1.0","flags":[]}]"#;
        let lab = |a: &str, p| (a.parse().unwrap(), p);
        assert_eq!(
            parse_conflicting_route(listing, lab("192.0.2.128", 25), "hl1.0").unwrap(),
            Some(("192.0.2.0/24".to_string(), "eth0".to_string()))
        );
        assert_eq!(
            parse_conflicting_route(listing, lab("10.213.250.0", 24), "hl1.0").unwrap(),
            Some(("10.213.250.1".to_string(), "hltest0".to_string()))
        );
        assert_eq!(
            parse_conflicting_route(listing, lab("10.213.7.0", 24), "hl1.0").unwrap(),
            None,
            "the lab's own link is no conflict"
        );
        assert_eq!(
            parse_conflicting_route(listing, lab("10.213.8.0", 24), "hl1.0").unwrap(),
            None,
            "the default route is no conflict"
        );
        assert_eq!(
            parse_conflicting_route("", lab("10.0.0.0", 8), "x").unwrap(),
            None
        );
    }

    #[test]
    fn quoting_and_description() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        let mut command = Command::new("ip");
        command.args(["-n", "hl-a.lb1", "addr", "add", "10.0.0.1/24", "x y", ""]);
        assert_eq!(
            describe(&command),
            "ip -n hl-a.lb1 addr add 10.0.0.1/24 'x y' ''"
        );
    }

    #[test]
    fn our_own_process_is_alive_and_in_a_namespace() {
        assert!(is_alive(std::process::id()));
        assert!(net_namespace_of(std::process::id()).is_some());
    }
}
