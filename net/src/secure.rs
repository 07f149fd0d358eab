//! The encrypted, authenticated channel every connection runs in.
//!
//! # Handshake
//!
//! `Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s` (through the `snow` crate), with
//! the cluster key as the pre-shared key. In the open mode (no key) the
//! pre-shared key is 32 zero bytes, which everyone knows: the channel is
//! still encrypted and the identities still proven, but anyone may join.
//!
//! ```text
//! -> PREAMBLE, [len] e                 payload: the keys offered (ids, primary first)
//! <- PREAMBLE, [len] e, ee, s, es      payload: status, the key chosen, identity proof
//! -> [len] s, se, psk                  payload: identity proof
//! ```
//!
//! - `PREAMBLE` is `gossip-chat` and the protocol version, in clear, so
//!   that a peer of another version (or another program) is told apart
//!   from one with a wrong key, and refused with a clear log line.
//! - The answering node picks the first offered key it holds. Without one
//!   it answers with a refusal (encrypted to the dialler's ephemeral key)
//!   and closes: a stranger learns nothing but that it was refused. A
//!   dialler that named a key it does not hold fails the third message.
//! - The identity proof is the node's ed25519 public key and its signature
//!   over this process's Noise static key: the handshake proves the static
//!   key, the signature binds it to the identity.
//!
//! # Records
//!
//! After the handshake each direction is a stream of records, a 2-byte
//! big-endian length and a ChaCha20-Poly1305 ciphertext (at most 65 535
//! bytes, 16 of them the tag), nonces counting from 0. Inside, the bytes
//! are the length-prefixed frames of [`gossip_chat::wire`]. A record that
//! fails to decrypt ends the connection.

use crate::keys::{key_id, verify, KeyId, Keyring, NodeIdentity, PeerId, MAX_CLUSTER_KEYS};
use gossip_chat::PROTOCOL_VERSION;
use snow::{HandshakeState, StatelessTransportState};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

const NOISE_PARAMS: &str = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s";
/// Sent first in clear by both ends.
const MAGIC: &[u8; 12] = b"gossip-chat\0";
/// Domain tag of the identity proof.
const PROOF_DOMAIN: &[u8] = b"gossip-chat v2 identity binds noise static key\0";
/// The open mode's pre-shared key.
const OPEN_KEY: [u8; 32] = [0; 32];
/// Largest Noise message.
const MAX_RECORD: usize = 65_535;
/// Authentication tag per record.
const TAG: usize = 16;
/// Most plaintext per record.
pub(crate) const MAX_PLAIN: usize = MAX_RECORD - TAG;

/// Why the answering node refused a handshake (second message's status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Both hold cluster keys, none in common.
    NoCommonKey,
    /// The dialler runs open; the answering node requires a key.
    KeyRequired,
    /// The dialler offers keys; the answering node runs open.
    OpenMode,
}

impl Refusal {
    fn code(self) -> u8 {
        match self {
            Refusal::NoCommonKey => 1,
            Refusal::KeyRequired => 2,
            Refusal::OpenMode => 3,
        }
    }

    fn from_code(c: u8) -> Option<Refusal> {
        Some(match c {
            1 => Refusal::NoCommonKey,
            2 => Refusal::KeyRequired,
            3 => Refusal::OpenMode,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::NoCommonKey => "no cluster key in common",
            Refusal::KeyRequired => "the dialler has no cluster key and the cluster requires one",
            Refusal::OpenMode => {
                "the dialler offers a cluster key and the other node runs open (no key)"
            }
        })
    }
}

/// Why a handshake failed.
#[derive(Debug, Error)]
pub enum HandshakeError {
    /// The connection failed, timed out or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The peer does not start with the gossip-chat preamble.
    #[error("not a gossip-chat handshake (another program, or a version without encryption)")]
    NotGossipChat,
    /// The peer speaks another protocol version.
    #[error("the peer speaks protocol version {0}, this node {PROTOCOL_VERSION}")]
    Version(u16),
    /// This node refused the peer.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The peer refused this node.
    #[error("refused by the peer: {0}")]
    RefusedByPeer(Refusal),
    /// A message did not decrypt or parse: a wrong cluster key, or garbage.
    #[error(
        "handshake failed (the peer does not hold the cluster key it named, or sent garbage): {0}"
    )]
    Noise(#[from] snow::Error),
    /// A payload is malformed, or an identity proof does not verify.
    #[error("bad handshake payload: {0}")]
    Payload(&'static str),
}

impl HandshakeError {
    /// Whether the failure says something about admission (a refusal either
    /// way, a wrong key, a bad proof) rather than the network.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, HandshakeError::Io(_))
    }
}

