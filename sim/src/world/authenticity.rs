//! One judge of chat and member-entry signatures for every node of a
//! world: the nodes check the same signed copies, so each copy is verified
//! once and the answer remembered. The answers are those of
//! [`Chat::authentic`], [`MemberUpdate::proven`] and
//! [`MemberUpdate::attributed`], so nothing a node does
//! changes; only the simulator's own time does.

use gossip_chat::{Authenticity, Chat, MemberState, MemberUpdate, MsgId, NodeKey};
use indexmap::IndexMap;
use rustc_hash::FxBuildHasher;
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Copies remembered at most; the memory is cleared when it is full.
const MAX_REMEMBERED: usize = 1 << 20;

/// Everything a chat's signature covers, and the signature.
type Signed = ([u8; 64], [u8; 32], MsgId, u64, Arc<str>, Arc<str>);

/// Everything a member entry's proof covers, and the proof.
type Claimed = ([u8; 64], [u8; 32], NodeKey, u32, SocketAddr, Arc<str>, bool);

/// Everything an accusation covers, and its signature.
type Accused = ([u8; 64], [u8; 32], NodeKey, u32);

/// Answers by signed copy. Only looked up, never walked: the order of
/// the hash table reaches no output.
type Memory<K> = Mutex<IndexMap<K, bool, FxBuildHasher>>;

/// [`Chat::authentic`] and [`MemberUpdate::proven`], remembered per signed
/// copy.
#[derive(Debug, Default)]
pub(super) struct Remembered {
    answers: Memory<Signed>,
    claims: Memory<Claimed>,
    accusations: Memory<Accused>,
}

/// The answer remembered in `memory` for `key`, or `check`'s, remembered
/// (the memory is cleared when it is full).
fn remember<K: Hash + Eq>(memory: &Memory<K>, key: K, check: impl FnOnce() -> bool) -> bool {
    let mut memory = memory.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&a) = memory.get(&key) {
        return a;
    }
    if memory.len() >= MAX_REMEMBERED {
        memory.clear();
    }
    let a = check();
    memory.insert(key, a);
    a
}

impl Authenticity for Remembered {
    fn authentic(&self, chat: &Chat) -> bool {
        let signed: Signed = (
            chat.sig.to_bytes(),
            chat.key,
            chat.id,
            chat.sent_ms,
            chat.name.clone(),
            chat.text.clone(),
        );
        remember(&self.answers, signed, || chat.authentic())
    }

    fn proven(&self, u: &MemberUpdate) -> bool {
        let claimed: Claimed = (
            u.proof.sig.to_bytes(),
            u.proof.key,
            u.node,
            u.version,
            u.addr,
            u.name.clone(),
            u.state == MemberState::Left,
        );
        remember(&self.claims, claimed, || u.proven())
    }

    fn attributed(&self, u: &MemberUpdate) -> bool {
        // Only an accusation or a death names what its accuser signed.
        let accusing = matches!(u.state, MemberState::Suspect | MemberState::Dead);
        let Some(x) = u.accuser.as_ref().filter(|_| accusing) else {
            return u.attributed();
        };
        let accused: Accused = (x.sig.to_bytes(), x.key, u.node, u.version);
        remember(&self.accusations, accused, || u.attributed())
    }
}
