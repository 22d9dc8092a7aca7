//! The lab's SSH side: the lab key pair and each host's host key (made by
//! `ssh-keygen`), each host's sshd_config, the controller's known_hosts and
//! ssh_config, and the banner probe that tells whether a host answers SSH.

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

use super::system::run;
use super::{LabError, LabHost, LabName};

/// What an SSH client needs to log into a lab's hosts as root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshIdentity {
    /// The lab's private key (`ssh -i`).
    pub private_key: PathBuf,
    /// Every host's key under `[address]:port` and `address`
    /// (`-o UserKnownHostsFile=`, with `StrictHostKeyChecking=yes`).
    pub known_hosts: PathBuf,
    /// A config naming every host (`ssh -F ssh_config lb1`).
    pub ssh_config: PathBuf,
}

/// Makes an ed25519 key pair at `path` unless both halves exist. Returns
/// whether it made one.
pub(crate) fn ensure_key(path: &Path, comment: &str) -> Result<bool, LabError> {
    let public = public_key_path(path);
    if path.is_file() && public.is_file() {
        return Ok(false);
    }
    for half in [path, public.as_path()] {
        match fs::remove_file(half) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LabError::io(half)(e)),
        }
    }
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path))?;
    Ok(true)
}

pub(crate) fn public_key_path(private_key: &Path) -> PathBuf {
    let mut public = private_key.as_os_str().to_owned();
    public.push(".pub");
    PathBuf::from(public)
}

/// `type base64` of a public key file, without its comment.
pub(crate) fn read_public_key(path: &Path) -> Result<String, LabError> {
    let text = fs::read_to_string(path).map_err(LabError::io(path))?;
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some(kind), Some(key)) => Ok(format!("{kind} {key}")),
        _ => Err(LabError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not a public key"),
        }),
    }
}

/// The sshd_config of a lab host. Paths are as the host sees them: its
/// private /etc/ssh is the state directory's `hosts/<host>/root/etc/ssh`.
pub(crate) fn render_sshd_config(lab: &LabName, host: &LabHost) -> String {
    format!(
        "# sshd of lab host {name} (hactl lab {lab}); written by hactl lab up\n\
         ListenAddress {address}:{port}\n\
         AddressFamily inet\n\
         HostKey /etc/ssh/ssh_host_ed25519_key\n\
         PidFile /etc/ssh/sshd.pid\n\
         AuthorizedKeysFile /etc/ssh/authorized_keys\n\
         # The key files are root-owned and not group- or world-writable.\n\
         StrictModes yes\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         PrintMotd no\n\
         # hactl multiplexes many sessions over one connection.\n\
         MaxSessions 64\n\
         Subsystem sftp internal-sftp\n",
        name = host.name,
        address = host.address,
        port = host.ssh_port,
    )
}

