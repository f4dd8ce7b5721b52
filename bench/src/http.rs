//! Minimal HTTP/1.1 client building blocks, using only the standard library.
//!
//! This module knows how to parse `http://` URLs, serialise a request once
//! (the load loop then resends the same bytes), and read responses off a
//! keep-alive connection: status line, the headers that matter for framing
//! (`Content-Length`, `Transfer-Encoding`, `Connection`) and the body, which
//! may be length-delimited, chunked or delimited by connection close.

use std::fmt;
use std::io::{self, Read};
use std::net::{Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Instant;

/// Largest response head (status line plus headers) that is accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest chunk-size or trailer line that is accepted.
const MAX_LINE: usize = 8 * 1024;
/// Initial size of the per-connection read buffer.
const INITIAL_BUFFER: usize = 8 * 1024;
/// The read buffer never grows beyond this size.
const MAX_BUFFER: usize = MAX_HEAD + 1024;

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Host name or IP literal, without the brackets of an IPv6 literal.
    pub host: String,
    /// TCP port; 80 when the URL does not name one.
    pub port: u16,
    /// Request target: the path plus optional query, always starting with `/`.
    pub target: String,
}

impl Url {
    /// Parses an `http://host[:port][/path][?query]` URL.
    ///
    /// The host may be a name (such as `localhost`), an IPv4 literal or an
    /// IPv6 literal in brackets (`http://[::1]:8080/`). `https://` is rejected
    /// because this tool does not speak TLS. A `#fragment` is dropped.
    pub fn parse(input: &str) -> Result<Url, String> {
        let input = input.trim();
        let rest = strip_prefix_ignore_case(input, "http://").ok_or_else(|| {
            if strip_prefix_ignore_case(input, "https://").is_some() {
                "https:// URLs are not supported (no TLS); use http://".to_string()
            } else {
                format!("URL must start with http:// (got {input:?})")
            }
        })?;
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(split);
        if authority.is_empty() {
            return Err(format!("URL has no host: {input:?}"));
        }
        if authority.contains('@') {
            return Err("credentials in URLs are not supported".to_string());
        }

        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (inside, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("unterminated IPv6 literal in {authority:?}"))?;
            inside
                .parse::<Ipv6Addr>()
                .map_err(|_| format!("invalid IPv6 literal [{inside}]"))?;
            let port =
                if after.is_empty() {
                    None
                } else {
                    Some(after.strip_prefix(':').ok_or_else(|| {
                        format!("unexpected {after:?} after IPv6 literal [{inside}]")
                    })?)
                };
            (inside, port)
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            if port.is_some_and(|p| p.contains(':')) {
                return Err(format!(
                    "IPv6 literals must be written in brackets, e.g. http://[::1]:8080/ (got {authority:?})"
                ));
            }
            let valid = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            if !valid {
                return Err(format!("invalid host {host:?}"));
            }
            (host, port)
        };

        let port = match port {
            None | Some("") => 80,
            Some(text) => match text.parse::<u16>() {
                Ok(0) | Err(_) => return Err(format!("invalid port {text:?} (expected 1-65535)")),
                Ok(port) => port,
            },
        };

        let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
        let target = if tail.is_empty() {
            "/".to_string()
        } else if tail.starts_with('?') {
            format!("/{tail}")
        } else {
            tail.to_string()
        };
        if target.bytes().any(|b| b <= b' ' || b >= 0x7f) {
            return Err(format!(
                "URL path {target:?} contains spaces, control or non-ASCII characters; percent-encode them"
            ));
        }

        Ok(Url {
            host: host.to_string(),
            port,
            target,
        })
    }

    /// The `host[:port]` form used in the `Host` header (port omitted when 80).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Resolves the host to socket addresses (IP literals need no lookup).
    pub fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port).to_socket_addrs()?.collect();
        if addrs.is_empty() {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} resolved to no addresses", self.host),
            ))
        } else {
            Ok(addrs)
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.target)
    }
}

