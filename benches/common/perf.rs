//! `perf record` around one step of a benchmark, when the command line asks
//! for a profile: started before the step, told to write its file after it
//! (SIGINT), and killed on drop if the step fails first, so it never
//! outlives the run. Shared by `benches/burst.rs` and `benches/scale.rs`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result};

pub struct Profile {
    child: Option<Child>,
    pub path: String,
}

impl Profile {
    /// `perf record -g -q -o PATH ARGS...` (`-a`: the whole machine; `-p
    /// PID`: one process); `why` names the option that asked for it, for
    /// the error if perf cannot run.
    pub fn start(path: String, args: &[&str], why: &str) -> Result<Profile> {
        let child = Command::new("perf")
            .args(["record", "-g", "-q", "-o", &path])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("running perf ({why})"))?;
        // perf needs a moment to attach before the step starts.
        std::thread::sleep(Duration::from_millis(500));
        Ok(Profile { child: Some(child), path })
    }

    /// SIGINT makes perf write its file and exit; the file's path.
    pub fn stop(mut self) -> Result<String> {
        use nix::sys::signal::{Signal, kill};
        if let Some(mut child) = self.child.take() {
            kill(nix::unistd::Pid::from_raw(child.id() as i32), Signal::SIGINT)?;
            child.wait()?;
        }
        Ok(self.path.clone())
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
