//! The schema: one ordered list of migrations for both databases, each written once.
//! The few words the dialects spell differently are written as `{pk}`, `{serial_pk}`
//! (a key that never reuses a value), `{int}` (64-bit), `{bytes}`, `{bool}` and `{true}`,
//! and filled in per database. Everything else — tables, columns, indexes — is the same
//! on both, which `tests/schema.rs` checks on the migrated databases.

/// Which database a statement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

pub struct Migration {
    pub name: &'static str,
    template: &'static str,
}

macro_rules! migrations {
    ($($name:literal),* $(,)?) => {
        &[$(Migration { name: $name, template: include_str!(concat!("migrations/", $name, ".sql")) }),*]
    };
}

/// Applied in this order; a database records how many it has applied.
pub const MIGRATIONS: &[Migration] = migrations![
    "0001_init",
    "0002_provider_sync",
    "0003_idempotency",
    "0004_callbacks",
    "0005_one_fingerprint_index",
    "0006_identical_by_customer",
    "0007_trust",
    "0008_client_rate",
    "0009_fair_callbacks",
    "0010_kyc_submitted",
    "0011_retention",
    "0012_audit",
    "0013_data_keys",
];

impl Migration {
    /// The migration's SQL for `dialect`.
    pub fn sql(&self, dialect: Dialect) -> String {
        let words: [(&str, &str); 6] = match dialect {
            Dialect::Sqlite => [
                ("{pk}", "INTEGER PRIMARY KEY"),
                ("{serial_pk}", "INTEGER PRIMARY KEY AUTOINCREMENT"),
                ("{int}", "INTEGER"),
                ("{bytes}", "BLOB"),
                ("{bool}", "INTEGER"),
                ("{true}", "1"),
            ],
            Dialect::Postgres => [
                ("{pk}", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
                (
                    "{serial_pk}",
                    "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
                ),
                ("{int}", "BIGINT"),
                ("{bytes}", "BYTEA"),
                ("{bool}", "BOOLEAN"),
                ("{true}", "TRUE"),
            ],
        };
        words
            .iter()
            .fold(self.template.to_owned(), |sql, (word, spelled)| {
                sql.replace(word, spelled)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_filled_in() {
        for m in MIGRATIONS {
            for d in [Dialect::Sqlite, Dialect::Postgres] {
                let sql = m.sql(d);
                assert!(!sql.contains('{') && !sql.contains('}'), "{} {d:?}", m.name);
            }
        }
    }
}
