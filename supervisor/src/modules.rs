//! The module store: compiled WebAssembly artifacts by module id, bounded by count and bytes
//! (least recently used first out), optionally persisted to `wasm.cache_dir`.
//!
//! **Trust model.** An artifact is native code produced by wasmtime inside a sandboxed worker
//! from untrusted input. The supervisor treats it as opaque bytes: it never deserialises or
//! maps it, it only stores it and sends it to workers, which load it (`Module::deserialize`)
//! behind their seccomp and landlock walls. On disk an artifact lives only in the store's own
//! directory, in files the store created (`<hash>.cwasm`, beside a `<hash>.meta` JSON record
//! holding the interface and the SHA-256 of the artifact as written). On start the store loads a
//! record only when its file is a regular file (not a symlink) owned by the service's user and
//! its hash still matches; anything else is skipped and logged. That guards against corruption
//! and stray files, not against someone who can already write the directory as the service's
//! user, and the sandbox bounds what a forged artifact could do.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
    /// Modules held.
    pub modules: usize,
    /// Bytes of artifacts held.
    pub bytes: u64,
    /// Look-ups that found their module (runs, and compiles answered from the store).
    pub hits: u64,
    /// Look-ups that did not.
    pub misses: u64,
    /// Modules compiled by workers.
    pub compiles: u64,
    /// Modules evicted to stay within the bounds.
    pub evictions: u64,
    /// Whether the store persists to a directory.
    pub persistent: bool,
}

struct Slot {
    module: Arc<StoredModule>,
    used: u64,
}

#[derive(Default)]
struct Inner {
    slots: HashMap<String, Slot>,
    bytes: u64,
    tick: u64,
}

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
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
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