/// This process's handshake credentials: the identity, a Noise static key
/// for this run, and the proof that binds the two.
pub struct LocalKeys {
    identity: NodeIdentity,
    static_private: Vec<u8>,
    proof: [u8; 64],
}

impl std::fmt::Debug for LocalKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalKeys({})", self.identity.id())
    }
}

impl LocalKeys {
    /// Credentials for `identity`, with a fresh static key.
    pub fn new(identity: NodeIdentity) -> LocalKeys {
        let pair = builder()
            .generate_keypair()
            .expect("the default resolver makes 25519 key pairs");
        let proof = identity.sign(&proof_message(&pair.public));
        LocalKeys {
            identity,
            static_private: pair.private,
            proof,
        }
    }

    /// The identity's public key.
    pub fn id(&self) -> PeerId {
        self.identity.id()
    }

    /// The identity proof: public key and signature.
    fn proof_payload(&self) -> [u8; 96] {
        let mut p = [0u8; 96];
        p[..32].copy_from_slice(&self.id().0);
        p[32..].copy_from_slice(&self.proof);
        p
    }
}

fn params() -> snow::params::NoiseParams {
    NOISE_PARAMS.parse().expect("a valid Noise pattern name")
}

/// A handshake builder. Tests may make this thread's handshakes
/// deterministic (keys and ephemerals from a seed), to pin the bytes.
fn builder<'a>() -> snow::Builder<'a> {
    #[cfg(test)]
    if let Some(seed) = tests::SEEDED.with(std::cell::Cell::get) {
        return snow::Builder::with_resolver(params(), Box::new(tests::Seeded(seed)));
    }
    snow::Builder::new(params())
}

fn proof_message(static_public: &[u8]) -> Vec<u8> {
    let mut m = PROOF_DOMAIN.to_vec();
    m.extend_from_slice(static_public);
    m
}

/// Checks an identity proof against the static key the handshake proved.
fn check_proof(payload: &[u8], remote_static: Option<&[u8]>) -> Result<PeerId, HandshakeError> {
    let proof: &[u8; 96] = payload
        .try_into()
        .map_err(|_| HandshakeError::Payload("identity proof of the wrong length"))?;
    let stat = remote_static.ok_or(HandshakeError::Payload("no static key"))?;
    let id = PeerId(proof[..32].try_into().expect("32 bytes"));
    let sig: [u8; 64] = proof[32..].try_into().expect("64 bytes");
    if !verify(&id, &proof_message(stat), &sig) {
        return Err(HandshakeError::Payload("identity proof does not verify"));
    }
    Ok(id)
}

/// Which end of the connection this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Dialled the connection: speaks first.
    Initiator,
    /// Accepted it.
    Responder,
}

/// A finished handshake: the peer's proven identity and the cipher state
/// both directions share (each with its own nonce counter).
pub struct Session {
    /// The peer's identity.
    pub peer: PeerId,
    transport: Arc<StatelessTransportState>,
}

impl Session {
    /// Splits into the sending and receiving halves.
    pub(crate) fn split(self) -> (Sealer, Opener) {
        (
            Sealer {
                transport: self.transport.clone(),
                nonce: 0,
            },
            Opener {
                transport: self.transport,
                nonce: 0,
                buf: Vec::new(),
                plain: Vec::new(),
            },
        )
    }
}

/// Reads exactly `buf.len()` bytes before `deadline`.
fn read_by(stream: &TcpStream, buf: &mut [u8], deadline: Instant) -> std::io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match (&*stream).read(&mut buf[got..]) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                return Err(ErrorKind::TimedOut.into());
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn read_preamble(stream: &TcpStream, deadline: Instant) -> Result<(), HandshakeError> {
    let mut p = [0u8; 14];
    read_by(stream, &mut p, deadline)?;
    if &p[..12] != MAGIC {
        return Err(HandshakeError::NotGossipChat);
    }
    let version = u16::from_be_bytes([p[12], p[13]]);
    if version != PROTOCOL_VERSION {
        return Err(HandshakeError::Version(version));
    }
    Ok(())
}

