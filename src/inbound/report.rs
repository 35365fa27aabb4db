//! Delivery reports (RFC 3464, `multipart/report; report-type=delivery-status`) and read
//! notifications (RFC 8098, `report-type=disposition-notification`), read from hostile input.
//!
//! mail-parser splits the MIME; the report's own fields — blocks of header-syntax lines, one
//! block per message and one per recipient, separated by blank lines — are read here, since no
//! maintained crate parses them. Everything is bounded: the message's size (by the caller),
//! the number of MIME parts and headers (which bounds nesting), the number of blocks and
//! fields, and the length of every value kept. Values are protocol fields only; the quoted
//! original (which may carry a subject) is never read.

use mail_parser::{MessageParser, MimeHeaders};

/// Most MIME parts in a report; a deeper or wider message is refused.
const MAX_PARTS: usize = 64;
/// Most `Content-Type` headers in the raw message: bounds nesting before parsing.
const MAX_CONTENT_TYPES: usize = 64;
/// Most field blocks (one per message, one per recipient).
const MAX_BLOCKS: usize = 100;
/// Most fields in one block.
const MAX_FIELDS: usize = 64;
/// Longest value kept.
const MAX_VALUE: usize = 500;

/// What a report says, in the fields kurir acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A delivery status notification.
    Delivery(DeliveryReport),
    /// A message disposition notification.
    Read(ReadReport),
}

/// A delivery status notification: the per-message fields and one entry per recipient.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryReport {
    /// `Original-Envelope-Id` (kurir sends `<job-id>.<kommunkod>` as ENVID).
    pub envelope_id: Option<String>,
    /// `Reporting-MTA`, without its type.
    pub reporting_mta: Option<String>,
    /// `Arrival-Date`.
    pub arrival_date: Option<String>,
    /// One entry per recipient block.
    pub recipients: Vec<RecipientStatus>,
}

/// One recipient's fields in a delivery status notification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecipientStatus {
    /// `Final-Recipient`, without its type.
    pub final_recipient: Option<String>,
    /// `Original-Recipient` (from ORCPT), without its type.
    pub original_recipient: Option<String>,
    /// `Action`, lower case: `delivered`, `relayed`, `failed`, `delayed`, `expanded`.
    pub action: String,
    /// `Status`, e.g. `2.0.0`.
    pub status: String,
    /// `Diagnostic-Code`, without its type.
    pub diagnostic: Option<String>,
    /// `Remote-MTA`, without its type.
    pub remote_mta: Option<String>,
}

/// A message disposition notification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadReport {
    /// `Original-Message-ID`, without angle brackets.
    pub original_message_id: Option<String>,
    /// `Final-Recipient`, without its type.
    pub final_recipient: Option<String>,
    /// `Original-Recipient`, without its type.
    pub original_recipient: Option<String>,
    /// `Reporting-UA`.
    pub reporting_ua: Option<String>,
    /// The whole `Disposition` field, e.g. `manual-action/MDN-sent-manually; displayed`.
    pub disposition: String,
    /// The disposition type, lower case: `displayed`, `deleted`, `dispatched`, `processed`.
    pub disposition_type: String,
}

/// Why an inbound message is not a report kurir can use. The text names what is wrong and
/// never quotes the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Not MIME that mail-parser can read.
    #[error("not a readable e-mail message")]
    Unreadable,
    /// Too many parts or headers: nested too deeply or too wide.
    #[error("too many MIME parts (more than {MAX_PARTS}): nested too deeply or too wide")]
    TooComplex,
    /// A message that is not a delivery report or read notification (e.g. an auto-reply).
    #[error("not a delivery report or read notification (content type {0})")]
    NotAReport(String),
    /// A report whose fields cannot be read.
    #[error("malformed report: {0}")]
    Malformed(&'static str),
}

