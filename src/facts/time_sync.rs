//! Whether the host's clock is synchronised, by whichever service runs:
//! systemd-timesyncd or any NTP client through `timedatectl show`, chrony
//! through `chronyc tracking`, ntpd through `ntpq -pn`. One fixed script
//! asks every tool that exists and prints each answer under a `#tool`
//! header; the parser reads them all. No tool answering is a result
//! ("no time sync"), not an error: preflight fails it with a fix.

use serde::Serialize;

use super::{Fact, ParseError};
use crate::ssh::{CommandOutput, RemoteCommand};

const SCRIPT: &str = r##"for tool in timedatectl chronyc ntpq; do
  command -v "$tool" >/dev/null 2>&1 || continue
  case $tool in
    timedatectl) out=$(timedatectl show 2>/dev/null) ;;
    chronyc) out=$(chronyc tracking 2>/dev/null) ;;
    ntpq) out=$(ntpq -pn 2>/dev/null) ;;
  esac || continue
  echo "#$tool"
  printf '%s\n' "$out"
done
exit 0"##;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeSource {
    /// systemd's view (`timedatectl`), whichever client sets the clock.
    Timedatectl,
    Chrony,
    Ntpd,
}

/// One tool's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeSyncState {
    pub source: TimeSource,
    pub synchronized: bool,
    /// What the tool said that decided it (a peer, a leap status).
    pub detail: String,
}

/// Every answer; synchronised when any says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeSync {
    pub answers: Vec<TimeSyncState>,
}

impl TimeSync {
    pub fn is_synchronized(&self) -> bool {
        self.answers.iter().any(|a| a.synchronized)
    }

    /// No time service answered at all.
    pub fn has_no_service(&self) -> bool {
        self.answers.is_empty()
    }
}

/// The time sync fact.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeSyncFact;

impl Fact for TimeSyncFact {
    type Output = TimeSync;

    fn name(&self) -> &'static str {
        "time sync"
    }

    fn command(&self) -> RemoteCommand {
        RemoteCommand::new(&["sh", "-c", SCRIPT]).become_(false)
    }

    fn parse(&self, output: &CommandOutput) -> Result<TimeSync, ParseError> {
        if !output.success() {
            return Err(ParseError::unexpected(output));
        }
        let text = output.stdout_text();
        let mut answers = Vec::new();
        let mut section: Option<(&str, Vec<&str>)> = None;
        for line in text.lines().chain(std::iter::once("#end")) {
            if let Some(tool) = line.strip_prefix('#') {
                if let Some((name, lines)) = section.take()
                    && let Some(answer) = read_section(name, &lines)?
                {
                    answers.push(answer);
                }
                section = Some((tool, Vec::new()));
            } else if let Some((_, lines)) = section.as_mut() {
                lines.push(line);
            }
        }
        Ok(TimeSync { answers })
    }
}

fn read_section(tool: &str, lines: &[&str]) -> Result<Option<TimeSyncState>, ParseError> {
    match tool {
        "timedatectl" => Ok(read_timedatectl(lines)),
        "chronyc" => Ok(read_chronyc(lines)),
        "ntpq" => Ok(Some(read_ntpq(lines))),
        "end" => Ok(None),
        other => Err(ParseError::new(format!("unknown section #{other}"))),
    }
}

/// `timedatectl show`: `NTPSynchronized=yes` is the kernel's "clock is
/// synchronised" flag; `NTP=` says whether a sync service is enabled.
fn read_timedatectl(lines: &[&str]) -> Option<TimeSyncState> {
    let value = |key: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    };
    let synchronized = value("NTPSynchronized")?;
    Some(TimeSyncState {
        source: TimeSource::Timedatectl,
        synchronized: synchronized == "yes",
        detail: format!(
            "NTP={} NTPSynchronized={synchronized}",
            value("NTP").unwrap_or("?")
        ),
    })
}

/// `chronyc tracking`: "Leap status : Normal" once chrony has a source;
/// "Not synchronised" otherwise.
fn read_chronyc(lines: &[&str]) -> Option<TimeSyncState> {
    let field = |name: &str| {
        lines.iter().find_map(|l| {
            let (key, value) = l.split_once(':')?;
            (key.trim() == name).then(|| value.trim())
        })
    };
    let leap = field("Leap status")?;
    let reference = field("Reference ID").unwrap_or("?");
    Some(TimeSyncState {
        source: TimeSource::Chrony,
        synchronized: leap != "Not synchronised",
        detail: format!("leap status {leap}, reference {reference}"),
    })
}

/// `ntpq -pn`: the peer ntpd synchronises to is marked `*` (`o` for PPS).
fn read_ntpq(lines: &[&str]) -> TimeSyncState {
    let peer = lines
        .iter()
        .find(|l| l.starts_with('*') || l.starts_with('o'))
        .and_then(|l| l[1..].split_whitespace().next());
    TimeSyncState {
        source: TimeSource::Ntpd,
        synchronized: peer.is_some(),
        detail: match peer {
            Some(peer) => format!("system peer {peer}"),
            None => "no system peer".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::output;
    use super::*;

    fn parse(text: &str) -> TimeSync {
        TimeSyncFact.parse(&output(0, text, "")).unwrap()
    }

    #[test]
    fn timesyncd_synchronised() {
        let sync = parse(&format!(
            "#timedatectl\n{}",
            include_str!("testdata/timedatectl_show.txt")
        ));
        assert!(sync.is_synchronized());
        assert_eq!(sync.answers[0].source, TimeSource::Timedatectl);
        assert_eq!(sync.answers[0].detail, "NTP=yes NTPSynchronized=yes");
    }

    #[test]
    fn chrony_without_a_source_is_not_synchronised() {
        let synced = parse(&format!(
            "#chronyc\n{}",
            include_str!("testdata/chronyc_tracking.txt")
        ));
        assert!(synced.is_synchronized(), "{synced:?}");
        assert!(
            synced.answers[0]
                .detail
                .contains("A9FEA97B (169.254.169.123)")
        );
        let unsynced = parse(&format!(
            "#chronyc\n{}",
            include_str!("testdata/chronyc_tracking_unsynced.txt")
        ));
        assert!(!unsynced.is_synchronized());
        assert!(!unsynced.has_no_service());
    }

    #[test]
    fn ntpd_needs_a_system_peer() {
        let text = include_str!("testdata/ntpq_pn.txt");
        let synced = parse(&format!("#ntpq\n{text}"));
        assert!(synced.is_synchronized());
        assert_eq!(synced.answers[0].detail, "system peer 192.0.2.10");
        let unsynced = parse(&format!("#ntpq\n{}", text.replace('*', " ")));
        assert!(!unsynced.is_synchronized());
    }

    #[test]
    fn any_synchronised_answer_wins_and_none_is_no_service() {
        let text = format!(
            "#timedatectl\nNTP=no\nNTPSynchronized=no\n#chronyc\n{}",
            include_str!("testdata/chronyc_tracking.txt")
        );
        let sync = parse(&text);
        assert_eq!(sync.answers.len(), 2);
        assert!(sync.is_synchronized());
        let none = parse("");
        assert!(none.has_no_service());
        assert!(!none.is_synchronized());
        assert!(TimeSyncFact.parse(&output(0, "#sundial\n", "")).is_err());
    }
}
