//! lure's performance benchmark (issue 7): the release `lure` binary against a fake
//! Runtime API on loopback, with echo handlers in Lua and Rhai, next to a native Rust
//! echo loop on the same transport (the floor). Prints every figure, each lure figure
//! as a ratio to the floor and the issue's target for it. A measurement, not a test:
//! a missed target is reported, never a failure.
//!
//! ```sh
//! cargo bench --bench runtime                     # about 35 s once built
//! LURE_BENCH_QUICK=1 cargo bench --bench runtime   # about 5 s (or `-- --quick`)
//! ```
//!
//! Without `--bench` (as `cargo test --benches` runs it) it only checks, in a second,
//! that every runtime starts and echoes. `-- --drive ...` (see [`drive`]) runs one
//! runtime under a profiler.

// The parts live in benches/runtime/, where cargo does not take them for benches.
#[path = "runtime/events.rs"]
mod events;
#[path = "runtime/fake_api.rs"]
mod fake_api;
#[path = "runtime/native.rs"]
mod native;
#[path = "runtime/upstream.rs"]
mod upstream;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use fake_api::{FakeApi, Run};

/// How much to measure.
struct Plan {
    name: &'static str,
    /// Only check that every runtime starts and echoes; print no figures.
    smoke: bool,
    /// Spawns per runtime for cold ready.
    spawns: usize,
    /// Measured rounds per runtime and event, the runtimes taking turns, so that a
    /// burst of load on the machine falls on all of them alike.
    rounds: usize,
    round_time: Duration,
    /// At least this many invocations per round, for the round trip percentiles.
    round_count: [usize; 2],
    warmup_count: [usize; 2],
}

impl Plan {
    fn from_args(args: &[String]) -> Plan {
        let quick = args.iter().any(|a| a == "--quick")
            || std::env::var("LURE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        if !args.iter().any(|a| a == "--bench") {
            Plan {
                name: "smoke",
                smoke: true,
                spawns: 1,
                rounds: 1,
                round_time: Duration::ZERO,
                round_count: [20, 2],
                warmup_count: [1, 1],
            }
        } else if quick {
            Plan {
                name: "quick",
                smoke: false,
                spawns: 5,
                rounds: 2,
                round_time: Duration::from_millis(300),
                round_count: [100, 10],
                warmup_count: [200, 5],
            }
        } else {
            Plan {
                name: "full",
                smoke: false,
                spawns: 20,
                rounds: 5,
                round_time: Duration::from_secs(1),
                round_count: [500, 20],
                warmup_count: [1000, 20],
            }
        }
    }
}

/// A runtime under test: how to start it in runtime mode.
struct Runtime {
    name: &'static str,
    program: PathBuf,
    /// The handler: `echo` or `stdlib` (benches/handlers/, or the native floor's).
    workload: &'static str,
    /// `LAMBDA_TASK_ROOT`; none for the native floor.
    task_root: Option<PathBuf>,
    /// More environment (the upstream's URL and CA for the `http` workloads).
    env: Vec<(&'static str, String)>,
}

/// Lua, Rhai and the native floor, each running the handler `workload`.
fn runtimes(workload: &'static str) -> [Runtime; 3] {
    let handlers = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/handlers");
    let lure = PathBuf::from(env!("CARGO_BIN_EXE_lure"));
    [
        Runtime {
            name: "lure-lua",
            program: lure.clone(),
            workload,
            task_root: Some(handlers.join("lua")),
            env: Vec::new(),
        },
        Runtime {
            name: "lure-rhai",
            program: lure,
            workload,
            task_root: Some(handlers.join("rhai")),
            env: Vec::new(),
        },
        Runtime {
            name: "native",
            program: std::env::current_exe().expect("the bench's own executable"),
            workload,
            task_root: None,
            env: Vec::new(),
        },
    ]
}

/// A runtime process with its own fake API, killed when dropped.
struct Process {
    child: Child,
    api: FakeApi,
}

impl Process {
    /// Spawns `runtime` (under `wrapper`, a command such as `perf record`, if not
    /// empty) and waits for its first `/next`; also returns the time from spawn to
    /// that `/next` (cold ready).
    fn start(runtime: &Runtime, wrapper: &[String]) -> (Process, Duration) {
        let api = FakeApi::start();
        let mut command = match wrapper.split_first() {
            Some((tool, args)) => {
                let mut command = Command::new(tool);
                command.args(args).arg(&runtime.program);
                command
            }
            None => Command::new(&runtime.program),
        };
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "en_US.UTF-8")
            .env("TZ", ":UTC")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "lure-bench")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/lure-bench")
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2024/05/01/[$LATEST]0123456789abcdef0123456789abcdef",
            )
            .envs(runtime.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // Profilers keep their caches under $HOME.
        if let Some(home) = std::env::var_os("HOME").filter(|_| !wrapper.is_empty()) {
            command.env("HOME", home);
        }
        match &runtime.task_root {
            Some(task_root) => {
                command
                    .env("_HANDLER", format!("{}.handler", runtime.workload))
                    .env("LAMBDA_TASK_ROOT", task_root)
                    .current_dir(task_root);
            }
            None => {
                command.env(native::MARKER, runtime.workload);
            }
        }
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", runtime.name));
        let Some(first_next) = api.first_next(Duration::from_secs(20)) else {
            let status = child.try_wait().ok().flatten();
            let _ = child.kill();
            panic!(
                "{} never asked for an invocation (exit status: {status:?})",
                runtime.name
            );
        };
        (Process { child, api }, first_next - spawned)
    }

    /// A line of `/proc/PID/status`, in kB.
    fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/PID/status of a running runtime");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }

    /// User + system CPU time the process has used so far.
    fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("/proc/PID/stat of a running runtime");
        // After the command name: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat[stat.rfind(')').expect("a stat line") + 1..]
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_secs_f64(ticks as f64 / per_second as f64)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the warm phase measured for one runtime and one event.
#[derive(Default)]
struct Warm {
    round_throughputs: Vec<f64>,
    round_trips: Vec<Duration>,
    cpu: Duration,
}

