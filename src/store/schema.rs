//! The schema: one ordered list of migrations for both databases, each written once.
//! The few words the dialects spell differently are written as `{pk}`, `{serial_pk}`
//! (a key that never reuses a value), `{int}` (64-bit), `{bytes}`, `{bool}` and `{true}`,
//! and filled in per database. Everything else — tables, columns, indexes — is the same
//! on both, which `tests/schema.rs` checks on the migrated databases. What only one
//! database can say (a trigger's body) follows a line `-- on sqlite:` or
//! `-- on postgres:`; a migration's text before the first such line is for both.

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
    "0014_credentials_version",
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
        words.iter().fold(
            for_dialect(self.template, dialect),
            |sql, (word, spelled)| sql.replace(word, spelled),
        )
    }
}

/// The lines of `template` for `dialect`: all before the first `-- on …:` line, then
/// only those under that dialect's own.
fn for_dialect(template: &str, dialect: Dialect) -> String {
    let own = match dialect {
        Dialect::Sqlite => "-- on sqlite:",
        Dialect::Postgres => "-- on postgres:",
    };
    let mut kept = true;
    let mut sql = String::with_capacity(template.len());
    for line in template.lines() {
        if line.starts_with("-- on ") && line.ends_with(':') {
            kept = line == own;
        } else if kept {
            sql.push_str(line);
            sql.push('\n');
        }
    }
    sql
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

    #[test]
    fn dialect_sections_go_to_their_own_database() {
        let template = "CREATE TABLE t (a {int});\n-- on sqlite:\nS;\n-- on postgres:\nP;\n";
        assert_eq!(
            for_dialect(template, Dialect::Sqlite),
            "CREATE TABLE t (a {int});\nS;\n"
        );
        assert_eq!(
            for_dialect(template, Dialect::Postgres),
            "CREATE TABLE t (a {int});\nP;\n"
        );
    }
}
