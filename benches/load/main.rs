//! The load benchmark: `cargo bench --bench load`. Starts paycc (release build) with the
//! sandbox provider on a fresh database, drives init, status and a 1:4 mix with wrk,
//! runs the floor server on the same requests, offers twice the sustained rate open loop
//! (overload), repeats on PostgreSQL when reachable, puts paycc behind a slow provider,
//! and writes the figures to BENCHMARKS.md.

#[path = "../../tests/common/fake_digio.rs"]
#[allow(dead_code)]
mod fake_digio;
mod floor;
mod overload;
mod paycc;
mod report;
mod slow;
mod wrk;

use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use wrk::Workload;

#[derive(Parser)]
#[command(about = "paycc load benchmark (writes BENCHMARKS.md)")]
struct Args {
    /// Seconds each workload runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Connections wrk keeps open (closed loop).
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// A PostgreSQL server paycc may create a database on; skipped when unreachable.
    #[arg(
        long,
        env = "PAYCC_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres: String,
    /// Skip PostgreSQL.
    #[arg(long)]
    no_postgres: bool,
    /// Inits sent to paycc in front of the slow provider: this many at the same instant,
    /// then as many again at a steady 500 per second.
    #[arg(long, default_value_t = 2000)]
    slow_in_flight: usize,
    /// Compare with another paycc binary instead of the usual run: init and status on
    /// SQLite, that binary and this build in turn, `--rounds` times each (the figures are
    /// printed, not written).
    #[arg(long, value_name = "PAYCC_BINARY")]
    ab: Option<PathBuf>,
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// PAYCC_MAX_IN_FLIGHT for the overload run (paycc's default when unset).
    #[arg(long)]
    max_in_flight: Option<u32>,
    /// Run only this part (its figures alone are written, so point --out elsewhere).
    #[arg(long, value_enum)]
    only: Option<Part>,
    /// Where to write the figures.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// With `--ab`: compare on PostgreSQL (a fresh database each run) instead of SQLite.
    #[arg(long, requires = "ab")]
    ab_postgres: bool,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The parts that stand alone.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    Overload,
    Slow,
}

/// Approved KYCs that the status workload reads.
const APPROVED: usize = 1000;

fn main() {
    if std::env::var_os(floor::ROLE).is_some() {
        return floor::serve();
    }
    let args = Args::parse();
    wrk::ensure_installed();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    paycc::install_tls();
    let mut report = report::Report::new(args.connections, args.seconds);
    if let Some(other) = &args.ab {
        return runtime.block_on(compare(other, &args));
    }

    let dir = tempfile::tempdir().unwrap();
    if args.only.is_none() {
        let sqlite = paycc::sqlite(&dir.path().join("sqlite"));
        let (results, sizes) = runtime.block_on(measure(&sqlite, &args, dir.path()));
        report.backend("SQLite", results);
        report.floor(run_floor(&args, dir.path(), sizes));
    }
    if args.only.is_none_or(|p| p == Part::Overload) {
        let overload_dep = paycc::sqlite(&dir.path().join("overload"));
        report.overload(runtime.block_on(overload::run(
            &overload_dep,
            args.seconds,
            args.max_in_flight,
        )));
    }
    if args.only.is_none() && !args.no_postgres {
        match runtime.block_on(paycc::fresh_postgres_database(&args.postgres)) {
            Some(db) => {
                let pg = paycc::postgres(&dir.path().join("postgres"), &db.url);
                let (results, _) = runtime.block_on(measure(&pg, &args, dir.path()));
                report.backend("PostgreSQL", results);
                runtime.block_on(db.drop());
            }
            None => eprintln!("PostgreSQL not reachable at {}; skipped", args.postgres),
        }
    }
    if args.only.is_none_or(|p| p == Part::Slow) {
        let slow_dep = paycc::sqlite(&dir.path().join("slow"));
        report.slow(runtime.block_on(slow::run(&slow_dep, args.slow_in_flight)));
    }
    println!("{}", report.render());
    report.write(&args.out);
}

