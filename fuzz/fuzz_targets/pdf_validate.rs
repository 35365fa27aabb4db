//! Fuzzes the PDF validator: any bytes must be accepted or refused with a reason, never a
//! panic, a hang or unbounded memory (the limits are those of the daemon, made small).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = kurir::pdf::PdfLimits {
        max_bytes: 1 << 20,
        max_pages: 50,
        max_decompressed_bytes: 8 << 20,
    };
    let _ = kurir::pdf::validate(data, &limits);
});
