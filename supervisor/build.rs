//! Link options of the `isolate-service` binary.
//!
//! The code and read-only data segments start on 2 MiB boundaries (`max-page-size` makes the
//! kernel load the binary at a 2 MiB-aligned address, `separate-code` starts the code segment on
//! a boundary of that size, and the relocated read-only data starts on one too), so that the
//! zygote can move each segment into transparent huge pages (`isolate_worker::hugetext`), the
//! last partly filled block of each included, because the padding up to the next segment is
//! unmapped; without them, the first partial block of the code stays in small pages and faults
//! in every fresh worker. The file grows by the padding, about 2 MiB.

fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,-z,max-page-size=0x200000");
    println!("cargo:rustc-link-arg-bins=-Wl,-z,separate-code");
}
