//! Turning an argv into the one command line an SSH server hands to the
//! remote user's shell. SSH carries a command as a single string, so every
//! word is quoted for a POSIX shell (`shlex::try_quote`): a value from the
//! inventory (`$(reboot)`, `;`, quotes, newlines) reaches the program as one
//! literal argument and never as shell syntax. The remote login shell must
//! be POSIX (sh, bash, dash, zsh), as Ansible also assumes.

/// `sudo -n --`: become root without prompting; a password prompt would hang
/// a non-interactive session, so sudo fails instead.
pub const BECOME_PREFIX: [&str; 3] = ["sudo", "-n", "--"];

/// The argv word that cannot be quoted (it holds a NUL byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unquotable(pub String);

/// The command line for `argv`, prefixed with sudo when `become_` is set.
pub fn command_line<S: AsRef<str>>(argv: &[S], become_: bool) -> Result<String, Unquotable> {
    let prefix: &[&str] = if become_ { &BECOME_PREFIX } else { &[] };
    let words: Vec<&str> = prefix
        .iter()
        .copied()
        .chain(argv.iter().map(AsRef::as_ref))
        .collect();
    shlex::try_join(words.iter().copied()).map_err(|_| {
        let bad = words.iter().find(|w| w.contains('\0')).unwrap_or(&"");
        Unquotable(bad.to_string())
    })
}

/// `sh -c SCRIPT sh ARGS...`: runs a fixed script with the values as its
/// positional parameters, so the values are never parsed as shell.
pub fn script_argv<S: AsRef<str>>(script: &str, args: &[S]) -> Vec<String> {
    ["sh", "-c", script, "sh"]
        .into_iter()
        .map(str::to_string)
        .chain(args.iter().map(|a| a.as_ref().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const HOSTILE: [&str; 12] = [
        "$(reboot)",
        "`reboot`",
        "; reboot",
        "a && reboot",
        "it's",
        "\"quoted\"",
        "line1\nline2",
        "back\\slash",
        "*",
        "~root",
        "-n",
        "",
    ];

    /// Runs a command line with the local /bin/sh, as sshd would with the
    /// user's shell, and returns the argv the program saw.
    fn argv_seen_by_shell(line: &str) -> Vec<String> {
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\0' {line}"))
            .output()
            .unwrap();
        assert!(output.status.success(), "{line}");
        let text = String::from_utf8(output.stdout).unwrap();
        let mut words: Vec<String> = text.split('\0').map(str::to_string).collect();
        words.pop();
        words
    }

    #[test]
    fn hostile_values_reach_the_program_literally() {
        let line = command_line(&HOSTILE, false).unwrap();
        assert_eq!(argv_seen_by_shell(&line), HOSTILE);
    }

    #[test]
    fn become_prefixes_sudo_without_prompting() {
        let line = command_line(&["id", "-u"], true).unwrap();
        assert_eq!(line, "sudo -n -- id -u");
        assert_eq!(command_line(&["id", "-u"], false).unwrap(), "id -u");
    }

    #[test]
    fn nul_bytes_are_refused() {
        assert_eq!(
            command_line(&["echo", "a\0b"], false),
            Err(Unquotable("a\0b".to_string()))
        );
    }

    #[test]
    fn scripts_take_values_as_positional_parameters() {
        let argv = script_argv("printf '%s|' \"$1\" \"$2\"", &["$(reboot)", "a b"]);
        let line = command_line(&argv, false).unwrap();
        let output = Command::new("sh").arg("-c").arg(&line).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout), "$(reboot)|a b|");
    }
}