impl ModuleStore {
    /// Opens the store; with a directory, creates it if missing and loads what it holds.
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
            turns: Mutex::new(HashMap::new()),
        };
        if let Some(dir) = &store.dir {
            prepare_dir(dir)?;
            store.load_all(dir)?;
        }
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The module with this id, counted as a hit or a miss.
    pub fn get(&self, id: &str) -> Option<Arc<StoredModule>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        match inner.slots.get_mut(id) {
            Some(slot) => {
                slot.used = tick;
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(Arc::clone(&slot.module))
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// The module with this id, without counting or refreshing it (compile's duplicate check).
    pub fn peek(&self, id: &str) -> Option<Arc<StoredModule>> {
        self.lock().slots.get(id).map(|s| Arc::clone(&s.module))
    }

    /// Adds a freshly compiled module (replacing one with the same id), evicting the least
    /// recently used ones to stay within the bounds, and persists it when the store has a
    /// directory. A module that cannot be written stays in memory (logged).
    pub fn insert(&self, module: StoredModule) -> Result<Arc<StoredModule>, StoreError> {
        let size = module.artifact.len() as u64;
        if size > self.max_bytes {
            return Err(StoreError::TooLarge(size));
        }
        self.compiles.fetch_add(1, Ordering::Relaxed);
        let module = Arc::new(module);
        if let Some(dir) = &self.dir {
            if let Err(e) = write_record(dir, &module) {
                tracing::warn!(error = %e, module = %module.id, "cannot persist a compiled module");
            }
        }
        let evicted = self.put(Arc::clone(&module));
        for id in evicted {
            self.evictions.fetch_add(1, Ordering::Relaxed);
            if let Some(dir) = &self.dir {
                remove_record(dir, &id);
            }
        }
        Ok(module)
    }

    /// Puts a module in memory; returns the ids evicted.
    fn put(&self, module: Arc<StoredModule>) -> Vec<String> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let size = module.artifact.len() as u64;
        if let Some(old) = inner.slots.remove(&module.id) {
            inner.bytes -= old.module.artifact.len() as u64;
        }
        let mut evicted = Vec::new();
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
            evicted.push(oldest);
        }
        inner.bytes += size;
        inner
            .slots
            .insert(module.id.clone(), Slot { module, used: tick });
        evicted
    }

    /// Counts an answer served from the store without compiling.
    pub fn count_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a compile request the store could not answer.
    pub fn count_miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// The lock that serialises compilations under one id. Entries nobody waits on are dropped
    /// whenever a new one is handed out, so the map stays as small as the compilations in
    /// flight.
    pub fn compile_turn(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        turns.retain(|_, t| Arc::strong_count(t) > 1);
        Arc::clone(turns.entry(id.to_string()).or_default())
    }

    /// Drops a module whose artifact a worker could not load.
    pub fn remove(&self, id: &str) {
        let mut inner = self.lock();
        if let Some(slot) = inner.slots.remove(id) {
            inner.bytes -= slot.module.artifact.len() as u64;
        }
        drop(inner);
        if let Some(dir) = &self.dir {
            remove_record(dir, id);
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
        }
    }

    fn load_all(&self, dir: &Path) -> Result<(), StoreError> {
        let entries = fs::read_dir(dir).map_err(|source| StoreError::Directory {
            path: dir.display().to_string(),
            source,
        })?;
        let mut loaded = 0usize;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".meta")) else {
                continue;
            };
            match read_record(dir, stem, self.max_bytes) {
                Ok(module) => {
                    let evicted = self.put(Arc::new(module));
                    for id in evicted {
                        remove_record(dir, &id);
                    }
                    loaded += 1;
                }
                Err(problem) => {
                    tracing::warn!(file = %stem, problem = %problem, "skipping a stored module");
                }
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

/// File names are derived from the id's SHA-256, so no id can name a path.
fn file_stem(id: &str) -> String {
    sha256_hex(id.as_bytes())
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

/// The JSON record kept beside each artifact (`<hash>.meta`): the module's interface and the
/// hash of the artifact as written. Kinds and types are kept by name.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    id: Option<String>,
    source_sha256: Option<String>,
    artifact_sha256: Option<String>,
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

fn write_record(dir: &Path, m: &StoredModule) -> std::io::Result<()> {
    let stem = file_stem(&m.id);
    let record = Record {
        id: Some(m.id.clone()),
        source_sha256: Some(m.source_sha256.clone()),
        artifact_sha256: Some(sha256_hex(&m.artifact)),
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
    let meta = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
    // The artifact first, then its record: a record always describes a complete artifact.
    write_new(dir, &format!("{stem}.cwasm"), &m.artifact)?;
    write_new(dir, &format!("{stem}.meta"), &meta)
}

/// Writes a file through a fresh temporary name (created exclusively, mode 0600) and renames
/// it into place.
fn write_new(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(name))
}

fn remove_record(dir: &Path, id: &str) {
    let stem = file_stem(id);
    let _ = fs::remove_file(dir.join(format!("{stem}.meta")));
    let _ = fs::remove_file(dir.join(format!("{stem}.cwasm")));
}

/// Reads a file the store wrote: a regular file (not a symlink), owned by this user.
fn read_own(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(path)
        .map_err(|e| format!("cannot open: {e}"))?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    let uid = geteuid().as_raw();
    if !meta.is_file() || meta.uid() != uid {
        return Err("not a regular file owned by the service's user".into());
    }
    if meta.len() > limit {
        return Err("larger than the store allows".into());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

fn read_record(dir: &Path, stem: &str, max_bytes: u64) -> Result<StoredModule, String> {
    let meta = read_own(&dir.join(format!("{stem}.meta")), 16 << 20)?;
    let record: Record = serde_json::from_slice(&meta).map_err(|_| "unreadable record")?;
    let id = record.id.filter(|i| valid_id(i)).ok_or("bad id")?;
    if file_stem(&id) != stem {
        return Err("the record does not belong to this file name".into());
    }
    let artifact_sha = record.artifact_sha256.ok_or("no artifact hash")?;
    // An artifact larger than the store (say, after wasm.max_store_bytes was lowered) is
    // skipped, as `insert` would refuse it.
    let artifact = read_own(&dir.join(format!("{stem}.cwasm")), max_bytes)?;
    if sha256_hex(&artifact) != artifact_sha {
        return Err("the artifact does not match the hash recorded when it was written".into());
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
        artifact: Arc::new(artifact),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(id: &str, size: usize) -> StoredModule {
        StoredModule {
            id: id.into(),
            source_sha256: sha256_hex(id.as_bytes()),
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
        store.insert(module("a", 10)).unwrap();
        store.insert(module("b", 10)).unwrap();
        assert!(store.get("a").is_some()); // b is now the oldest
        store.insert(module("c", 10)).unwrap();
        assert!(store.get("b").is_none());
        assert!(store.get("a").is_some() && store.get("c").is_some());
        store.insert(module("d", 95)).unwrap(); // bytes force out everything else
        let s = store.snapshot();
        assert_eq!((s.modules, s.bytes, s.evictions), (1, 95, 3));
        assert!(matches!(
            store.insert(module("e", 101)),
            Err(StoreError::TooLarge(101))
        ));
    }

    #[test]
    fn persists_and_refuses_tampered_artifacts() {
        let dir = std::env::temp_dir().join(format!("isolate-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.to_str().unwrap();
        {
            let store = ModuleStore::open(Some(path), 8, 1 << 20).unwrap();
            store.insert(module("kept", 10)).unwrap();
            store.insert(module("tampered", 10)).unwrap();
        }
        fs::write(
            dir.join(format!("{}.cwasm", file_stem("tampered"))),
            b"evil",
        )
        .unwrap();
        let small = ModuleStore::open(Some(path), 8, 5).unwrap();
        assert_eq!(
            small.snapshot().bytes,
            0,
            "artifacts larger than the store are not loaded"
        );
        drop(small);
        let store = ModuleStore::open(Some(path), 8, 1 << 20).unwrap();
        let kept = store.get("kept").expect("kept survives a restart");
        assert_eq!(kept.exports[0].params, vec![WasmType::I32, WasmType::I32]);
        assert_eq!(kept.artifact.len(), 10);
        assert!(
            store.get("tampered").is_none(),
            "a changed artifact is not loaded"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
