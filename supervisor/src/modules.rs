//! The module store: compiled WebAssembly artifacts by module id, bounded by count and bytes
//! (least recently used first out), optionally backed by the directory `wasm.cache_dir`, which
//! several instances may share.
//!
//! **Two levels.** Memory holds what this instance runs; the directory holds every module any
//! instance sharing it compiled. A module is written to the directory when it is compiled, and
//! read from it when a run or a compile names an id that memory does not hold ([`ModuleStore::load`]),
//! so a module compiled on one replica runs on another by its id. Evicting a module from memory
//! never deletes its file; the directory is kept within the same bounds (`wasm.max_modules`,
//! `wasm.max_store_bytes`) by whichever instance writes, which removes the records written or
//! used longest ago ([`sweep`]). An instance whose file was removed by another keeps running
//! its copy in memory; one that never held it answers as for any unknown id.
//!
//! **Files.** One record per module, `<stem>.module`, where the stem is the SHA-256 of this
//! build's version and the id, so no id names a path and builds with other engines never read
//! each other's artifacts. A record is a header line, one line of JSON (the interface, the
//! source hash and the SHA-256 and length of the artifact) and the artifact. It is written to
//! a temporary file with a random name (created exclusively, mode 0600, never through a
//! symlink), synced, and published in one step: a hard link that fails if the name exists when
//! the id may not be replaced (two instances compiling the same id at once: the first wins,
//! the other checks that it holds the same bytes), a rename otherwise. Readers therefore see a
//! whole record or none.
//!
//! **Trust model.** An artifact is native code produced by wasmtime inside a sandboxed worker
//! from untrusted input. The supervisor treats it as opaque bytes: it never deserialises or
//! maps it, it only stores it and sends it to workers, which load it (`Module::deserialize`)
//! behind their seccomp and landlock walls. The store reads a record only when it is a regular
//! file (opened without following symlinks) owned by the service's user, no larger than the
//! store allows, whose header parses and whose artifact has the recorded length and hash;
//! anything else is refused (logged, never sent to a worker) and not read again until the file
//! changes. Every instance sharing a directory must therefore run as the same user id. That
//! guards against corruption, truncation and stray files, not against someone who can already
//! write the directory as the service's user, and the sandbox bounds what a forged artifact
//! could do.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use isolate_shared::frame::MAX_FRAME_BYTES;
use isolate_shared::message::{WasmExtern, WasmImport, WasmKind, WasmType};
use nix::fcntl::OFlag;
use nix::unistd::geteuid;
use sha2::{Digest, Sha256};

/// Why the store could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The cache directory could not be created or read.
    #[error("cannot use the module cache directory {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The cache directory is not a plain directory owned by this user.
    #[error("the module cache directory {0} must be a directory owned by the service's user, not a symlink")]
    Untrusted(String),
    /// One artifact does not fit the store at all.
    #[error("the compiled module ({0} bytes) is larger than the store (wasm.max_store_bytes)")]
    TooLarge(u64),
    /// Another instance sharing the directory stored other bytes under this id first.
    #[error("another instance stored other bytes under module id {0:?}")]
    Taken(String),
}

/// One compiled module.
#[derive(Debug)]
pub struct StoredModule {
    /// The id clients use.
    pub id: String,
    /// SHA-256 (hex) of the module's bytes as uploaded; the workers' cache key.
    pub source_sha256: String,
    /// Size of the uploaded module.
    pub byte_size: u64,
    /// Compilation time in microseconds.
    pub compile_us: u64,
    /// Exports in declaration order.
    pub exports: Vec<WasmExtern>,
    /// Imports in declaration order.
    pub imports: Vec<WasmImport>,
    /// wasmtime's serialised artifact.
    pub artifact: Arc<Vec<u8>>,
}

impl StoredModule {
    /// Whether the module imports WASI preview 1.
    pub fn imports_wasi(&self) -> bool {
        self.imports
            .iter()
            .any(|i| i.module == "wasi_snapshot_preview1")
    }

    /// The function export called when a run names none: `_start` for WASI commands,
    /// otherwise the first exported function.
    pub fn default_entry(&self) -> Option<&WasmExtern> {
        let functions = || self.exports.iter().filter(|e| e.kind == WasmKind::Function);
        if self.imports_wasi() {
            if let Some(start) = functions().find(|e| e.name == "_start") {
                return Some(start);
            }
        }
        functions().next()
    }
}

