//! The Web APIs of the `data` preset: `Buffer`, `TextEncoder`/`TextDecoder`, `atob`/`btoa`,
//! `URL`/`URLSearchParams`, `structuredClone`, `DOMException` and `crypto` (`getRandomValues`,
//! `randomUUID`, `subtle`).
//!
//! The classes are JavaScript (`web.js` and the scripts of [`GROUPS`], compiled to bytecode once
//! per process like the prelude) over a small set of native functions defined here, which do the
//! byte-level work with well-kept crates: the RustCrypto hashes, `hmac`, `aes-gcm`, `pbkdf2` and
//! `hkdf` for Web Crypto, `url` for WHATWG URL parsing and `application/x-www-form-urlencoded`, and
//! `base64`. The natives receive only values the script has already checked and normalised (a
//! `Uint8Array`, a canonical algorithm name), and every byte array they return is allocated on the
//! QuickJS heap, so it counts against the job's memory limit.
//!
//! [`install`] is the one entry point: the `data` context is the `compute` context plus this
//! call, and `agent` is the `data` context plus its own. It runs only the small base script;
//! each group of classes is read into the context the first time code reads one of its
//! globals, so a job pays only for the Web APIs it uses.

use aes_gcm::aead::consts::{U12, U13, U14, U15, U16};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::{Aes128, Aes192, Aes256};
use aes_gcm::{AesGcm, Nonce};
use base64::alphabet;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD,
};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use rquickjs::function::Func;
use rquickjs::{ArrayBuffer, Ctx, Exception, Function, Object, TypedArray};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use url::Url;

use super::script::Script;

/// The JavaScript half's base, compiled once per process: the helpers every group shares,
/// `DOMException`, and an accessor per global of [`GROUPS`] that reads its group on first use.
static SCRIPT: Script = Script::new(c"web.js", include_str!("web.js"));

/// The groups of globals that a context reads only when code first touches one of them, by the
/// name `web.js` asks for them with (`n.load(name)`). Each script is a factory that defines its
/// classes over the natives and the base's helpers. Natives answer `undefined` (a Rust `None`)
/// where a script expects a missing value, and the script tests for it with `== null`.
static GROUPS: [(&str, Script); 5] = [
    (
        "encoding",
        Script::new(c"web/encoding.js", include_str!("encoding.js")),
    ),
    (
        "buffer",
        Script::new(c"web/buffer.js", include_str!("buffer.js")),
    ),
    ("url", Script::new(c"web/url.js", include_str!("url.js"))),
    (
        "clone",
        Script::new(c"web/clone.js", include_str!("clone.js")),
    ),
    (
        "crypto",
        Script::new(c"web/crypto.js", include_str!("crypto.js")),
    ),
];

/// The most bytes PBKDF2 (`deriveBits`/`deriveKey`) and `generateKey` may produce in one call.
const MAX_DERIVED_BYTES: usize = 1 << 16;

/// Compiles the JavaScript half to bytecode now (the zygote's warm-up), so that each `data`
/// and `agent` context only loads it.
pub fn warm() {
    SCRIPT.warm();
    for (_, group) in &GROUPS {
        group.warm();
    }
}

/// Installs the `data` preset's Web APIs in `ctx` (after the prelude, so the script sees the
/// frozen built-ins; it freezes its own classes before returning).
///
/// The base script gets two natives: `load(name)`, the factory of a group of [`GROUPS`], and
/// `natives()`, the object of natives the groups work with, made on the first load only.
pub fn install(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    let base = Object::new(ctx.clone())?;
    base.set("load", Func::from(load_group))?;
    base.set("natives", Func::from(natives))?;
    let factory: Function = SCRIPT.run(ctx)?;
    factory.call::<_, ()>((base,))
}

