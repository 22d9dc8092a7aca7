//! The agent's `unsafe` code, kept in one place so it can be read in one go.
//!
//! Each block carries a `// SAFETY:` note. Everything here wraps a C
//! structure or call that the safe crates (socket2, nix) leave to the caller.

use std::mem::size_of;

use nix::libc;
use socket2::{SockAddr, SockAddrStorage, socklen_t};

/// `struct sockaddr_ll` (packet(7)) for sending a whole Ethernet frame out
/// of interface `ifindex`. `protocol` is the frame's ethertype in host order
/// and `destination` its destination MAC; the kernel takes the frame as
/// written and uses these only to route it to the driver.
pub(crate) fn link_layer_address(ifindex: u32, protocol: u16, destination: [u8; 6]) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: `SockAddrStorage` is a `sockaddr_storage`, larger than and
    // aligned for `sockaddr_ll` (view_as asserts the size); the storage is
    // zeroed, which is a valid `sockaddr_ll`.
    let address = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_protocol = protocol.to_be();
    // Interface indexes are positive `int`s in the kernel; an index beyond
    // i32::MAX cannot name an interface and becomes 0, which the kernel
    // refuses with ENXIO instead of sending anywhere.
    address.sll_ifindex = i32::try_from(ifindex).unwrap_or(0);
    address.sll_halen = 6;
    address.sll_addr[..6].copy_from_slice(&destination);
    let length = size_of::<libc::sockaddr_ll>() as socklen_t;
    // SAFETY: the family is AF_PACKET and the storage holds a fully
    // initialised `sockaddr_ll` of exactly `length` bytes.
    unsafe { SockAddr::new(storage, length) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_ll_fields_are_in_kernel_order() {
        let address = link_layer_address(7, 0x0806, [0xff; 6]);
        assert_eq!(address.family(), libc::AF_PACKET as libc::sa_family_t);
        assert_eq!(address.len() as usize, size_of::<libc::sockaddr_ll>());
        // SAFETY: `as_ptr` points at the storage, which holds the
        // `sockaddr_ll` written above.
        let raw = unsafe { &*address.as_ptr().cast::<libc::sockaddr_ll>() };
        assert_eq!(raw.sll_protocol, 0x0806u16.to_be());
        assert_eq!(raw.sll_ifindex, 7);
        assert_eq!(raw.sll_halen, 6);
        assert_eq!(raw.sll_addr, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
    }
}
