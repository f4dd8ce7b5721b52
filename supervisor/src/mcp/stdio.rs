//! The stdio transport: one JSON-RPC message per line on stdin and stdout.
//!
//! rmcp's own line transport drops an oversized line and ignores unparsable input without a
//! word, which leaves a client waiting for an answer that never comes. This one, built on
//! rmcp's message types, answers instead: a line that is not JSON gets `-32700 Parse error`, a
//! JSON value that is not a JSON-RPC message (a batch array, a request without a method)
//! `-32600 Invalid Request`, and a line longer than the limit `-32600` too, with the request's
//! id when it can be read from the line's first bytes. A line is never buffered beyond the
//! limit. Notifications are never answered, as JSON-RPC requires. Writes go through one task
//! that writes each message whole, so a cancelled send never leaves half a line on stdout.

use std::io;
use std::sync::Arc;

use rmcp::model::{ClientJsonRpcMessage, ErrorData, RequestId, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::{RoleServer, ServiceExt};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::tools::Catalog;
use super::McpServer;
use crate::config::Config;
use crate::ServeError;

/// How much of an oversized line is kept to find its request id.
const ID_PREFIX_BYTES: usize = 4096;

/// Messages queued for stdout before a sender waits.
const WRITE_QUEUE: usize = 64;

/// A line transport over any reader and writer (stdin and stdout in production, pipes in
/// tests), with a bound on the length of one line.
pub struct LineTransport<R> {
    read: BufReader<R>,
    line: Vec<u8>,
    limit: usize,
    /// Set while the rest of an oversized line is skipped: its first bytes and its length.
    oversized: Option<(Vec<u8>, usize)>,
    /// An error answer not yet queued (kept here if `receive` is cancelled).
    pending: Option<ServerJsonRpcMessage>,
    out: Option<mpsc::Sender<Vec<u8>>>,
    writer: Option<JoinHandle<()>>,
}

enum Line {
    Complete,
    Oversized(Vec<u8>, usize),
    Eof,
}

impl<R: AsyncRead + Unpin + Send> LineTransport<R> {
    /// A transport reading `read` and writing `write`, refusing lines over `limit` bytes.
    /// Must be called inside a tokio runtime (it spawns the writer task).
    pub fn new<W: AsyncWrite + Unpin + Send + 'static>(
        read: R,
        write: W,
        limit: usize,
    ) -> LineTransport<R> {
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let writer = tokio::spawn(write_all(rx, write));
        LineTransport {
            read: BufReader::new(read),
            line: Vec::new(),
            limit,
            oversized: None,
            pending: None,
            out: Some(tx),
            writer: Some(writer),
        }
    }

    /// Reads up to the next newline without ever holding more than `limit` bytes of it.
    /// Cancel-safe: a partial line stays in `self`.
    async fn next_line(&mut self) -> Line {
        loop {
            let (consumed, done) = {
                let available = match self.read.fill_buf().await {
                    Ok(b) if !b.is_empty() => b,
                    Ok(_) => return Line::Eof,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read stdin");
                        return Line::Eof;
                    }
                };
                let newline = available.iter().position(|b| *b == b'\n');
                let take = newline.map_or(available.len(), |i| i + 1);
                if let Some((prefix, len)) = &mut self.oversized {
                    *len += take;
                    let room = ID_PREFIX_BYTES.saturating_sub(prefix.len()).min(take);
                    prefix.extend_from_slice(&available[..room]);
                } else if self.line.len() + take > self.limit {
                    let mut prefix = std::mem::take(&mut self.line);
                    let len = prefix.len() + take;
                    prefix.truncate(ID_PREFIX_BYTES);
                    let room = ID_PREFIX_BYTES.saturating_sub(prefix.len()).min(take);
                    prefix.extend_from_slice(&available[..room]);
                    self.oversized = Some((prefix, len));
                } else {
                    self.line.extend_from_slice(&available[..take]);
                }
                (take, newline.is_some())
            };
            self.read.consume(consumed);
            if done {
                return match self.oversized.take() {
                    Some((prefix, len)) => Line::Oversized(prefix, len),
                    None => Line::Complete,
                };
            }
        }
    }

    /// What to do with one complete line: a message for the service, an error answer, or
    /// nothing (blank lines, notifications that cannot be parsed).
    // The error is the answer to send, built at most once per refused line.
    #[allow(clippy::result_large_err)]
    fn parse(&self, line: &[u8]) -> Result<Option<ClientJsonRpcMessage>, ServerJsonRpcMessage> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        match serde_json::from_slice::<ClientJsonRpcMessage>(line) {
            Ok(message) => Ok(Some(message)),
            Err(e) if e.is_syntax() || e.is_eof() => Err(ServerJsonRpcMessage::error(
                ErrorData::parse_error(format!("Parse error: {e}"), None),
                None,
            )),
            Err(e) => match serde_json::from_slice::<Value>(line) {
                Ok(Value::Array(_)) => Err(ServerJsonRpcMessage::error(
                    ErrorData::invalid_request(
                        "JSON-RPC batches are not supported (MCP removed them in protocol \
                         2025-06-18): send one message per line",
                        None,
                    ),
                    None,
                )),
                Ok(Value::Object(o))
                    if o.get("method").is_some_and(Value::is_string) && !o.contains_key("id") =>
                {
                    // A notification is never answered, even when it is malformed.
                    tracing::debug!(error = %e, "ignoring a malformed notification");
                    Ok(None)
                }
                Ok(v) => Err(ServerJsonRpcMessage::error(
                    ErrorData::invalid_request(format!("Invalid request: {e}"), None),
                    v.get("id")
                        .and_then(|id| serde_json::from_value::<RequestId>(id.clone()).ok()),
                )),
                Err(_) => Err(ServerJsonRpcMessage::error(
                    ErrorData::invalid_request(format!("Invalid request: {e}"), None),
                    None,
                )),
            },
        }
    }

    async fn queue(&mut self, message: ServerJsonRpcMessage) -> io::Result<()> {
        let Some(out) = &self.out else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        out.send(encode(&message)?)
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

fn encode(message: &ServerJsonRpcMessage) -> io::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(message)?;
    bytes.push(b'\n');
    Ok(bytes)
}