/// ASCII case-insensitive `strip_prefix`.
fn strip_prefix_ignore_case<'a>(input: &'a str, prefix: &str) -> Option<&'a str> {
    let head = input.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        input.get(prefix.len()..)
    } else {
        None
    }
}

/// Returns true when `name` is a valid HTTP token (method or header name).
pub fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Serialises one HTTP/1.1 request to bytes.
///
/// `Host`, `User-Agent` and `Accept` are added unless `headers` already has
/// them; `Content-Type: application/json` is added when there is a body and no
/// explicit content type. `Content-Length` is always computed here and is sent
/// whenever there is a body or the method is `POST`, `PUT` or `PATCH`.
pub fn encode_request(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut head = String::with_capacity(256);
    head.push_str(method);
    head.push(' ');
    head.push_str(&url.target);
    head.push_str(" HTTP/1.1\r\n");
    if !has("host") {
        head.push_str("Host: ");
        head.push_str(&url.authority());
        head.push_str("\r\n");
    }
    if !has("user-agent") {
        head.push_str(concat!(
            "User-Agent: isolate-bench/",
            env!("CARGO_PKG_VERSION"),
            "\r\n"
        ));
    }
    if !has("accept") {
        head.push_str("Accept: */*\r\n");
    }
    if body.is_some() && !has("content-type") {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    if body.is_some() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str("Content-Length: ");
        head.push_str(&body.map_or(0, <[u8]>::len).to_string());
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    bytes
}

/// How the end of a response body is determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all (HEAD request, 1xx, 204 or 304 status).
    Empty,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// The body runs until the server closes the connection.
    UntilClose,
}

/// The parts of a response head that matter to the load generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// Minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub minor_version: u8,
    /// Status code, e.g. 200.
    pub status: u16,
    /// Body framing as declared by the headers.
    pub framing: Framing,
    /// Whether the connection may be reused, judging by version and `Connection`.
    pub keep_alive: bool,
}

impl ResponseHead {
    /// The framing that actually applies, given whether the request was `HEAD`.
    pub fn body_framing(&self, head_request: bool) -> Framing {
        if head_request || (100..200).contains(&self.status) || matches!(self.status, 204 | 304) {
            Framing::Empty
        } else {
            self.framing
        }
    }
}

/// Builds an `InvalidData` error for malformed responses.
fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// A short printable excerpt of raw bytes, for error messages.
fn excerpt(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(60)];
    String::from_utf8_lossy(shown).into_owned()
}

/// Parses a response head: the bytes before the blank line that ends it.
///
/// Lines may end in CRLF or bare LF. Only `Content-Length`,
/// `Transfer-Encoding` and `Connection` are interpreted.
pub fn parse_head(head: &[u8]) -> io::Result<ResponseHead> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let status_line = lines.next().unwrap_or_default();
    let (minor_version, status) = parse_status_line(status_line)?;

    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive_token = false;
    for line in lines {
        if line.is_empty() || line[0] == b' ' || line[0] == b'\t' {
            // Blank or obsolete folded continuation line: nothing we need.
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| invalid(format!("malformed header line {:?}", excerpt(line))))?;
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            for part in value.split(|&b| b == b',') {
                let length = parse_decimal(part.trim_ascii()).ok_or_else(|| {
                    invalid(format!("invalid Content-Length {:?}", excerpt(value)))
                })?;
                if content_length.is_some_and(|previous| previous != length) {
                    return Err(invalid("conflicting Content-Length headers"));
                }
                content_length = Some(length);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding = true;
            // The last coding listed (across all header lines) decides.
            if let Some(last) = value
                .split(|&b| b == b',')
                .map(<[u8]>::trim_ascii)
                .next_back()
            {
                chunked = last.eq_ignore_ascii_case(b"chunked");
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive_token = true;
                }
            }
        }
    }

    let framing = if transfer_encoding {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(length) = content_length {
        Framing::Length(length)
    } else {
        Framing::UntilClose
    };
    let keep_alive = !close && (minor_version >= 1 || keep_alive_token);
    Ok(ResponseHead {
        minor_version,
        status,
        framing,
        keep_alive,
    })
}