/// What `/stats` shows of the store.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct StoreSnapshot {
    /// Always true in this build.
    pub available: bool,
    /// Modules held in memory.
    pub modules: usize,
    /// Bytes of artifacts held in memory.
    pub bytes: u64,
    /// Look-ups that found their module (runs, and compiles answered from the store).
    pub hits: u64,
    /// Look-ups that did not.
    pub misses: u64,
    /// Modules compiled by workers.
    pub compiles: u64,
    /// Modules evicted from memory to stay within the bounds.
    pub evictions: u64,
    /// Whether the store has a directory (`wasm.cache_dir`).
    pub persistent: bool,
    /// Modules read from the directory on demand (compiled by another instance, or evicted
    /// from memory earlier).
    pub loads: u64,
    /// Files in the directory refused as corrupt, truncated, too large or not the service's.
    pub refused: u64,
}

struct Slot {
    module: Arc<StoredModule>,
    used: u64,
    /// When this instance last refreshed the file's modification time (its recency on disk).
    touched: Instant,
}

#[derive(Default)]
struct Inner {
    slots: HashMap<String, Slot>,
    bytes: u64,
    tick: u64,
}

/// A file as `fstat` saw it: a refused file is not read again until one of these changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
}

/// Disk look-ups that may run at once (each in a blocking thread): ids that exist nowhere
/// cost one `open` each, and at most this many at a time.
const DISK_LOOKUPS: usize = 4;
/// Refused files remembered (by stamp); the memory is cleared when it is full.
const REFUSED_MAX: usize = 1024;
/// How often a module in use refreshes its file's modification time.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Temporary files older than this are a crashed writer's, removed by [`sweep`].
const STALE_TMP: Duration = Duration::from_secs(600);
/// The most a record's header line may take.
const META_MAX: u64 = 16 << 20;
/// The first line of every record: the format's name and version.
const MAGIC: &[u8] = b"isolate-service module 1\n";

/// The store. Cheap to share (`Arc`); every operation takes one short lock.
pub struct ModuleStore {
    inner: Mutex<Inner>,
    dir: Option<PathBuf>,
    max_modules: usize,
    max_bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
    compiles: AtomicU64,
    evictions: AtomicU64,
    loads: AtomicU64,
    refusals: AtomicU64,
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    lookups: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    disk: tokio::sync::Semaphore,
    refused: Mutex<HashMap<String, Stamp>>,
}

/// Whether `id` may name a module: 1 to 128 characters of `A-Z a-z 0-9 . _ -`, not starting
/// with a dot.
pub fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// SHA-256 as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The entry of `map` for `key`, dropping entries nobody holds, so the map stays as small as
/// the operations in flight.
fn turn_of(
    map: &Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    key: &str,
) -> Arc<tokio::sync::Mutex<()>> {
    let mut map = lock(map);
    map.retain(|_, t| Arc::strong_count(t) > 1);
    Arc::clone(map.entry(key.to_string()).or_default())
}

/// What reading one record gave.
enum Lookup {
    Found(StoredModule),
    Absent,
    Refused(String, Option<Stamp>),
    Known,
}

