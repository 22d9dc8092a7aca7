//! Strict rules for every name and value the plan hands to the rendered
//! keepalived.conf or to a remote command (issue 14, "config injection
//! through names"). keepalived.conf is line based: a newline, a brace, a
//! quote or a `#`/`!` (a comment, even inside a word) in a value changes the
//! file's structure, so a value that could do that is refused at plan time
//! with the file and line it was written at, never rendered. Each rule
//! returns the sentence that says what is allowed; none of them quotes the
//! value back (a password must not show in an error).
//!
//! The lab's topology keeps its own, stricter, rules for the names it
//! creates (`crate::lab::topology`).

use crate::remote_layout::CHECKS_DIR;

/// A line whose first word is `include` splices files into keepalived.conf
/// (a check name is alone on its line in `track_script`).
const INCLUDE: &str = "include";

/// Letters, digits and `_`, `-`, `.` (no `.` or `-` first): names of
/// pairs, instances and checks, which keepalived reads as one word and
/// status, drills and audits carry into remote commands and file names.
pub(super) fn word(s: &str, max: usize) -> Result<(), String> {
    let ok = s != INCLUDE
        && !s.is_empty()
        && s.len() <= max
        && !s.starts_with(['-', '.'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    ok.then_some(()).ok_or_else(|| {
        format!("must be 1 to {max} of A-Z a-z 0-9 _ - ., must not start with - or . and must not be `include`")
    })
}

/// An inventory host name: it is the VRRP `router_id`, an SSH destination
/// when `ansible_host` is not set, and a word of remote commands. Host
/// names, FQDNs and IP addresses pass.
pub(super) fn host_name(s: &str) -> Result<(), String> {
    let ok = s != INCLUDE
        && !s.is_empty()
        && s.len() <= 253
        && s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    ok.then_some(()).ok_or_else(|| {
        "a host name must be 1 to 253 of A-Z a-z 0-9 _ - . : and start with a letter, digit or _"
            .to_string()
    })
}

/// A Linux interface name (dev_valid_name: at most 15 bytes, no `/`, `:` or
/// blank, not `.` or `..`), further kept to the characters interfaces are
/// named with.
pub(super) fn interface(s: &str) -> Result<(), String> {
    let ok = s != INCLUDE
        && !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    ok.then_some(())
        .ok_or_else(|| "must be an interface name: 1 to 15 of A-Z a-z 0-9 _ - .".to_string())
}

/// A local user name (useradd's rules, a little wider): what
/// `script_user` and a check's `user` run scripts as.
pub(super) fn user(s: &str) -> Result<(), String> {
    let ok = s != INCLUDE
        && !s.is_empty()
        && s.len() <= 32
        && s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    ok.then_some(()).ok_or_else(|| {
        "must be a user name: 1 to 32 of A-Z a-z 0-9 _ - . starting with a letter, digit or _"
            .to_string()
    })
}

/// A check's command line, rendered inside double quotes: no quote,
/// backslash or control character (a newline would end the line).
pub(super) fn command_line(s: &str) -> Result<(), String> {
    let ok = !s.trim().is_empty()
        && s.len() <= 1024
        && !s.contains(['"', '\\'])
        && !s.chars().any(char::is_control);
    ok.then_some(()).ok_or_else(|| {
        "must be a command line of at most 1024 bytes without quotes, backslashes, newlines or other control characters".to_string()
    })
}

/// Where a `content:` check script is written (as root): a file directly
/// in the checks directory, so an inventory cannot overwrite
/// `/usr/bin/sudo` or anything else outside it.
pub(super) fn content_path(s: &str) -> Result<(), String> {
    let file = s
        .strip_prefix(CHECKS_DIR)
        .and_then(|rest| rest.strip_prefix('/'));
    match file {
        Some(f) if word(f, 64).is_ok() => Ok(()),
        _ => Err(format!(
            "content needs an absolute script path directly in {CHECKS_DIR}/, with no arguments (like {CHECKS_DIR}/check_web.sh; the file name 1 to 64 of A-Z a-z 0-9 _ - .)"
        )),
    }
}

/// The VRRPv2 password, rendered as one bare word: printable ASCII without
/// blanks, quotes, braces, backslashes, or `#`/`!` (keepalived starts a
/// comment there, even inside a word, and would cut the password short).
pub(super) fn auth_pass(s: &str) -> Result<(), String> {
    let ok = s
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'{' | b'}' | b'#' | b'!' | b'\\'));
    ok.then_some(()).ok_or_else(|| {
        "the password may only hold printable ASCII without blanks, quotes, braces, backslashes, `#` or `!` (keepalived would read those as syntax)".to_string()
    })
}

