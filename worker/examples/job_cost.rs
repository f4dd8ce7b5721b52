//! Measures what one execution costs inside a worker, without HTTP or IPC:
//! `cargo run --release -p isolate-worker --example job_cost`.
//!
//! Prints microseconds per job for the README example in a runtime made on the spot, in a
//! runtime prepared ahead (what a worker without region slots does: the request waits only for
//! this one), for the preparation alone and for freeing the used runtime (both done while the
//! worker is idle), in a runtime restored from a slot's snapshot (what a worker does: the job,
//! its outcome copied out of the slot) and for the restore alone (done while it is idle),
//! once per preset: `compute`, and `data` (the same code, then a job that uses the Web APIs),
//! and `agent` (the Web API job in a context that also has `fetch`), then the same function
//! body as JavaScript and as TypeScript, and the stripping alone.

use std::time::{Duration, Instant};

use isolate_shared::message::{CodeForm, ExecuteJob, JsLimits, Language, Preset};
use isolate_worker::js;

/// As in the service's binary: runtimes in region slots keep their Rust allocations there.
#[global_allocator]
static ALLOCATOR: isolate_worker::region::Routing = isolate_worker::region::Routing;

fn measure(label: &str, job: &ExecuteJob) {
    let n = 2000u32;
    for _ in 0..200 {
        js::execute_prepared(None, job, None);
    }
    let t = Instant::now();
    for _ in 0..n {
        js::execute_prepared(None, job, None);
    }
    let cold = t.elapsed() / n;
    let mut pristine = js::Pristine::new(job.preset)
        .expect("region slots")
        .expect("a runtime");
    let (mut slot, mut restore) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..n {
        let t = Instant::now();
        pristine.execute(job, None);
        slot += t.elapsed();
        let t = Instant::now();
        pristine.reset();
        restore += t.elapsed();
    }
    let (slot, restore) = (slot / n, restore / n);
    let snapshot = pristine.snapshot_bytes() / 1024;
    let (mut prepare, mut warm, mut free) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..n {
        let t = Instant::now();
        let p = js::Prepared::new(job.preset).ok();
        prepare += t.elapsed();
        let t = Instant::now();
        let (_, retired) = js::execute_retiring(p, job, None);
        warm += t.elapsed();
        let t = Instant::now();
        drop(retired);
        free += t.elapsed();
    }
    let (prepare, warm, free) = (prepare / n, warm / n, free / n);
    println!(
        "{label}: per job: fresh runtime {cold:?}, prepared runtime {warm:?}, \
         preparation alone {prepare:?}, freeing {free:?}; restored runtime {slot:?}, \
         restore alone {restore:?} ({snapshot} KiB)"
    );
}

fn main() {
    let mut job = ExecuteJob {
        code: "return env.prices.reduce((a,b) => a+b, 0) / env.prices.length".into(),
        preset: Preset::Compute,
        env_json: Some(r#"{"prices":[83.5,84.2,82.1]}"#.into()),
        timeout_ms: 5000,
        limits: JsLimits::default(),
        language: Language::JavaScript,
        form: CodeForm::Auto,
        data_json: None,
    };
    js::warm();
    measure("compute", &job);
    job.preset = Preset::Data;
    measure("data   ", &job);
    job.code = "const key = await crypto.subtle.importKey('raw', new TextEncoder().encode('k'), \
                {name: 'HMAC', hash: 'SHA-256'}, false, ['sign']);\n\
                return Buffer.from(await crypto.subtle.sign('HMAC', key, Buffer.from(JSON.stringify(env)))).toString('hex')"
        .into();
    measure("data (HMAC of env)", &job);
    job.preset = Preset::Agent;
    measure("agent (same HMAC; fetch installed, not called)", &job);
    job.preset = Preset::Data;
    // The README example as a TypeScript function body (the `/deno` route): stripping the
    // types is the only difference, so the two lines compare its cost.
    job.code = "\nconst input = data;\nconst prices = input.prices;\n\
                return prices.reduce((a, b) => a + b, 0) / prices.length"
        .into();
    job.env_json = None;
    job.data_json = Some(r#"{"prices":[83.5,84.2,82.1]}"#.into());
    job.form = CodeForm::FunctionBody;
    measure("data, JavaScript body", &job);
    job.code = "interface Input { prices: number[] }\nconst input = data as Input;\n\
                const prices: number[] = input.prices!;\n\
                return prices.reduce((a: number, b: number): number => a + b, 0) / prices.length"
        .into();
    job.language = Language::TypeScript;
    js::typescript::warm();
    measure("data, TypeScript body", &job);
    let n = 5000u32;
    let t = Instant::now();
    for _ in 0..n {
        let _ = js::typescript::strip(&job.code);
    }
    println!("stripping the TypeScript body alone: {:?}", t.elapsed() / n);
}
