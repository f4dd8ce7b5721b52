//! Length-prefixed bincode frames.
//!
//! A frame is a 4-byte little-endian payload length followed by the payload, a bincode 2
//! encoding (standard configuration) of one message. The length is checked against a maximum
//! *before* any buffer is allocated, and decoding is bounded by the same limit, so a hostile or
//! corrupted peer can make a read fail but never make it allocate without bound or panic.

use std::io::{self, Read, Write};

use serde::{de::DeserializeOwned, Serialize};

/// Largest payload either side accepts, in bytes (64 MiB).
///
/// Large enough for a result at its configured cap plus captured logs; anything bigger is a
/// protocol error and the peer is treated as broken.
pub const MAX_FRAME_BYTES: usize = 64 << 20;

/// Size of the length prefix in bytes.
pub const HEADER_LEN: usize = 4;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_FRAME_BYTES>,
>;

const CONFIG: Config = bincode::config::standard().with_limit::<MAX_FRAME_BYTES>();

/// Everything that can go wrong while reading or writing a frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection cleanly between frames.
    #[error("connection closed by peer")]
    Closed,
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The announced payload length exceeds the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced payload length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The payload is not a valid encoding of the expected message.
    #[error("malformed frame: {0}")]
    Decode(String),
    /// The payload decoded, but bytes were left over.
    #[error("malformed frame: {0} trailing bytes")]
    TrailingBytes(usize),
    /// The message could not be encoded.
    #[error("cannot encode frame: {0}")]
    Encode(String),
    /// The underlying socket failed.
    #[error("socket error: {0}")]
    Io(#[from] io::Error),
}

/// Encodes `msg` as a complete frame (length prefix included).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut buf = vec![0u8; HEADER_LEN];
    bincode::serde::encode_into_std_write(msg, &mut buf, CONFIG)
        .map_err(|e| FrameError::Encode(e.to_string()))?;
    let len = buf.len() - HEADER_LEN;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge {
            len,
            max: MAX_FRAME_BYTES,
        });
    }
    // The check above bounds `len` well below u32::MAX.
    buf[..HEADER_LEN].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(buf)
}

/// Reads the payload length from a frame header and checks it against `max`.
pub fn payload_len(header: [u8; HEADER_LEN], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(header) as usize;
    if len > max.min(MAX_FRAME_BYTES) {
        return Err(FrameError::TooLarge {
            len,
            max: max.min(MAX_FRAME_BYTES),
        });
    }
    Ok(len)
}

/// Decodes one payload (without its header). Every byte must belong to the message.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    let (msg, used) = bincode::serde::decode_from_slice(payload, CONFIG)
        .map_err(|e| FrameError::Decode(e.to_string()))?;
    if used != payload.len() {
        return Err(FrameError::TrailingBytes(payload.len() - used));
    }
    Ok(msg)
}

/// Decodes a complete frame held in one buffer (header included).
pub fn decode_frame<T: DeserializeOwned>(frame: &[u8]) -> Result<T, FrameError> {
    let header: [u8; HEADER_LEN] = frame
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(FrameError::Truncated)?;
    let len = payload_len(header, MAX_FRAME_BYTES)?;
    let payload = &frame[HEADER_LEN..];
    match payload.len().cmp(&len) {
        std::cmp::Ordering::Less => Err(FrameError::Truncated),
        std::cmp::Ordering::Greater => Err(FrameError::TrailingBytes(payload.len() - len)),
        std::cmp::Ordering::Equal => decode(payload),
    }
}