/// A value handed to ssh as one argument (`ansible_host`, `ansible_user`):
/// a leading `-` would make it an option, a blank or control character is
/// never part of an address or a login name.
pub(super) fn ssh_word(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && !s.starts_with('-')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(()).ok_or_else(|| {
        "must not be empty, start with -, or hold blanks or control characters".to_string()
    })
}

/// Free text that only hactl itself reads (`hactl_segment`, paths on the
/// controller, `ansible_ssh_common_args`): no control characters.
pub(super) fn no_control(s: &str) -> Result<(), String> {
    (!s.chars().any(char::is_control))
        .then_some(())
        .ok_or_else(|| "must not hold newlines or other control characters".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Rule = fn(&str) -> Result<(), String>;

    #[test]
    fn rules_accept_ordinary_names_and_refuse_syntax() {
        let good: &[(Rule, &str)] = &[
            (host_name, "lb01"),
            (host_name, "lb01.example.com"),
            (host_name, "10.0.0.51"),
            (host_name, "fe80::1"),
            (interface, "eth0"),
            (interface, "eth0.100"),
            (interface, "br-lan"),
            (user, "nobody"),
            (user, "_hactl"),
            (command_line, "pidof haproxy"),
            (command_line, "/bin/sh -c 'test -e /run/x # y'"),
            (content_path, "/etc/hactl/checks/check_web.sh"),
            (auth_pass, "s3cr3t-x"),
            (ssh_word, "10.0.0.51"),
        ];
        for (rule, value) in good {
            assert_eq!(rule(value), Ok(()), "{value}");
        }
        let bad: &[(Rule, &str)] = &[
            (host_name, ""),
            (host_name, "lb01\nvrrp_script evil {"),
            (host_name, "-oProxyCommand=x"),
            (host_name, "lb01;reboot"),
            (host_name, "lb 01"),
            (interface, "eth0 }"),
            (interface, "a-very-long-ifname"),
            (interface, ".."),
            (interface, "eth0:1"),
            (user, "root\n"),
            (user, "-u"),
            (command_line, "/bin/true\"\n}"),
            (command_line, "/bin/true\r"),
            (command_line, "   "),
            (content_path, "/usr/bin/sudo"),
            (content_path, "/etc/hactl/checks/../../usr/bin/sudo"),
            (content_path, "/etc/hactl/checks/sub/x.sh"),
            (content_path, "/etc/hactl/checks/x.sh --flag"),
            (content_path, "/etc/hactl/checks/.hidden"),
            (auth_pass, "ab#cdefg"),
            (auth_pass, "s3cr3t-!"),
            (auth_pass, "a b"),
            (auth_pass, "a}"),
            (auth_pass, "pa\"ss"),
            (auth_pass, "pässwd"),
            (ssh_word, "-oProxyCommand=touch /tmp/x"),
            (ssh_word, "host\n"),
            (no_control, "a\nb"),
        ];
        for (rule, value) in bad {
            assert!(rule(value).is_err(), "{value:?} passed");
        }
        assert_eq!(word("www", 64), Ok(()));
        for w in ["", "a b", "x}", "-x", ".x", "a\"b", "a#b", "a\nb"] {
            assert!(word(w, 64).is_err(), "{w:?}");
        }
    }

    #[test]
    fn refusals_never_quote_the_value() {
        let err = auth_pass("ab#cdefg").unwrap_err();
        assert!(!err.contains("ab#cdefg") && !err.contains("cdefg"), "{err}");
    }
}
