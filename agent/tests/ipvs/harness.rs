//! The IPVS tests' own harness: on the host, boot the VM and run this very
//! binary inside it (`tests/vm/run.sh`); inside the VM, run the tests one
//! after another and report them the way libtest does.
//!
//! This machine's kernel has no IPVS, so these tests only mean something
//! inside the VM; a harness of our own makes `cargo test -p hactl-agent
//! --test ipvs` do that with one boot per run and no runner to configure.
//! Where qemu cannot run at all, the run is reported as skipped, loudly,
//! with the reason.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::time::Instant;

/// One test: its name and body.
pub type Test = (&'static str, fn());

/// Runs `tests` as the arguments say (names to filter on, `--list`),
/// on the host through the VM and inside it directly; `ignored` (the
/// benchmarks) run only with `--ignored` or `--include-ignored`, as with
/// libtest. Never returns.
pub fn main(tests: &[Test], ignored: &[Test]) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in tests.iter().chain(ignored) {
            println!("{name}: test");
        }
        std::process::exit(0);
    }
    let only_ignored = args.iter().any(|a| a == "--ignored");
    let with_ignored = only_ignored || args.iter().any(|a| a == "--include-ignored");
    let mut all: Vec<Test> = Vec::new();
    if !only_ignored {
        all.extend_from_slice(tests);
    }
    if with_ignored {
        all.extend_from_slice(ignored);
    }
    let skipped = if with_ignored { 0 } else { ignored.len() };
    let tests = all.as_slice();
    // libtest's options that take a value: the value is not a filter.
    const WITH_VALUE: &[&str] = &[
        "--test-threads",
        "--skip",
        "--format",
        "--color",
        "--logfile",
        "-Z",
    ];
    let mut filters: Vec<&str> = Vec::new();
    let mut skips: Vec<&str> = Vec::new();
    let mut words = args.iter().map(String::as_str).peekable();
    while let Some(word) = words.next() {
        if word == "--skip" {
            skips.extend(words.next());
        } else if WITH_VALUE.contains(&word) {
            words.next();
        } else if !word.starts_with('-') {
            filters.push(word);
        }
    }
    let exact = args.iter().any(|a| a == "--exact");
    let matches = |name: &str, f: &str| if exact { name == f } else { name.contains(f) };
    let selected: Vec<&Test> = tests
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| matches(name, f)))
        .filter(|(name, _)| !skips.iter().any(|f| matches(name, f)))
        .collect();
    if selected.is_empty() {
        // Nothing to run: no need to boot.
        println!(
            "\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; {skipped} ignored; 0 measured; {} filtered out; finished in 0.00s\n",
            tests.len()
        );
        std::process::exit(0);
    }
    if std::env::var_os("HACTL_IN_VM").is_none() {
        std::process::exit(boot(&args, selected.len()));
    }
    let started = Instant::now();
    println!("\nrunning {} tests (inside the IPVS VM)", selected.len());
    let mut failed = Vec::new();
    for (name, body) in &selected {
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(body));
        let took = t.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => println!("test {name} ... ok ({took:.1}s)"),
            Err(_) => {
                println!("test {name} ... FAILED ({took:.1}s)");
                failed.push(*name);
            }
        }
    }
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    let passed = selected.len() - failed.len();
    println!(
        "\ntest result: {}. {passed} passed; {} failed; {skipped} ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        tests.len() - selected.len(),
        started.elapsed().as_secs_f64()
    );
    std::process::exit(if failed.is_empty() { 0 } else { 101 });
}

/// On the host: this binary again, inside the VM. Returns the exit code.
fn boot(args: &[String], count: usize) -> i32 {
    let runner = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vm/run.sh");
    let Ok(me) = std::env::current_exe() else {
        eprintln!("ipvs tests: cannot find this test binary");
        return 1;
    };
    println!("ipvs tests: booting the IPVS VM (qemu TCG) to run {count} tests inside it");
    let status = Command::new(runner).arg(&me).args(args).status();
    match status {
        Ok(s) if s.code() == Some(125) => {
            println!(
                "\nipvs tests: SKIPPED all {count} tests: qemu cannot run on this machine (see the message above)"
            );
            println!(
                "\ntest result: ok. 0 passed; 0 failed; {count} ignored; 0 measured; 0 filtered out; finished in 0.00s\n"
            );
            0
        }
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!("ipvs tests: cannot run {runner}: {e}");
            1
        }
    }
}