/// Parses `HTTP/1.x NNN [reason]` into the minor version and status code.
fn parse_status_line(line: &[u8]) -> io::Result<(u8, u16)> {
    let bad = || invalid(format!("malformed status line {:?}", excerpt(line)));
    let rest = line.strip_prefix(b"HTTP/1.").ok_or_else(bad)?;
    let (&minor, rest) = rest.split_first().ok_or_else(bad)?;
    if !minor.is_ascii_digit() {
        return Err(bad());
    }
    let rest = rest.strip_prefix(b" ").ok_or_else(bad)?;
    let code = rest.get(..3).ok_or_else(bad)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
        return Err(bad());
    }
    let status = code
        .iter()
        .fold(0u16, |acc, &digit| acc * 10 + u16::from(digit - b'0'));
    if status < 100 {
        return Err(bad());
    }
    Ok((minor - b'0', status))
}

/// Parses a non-empty run of ASCII decimal digits without overflow.
fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Parses a chunk-size line (hex digits, optionally followed by `;ext`).
fn parse_chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let bad = || invalid(format!("invalid chunk size line {:?}", excerpt(line)));
    if digits.is_empty() {
        return Err(bad());
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = char::from(b).to_digit(16).ok_or_else(bad)?;
        acc.checked_mul(16)
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or_else(bad)
    })
}

/// Returns `(head_len, consumed)` when `buf` holds a complete response head.
///
/// `head_len` excludes the terminating blank line; `consumed` includes it.
/// Scanning starts at `from` so repeated calls do not rescan old bytes.
fn find_head_end(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut index = from;
    while let Some(offset) = buf.get(index..)?.iter().position(|&b| b == b'\n') {
        let newline = index + offset;
        let after = &buf[newline + 1..];
        if after.starts_with(b"\r\n") {
            return Some((newline, newline + 3));
        }
        if after.starts_with(b"\n") {
            return Some((newline, newline + 2));
        }
        index = newline + 1;
    }
    None
}

/// A response that has been read completely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// Status code of the final (non-1xx) response.
    pub status: u16,
    /// Whether the connection may carry another request.
    pub keep_alive: bool,
    /// Number of body bytes received (after chunked decoding).
    pub body_len: u64,
}

/// Reads HTTP/1.x responses from a byte stream through an internal buffer.
#[derive(Debug)]
pub struct ResponseReader<R> {
    /// The underlying stream.
    inner: R,
    /// Read buffer; valid data lives in `buf[start..end]`.
    buf: Vec<u8>,
    /// Start of unconsumed data in `buf`.
    start: usize,
    /// End of valid data in `buf`.
    end: usize,
    /// Reads fail with `TimedOut` once this instant has passed.
    deadline: Option<Instant>,
    /// Bytes received since the last [`ResponseReader::begin`].
    received: u64,
}

impl<R: Read> ResponseReader<R> {
    /// Wraps a stream.
    pub fn new(inner: R) -> Self {
        ResponseReader {
            inner,
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            deadline: None,
            received: 0,
        }
    }

    /// The underlying stream, e.g. to write the next request.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Prepares for a new request: sets the deadline, resets the received
    /// byte count and discards any stray bytes left from a previous response.
    pub fn begin(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
        self.received = 0;
        self.start = 0;
        self.end = 0;
    }

    /// Bytes received since the last [`ResponseReader::begin`].
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Reads one complete response, skipping interim 1xx responses.
    ///
    /// `head_request` must be true when the request method was `HEAD`. Body
    /// bytes are appended to `sink` when given and discarded otherwise.
    pub fn read_response(
        &mut self,
        head_request: bool,
        sink: Option<&mut Vec<u8>>,
    ) -> io::Result<Response> {
        let head = loop {
            let head = self.read_head()?;
            if (100..200).contains(&head.status) && head.status != 101 {
                continue;
            }
            break head;
        };
        let framing = head.body_framing(head_request);
        let body_len = match framing {
            Framing::Empty => 0,
            Framing::Length(length) => {
                self.read_exact_body(length, sink)?;
                length
            }
            Framing::Chunked => self.read_chunked_body(sink)?,
            Framing::UntilClose => self.read_body_to_end(sink)?,
        };
        Ok(Response {
            status: head.status,
            keep_alive: head.keep_alive && framing != Framing::UntilClose && head.status != 101,
            body_len,
        })
    }

