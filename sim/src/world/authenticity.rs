//! One judge of chat signatures for every node of a world: the nodes check
//! the same signed copies, so each copy is verified once and the answer
//! remembered. The answers are those of [`Chat::authentic`], so nothing a
//! node does changes; only the simulator's own time does.

use gossip_chat::{Authenticity, Chat, MsgId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Copies remembered at most; the memory is cleared when it is full.
const MAX_REMEMBERED: usize = 1 << 20;

/// Everything a chat's signature covers, and the signature.
type Signed = ([u8; 64], [u8; 32], MsgId, u64, Arc<str>, Arc<str>);

/// [`Chat::authentic`], remembered per signed copy.
#[derive(Debug, Default)]
pub(super) struct Remembered {
    answers: Mutex<BTreeMap<Signed, bool>>,
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
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&a) = answers.get(&signed) {
            return a;
        }
        if answers.len() >= MAX_REMEMBERED {
            answers.clear();
        }
        let a = chat.authentic();
        answers.insert(signed, a);
        a
    }
}
