//! IPVS on a real kernel: the agent's generic netlink messages, its table
//! against keepalived's, and traffic through it, inside the qemu VM that
//! [`harness`] boots (this machine's kernel has no IPVS).
//!
//! Every test builds its own network namespaces inside the VM (IPVS state
//! is per namespace), so tests never see each other's tables.

mod harness;
mod kernel;
#[path = "../support/mod.rs"]
mod support;

fn main() {
    harness::main(&[
        ("kernel_info_and_family", kernel::info_and_family),
        (
            "kernel_accepts_services_and_destinations",
            kernel::services_and_destinations,
        ),
        (
            "kernel_fwmark_persistence_and_ipv6",
            kernel::fwmark_persistence_and_ipv6,
        ),
    ]);
}
