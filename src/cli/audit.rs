//! `paycc audit list` and `paycc audit verify`.

use super::{admin_error, emit};
use crate::app::StartError;
use crate::config::parse_duration;
use crate::service::{AuditCheck, Service};
use crate::store::{AuditFilter, UnixMs};
use clap::Subcommand;
use serde::Serialize;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit entries, newest first: who read a person's identity or changed what.
    List {
        /// Only entries about this KYC.
        #[arg(long)]
        kid: Option<String>,
        /// Only entries about this API client (its reads, and changes made to it).
        #[arg(long = "client")]
        client_id: Option<String>,
        /// Only entries from this moment on: an RFC 3339 time, or how long ago (`24h`).
        #[arg(long, value_parser = parse_since)]
        since: Option<UnixMs>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Check that no entry was changed, removed or moved; names the first that was.
    Verify,
}

fn parse_since(raw: &str) -> Result<UnixMs, String> {
    if let Ok(at) =
        time::OffsetDateTime::parse(raw.trim(), &time::format_description::well_known::Rfc3339)
    {
        return Ok(UnixMs((at.unix_timestamp_nanos() / 1_000_000) as i64));
    }
    let ago = parse_duration(raw)
        .map_err(|_| format!("expected an RFC 3339 time or a duration like 24h, got {raw:?}"))?;
    Ok(UnixMs::of(time::OffsetDateTime::now_utc()).minus(ago))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    seq: i64,
    at: String,
    actor: &'a str,
    action: &'a str,
    kid: Option<&'a str>,
    cust_id: Option<&'a str>,
    client_id: Option<&'a str>,
    request_id: Option<&'a str>,
    outcome: &'a str,
}

pub async fn run(service: Arc<Service>, cmd: AuditCommand) -> Result<(), StartError> {
    match cmd {
        AuditCommand::List {
            kid,
            client_id,
            since,
            limit,
            json,
        } => {
            let filter = AuditFilter {
                kid: kid.map(|k| k.trim().to_owned()),
                client_id: client_id.map(|c| c.trim().to_owned()),
                since,
                limit: i64::from(limit),
            };
            let records = service
                .admin
                .audit_list(&filter)
                .await
                .map_err(admin_error)?;
            let rows: Vec<Row> = records
                .iter()
                .map(|r| Row {
                    seq: r.seq,
                    at: r.entry.at.rfc3339(),
                    actor: &r.entry.actor,
                    action: &r.entry.action,
                    kid: r.entry.kid.as_deref(),
                    cust_id: r.entry.cust_id.as_deref(),
                    client_id: r.entry.client_id.as_deref(),
                    request_id: r.entry.request_id.as_deref(),
                    outcome: &r.entry.outcome,
                })
                .collect();
            emit(json, &rows, || {
                let mut out = format!(
                    "{:>6}  {:<24}  {:<28}  {:<20}  {:<32}  {:<16}  OUTCOME",
                    "SEQ", "AT", "ACTOR", "ACTION", "KID", "CLIENT"
                );
                for r in &rows {
                    out.push_str(&format!(
                        "\n{:>6}  {:<24}  {:<28}  {:<20}  {:<32}  {:<16}  {}",
                        r.seq,
                        r.at,
                        r.actor,
                        r.action,
                        r.kid.unwrap_or("-"),
                        r.client_id.unwrap_or("-"),
                        r.outcome
                    ));
                }
                out
            })
        }
        AuditCommand::Verify => match service.admin.audit_verify().await.map_err(admin_error)? {
            AuditCheck::Intact { entries } => {
                println!("audit trail intact: {entries} entries, each linked to the one before");
                Ok(())
            }
            AuditCheck::Broken { seq, problem } => Err(StartError(format!(
                "audit trail broken at entry {seq}: {problem}"
            ))),
        },
    }
}