fn preamble() -> [u8; 14] {
    let mut p = [0u8; 14];
    p[..12].copy_from_slice(MAGIC);
    p[12..].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    p
}

fn read_message(stream: &TcpStream, deadline: Instant) -> Result<Vec<u8>, HandshakeError> {
    let mut len = [0u8; 2];
    read_by(stream, &mut len, deadline)?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    read_by(stream, &mut msg, deadline)?;
    Ok(msg)
}

/// Appends one handshake message (length-prefixed) to `out`.
fn write_message(
    hs: &mut HandshakeState,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), HandshakeError> {
    // Room for the payload, two public keys and two tags.
    let mut msg = vec![0u8; payload.len() + 128];
    let n = hs.write_message(payload, &mut msg)?;
    out.extend_from_slice(
        &u16::try_from(n)
            .expect("a Noise message fits 16 bits")
            .to_be_bytes(),
    );
    out.extend_from_slice(&msg[..n]);
    Ok(())
}

/// The key ids `ring` offers: its keys, primary first, or the open key.
fn offered(ring: &Keyring) -> Vec<(KeyId, [u8; 32])> {
    if ring.is_open() {
        vec![(key_id(&OPEN_KEY), OPEN_KEY)]
    } else {
        ring.keys().iter().map(|k| (k.id(), k.0)).collect()
    }
}

/// Runs the handshake on a fresh connection, within `timeout`.
pub fn handshake(
    stream: &TcpStream,
    role: Role,
    local: &LocalKeys,
    ring: &Keyring,
    timeout: Duration,
) -> Result<Session, HandshakeError> {
    let deadline = Instant::now() + timeout;
    stream.set_write_timeout(Some(timeout))?;
    let prologue = preamble();
    let builder = builder()
        .local_private_key(&local.static_private)?
        .prologue(&prologue)?;
    let mine = offered(ring);
    let mut buf = vec![0u8; 1024];
    let session = match role {
        Role::Initiator => {
            let mut hs = builder.build_initiator()?;
            let mut out = preamble().to_vec();
            let ids: Vec<u8> = mine.iter().flat_map(|(id, _)| id.0).collect();
            write_message(&mut hs, &ids, &mut out)?;
            (&*stream).write_all(&out)?;

            read_preamble(stream, deadline)?;
            let msg = read_message(stream, deadline)?;
            let n = hs.read_message(&msg, &mut buf)?;
            let (&status, rest) = buf[..n]
                .split_first()
                .ok_or(HandshakeError::Payload("empty answer"))?;
            if status != 0 {
                return Err(match Refusal::from_code(status) {
                    Some(r) => HandshakeError::RefusedByPeer(r),
                    None => HandshakeError::Payload("unknown refusal"),
                });
            }
            let (&chosen, proof) = rest
                .split_first()
                .ok_or(HandshakeError::Payload("no key chosen"))?;
            let (_, psk) = mine
                .get(usize::from(chosen))
                .ok_or(HandshakeError::Payload("the chosen key was not offered"))?;
            let peer = check_proof(proof, hs.get_remote_static())?;
            hs.set_psk(3, psk)?;
            let mut out = Vec::new();
            write_message(&mut hs, &local.proof_payload(), &mut out)?;
            (&*stream).write_all(&out)?;
            Session {
                peer,
                transport: Arc::new(hs.into_stateless_transport_mode()?),
            }
        }
        Role::Responder => {
            let mut hs = builder.build_responder()?;
            read_preamble(stream, deadline)?;
            let msg = read_message(stream, deadline)?;
            let n = hs.read_message(&msg, &mut buf)?;
            let ids = &buf[..n];
            if ids.is_empty() || !ids.len().is_multiple_of(8) || ids.len() / 8 > MAX_CLUSTER_KEYS {
                return Err(HandshakeError::Payload("malformed key offer"));
            }
            let theirs: Vec<KeyId> = ids
                .chunks_exact(8)
                .map(|c| KeyId(c.try_into().expect("8 bytes")))
                .collect();
            let pick = theirs
                .iter()
                .enumerate()
                .find_map(|(at, id)| mine.iter().find(|(m, _)| m == id).map(|(_, k)| (at, *k)));
            let mut out = preamble().to_vec();
            let Some((at, psk)) = pick else {
                let open = key_id(&OPEN_KEY);
                let refusal = if ring.is_open() {
                    Refusal::OpenMode
                } else if theirs == [open] {
                    Refusal::KeyRequired
                } else {
                    Refusal::NoCommonKey
                };
                write_message(&mut hs, &[refusal.code()], &mut out)?;
                let _ = (&*stream).write_all(&out);
                return Err(HandshakeError::Refused(refusal));
            };
            let mut payload = vec![0u8, u8::try_from(at).expect("at most 8 keys")];
            payload.extend_from_slice(&local.proof_payload());
            write_message(&mut hs, &payload, &mut out)?;
            (&*stream).write_all(&out)?;
            hs.set_psk(3, &psk)?;
            let msg = read_message(stream, deadline)?;
            let n = hs.read_message(&msg, &mut buf)?;
            let peer = check_proof(&buf[..n], hs.get_remote_static())?;
            Session {
                peer,
                transport: Arc::new(hs.into_stateless_transport_mode()?),
            }
        }
    };
    stream.set_read_timeout(None)?;
    Ok(session)
}

