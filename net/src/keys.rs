//! Who a node is and which cluster it may talk to: its identity key, the
//! cluster keys it holds, and the data directory that keeps both.
//!
//! - The **identity** is an ed25519 key pair. Its public half is the
//!   member's id; the handshake proves it (see [`crate::secure`]).
//! - The **keyring** holds the cluster keys (32 random bytes each, shared by
//!   every member). A connection opens only between nodes that hold a common
//!   key. The first key is the primary: a node offers its keys primary
//!   first, and the answering node picks the first it also holds, so a key
//!   can be rotated in three idempotent steps on every node: install the new
//!   key, use it (make it primary), remove the old one. An empty keyring is
//!   the open mode: anyone who can reach the node may join and read.
//! - The **data directory** keeps the identity and the keyring across
//!   restarts, owner-only, and is locked by the process that uses it.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Most cluster keys a keyring holds (and a handshake offers).
pub const MAX_CLUSTER_KEYS: usize = 8;

/// First line of the identity file.
const IDENTITY_HEADER: &str = "gossip-chat identity key v1";
/// First line of the keyring file.
const KEYRING_HEADER: &str = "gossip-chat cluster keys v1 (primary first)";
/// Names of the files in a data directory.
const IDENTITY_FILE: &str = "identity";
const KEYRING_FILE: &str = "cluster-keys";
const LOCK_FILE: &str = "lock";

/// A member's public identity: its ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub [u8; 32]);

impl PeerId {
    /// The member id the core knows this key by ([`gossip_chat::Id::of_key`]).
    pub fn member_id(&self) -> gossip_chat::Id {
        gossip_chat::Id::of_key(&self.0)
    }
}

impl fmt::Display for PeerId {
    /// Unpadded URL-safe base64, 43 characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({self})")
    }
}

/// A node's identity key pair.
#[derive(Clone)]
pub struct NodeIdentity {
    signing: SigningKey,
}

impl NodeIdentity {
    /// A new key pair from the operating system's randomness.
    pub fn generate() -> NodeIdentity {
        NodeIdentity::from_seed(random_bytes())
    }

    /// The key pair of a 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> NodeIdentity {
        NodeIdentity {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The public identity.
    pub fn id(&self) -> PeerId {
        PeerId(self.signing.verifying_key().to_bytes())
    }

    /// The 32 secret bytes of the signing key, to hand to the core
    /// ([`gossip_chat::Identity::keyed`]), which signs the node's chat with
    /// it so that every member can check a chat is its author's. Never
    /// leaves the process otherwise (the data directory's identity file
    /// aside).
    pub(crate) fn secret(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// Signs `msg` (callers put a domain tag of their own first).
    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.signing.sign(msg).to_bytes()
    }
}

impl fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeIdentity({})", self.id())
    }
}

/// Checks `sig` over `msg` by the key `id`, strictly (no malleable or
/// weak-key signatures).
pub(crate) fn verify(id: &PeerId, msg: &[u8], sig: &[u8; 64]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(&id.0) else {
        return false;
    };
    key.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
        .is_ok()
}

/// 32 bytes from the operating system's randomness.
///
/// # Panics
/// If the system has no source of randomness, which no supported system
/// lacks: keys cannot be made without one.
fn random_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the operating system's randomness");
    b
}

/// A cluster key: 32 secret bytes every member holds. Shown as standard
/// base64 (44 characters); `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey(pub(crate) [u8; 32]);

impl ClusterKey {
    /// A new random key.
    pub fn generate() -> ClusterKey {
        ClusterKey(random_bytes())
    }

    /// A short public fingerprint of the key (safe to show and log): the
    /// handshake offers keys by it.
    pub fn id(&self) -> KeyId {
        key_id(&self.0)
    }
}

impl std::str::FromStr for ClusterKey {
    type Err = KeyError;

    /// Standard base64 of 32 bytes.
    fn from_str(s: &str) -> Result<ClusterKey, KeyError> {
        let bytes = STANDARD.decode(s.trim()).map_err(|_| KeyError::Malformed)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed)?;
        Ok(ClusterKey(key))
    }
}

impl fmt::Display for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterKey({})", self.id())
    }
}

