//! gossip-chat: a peer-to-peer group chat with no server.
//!
//! The whole protocol lives in [`Node`], a pure state machine: it is fed
//! [`Input`]s with the current [`Instant`] and answers with [`Output`]s. It
//! owns no socket, reads no clock and draws no global randomness, so the
//! same node runs in the deterministic simulator (`gossip-sim`), in tests,
//! and over TCP (the `gossip-chat-net` crate in `net/`, with the `chat`
//! program).
//!
//! # Run loop
//!
//! ```
//! use gossip_chat::{Config, Input, Instant, Node, Output};
//! let mut node = Node::new(Config::default(), gossip_chat::Identity::new("127.0.0.1:7000".parse().unwrap(), 1, "alice"), 7, Instant::ZERO).unwrap();
//! let mut outputs = Vec::new();
//! let mut now = Instant::ZERO;
//! for _ in 0..3 {
//!     // Wait for I/O or until the node's deadline, then feed what happened.
//!     now = node.poll_timeout().unwrap();
//!     node.handle(now, Input::Timeout, &mut outputs);
//!     for out in outputs.drain(..) {
//!         match out {
//!             Output::Send { .. } | Output::Connect { .. } | Output::Close { .. } => { /* do it */ }
//!             Output::Event(ev) => println!("{ev:?}"),
//!         }
//!     }
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checked;
mod config;
mod history;
mod message;
mod node;
mod peers;
mod time;
pub mod wire;

pub use checked::{Checked, Hold, Verified, MAX_CHATS_AHEAD, MAX_ENTRIES_AHEAD};
pub use config::{Config, ConfigError};
pub use message::{
    Accusation, Beacon, Busy, ByeReason, Chat, Digest, Graft, Hello, History, Id, MemberState,
    MemberUpdate, Message, MsgId, NodeKey, Proof, Sync, PROTOCOL_VERSION,
};
pub use node::{
    Authenticity, ConnId, DownReason, Event, Identity, Input, MemberInfo, Node, Output, Refusal,
    Stats, TableSizes, Via, MAX_PROBES, MAX_PROBING, MAX_RECENT,
};
pub use time::{Duration, Instant};
