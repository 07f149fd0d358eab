//! The `chat` nodes' data directories for one bench run: one per node
//! under a directory of the run's own, removed when the run ends.

use std::path::PathBuf;

/// The run's directory.
fn root() -> PathBuf {
    std::env::temp_dir().join(format!("gossip-chat-bench-{}", std::process::id()))
}

/// The data directory of the node called `name`.
pub fn of(name: &str) -> PathBuf {
    root().join(name)
}

/// Removes the run's directory when dropped.
pub struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(root());
    }
}
