//! Message kinds, typed: one per [`Message`] variant, with the name the
//! traffic figures use and what the kind is for (idle upkeep, repair or
//! dissemination).

use gossip_chat::Message;

/// What a message is for, as the report splits traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// Membership and connection upkeep: sent even when nobody chats.
    Idle,
    /// Anti-entropy: digests and the history they ask for.
    Repair,
    /// Chats and the broadcast tree that carries them.
    Dissemination,
}

/// The kinds of [`Message`], one per variant, named as
/// [`Message::kind`] names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MsgKind {
    Join,
    Hello,
    Peers,
    FullList,
    Ping,
    Pong,
    ProbeReq,
    ProbeAck,
    Busy,
    Chat,
    Leave,
    Bye,
    Sync,
    Digest,
    History,
    Prune,
    Graft,
    IHave,
    Buckets,
    PartList,
    Prints,
    Want,
    ProbeNack,
    Heartbeat,
    Beacon,
    Listen,
}

impl MsgKind {
    #[cfg(test)]
    const ALL: [MsgKind; 26] = [
        MsgKind::Join,
        MsgKind::Hello,
        MsgKind::Peers,
        MsgKind::FullList,
        MsgKind::Ping,
        MsgKind::Pong,
        MsgKind::ProbeReq,
        MsgKind::ProbeAck,
        MsgKind::Busy,
        MsgKind::Chat,
        MsgKind::Leave,
        MsgKind::Bye,
        MsgKind::Sync,
        MsgKind::Digest,
        MsgKind::History,
        MsgKind::Prune,
        MsgKind::Graft,
        MsgKind::IHave,
        MsgKind::Buckets,
        MsgKind::PartList,
        MsgKind::Prints,
        MsgKind::Want,
        MsgKind::ProbeNack,
        MsgKind::Heartbeat,
        MsgKind::Beacon,
        MsgKind::Listen,
    ];

    /// The kind of `m` (a new message variant must be placed here).
    pub(super) fn of(m: &Message) -> MsgKind {
        match m {
            Message::Join(_) => MsgKind::Join,
            Message::Hello(_) => MsgKind::Hello,
            Message::PeerList { full: true, .. } => MsgKind::FullList,
            Message::PeerList { .. } => MsgKind::Peers,
            Message::Ping(_) => MsgKind::Ping,
            Message::Pong(_) | Message::ProbePong { .. } => MsgKind::Pong,
            Message::ProbeReq { .. } => MsgKind::ProbeReq,
            Message::ProbeAck { .. } => MsgKind::ProbeAck,
            Message::Busy(_) => MsgKind::Busy,
            Message::Chat(_) => MsgKind::Chat,
            Message::Leave(_) => MsgKind::Leave,
            Message::Bye(_) => MsgKind::Bye,
            Message::Sync(_) => MsgKind::Sync,
            Message::Digest(_) => MsgKind::Digest,
            Message::History(_) => MsgKind::History,
            Message::Prune => MsgKind::Prune,
            Message::Graft(_) => MsgKind::Graft,
            Message::IHave(_) => MsgKind::IHave,
            Message::Buckets(_) => MsgKind::Buckets,
            Message::RosterPart { .. } => MsgKind::PartList,
            Message::Prints { .. } => MsgKind::Prints,
            Message::Want(_) => MsgKind::Want,
            Message::ProbeNack { .. } => MsgKind::ProbeNack,
            Message::Heartbeat(_) => MsgKind::Heartbeat,
            Message::Beacon(_) => MsgKind::Beacon,
            Message::Listen(_) => MsgKind::Listen,
        }
    }

