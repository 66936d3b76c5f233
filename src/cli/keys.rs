//! `paycc keys`: the hash key a single data key stands in for, what each data key still
//! seals, and re-sealing everything under the first one.

use super::{admin_error, emit};
use crate::app::{self, StartError};
use crate::config::StoreSettings;
use crate::service::{DEFAULT_BATCH, KeyStatus};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the lookup-hash key that the single PAYCC_ENCRYPTION_KEY stands in for
    /// (base64). Set PAYCC_HASH_KEY to it before adding a second data key, so every API
    /// secret and PAN/mobile lookup keeps matching.
    DerivedHashKey,
    /// How many stored values each data key seals, and how many a rotation would
    /// re-seal. A key may leave PAYCC_ENCRYPTION_KEY once it seals nothing.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Re-seal every stored value under the first key of PAYCC_ENCRYPTION_KEY, bound to
    /// its row, a batch at a time, while paycc serves. Safe to stop and run again: it
    /// goes on with what is left. Every node must already seal with the new first key.
    Rotate {
        /// Values per write.
        #[arg(long, default_value_t = DEFAULT_BATCH, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch: u32,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(store: &StoreSettings, cmd: KeysCommand) -> Result<(), StartError> {
    match cmd {
        KeysCommand::DerivedHashKey => {
            println!("{}", app::derived_hash_key(store)?);
            Ok(())
        }
        KeysCommand::Status { json } => {
            let service = app::admin_service_unchecked(store).await?;
            let status = service.admin.key_status().await.map_err(admin_error)?;
            emit(json, &status, || status_text(&status))
        }
        KeysCommand::Rotate { batch, json } => {
            let service = app::admin_service(store).await?;
            let rotation = service
                .admin
                .rotate_keys(batch, |p| {
                    eprintln!("{}: {} of {} re-sealed", p.column, p.resealed, p.of)
                })
                .await
                .map_err(admin_error)?;
            emit(json, &rotation, || {
                let mut text = format!(
                    "{} values re-sealed under {}; {} rewritten by paycc meanwhile",
                    rotation.resealed, rotation.key_id, rotation.changed_meanwhile
                );
                for v in &rotation.unopened {
                    text.push_str(&format!("\ndoes not open, left as it is: {v}"));
                }
                text
            })?;
            if rotation.unopened.is_empty() {
                Ok(())
            } else {
                Err(StartError(format!(
                    "{} values do not open; the keys sealing them cannot be removed",
                    rotation.unopened.len()
                )))
            }
        }
    }
}

fn status_text(s: &KeyStatus) -> String {
    let mut lines = vec![format!(
        "{:<34} {:<10} {:>10} {:>10}",
        "KEY", "", "VALUES", "UNBOUND"
    )];
    for k in &s.keys {
        let role = match (k.sealing, k.configured) {
            (true, _) => "sealing",
            (false, true) => "configured",
            (false, false) => "REMOVED",
        };
        lines.push(format!(
            "{:<34} {:<10} {:>10} {:>10}",
            k.key_id, role, k.values, k.unbound
        ));
    }
    if s.other_keys > 0 {
        lines.push(format!(
            "{} values are sealed with keys paycc has never been started with",
            s.other_keys
        ));
    }
    lines.push(format!("to re-seal: {}", s.to_reseal));
    lines.join("\n")
}
