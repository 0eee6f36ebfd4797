//! Shared helpers for integration tests: a fake Lambda Runtime API, the real `lure`
//! binary in a scratch task root, and [`Scenario`] tying them together so each test
//! reads as a story: write a handler, start lure, invoke, look at what was posted.
//!
//! ```ignore
//! let mut s = Scenario::new("hello_lua");
//! s.write("hello.lua", "function main(event) return {ok = true} end");
//! s.start("hello.lua");
//! let post = s.answer(Invocation::new("r1", "{}"));
//! assert_eq!(post.text(), r#"{"ok":true}"#);
//! ```
//!
//! Faults: `s.api.script_post(Reply::Status(500))` makes the next POST get a 500
//! (recorded with that status); `Reply::Drop` closes the connection instead of
//! answering; `Reply::AcceptThenDrop` accepts a POST but loses the 202 on the way
//! back; `s.api.script_next(..)` does the same for `GET /next`. A second answer for
//! an invocation already answered gets a 400, as on Lambda; `Log::accepted_answers`
//! counts what was accepted. Every POST records when it arrived (`received_ms`).
//! More kinds of fault are new [`Reply`] variants, handled in `fake_api::Answer`.
//! An API that is not listening yet: [`Scenario::start_before_api`] (by hand: bind a
//! `TcpListener` on `127.0.0.1:0`, note its address, drop it, start [`Lure::spawn`]
//! on that address, and later serve it with
//! `FakeApi::on_listener(TcpListener::bind(addr)?, "")`).
//!
//! Python tools live in venvs under `target/tmp` ([`python::venv`]); the `aws`
//! tests' signature-checking AWS stand-in is [`moto::Moto`].
//!
//! Every wait is an upper bound ([`WAIT`]) that only matters when something is broken.

// Each test crate uses a different part of these helpers.
#![allow(dead_code, unused_imports)]

pub mod fake_api;
pub mod http;
pub mod lure;
pub mod moto;
pub mod python;
pub mod scratch;
pub mod web;

use std::net::TcpListener;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

pub use fake_api::{FakeApi, Invocation, Log, Post, PostKind, Reply, epoch_ms};
pub use lure::Lure;
pub use scratch::Scratch;

/// How long any wait may take before the test fails: generous, for a noisy 2-core CI.
pub const WAIT: Duration = Duration::from_secs(30);

/// The two languages, for tests that run a handler written in each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Lua,
    Rhai,
}

impl Lang {
    /// `stem` with the language's extension: `app.lua`, `app.rhai`.
    pub fn file(self, stem: &str) -> String {
        match self {
            Lang::Lua => format!("{stem}.lua"),
            Lang::Rhai => format!("{stem}.rhai"),
        }
    }
}

/// One fake Runtime API, one scratch task root, at most one running `lure`.
pub struct Scenario {
    // Field order is drop order: kill lure before the API goes away.
    lure: Option<Lure>,
    pub api: FakeApi,
    pub scratch: Scratch,
}

impl Scenario {
    pub fn new(name: &str) -> Self {
        Self::with_api(name, FakeApi::start())
    }

    /// The API serves under a path prefix; lure gets `http://127.0.0.1:PORT{prefix}`.
    pub fn with_prefix(name: &str, prefix: &str) -> Self {
        Self::with_api(name, FakeApi::with_prefix(prefix))
    }

    pub fn with_api(name: &str, api: FakeApi) -> Self {
        Scenario {
            lure: None,
            api,
            scratch: Scratch::new(name),
        }
    }

    /// Writes a script (or any file) under the task root.
    pub fn write(&self, relative: &str, contents: &str) -> &Self {
        self.scratch.write(relative, contents);
        self
    }

    /// Starts lure with `_HANDLER=handler` and Lambda's usual function environment.
    pub fn start(&mut self, handler: &str) -> &mut Self {
        self.start_with_env(handler, &[])
    }

    /// As [`Scenario::start`], with extra (or overriding) environment variables.
    pub fn start_with_env(&mut self, handler: &str, env: &[(&str, &str)]) -> &mut Self {
        self.start_with(handler, env, |_| {})
    }

    /// As [`Scenario::start_with_env`], letting `customize` adjust the command.
    pub fn start_with(
        &mut self,
        handler: &str,
        env: &[(&str, &str)],
        customize: impl FnOnce(&mut std::process::Command),
    ) -> &mut Self {
        assert!(self.lure.is_none(), "lure is already running");
        self.lure = Some(Lure::spawn_with(
            std::path::Path::new(env!("CARGO_BIN_EXE_lure")),
            &self.api.address(),
            handler,
            &self.scratch.task_root(),
            env,
            &self.scratch.log_path(),
            customize,
        ));
        self
    }