/// The public fingerprint of a cluster key: 8 bytes of a keyed hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The fingerprint of key bytes (the open mode's all-zero key included).
pub(crate) fn key_id(key: &[u8; 32]) -> KeyId {
    use blake2::digest::{Update, VariableOutput};
    let mut h = blake2::Blake2sVar::new(8).expect("8 is a valid BLAKE2s output length");
    h.update(b"gossip-chat cluster key id v1\0");
    h.update(key);
    let mut out = [0u8; 8];
    h.finalize_variable(&mut out)
        .expect("the output buffer has the requested length");
    KeyId(out)
}

/// Why a key or keyring operation failed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    /// Not the standard base64 of 32 bytes.
    #[error(
        "not a cluster key (expected the base64 of 32 bytes, as `chat --gen-cluster-key` prints)"
    )]
    Malformed,
    /// `use` or `remove` of a key the keyring does not hold.
    #[error("no such key installed (install it first)")]
    NotInstalled,
    /// `remove` of the primary key while others are installed.
    #[error("the primary key cannot be removed while other keys are installed: use another first")]
    Primary,
    /// The keyring is full.
    #[error("at most {MAX_CLUSTER_KEYS} cluster keys can be installed")]
    Full,
}

/// The cluster keys a node holds, primary first. Empty: open mode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keyring {
    keys: Vec<ClusterKey>,
}

impl Keyring {
    /// A keyring holding `key` alone.
    pub fn with_key(key: ClusterKey) -> Keyring {
        Keyring { keys: vec![key] }
    }

    /// Whether this is the open mode (no key).
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, primary first.
    pub fn keys(&self) -> &[ClusterKey] {
        &self.keys
    }

    /// Adds `key` (last, or first if the keyring was empty). Idempotent:
    /// `Ok(false)` if it was already installed.
    pub fn install(&mut self, key: ClusterKey) -> Result<bool, KeyError> {
        if self.keys.contains(&key) {
            return Ok(false);
        }
        if self.keys.len() >= MAX_CLUSTER_KEYS {
            return Err(KeyError::Full);
        }
        self.keys.push(key);
        Ok(true)
    }

    /// Makes the installed `key` the primary. Idempotent: `Ok(false)` if it
    /// already was.
    pub fn use_key(&mut self, key: &ClusterKey) -> Result<bool, KeyError> {
        let at = self
            .keys
            .iter()
            .position(|k| k == key)
            .ok_or(KeyError::NotInstalled)?;
        if at == 0 {
            return Ok(false);
        }
        let k = self.keys.remove(at);
        self.keys.insert(0, k);
        Ok(true)
    }

    /// Removes `key`. Idempotent: `Ok(false)` if it was not installed. The
    /// primary can be removed only when it is the last key (back to the
    /// open mode).
    pub fn remove(&mut self, key: &ClusterKey) -> Result<bool, KeyError> {
        let Some(at) = self.keys.iter().position(|k| k == key) else {
            return Ok(false);
        };
        if at == 0 && self.keys.len() > 1 {
            return Err(KeyError::Primary);
        }
        self.keys.remove(at);
        Ok(true)
    }

    /// The keyring file's text.
    fn to_file(&self) -> String {
        let mut s = format!("{KEYRING_HEADER}\n");
        for k in &self.keys {
            s.push_str(&k.to_string());
            s.push('\n');
        }
        s
    }

    /// Parses the keyring file's text.
    fn from_file(text: &str) -> Result<Keyring, String> {
        let mut lines = text.lines();
        if lines.next() != Some(KEYRING_HEADER) {
            return Err("not a gossip-chat keyring file".into());
        }
        let mut ring = Keyring::default();
        for (n, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let key = line
                .parse::<ClusterKey>()
                .map_err(|e| format!("line {}: {e}", n + 2))?;
            ring.install(key)
                .map_err(|e| format!("line {}: {e}", n + 2))?;
        }
        Ok(ring)
    }
}