/// Reads a report from a whole message.
pub fn parse(raw: &[u8]) -> Result<Report, ReportError> {
    let content_types = raw
        .split(|b| *b == b'\n')
        .filter(|line| line.len() >= 13 && line[..13].eq_ignore_ascii_case(b"content-type:"))
        .count();
    if content_types > MAX_CONTENT_TYPES {
        return Err(ReportError::TooComplex);
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(ReportError::Unreadable)?;
    if message.parts.len() > MAX_PARTS {
        return Err(ReportError::TooComplex);
    }
    let top = message
        .content_type()
        .ok_or_else(|| ReportError::NotAReport("none".into()))?;
    let top_name = format!(
        "{}/{}",
        top.ctype().to_ascii_lowercase(),
        top.subtype().unwrap_or("").to_ascii_lowercase()
    );
    if top_name != "multipart/report" {
        return Err(ReportError::NotAReport(bounded(&top_name)));
    }
    let report_type = top
        .attribute("report-type")
        .unwrap_or("")
        .to_ascii_lowercase();
    let wanted = match report_type.as_str() {
        "delivery-status" => ["delivery-status", "global-delivery-status"],
        "disposition-notification" => [
            "disposition-notification",
            "global-disposition-notification",
        ],
        _ => {
            return Err(ReportError::NotAReport(format!(
                "multipart/report; report-type={}",
                bounded(&report_type)
            )))
        }
    };
    let part = message
        .parts
        .iter()
        .find(|part| {
            part.content_type().is_some_and(|ct| {
                ct.ctype().eq_ignore_ascii_case("message")
                    && ct
                        .subtype()
                        .is_some_and(|sub| wanted.iter().any(|w| sub.eq_ignore_ascii_case(w)))
            })
        })
        .ok_or(ReportError::Malformed("the report part is missing"))?;
    let blocks = field_blocks(part.contents())?;
    if report_type == "delivery-status" {
        delivery(&blocks).map(Report::Delivery)
    } else {
        read(&blocks).map(Report::Read)
    }
}

/// One block of fields: lower-case name and value, in order.
type Block = Vec<(String, String)>;

/// Splits a report body into blocks of fields (header syntax, folded lines joined).
pub fn field_blocks(body: &[u8]) -> Result<Vec<Block>, ReportError> {
    let text = String::from_utf8_lossy(body);
    let mut blocks: Vec<Block> = Vec::new();
    let mut current: Block = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
                if blocks.len() > MAX_BLOCKS {
                    return Err(ReportError::Malformed("too many field blocks"));
                }
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = current.last_mut() else {
                return Err(ReportError::Malformed(
                    "a continuation line before any field",
                ));
            };
            if value.len() < MAX_VALUE {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(ReportError::Malformed("a line that is not a field"))?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ReportError::Malformed("a field without a proper name"));
        }
        if current.len() >= MAX_FIELDS {
            return Err(ReportError::Malformed("too many fields in one block"));
        }
        current.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    if blocks.len() > MAX_BLOCKS {
        return Err(ReportError::Malformed("too many field blocks"));
    }
    Ok(blocks)
}

fn bounded(value: &str) -> String {
    let mut out: String = value
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_VALUE)
        .collect();
    out.truncate(out.trim_end().len());
    out
}

fn field<'a>(block: &'a Block, name: &str) -> Option<&'a str> {
    block
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A typed value (`rfc822; a@b`, `dns; mx.example`, `smtp; 550 …`) without its type.
fn untyped(value: &str) -> String {
    bounded(value.split_once(';').map_or(value, |(_, v)| v).trim())
}

fn delivery(blocks: &[Block]) -> Result<DeliveryReport, ReportError> {
    let (per_message, per_recipient) = blocks
        .split_first()
        .ok_or(ReportError::Malformed("no fields"))?;
    let mut report = DeliveryReport {
        envelope_id: field(per_message, "original-envelope-id").map(bounded),
        reporting_mta: field(per_message, "reporting-mta").map(untyped),
        arrival_date: field(per_message, "arrival-date").map(bounded),
        recipients: Vec::new(),
    };
    for block in per_recipient {
        let action =
            field(block, "action").ok_or(ReportError::Malformed("a recipient without Action"))?;
        let status =
            field(block, "status").ok_or(ReportError::Malformed("a recipient without Status"))?;
        report.recipients.push(RecipientStatus {
            final_recipient: field(block, "final-recipient").map(untyped),
            original_recipient: field(block, "original-recipient").map(untyped),
            action: bounded(action).to_ascii_lowercase(),
            status: bounded(status.split_whitespace().next().unwrap_or("")),
            diagnostic: field(block, "diagnostic-code").map(untyped),
            remote_mta: field(block, "remote-mta").map(untyped),
        });
    }
    if report.recipients.is_empty() {
        return Err(ReportError::Malformed("no recipient block"));
    }
    Ok(report)
}

