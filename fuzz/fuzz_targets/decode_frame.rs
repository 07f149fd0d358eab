//! Bytes from a hostile peer into the frame reader and the payload decoder.
//!
//! The first byte picks the chunk size the stream arrives in; the rest is
//! the stream. Nothing may panic; whatever decodes must re-encode to a
//! payload that decodes to the same message; chunking must not change what
//! the reader produces.

#![no_main]

use gossip_chat::wire::{decode_payload, encode_payload, FrameReader, WireError};
use libfuzzer_sys::fuzz_target;

const MAX_FRAME: usize = 4096;

fn split(stream: &[u8], chunk: usize) -> (Vec<Vec<u8>>, Option<WireError>, usize) {
    let mut reader = FrameReader::new(MAX_FRAME);
    let mut frames = Vec::new();
    for piece in stream.chunks(chunk) {
        reader.extend(piece);
        loop {
            match reader.next_frame() {
                Ok(Some(f)) => frames.push(f.to_vec()),
                Ok(None) => break,
                Err(e) => return (frames, Some(e), reader.buffered()),
            }
        }
    }
    let left = reader.buffered();
    (frames, None, left)
}

fn check_payload(payload: &[u8]) {
    match decode_payload(payload, MAX_FRAME) {
        Ok(msg) => {
            let mut again = Vec::new();
            encode_payload(&msg, &mut again);
            assert_eq!(decode_payload(&again, usize::MAX), Ok(msg));
        }
        Err(WireError::Oversized { len, max }) => {
            assert!(len > max && len == payload.len());
        }
        Err(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    check_payload(stream);
    let chunk = usize::from(first % 32) + 1;
    let (frames, err, left) = split(stream, chunk);
    let (whole_frames, whole_err, whole_left) = split(stream, stream.len().max(1));
    assert_eq!(frames, whole_frames, "chunking changed the frames");
    assert_eq!(err, whole_err, "chunking changed the error");
    if err.is_none() {
        assert_eq!(left, whole_left);
        assert!(left < 4 + MAX_FRAME, "reader holds more than one frame");
    }
    for f in &frames {
        assert!(f.len() <= MAX_FRAME);
        check_payload(f);
    }
});
