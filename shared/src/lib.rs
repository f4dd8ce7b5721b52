//! The wire protocol between the isolate-service supervisor and its sandboxed processes.
//!
//! This crate owns every type that crosses a process boundary: the messages exchanged with the
//! zygote ([`zygote`]) and with each worker ([`message`]), the framing that carries them over
//! Unix sockets ([`frame`]), the socket, descriptor and pidfd calls both sides make ([`sys`])
//! and the protocol version ([`version`]).
//!
//! **Invariant:** this crate does no I/O policy and holds no business logic. It knows how to put
//! a message on a socket and take it off again, never what a message means to either side.
//! Only types defined here derive `Serialize`/`Deserialize` for inter-process use.

pub mod frame;
pub mod message;
pub mod sys;
pub mod version;
pub mod zygote;

pub use frame::{FrameError, MAX_FRAME_BYTES};
