//! Traces: one compact line per event, time first, and a fingerprint of the
//! whole event stream.
//!
//! The fingerprint hashes the structured fields of every event (never wall
//! time), whether or not lines are written, so a report's fingerprint shows
//! at a glance whether two runs took the same path.

use gossip_chat::Instant;
use std::fmt::Write as _;
use std::io::Write;

/// The event sink of one run.
pub struct Trace {
    out: Option<Box<dyn Write>>,
    /// Lines kept in memory (for [`Trace::kept`]).
    text: Option<String>,
    line: String,
    hash: u64,
    events: u64,
    error: Option<std::io::Error>,
}

const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// What a trace line records. The value is hashed into the fingerprint, so
/// the numbers are fixed: a new kind takes a new number, an old one keeps
/// its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TraceKind {
    /// A free-form header or fault note.
    Note = 0,
    /// A process starts (and maybe joins through another node).
    Start = 1,
    /// A message or frame reaches a node.
    Deliver = 3,
    /// A message is lost or cut on the way.
    Lost = 4,
    /// A node dials an address.
    Dial = 5,
    /// The dialling end learns its connection is open.
    Connected = 6,
    /// The accepting end learns of a new connection.
    Accepted = 7,
    /// A dial fails (refused or timed out).
    DialFailed = 8,
    /// A node closes a connection.
    Close = 9,
    /// A node learns a connection was closed by its peer.
    Disconnected = 10,
    /// A node's timer fires.
    Timeout = 11,
    /// User event: a peer is up.
    PeerUp = 12,
    /// User event: a peer is down.
    PeerDown = 13,
    /// User event: a chat message is shown.
    Chat = 14,
    /// User event: a gap in an origin's stream.
    Gap = 15,
    /// User event: the node refuted a suspicion of itself.
    Refuted = 16,
    /// User event: the node refused a peer.
    Refused = 17,
    /// A misbehaving node injects a frame.
    Injected = 18,
    /// User event: a member in the roster came back in a later life.
    PeerRestarted = 19,
}

impl Trace {
    /// A trace that writes lines to `out`, or only fingerprints.
    pub fn new(out: Option<Box<dyn Write>>) -> Self {
        Trace {
            out,
            text: None,
            line: String::new(),
            hash: 0xcbf2_9ce4_8422_2325,
            events: 0,
            error: None,
        }
    }

    /// A trace that keeps its lines in memory, for [`Trace::into_text`].
    pub fn kept() -> Self {
        Trace {
            text: Some(String::new()),
            ..Trace::new(None)
        }
    }

    /// The lines kept so far by a [`Trace::kept`] trace (empty for any
    /// other).
    pub fn text(&self) -> &str {
        self.text.as_deref().unwrap_or_default()
    }

    /// The lines kept by a [`Trace::kept`] trace (empty for any other).
    pub fn into_text(self) -> String {
        self.text.unwrap_or_default()
    }

    /// Whether lines are written (callers skip formatting otherwise).
    #[inline]
    pub fn writing(&self) -> bool {
        self.out.is_some() || self.text.is_some()
    }

    #[inline]
    fn mix(&mut self, x: u64) {
        self.hash = (self.hash.rotate_left(5) ^ x).wrapping_mul(K);
    }

    /// Records one event: its time, its kind and up to three numbers go
    /// into the fingerprint; `text` writes the rest of the line when
    /// writing.
    #[inline]
    pub fn event(
        &mut self,
        now: Instant,
        kind: TraceKind,
        nums: [u64; 3],
        text: impl FnOnce(&mut String),
    ) {
        self.events += 1;
        self.mix(now.as_millis());
        self.mix(kind as u8 as u64);
        for n in nums {
            self.mix(n);
        }
        if self.writing() {
            self.line.clear();
            let ms = now.as_millis();
            let _ = write!(self.line, "{}.{:03} ", ms / 1000, ms % 1000);
            text(&mut self.line);
            self.line.push('\n');
            if let Some(kept) = &mut self.text {
                kept.push_str(&self.line);
            }
            if let Some(out) = &mut self.out {
                if let Err(e) = out.write_all(self.line.as_bytes()) {
                    self.error.get_or_insert(e);
                }
            }
        }
    }

    /// A free-form header or note line (also fingerprinted).
    pub fn note(&mut self, now: Instant, text: &str) {
        for b in text.bytes() {
            self.mix(b as u64);
        }
        self.event(now, TraceKind::Note, [0; 3], |l| l.push_str(text));
    }

    /// The fingerprint so far, as 16 hex digits.
    pub fn fingerprint(&self) -> String {
        format!("{:016x}", self.hash)
    }

    /// Events recorded.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Flushes the output; reports the first write error.
    pub fn finish(&mut self) -> std::io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some(out) = &mut self.out {
            out.flush()?;
        }
        Ok(())
    }
}
