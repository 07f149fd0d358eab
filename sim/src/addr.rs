//! Addresses of simulated nodes: slot `i` listens on 10.0.0.1 + i, port
//! 7000.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// The port every simulated node listens on.
pub const PORT: u16 = 7000;
/// First address: node i is 10.0.0.1 + i.
pub const BASE_IP: u32 = 0x0a00_0001;

/// The address of node slot `i`.
pub fn addr_of(i: u32) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(BASE_IP + i), PORT))
}

/// The slot of an address, if it is a simulated node.
pub fn slot_of(a: &SocketAddr, slots: usize) -> Option<u32> {
    match a {
        SocketAddr::V4(v4) if v4.port() == PORT => {
            let i = u32::from(*v4.ip()).checked_sub(BASE_IP)?;
            ((i as usize) < slots).then_some(i)
        }
        _ => None,
    }
}
