//! Addresses of simulated nodes: slot `i` listens on 10.0.0.1 + i, port
//! 7000.

use gossip_chat::Id;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Mutex;

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

/// The ids of the first slots, and back, as far as they were asked for:
/// a key pair takes tens of microseconds to derive.
static IDS: Mutex<Ids> = Mutex::new(Ids {
    of: Vec::new(),
    slot: BTreeMap::new(),
});

struct Ids {
    of: Vec<Id>,
    slot: BTreeMap<Id, u32>,
}

impl Ids {
    /// Derives the ids of slots up to `n` (exclusive).
    fn reach(&mut self, n: usize) {
        while self.of.len() < n {
            let i = self.of.len() as u32;
            let id = Id::of_addr(addr_of(i));
            self.of.push(id);
            self.slot.insert(id, i);
        }
    }
}

fn ids() -> std::sync::MutexGuard<'static, Ids> {
    IDS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The id of node slot `i`, the same in every life and every seed (as a
/// data directory keeps a real node's key): that of the key pair derived
/// from its address ([`gossip_chat::Identity::new`]).
pub fn id_of(i: u32) -> Id {
    let mut t = ids();
    t.reach(i as usize + 1);
    t.of[i as usize]
}

/// The slot of an id among the first `slots`, if it is a simulated
/// node's (`usize::MAX`: among the slots named so far).
pub fn slot_of_id(id: &Id, slots: usize) -> Option<u32> {
    let mut t = ids();
    if slots != usize::MAX {
        t.reach(slots);
    }
    t.slot.get(id).copied().filter(|i| (*i as usize) < slots)
}
