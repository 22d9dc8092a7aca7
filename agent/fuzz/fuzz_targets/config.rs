//! Fuzz target `config`: arbitrary bytes as a keepalived.conf, through the
//! lexer, the parser and validation (`hactl_agent::config`). The property
//! (no panic, every diagnostic with its file and a line the file has, a
//! valid file summarizes and serializes) is
//! `hactl_agent::config::fuzz::check_config`, which CI runs, seeded, in
//! `agent/tests/config.rs`. Seeds: `agent/tests/corpus/valid` and
//! `invalid` (give them after a writable corpus directory, see README).
#![no_main]

use hactl_agent::config::fuzz::check_config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(broken) = check_config(&text) {
        panic!("{broken}");
    }
});