/// The natives of the groups of [`GROUPS`].
fn natives<'js>(ctx: Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    let n = Object::new(ctx)?;
    n.set("utf8Encode", Func::from(utf8_encode))?;
    n.set("utf8EncodeInto", Func::from(utf8_encode_into))?;
    n.set("utf8Decode", Func::from(utf8_decode))?;
    n.set("latin1Encode", Func::from(latin1_encode))?;
    n.set("latin1Decode", Func::from(latin1_decode))?;
    n.set("hexEncode", Func::from(hex_encode))?;
    n.set("hexDecode", Func::from(hex_decode))?;
    n.set("base64Encode", Func::from(base64_encode))?;
    n.set("base64Decode", Func::from(base64_decode))?;
    n.set("atob", Func::from(forgiving_base64))?;
    n.set("indexOf", Func::from(index_of))?;
    n.set("randomBytes", Func::from(random_bytes))?;
    n.set("digest", Func::from(digest))?;
    n.set("hmacSign", Func::from(hmac_sign))?;
    n.set("hmacVerify", Func::from(hmac_verify))?;
    n.set("aesGcm", Func::from(aes_gcm))?;
    n.set("pbkdf2", Func::from(pbkdf2))?;
    n.set("hkdf", Func::from(hkdf))?;
    n.set("urlParse", Func::from(url_parse))?;
    n.set("urlSet", Func::from(url_set))?;
    n.set("formParse", Func::from(form_parse))?;
    n.set("formSerialize", Func::from(form_serialize))?;
    n.set("maxDerivedBytes", MAX_DERIVED_BYTES as u32)?;
    Ok(n)
}

/// The factory of the group `name` of [`GROUPS`], read into the calling context now.
fn load_group<'js>(ctx: Ctx<'js>, name: String) -> rquickjs::Result<Function<'js>> {
    match GROUPS.iter().find(|(n, _)| *n == name) {
        Some((_, group)) => group.run(&ctx),
        None => Err(Exception::throw_internal(&ctx, "no such group of Web APIs")),
    }
}

/// A copy of the bytes a `Uint8Array` views (empty when its buffer is detached).
fn bytes(a: &TypedArray<'_, u8>) -> Vec<u8> {
    // SAFETY: the slice is read and copied at once, while no JavaScript runs that could detach
    // or resize the buffer behind it.
    unsafe { a.as_bytes() }
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// A new `Uint8Array` on the QuickJS heap holding `data`.
fn u8array<'js>(ctx: &Ctx<'js>, data: &[u8]) -> rquickjs::Result<TypedArray<'js, u8>> {
    TypedArray::new_copy(ctx.clone(), data)
}

/// A new `ArrayBuffer` on the QuickJS heap holding `data`.
fn buffer<'js>(ctx: &Ctx<'js>, data: &[u8]) -> rquickjs::Result<ArrayBuffer<'js>> {
    ArrayBuffer::new_copy(ctx.clone(), data)
}

fn utf8_encode<'js>(ctx: Ctx<'js>, s: String) -> rquickjs::Result<TypedArray<'js, u8>> {
    u8array(&ctx, s.as_bytes())
}

/// The whole characters of `s` that fit in `room` bytes: `[utf16UnitsRead, bytes]`.
fn utf8_encode_into<'js>(
    ctx: Ctx<'js>,
    s: String,
    room: usize,
) -> rquickjs::Result<rquickjs::Array<'js>> {
    let (mut read, mut written) = (0usize, 0usize);
    for c in s.chars() {
        if written + c.len_utf8() > room {
            break;
        }
        written += c.len_utf8();
        read += c.len_utf16();
    }
    let out = rquickjs::Array::new(ctx.clone())?;
    out.set(0, read as u32)?;
    out.set(1, u8array(&ctx, &s.as_bytes()[..written])?)?;
    Ok(out)
}

/// UTF-8 to a string: invalid sequences become U+FFFD, or, when `fatal`, the answer is `null`.
fn utf8_decode(data: TypedArray<'_, u8>, fatal: bool) -> Option<String> {
    let data = bytes(&data);
    match String::from_utf8(data) {
        Ok(s) => Some(s),
        Err(_) if fatal => None,
        Err(e) => Some(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// The low byte of each UTF-16 unit; with `strict`, `null` when a unit is above 0xFF.
fn latin1_encode<'js>(
    ctx: Ctx<'js>,
    s: String,
    strict: bool,
) -> rquickjs::Result<Option<TypedArray<'js, u8>>> {
    let mut out = Vec::with_capacity(s.len());
    for unit in s.encode_utf16() {
        if strict && unit > 0xFF {
            return Ok(None);
        }
        out.push(unit as u8);
    }
    u8array(&ctx, &out).map(Some)
}

/// Each byte as the character of that code (masked to 7 bits for `ascii`).
fn latin1_decode(data: TypedArray<'_, u8>, ascii: bool) -> String {
    let mask = if ascii { 0x7F } else { 0xFF };
    bytes(&data)
        .into_iter()
        .map(|b| char::from(b & mask))
        .collect()
}

fn hex_encode(data: TypedArray<'_, u8>) -> String {
    hex::encode(bytes(&data))
}

/// Hex pairs up to the first one that is not hex (Node's rule; an odd last digit is dropped).
fn hex_decode<'js>(ctx: Ctx<'js>, s: String) -> rquickjs::Result<TypedArray<'js, u8>> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len() / 2);
    for pair in s.as_bytes().chunks_exact(2) {
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => out.push(h << 4 | l),
            _ => break,
        }
    }
    u8array(&ctx, &out)
}