/// The sending half: encrypts plaintext into records.
pub(crate) struct Sealer {
    transport: Arc<StatelessTransportState>,
    nonce: u64,
}

impl Sealer {
    /// Appends the records carrying `plain` to `out`.
    pub(crate) fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        for chunk in plain.chunks(MAX_PLAIN) {
            let at = out.len();
            out.resize(at + 2 + chunk.len() + TAG, 0);
            let n = self
                .transport
                .write_message(self.nonce, chunk, &mut out[at + 2..])
                .expect("a chunk of at most MAX_PLAIN bytes seals");
            self.nonce += 1;
            let len = u16::try_from(n).expect("a record fits 16 bits");
            out[at..at + 2].copy_from_slice(&len.to_be_bytes());
            out.truncate(at + 2 + n);
        }
    }
}

/// A record that did not decrypt: a forged, replayed or corrupted record.
#[derive(Debug, Error)]
#[error("a record did not decrypt (forged, replayed or corrupted)")]
pub struct BadRecord;

/// The receiving half: cuts records out of the byte stream and decrypts
/// them.
pub(crate) struct Opener {
    transport: Arc<StatelessTransportState>,
    nonce: u64,
    buf: Vec<u8>,
    plain: Vec<u8>,
}

impl Opener {
    /// Takes `bytes` from the stream and appends the plaintext of every
    /// whole record to `out`.
    pub(crate) fn open(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), BadRecord> {
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        while self.buf.len() - at >= 2 {
            let len = usize::from(u16::from_be_bytes([self.buf[at], self.buf[at + 1]]));
            if self.buf.len() - at - 2 < len {
                break;
            }
            let record = &self.buf[at + 2..at + 2 + len];
            // Sized to the largest record seen so far (most are small).
            if self.plain.len() < len {
                self.plain.resize(len, 0);
            }
            let n = self
                .transport
                .read_message(self.nonce, record, &mut self.plain)
                .map_err(|_| BadRecord)?;
            self.nonce += 1;
            out.extend_from_slice(&self.plain[..n]);
            at += 2 + len;
        }
        self.buf.drain(..at);
        Ok(())
    }
}

/// A blocking client over the encrypted channel, for tools and tests that
/// speak to a node directly: what is written is sealed into records, what
/// is read is the plaintext (length-prefixed frames).
pub struct SecureStream {
    stream: TcpStream,
    sealer: Sealer,
    opener: Opener,
    pending: Vec<u8>,
    /// Bytes read from the socket, before opening.
    scratch: Vec<u8>,
    /// The node's proven identity.
    pub peer: PeerId,
}

impl SecureStream {
    /// Dials `addr` and runs the handshake with `keys` and `ring`.
    pub fn connect(
        addr: SocketAddr,
        keys: &LocalKeys,
        ring: &Keyring,
        timeout: Duration,
    ) -> Result<SecureStream, HandshakeError> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        let session = handshake(&stream, Role::Initiator, keys, ring, timeout)?;
        let peer = session.peer;
        let (sealer, opener) = session.split();
        Ok(SecureStream {
            stream,
            sealer,
            opener,
            pending: Vec::new(),
            scratch: vec![0u8; 16 * 1024],
            peer,
        })
    }

    /// The TCP connection underneath (for timeouts and shutdown).
    pub fn tcp(&self) -> &TcpStream {
        &self.stream
    }
}