fn read(blocks: &[Block]) -> Result<ReadReport, ReportError> {
    let block = blocks.first().ok_or(ReportError::Malformed("no fields"))?;
    let disposition =
        field(block, "disposition").ok_or(ReportError::Malformed("no Disposition field"))?;
    let disposition_type = disposition
        .split_once(';')
        .map(|(_, kind)| kind)
        .unwrap_or(disposition)
        .split('/')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Ok(ReadReport {
        original_message_id: field(block, "original-message-id")
            .map(|id| bounded(id.trim().trim_start_matches('<').trim_end_matches('>'))),
        final_recipient: field(block, "final-recipient").map(untyped),
        original_recipient: field(block, "original-recipient").map(untyped),
        reporting_ua: field(block, "reporting-ua").map(untyped),
        disposition: bounded(disposition),
        disposition_type: bounded(&disposition_type),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A delivery report as Postfix 3.7 writes one for a message sent with ENVID and NOTIFY.
    pub(crate) fn postfix_dsn(action: &str, status: &str) -> String {
        format!(
            "Return-Path: <>\r\nFrom: MAILER-DAEMON@relay.agency.test (Mail Delivery System)\r\n\
             To: kurir-reports+abc@agency.test\r\nSubject: Successful Mail Delivery Report\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"B1\"\r\n\r\n\
             --B1\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
             This is the mail system at host relay.agency.test.\r\n\r\n\
             --B1\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n\
             Reporting-MTA: dns; relay.agency.test\r\nX-Postfix-Queue-ID: 4XyZ\r\n\
             Original-Envelope-Id: J1.2480\r\nArrival-Date: Sun, 29 Nov 2026 10:00:00 +0100 (CET)\r\n\r\n\
             Final-Recipient: rfc822; registrator@umea.test\r\n\
             Original-Recipient: rfc822;registrator@umea.test\r\nAction: {action}\r\nStatus: {status}\r\n\
             Remote-MTA: dns; mx.umea.test\r\nDiagnostic-Code: smtp; 250 2.0.0 Ok: queued\r\n  as 9AbC\r\n\r\n\
             --B1\r\nContent-Description: Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n\
             Subject: Beslut om anvisning - ref J1\r\n\r\n--B1--\r\n"
        )
    }

    #[test]
    fn a_postfix_delivery_report_is_read_field_by_field() {
        let Report::Delivery(report) =
            parse(postfix_dsn("delivered", "2.0.0").as_bytes()).expect("a report")
        else {
            panic!("not a delivery report");
        };
        assert_eq!(report.envelope_id.as_deref(), Some("J1.2480"));
        assert_eq!(report.reporting_mta.as_deref(), Some("relay.agency.test"));
        let r = &report.recipients[0];
        assert_eq!(r.action, "delivered");
        assert_eq!(r.status, "2.0.0");
        assert_eq!(r.final_recipient.as_deref(), Some("registrator@umea.test"));
        assert_eq!(r.remote_mta.as_deref(), Some("mx.umea.test"));
        assert_eq!(
            r.diagnostic.as_deref(),
            Some("250 2.0.0 Ok: queued as 9AbC"),
            "a folded field is joined"
        );
    }

    #[test]
    fn a_read_notification_gives_its_disposition() {
        let mdn = "From: registrator@umea.test\r\nTo: kurir-reports+abc@agency.test\r\n\
                   Subject: Read: Beslut\r\nMIME-Version: 1.0\r\n\
                   Content-Type: multipart/report; report-type=disposition-notification; boundary=\"M\"\r\n\r\n\
                   --M\r\nContent-Type: text/plain\r\n\r\nDisplayed.\r\n\
                   --M\r\nContent-Type: message/disposition-notification\r\n\r\n\
                   Reporting-UA: umea.test; Thunderbird 128.0\r\n\
                   Final-Recipient: rfc822;registrator@umea.test\r\n\
                   Original-Message-ID: <J1.2480@agency.test>\r\n\
                   Disposition: manual-action/MDN-sent-manually; displayed\r\n\r\n--M--\r\n";
        let Report::Read(read) = parse(mdn.as_bytes()).expect("a report") else {
            panic!("not a read notification");
        };
        assert_eq!(read.disposition_type, "displayed");
        assert_eq!(
            read.original_message_id.as_deref(),
            Some("J1.2480@agency.test")
        );
        assert_eq!(
            read.final_recipient.as_deref(),
            Some("registrator@umea.test")
        );
    }

    #[test]
    fn other_mail_and_broken_reports_are_refused_with_a_reason() {
        let plain = "From: a@b\r\nSubject: Out of office\r\n\r\nAway until Monday.\r\n";
        assert!(matches!(
            parse(plain.as_bytes()),
            Err(ReportError::NotAReport(_))
        ));
        let no_action = postfix_dsn("delivered", "2.0.0").replace("Action: delivered\r\n", "");
        assert_eq!(
            parse(no_action.as_bytes()),
            Err(ReportError::Malformed("a recipient without Action"))
        );
        let mut deep = String::new();
        for i in 0..100 {
            deep.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
            ));
        }
        assert_eq!(parse(deep.as_bytes()), Err(ReportError::TooComplex));
    }
}
