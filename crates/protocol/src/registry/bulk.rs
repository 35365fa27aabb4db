//! The CSV format for bulk registration (`kurir municipality import` / `export`).
//!
//! Columns (header required, any order, any subset besides `kommunkod`):
//! `kommunkod,email,decision_email,secure,phone,contacts,postal_address,tls_pin`.
//! A column that is absent leaves the field alone; an empty cell clears it. `contacts` holds
//! `Name, phone, e-mail` entries separated by `;`. `postal_address` separates lines with `\n`.

use serde::{Deserialize, Serialize};

use crate::job::Kommunkod;
use crate::registry::{Changes, Registered};

/// Why a CSV file cannot be read as registrations (the line is 1-based, the header is 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case")]
pub enum BulkError {
    /// The CSV itself is broken at this line.
    #[error("line {line}: {problem}")]
    Csv {
        /// The line.
        line: usize,
        /// What the CSV reader said.
        problem: String,
    },
    /// A column that is not one of [`COLUMNS`].
    #[error("unknown column {0:?}; the columns are {columns}", columns = COLUMNS.join(", "))]
    UnknownColumn(String),
    /// No `kommunkod` column.
    #[error("the CSV needs a kommunkod column")]
    NoKommunkodColumn,
    /// A row whose kommunkod is not four digits.
    #[error("line {line}: {value:?} is not a kommunkod (four digits)")]
    BadKommunkod {
        /// The line.
        line: usize,
        /// The cell.
        value: String,
    },
}

/// The columns, in export order.
pub const COLUMNS: [&str; 8] = [
    "kommunkod",
    "email",
    "decision_email",
    "secure",
    "phone",
    "contacts",
    "postal_address",
    "tls_pin",
];

/// Parses CSV text into (line, kommunkod, changes). Fails on an unknown column or a bad code.
pub fn parse(text: &str) -> Result<Vec<(usize, Kommunkod, Changes)>, BulkError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| BulkError::Csv {
            line: 1,
            problem: e.to_string(),
        })?
        .clone();
    for h in headers.iter() {
        if !COLUMNS.contains(&h) {
            return Err(BulkError::UnknownColumn(h.chars().take(40).collect()));
        }
    }
    if !headers.iter().any(|h| h == "kommunkod") {
        return Err(BulkError::NoKommunkodColumn);
    }
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| BulkError::Csv {
            line,
            problem: e.to_string(),
        })?;
        let get = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .and_then(|p| record.get(p))
                .map(str::to_string)
        };
        let cell = get("kommunkod").unwrap_or_default();
        let code: Kommunkod = cell.parse().map_err(|_| BulkError::BadKommunkod {
            line,
            value: cell.chars().take(20).collect(),
        })?;
        let changes = Changes {
            email: get("email"),
            decision_email: get("decision_email"),
            phone: get("phone"),
            contacts: get("contacts").map(|c| {
                c.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            }),
            postal_address: get("postal_address"),
            smime_cert_pem: None,
            tls_pin: get("tls_pin"),
            secure: get("secure").map(|s| if s.is_empty() { "no".to_string() } else { s }),
        };
        out.push((line, code, changes));
    }
    Ok(out)
}

/// Writes every registration in the import format.
pub fn export(all: &[(Kommunkod, Registered)]) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(COLUMNS)?;
    for (code, r) in all {
        let contacts: Vec<String> = r.contacts.iter().map(|c| c.to_string()).collect();
        let postal = r
            .postal_address
            .as_ref()
            .map(|a| a.lines().join("\\n"))
            .unwrap_or_default();
        writer.write_record([
            code.as_str(),
            r.official_email.as_deref().unwrap_or(""),
            r.decision_email.as_deref().unwrap_or(""),
            if r.secure_connection { "yes" } else { "no" },
            r.phone.as_deref().unwrap_or(""),
            &contacts.join("; "),
            &postal,
            r.tls_pin.as_deref().unwrap_or(""),
        ])?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    // Every cell was a Rust string: the bytes are UTF-8.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_then_parse_round_trips() {
        let mut r = Registered::default();
        r.apply(
            &Changes {
                email: Some("registrator@umea.example".into()),
                secure: Some("yes".into()),
                contacts: Some(vec!["Anna Berg, 090-16 10 00, anna@umea.example".into()]),
                postal_address: Some("Skolgatan 31A\\n901 84 Umeå".into()),
                ..Changes::default()
            },
            jiff::Timestamp::now(),
        )
        .expect("valid");
        let text = export(&[("2480".parse().expect("code"), r.clone())]).expect("export");
        let rows = parse(&text).expect("parse");
        assert_eq!(rows.len(), 1);
        let mut again = Registered::default();
        again
            .apply(&rows[0].2, jiff::Timestamp::now())
            .expect("valid");
        assert_eq!(again.official_email, r.official_email);
        assert_eq!(again.contacts, r.contacts);
        assert_eq!(again.postal_address, r.postal_address);
        assert!(again.secure_connection);
    }

    #[test]
    fn unknown_column_is_refused() {
        assert!(parse("kommunkod,fax\n2480,1\n").is_err());
    }
}