impl Write for SecureStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut out = Vec::with_capacity(buf.len() + 64);
        self.sealer.seal(buf, &mut out);
        self.stream.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

impl Read for SecureStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pending.is_empty() {
            let n = self.stream.read(&mut self.scratch)?;
            if n == 0 {
                return Ok(0);
            }
            self.opener
                .open(&self.scratch[..n], &mut self.pending)
                .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))?;
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::ClusterKey;
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};
    use std::thread;

    thread_local! {
        /// When set, this thread's handshakes draw keys from this seed.
        pub(super) static SEEDED: std::cell::Cell<Option<u8>> = const { std::cell::Cell::new(None) };
    }

    /// snow's own crypto, with randomness from a counter: every key and
    /// ephemeral it draws is fixed by the seed.
    pub(super) struct Seeded(pub(super) u8);

    struct Counter(u8);

    impl snow::types::Random for Counter {
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
            for b in dest {
                self.0 = self.0.wrapping_mul(31).wrapping_add(7);
                *b = self.0;
            }
            Ok(())
        }
    }

    impl snow::resolvers::CryptoResolver for Seeded {
        fn resolve_rng(&self) -> Option<Box<dyn snow::types::Random>> {
            Some(Box::new(Counter(self.0)))
        }
        fn resolve_dh(&self, c: &snow::params::DHChoice) -> Option<Box<dyn snow::types::Dh>> {
            snow::resolvers::DefaultResolver.resolve_dh(c)
        }
        fn resolve_hash(&self, c: &snow::params::HashChoice) -> Option<Box<dyn snow::types::Hash>> {
            snow::resolvers::DefaultResolver.resolve_hash(c)
        }
        fn resolve_cipher(
            &self,
            c: &snow::params::CipherChoice,
        ) -> Option<Box<dyn snow::types::Cipher>> {
            snow::resolvers::DefaultResolver.resolve_cipher(c)
        }
    }

    /// Copies bytes from `from` to `to` until either closes, keeping them.
    fn relay(mut from: TcpStream, mut to: TcpStream, kept: Arc<Mutex<Vec<u8>>>) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
            kept.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    }

    fn hex(b: &[u8]) -> String {
        b.chunks(32)
            .map(|c| c.iter().map(|x| format!("{x:02x}")).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The handshake's bytes, both ways, with keys and ephemerals drawn
    /// from fixed seeds, then one record each way: any change to the
    /// preamble, the pattern, the payloads or the record format shows.
    #[test]
    fn the_handshake_and_records_on_the_wire_are_pinned() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let server_addr = server.local_addr().unwrap();
        let front = TcpListener::bind("127.0.0.1:0").unwrap();
        let front_addr = front.local_addr().unwrap();
        let (out, back) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(Mutex::new(Vec::new())),
        );
        let (o, b) = (out.clone(), back.clone());
        let relays = thread::spawn(move || {
            let (client_side, _) = front.accept().unwrap();
            let server_side = TcpStream::connect(server_addr).unwrap();
            let (c2, s2) = (
                client_side.try_clone().unwrap(),
                server_side.try_clone().unwrap(),
            );
            let there = thread::spawn(move || relay(client_side, server_side, o));
            relay(s2, c2, b);
            there.join().unwrap();
        });
        let ring = Keyring::with_key(ClusterKey([7; 32]));
        let r = ring.clone();
        let answering = thread::spawn(move || {
            SEEDED.with(|s| s.set(Some(2)));
            let keys = LocalKeys::new(NodeIdentity::from_seed([2; 32]));
            let (s, _) = server.accept().unwrap();
            let (mut seal, _) = handshake(&s, Role::Responder, &keys, &r, T)
                .unwrap()
                .split();
            let mut rec = Vec::new();
            seal.seal(b"answer", &mut rec);
            (&s).write_all(&rec).unwrap();
            s
        });
        SEEDED.with(|s| s.set(Some(1)));
        let keys = LocalKeys::new(NodeIdentity::from_seed([1; 32]));
        let c = TcpStream::connect(front_addr).unwrap();
        let session = handshake(&c, Role::Initiator, &keys, &ring, T).unwrap();
        let (mut seal, mut open) = session.split();
        let mut rec = Vec::new();
        seal.seal(b"hello", &mut rec);
        (&c).write_all(&rec).unwrap();
        let s = answering.join().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while got.len() < 6 {
            let n = (&c).read(&mut buf).unwrap();
            open.open(&buf[..n], &mut got).unwrap();
        }
        assert_eq!(got, b"answer");
        drop((c, s));
        relays.join().unwrap();
        let wire = format!(
            "dialler -> answering node\n{}\n\nanswering node -> dialler\n{}\n",
            hex(&out.lock().unwrap()),
            hex(&back.lock().unwrap())
        );
        insta::assert_snapshot!(wire);
    }

    const T: Duration = Duration::from_secs(5);

    fn ring(keys: &[u8]) -> Keyring {
        let mut r = Keyring::default();
        for &k in keys {
            r.install(ClusterKey([k; 32])).unwrap();
        }
        r
    }

    /// Runs both ends of a handshake over loopback.
    fn both(
        dialler: &Keyring,
        answerer: &Keyring,
    ) -> (
        Result<Session, HandshakeError>,
        Result<Session, HandshakeError>,
        PeerId,
        PeerId,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let a = LocalKeys::new(NodeIdentity::generate());
        let b = LocalKeys::new(NodeIdentity::generate());
        let (a_id, b_id) = (a.id(), b.id());
        let answerer = answerer.clone();
        let server = thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            handshake(&s, Role::Responder, &b, &answerer, T)
        });
        let s = TcpStream::connect(addr).unwrap();
        let client = handshake(&s, Role::Initiator, &a, dialler, T);
        (client, server.join().unwrap(), a_id, b_id)
    }

    #[test]
    fn nodes_with_a_common_key_learn_each_others_identity_and_talk() {
        let (c, s, a, b) = both(&ring(&[1]), &ring(&[1]));
        let (c, s) = (c.unwrap(), s.unwrap());
        assert_eq!(c.peer, b);
        assert_eq!(s.peer, a);
        let (mut seal, _) = c.split();
        let (_, mut open) = s.split();
        let big = vec![7u8; 200_000];
        let mut wire = Vec::new();
        seal.seal(b"hello", &mut wire);
        seal.seal(&big, &mut wire);
        // Fed a byte at a time at first, then the rest: records are cut out
        // of the stream wherever it splits.
        let mut plain = Vec::new();
        for b in &wire[..10] {
            open.open(&[*b], &mut plain).unwrap();
        }
        open.open(&wire[10..], &mut plain).unwrap();
        assert_eq!(&plain[..5], b"hello");
        assert_eq!(&plain[5..], &big[..]);
        assert!(
            !wire.windows(5).any(|w| w == b"hello"),
            "the text is sealed"
        );
    }

    #[test]
    fn the_open_mode_talks_only_to_the_open_mode() {
        let (c, s, ..) = both(&Keyring::default(), &Keyring::default());
        assert!(c.is_ok() && s.is_ok());
        let (c, s, ..) = both(&Keyring::default(), &ring(&[1]));
        assert!(matches!(
            c,
            Err(HandshakeError::RefusedByPeer(Refusal::KeyRequired))
        ));
        assert!(matches!(
            s,
            Err(HandshakeError::Refused(Refusal::KeyRequired))
        ));
        let (c, s, ..) = both(&ring(&[1]), &Keyring::default());
        assert!(matches!(
            c,
            Err(HandshakeError::RefusedByPeer(Refusal::OpenMode))
        ));
        assert!(matches!(s, Err(HandshakeError::Refused(Refusal::OpenMode))));
    }

    #[test]
    fn a_wrong_key_is_refused_by_both_ends() {
        let (c, s, ..) = both(&ring(&[1]), &ring(&[2]));
        assert!(matches!(
            c,
            Err(HandshakeError::RefusedByPeer(Refusal::NoCommonKey))
        ));
        assert!(matches!(
            s,
            Err(HandshakeError::Refused(Refusal::NoCommonKey))
        ));
    }

    #[test]
    fn during_a_rotation_any_common_key_opens_the_connection() {
        // Installed the new key (2) but not using it yet, against a node
        // already using it: the first common key in the dialler's order.
        let (c, s, ..) = both(&ring(&[1, 2]), &ring(&[2, 1]));
        assert!(c.is_ok() && s.is_ok());
        let (c, s, ..) = both(&ring(&[2]), &ring(&[1, 2]));
        assert!(c.is_ok() && s.is_ok());
    }

    #[test]
    fn a_dialler_that_names_a_key_it_does_not_hold_fails_the_third_message() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let b = LocalKeys::new(NodeIdentity::generate());
        let server = thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            handshake(&s, Role::Responder, &b, &ring(&[1]), T)
        });
        // Hand-built first messages: offers key 1's id, then uses key 9.
        let a = LocalKeys::new(NodeIdentity::generate());
        let s = TcpStream::connect(addr).unwrap();
        let prologue = preamble();
        let mut hs = snow::Builder::new(params())
            .local_private_key(&a.static_private)
            .unwrap()
            .prologue(&prologue)
            .unwrap()
            .build_initiator()
            .unwrap();
        let mut out = preamble().to_vec();
        write_message(&mut hs, &ClusterKey([1; 32]).id().0, &mut out).unwrap();
        (&s).write_all(&out).unwrap();
        let deadline = Instant::now() + T;
        read_preamble(&s, deadline).unwrap();
        let msg = read_message(&s, deadline).unwrap();
        let mut buf = vec![0u8; MAX_RECORD];
        hs.read_message(&msg, &mut buf).unwrap();
        hs.set_psk(3, &[9; 32]).unwrap();
        let mut out = Vec::new();
        write_message(&mut hs, &a.proof_payload(), &mut out).unwrap();
        (&s).write_all(&out).unwrap();
        assert!(matches!(
            server.join().unwrap(),
            Err(HandshakeError::Noise(_))
        ));
    }

    #[test]
    fn another_program_or_version_is_told_apart_from_a_wrong_key() {
        for (first, want_version) in [
            (b"\x00\x00\x00\x10a plaintext frame".to_vec(), None),
            (
                {
                    let mut p = preamble().to_vec();
                    p[12..].copy_from_slice(&1u16.to_be_bytes());
                    p
                },
                Some(1),
            ),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = thread::spawn(move || {
                let (s, _) = listener.accept().unwrap();
                let b = LocalKeys::new(NodeIdentity::generate());
                handshake(&s, Role::Responder, &b, &Keyring::default(), T)
            });
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(&first).unwrap();
            match (server.join().unwrap(), want_version) {
                (Err(HandshakeError::NotGossipChat), None) => {}
                (Err(HandshakeError::Version(v)), Some(w)) => assert_eq!(v, w),
                (other, _) => panic!("unexpected {other:?}", other = other.err()),
            }
        }
    }

    #[test]
    fn a_silent_peer_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _s = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (s, _) = listener.accept().unwrap();
        let b = LocalKeys::new(NodeIdentity::generate());
        let err = handshake(
            &s,
            Role::Responder,
            &b,
            &Keyring::default(),
            Duration::from_millis(200),
        )
        .err()
        .unwrap();
        assert!(!err.is_refusal(), "{err}");
    }

    #[test]
    fn a_tampered_or_replayed_record_is_refused() {
        let (c, s, ..) = both(&ring(&[1]), &ring(&[1]));
        let (mut seal, _) = c.unwrap().split();
        let (_, mut open) = s.unwrap().split();
        let mut wire = Vec::new();
        seal.seal(b"first", &mut wire);
        let mut plain = Vec::new();
        open.open(&wire, &mut plain).unwrap();
        // The same record again: its nonce is spent.
        assert!(open.open(&wire, &mut plain).is_err());
        let (c, s, ..) = both(&ring(&[1]), &ring(&[1]));
        let (mut seal, _) = c.unwrap().split();
        let (_, mut open) = s.unwrap().split();
        let mut wire = Vec::new();
        seal.seal(b"second", &mut wire);
        let last = wire.len() - 1;
        wire[last] ^= 1;
        assert!(open.open(&wire, &mut Vec::new()).is_err());
    }
}