/// RFC 4648 base64 (padded), or base64url without padding when `url`.
fn base64_encode(data: TypedArray<'_, u8>, url: bool) -> String {
    let data = bytes(&data);
    if url {
        URL_SAFE_NO_PAD.encode(data)
    } else {
        STANDARD.encode(data)
    }
}

/// Decodes without padding, accepting a partial last group.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Node's lenient base64 decoding: both alphabets, characters outside them skipped, stops at
/// the first `=`; a lone trailing character is dropped.
fn base64_decode<'js>(ctx: Ctx<'js>, s: String) -> rquickjs::Result<TypedArray<'js, u8>> {
    let mut clean: Vec<u8> = Vec::with_capacity(s.len());
    for c in s.bytes() {
        match c {
            b'=' => break,
            b'-' => clean.push(b'+'),
            b'_' => clean.push(b'/'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => clean.push(c),
            _ => {}
        }
    }
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    let out = LENIENT.decode(&clean).unwrap_or_default();
    u8array(&ctx, &out)
}

/// The HTML "forgiving-base64 decode" behind `atob`, as a Latin-1 string; `null` on failure.
fn forgiving_base64(s: String) -> Option<String> {
    let mut data: Vec<u8> = s
        .bytes()
        .filter(|c| !matches!(c, b'\t' | b'\n' | b'\x0C' | b'\r' | b' '))
        .collect();
    if data.len().is_multiple_of(4) {
        for _ in 0..2 {
            if data.last() == Some(&b'=') {
                data.pop();
            }
        }
    }
    if data.len() % 4 == 1
        || !data
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
    {
        return None;
    }
    let out = LENIENT.decode(&data).ok()?;
    Some(out.into_iter().map(char::from).collect())
}

/// The first position at or after `from` where `needle` occurs in `hay`, or -1.
fn index_of(hay: TypedArray<'_, u8>, needle: TypedArray<'_, u8>, from: usize) -> i64 {
    let (hay, needle) = (bytes(&hay), bytes(&needle));
    if from > hay.len() {
        return -1;
    }
    if needle.is_empty() {
        return from as i64;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .map_or(-1, |i| (i + from) as i64)
}

/// `n` bytes from the kernel's random source (`getrandom(2)`, which the seccomp policy allows
/// and which opens no file).
fn random_bytes<'js>(ctx: Ctx<'js>, n: usize) -> rquickjs::Result<TypedArray<'js, u8>> {
    let mut out = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        // getrandom(2) through rustix, as nix has no wrapper for it.
        match rustix::rand::getrandom(&mut out[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(got) => filled += got,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => {
                return Err(Exception::throw_internal(
                    &ctx,
                    "the system's random source is not available",
                ))
            }
        }
    }
    u8array(&ctx, &out)
}

fn hash(alg: &str, data: &[u8]) -> Option<Vec<u8>> {
    Some(match alg {
        "SHA-1" => Sha1::digest(data).to_vec(),
        "SHA-256" => Sha256::digest(data).to_vec(),
        "SHA-384" => Sha384::digest(data).to_vec(),
        "SHA-512" => Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

fn digest<'js>(
    ctx: Ctx<'js>,
    alg: String,
    data: TypedArray<'js, u8>,
) -> rquickjs::Result<ArrayBuffer<'js>> {
    let out = hash(&alg, &bytes(&data)).ok_or_else(|| unknown(&ctx, &alg))?;
    buffer(&ctx, &out)
}

fn unknown(ctx: &Ctx<'_>, alg: &str) -> rquickjs::Error {
    Exception::throw_type(ctx, &format!("unsupported hash {alg}"))
}

fn mac_of<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // An HMAC accepts keys of any length, so the error branch cannot be taken.
    match <M as KeyInit>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn verify_of<M: Mac + KeyInit>(key: &[u8], data: &[u8], signature: &[u8]) -> bool {
    match <M as KeyInit>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.verify_slice(signature).is_ok()
        }
        Err(_) => false,
    }
}

