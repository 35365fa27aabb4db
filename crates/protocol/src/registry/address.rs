//! Where letters and calls go: the postal address a print shop's manifest wants, contact
//! persons, and the checks of e-mail addresses, telephone numbers and TLS pins.

use serde::{Deserialize, Serialize};

use super::RegistryError;

/// What is wrong with a postal address (the surfaces word it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case")]
pub enum PostalProblem {
    /// A line is over 60 characters or holds a control character.
    #[error("each line must be at most 60 characters, without control characters")]
    LineTooLong,
    /// Nothing was given.
    #[error("give at least a street line and a line `nnn nn Postort`")]
    Empty,
    /// The last line is not `nnn nn Postort`.
    #[error("the last line must be `nnn nn Postort`, e.g. `901 84 Umeå`")]
    NoPostnummer,
    /// Only the postnummer line was given.
    #[error("a street or box line is missing")]
    NoStreet,
    /// More lines than an envelope window holds.
    #[error("at most: c/o line, two street lines, postnummer and postort")]
    TooManyLines,
}

/// Which e-mail address a check concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmailField {
    /// The municipality's official address.
    Official,
    /// The specific address for decisions.
    Decision,
    /// A contact person's address.
    Contact,
}

impl std::fmt::Display for EmailField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EmailField::Official => "e-mail",
            EmailField::Decision => "decision e-mail",
            EmailField::Contact => "contact e-mail",
        })
    }
}

/// A Swedish postal address as a print shop's manifest wants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    /// "c/o" line, if any (without the "c/o ").
    pub care_of: Option<String>,
    /// Street address or box.
    pub street: String,
    /// A second street line (floor, apartment, department), if any.
    pub extra: Option<String>,
    /// Five digits written `nnn nn`.
    pub postnummer: String,
    /// Postort.
    pub postort: String,
}

impl PostalAddress {
    /// Parses lines like `"Skolgatan 31A\n901 84 Umeå"`; `\n` may be a real newline or the two
    /// characters backslash-n (as typed in a shell). A first line `c/o …` is the care-of line.
    pub fn parse(text: &str) -> Result<PostalAddress, RegistryError> {
        let bad = RegistryError::PostalAddress;
        let normalized = text.replace("\\n", "\n");
        let mut lines: Vec<&str> = normalized
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines
            .iter()
            .any(|l| l.chars().count() > 60 || l.chars().any(char::is_control))
        {
            return Err(bad(PostalProblem::LineTooLong));
        }
        let last = lines.pop().ok_or(bad(PostalProblem::Empty))?;
        let (postnummer, postort) =
            split_postnummer(last).ok_or(bad(PostalProblem::NoPostnummer))?;
        let care_of = match lines.first() {
            Some(l) if l.to_lowercase().starts_with("c/o ") => {
                let rest = l[4..].trim().to_string();
                lines.remove(0);
                Some(rest)
            }
            _ => None,
        };
        let (street, extra) = match lines.as_slice() {
            [street] => (street.to_string(), None),
            [street, extra] => (street.to_string(), Some(extra.to_string())),
            [] => return Err(bad(PostalProblem::NoStreet)),
            _ => return Err(bad(PostalProblem::TooManyLines)),
        };
        Ok(PostalAddress {
            care_of,
            street,
            extra,
            postnummer,
            postort,
        })
    }

    /// The address lines below the recipient's name, as printed in the window.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = &self.care_of {
            out.push(format!("c/o {c}"));
        }
        out.push(self.street.clone());
        if let Some(e) = &self.extra {
            out.push(e.clone());
        }
        out.push(format!("{} {}", self.postnummer, self.postort));
        out
    }
}

/// Splits `"901 84 Umeå"` or `"90184 Umeå"` into (`"901 84"`, `"Umeå"`).
fn split_postnummer(line: &str) -> Option<(String, String)> {
    let digits: String = line
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ' ')
        .collect();
    let only_digits: String = digits.chars().filter(char::is_ascii_digit).collect();
    if only_digits.len() != 5 {
        return None;
    }
    let postort = line[digits.len()..].trim().to_string();
    if postort.is_empty() || postort.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((
        format!("{} {}", &only_digits[..3], &only_digits[3..]),
        postort,
    ))
}

/// A contact person at the municipality, for operations to call when delivery fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Name.
    pub name: String,
    /// Telephone.
    pub phone: String,
    /// E-mail.
    pub email: String,
}

impl Contact {
    /// Parses `"Name, phone, e-mail"`.
    pub fn parse(text: &str) -> Result<Contact, RegistryError> {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let [name, phone, email] = parts.as_slice() else {
            return Err(RegistryError::Contact(text.chars().take(100).collect()));
        };
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(RegistryError::Contact(text.chars().take(100).collect()));
        }
        Ok(Contact {
            name: name.to_string(),
            phone: check_phone(phone)?,
            email: check_email(EmailField::Contact, email)?,
        })
    }
}

impl std::fmt::Display for Contact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, {}, {}", self.name, self.phone, self.email)
    }
}

/// A plain address (`local@domain`), as lettre parses it, at most 254 characters.
pub fn check_email(field: EmailField, value: &str) -> Result<String, RegistryError> {
    let value = value.trim();
    let ok = value.len() <= 254
        && value.parse::<lettre::Address>().is_ok()
        && value.contains('.')
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>');
    if ok {
        Ok(value.to_string())
    } else {
        Err(RegistryError::Email {
            field,
            value: value.chars().take(100).collect(),
        })
    }
}

pub(super) fn check_phone(value: &str) -> Result<String, RegistryError> {
    let value = value.trim();
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let ok = (5..=20).contains(&digits)
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()".contains(c));
    if ok {
        Ok(value.to_string())
    } else {
        Err(RegistryError::Phone(value.chars().take(40).collect()))
    }
}

pub(super) fn check_pin(value: &str) -> Result<String, RegistryError> {
    let hex: String = value
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_lowercase();
    if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(RegistryError::TlsPin(value.chars().take(100).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postal_address_parses_typed_and_real_newlines() {
        let a = PostalAddress::parse("Skolgatan 31A\\n90184 Umeå").expect("valid");
        assert_eq!(a.postnummer, "901 84");
        assert_eq!(a.postort, "Umeå");
        assert_eq!(a.street, "Skolgatan 31A");
        let b =
            PostalAddress::parse("c/o Socialtjänsten\nBox 1\nPlan 2\n901 84 UMEÅ").expect("valid");
        assert_eq!(b.care_of.as_deref(), Some("Socialtjänsten"));
        assert_eq!(b.extra.as_deref(), Some("Plan 2"));
        assert_eq!(b.lines().len(), 4);
    }

    #[test]
    fn postal_address_without_postnummer_is_refused() {
        assert!(PostalAddress::parse("Skolgatan 31A\nUmeå").is_err());
        assert!(PostalAddress::parse("901 84 Umeå").is_err());
        assert!(PostalAddress::parse("Gata 1\n9018 Umeå").is_err());
    }
}