impl ModuleStore {
    /// Opens the store; with a directory, creates it if missing and loads the most recently
    /// used records it holds, as many as memory takes.
    pub fn open(
        dir: Option<&str>,
        max_modules: usize,
        max_bytes: u64,
    ) -> Result<ModuleStore, StoreError> {
        let store = ModuleStore {
            inner: Mutex::new(Inner::default()),
            dir: dir.map(PathBuf::from),
            max_modules,
            max_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            compiles: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
            turns: Mutex::new(HashMap::new()),
            lookups: Mutex::new(HashMap::new()),
            disk: tokio::sync::Semaphore::new(DISK_LOOKUPS),
            refused: Mutex::new(HashMap::new()),
        };
        if let Some(dir) = &store.dir {
            prepare_dir(dir)?;
            store.load_all(dir)?;
        }
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// The module with this id in memory, counted as a hit or a miss. Call [`Self::load`]
    /// first to look in the directory too.
    pub fn get(&self, id: &str) -> Option<Arc<StoredModule>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        match inner.slots.get_mut(id) {
            Some(slot) => {
                slot.used = tick;
                let touch = self.dir.is_some() && slot.touched.elapsed() >= TOUCH_EVERY;
                if touch {
                    slot.touched = Instant::now();
                }
                let module = Arc::clone(&slot.module);
                drop(inner);
                self.hits.fetch_add(1, Ordering::Relaxed);
                if let (true, Some(dir)) = (touch, &self.dir) {
                    touch_record(&record_path(dir, id));
                }
                Some(module)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// The module with this id in memory, without counting or refreshing it (compile's
    /// duplicate check).
    pub fn peek(&self, id: &str) -> Option<Arc<StoredModule>> {
        self.lock().slots.get(id).map(|s| Arc::clone(&s.module))
    }

    /// Makes sure memory holds the module with this id if the directory has a valid record of
    /// it (written by this instance or another sharing the directory). Does nothing without a
    /// directory, for an id memory holds, and for one that is not valid id syntax (no path is
    /// ever built from it). Concurrent look-ups of one id read the file once; at most
    /// [`DISK_LOOKUPS`] run at once; a refused file is not read again until it changes.
    pub async fn load(&self, id: &str) {
        let Some(dir) = &self.dir else { return };
        if !valid_id(id) || self.peek(id).is_some() {
            return;
        }
        let turn = turn_of(&self.lookups, id);
        let _turn = turn.lock().await;
        if self.peek(id).is_some() {
            return;
        }
        let Ok(_permit) = self.disk.acquire().await else {
            return;
        };
        let stem = file_stem(id);
        let known = lock(&self.refused).get(&stem).copied();
        let (dir, max_bytes, wanted) = (dir.clone(), self.max_bytes, id.to_string());
        let read = tokio::task::spawn_blocking(move || {
            let path = record_path(&dir, &wanted);
            let read = read_record(&path, &stem, max_bytes, known);
            if let Lookup::Found(_) = read {
                touch_record(&path);
            }
            (stem, read)
        })
        .await;
        match read {
            Ok((_, Lookup::Found(module))) if module.id == id => {
                // A compile of this id that finished during the read wins over the file.
                if self.put_unless_held(Arc::new(module)) {
                    self.loads.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok((stem, Lookup::Refused(problem, stamp))) => self.refuse(&stem, &problem, stamp),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot look up a stored module"),
        }
    }

    fn refuse(&self, stem: &str, problem: &str, stamp: Option<Stamp>) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(file = %stem, problem = %problem, "refusing a stored module");
        if let Some(stamp) = stamp {
            let mut refused = lock(&self.refused);
            if refused.len() >= REFUSED_MAX {
                refused.clear();
            }
            refused.insert(stem.to_string(), stamp);
        }
    }

    /// Adds a freshly compiled module (replacing one with the same id in memory), evicting the
    /// least recently used ones from memory to stay within the bounds, and publishes it in the
    /// directory when the store has one. Without `replace`, a record another instance
    /// published under this id first wins: the same bytes are fine, other bytes are
    /// [`StoreError::Taken`] (and that record is loaded instead). A module that cannot be
    /// written stays in memory (logged). Blocking: call it off the async threads.
    pub fn insert(
        &self,
        module: StoredModule,
        replace: bool,
    ) -> Result<Arc<StoredModule>, StoreError> {
        let size = module.artifact.len() as u64;
        if size > self.max_bytes {
            return Err(StoreError::TooLarge(size));
        }
        self.compiles.fetch_add(1, Ordering::Relaxed);
        let module = Arc::new(module);
        if let Some(dir) = &self.dir {
            match publish(dir, &module, replace, self.max_bytes) {
                Ok(Published::Written) | Ok(Published::Same) => {}
                Ok(Published::Other(existing)) => {
                    let id = existing.id.clone();
                    self.put(Arc::new(existing));
                    return Err(StoreError::Taken(id));
                }
                Err(e) => {
                    tracing::warn!(error = %e, module = %module.id, "cannot persist a compiled module")
                }
            }
            sweep(
                dir,
                self.max_modules,
                self.max_bytes,
                &file_stem(&module.id),
            );
        }
        self.put(Arc::clone(&module));
        Ok(module)
    }

    /// Puts a module in memory unless memory already holds its id; whether it did.
    fn put_unless_held(&self, module: Arc<StoredModule>) -> bool {
        let inner = self.lock();
        if inner.slots.contains_key(&module.id) {
            return false;
        }
        self.put_locked(inner, module);
        true
    }

    /// Puts a module in memory, evicting the least recently used ones (their files stay).
    fn put(&self, module: Arc<StoredModule>) {
        self.put_locked(self.lock(), module);
    }

    fn put_locked(&self, mut inner: std::sync::MutexGuard<'_, Inner>, module: Arc<StoredModule>) {
        inner.tick += 1;
        let tick = inner.tick;
        let size = module.artifact.len() as u64;
        if let Some(old) = inner.slots.remove(&module.id) {
            inner.bytes -= old.module.artifact.len() as u64;
        }
        while !inner.slots.is_empty()
            && (inner.slots.len() >= self.max_modules || inner.bytes + size > self.max_bytes)
        {
            let Some(oldest) = inner
                .slots
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(slot) = inner.slots.remove(&oldest) {
                inner.bytes -= slot.module.artifact.len() as u64;
            }
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        inner.bytes += size;
        inner.slots.insert(
            module.id.clone(),
            Slot {
                module,
                used: tick,
                touched: Instant::now(),
            },
        );
    }

    /// Counts an answer served from the store without compiling.
    pub fn count_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a compile request the store could not answer.
    pub fn count_miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// The lock that serialises compilations under one id in this instance (instances sharing
    /// a directory are ordered by [`Self::insert`]'s publication instead).
    pub fn compile_turn(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        turn_of(&self.turns, id)
    }

    /// Drops a module whose artifact a worker could not load, from memory and the directory.
    pub fn remove(&self, id: &str) {
        let mut inner = self.lock();
        if let Some(slot) = inner.slots.remove(id) {
            inner.bytes -= slot.module.artifact.len() as u64;
        }
        drop(inner);
        if let Some(dir) = &self.dir {
            let _ = fs::remove_file(record_path(dir, id));
        }
    }

    /// Counters and sizes for `/stats`.
    pub fn snapshot(&self) -> StoreSnapshot {
        let inner = self.lock();
        StoreSnapshot {
            available: true,
            modules: inner.slots.len(),
            bytes: inner.bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            compiles: self.compiles.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            persistent: self.dir.is_some(),
            loads: self.loads.load(Ordering::Relaxed),
            refused: self.refusals.load(Ordering::Relaxed),
        }
    }

    /// Loads the most recently used records, as many as fit in memory.
    fn load_all(&self, dir: &Path) -> Result<(), StoreError> {
        let mut records = records(dir).map_err(|source| StoreError::Directory {
            path: dir.display().to_string(),
            source,
        })?;
        records.sort_by_key(|r| std::cmp::Reverse(r.modified));
        let (mut count, mut bytes, mut loaded) = (0usize, 0u64, 0usize);
        for r in records {
            if count >= self.max_modules {
                break;
            }
            if bytes + r.size > self.max_bytes.saturating_add(META_MAX) {
                continue;
            }
            match read_record(&dir.join(&r.name), &r.stem, self.max_bytes, None) {
                Lookup::Found(module) => {
                    count += 1;
                    bytes += module.artifact.len() as u64;
                    self.put(Arc::new(module));
                    loaded += 1;
                }
                Lookup::Refused(problem, stamp) => self.refuse(&r.stem, &problem, stamp),
                Lookup::Absent | Lookup::Known => {}
            }
        }
        if loaded > 0 {
            tracing::info!(
                modules = loaded,
                "loaded compiled modules from the cache directory"
            );
        }
        Ok(())
    }
}

fn prepare_dir(dir: &Path) -> Result<(), StoreError> {
    let err = |source| StoreError::Directory {
        path: dir.display().to_string(),
        source,
    };
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?,
        Err(e) => return Err(err(e)),
        Ok(_) => {}
    }
    let meta = fs::symlink_metadata(dir).map_err(err)?;
    let uid = geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != uid {
        return Err(StoreError::Untrusted(dir.display().to_string()));
    }
    Ok(())
}

/// A record's file stem: the SHA-256 of this build's version and the id, so no id can name a
/// path, and builds whose artifacts may differ keep apart.
fn file_stem(id: &str) -> String {
    sha256_hex(format!("{}\0{id}", env!("CARGO_PKG_VERSION")).as_bytes())
}

fn record_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{}.module", file_stem(id)))
}

/// Refreshes a record's modification time, its recency for [`sweep`]. A file another
/// instance removed is no error: this one keeps its copy in memory.
fn touch_record(path: &Path) {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let now = TimeSpec::UTIME_NOW;
    if let Err(e) = utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &now,
        &now,
        UtimensatFlags::NoFollowSymlink,
    ) {
        tracing::debug!(error = %e, "cannot refresh a stored module's time");
    }
}

fn kind_from(name: &str) -> Option<WasmKind> {
    [
        WasmKind::Function,
        WasmKind::Memory,
        WasmKind::Table,
        WasmKind::Global,
        WasmKind::Tag,
    ]
    .into_iter()
    .find(|k| k.as_str() == name)
}

fn type_from(name: &str) -> Option<WasmType> {
    [
        WasmType::I32,
        WasmType::I64,
        WasmType::F32,
        WasmType::F64,
        WasmType::V128,
        WasmType::Ref,
    ]
    .into_iter()
    .find(|t| t.as_str() == name)
}

/// The JSON header of a record: the module's interface and the hash and length of the
/// artifact that follows it. Kinds and types are kept by name.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    id: Option<String>,
    version: Option<String>,
    source_sha256: Option<String>,
    artifact_sha256: Option<String>,
    artifact_bytes: Option<u64>,
    #[serde(default)]
    byte_size: u64,
    #[serde(default)]
    compile_us: u64,
    #[serde(default)]
    exports: Vec<ExportRecord>,
    #[serde(default)]
    imports: Vec<ImportRecord>,
}

/// One export in a [`Record`].
#[derive(serde::Serialize, serde::Deserialize)]
struct ExportRecord {
    #[serde(default)]
    name: String,
    kind: String,
    #[serde(default)]
    params: Vec<String>,
    #[serde(default)]
    results: Vec<String>,
}

/// One import in a [`Record`].
#[derive(serde::Serialize, serde::Deserialize)]
struct ImportRecord {
    #[serde(default)]
    module: String,
    #[serde(default)]
    name: String,
    kind: String,
}

fn type_names(types: &[WasmType]) -> Vec<String> {
    types.iter().map(|t| t.as_str().to_string()).collect()
}

/// Unknown type names are left out (as a newer build might write them).
fn types_from(names: &[String]) -> Vec<WasmType> {
    names.iter().filter_map(|t| type_from(t)).collect()
}

/// A record's bytes: the header line, the JSON line, the artifact.
fn encode(m: &StoredModule) -> std::io::Result<Vec<u8>> {
    let record = Record {
        id: Some(m.id.clone()),
        version: Some(env!("CARGO_PKG_VERSION").to_string()),
        source_sha256: Some(m.source_sha256.clone()),
        artifact_sha256: Some(sha256_hex(&m.artifact)),
        artifact_bytes: Some(m.artifact.len() as u64),
        byte_size: m.byte_size,
        compile_us: m.compile_us,
        exports: m
            .exports
            .iter()
            .map(|e| ExportRecord {
                name: e.name.clone(),
                kind: e.kind.as_str().to_string(),
                params: type_names(&e.params),
                results: type_names(&e.results),
            })
            .collect(),
        imports: m
            .imports
            .iter()
            .map(|i| ImportRecord {
                module: i.module.clone(),
                name: i.name.clone(),
                kind: i.kind.as_str().to_string(),
            })
            .collect(),
    };
    // serde_json writes no raw newline: strings escape theirs.
    let meta = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
    if meta.len() as u64 > META_MAX {
        return Err(std::io::Error::other(
            "the module's interface is too large to store",
        ));
    }
    let mut bytes = Vec::with_capacity(MAGIC.len() + meta.len() + 1 + m.artifact.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&meta);
    bytes.push(b'\n');
    bytes.extend_from_slice(&m.artifact);
    Ok(bytes)
}

/// What [`publish`] did.
enum Published {
    /// The record is in place.
    Written,
    /// A record of the same bytes under this id was there already.
    Same,
    /// A valid record of other bytes under this id was there already (and stays).
    Other(StoredModule),
}

/// Writes `m`'s record through a temporary file and publishes it: with `replace`, by a
/// rename over whatever is there; without, by a hard link that fails when the name exists, so
/// that of two instances publishing one id at once the first wins. An existing file that is
/// not a valid record (corrupt, truncated, another user's) is replaced.
fn publish(
    dir: &Path,
    m: &StoredModule,
    replace: bool,
    max_bytes: u64,
) -> std::io::Result<Published> {
    let stem = file_stem(&m.id);
    let path = dir.join(format!("{stem}.module"));
    let tmp = dir.join(format!(".{stem}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = write_tmp(&tmp, &encode(m)?).and_then(|()| {
        if replace {
            return fs::rename(&tmp, &path).map(|()| Published::Written);
        }
        match fs::hard_link(&tmp, &path) {
            Ok(()) => Ok(Published::Written),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                match read_record(&path, &stem, max_bytes, None) {
                    Lookup::Found(existing) if existing.source_sha256 == m.source_sha256 => {
                        Ok(Published::Same)
                    }
                    Lookup::Found(existing) if existing.id == m.id => {
                        Ok(Published::Other(existing))
                    }
                    _ => fs::rename(&tmp, &path).map(|()| Published::Written),
                }
            }
            // A file system without hard links: a rename, after the look-up that found no
            // record under this id.
            Err(_) => fs::rename(&tmp, &path).map(|()| Published::Written),
        }
    });
    let _ = fs::remove_file(&tmp);
    let written = written?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(written)
}

