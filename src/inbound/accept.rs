//! `kurir inbound`, the MTA's pipe: one message from standard input into
//! `spool/inbound/new/` by the tmp-then-rename rule, with its envelope recipient. It needs no
//! daemon and no store; the daemon's inbound stage reads what it wrote.

use std::io::Read;

use jiff::Timestamp;

use crate::fsutil;
use crate::job::JobId;
use crate::report_token::TokenKey;
use crate::spool::Spool;

/// The first line `kurir inbound` writes before the message: the envelope recipient.
pub const ENVELOPE_LINE: &str = "Kurir-Envelope-To: ";
/// sysexits' EX_TEMPFAIL: the MTA keeps the message and tries again.
pub const EX_TEMPFAIL: u8 = 75;
/// sysexits' EX_DATAERR: the message is refused for good (too large).
pub const EX_DATAERR: u8 = 65;
/// sysexits' EX_NOUSER: no such recipient (a return address whose token no job carries).
pub const EX_NOUSER: u8 = 67;
/// Why `kurir inbound` did not store a message.
#[derive(Debug, thiserror::Error)]
pub enum StoreMessageError {
    /// Larger than `[proof] max_inbound_bytes`.
    #[error("the message is larger than {0} bytes ([proof] max_inbound_bytes); refused")]
    TooLarge(u64),
    /// Sent to a return address whose token kurir never gave out: nothing is stored (a
    /// made-up address costs no disk).
    #[error("no such recipient: the address carries no token kurir gave out; refused")]
    NoSuchRecipient,
    /// Reading standard input or writing the spool failed: the MTA should try again.
    #[error("the message could not be stored: {0}")]
    Io(#[from] std::io::Error),
}

/// `kurir inbound`: reads one message from `input` (at most `max` bytes), and writes it with
/// its envelope recipient into `spool/inbound/new/` by the tmp-then-rename rule. Without
/// `recipient`, the message's `Delivered-To:` or `X-Original-To:` header names it. Returns the
/// file's name.
pub fn store_message(
    spool: &Spool,
    input: impl Read,
    recipient: Option<&str>,
    max: u64,
    key: Option<&TokenKey>,
) -> Result<String, StoreMessageError> {
    // A recipient named on the command line is checked before a byte is read.
    if let Some(r) = recipient {
        refuse_made_up(r, key)?;
    }
    let mut bytes = Vec::new();
    input.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(StoreMessageError::TooLarge(max));
    }
    let recipient = match recipient {
        Some(r) => r.to_string(),
        None => header_value(&bytes, "delivered-to")
            .or_else(|| header_value(&bytes, "x-original-to"))
            .unwrap_or_default(),
    };
    refuse_made_up(&recipient, key)?;
    let recipient: String = recipient
        .chars()
        .filter(|c| !c.is_control())
        .take(320)
        .collect();
    for dir in [spool.inbound_tmp(), spool.inbound_new()] {
        fsutil::create_private_dir(&dir)?;
    }
    let name = format!(
        "{}-{}.eml",
        Timestamp::now().strftime("%Y%m%dT%H%M%S%.6f"),
        JobId::generate().as_str().rsplit('-').next().unwrap_or("x")
    );
    let tmp = spool.inbound_tmp().join(&name);
    let mut content = format!("{ENVELOPE_LINE}{recipient}\r\n").into_bytes();
    content.extend_from_slice(&bytes);
    fsutil::write_new(&tmp, &content)?;
    std::fs::rename(&tmp, spool.inbound_new().join(&name))?;
    fsutil::sync_dir(&spool.inbound_new())?;
    Ok(name)
}

/// Refuses an address without a token `key` made: only reports to an address kurir gave
/// out are worth the disk they take. Without the key (`None`) nothing can be told here.
fn refuse_made_up(recipient: &str, key: Option<&TokenKey>) -> Result<(), StoreMessageError> {
    let Some(key) = key else {
        return Ok(());
    };
    match TokenKey::token_of(recipient) {
        Some(token) if key.verify(token).is_some() => Ok(()),
        _ => Err(StoreMessageError::NoSuchRecipient),
    }
}

/// The first value of a header in the message's header section (unfolded, bounded).
fn header_value(message: &[u8], name: &str) -> Option<String> {
    let head_end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| message.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(message.len());
    let head = String::from_utf8_lossy(&message[..head_end.min(64 * 1024)]);
    head.lines().find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field.trim().eq_ignore_ascii_case(name).then(|| {
            value
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}
