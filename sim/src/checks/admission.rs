//! `admission`: a node without the cluster key (a `no-key` attack) and the
//! members exchange nothing: no message a member sent while the node
//! lacked the key reaches it, and none it sent then reaches a member.
//!
//! Judged at each message's delivery deadline, while the node still lacks
//! the key: once per node that lacked it when a member sent the message,
//! and once per member for a message the node sent then.

use super::check::{Check, Counter, End};
use super::facts::Facts;
use crate::check_id::CheckId;
use crate::net::Network;
use crate::report::{CheckResult, Kind};
use gossip_chat::Instant;

/// Messages that could have crossed between a node without the key and a
/// member, each judged.
#[derive(Default)]
pub struct Admission {
    /// Cases judged.
    pub counter: Counter,
    /// Dials refused at the handshake.
    pub refused: u64,
}

impl Check for Admission {
    fn id(&self) -> CheckId {
        CheckId::Admission
    }
    fn kind(&self) -> Kind {
        Kind::Always
    }
    fn delivery_deadline(&mut self, f: &Facts, now: Instant, msg: u32, _net: &Network) {
        if f.no_key.is_empty() {
            return;
        }
        let m = &f.msgs[msg as usize];
        let sender = f.lives[m.sender as usize].slot;
        let stranger_sent = f.lacks_key(sender, m.sent);
        for (l, life) in f.lives.iter().enumerate() {
            if life.slot == sender || life.start > m.sent {
                continue;
            }
            // Either end without the key when the message was sent, the
            // other with it: nothing may cross.
            let receiver_lacks = f.lacks_key(life.slot, m.sent);
            if stranger_sent == receiver_lacks {
                continue;
            }
            // Once the node holds the key again, repair may bring it what
            // it missed: judged only while it still lacks it.
            let stranger = if stranger_sent { sender } else { life.slot };
            if !f.lacks_key(stranger, now) {
                continue;
            }
            let got = m.delivered.get(l);
            let (from, to) = (sender, life.slot);
            self.counter.judge(!got, || {
                let who = if stranger_sent {
                    "a node without the cluster key"
                } else {
                    "a member"
                };
                format!(
                    "n{to} got a message that n{from} ({who}) sent at {} while the other lacked the key",
                    m.sent
                )
            });
        }
    }
    fn result(&self, end: &End) -> CheckResult {
        let _ = end;
        let figure = format!(
            "{} messages judged between nodes without the cluster key and members; {} dials refused at the handshake",
            self.counter.judged, self.refused
        );
        self.counter.result(
            self,
            figure,
            "no node lacked the cluster key while a message was sent",
        )
    }
}