/// The /etc/hosts of every lab host: loopback names and all lab hosts.
pub(crate) fn render_etc_hosts(lab: &LabName, hosts: &[LabHost]) -> String {
    let mut text = format!(
        "# /etc/hosts of hactl lab {lab}\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    );
    for host in hosts {
        text.push_str(&format!("{}\t{}\n", host.address, host.name));
    }
    text
}

/// known_hosts lines for every host: `[address]:port` and `address`.
pub(crate) fn render_known_hosts(hosts: &[(&LabHost, String)]) -> String {
    let mut text = String::new();
    for (host, key) in hosts {
        text.push_str(&format!(
            "[{}]:{} {key}\n{} {key}\n",
            host.address, host.ssh_port, host.address
        ));
    }
    text
}

/// An ssh_config naming every host of the lab, for `ssh -F`.
pub(crate) fn render_ssh_config(
    lab: &LabName,
    hosts: &[LabHost],
    identity: &SshIdentity,
) -> String {
    let quoted = |path: &Path| format!("\"{}\"", path.display());
    let mut text = format!(
        "# Hosts of hactl lab {lab}: ssh -F {} HOST\n",
        quoted(&identity.ssh_config)
    );
    for host in hosts {
        text.push_str(&format!(
            "\nHost {name} {address}\n    \
             HostName {address}\n    \
             Port {port}\n    \
             User root\n    \
             IdentityFile {key}\n    \
             IdentitiesOnly yes\n    \
             UserKnownHostsFile {known}\n    \
             GlobalKnownHostsFile /dev/null\n    \
             StrictHostKeyChecking yes\n    \
             PasswordAuthentication no\n    \
             BatchMode yes\n",
            name = host.name,
            address = host.address,
            port = host.ssh_port,
            key = quoted(&identity.private_key),
            known = quoted(&identity.known_hosts),
        ));
    }
    text
}

/// Whether something at `address:port` sends an SSH banner within `timeout`
/// (RFC 4253 4.2: the server's identification starts with `SSH-`).
pub(crate) fn answers_ssh(address: Ipv4Addr, port: u16, timeout: Duration) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&SocketAddr::from((address, port)), timeout)
    else {
        return false;
    };
    if stream.set_read_timeout(Some(timeout)).is_err() {
        return false;
    }
    let mut banner = [0u8; 4];
    stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn lb1() -> LabHost {
        let mut host = LabHost::new("lb1", Ipv4Addr::new(10, 213, 1, 1), 24);
        host.ssh_port = 2222;
        host
    }

    #[test]
    fn sshd_listens_on_the_inventory_address_and_port() {
        let config = render_sshd_config(&LabName::new("demo").unwrap(), &lb1());
        let lines: Vec<&str> = config.lines().collect();
        for want in [
            "ListenAddress 10.213.1.1:2222",
            "AuthorizedKeysFile /etc/ssh/authorized_keys",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "PidFile /etc/ssh/sshd.pid",
            "HostKey /etc/ssh/ssh_host_ed25519_key",
        ] {
            assert!(lines.contains(&want), "{want} missing from\n{config}");
        }
    }

    #[test]
    fn etc_hosts_names_every_lab_host() {
        let lb2 = LabHost::new("lb2", Ipv4Addr::new(10, 213, 1, 2), 24);
        let text = render_etc_hosts(&LabName::new("demo").unwrap(), &[lb1(), lb2]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "127.0.0.1\tlocalhost");
        assert_eq!(&lines[3..], ["10.213.1.1\tlb1", "10.213.1.2\tlb2"]);
    }

    #[test]
    fn known_hosts_name_both_forms() {
        let host = lb1();
        let text = render_known_hosts(&[(&host, "ssh-ed25519 AAAAkey".to_string())]);
        assert_eq!(
            text,
            "[10.213.1.1]:2222 ssh-ed25519 AAAAkey\n10.213.1.1 ssh-ed25519 AAAAkey\n"
        );
    }

    #[test]
    fn ssh_config_names_each_host() {
        let identity = SshIdentity {
            private_key: "/l/id_ed25519".into(),
            known_hosts: "/l/known_hosts".into(),
            ssh_config: "/l/ssh_config".into(),
        };
        let text = render_ssh_config(&LabName::new("demo").unwrap(), &[lb1()], &identity);
        for want in [
            "Host lb1 10.213.1.1",
            "    HostName 10.213.1.1",
            "    Port 2222",
            "    User root",
            "    IdentityFile \"/l/id_ed25519\"",
            "    UserKnownHostsFile \"/l/known_hosts\"",
            "    StrictHostKeyChecking yes",
        ] {
            assert!(
                text.lines().any(|l| l == want),
                "{want} missing from\n{text}"
            );
        }
    }

    #[test]
    fn banner_probe() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            use std::io::Write;
            let (mut a, _) = listener.accept().unwrap();
            a.write_all(b"SSH-2.0-test\r\n").unwrap();
            let (mut b, _) = listener.accept().unwrap();
            b.write_all(b"HTTP/1.1 400\r\n").unwrap();
        });
        let timeout = Duration::from_secs(2);
        assert!(answers_ssh(Ipv4Addr::LOCALHOST, port, timeout));
        assert!(!answers_ssh(Ipv4Addr::LOCALHOST, port, timeout));
        server.join().unwrap();
    }

    #[test]
    fn public_keys_lose_their_comment() {
        let dir = std::env::temp_dir().join(format!("hactl-lab-ssh-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k.pub");
        fs::write(&path, "ssh-ed25519 AAAAC3Nza hactl-lab\n").unwrap();
        assert_eq!(read_public_key(&path).unwrap(), "ssh-ed25519 AAAAC3Nza");
        fs::write(&path, "garbage").unwrap();
        assert!(read_public_key(&path).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
