//! The figures: printed, and written to BENCHMARKS.md between markers so the
//! hand-written notes around them stay.

use super::overload::Overload;
use super::slow::{PACED_RATE, PROVIDER_DELAY, SlowRun};
use super::wrk::{Run, Workload};
use std::fmt::Write;
use std::path::Path;

const START: &str = "<!-- bench:start -->";
const END: &str = "<!-- bench:end -->";

pub struct BackendRuns {
    pub runs: Vec<(Workload, Run)>,
    pub peak_rss_kib: u64,
    pub completions_per_s: f64,
}

pub struct Report {
    connections: u32,
    seconds: u64,
    backends: Vec<(&'static str, BackendRuns)>,
    floor: Vec<(Workload, Run)>,
    slow: Option<SlowRun>,
    overload: Vec<Overload>,
}

impl Report {
    pub fn new(connections: u32, seconds: u64) -> Self {
        Self {
            connections,
            seconds,
            backends: Vec::new(),
            floor: Vec::new(),
            slow: None,
            overload: Vec::new(),
        }
    }

    pub fn backend(&mut self, name: &'static str, runs: BackendRuns) {
        self.backends.push((name, runs));
    }

    pub fn floor(&mut self, runs: Vec<(Workload, Run)>) {
        self.floor = runs;
    }

    pub fn slow(&mut self, run: SlowRun) {
        self.slow = Some(run);
    }

    pub fn overload(&mut self, runs: Vec<Overload>) {
        self.overload = runs;
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let date = time::OffsetDateTime::now_utc().date();
        let _ = writeln!(
            s,
            "Run {date} on {} ({} cores, {} GiB), `cargo bench --bench load`: wrk, {} connections, \
             2 threads, {} s per workload, closed loop; paycc release build, sandbox provider, \
             a fresh database each; wrk, paycc and the floor share the machine.\n",
            machine_name(),
            cores(),
            memory_gib(),
            self.connections,
            self.seconds
        );
        let _ = writeln!(
            s,
            "| database | workload | req/s | floor req/s | paycc ÷ floor | p50 | p90 | p99 | errors |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
        for (name, b) in &self.backends {
            for (w, r) in &b.runs {
                let floor = self
                    .floor
                    .iter()
                    .find(|(fw, _)| fw.name() == w.name())
                    .map(|(_, f)| f.rps());
                let _ = writeln!(
                    s,
                    "| {name} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
                    w.name(),
                    r.rps(),
                    floor.map_or("–".into(), |f| format!("{f:.0}")),
                    floor.map_or("–".into(), |f| format!("{:.2}", r.rps() / f)),
                    ms(r.p50_us),
                    ms(r.p90_us),
                    ms(r.p99_us),
                    r.errors
                );
            }
        }
        let _ = writeln!(s);
        for (name, b) in &self.backends {
            let _ = writeln!(
                s,
                "- paycc peak RSS on {name} (all three workloads): {:.1} MiB",
                b.peak_rss_kib as f64 / 1024.0
            );
        }
        for (name, b) in &self.backends {
            let _ = writeln!(
                s,
                "- Sandbox completions on {name} (the {} approved KYCs the status workload reads, \
                 made before it through the API, {} at a time, one reqwest client): {:.0}/s",
                super::APPROVED,
                super::paycc::IN_FLIGHT,
                b.completions_per_s
            );
        }
        if let Some(slow) = &self.slow {
            let (burst, paced) = (&slow.burst, &slow.paced);
            let _ = writeln!(
                s,
                "- Slow provider (a Digio fake answering each create after {} ms, SQLite; paycc's added \
                 latency is each init's total time − {} ms):\n  \
                 - {} inits sent at the same instant: {} errors, all answered within {:.2} s; added p50 {:.1} ms, \
                 p99 {:.1} ms; paycc CPU {} µs per init ({} inits × that on {} cores is {:.2} s before the last can be answered).\n  \
                 - {} inits at {} per second (~{} in flight): {} errors; added p50 {:.1} ms, p99 {:.1} ms; paycc CPU {} µs per init.",
                PROVIDER_DELAY.as_millis(),
                PROVIDER_DELAY.as_millis(),
                burst.sent,
                burst.errors,
                burst.wall.as_secs_f64(),
                burst.added_p50.as_secs_f64() * 1000.0,
                burst.added_p99.as_secs_f64() * 1000.0,
                burst.cpu_per_init.as_micros(),
                burst.sent,
                cores(),
                (burst.cpu_per_init * burst.sent as u32).as_secs_f64() / cores() as f64,
                paced.sent,
                PACED_RATE,
                PACED_RATE as u128 * PROVIDER_DELAY.as_millis() / 1000,
                paced.errors,
                paced.added_p50.as_secs_f64() * 1000.0,
                paced.added_p99.as_secs_f64() * 1000.0,
                paced.cpu_per_init.as_micros(),
            );
        }
        if !self.overload.is_empty() {
            let _ = writeln!(
                s,
                "- Overload (SQLite, default limits): paycc pinned to one core and the load \
                 generator (raw HTTP/1.1 keep-alive) to the other; capacity closed loop with 64 \
                 connections, then open loop at twice that over 4,096 connections, {} s each, \
                 latency from each request's scheduled moment:\n\n  \
                 | workload | capacity/s | offered/s | goodput/s | goodput ÷ capacity | admitted p99 | refused | refused p99 | errors | generator busy |\n  \
                 |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
                self.seconds
            );
            for o in &self.overload {
                let _ = writeln!(
                    s,
                    "  | {:?} | {:.0} | {:.0} | {:.0} | {:.2} | {:.1} ms | {} | {:.1} ms | {} | {:.0}% |",
                    o.kind,
                    o.capacity_rps,
                    o.offered_rps,
                    o.goodput_rps,
                    o.goodput_rps / o.capacity_rps,
                    o.admitted_p99.as_secs_f64() * 1000.0,
                    o.refused,
                    o.refused_p99.as_secs_f64() * 1000.0,
                    o.errors,
                    o.generator_busy * 100.0
                );
            }
        }
        s
    }

    /// Replaces the part between the markers (or appends it) in `path`.
    pub fn write(&self, path: &Path) {
        let block = format!("{START}\n{}{END}", self.render());
        let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n\n".into());
        let new = match (old.find(START), old.find(END)) {
            (Some(a), Some(b)) if b > a => format!("{}{block}{}", &old[..a], &old[b + END.len()..]),
            _ => format!("{}\n{block}\n", old.trim_end()),
        };
        std::fs::write(path, new).expect("BENCHMARKS.md is written");
        eprintln!("figures written to {}", path.display());
    }
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn memory_gib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| (kib + 512 * 1024) / (1024 * 1024))
}

fn machine_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "an unknown CPU".into())
}
