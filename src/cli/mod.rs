//! The `paycc` command line.

mod audit;
mod keys;

use crate::app::{self, Server, StartError};
use crate::config::{LogSettings, ServeSettings, StoreSettings};
use crate::domain::callback::KycEvent;
use crate::service::{Decision, KycSummary, Service, ServiceError, ServiceResult};
use crate::store::{CallbackFilter, RateLimit, Switch, UnixMs};
use clap::{Parser, Subcommand};
use serde::Serialize;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "paycc",
    version,
    about = "The Paycc customer-KYC API server (IPAYMENT-compatible) and its admin commands.",
    after_help = "Every setting can also come from its PAYCC_* environment variable.\n\
                  Quick start: `paycc serve` on an empty database prints a ready-to-paste curl."
)]
pub struct Cli {
    #[command(flatten)]
    store: StoreSettings,
    #[command(flatten)]
    log: LogSettings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API server (and the sandbox journey, and background work).
    Serve(Box<ServeSettings>),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API clients (the partners holding clientId/clientSecret).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage merchants (merchantCode) owned by API clients.
    #[command(subcommand)]
    Merchant(MerchantCommand),
    /// Inspect KYC requests (personal data masked).
    #[command(subcommand)]
    Kyc(KycCommand),
    /// Inspect and re-send the KYC event callbacks to merchants.
    #[command(subcommand)]
    Callbacks(CallbacksCommand),
    /// Work with the encryption and hash keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Read and check the audit trail (who read a person's identity or changed what).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Erase one ended KYC's identity data now (a data subject's erasure request).
    ///
    /// Its verified identity and photo, submitted details and link go, and a tombstone
    /// (kid, custId, merchant, state, dates) stays. Ended KYCs are purged on their own
    /// once PAYCC_RETENTION has passed.
    Purge {
        /// The KYC's kid.
        #[arg(long)]
        kid: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Create an API client; prints its clientId and clientSecret (shown only once).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Replace a client's secret; the old one stops working at once.
    RotateSecret {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Switch a client off: every call with its credentials answers 0x0201, on every
    /// node, from the next request. Its data and secret are kept.
    Disable {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Switch a disabled client on again.
    Enable {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Give a client a rate limit of its own instead of PAYCC_CLIENT_RATE, on every
    /// node from its next request: --per-second 0 for none, --default to go back.
    SetLimit {
        client_id: String,
        /// Requests per second on average, per node; 0: unlimited.
        #[arg(long, required_unless_present = "default", conflicts_with = "default")]
        per_second: Option<u32>,
        /// Requests at once (default: twice the rate).
        #[arg(long, requires = "per_second", value_parser = clap::value_parser!(u32).range(1..))]
        burst: Option<u32>,
        /// Back to the node's default (PAYCC_CLIENT_RATE).
        #[arg(long)]
        default: bool,
        #[arg(long)]
        json: bool,
    },
    /// Send this client's KYC events to URL. The first time (or with --rotate-secret)
    /// a webhook secret is made and shown once; callbacks are signed with it.
    SetCallback {
        client_id: String,
        #[arg(long)]
        url: String,
        /// Replace the webhook secret; the old one stops signing at once.
        #[arg(long)]
        rotate_secret: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CallbacksCommand {
    /// List callback events, newest first.
    List {
        /// Only dead events and those whose last attempt failed.
        #[arg(long)]
        failed: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Send an event again now, with a fresh retry schedule (a running server sends it).
    Retry { event_id: String },
}

#[derive(Debug, Subcommand)]
enum MerchantCommand {
    /// Create a merchant under a client; prints its merchantCode.
    Create {
        #[arg(long = "client")]
        client_id: String,
        #[arg(long)]
        name: String,
        /// The code to use (up to 20 letters/digits); drawn as MIDnnnnnnnnn if omitted.
        #[arg(long)]
        code: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List merchants with their client and state.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop a merchant from opening or reading KYCs.
    Deactivate { code: String },
    /// Let a deactivated merchant work again.
    Activate { code: String },
}

#[derive(Debug, Subcommand)]
enum KycCommand {
    /// Show one KYC request, personal data masked.
    Show {
        kid: String,
        #[arg(long)]
        json: bool,
    },
    /// Give a verdict on a KYC: approve one awaiting approval (e.g. an identity mismatch
    /// under PAYCC_IDENTITY_MISMATCH=review), or reject any open one. The callback
    /// follows; a rejection's reason is what the status call reports.
    Decide {
        /// The KYC's kid.
        kid: String,
        /// `approve` (only one awaiting approval with a verified identity) or `reject`.
        #[arg(value_enum)]
        decision: DecisionArg,
        /// Why, kept with the KYC (a rejection's reason is shown to the partner).
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DecisionArg {
    Approve,
    Reject,
}

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go out whole; a bad setting is one line and a failure.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let rendered = e.to_string();
            let reason = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("paycc: {}", reason.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    init_logging(&cli.log);
    // A panic message may quote data; report only where it happened.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(location = %at, "panic");
    }));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("paycc: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paycc: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(log: &LogSettings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.log).unwrap_or_else(|_| {
        eprintln!(
            "paycc: PAYCC_LOG {:?} is not a valid filter; using \"info\"",
            log.log
        );
        tracing_subscriber::EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if log.log_json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

async fn execute(cli: Cli) -> Result<(), StartError> {
    let store = &cli.store;
    match cli.command {
        Command::Serve(serve) => serve_command(store, &serve).await,
        Command::Migrate => {
            app::admin_service(store).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Client(cmd) => client_command(app::admin_service(store).await?, cmd).await,
        Command::Callbacks(cmd) => callbacks_command(app::admin_service(store).await?, cmd).await,
        Command::Merchant(cmd) => merchant_command(app::admin_service(store).await?, cmd).await,
        Command::Kyc(cmd) => kyc_command(app::admin_service(store).await?, cmd).await,
        Command::Audit(cmd) => audit::run(app::admin_service(store).await?, cmd).await,
        Command::Purge { kid, json } => {
            let service = app::admin_service(store).await?;
            print_summary(service.admin.purge_kyc(kid.trim()).await, json)
        }
        Command::Keys(cmd) => keys::run(store, cmd).await,
    }
}

async fn kyc_command(service: Arc<Service>, cmd: KycCommand) -> Result<(), StartError> {
    let (summary, json) = match cmd {
        KycCommand::Show { kid, json } => (service.admin.show_kyc(kid.trim()).await, json),
        KycCommand::Decide {
            kid,
            decision,
            reason,
            json,
        } => {
            let decision = match decision {
                DecisionArg::Approve => Decision::Approve,
                DecisionArg::Reject => Decision::Reject,
            };
            (
                service
                    .admin
                    .decide_kyc(kid.trim(), decision, &reason)
                    .await,
                json,
            )
        }
    };
    print_summary(summary, json)
}

fn print_summary(summary: ServiceResult<KycSummary>, json: bool) -> Result<(), StartError> {
    let summary = summary.map_err(admin_error)?;
    emit(json, &summary, || {
        serde_json::to_string_pretty(&summary).expect("a summary serialises")
    })
}

async fn merchant_command(service: Arc<Service>, cmd: MerchantCommand) -> Result<(), StartError> {
    match cmd {
        MerchantCommand::Create {
            client_id,
            name,
            code,
            json,
        } => {
            let code = service
                .admin
                .create_merchant(&client_id, &name, code.as_deref())
                .await
                .map_err(admin_error)?;
            #[derive(Serialize)]
            #[serde(rename_all = "camelCase")]
            struct Created<'a> {
                merchant_code: &'a str,
            }
            emit(
                json,
                &Created {
                    merchant_code: &code,
                },
                || format!("merchantCode: {code}"),
            )
        }
        MerchantCommand::List { json } => {
            let merchants = service.admin.list_merchants().await.map_err(admin_error)?;
            #[derive(Serialize)]
            #[serde(rename_all = "camelCase")]
            struct Row<'a> {
                merchant_code: &'a str,
                name: &'a str,
                client_id: &'a str,
                active: bool,
            }
            let rows: Vec<Row> = merchants
                .iter()
                .map(|m| Row {
                    merchant_code: &m.code,
                    name: &m.name,
                    client_id: &m.client_id,
                    active: m.active,
                })
                .collect();
            emit(json, &rows, || {
                let mut out = format!(
                    "{:<20}  {:<8}  {:<16}  NAME",
                    "MERCHANT", "ACTIVE", "CLIENT"
                );
                for r in &rows {
                    out.push_str(&format!(
                        "\n{:<20}  {:<8}  {:<16}  {}",
                        r.merchant_code,
                        if r.active { "yes" } else { "no" },
                        r.client_id,
                        r.name
                    ));
                }
                out
            })
        }
        MerchantCommand::Deactivate { code } => {
            service
                .admin
                .set_merchant_active(&code, Switch::Off)
                .await
                .map_err(admin_error)?;
            println!("merchant {code} deactivated");
            Ok(())
        }
        MerchantCommand::Activate { code } => {
            service
                .admin
                .set_merchant_active(&code, Switch::On)
                .await
                .map_err(admin_error)?;
            println!("merchant {code} activated");
            Ok(())
        }
    }
}

async fn client_command(service: Arc<Service>, cmd: ClientCommand) -> Result<(), StartError> {
    let (creds, json) = match cmd {
        ClientCommand::Disable { client_id, json } => {
            return switch_client(&service, client_id.trim(), Switch::Off, json).await;
        }
        ClientCommand::Enable { client_id, json } => {
            return switch_client(&service, client_id.trim(), Switch::On, json).await;
        }
        ClientCommand::SetLimit {
            client_id,
            per_second,
            burst,
            json,
            ..
        } => {
            let limit = per_second.map(|per_second| RateLimit {
                per_second,
                burst: burst.unwrap_or(per_second.saturating_mul(2)),
            });
            return set_limit(&service, client_id.trim(), limit, json).await;
        }
        ClientCommand::Create { name, json } => (service.admin.create_client(&name).await, json),
        ClientCommand::RotateSecret { client_id, json } => {
            (service.admin.rotate_client_secret(&client_id).await, json)
        }
        ClientCommand::SetCallback {
            client_id,
            url,
            rotate_secret,
            json,
        } => {
            let setup = service
                .callbacks
                .set(client_id.trim(), &url, rotate_secret)
                .await
                .map_err(admin_error)?;
            return emit(json, &setup, || {
                let secret = match &setup.webhook_secret {
                    Some(s) => format!("webhookSecret: {s}\n(the secret is shown only this once)"),
                    None => "webhookSecret: unchanged".into(),
                };
                format!("callbackUrl:   {}\n{secret}", setup.callback_url)
            });
        }
    };
    let creds = creds.map_err(admin_error)?;
    emit(json, &creds, || {
        format!(
            "clientId:     {}\nclientSecret: {}\n(the secret is shown only this once)",
            creds.client_id, creds.client_secret
        )
    })
}

async fn set_limit(
    service: &Service,
    client_id: &str,
    limit: Option<RateLimit>,
    json: bool,
) -> Result<(), StartError> {
    service
        .admin
        .set_client_rate_limit(client_id, limit)
        .await
        .map_err(admin_error)?;
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Limited<'a> {
        client_id: &'a str,
        /// `null`: the node's default.
        per_second: Option<u32>,
        burst: Option<u32>,
    }
    let shown = Limited {
        client_id,
        per_second: limit.map(|l| l.per_second),
        burst: limit.map(|l| l.burst),
    };
    emit(json, &shown, || match limit {
        Some(l) => format!("client {client_id} limited to {l} per node"),
        None => format!("client {client_id} back to the default rate limit"),
    })
}

async fn switch_client(
    service: &Service,
    client_id: &str,
    to: Switch,
    json: bool,
) -> Result<(), StartError> {
    let active = to == Switch::On;
    service
        .admin
        .set_client_active(client_id, to)
        .await
        .map_err(admin_error)?;
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Switched<'a> {
        client_id: &'a str,
        active: bool,
    }
    emit(json, &Switched { client_id, active }, || {
        format!(
            "client {client_id} {}",
            if active { "enabled" } else { "disabled" }
        )
    })
}

async fn callbacks_command(service: Arc<Service>, cmd: CallbacksCommand) -> Result<(), StartError> {
    match cmd {
        CallbacksCommand::List {
            failed,
            limit,
            json,
        } => {
            let events = service
                .callbacks
                .list(
                    if failed {
                        CallbackFilter::Failed
                    } else {
                        CallbackFilter::All
                    },
                    i64::from(limit),
                )
                .await
                .map_err(admin_error)?;
            #[derive(Serialize)]
            #[serde(rename_all = "camelCase")]
            struct Row<'a> {
                event_id: &'a str,
                event: &'static str,
                kid: &'a str,
                state: &'static str,
                status: &'a str,
                attempts: i64,
                next_attempt_at: Option<String>,
                last_error: Option<&'a str>,
                created_at: String,
                delivered_at: Option<String>,
            }
            let rows: Vec<Row> = events
                .iter()
                .map(|e| Row {
                    event_id: &e.event_id,
                    event: KycEvent::on_entering(e.state).map_or("", KycEvent::name),
                    kid: &e.kid,
                    state: e.state.as_str(),
                    status: &e.status,
                    attempts: e.attempts,
                    next_attempt_at: (e.status == "pending").then(|| e.next_attempt_at.rfc3339()),
                    last_error: e.last_error.as_deref(),
                    created_at: e.created_at.rfc3339(),
                    delivered_at: e.delivered_at.map(UnixMs::rfc3339),
                })
                .collect();
            emit(json, &rows, || {
                let mut out = format!(
                    "{:<50}  {:<18}  {:<9}  {:>8}  {:<24}  LAST ERROR",
                    "EVENT", "EVENT TYPE", "STATUS", "ATTEMPTS", "NEXT ATTEMPT"
                );
                for r in &rows {
                    out.push_str(&format!(
                        "\n{:<50}  {:<18}  {:<9}  {:>8}  {:<24}  {}",
                        r.event_id,
                        r.event,
                        r.status,
                        r.attempts,
                        r.next_attempt_at.as_deref().unwrap_or("-"),
                        r.last_error.unwrap_or("-")
                    ));
                }
                out
            })
        }
        CallbacksCommand::Retry { event_id } => {
            service
                .callbacks
                .retry(&event_id)
                .await
                .map_err(admin_error)?;
            println!("callback {} queued again", event_id.trim());
            Ok(())
        }
    }
}

fn emit<T: Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce() -> String,
) -> Result<(), StartError> {
    if json {
        println!(
            "{}",
            serde_json::to_string(value).expect("command output serialises")
        );
    } else {
        println!("{}", text());
    }
    Ok(())
}

fn admin_error(e: ServiceError) -> StartError {
    match e {
        ServiceError::NotFound(m) => StartError(m.into()),
        ServiceError::Refused(m) | ServiceError::Conflict(m) => StartError(m),
        other => StartError(other.to_string()),
    }
}

async fn serve_command(store: &StoreSettings, serve: &ServeSettings) -> Result<(), StartError> {
    let server = Server::bind(store, serve).await?;
    let service = server.service();
    let base = server.public_url().to_owned();
    let simulated = service.provider_offers().simulated_journey;
    if simulated && service.admin.is_empty().await.map_err(admin_error)? {
        print_demo(&service, &base).await?;
    }
    tracing::info!(addr = %server.local_addr(), public_url = %base, provider = service.provider_name(), "paycc listening");
    if simulated {
        tracing::warn!(
            "SANDBOX: no identity is verified; testers decide every KYC, and every answer carries `Paycc-Environment: sandbox`"
        );
    }
    println!("paycc listening on http://{}", server.local_addr());
    println!("paycc ops listening on http://{}", server.ops_addr());
    server
        .run(app::shutdown_signal())
        .await
        .map_err(|e| StartError(format!("server error: {e}")))
}

/// On a fresh sandbox install: a demo client and merchant, and a curl that works as is.
async fn print_demo(service: &Service, base: &str) -> Result<(), StartError> {
    let creds = service
        .admin
        .create_client("Demo partner")
        .await
        .map_err(admin_error)?;
    let code = service
        .admin
        .create_merchant(&creds.client_id, "Demo merchant", None)
        .await
        .map_err(admin_error)?;
    println!(
        "\nA fresh database: created a demo API client and merchant (the secret is shown only this once).\n\
         \n  clientId:     {id}\n  clientSecret: {secret}\n  merchantCode: {code}\n\
         \nOpen a KYC link:\n\
         \ncurl -sS {base}/v1/service/paycc/init/kyc \\\n  -u '{id}:{secret}' \\\n  -H 'Content-Type: application/json' \\\n  \
         -d '{{\"pan\":\"ENGPK1234L\",\"name\":\"Sanjay Kumar\",\"email\":\"sanjay@example.com\",\"mobile\":\"6393712345\",\"merchantCode\":\"{code}\"}}'\n",
        id = creds.client_id,
        secret = creds.client_secret,
    );
    Ok(())
}
