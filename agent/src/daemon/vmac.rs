//! `use_vmac`: the macvlan interfaces that carry an instance's VIPs with
//! the VRRP virtual MAC (RFC 5798 7.3), so that a takeover moves the VIPs
//! without neighbours having to learn a new MAC.
//!
//! Each interface is a private-mode macvlan on the instance's interface,
//! created at start (or reused if a predecessor left it), brought up with no
//! IPv6 link-local address (`addrgenmode none`: the backup's copy of the
//! same MAC must never transmit), and with `arp_ignore=1` and `arp_filter=1`
//! so it answers ARP only for the VIPs it holds. Adverts still leave from
//! the instance's interface (keepalived's `vmac_xmit_base`). The interfaces
//! are deleted when the agent stops.
//!
//! Links are made with iproute2 (`ip link`) until the rtnetlink module grows
//! a macvlan request; addresses on them go through rtnetlink as all VIPs.

use std::process::Stdio;

use thiserror::Error;
use tokio::process::Command;

use crate::glue::{Plan, Vmac};
use crate::network;

#[derive(Debug, Error)]
pub enum VmacError {
    #[error("cannot run ip")]
    Spawn(#[source] std::io::Error),
    #[error("ip {args} failed: {stderr}")]
    Command { args: String, stderr: String },
    #[error("cannot set {key} on {interface}")]
    Sysctl {
        interface: String,
        key: &'static str,
        #[source]
        source: std::io::Error,
    },
}

async fn ip(args: &[&str]) -> Result<(), VmacError> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(VmacError::Spawn)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(VmacError::Command {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Creates (or adopts) the virtual MAC interface `vmac` on `base`.
pub async fn ensure(base: &str, vmac: &Vmac) -> Result<(), VmacError> {
    let mac = format_mac(vmac.mac);
    let name = vmac.name.as_str();
    if network::link_up(name).is_none() {
        ip(&[
            "link", "add", "link", base, "name", name, "address", &mac, "type", "macvlan", "mode",
            "private",
        ])
        .await?;
        // Before the link is up, so it never gets a link-local address.
        ip(&["link", "set", "dev", name, "addrgenmode", "none"]).await?;
    } else {
        // Left by a predecessor (or kept across a reload): only the MAC is
        // ours to set again; the rest was set when it was made.
        ip(&["link", "set", "dev", name, "address", &mac]).await?;
    }
    for key in ["arp_ignore", "arp_filter"] {
        let path = format!("/proc/sys/net/ipv4/conf/{name}/{key}");
        std::fs::write(&path, "1\n").map_err(|source| VmacError::Sysctl {
            interface: name.to_owned(),
            key,
            source,
        })?;
    }
    ip(&["link", "set", "dev", name, "up"]).await
}

/// Deletes the virtual MAC interface `name`; absent is fine.
pub async fn remove(name: &str) -> Result<(), VmacError> {
    if network::link_up(name).is_none() {
        return Ok(());
    }
    ip(&["link", "del", "dev", name]).await
}

/// The virtual MAC interfaces of `plan`: (base interface, vmac).
pub fn of(plan: &Plan) -> Vec<(&str, &Vmac)> {
    let mut found: Vec<(&str, &Vmac)> = Vec::new();
    for w in &plan.wire {
        if let Some(v) = &w.vmac
            && !found.iter().any(|(_, f)| f.name == v.name)
        {
            found.push((w.interface.as_str(), v));
        }
    }
    found
}
