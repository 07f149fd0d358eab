//! Addresses of simulated nodes: slot `i` listens on 10.0.0.1 + i, port
//! 7000.

use gossip_chat::Id;
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

/// First bytes of every simulated node's id: the rest is its slot.
const ID_TAG: [u8; 4] = *b"sim\0";

/// The id of node slot `i`, the same in every life (as a data directory
/// keeps a real node's key): the slot, tagged, so that a report can name
/// the node an id stands for without a table.
pub fn id_of(i: u32) -> Id {
    let mut id = [0; 8];
    id[..4].copy_from_slice(&ID_TAG);
    id[4..].copy_from_slice(&i.to_be_bytes());
    Id(id)
}

/// The slot of an id, if it is a simulated node's.
pub fn slot_of_id(id: &Id, slots: usize) -> Option<u32> {
    if id.0[..4] != ID_TAG {
        return None;
    }
    let i = u32::from_be_bytes([id.0[4], id.0[5], id.0[6], id.0[7]]);
    ((i as usize) < slots).then_some(i)
}
