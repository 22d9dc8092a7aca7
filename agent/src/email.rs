//! Notification email (`smtp_alert`): one message per state transition of
//! an instance that asks for it, to the `notification_email` recipients
//! through `smtp_server`, as keepalived sends it.
//!
//! The subject has keepalived's shape, `[ROUTER_ID] VRRP Instance NAME -
//! Entering STATE state`, and so has the body line (`=> VRRP Instance is
//! now owning VRRP VIPs <=` on MASTER, `... is nolonger owning ...`
//! otherwise). The protocol loop only queues a message; a task on the I/O
//! thread speaks plain SMTP (HELO, MAIL, RCPT, DATA, QUIT), one message
//! at a time in order, each step bounded by `smtp_connect_timeout`
//! (keepalived's default 30 s). A failure is logged and the next message
//! goes on.

use std::time::{Duration, SystemTime};

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::config::GlobalDefs;

/// keepalived's `smtp_connect_timeout` default.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The SMTP port when `smtp_server` names none.
pub const SMTP_PORT: u16 = 25;

#[derive(Debug, Error)]
pub enum MailError {
    #[error("cannot reach smtp_server {server}")]
    Connect {
        server: String,
        #[source]
        source: std::io::Error,
    },
    #[error("smtp_server {server} did not answer within {}s", timeout.as_secs())]
    Timeout { server: String, timeout: Duration },
    #[error("smtp_server {server} refused {step}: {reply}")]
    Refused {
        server: String,
        step: &'static str,
        reply: String,
    },
    #[error("smtp_server {server} closed the connection")]
    Io {
        server: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where and how messages go (from global_defs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    pub host: String,
    pub port: u16,
    pub from: String,
    pub to: Vec<String>,
    pub router_id: String,
    pub helo: String,
    pub timeout: Duration,
}

impl MailSettings {
    /// `None` when no message can go: no smtp_server or no recipient.
    pub fn of(global: &GlobalDefs) -> Option<MailSettings> {
        let server = global.smtp_server.as_ref()?;
        if global.notification_email.is_empty() {
            return None;
        }
        // The UTS namespace's name, as gethostname(2) returns it.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        Some(MailSettings {
            host: server.host.clone(),
            port: server.port.unwrap_or(SMTP_PORT),
            from: global
                .notification_email_from
                .clone()
                .unwrap_or_else(|| format!("keepalived@{host}")),
            to: global.notification_email.clone(),
            router_id: global.router_id.clone().unwrap_or_else(|| host.clone()),
            helo: host,
            timeout: global.smtp_connect_timeout.unwrap_or(CONNECT_TIMEOUT),
        })
    }
}

/// One message: headers and body, CRLF lines, not yet dot-stuffed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub body: String,
}

/// The message keepalived sends when instance `name` enters `state`.
pub fn transition_message(router_id: &str, name: &str, state: &str) -> Message {
    let owning = if state == "MASTER" {
        "=> VRRP Instance is now owning VRRP VIPs <="
    } else {
        "=> VRRP Instance is nolonger owning VRRP VIPs <="
    };
    Message {
        subject: format!("[{router_id}] VRRP Instance {name} - Entering {state} state"),
        body: owning.to_owned(),
    }
}

/// The queue the protocol loop writes to.
#[derive(Debug, Clone)]
pub struct MailSender {
    tx: mpsc::UnboundedSender<Message>,
    router_id: String,
}

impl MailSender {
    /// Queues the message for `name` entering `state`.
    pub fn transition(&self, name: &str, state: &str) {
        let _ = self
            .tx
            .send(transition_message(&self.router_id, name, state));
    }
}

/// Starts the sending task (on the current runtime: the I/O thread's).
pub fn spawn(settings: MailSettings, log: fn(&str)) -> MailSender {
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let router_id = settings.router_id.clone();
    tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            if let Err(e) = send(&settings, &message).await {
                let mut text = e.to_string();
                if let Some(s) = std::error::Error::source(&e) {
                    text.push_str(&format!(": {s}"));
                }
                log(&format!("email '{}' not sent: {text}", message.subject));
            }
        }
    });
    MailSender { tx, router_id }
}

/// RFC 5322 date of now (UTC).
fn rfc5322_now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[usize::try_from(days % 7).unwrap_or(0)],
        MONTHS[usize::try_from(m - 1).unwrap_or(0)],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic
/// Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The DATA payload: headers, blank line, body, dot-stuffed, ending in
/// `CRLF.CRLF`.
pub fn data(settings: &MailSettings, message: &Message) -> String {
    let mut text = format!(
        "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nX-Mailer: hactl-agent\r\n\r\n",
        settings.from,
        settings.to.join(", "),
        message.subject,
        rfc5322_now()
    );
    for line in message.body.lines() {
        if line.starts_with('.') {
            text.push('.');
        }
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str(".\r\n");
    text
}

async fn send(settings: &MailSettings, message: &Message) -> Result<(), MailError> {
    let server = format!("{}:{}", settings.host, settings.port);
    let timeout = settings.timeout;
    let bounded = |server: &str| MailError::Timeout {
        server: server.to_owned(),
        timeout,
    };
    let stream = tokio::time::timeout(
        timeout,
        TcpStream::connect((settings.host.as_str(), settings.port)),
    )
    .await
    .map_err(|_| bounded(&server))?
    .map_err(|source| MailError::Connect {
        server: server.clone(),
        source,
    })?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut session = Session {
        server: &server,
        timeout,
        read: &mut read,
    };
    session.expect("the greeting", 220).await?;
    let steps: Vec<(String, &'static str, u16)> =
        std::iter::once((format!("HELO {}\r\n", settings.helo), "HELO", 250))
            .chain(std::iter::once((
                format!("MAIL FROM:<{}>\r\n", settings.from),
                "MAIL FROM",
                250,
            )))
            .chain(
                settings
                    .to
                    .iter()
                    .map(|to| (format!("RCPT TO:<{to}>\r\n"), "RCPT TO", 250)),
            )
            .chain(std::iter::once(("DATA\r\n".to_owned(), "DATA", 354)))
            .chain(std::iter::once((
                data(settings, message),
                "the message",
                250,
            )))
            .collect();
    for (line, step, code) in steps {
        let io = |source| MailError::Io {
            server: server.clone(),
            source,
        };
        tokio::time::timeout(timeout, write.write_all(line.as_bytes()))
            .await
            .map_err(|_| bounded(&server))?
            .map_err(io)?;
        session.expect(step, code).await?;
    }
    let _ = write.write_all(b"QUIT\r\n").await;
    let _ = session.expect("QUIT", 221).await;
    Ok(())
}

struct Session<'a> {
    server: &'a str,
    timeout: Duration,
    read: &'a mut BufReader<tokio::net::tcp::OwnedReadHalf>,
}

impl Session<'_> {
    /// Reads one (possibly multi-line) reply and checks its code.
    async fn expect(&mut self, step: &'static str, code: u16) -> Result<(), MailError> {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(self.timeout, self.read.read_line(&mut line))
                .await
                .map_err(|_| MailError::Timeout {
                    server: self.server.to_owned(),
                    timeout: self.timeout,
                })?
                .map_err(|source| MailError::Io {
                    server: self.server.to_owned(),
                    source,
                })?;
            if n == 0 {
                return Err(MailError::Io {
                    server: self.server.to_owned(),
                    source: std::io::ErrorKind::UnexpectedEof.into(),
                });
            }
            reply.push_str(line.trim_end());
            // `250-...` continues, `250 ...` ends.
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
            reply.push(' ');
        }
        if reply.get(..3).and_then(|c| c.parse::<u16>().ok()) == Some(code) {
            Ok(())
        } else {
            Err(MailError::Refused {
                server: self.server.to_owned(),
                step,
                reply,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_and_body_have_keepalived_shape() {
        let m = transition_message("lb01", "VI_1", "MASTER");
        assert_eq!(
            m.subject,
            "[lb01] VRRP Instance VI_1 - Entering MASTER state"
        );
        assert_eq!(m.body, "=> VRRP Instance is now owning VRRP VIPs <=");
        let b = transition_message("lb01", "VI_1", "BACKUP");
        assert_eq!(b.body, "=> VRRP Instance is nolonger owning VRRP VIPs <=");
    }

    #[test]
    fn data_is_dot_stuffed_and_terminated() {
        let settings = MailSettings {
            host: "127.0.0.1".to_owned(),
            port: 25,
            from: "a@b".to_owned(),
            to: vec!["c@d".to_owned(), "e@f".to_owned()],
            router_id: "r".to_owned(),
            helo: "h".to_owned(),
            timeout: CONNECT_TIMEOUT,
        };
        let text = data(
            &settings,
            &Message {
                subject: "s".to_owned(),
                body: ".x\ny".to_owned(),
            },
        );
        assert!(text.starts_with("From: a@b\r\nTo: c@d, e@f\r\nSubject: s\r\n"));
        assert!(text.ends_with("\r\n\r\n..x\r\ny\r\n.\r\n"));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_790), (2026, 12, 3));
    }
}