fn hmac_sign<'js>(
    ctx: Ctx<'js>,
    alg: String,
    key: TypedArray<'js, u8>,
    data: TypedArray<'js, u8>,
) -> rquickjs::Result<ArrayBuffer<'js>> {
    let (key, data) = (bytes(&key), bytes(&data));
    let out = match alg.as_str() {
        "SHA-1" => mac_of::<Hmac<Sha1>>(&key, &data),
        "SHA-256" => mac_of::<Hmac<Sha256>>(&key, &data),
        "SHA-384" => mac_of::<Hmac<Sha384>>(&key, &data),
        "SHA-512" => mac_of::<Hmac<Sha512>>(&key, &data),
        _ => return Err(unknown(&ctx, &alg)),
    };
    buffer(&ctx, &out)
}

/// Checks an HMAC signature in constant time.
fn hmac_verify<'js>(
    ctx: Ctx<'js>,
    alg: String,
    key: TypedArray<'js, u8>,
    data: TypedArray<'js, u8>,
    signature: TypedArray<'js, u8>,
) -> rquickjs::Result<bool> {
    let (key, data, signature) = (bytes(&key), bytes(&data), bytes(&signature));
    Ok(match alg.as_str() {
        "SHA-1" => verify_of::<Hmac<Sha1>>(&key, &data, &signature),
        "SHA-256" => verify_of::<Hmac<Sha256>>(&key, &data, &signature),
        "SHA-384" => verify_of::<Hmac<Sha384>>(&key, &data, &signature),
        "SHA-512" => verify_of::<Hmac<Sha512>>(&key, &data, &signature),
        _ => return Err(unknown(&ctx, &alg)),
    })
}

/// AES-GCM with a 96-bit IV: ciphertext followed by the tag, or the plaintext; `null` when the
/// key, IV or tag length is unsupported, or (decrypting) the data does not authenticate.
fn aes_gcm<'js>(
    ctx: Ctx<'js>,
    encrypt: bool,
    key: TypedArray<'js, u8>,
    iv: TypedArray<'js, u8>,
    aad: TypedArray<'js, u8>,
    data: TypedArray<'js, u8>,
    tag_bytes: u32,
) -> rquickjs::Result<Option<ArrayBuffer<'js>>> {
    let (key, iv, aad, data) = (bytes(&key), bytes(&iv), bytes(&aad), bytes(&data));
    if iv.len() != 12 {
        return Ok(None);
    }
    let nonce = Nonce::<U12>::from_slice(&iv);
    let payload = Payload {
        msg: &data,
        aad: &aad,
    };
    macro_rules! run {
        ($cipher:ty, $tag:ty) => {{
            match AesGcm::<$cipher, U12, $tag>::new_from_slice(&key) {
                Ok(c) if encrypt => c.encrypt(nonce, payload).ok(),
                Ok(c) => c.decrypt(nonce, payload).ok(),
                Err(_) => None,
            }
        }};
    }
    macro_rules! tags {
        ($cipher:ty) => {
            match tag_bytes {
                12 => run!($cipher, U12),
                13 => run!($cipher, U13),
                14 => run!($cipher, U14),
                15 => run!($cipher, U15),
                16 => run!($cipher, U16),
                _ => None,
            }
        };
    }
    let out = match key.len() {
        16 => tags!(Aes128),
        24 => tags!(Aes192),
        32 => tags!(Aes256),
        _ => None,
    };
    out.map(|o| buffer(&ctx, &o)).transpose()
}

fn pbkdf2<'js>(
    ctx: Ctx<'js>,
    alg: String,
    password: TypedArray<'js, u8>,
    salt: TypedArray<'js, u8>,
    iterations: u32,
    length: usize,
) -> rquickjs::Result<ArrayBuffer<'js>> {
    let (password, salt) = (bytes(&password), bytes(&salt));
    let mut out = vec![0u8; length.min(MAX_DERIVED_BYTES)];
    match alg.as_str() {
        "SHA-1" => pbkdf2::pbkdf2_hmac::<Sha1>(&password, &salt, iterations, &mut out),
        "SHA-256" => pbkdf2::pbkdf2_hmac::<Sha256>(&password, &salt, iterations, &mut out),
        "SHA-384" => pbkdf2::pbkdf2_hmac::<Sha384>(&password, &salt, iterations, &mut out),
        "SHA-512" => pbkdf2::pbkdf2_hmac::<Sha512>(&password, &salt, iterations, &mut out),
        _ => return Err(unknown(&ctx, &alg)),
    }
    buffer(&ctx, &out)
}

