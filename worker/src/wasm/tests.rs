//! Unit tests of the WebAssembly host (modules written in WAT).
