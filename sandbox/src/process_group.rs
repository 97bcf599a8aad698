//! The baseline sandbox: a process group with rlimits.

use std::path::{Path, PathBuf};

use fgs_limits::instance::MAX_OPEN_FILES;

use crate::process::instance_command;
use crate::{Enforcement, LaunchSpec, Process, Sandbox, SandboxError};

/// Each instance is the leader of a new process group, with `RLIMIT_NOFILE` 1024, an empty
/// inherited environment, stdin from `/dev/null`, and `PR_SET_PDEATHSIG` so it dies with the
/// host. Memory, processes and `/tmp` are not enforced by this sandbox.
#[derive(Debug, Default, Clone)]
pub struct ProcessGroupSandbox;

impl Sandbox for ProcessGroupSandbox {
    fn launch(&self, spec: LaunchSpec) -> Result<Process, SandboxError> {
        let mut cmd = instance_command(&spec.program, spec.output, Some(MAX_OPEN_FILES), None)?;
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&spec.cwd);
        let child = crate::process::spawn(cmd).map_err(|source| SandboxError::Spawn {
            program: spec.program.clone(),
            source,
        })?;
        Ok(Process::monitor(child, None, false, None))
    }

    fn enforcement(&self) -> Enforcement {
        Enforcement {
            mode: "process-group",
            enforced: vec![
                format!("RLIMIT_NOFILE={MAX_OPEN_FILES}"),
                "process group kill".into(),
            ],
            not_enforced: vec![
                "memory_size".into(),
                "1024 processes+threads".into(),
                "512 MB /tmp".into(),
                "namespaces".into(),
            ],
            reason: None,
            cgroup_parent: None,
        }
    }

    fn instance_paths(&self, code_dir: &Path, runtime_dir: &Path) -> (PathBuf, PathBuf) {
        (code_dir.to_path_buf(), runtime_dir.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Exit;
    use std::io::Read;

    fn spec(program: &str, args: &[&str]) -> (LaunchSpec, std::fs::File) {
        let (r, w) = nix::unistd::pipe().unwrap();
        let spec = LaunchSpec {
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![("X".into(), "1".into())],
            cwd: "/".into(),
            code_dir: "/".into(),
            dependency_dirs: Vec::new(),
            runtime_dir: "/".into(),
            ro_paths: vec![],
            memory_mb: 128,
            output: w,
            netns: None,
        };
        (spec, std::fs::File::from(r))
    }

    #[tokio::test]
    async fn runs_in_own_group_with_nofile_limit() {
        let (spec, mut out) = spec(
            "/bin/sh",
            &[
                "-c",
                "ulimit -n; echo $X; ps -o pgid= -p $$ | tr -d ' '; echo $$",
            ],
        );
        let p = ProcessGroupSandbox.launch(spec).unwrap();
        assert_eq!(p.wait().await, Exit::Code(0));
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        let lines: Vec<_> = s.lines().collect();
        assert_eq!(lines[0], "1024");
        assert_eq!(lines[1], "1");
        assert_eq!(lines[2], lines[3], "process is its own group leader");
    }

    #[tokio::test]
    async fn kill_ends_the_group() {
        let (spec, _out) = spec("/bin/sh", &["-c", "sleep 30 & sleep 30"]);
        let p = ProcessGroupSandbox.launch(spec).unwrap();
        p.kill();
        assert_eq!(p.wait().await, Exit::Signal(libc::SIGKILL));
    }

    /// `PR_SET_PDEATHSIG` follows the forking thread: an instance launched from a thread that
    /// then ends (as tokio's blocking threads do) must live on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn outlives_the_thread_that_launched_it() {
        let runtime = tokio::runtime::Handle::current();
        let p = std::thread::spawn(move || {
            let _entered = runtime.enter();
            let (spec, _out) = spec("/bin/sh", &["-c", "sleep 1"]);
            ProcessGroupSandbox.launch(spec).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(p.wait().await, Exit::Code(0));
    }

    #[tokio::test]
    async fn missing_program() {
        let (spec, _out) = spec("/nonexistent/bootstrap", &[]);
        assert!(matches!(
            ProcessGroupSandbox.launch(spec),
            Err(SandboxError::Spawn { .. })
        ));
    }
}