/// Init and status with `other` and with this build in turn, each on a fresh SQLite
/// (or, with `--ab-postgres`, PostgreSQL) database; prints each round and the ratio of
/// the medians.
async fn compare(other: &Path, args: &Args) {
    let dir = tempfile::tempdir().unwrap();
    let mut rates: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for round in 0..args.rounds {
        for (side, label) in ["before", "after"].iter().enumerate() {
            let tmp = dir.path().join(format!("{label}-{round}"));
            let db = if args.ab_postgres {
                let db = paycc::fresh_postgres_database(&args.postgres).await;
                Some(db.expect("--ab-postgres needs a reachable PostgreSQL"))
            } else {
                None
            };
            let mut dep = match &db {
                Some(db) => paycc::postgres(&tmp, &db.url),
                None => paycc::sqlite(&tmp),
            };
            if side == 0 {
                dep.bin = other.to_owned();
            }
            let (results, _) = measure(&dep, args, &tmp).await;
            if let Some(db) = db {
                db.drop().await;
            }
            let rate = |w: &str| {
                results
                    .runs
                    .iter()
                    .find(|(workload, _)| workload.name() == w)
                    .map_or(0.0, |(_, run)| run.rps())
            };
            println!(
                "round {round} {label:<6}  init {:>8.0}/s  status {:>8.0}/s  sandbox completions {:>7.0}/s  peak RSS {:>5.1} MiB",
                rate("init"),
                rate("status"),
                results.completions_per_s,
                results.peak_rss_kib as f64 / 1024.0
            );
            rates[side].push((rate("init"), rate("status")));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [before, after] = rates.map(|runs| {
        let (mut init, mut status): (Vec<f64>, Vec<f64>) = runs.into_iter().unzip();
        (median(&mut init), median(&mut status))
    });
    println!(
        "median init {:.0} -> {:.0} ({:+.1}%), status {:.0} -> {:.0} ({:+.1}%)",
        before.0,
        after.0,
        (after.0 / before.0 - 1.0) * 100.0,
        before.1,
        after.1,
        (after.1 / before.1 - 1.0) * 100.0
    );
}

/// Runs the three workloads against a fresh paycc; returns the runs with paycc's peak
/// RSS, and the sizes of its init and status replies (the floor answers the same).
async fn measure(
    dep: &paycc::Deployment,
    args: &Args,
    tmp: &Path,
) -> (report::BackendRuns, (usize, usize)) {
    let creds = dep.credentials();
    let server = dep.serve(&[]);
    let approved = paycc::approved_kycs(&server.base, &creds, APPROVED).await;
    let kids_file = tmp.join("kids.txt");
    std::fs::write(&kids_file, approved.kids.join("\n")).unwrap();
    let target = wrk::Target {
        base: &server.base,
        auth: &creds.auth,
        merchant: &creds.merchant,
        kids_file: &kids_file,
    };
    let runs = workloads(tmp, &target, args, "paycc");
    let results = report::BackendRuns {
        runs,
        peak_rss_kib: server.peak_rss_kib(),
        completions_per_s: approved.completions_per_s,
    };
    (results, approved.sizes)
}

/// The floor server on the same three workloads.
fn run_floor(
    args: &Args,
    tmp: &Path,
    (init_bytes, status_bytes): (usize, usize),
) -> Vec<(Workload, wrk::Run)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(floor::ROLE, "1")
        .env(floor::INIT_BYTES, init_bytes.to_string())
        .env(floor::STATUS_BYTES, status_bytes.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the floor starts");
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let base = format!(
        "http://{}",
        line.trim()
            .strip_prefix("floor listening on ")
            .expect("the floor's address")
    );
    let kids_file = tmp.join("kids.txt");
    let target = wrk::Target {
        base: &base,
        auth: "Basic eDp5",
        merchant: "MID000000001",
        kids_file: &kids_file,
    };
    let runs = workloads(tmp, &target, args, "floor");
    let _ = child.kill();
    let _ = child.wait();
    runs
}

/// A 2 s warm-up (not reported), then init, status and mixed for `args.seconds` each;
/// every run numbers its new customers from its own offset, so none is a repeat.
fn workloads(
    tmp: &Path,
    target: &wrk::Target<'_>,
    args: &Args,
    label: &str,
) -> Vec<(Workload, wrk::Run)> {
    let warm_up = Duration::from_secs(2);
    wrk::run(tmp, target, Workload::Init, args.connections, warm_up, 0);
    let duration = Duration::from_secs(args.seconds);
    [Workload::Init, Workload::Status, Workload::Mixed]
        .into_iter()
        .enumerate()
        .map(|(i, workload)| {
            let offset = (i as u64 + 1) * 1_000_000_000;
            let run = wrk::run(tmp, target, workload, args.connections, duration, offset);
            eprintln!(
                "{label} {:<10} {:>9.0} req/s  p99 {} µs  errors {}",
                workload.name(),
                run.rps(),
                run.p99_us,
                run.errors
            );
            (workload, run)
        })
        .collect()
}