/// Creates `tmp` exclusively (mode 0600, never through a symlink), writes `bytes` and syncs.
fn write_tmp(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// One record file found in the directory.
struct Listed {
    name: String,
    stem: String,
    size: u64,
    modified: SystemTime,
}

/// The record files in the directory that are regular files of the service's user (others are
/// never read or removed).
fn records(dir: &Path) -> std::io::Result<Vec<Listed>> {
    let uid = geteuid().as_raw();
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)?.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".module") else {
            continue;
        };
        if stem.len() != 64 || !stem.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || meta.uid() != uid {
            continue;
        }
        out.push(Listed {
            stem: stem.to_string(),
            name,
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    Ok(out)
}

/// Keeps the directory within the store's bounds: removes the records written or used longest
/// ago (never `keep`, the one just written) until at most `max_modules` remain and they take
/// at most `max_bytes` (plus their headers), and temporary files a crashed writer left. An
/// instance that still holds a removed module in memory keeps running it.
fn sweep(dir: &Path, max_modules: usize, max_bytes: u64, keep: &str) {
    let Ok(mut records) = records(dir) else {
        return;
    };
    records.sort_by_key(|r| r.modified);
    let mut count = records.len();
    let mut bytes: u64 = records.iter().map(|r| r.size).sum();
    let budget = max_bytes.saturating_add(META_MAX);
    for r in &records {
        if count <= max_modules && bytes <= budget {
            break;
        }
        if r.stem == keep {
            continue;
        }
        if fs::remove_file(dir.join(&r.name)).is_ok() {
            count -= 1;
            bytes -= r.size;
        }
    }
    let uid = geteuid().as_raw();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with('.') && name.ends_with(".tmp")) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TMP);
        if meta.is_file() && meta.uid() == uid && old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Reads one record file. `Absent` when there is no such file; `Known` when it is the file
