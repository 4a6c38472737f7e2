//! Sweeps on a Slurm cluster: a job-array script whose task I runs shard I/N of the spec into its
//! own results file, and a merge job that joins them once every task has succeeded. Every path
//! and value reaches the shell single-quoted (a name never becomes a command), and submission
//! runs `sbatch` from an argument vector.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::SweepError;

/// What the scripts run and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The etch binary the tasks run (absolute).
    pub etch: PathBuf,
    /// The spec (absolute) and the folder for scripts, shard files, logs and the merged result.
    pub spec: PathBuf,
    pub dir: PathBuf,
    /// The working directory the tasks run in (the spec's relative paths are relative to it).
    pub workdir: PathBuf,
    pub tasks: u64,
    pub partition: Option<String>,
    pub time: Option<String>,
}

/// A string as one single-quoted shell word.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn q(p: &Path) -> String {
    quote(&p.display().to_string())
}

/// A `#SBATCH` option's value: a line of its own that Slurm reads, so only plain characters.
fn option(name: &str, v: &str) -> Result<String, SweepError> {
    if v.is_empty()
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-,".contains(c))
    {
        return Err(SweepError::Slurm(format!(
            "--{name} `{}`: use letters, digits and _ . : - , only",
            v.escape_debug()
        )));
    }
    Ok(format!("#SBATCH --{name}={v}\n"))
}

impl Job {
    /// The result file of shard `i` (1-based).
    pub fn shard_file(&self, i: u64) -> PathBuf {
        self.dir.join(format!("shard-{i}.sqlite"))
    }

    /// The merged result.
    pub fn merged_file(&self) -> PathBuf {
        self.dir.join("results.sqlite")
    }

    fn header(&self, name: &str) -> Result<String, SweepError> {
        let mut s = format!("#!/bin/bash\n#SBATCH --job-name={name}\n");
        if let Some(p) = &self.partition {
            s.push_str(&option("partition", p)?);
        }
        if let Some(t) = &self.time {
            s.push_str(&option("time", t)?);
        }
        Ok(s)
    }

    /// The job-array script: task I runs shard I/N.
    pub fn array_script(&self) -> Result<String, SweepError> {
        let mut s = self.header("etch-sweep")?;
        s.push_str(&format!(
            "#SBATCH --array=1-{}\n#SBATCH --output={}\nset -euo pipefail\ncd {}\nexec {} sweep {} -o {}\"/shard-$SLURM_ARRAY_TASK_ID.sqlite\" --shard \"$SLURM_ARRAY_TASK_ID/{}\"\n",
            self.tasks,
            self.dir.join("shard-%a.log").display(),
            q(&self.workdir),
            q(&self.etch),
            q(&self.spec),
            q(&self.dir),
            self.tasks
        ));
        Ok(s)
    }

    /// The merge script: every shard file into `results.sqlite`.
    pub fn merge_script(&self) -> Result<String, SweepError> {
        let mut s = self.header("etch-sweep-merge")?;
        s.push_str(&format!(
            "#SBATCH --output={}\nset -euo pipefail\ncd {}\nexec {} sweep merge {}",
            self.dir.join("merge.log").display(),
            q(&self.workdir),
            q(&self.etch),
            q(&self.merged_file())
        ));
        for i in 1..=self.tasks {
            s.push(' ');
            s.push_str(&q(&self.shard_file(i)));
        }
        s.push('\n');
        Ok(s)
    }

    /// Writes `sweep.sbatch` and `merge.sbatch` into the folder; returns their paths.
    pub fn write(&self) -> Result<(PathBuf, PathBuf), SweepError> {
        if self.tasks == 0 {
            return Err(SweepError::Slurm("--tasks must be at least 1".into()));
        }
        // a path with a newline would end the line it is in; the log paths sit unquoted in
        // #SBATCH lines, where Slurm splits at spaces and expands %
        for p in [&self.dir, &self.spec, &self.etch, &self.workdir] {
            if p.display().to_string().contains(['\n', '\r']) {
                return Err(SweepError::Slurm(format!(
                    "the path {:?} holds a line break",
                    p.display().to_string()
                )));
            }
        }
        if self.dir.display().to_string().contains([' ', '\t', '%']) {
            return Err(SweepError::Slurm(format!(
                "the folder {:?} holds a space or %, which #SBATCH --output lines cannot take; choose another",
                self.dir.display().to_string()
            )));
        }
        let io = |p: &Path, e: std::io::Error| SweepError::Slurm(format!("{}: {e}", p.display()));
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        let (a, m) = (self.dir.join("sweep.sbatch"), self.dir.join("merge.sbatch"));
        std::fs::write(&a, self.array_script()?).map_err(|e| io(&a, e))?;
        std::fs::write(&m, self.merge_script()?).map_err(|e| io(&m, e))?;
        Ok((a, m))
    }

    /// Submits the array, then the merge with `afterok` on it; returns the two job ids.
    pub fn submit(&self, array: &Path, merge: &Path) -> Result<(String, String), SweepError> {
        let sbatch = |args: &[&str]| -> Result<String, SweepError> {
            let o = Command::new("sbatch")
                .args(args)
                .output()
                .map_err(|e| SweepError::Slurm(format!("cannot run sbatch: {e}")))?;
            if !o.status.success() {
                return Err(SweepError::Slurm(format!(
                    "sbatch failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                )));
            }
            let out = String::from_utf8_lossy(&o.stdout);
            // --parsable prints "ID" or "ID;CLUSTER"
            let id = out.trim().split(';').next().unwrap_or("").to_string();
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
                return Err(SweepError::Slurm(format!(
                    "sbatch printed {:?}, not a job id",
                    out.trim()
                )));
            }
            Ok(id)
        };
        let first = sbatch(&["--parsable", &array.display().to_string()])?;
        let dep = format!("--dependency=afterok:{first}");
        let second = sbatch(&["--parsable", &dep, &merge.display().to_string()])?;
        Ok((first, second))
    }
}
