//! Unit tests of the WebAssembly host (modules written in WAT). Timeouts are tested end to end
//! (`tests/e2e/wasm.rs`): the epoch timer is process-wide, and unit tests share a process.

use super::*;
use isolate_shared::message::WasiInput;

fn limits() -> WasmLimits {
    WasmLimits {
        memory_bytes: 1 << 20,
        table_elements: 100,
        instances: 1,
        tables: 2,
        memories: 1,
        max_output_bytes: 8,
        worker_cache_modules: 2,
    }
}

fn job(id: &str, artifact: Option<Vec<u8>>, entry: &str, args: Vec<WasmArg>) -> WasmRunJob {
    WasmRunJob {
        module_id: id.into(),
        artifact,
        entry: entry.into(),
        args,
        imports: Vec::new(),
        stub_missing_imports: false,
        wasi: WasiInput::default(),
        timeout_ms: 5000,
        limits: limits(),
    }
}

fn artifact(wat: &str) -> Vec<u8> {
    init().unwrap();
    let bytes = wat::parse_str(wat).unwrap();
    compile(&WasmCompileJob { bytes }).result.unwrap().artifact
}

#[test]
fn compiles_describes_and_runs_from_the_cache() {
    init().unwrap();
    let bytes = wat::parse_str(
        r#"(module (import "env" "g" (global i32))
            (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
            (memory (export "mem") 1))"#,
    )
    .unwrap();
    let compiled = compile(&WasmCompileJob { bytes }).result.unwrap();
    assert_eq!(compiled.exports[0].name, "add");
    assert_eq!(
        compiled.exports[0].params,
        vec![WasmType::I32, WasmType::I32]
    );
    assert_eq!(compiled.exports[1].kind, WasmKind::Memory);
    assert_eq!(compiled.imports[0].kind, WasmKind::Global);
    let plain = artifact(
        r#"(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#,
    );
    let mut cache = Cache::default();
    // Without the artifact, an unknown module asks for it and runs nothing.
    let asked = run(&mut cache, job("m", None, "add", vec![]));
    assert!(asked.needs_artifact);
    let first = run(
        &mut cache,
        job(
            "m",
            Some(plain),
            "add",
            vec![WasmArg::Int(2), WasmArg::Text("3".into())],
        ),
    );
    assert_eq!(first.result, Ok(vec![WasmValue::I32(5)]));
    let again = run(
        &mut cache,
        job("m", None, "add", vec![WasmArg::Int(-1), WasmArg::Int(1)]),
    );
    assert_eq!(again.result, Ok(vec![WasmValue::I32(0)]));
    assert_eq!(again.stats.load_us, 0, "served from the cache");
    let bad = run(
        &mut cache,
        job("m", None, "add", vec![WasmArg::Float(0.5), WasmArg::Int(1)]),
    );
    assert_eq!(bad.result.unwrap_err().kind, WasmErrorKind::InvalidArgs);
    // A third module evicts the least recently used (the cache holds two).
    for id in ["x", "y"] {
        let a = artifact(r#"(module (func (export "f")))"#);
        let out = run(&mut cache, job(id, Some(a), "f", vec![]));
        assert_eq!(out.result, Ok(vec![]));
        assert_eq!(
            out.evicted,
            if id == "y" {
                vec!["m".to_string()]
            } else {
                vec![]
            }
        );
    }
    let corrupt = run(
        &mut cache,
        job("z", Some(b"\x7fELF junk".to_vec()), "f", vec![]),
    );
    assert_eq!(
        corrupt.result.unwrap_err().kind,
        WasmErrorKind::ModuleUnusable
    );
    assert!(compile(&WasmCompileJob {
        bytes: b"junk".to_vec()
    })
    .result
    .is_err());
}

#[test]
fn wasi_output_is_capped_and_exit_codes_come_back() {
    let a = artifact(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (data (i32.const 64) "0123456789")
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 64))
            (i32.store (i32.const 4) (i32.const 10))
            (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
            (call $exit (i32.load (i32.const 8)))))"#,
    );
    let mut cache = Cache::default();
    let out = run(&mut cache, job("w", Some(a), "_start", vec![]));
    assert!(out.wasi);
    assert_eq!(out.result, Ok(vec![]));
    assert_eq!(out.stdout, b"01234567", "capped at max_output_bytes");
    assert!(out.output_truncated);
    assert_eq!(
        out.exit_code,
        Some(10),
        "all ten bytes are reported as written"
    );
}

