//! The 290 municipalities built into the binary (SCB's list), so that a fresh `kurir run`
//! knows every kommunkod without a file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::RegistryError;
use crate::job::Kommunkod;

/// The SCB list from `config/municipalities.csv`, compiled in.
const SEED_CSV: &str = include_str!("../../../../config/municipalities.csv");

/// A municipality as the seed knows it: code, official name and county.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedMunicipality {
    /// Four-digit code.
    pub code: Kommunkod,
    /// Official name, e.g. "Umeå kommun", "Region Gotland".
    pub name: String,
    /// Two-digit county (län) code.
    pub county: String,
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
