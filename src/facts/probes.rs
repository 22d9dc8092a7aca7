//! Active probes: facts that send packets.
//!
//! **Duplicate address.** Before a VIP is configured, is something on the
//! segment already answering for it? With iputils `arping` installed:
//! `arping -D -c 2 -w 3 -I IF ADDR` (duplicate address detection, RFC 5227
//! probes from 0.0.0.0; exit 1 when anybody replies). Without it: one
//! packet to the address (`ping`, or an empty UDP datagram from python3
//! when ping is absent) makes the kernel resolve the neighbour; once the
//! entry leaves INCOMPLETE (at most 4 s), `ip -j neigh show to ADDR dev IF`:
//! an entry with a link-layer address (REACHABLE, STALE, DELAY, PROBE)
//! means a host answered ARP/ND, even if it drops ICMP and UDP.
//! An address the host itself holds is reported as such, not as a
//! duplicate (a re-deploy finds its own VIP).
//!
//! **VRRP reachability.** Host B opens a raw IP socket for protocol 112
//! (joining the multicast group on its interface) and waits a few seconds
//! for a packet from A; A sends three protocol-112 packets to the group or
//! to B's unicast address, TTL 255 (RFC 5798 5.1.1.3). A raw socket sees a
//! packet only after B's firewall input hooks, unlike a capture, so a rule
//! that drops VRRP on B shows as "not received". The probe payload has
//! VRRP version 0, which every VRRP receiver discards (RFC 5798 7.1), so a
//! running keepalived ignores it; a real advertisement from A also counts.
//! Both ends are python3 scripts ([`ProbeTool::Python3`]) until
//! `hactl-agent probe` exists; the tool is an enum so the ends can be
//! swapped without touching callers.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::{Fact, FactError, ParseError};
use crate::ssh::{CommandOutput, HostSession, RemoteCommand, SshError, script_argv};

// ===== duplicate address =====

const DUPLICATE_SCRIPT: &str = r##"if [ -n "$(ip -o addr show to "$2" 2>/dev/null)" ]; then echo '#local'; exit 0; fi
if command -v arping >/dev/null 2>&1 && arping -V 2>&1 | grep -q iputils; then
  echo '#arping'; arping -D -c 2 -w 3 -I "$1" "$2"; echo "#exit $?"
else
  echo '#neigh'
  if command -v ping >/dev/null 2>&1; then
    ping -c 1 -W 1 -I "$1" "$2" >/dev/null 2>&1
  else
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[1].encode())
s.sendto(b"", (sys.argv[2], 9))' "$1" "$2" 2>/dev/null
  fi
  i=0
  while [ $i -lt 40 ] && ip neigh show to "$2" dev "$1" | grep -q INCOMPLETE; do
    sleep 0.1; i=$((i + 1))
  done
  ip -j neigh show to "$2" dev "$1"
fi"##;

/// Whether an address is in use on a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AddressUse {
    Free,
    /// Another host answered for it; its MAC when known.
    InUse {
        mac: Option<String>,
    },
    /// The probing host has it on one of its interfaces.
    HeldLocally,
}

/// Is `address` already answering on the segment of `interface`? Needs
/// root (arping opens a packet socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateAddress {
    pub interface: String,
    pub address: IpAddr,
}

impl Fact for DuplicateAddress {
    type Output = AddressUse;

    fn name(&self) -> &'static str {
        "duplicate address"
    }

    fn command(&self) -> RemoteCommand {
        let address = self.address.to_string();
        RemoteCommand::new(&script_argv(
            DUPLICATE_SCRIPT,
            &[self.interface.as_str(), &address],
        ))
        .become_(true)
        .timeout(Duration::from_secs(15))
    }

    fn parse(&self, output: &CommandOutput) -> Result<AddressUse, ParseError> {
        let text = output.stdout_text();
        let mut lines = text.lines();
        match lines.next() {
            Some("#local") => Ok(AddressUse::HeldLocally),
            Some("#arping") => {
                let exit = text
                    .lines()
                    .find_map(|l| l.strip_prefix("#exit "))
                    .and_then(|c| c.trim().parse::<i32>().ok());
                match exit {
                    Some(0) => Ok(AddressUse::Free),
                    // "Unicast reply from 10.0.0.5 [AA:BB:CC:DD:EE:FF]  0.8ms"
                    Some(1) => Ok(AddressUse::InUse {
                        mac: text.lines().find_map(|l| {
                            let rest = l.strip_prefix("Unicast reply from ")?;
                            let mac = rest.split_once('[')?.1.split_once(']')?.0;
                            Some(mac.to_ascii_lowercase())
                        }),
                    }),
                    _ => Err(ParseError::new(format!(
                        "arping failed: {}",
                        output.stderr_text().trim()
                    ))),
                }
            }
            Some("#neigh") => {
                let json: String = lines.collect::<Vec<_>>().join("\n");
                let entries: Value = serde_json::from_str(json.trim())
                    .map_err(|e| ParseError::new(format!("ip -j neigh output: {e}")))?;
                let answered = entries.as_array().into_iter().flatten().find_map(|e| {
                    let states: Vec<&str> = e["state"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    let failed = states.iter().any(|s| matches!(*s, "FAILED" | "INCOMPLETE"));
                    let mac = e["lladdr"].as_str()?;
                    (!failed).then(|| mac.to_ascii_lowercase())
                });
                Ok(match answered {
                    Some(mac) => AddressUse::InUse { mac: Some(mac) },
                    None => AddressUse::Free,
                })
            }
            _ => Err(ParseError::unexpected(output)),
        }
    }
}

