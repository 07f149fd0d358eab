//! `forged_state`: no honest node holds an honest member in a state the
//! member did not sign.
//!
//! Judged at every table sample under attack: each honest node's entry for
//! each honest member that is up must not run ahead of the member's own
//! entry (a later life or version: at the ceiling, that mutes the
//! member), nor give it another address or name in its own life and
//! version, nor have it gone in a life it is still running. Accusations
//! (suspect, dead) of the member's own life and version are not judged
//! here: any member may make one, and the accused refutes it.

use super::check::{Check, Counter, End};
use crate::check_id::CheckId;
use crate::report::{CheckResult, Kind};
use gossip_chat::{MemberInfo, MemberState, MemberUpdate};

/// What is wrong with an honest node's entry `held` of a member whose own
/// entry is `own`, if anything: ahead of its own life and version, another
/// address or name at its own, or gone in the life it runs.
pub fn unsigned(held: &MemberInfo, own: &MemberUpdate) -> Option<String> {
    let theirs = (held.node.incarnation, held.version);
    let mine = (own.node.incarnation, own.version);
    let what = if theirs > mine {
        format!("life {} version {}", theirs.0, theirs.1)
    } else if theirs == mine && (held.addr != own.addr || held.name != own.name) {
        format!("address {} name {:?}", held.addr, &*held.name)
    } else if held.node.incarnation == own.node.incarnation && held.state == MemberState::Left {
        "departed".to_string()
    } else {
        return None;
    };
    Some(format!(
        "{what} (its own: life {} version {})",
        mine.0, mine.1
    ))
}

/// Table samples of honest nodes under attack, each judged.
#[derive(Default)]
pub struct ForgedState {
    /// Samples judged.
    pub counter: Counter,
    /// Whether forged member state was sent (`forge-state`).
    injected: bool,
}

impl ForgedState {
    /// A hostile node sent forged member state.
    pub fn injected(&mut self) {
        self.injected = true;
    }

    /// A sample of the honest node in `slot`: `wrong` describes each entry
    /// of an honest member it holds that the member did not sign.
    pub fn sample(&mut self, slot: u32, wrong: &[String]) {
        self.counter.judge(wrong.is_empty(), || {
            format!("n{slot} holds {}", wrong.join("; "))
        });
    }
}

impl Check for ForgedState {
    fn id(&self) -> CheckId {
        CheckId::ForgedState
    }
    fn kind(&self) -> Kind {
        Kind::Always
    }
    fn result(&self, _end: &End) -> CheckResult {
        let figure = format!(
            "{} honest tables held state a member did not sign, among {} samples{}",
            self.counter.failed,
            self.counter.judged,
            if self.injected {
                " (forged state sent)"
            } else {
                ""
            }
        );
        self.counter
            .result(self, figure, "no honest table was sampled under attack")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossip_chat::{Identity, Instant, NodeKey, Proof};
    use std::net::SocketAddr;

    fn own() -> MemberUpdate {
        let addr: SocketAddr = "10.0.0.1:7000".parse().unwrap();
        let id = Identity::new(addr, 3, "n1");
        let node = NodeKey {
            id: id.id(),
            incarnation: 3,
        };
        MemberUpdate {
            node,
            addr,
            version: 2,
            state: MemberState::Alive,
            name: "n1".into(),
            age_secs: 0,
            accuser: None,
            proof: Proof::sign(&id.key, node, 2, addr, "n1", false),
        }
    }

    fn held(f: impl FnOnce(&mut MemberInfo)) -> MemberInfo {
        let o = own();
        let mut m = MemberInfo {
            node: o.node,
            addr: o.addr,
            name: o.name.clone(),
            state: MemberState::Alive,
            since: Instant::ZERO,
            version: o.version,
            neighbour: false,
            last_heard: None,
        };
        f(&mut m);
        m
    }

    #[test]
    fn state_the_member_did_not_sign_is_named() {
        let own = own();
        // What the member signed, or an accusation of it, or an older
        // entry: nothing wrong.
        assert_eq!(unsigned(&held(|_| {}), &own), None);
        assert_eq!(unsigned(&held(|m| m.state = MemberState::Dead), &own), None);
        assert_eq!(unsigned(&held(|m| m.version = 0), &own), None);
        assert_eq!(unsigned(&held(|m| m.node.incarnation = 1), &own), None);
        // A later life (the ceiling mutes it), a later version, another
        // address or name, a departure in the life it runs.
        for (m, says) in [
            (
                held(|m| m.node.incarnation = (1 << 62) - 1),
                "life 4611686018427387903",
            ),
            (held(|m| m.version = 3), "version 3"),
            (
                held(|m| m.addr = "10.0.0.9:7000".parse().unwrap()),
                "address 10.0.0.9:7000",
            ),
            (held(|m| m.name = "mallory".into()), "name \"mallory\""),
            (held(|m| m.state = MemberState::Left), "departed"),
        ] {
            let w = unsigned(&m, &own).expect("named");
            assert!(w.contains(says), "{w}");
        }
    }
}
