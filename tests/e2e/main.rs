//! End-to-end tests: each starts the real `isolate-service` binary on an ephemeral port and
//! talks HTTP to it. One test binary with a module per area.

mod common;

mod api;
mod chaos;
mod cli;
mod config;
mod data;
mod docs;
mod execution;
mod fetch;
mod hostile;
mod http;
mod keys;
mod layout;
mod lifecycle;
mod mcp;
mod metrics;
mod openapi;
mod pool;
mod status;
mod typescript;
mod ui;
mod wasm;
