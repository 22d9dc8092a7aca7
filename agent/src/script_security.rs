//! keepalived's `enable_script_security`, decided in one place for the
//! config check (`hactl-agent check`) and for run time (track scripts and
//! notify scripts), so that the two can never disagree (issue 14: a script
//! given as `pidof haproxy` passed the check, which searched PATH, and was
//! always refused at run time, which did not; a symlink into a
//! user-writable directory passed both).
//!
//! - [`resolve_program`] finds the file a command's first word names the
//!   way execvp(3) does: a word with a `/` as it is, else the first
//!   executable file of that name in `PATH`. Run time then executes that
//!   very file.
//! - [`insecure_reason`] refuses a script that a non-root user could change:
//!   the file, any directory above it, on the path as written (a symlink
//!   or the directory holding it could be replaced) and on the path with
//!   every symlink resolved (the file that really runs, and where it lives).
//!   A sticky directory (/tmp) lets others create files but not replace
//!   ours; keepalived accepts it too.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What `enable_script_security` will refuse at run time in `config`, as
/// errors at the line of each script (empty without the option): what
/// `hactl-agent check` reports, so a file that would run a script counted
/// as down (a weight-0 track then means FAULT) never passes the check.
/// The daemon itself keeps running such a file, as keepalived does, with
/// the script refused and logged.
pub fn refusals(config: &crate::config::Config) -> Vec<crate::config::Diagnostic> {
    use crate::config::Diagnostic;
    use crate::notify::split_command;
    if !config.global_defs.enable_script_security {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut judge = |origin: &crate::config::Origin, what: String, line: &str| {
        let program = split_command(line).into_iter().next().unwrap_or_default();
        if let Some(why) = insecure_reason(&program) {
            out.push(Diagnostic::error(
                origin,
                format!("{what} would be refused by enable_script_security on this host: {why}"),
            ));
        }
    };
    for s in &config.vrrp_scripts {
        judge(&s.origin, format!("vrrp_script '{}'", s.name), &s.script);
    }
    for i in &config.vrrp_instances {
        let scripts = [
            &i.notify_master,
            &i.notify_backup,
            &i.notify_fault,
            &i.notify_stop,
            &i.notify,
        ];
        for line in scripts.into_iter().flatten() {
            judge(
                &i.origin,
                format!("vrrp_instance '{}': notify script", i.name),
                line,
            );
        }
    }
    for g in &config.vrrp_sync_groups {
        let scripts = [
            &g.notify_master,
            &g.notify_backup,
            &g.notify_fault,
            &g.notify,
        ];
        for line in scripts.into_iter().flatten() {
            judge(
                &g.origin,
                format!("vrrp_sync_group '{}': notify script", g.name),
                line,
            );
        }
    }
    out
}

/// The file that `program` (a command's first word) runs, or `None` when
/// there is none: execvp(3)'s search.
pub fn resolve_program(program: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// Why the script `program` (a command's first word) may not run under
/// `enable_script_security`, or `None` when it may.
pub fn insecure_reason(program: &str) -> Option<String> {
    let Some(path) = resolve_program(program) else {
        return Some(format!(
            "{program} is not an executable file (searched as execvp does)"
        ));
    };
    if let Some(why) = chain(&path, false) {
        return Some(why);
    }
    match std::fs::canonicalize(&path) {
        Ok(real) if real != path => chain(&real, true)
            .map(|why| format!("{} resolves to {}: {why}", path.display(), real.display())),
        Ok(_) => None,
        Err(e) => Some(format!("{}: {e}", path.display())),
    }
}

/// The first component of `path` (itself, then each directory above it)
/// that a non-root user could change. `follow`: read through symlinks
/// (the path is already resolved); else look at each link itself.
fn chain(path: &Path, follow: bool) -> Option<String> {
    let mut at = Some(path);
    while let Some(p) = at {
        if p.as_os_str().is_empty() {
            break;
        }
        let meta = if follow {
            std::fs::metadata(p)
        } else {
            std::fs::symlink_metadata(p)
        };
        let meta = match meta {
            Ok(m) => m,
            Err(e) => return Some(format!("{}: {e}", p.display())),
        };
        if meta.uid() != 0 {
            return Some(format!("{} is owned by uid {}", p.display(), meta.uid()));
        }
        let mode = meta.mode();
        // A symlink's own mode bits mean nothing (always 0777).
        let link = meta.file_type().is_symlink();
        let sticky = meta.is_dir() && mode & 0o1000 != 0;
        if !link && !sticky && (mode & 0o002 != 0 || (mode & 0o020 != 0 && meta.gid() != 0)) {
            return Some(format!("{} is writable by non-root users", p.display()));
        }
        at = p.parent();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_root() -> bool {
        nix::unistd::Uid::effective().is_root()
    }

    #[test]
    fn world_writable_script_is_insecure() {
        let dir = std::env::temp_dir().join(format!("hactl-track-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("check.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o757)).unwrap();
        let why = insecure_reason(script.to_str().unwrap());
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let ok = insecure_reason(script.to_str().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(why.is_some_and(|w| w.contains("writable")));
        // Running as root in CI, the temp dir is root-owned and sticky.
        if is_root() {
            assert_eq!(ok, None);
        }
    }

    /// Issue 14: a root-owned symlink in a root-only directory that points
    /// into a directory anyone may write is refused; the same script
    /// reached without the link, or in a safe place, passes.
    #[test]
    fn a_symlink_into_a_writable_directory_is_refused() {
        if !is_root() {
            return;
        }
        let base = std::env::temp_dir().join(format!("hactl-symlink-{}", std::process::id()));
        let safe = base.join("safe");
        let open = base.join("open");
        std::fs::create_dir_all(&safe).unwrap();
        std::fs::create_dir_all(&open).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&safe, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let target = open.join("check.sh");
        std::fs::write(&target, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        let link = safe.join("check.sh");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let good = safe.join("real.sh");
        std::fs::write(&good, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o755)).unwrap();
        let good_link = safe.join("good-link.sh");
        std::os::unix::fs::symlink(&good, &good_link).unwrap();

        let why = insecure_reason(link.to_str().unwrap());
        let good_why = insecure_reason(good.to_str().unwrap());
        let good_link_why = insecure_reason(good_link.to_str().unwrap());
        std::fs::remove_dir_all(&base).unwrap();
        let why = why.expect("the link into a writable directory is refused");
        assert!(
            why.contains("resolves to") && why.contains("writable"),
            "{why}"
        );
        assert_eq!(good_why, None);
        assert_eq!(good_link_why, None);
    }

    /// Issue 14: a command without a path is found in PATH, as execvp finds
    /// it, by the check and the run time alike.
    #[test]
    fn a_bare_program_name_is_resolved_through_path() {
        let sh = resolve_program("sh").expect("sh is in PATH");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(resolve_program("no-such-program-hactl"), None);
        assert_eq!(resolve_program(""), None);
        assert!(insecure_reason("no-such-program-hactl").is_some());
        if is_root() {
            assert_eq!(insecure_reason("sh"), None);
        }
    }
}