/// refused before (same stamp), without reading it; `Refused` with the reason (and the stamp,
/// when the file could be opened) when it is not a valid record of the service's user.
fn read_record(path: &Path, stem: &str, max_bytes: u64, known: Option<Stamp>) -> Lookup {
    // O_NONBLOCK: a FIFO planted under a record's name must not block the reader (regular
    // files read as usual; anything else is refused below, unread).
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Lookup::Absent,
        // A symlink (or anything else that cannot be opened) is remembered by the stamp of
        // the name itself, so that asking again neither retries nor logs again.
        Err(e) => {
            let stamp = fs::symlink_metadata(path).ok().map(|m| stamp_of(&m));
            if stamp.is_some() && stamp == known {
                return Lookup::Known;
            }
            return Lookup::Refused(format!("cannot open: {e}"), stamp);
        }
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return Lookup::Refused(e.to_string(), None),
    };
    let stamp = stamp_of(&meta);
    if known == Some(stamp) {
        return Lookup::Known;
    }
    let refuse = |why: &str| Lookup::Refused(why.to_string(), Some(stamp));
    if !meta.is_file() || meta.uid() != geteuid().as_raw() {
        return refuse("not a regular file owned by the service's user");
    }
    // An artifact larger than the store (say, after wasm.max_store_bytes was lowered), or than
    // a run's frame can carry, is refused, as `insert` would refuse it.
    let artifact_max = max_bytes.min(MAX_FRAME_BYTES as u64);
    let limit = MAGIC.len() as u64 + META_MAX + 1 + artifact_max;
    if meta.len() > limit {
        return refuse("larger than the store allows");
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    if let Err(e) = file.take(limit).read_to_end(&mut bytes) {
        return refuse(&format!("cannot read: {e}"));
    }
    match decode(&bytes, stem, artifact_max) {
        Ok(m) => Lookup::Found(m),
        Err(why) => refuse(why),
    }
}

