//! Fuzzes the delivery-report and read-notification parser: any bytes must be read as a report
//! or refused with a reason, never a panic, a hang or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kurir::inbound::report::parse(data);
    let _ = kurir::inbound::report::field_blocks(data);
});