impl Warm {
    fn throughput(&self) -> f64 {
        median(&self.round_throughputs)
    }

    /// The median over rounds of this runtime's throughput over the native floor's
    /// in the same round: rounds run back to back, so a change in the machine's load
    /// mostly cancels out.
    fn throughput_ratio(&self, native: &Warm) -> f64 {
        let ratios: Vec<f64> = self
            .round_throughputs
            .iter()
            .zip(&native.round_throughputs)
            .map(|(own, floor)| own / floor)
            .collect();
        median(&ratios)
    }

    /// Nearest-rank percentile of the round trips, in seconds.
    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.round_trips.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64()
    }

    fn cpu_per_invocation(&self) -> f64 {
        self.cpu.as_secs_f64() / self.round_trips.len() as f64
    }
}

struct Event {
    label: &'static str,
    bytes: Vec<u8>,
}

fn main() -> ExitCode {
    if std::env::var_os(native::MARKER).is_some() {
        return native::main();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--drive") {
        // cargo adds `--bench` after the arguments given to it.
        let rest: Vec<String> = args[at + 1..]
            .iter()
            .filter(|a| *a != "--bench")
            .cloned()
            .collect();
        return drive(&rest);
    }
    let plan = Plan::from_args(&args);
    let idle = runtimes("aws_idle");
    let runtimes = runtimes("echo");
    let events = [
        Event {
            label: "1 KB",
            bytes: events::api_gateway_1k(),
        },
        Event {
            label: "256 KB",
            bytes: events::order_batch(256 * 1024),
        },
    ];
    let load_before = load_average();
    let started = Instant::now();

    // The echo, and (taking turns with it) a handler that makes an `aws` client
    // it never calls; the native floor has only the echo.
    let mut cold: [Vec<f64>; 3] = Default::default();
    let mut cold_idle: [Vec<f64>; 3] = Default::default();
    for _ in 0..plan.spawns {
        for (i, runtime) in runtimes.iter().enumerate() {
            let (process, ready) = Process::start(runtime, &[]);
            drop(process);
            cold[i].push(ready.as_secs_f64());
            if i < 2 {
                let (process, ready) = Process::start(&idle[i], &[]);
                drop(process);
                cold_idle[i].push(ready.as_secs_f64());
            }
        }
    }
    cold_idle[2] = cold[2].clone();

    let processes: Vec<Process> = runtimes.iter().map(|r| Process::start(r, &[]).0).collect();
    let mut warm: [[Warm; 3]; 2] = Default::default();
    let mut peak_rss_1k = [0; 3];
    for (e, event) in events.iter().enumerate() {
        let expected: Value = serde_json::from_slice(&event.bytes).expect("the event is JSON");
        warm[e] = measure(&plan, e, &runtimes, &processes, &event.bytes, &expected);
        if e == 0 {
            for (i, process) in processes.iter().enumerate() {
                peak_rss_1k[i] = process.status_kb("VmHWM");
            }
        }
    }
    let peak_rss_all: Vec<u64> = processes.iter().map(|p| p.status_kb("VmHWM")).collect();
    drop(processes);
    let stdlib = stdlib_workload(&plan, &events[0].bytes);
    let http = http_workload(&plan, &events[0].bytes);
    let https = https_calls(&plan, &events[0].bytes);
    let aws = aws_workload(&plan, &events[0].bytes);
    let streams = stream_workload(&plan, &events[0].bytes);
    let workers = workers_workload(&plan, &events[0].bytes);
    if plan.smoke {
        println!(
            "runtime bench, smoke run (no --bench): lure-lua, lure-rhai and native start, echo \
             and run the stdlib handler; `cargo bench --bench runtime` measures"
        );
        return ExitCode::SUCCESS;
    }

    println!(
        "lure runtime benchmark, {} ({:.0?})",
        plan.name,
        started.elapsed()
    );
    println!(
        "machine: {} CPUs; load average {load_before} before, {} after",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    println!(
        "events: {} = {} bytes (API Gateway HTTP API request), {} = {} bytes (EventBridge order batch)",
        events[0].label,
        events[0].bytes.len(),
        events[1].label,
        events[1].bytes.len()
    );
    println!(
        "cold ready: median of {} spawns each; throughput: median of {} rounds of >= {:?}; \
         round trips over all rounds ({} / {} invocations for lua at 1 KB / 256 KB)",
        plan.spawns,
        plan.rounds,
        plan.round_time,
        warm[0][0].round_trips.len(),
        warm[1][0].round_trips.len()
    );
    println!();
    let rows = [
        Row::new("cold ready (spawn → first /next), median", Unit::Millis)
            .values(cold.each_ref().map(|c| median(c)))
            .targets(Target::RatioAtMost(1.5), Target::RatioAtMost(2.0)),
        Row::new("cold ready, fastest spawn", Unit::Millis).values(
            cold.each_ref()
                .map(|c| c.iter().copied().fold(f64::INFINITY, f64::min)),
        ),
        Row::new(
            "cold ready, handler with an unused aws client",
            Unit::Millis,
        )
        .values(cold_idle.each_ref().map(|c| median(c))),
        Row::new("1 KB throughput", Unit::PerSecond)
            .values(warm[0].each_ref().map(Warm::throughput))
            .paired_ratios(&warm[0])
            .targets(Target::RatioAtLeast(0.9), Target::RatioAtLeast(0.75)),
        Row::new("1 KB round trip p50", Unit::Micros)
            .values(warm[0].each_ref().map(|w| w.percentile(50.0))),
        Row::new("1 KB round trip p99", Unit::Micros)
            .values(warm[0].each_ref().map(|w| w.percentile(99.0))),
        Row::new("1 KB CPU per invocation", Unit::Micros)
            .values(warm[0].each_ref().map(Warm::cpu_per_invocation)),
        Row::new("256 KB throughput", Unit::PerSecond)
            .values(warm[1].each_ref().map(Warm::throughput))
            .paired_ratios(&warm[1])
            .targets(Target::RatioAtLeast(0.9), Target::RatioAtLeast(0.6)),
        Row::new("256 KB round trip p50", Unit::Micros)
            .values(warm[1].each_ref().map(|w| w.percentile(50.0))),
        Row::new("256 KB round trip p99", Unit::Micros)
            .values(warm[1].each_ref().map(|w| w.percentile(99.0))),
        Row::new("256 KB CPU per invocation", Unit::Micros)
            .values(warm[1].each_ref().map(Warm::cpu_per_invocation)),
        Row::new("peak RSS after 1 KB (VmHWM)", Unit::Megabytes)
            .values(peak_rss_1k.map(|kb| kb as f64 / 1024.0))
            .targets(Target::AtMost(8.0), Target::AtMost(8.0)),
        Row::new("peak RSS after 256 KB", Unit::Megabytes)
            .values([0, 1, 2].map(|i| peak_rss_all[i] as f64 / 1024.0)),
        Row::new("1 KB stdlib handler throughput", Unit::PerSecond)
            .values(stdlib.each_ref().map(Warm::throughput))
            .paired_ratios(&stdlib),
        Row::new("1 KB stdlib handler round trip p50", Unit::Micros)
            .values(stdlib.each_ref().map(|w| w.percentile(50.0))),
        Row::new("1 KB stdlib handler CPU per invocation", Unit::Micros)
            .values(stdlib.each_ref().map(Warm::cpu_per_invocation)),
        Row::new(
            "http: one loopback GET per invocation, throughput",
            Unit::PerSecond,
        )
        .values(http.each_ref().map(Warm::throughput))
        .paired_ratios(&http),
        Row::new("http: round trip p50", Unit::Micros)
            .values(http.each_ref().map(|w| w.percentile(50.0))),
        Row::new("http: CPU per invocation", Unit::Micros)
            .values(http.each_ref().map(Warm::cpu_per_invocation)),
        Row::new(
            "https: first call (TLS set-up, handshake), median",
            Unit::Micros,
        )
        .values(https.each_ref().map(|h| median(&h.first))),
        Row::new("https: reused connection, round trip p50", Unit::Micros)
            .values(https.each_ref().map(|h| median(&h.reused))),
        Row::new("aws: spawn → first GetItem answered, median", Unit::Millis)
            .values(aws.first.each_ref().map(|f| median(f))),
        Row::new(
            "aws: one GetItem per invocation, throughput",
            Unit::PerSecond,
        )
        .values(aws.warm.each_ref().map(Warm::throughput))
        .paired_ratios(&aws.warm),
        Row::new("aws: GetItem round trip p50", Unit::Micros)
            .values(aws.warm.each_ref().map(|w| w.percentile(50.0))),
        Row::new("aws: CPU per invocation", Unit::Micros)
            .values(aws.warm.each_ref().map(Warm::cpu_per_invocation)),
    ];
    print_table(&rows);
    println!();
    print_streams(&streams);
    println!();
    print_workers(&workers);
    println!();
    let signing = native::aws_request_cost(10_000);
    println!(
        "aws: encoding and signing one GetItem takes {:.1} µs (lure's signer, 10,000 in a loop): \
         {:.0}% of lure-lua's GetItem round trip p50",
        signing.as_secs_f64() * 1e6,
        100.0 * signing.as_secs_f64() / aws.warm[0].percentile(50.0)
    );
    println!(
        "Throughput ratios are the median of per-round ratios (each lure round next to a \
         native one).\nCPU per invocation is the runtime process's user + system time \
         (10 ms ticks) over the measured invocations; RSS targets are absolute."
    );
    ExitCode::SUCCESS
}

/// `--drive lua|rhai|native 1|256 COUNT [WRAPPER...]`: serves COUNT invocations of
/// one event to one runtime started under WRAPPER (`perf record -g`, `strace -c -f`,
/// ...), then answers its next `/next` with a 500, on which it ends, so that the
/// wrapper writes its report. For profiles and syscall counts.
fn drive(args: &[String]) -> ExitCode {
    let usage = "usage: --drive lua|rhai|native[/aws] 1|256 COUNT [WRAPPER...]";
    let [which, size, count, wrapper @ ..] = args else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    // `lua/aws`: the aws workload's handler, against a stand-in of its own.
    let (name, workload) = which.split_once('/').unwrap_or((which, "echo"));
    let stand_in = (workload == "aws").then(upstream::Upstream::dynamodb);
    let runtime = match workload {
        "echo" => Some(runtimes("echo")),
        "aws" => Some(aws_runtimes(stand_in.as_ref().expect("made above"))),
        _ => None,
    }
    .and_then(|runtimes| {
        runtimes
            .into_iter()
            .find(|r| r.name.trim_start_matches("lure-") == name)
    });
    let event = match size.as_str() {
        "1" => Some(events::api_gateway_1k()),
        "256" => Some(events::order_batch(256 * 1024)),
        _ => None,
    };
    let (Some(runtime), Some(event), Ok(count)) = (runtime, event, count.parse()) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let (mut process, ready) = Process::start(&runtime, wrapper);
    let result = process.api.run(Run {
        reply: fake_api::next_reply(&event),
        min_count: count,
        min_time: Duration::ZERO,
        max_time: Duration::from_secs(24 * 3600),
    });
    if count > 0 {
        let expected = match workload {
            "aws" => native::aws_answer(),
            _ => serde_json::from_slice(&event).expect("the event is JSON"),
        };
        check_response(runtime.name, &result.first_response, &expected);
    }
    process.api.close();
    let status = process.child.wait().expect("the runtime's exit status");
    eprintln!(
        "{}: ready after {ready:.2?}; {} invocations of {} bytes in {:.2?}; then it exited ({status})",
        runtime.name,
        result.round_trips.len(),
        event.len(),
        result.elapsed
    );
    ExitCode::SUCCESS
}

/// The stdlib workload (`benches/handlers/*/stdlib.*`): hashing, encoding and
/// query building on the 1 KB event, in fresh processes, measured as the echo is.
fn stdlib_workload(plan: &Plan, event: &[u8]) -> [Warm; 3] {
    let runtimes = runtimes("stdlib");
    let processes: Vec<Process> = runtimes.iter().map(|r| Process::start(r, &[]).0).collect();
    let expected = native::stdlib(serde_json::from_slice(event).expect("the event is JSON"));
    measure(plan, 0, &runtimes, &processes, event, &expected)
}

/// The `http` workload (`benches/handlers/*/http.*`): one GET to a loopback HTTP
/// upstream per invocation, over a pooled connection, measured as the echo is.
fn http_workload(plan: &Plan, event: &[u8]) -> [Warm; 3] {
    let upstream = upstream::Upstream::http();
    let runtimes = runtimes("http").map(|mut r| {
        r.env.push((native::UPSTREAM_URL, upstream.url.clone()));
        r
    });
    let processes: Vec<Process> = runtimes.iter().map(|r| Process::start(r, &[]).0).collect();
    measure(
        plan,
        0,
        &runtimes,
        &processes,
        event,
        &native::http_answer(),
    )
}

/// Round trips of HTTPS invocations, for one runtime.
#[derive(Default)]
struct HttpsCalls {
    /// The first invocation of fresh processes: the client, TLS and the
    /// handshake are made then.
    first: Vec<f64>,
    /// Later invocations: the pooled connection, reused.
    reused: Vec<f64>,
}

/// The `https` workload against a loopback HTTPS upstream whose CA is trusted
/// through `LURE_EXTRA_CA_CERTS` (so lure reads the web PKI roots and that CA: the
/// longer of its two set-ups): the first call in fresh processes, then reused ones.
/// The handlers are the `http` workload's.
fn https_calls(plan: &Plan, event: &[u8]) -> [HttpsCalls; 3] {
    let upstream = upstream::Upstream::https();
    let ca = std::env::temp_dir().join(format!("lure-bench-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, upstream.ca_pem.as_deref().expect("a CA")).expect("write the CA");
    let runtimes = runtimes("http").map(|mut r| {
        r.env.push((native::UPSTREAM_URL, upstream.url.clone()));
        r.env
            .push(("LURE_EXTRA_CA_CERTS", ca.to_string_lossy().into_owned()));
        r
    });
    let reply = fake_api::next_reply(event);
    let expected = native::http_answer();
    let mut calls: [HttpsCalls; 3] = Default::default();
    for _ in 0..plan.spawns.min(10) {
        for (i, runtime) in runtimes.iter().enumerate() {
            let (process, _) = Process::start(runtime, &[]);
            let first = process.api.run(Run {
                reply: reply.clone(),
                min_count: 1,
                min_time: Duration::ZERO,
                max_time: Duration::from_secs(10),
            });
            check_response(runtime.name, &first.first_response, &expected);
            calls[i].first.push(first.round_trips[0].as_secs_f64());
            let reused = process.api.run(Run {
                reply: reply.clone(),
                min_count: plan.round_count[0].min(50),
                min_time: Duration::ZERO,
                max_time: Duration::from_secs(10),
            });
            calls[i]
                .reused
                .extend(reused.round_trips.iter().map(Duration::as_secs_f64));
        }
    }
    let _ = std::fs::remove_file(ca);
    calls
}

/// One lure runtime's figures for a 1 MiB answer, streamed or buffered.
#[derive(Default)]
struct AnswerCalls {
    first_bytes: Vec<f64>,
    round_trips: Vec<f64>,
    round_throughputs: Vec<f64>,
}

/// Streaming (SPEC 9): a 1 MiB answer streamed in 16 writes
/// (`benches/handlers/*/stream_1m.*`) against the same answer buffered
/// (`buffered_1m.*`), per language: `[lua, rhai]` of `[streamed, buffered]`.
fn stream_workload(plan: &Plan, event: &[u8]) -> [[AnswerCalls; 2]; 2] {
    const MIB: usize = 1 << 20;
    let modes = [("stream_1m", MIB), ("buffered_1m", MIB + 2)];
    let runtimes: Vec<(usize, usize, Runtime, usize)> = modes
        .iter()
        .enumerate()
        .flat_map(|(m, &(workload, length))| {
            let [lua, rhai, _native] = runtimes(workload);
            [(0, m, lua, length), (1, m, rhai, length)]
        })
        .collect();
    let processes: Vec<Process> = runtimes
        .iter()
        .map(|(_, _, r, _)| Process::start(r, &[]).0)
        .collect();
    let reply = fake_api::next_reply(event);
    let mut calls: [[AnswerCalls; 2]; 2] = Default::default();
    for round in 0..=plan.rounds {
        for ((lang, mode, runtime, length), process) in runtimes.iter().zip(&processes) {
            let result = process.api.run(Run {
                reply: reply.clone(),
                min_count: plan.round_count[1],
                min_time: if round == 0 {
                    Duration::ZERO
                } else {
                    plan.round_time
                },
                max_time: plan.round_time * 5 + Duration::from_secs(5),
            });
            if result.first_response.len() != *length {
                panic!(
                    "{} ({}) answered {} bytes, not {length}",
                    runtime.name,
                    runtime.workload,
                    result.first_response.len()
                );
            }
            // Round 0 warms up.
            if round > 0 {
                let c = &mut calls[*lang][*mode];
                c.round_throughputs.push(result.throughput());
                c.first_bytes
                    .extend(result.first_bytes.iter().map(Duration::as_secs_f64));
                c.round_trips
                    .extend(result.round_trips.iter().map(Duration::as_secs_f64));
            }
        }
    }
    calls
}

/// The streamed answer against the buffered one, per language.
fn print_streams(calls: &[[AnswerCalls; 2]; 2]) {
    let p50 = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    println!(
        "| 1 MiB answer: streamed (16 writes) / buffered | lure-lua streamed | lure-lua buffered | lure-rhai streamed | lure-rhai buffered |"
    );
    println!("|---|---:|---:|---:|---:|");
    let row = |label: &str, value: &dyn Fn(&AnswerCalls) -> String| {
        let cells: Vec<String> = calls.iter().flatten().map(value).collect();
        println!("| {label} | {} |", cells.join(" | "));
    };
    row("first byte of the answer, p50", &|c| {
        format!("{:.2} ms", p50(&c.first_bytes) * 1e3)
    });
    row("whole answer, round trip p50", &|c| {
        format!("{:.2} ms", p50(&c.round_trips) * 1e3)
    });
    row("throughput (median of rounds)", &|c| {
        format!("{:.0}/s", p50(&c.round_throughputs))
    });
}

/// One count of workers (Managed Instances), measured.
struct Workers {
    count: usize,
    warm: [Warm; 3],
    /// Peak RSS of each runtime's process, in kB.
    rss_kb: [u64; 3],
}

/// Lambda Managed Instances (SPEC 13): the CPU-bound handler
/// (`benches/handlers/*/cpu.*`, about 1 ms of CPU per invocation) with
/// `AWS_LAMBDA_MAX_CONCURRENCY` = 1, 2, 4, 8, in fresh processes, against the
/// native floor running as many loops the same way.
fn workers_workload(plan: &Plan, event: &[u8]) -> Vec<Workers> {
    let expected = native::sha256_chain(serde_json::from_slice(event).expect("the event is JSON"));
    let counts: &[usize] = if plan.smoke { &[2] } else { &[1, 2, 4, 8] };
    counts
        .iter()
        .map(|&count| {
            let runtimes = runtimes("cpu").map(|mut r| {
                r.env
                    .push(("AWS_LAMBDA_MAX_CONCURRENCY", count.to_string()));
                r
            });
            let processes: Vec<Process> =
                runtimes.iter().map(|r| Process::start(r, &[]).0).collect();
            // Few invocations per round (each takes a millisecond), as for 256 KB.
            let warm = measure(plan, 1, &runtimes, &processes, event, &expected);
            let rss_kb = [0, 1, 2].map(|i| processes[i].status_kb("VmHWM"));
            Workers {
                count,
                warm,
                rss_kb,
            }
        })
        .collect()
}

/// Throughput and memory by number of workers, each runtime against itself with
/// one worker (the scaling) and lure against the floor.
fn print_workers(rows: &[Workers]) {
    let names = ["lure-lua", "lure-rhai", "native"];
    println!(
        "| workers (~1 ms CPU per invocation, {} CPUs) | {} | lure-lua / native | {} |",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        names.map(|n| format!("{n} throughput")).join(" | "),
        names.map(|n| format!("{n} peak RSS")).join(" | "),
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let single = &rows[0];
    for row in rows {
        let throughput = [0, 1, 2].map(|i| {
            let own = row.warm[i].throughput();
            format!("{own:.0}/s ({:.2}×)", own / single.warm[i].throughput())
        });
        let memory = [0, 1, 2].map(|i| {
            let mb = row.rss_kb[i] as f64 / 1024.0;
            match row.count {
                1 => format!("{mb:.1} MB"),
                n => format!(
                    "{mb:.1} MB (+{:.2} MB/worker)",
                    (row.rss_kb[i] as f64 - single.rss_kb[i] as f64) / 1024.0 / (n - 1) as f64
                ),
            }
        });
        println!(
            "| {} | {} | {:.2}× | {} |",
            row.count,
            throughput.join(" | "),
            row.warm[0].throughput_ratio(&row.warm[2]),
            memory.join(" | ")
        );
    }
}

/// The `aws` workload's runtimes, calling `stand_in` with a key of the bench's.
fn aws_runtimes(stand_in: &upstream::Upstream) -> [Runtime; 3] {
    runtimes("aws").map(|mut r| {
        r.env.extend(
            [
                ("AWS_ENDPOINT_URL", stand_in.url.as_str()),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "AKIDBENCH"),
                ("AWS_SECRET_ACCESS_KEY", "bench-secret"),
            ]
            .map(|(k, v)| (k, v.to_owned())),
        );
        r
    })
}

/// The `aws` workload's figures.
struct AwsCalls {
    /// Spawn to the first answer (cold ready plus the first invocation's round
    /// trip: the client, its credentials, signing and the connection made then).
    first: [Vec<f64>; 3],
    warm: [Warm; 3],
}

/// The `aws` workload (`benches/handlers/*/aws.*`): one signed DynamoDB GetItem per
/// invocation to a stand-in on loopback that answers at once, against a native
/// floor making the same signed call with lure's signer and ureq.
fn aws_workload(plan: &Plan, event: &[u8]) -> AwsCalls {
    let stand_in = upstream::Upstream::dynamodb();
    let runtimes = aws_runtimes(&stand_in);
    let reply = fake_api::next_reply(event);
    let expected = native::aws_answer();
    let mut first: [Vec<f64>; 3] = Default::default();
    for _ in 0..plan.spawns.min(10) {
        for (i, runtime) in runtimes.iter().enumerate() {
            let (process, ready) = Process::start(runtime, &[]);
            let run = process.api.run(Run {
                reply: reply.clone(),
                min_count: 1,
                min_time: Duration::ZERO,
                max_time: Duration::from_secs(10),
            });
            check_response(runtime.name, &run.first_response, &expected);
            first[i].push(ready.as_secs_f64() + run.round_trips[0].as_secs_f64());
        }
    }
    let processes: Vec<Process> = runtimes.iter().map(|r| Process::start(r, &[]).0).collect();
    let warm = measure(plan, 0, &runtimes, &processes, event, &expected);
    AwsCalls { first, warm }
}

/// Warms each process up on `event`, then measures its rounds, the runtimes taking
/// turns; `size` picks the plan's counts (0: 1 KB, 1: 256 KB). Checks each
/// runtime's first answer is `expected`.
fn measure(
    plan: &Plan,
    size: usize,
    runtimes: &[Runtime; 3],
    processes: &[Process],
    event: &[u8],
    expected: &Value,
) -> [Warm; 3] {
    let reply = fake_api::next_reply(event);
    for process in processes {
        process.api.run(Run {
            reply: reply.clone(),
            min_count: plan.warmup_count[size],
            min_time: Duration::ZERO,
            max_time: Duration::from_secs(10),
        });
    }
    let mut warm: [Warm; 3] = Default::default();
    for round in 0..plan.rounds {
        for (i, process) in processes.iter().enumerate() {
            let cpu_before = process.cpu_time();
            let result = process.api.run(Run {
                reply: reply.clone(),
                min_count: plan.round_count[size],
                min_time: plan.round_time,
                max_time: plan.round_time * 5 + Duration::from_secs(5),
            });
            let cpu = process.cpu_time() - cpu_before;
            if round == 0 {
                check_response(runtimes[i].name, &result.first_response, expected);
            }
            let w = &mut warm[i];
            w.round_throughputs.push(result.throughput());
            w.round_trips.extend(result.round_trips);
            w.cpu += cpu;
        }
    }
    warm
}

/// Panics unless `body` is `expected` (numbers compared as f64, since lure writes
/// whole-number floats without `.0`): figures for a runtime that does not do the
/// handler's work would measure something else.
fn check_response(runtime: &str, body: &[u8], expected: &Value) {
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
            }
            _ => a == b,
        }
    }
    let echoed: Option<Value> = serde_json::from_slice(body).ok();
    if !echoed.is_some_and(|v| same(&v, expected)) {
        panic!(
            "{runtime} did not answer {expected:.500}; it answered: {:.500}",
            String::from_utf8_lossy(body)
        );
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

#[derive(Clone, Copy)]
enum Unit {
    /// Seconds shown as ms.
    Millis,
    /// Seconds shown as µs.
    Micros,
    PerSecond,
    Megabytes,
}

impl Unit {
    fn format(self, value: f64) -> String {
        match self {
            Unit::Millis => format!("{:.2} ms", value * 1e3),
            Unit::Micros if value >= 0.001 => format!("{:.2} ms", value * 1e3),
            Unit::Micros => format!("{:.0} µs", value * 1e6),
            Unit::PerSecond => format!("{:.0}/s", value),
            Unit::Megabytes => format!("{value:.1} MB"),
        }
    }
}

/// An issue 7 target for a lure figure.
#[derive(Clone, Copy)]
enum Target {
    None,
    RatioAtMost(f64),
    RatioAtLeast(f64),
    /// An absolute limit, in the row's unit.
    AtMost(f64),
}

impl Target {
    /// Two decimals, or three when two would show the limit itself for a ratio on
    /// the wrong side of it.
    fn format_ratio(self, ratio: f64) -> String {
        match self {
            Target::RatioAtMost(t) | Target::RatioAtLeast(t)
                if (ratio * 100.0).round() / 100.0 == t =>
            {
                format!("{ratio:.3}×")
            }
            _ => format!("{ratio:.2}×"),
        }
    }

    fn describe(self, unit: Unit, value: f64, ratio: f64) -> String {
        let (text, met) = match self {
            Target::None => return String::new(),
            Target::RatioAtMost(t) => (format!("≤ {t}×"), ratio <= t),
            Target::RatioAtLeast(t) => (format!("≥ {t}×"), ratio >= t),
            Target::AtMost(t) => (format!("≤ {}", unit.format(t)), value <= t),
        };
        format!("{text} {}", if met { "met" } else { "NOT MET" })
    }
}

struct Row {
    label: &'static str,
    unit: Unit,
    values: [f64; 3],
    /// Lua's and Rhai's ratio to native, when not simply the quotient of the values.
    ratios: Option<[f64; 2]>,
    targets: [Target; 2],
}

impl Row {
    fn new(label: &'static str, unit: Unit) -> Row {
        Row {
            label,
            unit,
            values: [0.0; 3],
            ratios: None,
            targets: [Target::None; 2],
        }
    }

    fn values(mut self, values: [f64; 3]) -> Row {
        self.values = values;
        self
    }

    fn paired_ratios(mut self, warm: &[Warm; 3]) -> Row {
        self.ratios = Some([0, 1].map(|i| warm[i].throughput_ratio(&warm[2])));
        self
    }

    fn targets(mut self, lua: Target, rhai: Target) -> Row {
        self.targets = [lua, rhai];
        self
    }

    fn cells(&self) -> Vec<String> {
        let mut cells = vec![self.label.to_owned()];
        cells.extend(self.values.map(|v| self.unit.format(v)));
        let native = self.values[2];
        for lang in 0..2 {
            let ratio = self.ratios.map_or(self.values[lang] / native, |r| r[lang]);
            cells.push(self.targets[lang].format_ratio(ratio));
            cells.push(self.targets[lang].describe(self.unit, self.values[lang], ratio));
        }
        cells
    }
}

/// A Markdown table, padded so that it also reads as plain text.
fn print_table(rows: &[Row]) {
    let header = [
        "metric",
        "lure-lua",
        "lure-rhai",
        "native",
        "lua ÷ native",
        "lua target",
        "rhai ÷ native",
        "rhai target",
    ]
    .map(String::from)
    .to_vec();
    let body: Vec<Vec<String>> = rows.iter().map(Row::cells).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            std::iter::once(&header)
                .chain(&body)
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| {
                if c == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(&header);
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(c, &w)| match c {
            0 => "-".repeat(w + 2),
            _ => format!("{}:", "-".repeat(w + 1)),
        })
        .collect();
    println!("|{}|", rule.join("|"));
    for row in &body {
        line(row);
    }
}
