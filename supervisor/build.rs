//! Link options of the `isolate-service` binary.
//!
//! The code and read-only data segments start on 2 MiB boundaries (`max-page-size` makes the
//! kernel load the binary at a 2 MiB-aligned address, `separate-code` starts the code segment on
//! a boundary of that size), so that the zygote can move all but the last partial block of each
//! into transparent huge pages (`isolate_worker::hugetext`); without them, the first partial
//! block of the code stays in small pages and faults in every fresh worker. The file grows by
//! the padding, about 2 MiB.

fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,-z,max-page-size=0x200000");
    println!("cargo:rustc-link-arg-bins=-Wl,-z,separate-code");
}