    /// The name the observer counts traffic under ([`Message::kind`]).
    pub(super) fn name(self) -> &'static str {
        match self {
            MsgKind::Join => "join",
            MsgKind::Hello => "hello",
            MsgKind::Peers => "peers",
            MsgKind::FullList => "full-list",
            MsgKind::Ping => "ping",
            MsgKind::Pong => "pong",
            MsgKind::ProbeReq => "probe-req",
            MsgKind::ProbeAck => "probe-ack",
            MsgKind::Busy => "busy",
            MsgKind::Chat => "chat",
            MsgKind::Leave => "leave",
            MsgKind::Bye => "bye",
            MsgKind::Sync => "sync",
            MsgKind::Digest => "digest",
            MsgKind::History => "history",
            MsgKind::Prune => "prune",
            MsgKind::Graft => "graft",
            MsgKind::IHave => "ihave",
            MsgKind::Buckets => "buckets",
            MsgKind::PartList => "part-list",
            MsgKind::Prints => "prints",
            MsgKind::Want => "want",
            MsgKind::ProbeNack => "probe-nack",
            MsgKind::Heartbeat => "heartbeat",
            MsgKind::Beacon => "beacon",
            MsgKind::Listen => "listen",
        }
    }

    /// The kind named `name`, if any.
    #[cfg(test)]
    pub(super) fn named(name: &str) -> Option<MsgKind> {
        MsgKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// What the kind is for.
    pub(super) fn purpose(self) -> Purpose {
        match self {
            MsgKind::Hello
            | MsgKind::Join
            | MsgKind::Peers
            | MsgKind::FullList
            | MsgKind::Buckets
            | MsgKind::PartList
            | MsgKind::Prints
            | MsgKind::Want
            | MsgKind::Ping
            | MsgKind::Pong
            | MsgKind::ProbeReq
            | MsgKind::ProbeAck
            | MsgKind::ProbeNack
            | MsgKind::Heartbeat
            | MsgKind::Beacon
            | MsgKind::Busy
            | MsgKind::Sync
            | MsgKind::Leave
            | MsgKind::Bye => Purpose::Idle,
            MsgKind::Digest | MsgKind::History => Purpose::Repair,
            MsgKind::Chat | MsgKind::Prune | MsgKind::Graft | MsgKind::IHave | MsgKind::Listen => {
                Purpose::Dissemination
            }
        }
    }
}

/// What `m` is for: as its kind, except a newcomer's catch-up (the
/// history in a join answer, with the streams' baseline), which no loss
/// asked for and is membership upkeep, not repair.
pub(super) fn purpose_of(m: &Message) -> Purpose {
    match m {
        Message::History(h) if h.baseline.is_some() => Purpose::Idle,
        m => MsgKind::of(m).purpose(),
    }
}

/// The chat messages `m` carries, by id.
pub(super) fn chat_ids(m: &Message) -> Vec<gossip_chat::MsgId> {
    match m {
        Message::Chat(c) => vec![c.id],
        Message::History(h) => h.chats.iter().map(|c| c.id).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::{purpose_of, MsgKind, Purpose};
    use gossip_chat::{History, Message};

    #[test]
    fn a_newcomers_catch_up_is_not_repair() {
        let history = |baseline| {
            Message::History(History {
                chats: Vec::new(),
                baseline,
            })
        };
        assert_eq!(purpose_of(&history(Some(Vec::new()))), Purpose::Idle);
        assert_eq!(purpose_of(&history(None)), Purpose::Repair);
        assert_eq!(purpose_of(&Message::Prune), Purpose::Dissemination);
    }

    #[test]
    fn kinds_are_named_as_the_core_names_them() {
        for m in [
            Message::Prune,
            Message::PeerList {
                full: true,
                members: Vec::new(),
            },
        ] {
            assert_eq!(MsgKind::of(&m).name(), m.kind());
            assert_eq!(MsgKind::named(m.kind()), Some(MsgKind::of(&m)));
        }
        for k in MsgKind::ALL {
            assert_eq!(MsgKind::named(k.name()), Some(k));
        }
        assert_eq!(MsgKind::named("frame"), None);
        assert_eq!(MsgKind::Ping.purpose(), Purpose::Idle);
        assert_eq!(MsgKind::History.purpose(), Purpose::Repair);
        assert_eq!(MsgKind::Chat.purpose(), Purpose::Dissemination);
    }
}
