//! Any bytes from a peer: decoding must return an error or a message, never panic or allocate
//! without bound; a decoded message must encode back to a frame that decodes to itself.
#![no_main]

use isolate_shared::frame::{decode, decode_frame, encode, read_frame, MAX_FRAME_BYTES};
use isolate_shared::message::{SupervisorMessage, WorkerMessage};
use isolate_shared::zygote::{ZygoteReply, ZygoteRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode::<SupervisorMessage>(data) {
        let again: SupervisorMessage = decode_frame(&encode(&msg).unwrap()).unwrap();
        assert_eq!(again, msg);
    }
    if let Ok(msg) = decode::<WorkerMessage>(data) {
        let again: WorkerMessage = decode_frame(&encode(&msg).unwrap()).unwrap();
        assert_eq!(again, msg);
    }
    let _ = decode::<ZygoteRequest>(data);
    let _ = decode::<ZygoteReply>(data);
    let _ = decode_frame::<WorkerMessage>(data);
    let _ = read_frame::<_, SupervisorMessage>(&mut &data[..], MAX_FRAME_BYTES);
});