/// Writes `msg` as one frame on a blocking writer.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let buf = encode(msg)?;
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame from a blocking reader, refusing payloads over `max` bytes.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R, max: usize) -> Result<T, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = payload_len(header, max)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    decode(&payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::*;
    use proptest::prelude::*;

    fn sample_job() -> SupervisorMessage {
        SupervisorMessage::Execute(ExecuteJob {
            code: "1+1".into(),
            preset: Preset::Compute,
            env_json: Some(r#"{"a":1}"#.into()),
            timeout_ms: 5000,
            limits: JsLimits::default(),
            language: Language::TypeScript,
            form: CodeForm::FunctionBody,
            data_json: Some("[1]".into()),
        })
    }

    #[test]
    fn round_trip_through_a_reader() {
        let frame = encode(&sample_job()).unwrap();
        let back: SupervisorMessage = read_frame(&mut &frame[..], MAX_FRAME_BYTES).unwrap();
        assert_eq!(back, sample_job());
    }

    #[test]
    fn oversized_header_is_refused_before_allocating() {
        let mut frame = encode(&sample_job()).unwrap();
        frame[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = read_frame::<_, SupervisorMessage>(&mut &frame[..], MAX_FRAME_BYTES).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len, .. } if len == u32::MAX as usize));
        let err = read_frame::<_, SupervisorMessage>(&mut &encode(&sample_job()).unwrap()[..], 3)
            .unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { max: 3, .. }));
    }

    #[test]
    fn truncated_and_empty_streams_are_distinguished() {
        let frame = encode(&sample_job()).unwrap();
        let err = read_frame::<_, SupervisorMessage>(&mut &[][..], MAX_FRAME_BYTES).unwrap_err();
        assert!(matches!(err, FrameError::Closed));
        for cut in [1, 3, 4, frame.len() - 1] {
            let err = read_frame::<_, SupervisorMessage>(&mut &frame[..cut], MAX_FRAME_BYTES)
                .unwrap_err();
            assert!(
                matches!(err, FrameError::Truncated),
                "cut at {cut}: {err:?}"
            );
            let err = decode_frame::<SupervisorMessage>(&frame[..cut]).unwrap_err();
            assert!(
                matches!(err, FrameError::Truncated),
                "cut at {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut frame = encode(&sample_job()).unwrap();
        frame.push(0);
        let err = decode_frame::<SupervisorMessage>(&frame).unwrap_err();
        assert!(matches!(err, FrameError::TrailingBytes(1)));
    }

    #[test]
    fn a_huge_claimed_string_length_fails_without_allocating_it() {
        // Variant 0 (Execute), then a varint string length of u64::MAX.
        let payload = [0u8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(decode::<SupervisorMessage>(&payload).is_err());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<SupervisorMessage>(&bytes);
            let _ = decode::<WorkerMessage>(&bytes);
            let _ = decode_frame::<WorkerMessage>(&bytes);
            let _ = read_frame::<_, WorkerMessage>(&mut &bytes[..], MAX_FRAME_BYTES);
        }

        #[test]
        fn execute_jobs_round_trip(
            code in ".{0,200}",
            preset in prop_oneof![Just(Preset::Minimal), Just(Preset::Compute),
                                  Just(Preset::Data), Just(Preset::Agent)],
            env in proptest::option::of(".{0,100}"),
            timeout_ms in any::<u64>(),
            memory_bytes in any::<u64>(),
        ) {
            let msg = SupervisorMessage::Execute(ExecuteJob {
                code, preset, env_json: env, timeout_ms,
                limits: JsLimits { memory_bytes, ..JsLimits::default() },
                language: Language::JavaScript, form: CodeForm::Auto, data_json: None,
            });
            let back: SupervisorMessage = decode_frame(&encode(&msg).unwrap()).unwrap();
            prop_assert_eq!(back, msg);
        }

        #[test]
        fn outcomes_round_trip(
            result in proptest::result::maybe_ok(".{0,100}", ".{0,100}"),
            logs in proptest::collection::vec((".{0,40}", any::<u64>()), 0..8),
            truncated in any::<bool>(),
            line in proptest::option::of(any::<u32>()),
        ) {
            let msg = WorkerMessage::Executed(ExecuteOutcome {
                result: result.map_err(|message| JobError {
                    kind: ErrorKind::Runtime,
                    name: "Error".into(),
                    message,
                    stack: None,
                    line,
                    column: line,
                }),
                logs: logs.into_iter().map(|(message, time_ms)| LogEntry {
                    level: LogLevel::Warn, message, time_ms,
                }).collect(),
                logs_truncated: truncated,
                cpu_us: 7,
                heap_peak_bytes: 1 << 20,
                elapsed_us: 12,
                recycle: truncated,
            });
            let back: WorkerMessage = decode_frame(&encode(&msg).unwrap()).unwrap();
            prop_assert_eq!(back, msg);
        }
    }
}
