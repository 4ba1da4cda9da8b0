//! Headless Chromium for tests, driven over the DevTools protocol by a
//! small Node script (`cdp.mjs`, no npm packages): open a page, evaluate
//! JavaScript in it, take a screenshot.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const DRIVER: &str = include_str!("cdp.mjs");

/// A headless Chromium with one page, closed on drop.
///
/// Needs `node` and `chromium` on the `PATH` (`CHROMIUM` names another
/// binary); `bash scripts/test` (the README's test command) installs both.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    driver: PathBuf,
}

impl Browser {
    /// Starts the browser.
    ///
    /// # Panics
    /// When node or chromium cannot be started: the message says which.
    pub fn start() -> Self {
        let driver = std::env::temp_dir().join(format!(
            "spanline-cdp-{}-{}.mjs",
            std::process::id(),
            crate::unique()
        ));
        std::fs::write(&driver, DRIVER).unwrap_or_else(|e| panic!("writing the driver: {e}"));
        let mut child = Command::new("node")
            .arg(&driver)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("node is needed for the browser tests ({e}): install nodejs and chromium")
            });
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            panic!("the driver's pipes");
        };
        Self {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            driver,
        }
    }

    fn call(&mut self, command: Value) -> Value {
        let Some(stdin) = self.stdin.as_mut() else {
            panic!("the browser is closed");
        };
        writeln!(stdin, "{command}").unwrap_or_else(|e| panic!("the driver went away: {e}"));
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("the driver went away: {e}"));
        let reply: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("the driver said {line:?}: {e}"));
        if let Some(error) = reply.get("error") {
            panic!("browser: {error} (for {command})");
        }
        reply
    }

    /// Opens `url` in the page and waits for its document to load.
    pub fn open(&mut self, url: &str) {
        self.call(json!({ "open": url }));
        self.wait_for(
            "document.readyState === 'complete'",
            Duration::from_secs(20),
        );
    }

    /// The value of `expression` in the page (promises are awaited).
    pub fn eval(&mut self, expression: &str) -> Value {
        self.call(json!({ "eval": expression }))["value"].take()
    }

    /// Evaluates `expression` until it is truthy and returns its value.
    ///
    /// # Panics
    /// After `timeout`, with the last value.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) -> Value {
        let started = Instant::now();
        loop {
            let value = self.eval(expression);
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(
                started.elapsed() < timeout,
                "waited {timeout:?} for `{expression}`; last value {value}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The page's JavaScript heap in use after a garbage collection, in bytes.
    pub fn heap_used(&mut self) -> u64 {
        self.call(json!({ "heap": true }))["value"]
            .as_f64()
            .unwrap_or_default() as u64
    }

    /// Saves a PNG of the page.
    pub fn screenshot(&mut self, path: &Path) {
        self.call(json!({ "screenshot": path }));
    }

    /// Sends these headers with every request the page makes from now on
    /// (navigations, `fetch`, event streams), as a proxy in front of the
    /// server would add them.
    pub fn set_headers(&mut self, headers: &[(&str, &str)]) {
        let headers: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        self.call(json!({ "headers": headers }));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing stdin ends the driver, which kills the browser; a driver
        // stuck past two seconds is killed.
        drop(self.stdin.take());
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(2) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.driver);
    }
}