async fn write_all<W: AsyncWrite + Unpin>(mut rx: mpsc::Receiver<Vec<u8>>, mut out: W) {
    while let Some(bytes) = rx.recv().await {
        if out.write_all(&bytes).await.is_err() {
            return;
        }
        if rx.is_empty() && out.flush().await.is_err() {
            return;
        }
    }
    let _ = out.flush().await;
}

/// Reads the `id` of a JSON-RPC request from the first bytes of its line, when it comes before
/// anything that does not fit in them (clients write `jsonrpc` and `id` first).
pub fn id_from_prefix(prefix: &[u8]) -> Option<RequestId> {
    struct FindId<'a>(&'a mut Option<RequestId>);
    impl<'de> DeserializeSeed<'de> for FindId<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for FindId<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON-RPC message")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                if key == "id" {
                    *self.0 = Some(map.next_value::<RequestId>()?);
                    return Ok(());
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }
    let mut found = None;
    let mut de = serde_json::Deserializer::from_slice(prefix);
    // The prefix is cut short, so this always ends in an error; the id, if seen, is kept.
    let _ = FindId(&mut found).deserialize(&mut de);
    found
}

impl<R: AsyncRead + Unpin + Send + 'static> Transport<RoleServer> for LineTransport<R> {
    type Error = io::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl std::future::Future<Output = Result<(), Self::Error>> + Send + 'static {
        let out = self.out.clone();
        let bytes = encode(&item);
        async move {
            let out = out.ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
            out.send(bytes?)
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        loop {
            if let Some(answer) = self.pending.take() {
                // Queued before the next line is read; if this is cancelled, the answer is
                // lost only together with the transport.
                self.queue(answer).await.ok()?;
            }
            match self.next_line().await {
                Line::Eof => return None,
                Line::Oversized(prefix, len) => {
                    tracing::warn!(
                        bytes = len,
                        limit = self.limit,
                        "refusing an oversized MCP message"
                    );
                    self.pending = Some(ServerJsonRpcMessage::error(
                        ErrorData::invalid_request(
                            format!(
                                "the message is {len} bytes, more than the limit of {} bytes",
                                self.limit
                            ),
                            None,
                        ),
                        id_from_prefix(&prefix),
                    ));
                }
                Line::Complete => {
                    let line = std::mem::take(&mut self.line);
                    let parsed = self.parse(&line);
                    self.line = line;
                    self.line.clear();
                    match parsed {
                        Ok(Some(message)) => return Some(message),
                        Ok(None) => {}
                        Err(answer) => self.pending = Some(answer),
                    }
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        drop(self.out.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.await;
        }
        Ok(())
    }
}

/// Serves one MCP session on stdin/stdout until stdin closes or SIGINT/SIGTERM, then stops
/// the pool.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let limit = super::message_limit(&config);
    let state = crate::start_state(config)?;
    let catalog = Arc::new(Catalog::new(state.config()));
    let server = McpServer::new(
        state.clone(),
        catalog,
        Some(crate::api::auth::Key::local("stdio")),
    );
    let transport = LineTransport::new(tokio::io::stdin(), tokio::io::stdout(), limit);
    tracing::info!(limit, "serving MCP on stdin and stdout");
    let result = tokio::select! {
        running = server.serve(transport) => match running {
            Ok(running) => {
                let ct = running.cancellation_token();
                tokio::select! {
                    quit = running.waiting() => {
                        tracing::info!(reason = ?quit.ok(), "the MCP session ended");
                    }
                    signal = shutdown_signal() => {
                        tracing::info!(signal, "stopping");
                        ct.cancel();
                    }
                }
                Ok(())
            }
            Err(e) => Err(ServeError::Mcp(e.to_string())),
        },
        signal = shutdown_signal() => {
            tracing::info!(signal, "stopping before the MCP session started");
            Ok(())
        }
    };
    tracing::info!("shutting down: stopping the zygote and every worker");
    state.pool.shutdown();
    result
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return "none";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn the_id_is_read_from_the_start_of_a_cut_line() {
        let line = br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"arguments":{"code":"aaaa"#;
        assert_eq!(id_from_prefix(line), Some(RequestId::Number(42)));
        let line = br#"{"id":"abc","method":"x""#;
        assert_eq!(id_from_prefix(line), Some(RequestId::String("abc".into())));
        let line = br#"{"jsonrpc":"2.0","method":"tools/call","params":{"code":"aaaa"#;
        assert_eq!(id_from_prefix(line), None);
        assert_eq!(id_from_prefix(b"not json"), None);
    }

    async fn exchange(input: Vec<u8>, limit: usize) -> (Vec<Option<String>>, String) {
        let (mut client, server_in) = tokio::io::duplex(1 << 20);
        let (server_out, mut client_out) = tokio::io::duplex(1 << 20);
        let mut t = LineTransport::new(server_in, server_out, limit);
        client.write_all(&input).await.expect("write");
        drop(client);
        let mut got = Vec::new();
        while let Some(m) = t.receive().await {
            got.push(
                serde_json::to_value(&m)
                    .ok()
                    .and_then(|v| v.get("method").and_then(Value::as_str).map(String::from)),
            );
        }
        Transport::<RoleServer>::close(&mut t).await.expect("close");
        drop(t);
        let mut out = String::new();
        client_out.read_to_string(&mut out).await.expect("read");
        (got, out)
    }

    #[tokio::test]
    async fn bad_lines_get_json_rpc_errors_and_good_ones_pass() {
        let mut input = Vec::new();
        input.extend_from_slice(b"{not json\n");
        input.extend_from_slice(b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]\n");
        input.extend_from_slice(b"\n");
        input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}\r\n");
        input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":8,\"params\":");
        input.extend_from_slice(&vec![b'x'; 300]);
        input.extend_from_slice(b"}\n");
        input.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\"}\n");
        let (got, out) = exchange(input, 200).await;
        assert_eq!(got, [Some("ping".to_string()), Some("ping".to_string())]);
        let answers: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("each answer is one JSON line"))
            .collect();
        assert_eq!(answers.len(), 3, "{out}");
        assert_eq!(answers[0]["error"]["code"], -32700);
        assert_eq!(answers[0]["id"], Value::Null);
        assert_eq!(answers[1]["error"]["code"], -32600);
        assert!(answers[1]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("batches")));
        assert_eq!(answers[2]["error"]["code"], -32600);
        assert_eq!(answers[2]["id"], 8);
        assert!(answers[2]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("more than the limit of 200")));
    }

    #[tokio::test]
    async fn an_endless_line_is_never_buffered_past_the_limit() {
        let (mut client, server_in) = tokio::io::duplex(1 << 16);
        let (server_out, _client_out) = tokio::io::duplex(1 << 16);
        let mut t = LineTransport::new(server_in, server_out, 1000);
        let feed = tokio::spawn(async move {
            let chunk = vec![b'a'; 1 << 14];
            for _ in 0..256 {
                if client.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        });
        // 4 MiB without a newline, then EOF: nothing is delivered, and the transport never
        // holds more than the limit plus the id prefix.
        assert!(t.receive().await.is_none());
        assert!(t.line.capacity() <= 1000 + (1 << 16));
        feed.await.expect("feeder");
    }
}