// ===== VRRP reachability =====

/// The IPv4 multicast group of VRRP (RFC 5798 5.1.1.2).
pub const VRRP_MULTICAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// Sends three protocol-112 packets: argv DESTINATION SOURCE.
const PYTHON_SENDER: &str = r#"import socket, sys, time
dst, src = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
s.bind((src, 0))
for _ in range(3):
    s.sendto(b"\x00\x00\x00\x00hactl-probe", (dst, 0))
    time.sleep(0.2)
"#;

/// Waits for a protocol-112 packet from SOURCE: argv GROUP-OR-LOCAL SOURCE
/// LOCAL SECONDS. Prints "listening" on stderr once the socket is open,
/// then "received" (exit 0) or "timeout" (exit 3).
const PYTHON_RECEIVER: &str = r#"import select, socket, sys, time
dst, src, local, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
if 224 <= int(dst.split(".")[0]) <= 239:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(dst) + socket.inet_aton(local))
print("listening", file=sys.stderr, flush=True)
end = time.time() + secs
while True:
    left = end - time.time()
    if left <= 0:
        print("timeout", flush=True)
        sys.exit(3)
    if not select.select([s], [], [], left)[0]:
        continue
    data, (addr, _) = s.recvfrom(4096)
    if addr == src:
        print("received", addr, len(data), flush=True)
        sys.exit(0)
"#;

/// The programs at both ends of a VRRP probe.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ProbeTool {
    /// python3 with raw sockets (in every mainstream distribution's base).
    #[default]
    Python3,
}

impl ProbeTool {
    fn sender(&self, destination: Ipv4Addr, source: Ipv4Addr) -> RemoteCommand {
        match self {
            ProbeTool::Python3 => RemoteCommand::new(&[
                "python3",
                "-c",
                PYTHON_SENDER,
                &destination.to_string(),
                &source.to_string(),
            ]),
        }
    }

    fn receiver(
        &self,
        destination: Ipv4Addr,
        source: Ipv4Addr,
        local: Ipv4Addr,
        wait: Duration,
    ) -> RemoteCommand {
        match self {
            ProbeTool::Python3 => RemoteCommand::new(&[
                "python3",
                "-c",
                PYTHON_RECEIVER,
                &destination.to_string(),
                &source.to_string(),
                &local.to_string(),
                &wait.as_secs().to_string(),
            ]),
        }
    }
}

/// One probe from a sender to a receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpProbe {
    /// The sender's address on the VRRP interface (the packets' source).
    pub sender_address: Ipv4Addr,
    /// The receiver's address on its VRRP interface.
    pub receiver_address: Ipv4Addr,
    /// [`VRRP_MULTICAST_GROUP`], or the receiver's address for unicast peers.
    pub destination: Ipv4Addr,
    /// How long the receiver waits.
    pub wait: Duration,
    pub tool: ProbeTool,
}

impl VrrpProbe {
    /// A multicast probe, the default VRRP transport.
    pub fn multicast(sender_address: Ipv4Addr, receiver_address: Ipv4Addr) -> VrrpProbe {
        VrrpProbe {
            sender_address,
            receiver_address,
            destination: VRRP_MULTICAST_GROUP,
            wait: Duration::from_secs(3),
            tool: ProbeTool::Python3,
        }
    }
}

/// What the receiver saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum VrrpReachability {
    Received,
    /// Nothing arrived in time; `sender_error` says why the sender failed,
    /// if it did (an output firewall rule makes `sendto` fail).
    NotReceived {
        sender_error: Option<String>,
    },
}

