//! The municipality registry: the 290 kommuner built into the binary, plus what the agency has
//! registered about each (postal address today; secure e-mail addresses build on it).
//!
//! The seed is compiled in so that a fresh `kurir run` knows every kommunkod without a file.
//! Registered facts live in the store, so they survive restarts and have a history.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::job::Kommunkod;

/// The SCB list from `config/municipalities.csv`, compiled in.
const SEED_CSV: &str = include_str!("../config/municipalities.csv");

/// A municipality as the seed knows it: code, official name and county.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedMunicipality {
    /// Four-digit code.
    pub code: Kommunkod,
    /// Official name, e.g. "Umeå kommun", "Region Gotland".
    pub name: String,
    /// Two-digit county (län) code.
    pub county: String,
}

/// Why a registry value cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The built-in list is broken (a build defect, caught by tests).
    #[error("built-in municipality list, line {line}: {problem}")]
    Seed {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// The code is well-formed but no such municipality exists.
    #[error("unknown kommunkod {0}: not one of the 290 municipalities")]
    UnknownKommunkod(Kommunkod),
    /// A postal address that a print shop could not use.
    #[error("postal address: {0}")]
    PostalAddress(String),
}

/// The built-in list of municipalities, indexed by code.
#[derive(Debug, Clone)]
pub struct Seed {
    by_code: BTreeMap<Kommunkod, SeedMunicipality>,
}

impl Seed {
    /// Parses the compiled-in list, correcting the known defects of the source data set.
    pub fn builtin() -> Result<Seed, RegistryError> {
        let mut by_code = BTreeMap::new();
        let mut reader = csv::Reader::from_reader(SEED_CSV.as_bytes());
        for (i, row) in reader.records().enumerate() {
            let line = i + 2;
            let row = row.map_err(|e| RegistryError::Seed {
                line,
                problem: e.to_string(),
            })?;
            let field = |n: usize| row.get(n).unwrap_or("").trim().to_string();
            let code: Kommunkod =
                field(0)
                    .parse()
                    .map_err(|e: crate::job::ParseError| RegistryError::Seed {
                        line,
                        problem: e.to_string(),
                    })?;
            let name = official_name(code, &field(1));
            by_code.insert(
                code,
                SeedMunicipality {
                    code,
                    name,
                    county: field(3),
                },
            );
        }
        Ok(Seed { by_code })
    }

    /// The municipality with this code, if it exists.
    pub fn get(&self, code: Kommunkod) -> Option<&SeedMunicipality> {
        self.by_code.get(&code)
    }

    /// Checks that a code names a real municipality.
    pub fn require(&self, code: Kommunkod) -> Result<&SeedMunicipality, RegistryError> {
        self.get(code).ok_or(RegistryError::UnknownKommunkod(code))
    }

    /// All municipalities in code order.
    pub fn iter(&self) -> impl Iterator<Item = &SeedMunicipality> {
        self.by_code.values()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    /// Whether the list is empty (never, for the built-in one).
    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }
}

/// The data set's `municipality_name` with its known defects corrected (see shared/data).
fn official_name(code: Kommunkod, raw: &str) -> String {
    match code.as_str() {
        "0880" => "Kalmar kommun".into(),
        "2080" => "Falu kommun".into(),
        "2514" => "Kalix kommun".into(),
        "2513" => "Överkalix kommun".into(),
        "0980" => "Region Gotland".into(),
        _ => raw.to_string(),
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
        let bad = |s: &str| RegistryError::PostalAddress(s.to_string());
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
            return Err(bad(
                "each line must be at most 60 characters, without control characters",
            ));
        }
        let last = lines
            .pop()
            .ok_or_else(|| bad("give at least a street line and a line `nnn nn Postort`"))?;
        let (postnummer, postort) = split_postnummer(last)
            .ok_or_else(|| bad("the last line must be `nnn nn Postort`, e.g. `901 84 Umeå`"))?;
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
            [] => return Err(bad("a street or box line is missing")),
            _ => {
                return Err(bad(
                    "at most: c/o line, two street lines, postnummer and postort",
                ))
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_list_has_all_290_with_corrected_names() {
        let seed = Seed::builtin().expect("seed parses");
        assert_eq!(seed.len(), 290);
        let name = |c: &str| {
            seed.get(c.parse().expect("code"))
                .expect("exists")
                .name
                .clone()
        };
        assert_eq!(name("2480"), "Umeå kommun");
        assert_eq!(name("0980"), "Region Gotland");
        assert_eq!(name("0880"), "Kalmar kommun");
        assert_eq!(name("2080"), "Falu kommun");
        assert_eq!(name("2514"), "Kalix kommun");
        assert_eq!(name("2513"), "Överkalix kommun");
        assert!(seed.get("9999".parse().expect("code")).is_none());
    }

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
