//! Properties of the wire codec against arbitrary and hostile bytes.
//!
//! Run deeper with `PROPTEST_CASES=100000 cargo test --release --test prop_wire`.

mod prop_support;

use gossip_chat::wire::{
    decode_payload, encode_frame, encode_payload, payload_len, FrameReader, WireError, LEN_PREFIX,
};
use gossip_chat::Message;
use prop_support::{config, wide};
use proptest::prelude::*;

/// Large enough for every generated message.
const BIG: usize = 1 << 24;

/// What a frame reader must produce from a whole stream: the payloads of
/// every complete frame, then the error of the first oversized prefix, if
/// any.
fn reference_split(stream: &[u8], max: usize) -> (Vec<Vec<u8>>, Option<WireError>) {
    let mut frames = Vec::new();
    let mut rest = stream;
    while rest.len() >= LEN_PREFIX {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > max {
            return (frames, Some(WireError::Oversized { len, max }));
        }
        if rest.len() < LEN_PREFIX + len {
            break;
        }
        frames.push(rest[LEN_PREFIX..LEN_PREFIX + len].to_vec());
        rest = &rest[LEN_PREFIX + len..];
    }
    (frames, None)
}

/// Feeds `stream` to a reader in chunks of the given sizes (cycled), pulling
/// every frame after every chunk, as a socket driver does. Stops at the
/// first error.
fn read_chunked(
    stream: &[u8],
    chunks: &[usize],
    max: usize,
) -> (Vec<Vec<u8>>, Option<WireError>, FrameReader) {
    let mut reader = FrameReader::new(max);
    let mut frames = Vec::new();
    let mut pos = 0;
    let mut sizes = chunks.iter().cycle();
    while pos < stream.len() {
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, stream.len() - pos);
        reader.extend(&stream[pos..pos + n]);
        pos += n;
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => frames.push(frame.to_vec()),
                Ok(None) => break,
                Err(e) => return (frames, Some(e), reader),
            }
        }
    }
    (frames, None, reader)
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![3 => 1usize..8, 2 => 1usize..300, 1 => 1usize..20_000],
        1..8,
    )
}