    /// Reads more bytes into the buffer; returns 0 at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            if Instant::now() >= deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "request timed out"));
            }
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_BUFFER {
                return Err(invalid("response line too long"));
            }
            let grown = (self.buf.len() * 2).min(MAX_BUFFER);
            self.buf.resize(grown, 0);
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(read) => {
                    self.end += read;
                    self.received += read as u64;
                    return Ok(read);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "timed out waiting for the response",
                    ));
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Reads and parses one response head.
    fn read_head(&mut self) -> io::Result<ResponseHead> {
        let mut scanned = 0;
        loop {
            let window = &self.buf[self.start..self.end];
            if let Some((head_len, consumed)) = find_head_end(window, scanned) {
                let head = parse_head(&window[..head_len])?;
                self.start += consumed;
                return Ok(head);
            }
            scanned = window.len().saturating_sub(3);
            if window.len() >= MAX_HEAD {
                return Err(invalid("response head larger than 64 KiB"));
            }
            let was_empty = window.is_empty();
            if self.fill()? == 0 {
                let message = if was_empty {
                    "connection closed before a response was received"
                } else {
                    "connection closed in the middle of the response head"
                };
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, message));
            }
        }
    }

    /// Reads one line; returns its range in `buf` without the line ending.
    ///
    /// The range is only valid until the next call that touches the buffer.
    fn read_line(&mut self) -> io::Result<(usize, usize)> {
        let mut scanned = 0;
        loop {
            let from = self.start + scanned;
            if let Some(offset) = self.buf[from..self.end].iter().position(|&b| b == b'\n') {
                let line_start = self.start;
                let newline = from + offset;
                let line_end = if newline > line_start && self.buf[newline - 1] == b'\r' {
                    newline - 1
                } else {
                    newline
                };
                self.start = newline + 1;
                return Ok((line_start, line_end));
            }
            scanned = self.end - self.start;
            if scanned > MAX_LINE {
                return Err(invalid("chunked encoding line too long"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a chunked body",
                ));
            }
        }
    }

    /// Reads exactly `length` body bytes.
    fn read_exact_body(&mut self, length: u64, mut sink: Option<&mut Vec<u8>>) -> io::Result<()> {
        let mut remaining = length;
        while remaining > 0 {
            if self.start == self.end {
                if self.fill()? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed before the end of the body",
                    ));
                }
                continue;
            }
            let available = self.end - self.start;
            let take = usize::try_from(remaining).map_or(available, |r| r.min(available));
            if let Some(sink) = sink.as_deref_mut() {
                sink.extend_from_slice(&self.buf[self.start..self.start + take]);
            }
            self.start += take;
            remaining -= take as u64;
        }
        Ok(())
    }

    /// Reads a chunked body including trailers; returns the decoded length.
    fn read_chunked_body(&mut self, mut sink: Option<&mut Vec<u8>>) -> io::Result<u64> {
        let mut total = 0u64;
        loop {
            let (start, end) = self.read_line()?;
            let size = parse_chunk_size(&self.buf[start..end])?;
            if size == 0 {
                // Trailer section: header lines up to an empty line.
                loop {
                    let (start, end) = self.read_line()?;
                    if start == end {
                        return Ok(total);
                    }
                }
            }
            self.read_exact_body(size, sink.as_deref_mut())?;
            total = total.saturating_add(size);
            let (start, end) = self.read_line()?;
            if start != end {
                return Err(invalid("missing CRLF after chunk data"));
            }
        }
    }

    /// Reads the body until the peer closes the connection.
    fn read_body_to_end(&mut self, mut sink: Option<&mut Vec<u8>>) -> io::Result<u64> {
        let mut total = 0u64;
        loop {
            if let Some(sink) = sink.as_deref_mut() {
                sink.extend_from_slice(&self.buf[self.start..self.end]);
            }
            total += (self.end - self.start) as u64;
            self.start = self.end;
            if self.fill()? == 0 {
                return Ok(total);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most one byte per `read` call.
    struct OneByte<'a>(&'a [u8]);

    impl Read for OneByte<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), out.first_mut()) {
                (Some((&byte, rest)), Some(slot)) => {
                    *slot = byte;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    fn read_all(raw: &[u8], head_request: bool) -> io::Result<(Response, Vec<u8>)> {
        let mut body = Vec::new();
        let response = ResponseReader::new(raw).read_response(head_request, Some(&mut body))?;
        // The same input fed one byte at a time must give the same result.
        let mut slow_body = Vec::new();
        let slow =
            ResponseReader::new(OneByte(raw)).read_response(head_request, Some(&mut slow_body))?;
        assert_eq!(slow, response);
        assert_eq!(slow_body, body);
        Ok((response, body))
    }

    #[test]
    fn parses_urls() {
        let url = Url::parse("http://127.0.0.1:5900/execute").unwrap();
        assert_eq!(url.host, "127.0.0.1");
        assert_eq!(url.port, 5900);
        assert_eq!(url.target, "/execute");
        assert_eq!(url.authority(), "127.0.0.1:5900");
        assert_eq!(url.to_string(), "http://127.0.0.1:5900/execute");

        let url = Url::parse("HTTP://localhost").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.target.as_str()),
            ("localhost", 80, "/")
        );
        assert_eq!(url.authority(), "localhost");

        let url = Url::parse("http://[::1]:8080/a/b?x=1#frag").unwrap();
        assert_eq!(url.host, "::1");
        assert_eq!(url.port, 8080);
        assert_eq!(url.target, "/a/b?x=1");
        assert_eq!(url.authority(), "[::1]:8080");

        let url = Url::parse("http://[2001:db8::1]?q").unwrap();
        assert_eq!((url.port, url.target.as_str()), (80, "/?q"));
        assert_eq!(url.authority(), "[2001:db8::1]");

        assert!(Url::parse("https://example.com/")
            .unwrap_err()
            .contains("TLS"));
        assert!(Url::parse("ftp://example.com/").is_err());
        assert!(Url::parse("http://").is_err());
        assert!(Url::parse("http://host:0/").is_err());
        assert!(Url::parse("http://host:70000/").is_err());
        assert!(Url::parse("http://host:abc/").is_err());
        assert!(Url::parse("http://::1/").unwrap_err().contains("brackets"));
        assert!(Url::parse("http://[::1/").is_err());
        assert!(Url::parse("http://[nothex]/").is_err());
        assert!(Url::parse("http://user@host/").is_err());
        assert!(Url::parse("http://host/a b").is_err());
    }

    #[test]
    fn resolves_literals_and_localhost() {
        let v4 = Url::parse("http://127.0.0.1:1234/")
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(v4, vec!["127.0.0.1:1234".parse::<SocketAddr>().unwrap()]);
        let v6 = Url::parse("http://[::1]:1234/").unwrap().resolve().unwrap();
        assert_eq!(v6, vec!["[::1]:1234".parse::<SocketAddr>().unwrap()]);
        let local = Url::parse("http://localhost:1234/")
            .unwrap()
            .resolve()
            .unwrap();
        assert!(local
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 1234));
    }

    #[test]
    fn encodes_requests() {
        let url = Url::parse("http://127.0.0.1:5900/execute").unwrap();
        let headers = vec![("Authorization".to_string(), "Bearer x".to_string())];
        let bytes = encode_request("POST", &url, &headers, Some(br#"{"code":"1+1"}"#));
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("POST /execute HTTP/1.1\r\nHost: 127.0.0.1:5900\r\n"));
        assert!(text.contains("\r\nAuthorization: Bearer x\r\n"));
        assert!(text.contains("\r\nContent-Type: application/json\r\n"));
        assert!(text.ends_with("\r\nContent-Length: 14\r\n\r\n{\"code\":\"1+1\"}"));

        let host = vec![("host".to_string(), "example".to_string())];
        let text = String::from_utf8(encode_request("GET", &url, &host, None)).unwrap();
        assert!(!text.contains("Host: 127"));
        assert!(!text.contains("Content-Length"));
        assert!(text.ends_with("host: example\r\n\r\n"));
    }

    #[test]
    fn parses_response_heads() {
        let head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A: b").unwrap();
        assert_eq!(
            head,
            ResponseHead {
                minor_version: 1,
                status: 200,
                framing: Framing::Length(12),
                keep_alive: true,
            }
        );

        let head = parse_head(b"HTTP/1.1 404 Not Found\r\nconnection: Close\r\n").unwrap();
        assert_eq!(head.status, 404);
        assert!(!head.keep_alive);
        assert_eq!(head.framing, Framing::UntilClose);

        let head = parse_head(b"HTTP/1.1 200\ntransfer-encoding: gzip, chunked\ncontent-length: 3")
            .unwrap();
        assert_eq!(head.framing, Framing::Chunked);

        let head = parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0").unwrap();
        assert_eq!(head.minor_version, 0);
        assert!(!head.keep_alive);
        let head =
            parse_head(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0").unwrap();
        assert!(head.keep_alive);

        assert_eq!(
            parse_head(b"HTTP/1.1 204 No Content")
                .unwrap()
                .body_framing(false),
            Framing::Empty
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1, 1").is_ok());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: -1").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon here").is_err());
        assert!(parse_head(b"HTTP/2 200").is_err());
        assert!(parse_head(b"HTTP/1.1 20 OK").is_err());
        assert!(parse_head(b"HTTP/1.1 2000").is_err());
        assert!(parse_head(b"garbage").is_err());
    }

    #[test]
    fn reads_content_length_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let (response, body) = read_all(raw, false).unwrap();
        assert_eq!(response.status, 200);
        assert!(response.keep_alive);
        assert_eq!(body, b"hello");

        let truncated = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello";
        let error = read_all(truncated, false).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn decodes_chunked_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    5\r\nhello\r\n7;ext=1\r\n, world\r\nA\r\n0123456789\r\n\
                    0\r\nX-Trailer: yes\r\n\r\n";
        let (response, body) = read_all(raw, false).unwrap();
        assert_eq!(body, b"hello, world0123456789");
        assert_eq!(response.body_len, 22);
        assert!(response.keep_alive);

        // Two back-to-back responses on one connection.
        let two = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n\
                    HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\ncd";
        let mut reader = ResponseReader::new(&two[..]);
        let mut body = Vec::new();
        assert_eq!(
            reader.read_response(false, Some(&mut body)).unwrap().status,
            200
        );
        assert_eq!(
            reader.read_response(false, Some(&mut body)).unwrap().status,
            201
        );
        assert_eq!(body, b"abcd");

        for bad in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n",
        ] {
            assert!(read_all(bad, false).is_err());
        }
    }

    #[test]
    fn handles_bodyless_and_close_delimited_responses() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        let (response, body) = read_all(raw, true).unwrap();
        assert_eq!((response.status, body.len()), (200, 0));

        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        let (response, _) = read_all(raw, false).unwrap();
        assert_eq!(response.status, 204);
        assert!(response.keep_alive);

        let raw = b"HTTP/1.1 200 OK\r\n\r\nuntil close";
        let (response, body) = read_all(raw, false).unwrap();
        assert_eq!(body, b"until close");
        assert!(!response.keep_alive);

        let error = read_all(b"", false).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn honours_the_deadline() {
        let mut reader = ResponseReader::new(&b"HTTP/1.1 200 OK\r\n"[..]);
        reader.begin(Some(Instant::now()));
        let error = reader.read_response(false, None).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }
}