/// Why a data directory could not be used.
#[derive(Debug, Error)]
pub enum DataDirError {
    /// Another process holds the directory's lock.
    #[error("{0} is in use by another chat process (give each node its own --data-dir)")]
    InUse(PathBuf),
    /// A file is not what it should be.
    #[error("{path}: {what}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// A file readable by others than its owner.
    #[error("{path}: permissions {mode:04o} are too open: the key must be readable by its owner only (chmod 600)")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The system refused an operation.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |error| DataDirError::Io {
        path: path.to_owned(),
        error,
    }
}

/// An open, locked data directory. The lock is released when it drops (or
/// the process ends).
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

/// The per-user default data directory: `gossip-chat` in the platform's
/// local data directory (`$XDG_DATA_HOME` or `~/.local/share` on Linux,
/// `~/Library/Application Support` on macOS), if the platform has one.
pub fn default_data_dir() -> Option<PathBuf> {
    dirs::data_local_dir().map(|d| d.join("gossip-chat"))
}

impl DataDir {
    /// Opens `path` (creating it owner-only if missing) and locks it.
    pub fn open(path: &Path) -> Result<DataDir, DataDirError> {
        create_private_dir(path)?;
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(DataDirError::InUse(path.to_owned())),
            Err(TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        Ok(DataDir {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The identity kept here, created on first use. Returns it and
    /// whether it was just created.
    pub fn identity(&self) -> Result<(NodeIdentity, bool), DataDirError> {
        let path = self.path.join(IDENTITY_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                check_private(&path)?;
                let bad = |what: &str| DataDirError::Bad {
                    path: path.clone(),
                    what: what.into(),
                };
                let mut lines = text.lines();
                if lines.next() != Some(IDENTITY_HEADER) {
                    return Err(bad("not a gossip-chat identity file"));
                }
                let seed = lines
                    .next()
                    .and_then(|l| STANDARD.decode(l.trim()).ok())
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| bad("corrupt identity file (expected the base64 of 32 bytes on its second line)"))?;
                Ok((NodeIdentity::from_seed(seed), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = NodeIdentity::generate();
                let text = format!(
                    "{IDENTITY_HEADER}\n{}\n",
                    STANDARD.encode(id.signing.to_bytes())
                );
                write_private(&path, &text)?;
                Ok((id, true))
            }
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// The keyring kept here (empty if none was saved).
    pub fn keyring(&self) -> Result<Keyring, DataDirError> {
        let path = self.path.join(KEYRING_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                check_private(&path)?;
                Keyring::from_file(&text).map_err(|what| DataDirError::Bad { path, what })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Keyring::default()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Saves `ring` here, replacing the file at once (never half written).
    pub fn save_keyring(&self, ring: &Keyring) -> Result<(), DataDirError> {
        write_private(&self.path.join(KEYRING_FILE), &ring.to_file())
    }
}

/// Creates `path` and its parents; the directory itself owner-only.
fn create_private_dir(path: &Path) -> Result<(), DataDirError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(io_err(path))
}

/// Fails if `path` can be read by others than its owner.
fn check_private(path: &Path) -> Result<(), DataDirError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(io_err(path))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(DataDirError::TooOpen {
                path: path.to_owned(),
                mode,
            });
        }
    }
    Ok(())
}

/// Writes `text` to a fresh owner-only file beside `path`, then renames it
/// over `path`.
fn write_private(path: &Path, text: &str) -> Result<(), DataDirError> {
    let tmp = path.with_extension("new");
    let _ = fs::remove_file(&tmp);
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gossip-chat-keys-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn key(n: u8) -> ClusterKey {
        ClusterKey([n; 32])
    }

    #[test]
    fn rotation_steps_are_idempotent_and_keep_the_primary_first() {
        let mut ring = Keyring::with_key(key(1));
        assert_eq!(ring.install(key(2)), Ok(true));
        assert_eq!(ring.install(key(2)), Ok(false));
        assert_eq!(ring.keys(), &[key(1), key(2)]);
        assert_eq!(ring.remove(&key(1)), Err(KeyError::Primary));
        assert_eq!(ring.use_key(&key(2)), Ok(true));
        assert_eq!(ring.use_key(&key(2)), Ok(false));
        assert_eq!(ring.keys(), &[key(2), key(1)]);
        assert_eq!(ring.remove(&key(1)), Ok(true));
        assert_eq!(ring.remove(&key(1)), Ok(false));
        assert_eq!(ring.use_key(&key(1)), Err(KeyError::NotInstalled));
        assert_eq!(ring.keys(), &[key(2)]);
        // The last key can go: back to the open mode.
        assert_eq!(ring.remove(&key(2)), Ok(true));
        assert!(ring.is_open());
        for n in 0..MAX_CLUSTER_KEYS as u8 {
            ring.install(key(n)).unwrap();
        }
        assert_eq!(ring.install(key(200)), Err(KeyError::Full));
    }

    #[test]
    fn a_key_reads_back_from_its_text_and_bad_text_is_refused() {
        let k = ClusterKey::generate();
        assert_eq!(k.to_string().parse::<ClusterKey>(), Ok(k.clone()));
        assert!(!format!("{k:?}").contains(&k.to_string()));
        assert_eq!("abc".parse::<ClusterKey>(), Err(KeyError::Malformed));
        let short = STANDARD.encode([1u8; 31]);
        assert_eq!(short.parse::<ClusterKey>(), Err(KeyError::Malformed));
        assert_ne!(key(1).id(), key(2).id());
    }

    #[test]
    fn the_identity_is_created_once_kept_and_owner_only() {
        let dir = scratch("identity");
        let first = {
            let d = DataDir::open(&dir).unwrap();
            let (id, created) = d.identity().unwrap();
            assert!(created);
            id.id()
        };
        let d = DataDir::open(&dir).unwrap();
        let (again, created) = d.identity().unwrap();
        assert!(!created);
        assert_eq!(again.id(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir.join(IDENTITY_FILE)), 0o600);
            assert_eq!(mode(&dir), 0o700);
        }
        drop(d);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_locked_directory_is_refused_until_released() {
        let dir = scratch("lock");
        let held = DataDir::open(&dir).unwrap();
        assert!(matches!(DataDir::open(&dir), Err(DataDirError::InUse(_))));
        drop(held);
        assert!(DataDir::open(&dir).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_foreign_and_readable_files_are_refused_with_what_is_wrong() {
        let dir = scratch("bad");
        let d = DataDir::open(&dir).unwrap();
        let path = dir.join(IDENTITY_FILE);
        write_private(&path, "ssh-ed25519 AAAA\n").unwrap();
        let err = d.identity().unwrap_err().to_string();
        assert!(err.contains("not a gossip-chat identity file"), "{err}");
        write_private(&path, &format!("{IDENTITY_HEADER}\nnot base64!\n")).unwrap();
        let err = d.identity().unwrap_err().to_string();
        assert!(err.contains("corrupt identity file"), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let (id, _) = {
                fs::remove_file(&path).unwrap();
                d.identity().unwrap()
            };
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            let err = d.identity().unwrap_err();
            assert!(
                matches!(err, DataDirError::TooOpen { mode: 0o644, .. }),
                "{err}"
            );
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            assert_eq!(d.identity().unwrap().0.id(), id.id());
        }
        write_private(&dir.join(KEYRING_FILE), "hello\n").unwrap();
        let err = d.keyring().unwrap_err().to_string();
        assert!(err.contains("not a gossip-chat keyring file"), "{err}");
        write_private(&dir.join(KEYRING_FILE), &format!("{KEYRING_HEADER}\nxyz\n")).unwrap();
        let err = d.keyring().unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        drop(d);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_keyring_is_saved_and_read_back_in_order() {
        let dir = scratch("ring");
        let d = DataDir::open(&dir).unwrap();
        assert!(d.keyring().unwrap().is_open());
        let mut ring = Keyring::with_key(key(3));
        ring.install(key(4)).unwrap();
        d.save_keyring(&ring).unwrap();
        assert_eq!(d.keyring().unwrap(), ring);
        drop(d);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_signature_verifies_only_for_its_key_and_message() {
        let a = NodeIdentity::generate();
        let b = NodeIdentity::generate();
        let sig = a.sign(b"msg");
        assert!(verify(&a.id(), b"msg", &sig));
        assert!(!verify(&a.id(), b"msh", &sig));
        assert!(!verify(&b.id(), b"msg", &sig));
    }
}