/// Reads the receiver's output.
pub(crate) fn parse_receiver(output: &CommandOutput) -> Result<bool, ParseError> {
    let text = output.stdout_text();
    match output.status {
        Some(0) if text.starts_with("received") => Ok(true),
        Some(3) if text.trim() == "timeout" => Ok(false),
        _ => Err(ParseError::unexpected(output)),
    }
}

/// Runs a probe from `sender` to `receiver`; both need root.
pub async fn probe_vrrp(
    sender: &HostSession,
    receiver: &HostSession,
    probe: &VrrpProbe,
) -> Result<VrrpReachability, FactError> {
    let listen = probe
        .tool
        .receiver(
            probe.destination,
            probe.sender_address,
            probe.receiver_address,
            probe.wait,
        )
        .become_(true);
    let mut listening = receiver.spawn(&listen).await?;
    let parse_error = |host: &str, command: String, source| FactError::Parse {
        host: host.to_string(),
        fact: "vrrp probe",
        command,
        source,
    };
    if !listening
        .wait_for_stderr("listening", probe.wait + Duration::from_secs(5))
        .await
    {
        let command = listening.command().to_string();
        let output = listening.finish(Duration::from_secs(2)).await?;
        return Err(parse_error(
            receiver.host(),
            command,
            ParseError::unexpected(&output),
        ));
    }
    let send = probe
        .tool
        .sender(probe.destination, probe.sender_address)
        .become_(true);
    let sent = sender.run(&send).await;
    let command = listening.command().to_string();
    let output = listening
        .finish(probe.wait + Duration::from_secs(5))
        .await?;
    let received =
        parse_receiver(&output).map_err(|source| parse_error(receiver.host(), command, source))?;
    Ok(match (received, sent) {
        (true, _) => VrrpReachability::Received,
        (false, Ok(_)) => VrrpReachability::NotReceived { sender_error: None },
        (false, Err(SshError::Remote(error))) => VrrpReachability::NotReceived {
            sender_error: Some(error.to_string()),
        },
        (false, Err(other)) => return Err(other.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::output;
    use super::*;

    fn fact() -> DuplicateAddress {
        DuplicateAddress {
            interface: "eth0".into(),
            address: "10.213.201.50".parse().unwrap(),
        }
    }

    #[test]
    fn duplicate_address_by_arping() {
        let reply = include_str!("testdata/arping_duplicate.txt");
        assert_eq!(
            fact().parse(&output(0, reply, "")).unwrap(),
            AddressUse::InUse {
                mac: Some("aa:bb:cc:00:11:22".into())
            }
        );
        let free = "#arping\nARPING 10.213.201.50 from 0.0.0.0 eth0\nSent 2 probes (2 broadcast(s))\nReceived 0 response(s)\n#exit 0\n";
        assert_eq!(
            fact().parse(&output(0, free, "")).unwrap(),
            AddressUse::Free
        );
        assert!(fact().parse(&output(0, "#arping\n#exit 2\n", "")).is_err());
    }

    #[test]
    fn duplicate_address_by_neighbour_table() {
        let seen = "#neigh\n[{\"dst\":\"10.213.201.50\",\"dev\":\"eth0\",\"lladdr\":\"AA:bb:cc:00:11:22\",\"state\":[\"REACHABLE\"]}]\n";
        assert_eq!(
            fact().parse(&output(0, seen, "")).unwrap(),
            AddressUse::InUse {
                mac: Some("aa:bb:cc:00:11:22".into())
            }
        );
        let failed =
            "#neigh\n[{\"dst\":\"10.213.201.50\",\"dev\":\"eth0\",\"state\":[\"FAILED\"]}]\n";
        assert_eq!(
            fact().parse(&output(0, failed, "")).unwrap(),
            AddressUse::Free
        );
        assert_eq!(
            fact().parse(&output(0, "#neigh\n[]\n", "")).unwrap(),
            AddressUse::Free
        );
        assert_eq!(
            fact().parse(&output(0, "#local\n", "")).unwrap(),
            AddressUse::HeldLocally
        );
        assert!(fact().parse(&output(0, "#neigh\n{\n", "")).is_err());
    }

    #[test]
    fn probe_receiver_outputs() {
        assert!(parse_receiver(&output(0, "received 10.0.0.1 35\n", "listening\n")).unwrap());
        assert!(!parse_receiver(&output(3, "timeout\n", "listening\n")).unwrap());
        assert!(parse_receiver(&output(127, "", "sh: python3: not found")).is_err());
        assert!(parse_receiver(&output(1, "", "PermissionError")).is_err());
    }
}
