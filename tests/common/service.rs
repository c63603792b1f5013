//! A process a test starts, kills (SIGKILL), stops (SIGTERM) and starts again, its output
//! appended to a log file; killed when dropped, so a failing test leaves nothing running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A process the test kills and starts again.
pub struct Service {
    /// What the test calls it (also its log file's name).
    pub name: String,
    /// How often it was killed or stopped.
    pub kills: u32,
    command: Box<dyn Fn() -> Command>,
    log: PathBuf,
    child: Option<Child>,
}

impl Service {
    /// A process started with `command` (called at each start), logging to `dir/name.log`.
    pub fn new(name: &str, dir: &Path, command: impl Fn() -> Command + 'static) -> Service {
        Service {
            name: name.to_owned(),
            command: Box::new(command),
            log: dir.join(format!("{name}.log")),
            child: None,
            kills: 0,
        }
    }

    /// Starts it (it must not be running).
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} already runs", self.name);
        let log = || {
            Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .unwrap(),
            )
        };
        let child = (self.command)()
            .stdout(log())
            .stderr(log())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name));
        self.child = Some(child);
    }

    /// Its process id (while it runs).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: no flush, no goodbye.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
        self.kills += 1;
    }

    /// SIGTERM, then waits (up to 30 s) for the process to exit 0.
    pub async fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        for _ in 0..300 {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "{} exited with {status}", self.name);
                self.kills += 1;
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} still runs 30 s after SIGTERM", self.name);
    }

    /// Fails if the process died on its own.
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{} exited by itself ({status}); its log: {}",
                    self.name,
                    self.log.display()
                );
            }
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
