//! Fuzz target `inventory`: arbitrary bytes as an inventory file, through
//! YAML, the inventory model, the plan and the render of every host. The
//! property (no panic, every error with its file and line, every resolved
//! plan rendering a keepalived.conf that parses to exactly the plan) is
//! `hactl::fuzz::check_inventory`, which CI runs, seeded, in the unit tests
//! of `src/fuzz.rs`. Seeds: `inventories/`, `tests/corpus/render/` and the
//! `inventory.yml` files of `tests/corpus/inventories/` (give them after a
//! writable corpus directory, see README).
#![no_main]

use hactl::fuzz::check_inventory;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(broken) = check_inventory(&text) {
        panic!("{broken}");
    }
});
