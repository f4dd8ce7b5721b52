//! Any text through the TypeScript stripper: it returns JavaScript or a named error with a
//! position inside the input, never panics or hangs, and never moves a line or a UTF-16
//! column.
#![no_main]

use isolate_worker::js::typescript;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(code) = std::str::from_utf8(data) else {
        return;
    };
    match typescript::strip(code) {
        Ok(js) => {
            assert_eq!(js.encode_utf16().count(), code.encode_utf16().count());
            let lines = |s: &str| s.matches(['\n', '\r', '\u{2028}', '\u{2029}']).count();
            assert_eq!(lines(&js), lines(code));
            let last = code.split('\n').count() as u32;
            let _ = typescript::map_column(code, &js, last, 1 + (code.len() as u32 % 64));
        }
        Err(e) => {
            assert!(e.line >= 1 && e.column >= 1, "{e}");
            assert!(e.line as usize <= code.split('\n').count(), "{e}");
            assert!(!e.message.is_empty());
        }
    }
});