    /// Starts lure on an address where nothing listens yet, waits `delay`, then
    /// serves a fresh fake API there: the Runtime API not yet up when lure starts.
    /// Push invocations after this returns (the API is replaced).
    pub fn start_before_api(&mut self, handler: &str, delay: Duration) -> &mut Self {
        assert!(self.lure.is_none(), "lure is already running");
        let reserved = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = reserved.local_addr().expect("listener address");
        drop(reserved);
        self.lure = Some(Lure::spawn(
            &addr.to_string(),
            handler,
            &self.scratch.task_root(),
            &[],
            &self.scratch.log_path(),
        ));
        std::thread::sleep(delay);
        let listener = TcpListener::bind(addr)
            .unwrap_or_else(|e| panic!("bind {addr} again for the late API: {e}"));
        self.api = FakeApi::on_listener(listener, "");
        self
    }

    pub fn lure(&mut self) -> &mut Lure {
        self.lure.as_mut().expect("lure was not started")
    }

    /// What lure printed so far (empty if it was never started).
    pub fn output(&self) -> String {
        self.lure.as_ref().map(Lure::output).unwrap_or_default()
    }

    /// Queues an invocation for `/next`.
    pub fn push(&self, invocation: Invocation) {
        self.api.push(invocation);
    }

    /// Queues an invocation and waits for the accepted POST answering it.
    pub fn answer(&mut self, invocation: Invocation) -> Post {
        let id = invocation.request_id.clone();
        self.api.push(invocation);
        self.wait_answer(&id)
    }

    /// Waits for the accepted POST answering invocation `id` (already queued).
    pub fn wait_answer(&mut self, id: &str) -> Post {
        self.wait_for(&format!("an answer to invocation {id:?}"), |log| {
            log.accepted_answers(id) > 0
        });
        self.api
            .posts()
            .into_iter()
            .find(|p| p.request_id.as_deref() == Some(id) && p.accepted())
            .expect("the answer just seen")
    }

    /// Waits until at least `n` POSTs were received; returns all of them.
    pub fn wait_posts(&mut self, n: usize) -> Vec<Post> {
        self.wait_for(&format!("{n} POSTs"), |log| log.posts.len() >= n);
        self.api.posts()
    }

    /// Waits until `done` holds for the API's log; on timeout fails the test with
    /// what was recorded and everything lure printed.
    /// Fails at once if lure exits first without `done` holding.
    pub fn wait_for(&mut self, what: &str, mut done: impl FnMut(&Log) -> bool) {
        let end = Instant::now() + WAIT;
        // Wake now and then only to notice a dead lure early; never needed to pass.
        let slice = Duration::from_millis(200);
        loop {
            if self.api.wait_until(slice, &mut done) {
                return;
            }
            if let Some(status) = self.lure.as_mut().and_then(Lure::try_status) {
                // Its last POST was recorded before it could see the answer and exit.
                if self.api.wait_until(Duration::ZERO, &mut done) {
                    return;
                }
                self.fail(&format!("lure exited ({status}) while waiting for {what}"));
            }
            if Instant::now() >= end {
                self.fail(&format!("timed out after {WAIT:?} waiting for {what}"));
            }
        }
    }

    /// Waits for lure to exit by itself (e.g. after an init error).
    pub fn wait_exit(&mut self) -> ExitStatus {
        match self.lure().wait_exit(WAIT) {
            Some(status) => status,
            None => self.fail(&format!("lure still running after {WAIT:?}")),
        }
    }

    /// Fails the test, showing the API's log and lure's output.
    pub fn fail(&self, why: &str) -> ! {
        let log = self.api.log();
        let posts: Vec<String> = log
            .posts
            .iter()
            .map(|p| {
                format!(
                    "  {:?} {} -> {:?}: {:.500}",
                    p.kind,
                    p.path,
                    p.status,
                    String::from_utf8_lossy(&p.body)
                )
            })
            .collect();
        panic!(
            "{why}\n\
             connections: {}, GET /next: {}, unexpected requests: {:?}\n\
             posts:\n{}\n\
             lure output ({}):\n{}",
            log.connections,
            log.next_requests,
            log.unexpected,
            posts.join("\n"),
            self.scratch.log_path().display(),
            self.output()
        );
    }
}
