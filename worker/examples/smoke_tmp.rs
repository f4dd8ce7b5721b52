use isolate_shared::message::{ExecuteJob, JsLimits, Preset};
fn main() {
    let code = std::env::args().nth(1).unwrap();
    let job = ExecuteJob { code, preset: Preset::Data, env_json: None, timeout_ms: 2000, limits: JsLimits::default() };
    let o = isolate_worker::js::execute(&job);
    println!("{:?}", o.result);
}