/// HKDF extract-and-expand; `null` when `length` exceeds 255 hash lengths.
fn hkdf<'js>(
    ctx: Ctx<'js>,
    alg: String,
    ikm: TypedArray<'js, u8>,
    salt: TypedArray<'js, u8>,
    info: TypedArray<'js, u8>,
    length: usize,
) -> rquickjs::Result<Option<ArrayBuffer<'js>>> {
    let (ikm, salt, info) = (bytes(&ikm), bytes(&salt), bytes(&info));
    if length > 255 * 64 {
        return Ok(None);
    }
    let mut out = vec![0u8; length];
    let ok = match alg.as_str() {
        "SHA-1" => hkdf::Hkdf::<Sha1>::new(Some(&salt), &ikm)
            .expand(&info, &mut out)
            .is_ok(),
        "SHA-256" => hkdf::Hkdf::<Sha256>::new(Some(&salt), &ikm)
            .expand(&info, &mut out)
            .is_ok(),
        "SHA-384" => hkdf::Hkdf::<Sha384>::new(Some(&salt), &ikm)
            .expand(&info, &mut out)
            .is_ok(),
        "SHA-512" => hkdf::Hkdf::<Sha512>::new(Some(&salt), &ikm)
            .expand(&info, &mut out)
            .is_ok(),
        _ => return Err(unknown(&ctx, &alg)),
    };
    if !ok {
        return Ok(None);
    }
    buffer(&ctx, &out).map(Some)
}

/// The URL's parts in the order the script reads them: href, protocol, username, password,
/// host, hostname, port, pathname, search, hash, origin.
fn parts(url: &Url) -> Vec<String> {
    use url::quirks as q;
    vec![
        q::href(url).to_owned(),
        q::protocol(url).to_owned(),
        q::username(url).to_owned(),
        q::password(url).to_owned(),
        q::host(url).to_owned(),
        q::hostname(url).to_owned(),
        q::port(url).to_owned(),
        q::pathname(url).to_owned(),
        q::search(url).to_owned(),
        q::hash(url).to_owned(),
        q::origin(url),
    ]
}

/// Parses `input` against `base` with the WHATWG rules; `null` when either fails.
fn url_parse(input: String, base: Option<String>) -> Option<Vec<String>> {
    let url = match base {
        Some(base) => Url::parse(&base).ok()?.join(&input).ok()?,
        None => Url::parse(&input).ok()?,
    };
    Some(parts(&url))
}

/// Applies one WHATWG setter (by the index of the part in [`parts`]) to `href`. Setters that
/// fail leave the URL as it was, as the standard says; only `href` reports failure (`null`).
fn url_set(href: String, part: u32, value: String) -> Option<Vec<String>> {
    use url::quirks as q;
    let mut url = Url::parse(&href).ok()?;
    match part {
        0 => q::set_href(&mut url, &value).ok()?,
        1 => drop(q::set_protocol(&mut url, &value)),
        2 => drop(q::set_username(&mut url, &value)),
        3 => drop(q::set_password(&mut url, &value)),
        4 => drop(q::set_host(&mut url, &value)),
        5 => drop(q::set_hostname(&mut url, &value)),
        6 => drop(q::set_port(&mut url, &value)),
        7 => q::set_pathname(&mut url, &value),
        8 => q::set_search(&mut url, &value),
        9 => q::set_hash(&mut url, &value),
        _ => {}
    }
    Some(parts(&url))
}

/// `application/x-www-form-urlencoded` parsing into `[name, value, name, value, ...]`.
fn form_parse(s: String) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in url::form_urlencoded::parse(s.as_bytes()) {
        out.push(k.into_owned());
        out.push(v.into_owned());
    }
    out
}

/// The inverse of [`form_parse`].
fn form_serialize(list: Vec<String>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for pair in list.chunks_exact(2) {
        s.append_pair(&pair[0], &pair[1]);
    }
    s.finish()
}

#[cfg(test)]
mod tests;
