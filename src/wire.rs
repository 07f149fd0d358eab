//! The wire codec: postcard payloads in length-prefixed frames.
//!
//! A frame is a 4-byte big-endian payload length followed by the postcard
//! encoding of one [`Message`]. Frames longer than the configured maximum are
//! refused before any allocation. Decoding never panics: every failure is a
//! [`WireError`] value.

use crate::message::Message;
use thiserror::Error;

/// Bytes of the length prefix in front of every frame.
pub const LEN_PREFIX: usize = 4;

/// Why bytes could not be turned into a message. Nothing is consumed from a
/// stream on error; the connection should be closed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The length prefix announces more than the allowed frame size.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    Oversized {
        /// Announced payload length.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The payload is not a valid protocol v1 message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The payload decoded, but bytes were left over after the message.
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
}

/// Encodes `msg` as a payload (no length prefix), appending to `out`.
pub fn encode_payload(msg: &Message, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail and every message type is serializable.
    let bytes = postcard::to_extend(msg, core::mem::take(out)).unwrap_or_default();
    *out = bytes;
}

/// Encodes `msg` as a complete frame (length prefix + payload), appending to
/// `out`.
pub fn encode_frame(msg: &Message, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; LEN_PREFIX]);
    encode_payload(msg, out);
    let len = (out.len() - start - LEN_PREFIX) as u32;
    out[start..start + LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
}

/// The encoded payload size of `msg` in bytes, without the prefix.
pub fn payload_len(msg: &Message) -> usize {
    postcard::experimental::serialized_size(msg).unwrap_or(0)
}

/// Decodes one payload (the bytes of one frame after its prefix).
pub fn decode_payload(bytes: &[u8], max_frame: usize) -> Result<Message, WireError> {
    if bytes.len() > max_frame {
        return Err(WireError::Oversized {
            len: bytes.len(),
            max: max_frame,
        });
    }
    match postcard::take_from_bytes::<Message>(bytes) {
        Ok((msg, [])) => Ok(msg),
        Ok((_, rest)) => Err(WireError::Trailing(rest.len())),
        Err(e) => Err(WireError::Malformed(e.to_string())),
    }
}

/// Splits a byte stream into frame payloads.
///
/// Feed it whatever the socket returned with [`FrameReader::extend`], then
/// call [`FrameReader::next_frame`] until it returns `Ok(None)`.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    max_frame: usize,
}

impl FrameReader {
    /// A reader that refuses frames longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            max_frame,
        }
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete payload, `Ok(None)` if more bytes are needed, or an
    /// error if the announced length is over the limit.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, WireError> {
        let avail = &self.buf[self.start..];
        let Some(prefix) = avail.get(..LEN_PREFIX) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if len > self.max_frame {
            return Err(WireError::Oversized {
                len,
                max: self.max_frame,
            });
        }
        if avail.len() < LEN_PREFIX + len {
            return Ok(None);
        }
        let from = self.start + LEN_PREFIX;
        self.start = from + len;
        if self.start == self.buf.len() {
            // Everything consumed: the next extend starts the buffer over.
        } else if self.start > self.buf.len() / 2 && self.start > 4096 {
            self.buf.drain(..from);
            let shift = from;
            self.start -= shift;
            return Ok(Some(&self.buf[..len]));
        }
        Ok(Some(&self.buf[from..from + len]))
    }
}
