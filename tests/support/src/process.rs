//! Real processes under test — Vector, the identity sidecar — started with their stderr
//! collected, killed (SIGKILL) or terminated (SIGTERM) on demand, and never left behind.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running process whose stderr is collected line by line; killed when dropped.
pub struct Process {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Process {
    /// Starts `command` with stdout discarded and stderr collected.
    pub fn spawn(mut command: Command) -> Process {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("log").push_str(&(line + "\n"));
            }
        });
        Process { child, log }
    }

    /// Everything the process wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// The first stderr line containing `needle`, waiting up to `limit` for it.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> String {
        let started = Instant::now();
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|line| line.contains(needle)) {
                return line.to_owned();
            }
            assert!(started.elapsed() < limit, "no {needle:?} in:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown handler runs, nothing is flushed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = i32::try_from(self.child.id()).expect("a pid fits in i32");
        // SAFETY: sends a signal to our own child process, which has not been reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        self.child.wait().expect("the process exits")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running identity sidecar (`posthog-identity-sidecar serve`) on loopback.
pub struct Sidecar {
    pub process: Process,
    /// `http://127.0.0.1:<port>`
    pub url: String,
}

impl Sidecar {
    /// Starts `binary serve` on `listen` (`127.0.0.1:0` for any port) with the store at `db`,
    /// sending to `posthog` with `key`, backoff capped at one second, no rate limit unless
    /// `extra` gives one, plus `extra` arguments.
    pub fn start(
        binary: &Path,
        listen: &str,
        db: &Path,
        posthog: &str,
        key: &str,
        extra: &[&str],
    ) -> Sidecar {
        let mut command = Command::new(binary);
        command
            .args(["serve", "--listen", listen, "--posthog-host", posthog])
            .args(["--max-backoff-secs", "1", "--db"])
            .arg(db)
            .args(extra)
            .env("POSTHOG_API_KEY", key)
            .env("RUST_LOG", "info");
        if !extra.contains(&"--rate") {
            // Its default rate (its share of PostHog's 2 000 events/s) is tested on its own.
            command.args(["--rate", "unlimited"]);
        }
        let process = Process::spawn(command);
        let line = process.wait_for_log("listening on ", Duration::from_secs(30));
        let address = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the sidecar reports its address");
        Sidecar {
            url: format!("http://{address}"),
            process,
        }
    }

    /// The `host:port` it listens on, to start a successor on the same address.
    pub fn address(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// POSTs `body` to `/records`: (status, body), or (0, "") when nothing answered.
    pub fn post(&self, body: &[u8]) -> (u16, String) {
        match reqwest::blocking::Client::new()
            .post(format!("{}/records", self.url))
            .body(body.to_vec())
            .send()
        {
            Ok(response) => (
                response.status().as_u16(),
                response.text().unwrap_or_default(),
            ),
            Err(_) => (0, String::new()),
        }
    }

    /// `GET /status` as JSON.
    pub fn status(&self) -> Value {
        let body = reqwest::blocking::get(format!("{}/status", self.url))
            .and_then(|response| response.text())
            .expect("the sidecar answers /status");
        serde_json::from_str(&body).expect("/status is JSON")
    }

    /// Releases the sidecar (`POST /flush`: every record is in) and waits until nothing is
    /// pending (what `flush` does); returns the last status.
    pub fn wait_until_drained(&self, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let status = self.status();
            if status["released"] != true {
                reqwest::blocking::Client::new()
                    .post(format!("{}/flush", self.url))
                    .send()
                    .expect("the sidecar answers /flush");
                continue;
            }
            if status["pending"] == 0
                && status["groups_pending"] == 0
                && status["persons_pending"] == 0
            {
                return status;
            }
            assert!(started.elapsed() < limit, "still pending: {status}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL.
    pub fn kill(mut self) {
        self.process.kill();
    }

    /// SIGTERM, and how it exited.
    pub fn terminate(mut self) -> ExitStatus {
        self.process.terminate()
    }
}