fn stamp_of(meta: &fs::Metadata) -> Stamp {
    Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.len(),
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
    }
}

/// Parses and checks a record's bytes.
fn decode(bytes: &[u8], stem: &str, artifact_max: u64) -> Result<StoredModule, &'static str> {
    let rest = bytes.strip_prefix(MAGIC).ok_or("not a module record")?;
    let end = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("truncated: no end of header")?;
    let record: Record = serde_json::from_slice(&rest[..end]).map_err(|_| "unreadable header")?;
    let artifact = &rest[end + 1..];
    if record.version.as_deref() != Some(env!("CARGO_PKG_VERSION")) {
        return Err("written by another version");
    }
    let id = record.id.filter(|i| valid_id(i)).ok_or("bad id")?;
    if file_stem(&id) != stem {
        return Err("the record does not belong to this file name");
    }
    if record.artifact_bytes != Some(artifact.len() as u64) {
        return Err("truncated: the artifact is not the recorded length");
    }
    if artifact.len() as u64 > artifact_max {
        return Err("larger than the store allows");
    }
    if record.artifact_sha256.as_deref() != Some(sha256_hex(artifact).as_str()) {
        return Err("the artifact does not match the hash recorded when it was written");
    }
    let exports = record
        .exports
        .iter()
        .map(|e| {
            Some(WasmExtern {
                name: e.name.clone(),
                kind: kind_from(&e.kind)?,
                params: types_from(&e.params),
                results: types_from(&e.results),
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or("bad exports")?;
    let imports = record
        .imports
        .iter()
        .map(|i| {
            Some(WasmImport {
                module: i.module.clone(),
                name: i.name.clone(),
                kind: kind_from(&i.kind)?,
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or("bad imports")?;
    Ok(StoredModule {
        id,
        source_sha256: record.source_sha256.ok_or("no source hash")?,
        byte_size: record.byte_size,
        compile_us: record.compile_us,
        exports,
        imports,
        artifact: Arc::new(artifact.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(id: &str, size: usize) -> StoredModule {
        module_of(id, id, size)
    }

    fn module_of(id: &str, source: &str, size: usize) -> StoredModule {
        StoredModule {
            id: id.into(),
            source_sha256: sha256_hex(source.as_bytes()),
            byte_size: 10,
            compile_us: 5,
            exports: vec![WasmExtern {
                name: "add".into(),
                kind: WasmKind::Function,
                params: vec![WasmType::I32, WasmType::I32],
                results: vec![WasmType::I32],
            }],
            imports: vec![],
            artifact: Arc::new(vec![7; size]),
        }
    }

    /// A fresh directory for one test, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("isolate-store-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            Scratch(dir)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }

        fn record(&self, id: &str) -> PathBuf {
            record_path(&self.0, id)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Looks `id` up the way the routes do: the directory first, then memory.
    fn find(store: &ModuleStore, id: &str) -> Option<Arc<StoredModule>> {
        block_on(store.load(id));
        store.get(id)
    }

    #[test]
    fn ids_are_checked() {
        for ok in ["a", "my-module_1.0", &"x".repeat(128)] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "../x", "a b", &"x".repeat(129), "é"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn evicts_least_recently_used_by_count_and_bytes() {
        let store = ModuleStore::open(None, 2, 100).unwrap();
        store.insert(module("a", 10), false).unwrap();
        store.insert(module("b", 10), false).unwrap();
        assert!(store.get("a").is_some()); // b is now the oldest
        store.insert(module("c", 10), false).unwrap();
        assert!(store.get("b").is_none());
        assert!(store.get("a").is_some() && store.get("c").is_some());
        store.insert(module("d", 95), false).unwrap(); // bytes force out everything else
        let s = store.snapshot();
        assert_eq!((s.modules, s.bytes, s.evictions), (1, 95, 3));
        assert!(matches!(
            store.insert(module("e", 101), false),
            Err(StoreError::TooLarge(101))
        ));
    }

    #[test]
    fn persists_and_refuses_tampered_or_truncated_records() {
        let dir = Scratch::new("tamper");
        {
            let store = ModuleStore::open(Some(dir.path()), 8, 1 << 20).unwrap();
            for id in ["kept", "tampered", "truncated", "garbage"] {
                store.insert(module(id, 10), false).unwrap();
            }
        }
        let mut bytes = fs::read(dir.record("tampered")).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(dir.record("tampered"), &bytes).unwrap();
        let full = fs::read(dir.record("truncated")).unwrap();
        fs::write(dir.record("truncated"), &full[..full.len() - 3]).unwrap();
        fs::write(dir.record("garbage"), b"not a record").unwrap();
        let small = ModuleStore::open(Some(dir.path()), 8, 5).unwrap();
        assert_eq!(
            small.snapshot().bytes,
            0,
            "artifacts larger than the store are not loaded"
        );
        drop(small);
        let store = ModuleStore::open(Some(dir.path()), 8, 1 << 20).unwrap();
        let kept = store.get("kept").expect("kept survives a restart");
        assert_eq!(kept.exports[0].params, vec![WasmType::I32, WasmType::I32]);
        assert_eq!(kept.artifact.len(), 10);
        for bad in ["tampered", "truncated", "garbage"] {
            assert!(find(&store, bad).is_none(), "{bad} is not loaded");
        }
        assert_eq!(store.snapshot().refused, 3);
        // A refused file is not read again until it changes.
        assert!(find(&store, "tampered").is_none());
        assert_eq!(store.snapshot().refused, 3);
    }

    #[test]
    fn a_module_written_by_one_instance_is_found_by_another() {
        let dir = Scratch::new("shared");
        let a = ModuleStore::open(Some(dir.path()), 8, 1 << 20).unwrap();
        let b = ModuleStore::open(Some(dir.path()), 8, 1 << 20).unwrap();
        assert!(find(&b, "late").is_none());
        a.insert(module("late", 10), false).unwrap();
        let found = find(&b, "late").expect("b reads what a wrote");
        assert_eq!((found.id.as_str(), found.artifact.len()), ("late", 10));
        assert_eq!(b.snapshot().loads, 1);
        // Evicting from memory leaves the file: an instance with room for one module takes
        // turns reading both.
        a.insert(module("other", 10), false).unwrap();
        let tiny = ModuleStore::open(Some(dir.path()), 1, 1 << 20).unwrap();
        for id in ["late", "other", "late"] {
            assert!(
                find(&tiny, id).is_some(),
                "{id} read back after an eviction"
            );
        }
        let s = tiny.snapshot();
        assert_eq!((s.modules, s.evictions), (1, 3), "{s:?}");
        assert!(dir.record("late").exists() && dir.record("other").exists());
    }

    #[test]
    fn ids_that_are_no_id_never_touch_the_disk() {
        let dir = Scratch::new("ids");
        let store = ModuleStore::open(Some(dir.path()), 8, 1 << 20).unwrap();
        // A file named like the id, planted in and around the directory, is never read.
        fs::write(dir.0.join("x.module"), b"x").unwrap();
        for id in ["../x", "/etc/passwd", "x.module", ".x", "", "a/../../b"] {
            assert!(find(&store, id).is_none(), "{id}");
        }
        let s = store.snapshot();
        assert_eq!((s.loads, s.refused), (0, 0));
    }

    #[test]
    fn symlinks_huge_files_and_other_users_files_are_refused() {
        let dir = Scratch::new("hostile");
        let a = ModuleStore::open(Some(dir.path()), 8, 1 << 20).unwrap();
        a.insert(module("real", 10), false).unwrap();
        // A symlink under another id's name, pointing at a valid record, is not followed.
        std::os::unix::fs::symlink(dir.record("real"), dir.record("link")).unwrap();
        // A sparse file far larger than the store is refused by its size, unread.
        fs::File::create(dir.record("huge"))
            .unwrap()
            .set_len(1 << 40)
            .unwrap();
        // A FIFO under a record's name is refused without blocking the reader.
        nix::unistd::mkfifo(&dir.record("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let b = ModuleStore::open(Some(dir.path()), 8, 1 << 20).unwrap();
        assert!(find(&b, "link").is_none());
        assert!(find(&b, "huge").is_none());
        assert!(find(&b, "fifo").is_none());
        assert_eq!(b.snapshot().refused, 3);
        // Asked again, none of them is read or counted again.
        for id in ["link", "huge", "fifo"] {
            assert!(find(&b, id).is_none());
        }
        assert_eq!(b.snapshot().refused, 3);
        if geteuid().is_root() {
            // A valid record that another user owns is not trusted.
            nix::unistd::chown(
                &dir.record("real"),
                Some(nix::unistd::Uid::from_raw(4321)),
                None,
            )
            .unwrap();
            let c = ModuleStore::open(Some(dir.path()), 8, 1 << 20).unwrap();
            assert_eq!(c.snapshot().modules, 0);
            assert!(find(&c, "real").is_none());
        }
    }

    #[test]
    fn concurrent_writers_of_one_id_publish_one_whole_record() {
        let dir = Scratch::new("race");
        let stores: Vec<_> = (0..4)
            .map(|_| Arc::new(ModuleStore::open(Some(dir.path()), 8, 1 << 20).unwrap()))
            .collect();
        // The same bytes from every instance at once: all succeed, one record stays.
        let threads: Vec<_> = stores
            .iter()
            .map(|s| {
                let s = Arc::clone(s);
                std::thread::spawn(move || s.insert(module("same", 100_000), false).is_ok())
            })
            .collect();
        assert!(threads.into_iter().all(|t| t.join().unwrap()));
        // Other bytes under one explicit id: exactly one instance wins, the others are told.
        let threads: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let s = Arc::clone(s);
                std::thread::spawn(move || {
                    s.insert(module_of("named", &format!("bytes {i}"), 1000 + i), false)
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "{results:?}");
        assert!(results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, StoreError::Taken(id) if id == "named")));
        let fresh = ModuleStore::open(Some(dir.path()), 8, 1 << 20).unwrap();
        assert_eq!(fresh.snapshot().refused, 0, "no torn record");
        let named = fresh.get("named").unwrap();
        assert_eq!(named.source_sha256, won[0].source_sha256);
        assert_eq!(fresh.get("same").unwrap().artifact.len(), 100_000);
        let leftovers: Vec<_> = fs::read_dir(&dir.0)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
        // With `replace`, the newer record wins.
        stores[0]
            .insert(module_of("named", "replacement", 5), true)
            .unwrap();
        let fresh = ModuleStore::open(Some(dir.path()), 8, 1 << 20).unwrap();
        assert_eq!(fresh.get("named").unwrap().artifact.len(), 5);
    }

    #[test]
    fn the_directory_keeps_the_bounds_and_a_vanished_file_is_no_error() {
        let dir = Scratch::new("bounds");
        let a = ModuleStore::open(Some(dir.path()), 3, 1 << 20).unwrap();
        let b = ModuleStore::open(Some(dir.path()), 3, 1 << 20).unwrap();
        a.insert(module("m0", 10), false).unwrap();
        // Distinct modification times, so that the oldest is well defined.
        std::thread::sleep(Duration::from_millis(20));
        for i in 1..5 {
            b.insert(module(&format!("m{i}"), 10), false).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        let on_disk = records(&dir.0).unwrap();
        assert_eq!(on_disk.len(), 3, "the directory holds at most max_modules");
        assert!(!dir.record("m0").exists() && !dir.record("m1").exists());
        // a still runs m0 from memory although b removed its file, and drops it cleanly.
        assert!(a.get("m0").is_some());
        a.remove("m0");
        assert!(find(&a, "m0").is_none());
        assert!(find(&a, "m4").is_some());
    }
}