/// Streams made of mostly well-formed frames with hostile ones mixed in:
/// oversized prefixes, junk and truncated tails.
fn hostile_stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|p| {
            let mut f = (p.len() as u32).to_be_bytes().to_vec();
            f.extend(p);
            f
        }),
        1 => any::<u32>().prop_map(|len| len.to_be_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..16),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics_and_what_decodes_reencodes(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        max in prop_oneof![Just(BIG), 0usize..64],
    ) {
        match decode_payload(&bytes, max) {
            Ok(msg) => {
                prop_assert!(bytes.len() <= max);
                let mut again = Vec::new();
                encode_payload(&msg, &mut again);
                prop_assert_eq!(decode_payload(&again, BIG), Ok(msg));
            }
            Err(WireError::Oversized { len, max: m }) => {
                prop_assert_eq!((len, m), (bytes.len(), max));
                prop_assert!(bytes.len() > max);
            }
            Err(_) => prop_assert!(bytes.len() <= max),
        }
    }

    #[test]
    fn every_message_round_trips_exactly(msg in wide().message()) {
        let mut payload = Vec::new();
        encode_payload(&msg, &mut payload);
        prop_assert!(!payload.is_empty());
        prop_assert_eq!(payload_len(&msg), payload.len());
        prop_assert_eq!(decode_payload(&payload, BIG), Ok(msg.clone()));
        // Exactly at the limit is accepted, one byte under it is not.
        prop_assert_eq!(decode_payload(&payload, payload.len()), Ok(msg.clone()));
        let is_oversized = matches!(
            decode_payload(&payload, payload.len() - 1),
            Err(WireError::Oversized { .. })
        );
        prop_assert!(is_oversized);

        let mut frame = vec![0xAA];
        encode_frame(&msg, &mut frame);
        prop_assert_eq!(frame[0], 0xAA, "encode_frame appends");
        prop_assert_eq!(&frame[1..5], &(payload.len() as u32).to_be_bytes()[..]);
        prop_assert_eq!(&frame[5..], &payload[..]);
    }

    #[test]
    fn a_truncated_or_padded_payload_is_refused(
        msg in wide().message(),
        cut in any::<prop::sample::Index>(),
        pad in prop::collection::vec(any::<u8>(), 1..8),
    ) {
        let mut payload = Vec::new();
        encode_payload(&msg, &mut payload);
        let short = &payload[..cut.index(payload.len())];
        prop_assert!(decode_payload(short, BIG).is_err(), "prefix of {} bytes decoded", short.len());
        let mut long = payload.clone();
        long.extend_from_slice(&pad);
        prop_assert_eq!(decode_payload(&long, BIG), Err(WireError::Trailing(pad.len())));
    }

    #[test]
    fn frames_survive_any_chunking(
        msgs in prop::collection::vec(wide().message(), 0..8),
        chunks in chunk_sizes(),
    ) {
        let mut stream = Vec::new();
        for m in &msgs {
            encode_frame(m, &mut stream);
        }
        let (frames, err, reader) = read_chunked(&stream, &chunks, BIG);
        prop_assert_eq!(err, None);
        prop_assert_eq!(reader.buffered(), 0);
        let decoded: Vec<Message> = frames
            .iter()
            .map(|f| decode_payload(f, BIG))
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decoded, msgs);
    }

    #[test]
    fn the_frame_reader_splits_hostile_streams_like_the_reference(
        stream in prop_oneof![hostile_stream(), prop::collection::vec(any::<u8>(), 0..600)],
        chunks in chunk_sizes(),
        max in prop_oneof![Just(4096usize), 0usize..80],
    ) {
        let (want_frames, want_err) = reference_split(&stream, max);
        let (frames, err, reader) = read_chunked(&stream, &chunks, max);
        prop_assert_eq!(&frames, &want_frames);
        prop_assert_eq!(&err, &want_err);
        if err.is_none() {
            let consumed: usize = frames.iter().map(|f| LEN_PREFIX + f.len()).sum();
            prop_assert_eq!(reader.buffered(), stream.len() - consumed);
        }
        for f in &frames {
            // Never panics, whatever the payload.
            let _ = decode_payload(f, max);
        }
    }

    #[test]
    fn an_oversized_length_is_refused_before_its_body_arrives(
        max in 4096usize..(1 << 20),
        over in 1u32..=u32::MAX / 2,
        prefix_frames in prop::collection::vec(wide().message(), 0..3),
        split in 0usize..LEN_PREFIX,
        body in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let len = (max as u64 + u64::from(over)).min(u64::from(u32::MAX)) as u32;
        let mut stream = Vec::new();
        for m in &prefix_frames {
            encode_frame(m, &mut stream);
        }
        let good = prefix_frames.len();
        let header_at = stream.len();
        stream.extend_from_slice(&len.to_be_bytes());
        stream.extend_from_slice(&body);

        let mut reader = FrameReader::new(max);
        // Everything before the last prefix bytes: the good frames come
        // out and the reader waits.
        reader.extend(&stream[..header_at + split]);
        for _ in 0..good {
            prop_assert!(matches!(reader.next_frame(), Ok(Some(_))));
        }
        prop_assert_eq!(reader.next_frame(), Ok(None));
        // The rest of the prefix (and a few body bytes) is enough to refuse:
        // the reader never waits for, nor holds, the announced body.
        reader.extend(&stream[header_at + split..]);
        prop_assert_eq!(
            reader.next_frame(),
            Err(WireError::Oversized { len: len as usize, max })
        );
        prop_assert!(reader.buffered() <= LEN_PREFIX + body.len());
    }
}

#[test]
fn a_length_prefix_at_the_limit_waits_for_its_body() {
    let max = 4096;
    let mut reader = FrameReader::new(max);
    reader.extend(&(max as u32).to_be_bytes());
    assert_eq!(reader.next_frame(), Ok(None));
    reader.extend(&vec![0u8; max - 1]);
    assert_eq!(reader.next_frame(), Ok(None));
    reader.extend(&[0]);
    assert_eq!(
        reader.next_frame().map(|f| f.map(<[u8]>::len)),
        Ok(Some(max))
    );
    assert_eq!(reader.buffered(), 0);
}
