//! How to read stock keepalived's own config test (`keepalived -t -f FILE`,
//! alias `--config-test`), measured on keepalived 2.2.7: it exits 5 on
//! warnings as well as on errors, 6 when only script security complained,
//! and ends by SIGTERM to itself (exit 143 through a shell) whenever a
//! `script_user` other than root is configured, whatever the file holds. So
//! the exit code alone says little: the verdict comes from its messages,
//! where every line that is not a known warning rejects the file. hactl's
//! deploy (backend keepalived) and the agent's differential test against
//! keepalived read it the same way.

/// keepalived messages that do not reject a file: it keeps going, and the
/// agent accepts the same file (with its own warning where it changes a
/// value).
pub const BENIGN_WARNINGS: &[&str] = &[
    // auth_pass longer than 8 bytes: both truncate and warn.
    "Truncating auth_pass to 8 characters",
    // A plain `include` whose pattern matches nothing: both only warn.
    "Config files missing",
    // Tracking weights that keepalived ignores (sync group members, the
    // address owner): both warn.
    "with weights due to SYNC group",
    "with weights due to address_owner",
    "tracked interface weight due to SYNC group",
    // nopreempt for the address owner: both clear it and warn.
    "nopreempt is incompatible with priority 255",
    // Scripts without enable_script_security: both warn.
    "SECURITY VIOLATION - scripts are being executed but script_security not enabled",
    // A shell's note that the process ended by SIGTERM (the non-root
    // script_user case above), not a message of keepalived's.
    "Terminated",
];

/// The exit codes after which only the messages decide: clean, messages,
/// script security only, and the self-inflicted SIGTERM (128 + 15).
const MESSAGE_CODES: [i32; 4] = [0, 5, 6, 143];

/// What keepalived's config test said of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigTestVerdict {
    pub accepted: bool,
    /// Its output lines that reject the file (all of them when it crashed).
    pub complaints: Vec<String>,
}

/// Judge one run of `keepalived -t`: its exit code (`None` when a signal
/// ended it) and its output (stdout and stderr together).
pub fn judge_config_test(code: Option<i32>, output: &str) -> ConfigTestVerdict {
    let lines = output.lines().map(str::trim).filter(|l| !l.is_empty());
    let ended_normally = match code {
        Some(c) => MESSAGE_CODES.contains(&c),
        // Killed by a signal without a shell in between: the SIGTERM case.
        None => true,
    };
    if !ended_normally {
        let mut complaints: Vec<String> = lines.map(str::to_string).collect();
        if complaints.is_empty() {
            complaints.push(format!("keepalived exited with {code:?} and said nothing"));
        }
        return ConfigTestVerdict {
            accepted: false,
            complaints,
        };
    }
    let complaints: Vec<String> = lines
        .filter(|l| !BENIGN_WARNINGS.iter().any(|b| l.contains(b)))
        .map(str::to_string)
        .collect();
    ConfigTestVerdict {
        accepted: complaints.is_empty(),
        complaints,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_messages_not_the_exit_code() {
        let cases: &[(Option<i32>, &str, bool)] = &[
            (Some(0), "", true),
            // Non-root script_user: SIGTERM to itself, nothing said.
            (Some(143), "", true),
            (None, "", true),
            (Some(143), "Terminated\n", true),
            (
                Some(5),
                "(/etc/k.conf: Line 12) Truncating auth_pass to 8 characters\n",
                true,
            ),
            (
                Some(5),
                "(/etc/k.conf: Line 8) Unknown keyword 'prioritty'\n",
                false,
            ),
            (
                Some(143),
                "(/etc/k.conf: Line 14) Unknown keyword 'prioritty'\nTerminated\n",
                false,
            ),
            (Some(1), "", false),
            (Some(139), "", false),
        ];
        for (code, output, accepted) in cases {
            let verdict = judge_config_test(*code, output);
            assert_eq!(
                verdict.accepted, *accepted,
                "{code:?} {output:?}: {verdict:?}"
            );
            assert_eq!(verdict.complaints.is_empty(), *accepted, "{verdict:?}");
        }
    }
}