#[test]
fn fd_write_refuses_iovec_sums_beyond_u32() {
    // 4097 iovecs of 1 MiB each (all over the same memory) add up to more than 4 GiB: the
    // written count cannot be reported, so the call answers EINVAL (28) instead of a wrapped
    // count.
    let a = artifact(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 16)
          (func (export "_start") (local $i i32)
            (block $done (loop $next
              (br_if $done (i32.eq (local.get $i) (i32.const 4097)))
              (i32.store (i32.mul (local.get $i) (i32.const 8)) (i32.const 0))
              (i32.store (i32.add (i32.mul (local.get $i) (i32.const 8)) (i32.const 4))
                (i32.const 1048576))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $next)))
            (call $exit (call $w (i32.const 1) (i32.const 0) (i32.const 4097) (i32.const 40000)))))"#,
    );
    let mut cache = Cache::default();
    let mut j = job("big", Some(a), "_start", vec![]);
    j.limits.memory_bytes = 2 << 20;
    let out = run(&mut cache, j);
    assert_eq!(out.result, Ok(vec![]));
    assert_eq!(out.exit_code, Some(28), "EINVAL, not a wrapped count");
    assert!(out.stdout.is_empty(), "nothing is written");
}

#[test]
fn captured_output_is_cut_on_its_encoded_size() {
    let mut v = vec![1u8; 100];
    assert!(wasi::truncate_encoded(&mut v, 60));
    assert_eq!(v.len(), 10, "\\u0001 takes six bytes");
    let mut v = vec![0xffu8; 100];
    assert!(wasi::truncate_encoded(&mut v, 30));
    assert_eq!(v.len(), 10, "an invalid byte becomes U+FFFD, three bytes");
    let mut v = "héllo".as_bytes().to_vec();
    assert!(!wasi::truncate_encoded(&mut v, 6));
    assert!(wasi::truncate_encoded(&mut v, 2));
    assert_eq!(v, b"h", "never inside a character");
}

#[test]
fn wasi_output_of_control_bytes_is_capped_encoded() {
    let a = artifact(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 64) "\01\01\01\01\01\01\01\01")
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 64))
            (i32.store (i32.const 4) (i32.const 8))
            (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
    );
    let mut cache = Cache::default();
    let out = run(&mut cache, job("c", Some(a), "_start", vec![]));
    assert_eq!(
        out.stdout,
        [1u8],
        "one \\u0001 (6 bytes) fits in 8, two do not"
    );
    assert!(out.output_truncated);
}

#[test]
fn wasi_clocks_start_at_zero_with_millisecond_resolution() {
    let a = artifact(
        r#"(module
          (import "wasi_snapshot_preview1" "clock_time_get" (func $t (param i32 i64 i32) (result i32)))
          (import "wasi_snapshot_preview1" "clock_res_get" (func $r (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "mono") (result i64)
            (drop (call $t (i32.const 1) (i64.const 1) (i32.const 0)))
            (i64.load (i32.const 0)))
          (func (export "real") (result i64)
            (drop (call $t (i32.const 0) (i64.const 1) (i32.const 0)))
            (i64.load (i32.const 0)))
          (func (export "res") (param i32) (result i64)
            (drop (call $r (local.get 0) (i32.const 0)))
            (i64.load (i32.const 0))))"#,
    );
    let mut cache = Cache::default();
    let value = |cache: &mut Cache, entry: &str, args: Vec<WasmArg>| -> i64 {
        let a = Some(a.clone());
        match run(cache, job("clk", a, entry, args)).result {
            Ok(v) => match v.as_slice() {
                [WasmValue::I64(n)] => *n,
                other => panic!("{entry}: {other:?}"),
            },
            Err(e) => panic!("{entry}: {e:?}"),
        }
    };
    let mono = value(&mut cache, "mono", vec![]);
    assert!(
        (0..1_000_000_000).contains(&mono),
        "starts at zero per run: {mono}"
    );
    assert_eq!(mono % 1_000_000, 0);
    let real = value(&mut cache, "real", vec![]);
    assert_eq!(real % 1_000_000, 0);
    assert!(real > 1_600_000_000_000_000_000, "the wall clock: {real}");
    for id in 0..4 {
        assert_eq!(value(&mut cache, "res", vec![WasmArg::Int(id)]), 1_000_000);
    }
}
