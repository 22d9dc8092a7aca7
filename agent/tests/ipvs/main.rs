//! IPVS on a real kernel: the agent's generic netlink messages, its table
//! against keepalived's, and traffic through it, inside the qemu VM that
//! [`harness`] boots (this machine's kernel has no IPVS).
//!
//! Every test builds its own network namespaces inside the VM (IPVS state
//! is per namespace), so tests never see each other's tables.

mod bench;
mod harness;
mod kernel;
mod lab;
mod oracle;
mod ownership;
#[path = "../support/mod.rs"]
mod support;
mod traffic;

fn main() {
    let tests: &[harness::Test] = &[
        ("kernel_info_and_family", kernel::info_and_family),
        (
            "kernel_accepts_services_and_destinations",
            kernel::services_and_destinations,
        ),
        (
            "kernel_fwmark_persistence_and_ipv6",
            kernel::fwmark_persistence_and_ipv6,
        ),
        (
            "oracle_same_table_as_keepalived",
            oracle::same_table_as_keepalived,
        ),
        (
            "ownership_agent_touches_only_its_own",
            ownership::agent_touches_only_its_own,
        ),
        (
            "ownership_cleanup_after_a_crash",
            ownership::cleanup_after_a_crash,
        ),
        (
            "ownership_misc_check_user_and_script_security",
            ownership::misc_check_user_and_script_security,
        ),
        (
            "traffic_checker_removes_and_restores",
            traffic::checker_removes_and_restores,
        ),
        (
            "traffic_sorry_server_answers_when_all_are_down",
            traffic::sorry_server_answers_when_all_are_down,
        ),
        (
            "traffic_wrong_digest_or_status_is_down",
            traffic::wrong_digest_or_status_is_down,
        ),
        (
            "traffic_misc_dynamic_sets_weights",
            traffic::misc_dynamic_sets_weights,
        ),
        (
            "traffic_failover_keeps_serving",
            traffic::failover_keeps_serving,
        ),
        (
            "traffic_ssl_get_checks_over_tls",
            traffic::ssl_get_checks_over_tls,
        ),
    ];
    let benches: &[harness::Test] = &[
        ("bench_checker_reaction", bench::checker_reaction),
        ("bench_cpu_100_real_servers", bench::cpu_100_real_servers),
    ];
    harness::main(tests, benches);
}
