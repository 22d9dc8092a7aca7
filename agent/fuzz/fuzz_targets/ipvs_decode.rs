//! Fuzz target `ipvs_decode`: arbitrary bytes as the value of an IPVS
//! SERVICE or DEST attribute (`hactl_agent::ipvs::wire`), as a kernel's
//! dump would hand them over.
//!
//! The first byte picks which, and the family of a destination. Decoding
//! must never panic, and whatever decodes must encode and decode back to
//! the same value. The same property runs in CI, seeded, in the unit tests
//! of `agent/src/ipvs/wire.rs`.
#![no_main]

use hactl_agent::ipvs::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    wire::check_round_trip(selector, bytes);
});
