//! Drives load with wrk (closed loop: each connection sends its next request when the
//! last one is answered) through Lua scripts that make every init a new customer, and
//! reads the results wrk's `done` hook prints as JSON.

use serde::Deserialize;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What one run measured.
#[derive(Debug, Clone, Deserialize)]
pub struct Run {
    pub requests: u64,
    pub duration_us: u64,
    /// Non-2xx answers plus connect, read, write and timeout errors.
    pub errors: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
}

impl Run {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / (self.duration_us as f64 / 1e6)
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Workload {
    /// Every request a new customer.
    Init,
    /// Reads of approved KYCs, round robin.
    Status,
    /// One init to four status reads.
    Mixed,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Init => "init",
            Workload::Status => "status",
            Workload::Mixed => "mixed 1:4",
        }
    }
}

/// Shared by every workload: the request makers and the JSON report.
const SCRIPT: &str = r#"
local auth, merchant, kids_file, mode, offset = nil, nil, nil, nil, 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  auth, merchant, kids_file, mode, offset = args[1], args[2], args[3], args[4], tonumber(args[5])
  kids = {}
  for line in io.lines(kids_file) do kids[#kids + 1] = line end
  n, k = 0, tid * 7919
end
local L = "ABCDEFGHIJKLMNOQRSTUVWXYZ"
local function letter(i) return string.sub(L, i % 25 + 1, i % 25 + 1) end
-- A PAN no other request of this run (or of earlier runs, by offset) uses.
local function pan(i)
  local d = i % 10000
  local r = math.floor(i / 10000)
  return letter(r) .. letter(math.floor(r / 25)) .. letter(math.floor(r / 625)) .. "P" ..
    letter(math.floor(r / 15625)) .. string.format("%04d", d) .. letter(math.floor(r / 390625))
end
local function init_request()
  n = n + 1
  local i = offset + n * 64 + tid
  local body = '{"pan":"' .. pan(i) .. '","name":"Asha Rao","email":"asha.rao@example.in","mobile":"98' ..
    string.format("%08d", i % 100000000) .. '","merchantCode":"' .. merchant .. '"}'
  return wrk.format("POST", "/v1/service/paycc/init/kyc",
    {["Authorization"] = auth, ["Content-Type"] = "application/json"}, body)
end
local function status_request()
  k = k + 1
  return wrk.format("GET", "/v1/service/paycc/kyc/status/" .. kids[k % #kids + 1], {["Authorization"] = auth})
end
function request()
  if mode == "init" then return init_request() end
  if mode == "status" then return status_request() end
  if (n + k) % 5 == 0 then return init_request() end
  return status_request()
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"#;

/// Makes sure wrk is there, installing Debian's package when it is not.
pub fn ensure_installed() {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return;
    }
    eprintln!("wrk not found; installing it from the Debian archive");
    let ok = Command::new("sh")
        .arg("-c")
        .arg("apt-get install -y wrk >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y wrk >/dev/null)")
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "could not install wrk (apt-get install wrk needs root)");
}

pub struct Target<'a> {
    pub base: &'a str,
    pub auth: &'a str,
    pub merchant: &'a str,
    pub kids_file: &'a Path,
}

/// Runs one workload for `seconds` with `connections` over 2 wrk threads.
pub fn run(
    dir: &Path,
    target: &Target<'_>,
    workload: Workload,
    connections: u32,
    duration: Duration,
    offset: u64,
) -> Run {
    let script = dir.join("paycc.lua");
    std::fs::write(&script, SCRIPT).expect("the wrk script is written");
    let mode = match workload {
        Workload::Init => "init",
        Workload::Status => "status",
        Workload::Mixed => "mixed",
    };
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{}s", duration.as_secs()),
        ])
        .args(["--timeout", "5s", "-s"])
        .arg(&script)
        .arg(target.base)
        .arg("--")
        .args([target.auth, target.merchant])
        .arg(target.kids_file)
        .args([mode, &offset.to_string()])
        .output()
        .expect("wrk runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("BENCH "))
        .unwrap_or_else(|| {
            panic!(
                "wrk printed no result: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    serde_json::from_str(line).expect("the result parses")
}
