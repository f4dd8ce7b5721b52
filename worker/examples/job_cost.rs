//! Measures what one execution costs inside a worker, without HTTP or IPC:
//! `cargo run --release -p isolate-worker --example job_cost`.
//!
//! Prints microseconds per job for the README example in a runtime made on the spot, in a
//! runtime prepared ahead (what a warm worker does), and for the preparation alone.

use std::time::Instant;

use isolate_shared::message::{CodeForm, ExecuteJob, JsLimits, Language, Preset};
use isolate_worker::js;

fn main() {
    let job = ExecuteJob {
        code: "return env.prices.reduce((a,b) => a+b, 0) / env.prices.length".into(),
        preset: Preset::Compute,
        env_json: Some(r#"{"prices":[83.5,84.2,82.1]}"#.into()),
        timeout_ms: 5000,
        limits: JsLimits::default(),
        language: Language::JavaScript,
        form: CodeForm::Auto,
        data_json: None,
    };
    js::prelude::warm();
    let n = 2000u32;
    for _ in 0..200 {
        js::execute(&job);
    }
    let t = Instant::now();
    for _ in 0..n {
        js::execute(&job);
    }
    let cold = t.elapsed() / n;
    let (mut prepare, mut warm) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    for _ in 0..n {
        let t = Instant::now();
        let p = js::Prepared::new(Preset::Compute).ok();
        prepare += t.elapsed();
        let t = Instant::now();
        js::execute_prepared(p, &job);
        warm += t.elapsed();
    }
    let (prepare, warm) = (prepare / n, warm / n);
    println!(
        "per job: fresh runtime {cold:?}, prepared runtime {warm:?}, preparation alone {prepare:?}"
    );
}
