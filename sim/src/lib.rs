//! The gossip-chat simulator.
