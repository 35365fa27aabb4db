//! Free text that people type — an operator's reason, a caseworker's note after a call — is
//! kept for good: in a job's history, its receipts and the audit chain, which cannot be
//! redacted. What identifies a child must never get there. This module finds what looks like
//! a case number (dossiernummer, `xx-xxxxxx`) or a Swedish personal identity or coordination
//! number (personnummer, samordningsnummer), so that every surface can refuse the text and
//! say why, in its own words.

use serde::{Deserialize, Serialize};

/// What a text seems to hold that it must not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PersonalData {
    /// A case number: `xx-xxxxxx`, or eight digits that are no date.
    CaseNumber,
    /// A personal identity or coordination number: a date of birth and four digits whose
    /// last is the Luhn check digit.
    IdentityNumber,
}

/// The first thing in `text` that looks like personal data, if any.
pub fn personal_data_in(text: &str) -> Option<PersonalData> {
    // Groups of digits (any script's decimal digits, e.g. full-width) with one separator
    // between them of those such numbers are written with: '-', '+', a dash, a space, '.',
    // '/'. A group of these is judged by its groups' lengths.
    let mut runs: Vec<Vec<String>> = Vec::new();
    let mut groups: Vec<String> = Vec::new();
    let mut digits = String::new();
    for c in text.chars().chain(std::iter::once('\n')) {
        if let Some(d) = decimal_digit(c) {
            digits.push(d);
        } else if SEPARATORS.contains(&c) && !digits.is_empty() {
            groups.push(std::mem::take(&mut digits));
        } else {
            if !digits.is_empty() {
                groups.push(std::mem::take(&mut digits));
            }
            if !groups.is_empty() {
                runs.push(std::mem::take(&mut groups));
            }
        }
    }
    runs.iter().find_map(|run| judge(run))
}

/// What may stand between the parts of a number as people write them, and as word processors
/// and case systems paste it (non-breaking spaces and hyphens, the minus sign).
const SEPARATORS: [char; 12] = [
    '-', '+', '\u{2013}', '\u{2014}', ' ', '.', '/', '\u{00A0}', '\u{202F}', '\u{2010}',
    '\u{2011}', '\u{2212}',
];

/// The ASCII digit of a decimal digit of any script this checks (ASCII and full-width).
fn decimal_digit(c: char) -> Option<char> {
    match c {
        '0'..='9' => Some(c),
        '\u{FF10}'..='\u{FF19}' => char::from_u32(c as u32 - 0xFF10 + u32::from(b'0')),
        _ => None,
    }
}

/// Judges one run of digit groups: its groups' lengths, then its digits. Any two adjacent
/// groups may be one number ("12 345678" in a longer run of figures), so every window is
/// tried.
fn judge(groups: &[String]) -> Option<PersonalData> {
    for start in 0..groups.len() {
        for end in start + 1..=groups.len().min(start + 2) {
            let window = &groups[start..end];
            let lengths: Vec<usize> = window.iter().map(String::len).collect();
            let digits: String = window.concat();
            let found = match lengths.as_slice() {
                [2, 6] => Some(PersonalData::CaseNumber),
                [8] if !is_date(&digits, true) => Some(PersonalData::CaseNumber),
                [10] | [6, 4] if is_identity(&digits) => Some(PersonalData::IdentityNumber),
                [12] | [8, 4] if is_date(&digits[..8], true) && is_identity(&digits[2..]) => {
                    Some(PersonalData::IdentityNumber)
                }
                _ => None,
            };
            if found.is_some() {
                return found;
            }
        }
    }
    None
}

/// `YYMMDD` (or, `century`, `YYYYMMDD`) with a real month and day; a coordination number's
/// day has 60 added.
fn is_date(digits: &str, century: bool) -> bool {
    let start = if century { 4 } else { 2 };
    let (Ok(month), Ok(day)) = (
        digits[start..start + 2].parse::<u32>(),
        digits[start + 2..start + 4].parse::<u32>(),
    ) else {
        return false;
    };
    (1..=12).contains(&month) && ((1..=31).contains(&day) || (61..=91).contains(&day))
}

/// Ten digits `YYMMDDNNNC` with a real date and C the Luhn check digit of the nine before.
fn is_identity(digits: &str) -> bool {
    if digits.len() != 10 || !is_date(digits, false) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .map(|b| u32::from(b - b'0'))
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 0 {
                let x = d * 2;
                x / 10 + x % 10
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_numbers_and_identity_numbers_are_found() {
        // Synthetic numbers: 811218-9876 is the Tax Agency's example, valid by Luhn.
        for (text, found) in [
            (
                "ringde om 12-345678, fick svar",
                Some(PersonalData::CaseNumber),
            ),
            ("ärende 12345678", Some(PersonalData::CaseNumber)),
            // As pasted from a word processor: a non-breaking space, a non-breaking hyphen.
            ("ärende 12\u{00A0}345678", Some(PersonalData::CaseNumber)),
            ("ärende 12\u{2011}345678", Some(PersonalData::CaseNumber)),
            (
                "barnet 811218\u{2212}9876",
                Some(PersonalData::IdentityNumber),
            ),
            ("barnet 811218-9876", Some(PersonalData::IdentityNumber)),
            ("barnet 8112189876", Some(PersonalData::IdentityNumber)),
            ("barnet 19811218-9876", Some(PersonalData::IdentityNumber)),
            ("barnet 198112189876", Some(PersonalData::IdentityNumber)),
            (
                "samordningsnummer 811278-9873",
                Some(PersonalData::IdentityNumber),
            ),
        ] {
            assert_eq!(personal_data_in(text), found, "{text}");
        }
    }

    #[test]
    fn ordinary_reasons_dates_phone_numbers_and_times_pass() {
        for text in [
            "kommunen bekräftade i telefon",
            "tryckeriet 2026-12-07 14.10",
            "datum 20261207",
            "ringde 090-16 10 00",
            "ringde 070-123 45 67",
            "batch 20261130-001",
            "jobb 20261130-120000-0a0b0c0d0e0f",
            "8112189875 (fel kontrollsiffra)",
            "",
        ] {
            assert_eq!(personal_data_in(text), None, "{text}");
        }
    }
}
