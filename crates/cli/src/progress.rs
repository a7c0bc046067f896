//! Progress of long commands: a bar on a terminal, a plain line now and then otherwise (a
//! log file or a pipe shows that the run advances).

use dmgd_distill::pipeline::{self, Job, PipelineError, Progress};
use indicatif::{ProgressBar, ProgressStyle};
use std::time::{Duration, Instant};

/// How often a plain line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(30);

pub struct ImageProgress {
    bar: ProgressBar,
    started: Instant,
    last_line: Option<Instant>,
}

impl ImageProgress {
    pub fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} images, {per_sec}, eta {eta} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        ImageProgress {
            bar,
            started: Instant::now(),
            last_line: None,
        }
    }

    pub fn message(&mut self, text: &str) {
        self.bar.set_message(text.to_string());
        if self.bar.is_hidden() {
            eprintln!("{text}");
        }
    }

    pub fn images(&mut self, done: usize, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
        self.bar.set_message(String::new());
        let due = self.last_line.is_none_or(|t| t.elapsed() >= LINE_EVERY);
        if self.bar.is_hidden() && (due || done == total) {
            eprintln!(
                "{done}/{total} images after {:.0} s",
                self.started.elapsed().as_secs_f64()
            );
            self.last_line = Some(Instant::now());
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Runs the pipeline with a progress bar (plain lines when stderr is not a terminal), and
/// turns the library's errors into advice in terms of `command`'s flags.
pub fn run_pipeline(job: &Job, command: &str) -> anyhow::Result<pipeline::Outcome> {
    let mut progress = ImageProgress::new();
    let result = pipeline::run(job, &mut |p| match p {
        Progress::Preparing { class } => progress.message(&format!("support of {class}")),
        Progress::Image { done, total } => progress.images(done, total),
    });
    progress.finish();
    result.map_err(|e| {
        let out = job.out.display();
        let advice = match &e {
            PipelineError::OutputExists { .. } => format!(
                "pass --resume to finish that run (only with its exact settings), --overwrite to replace it, or another --out"
            ),
            PipelineError::Manifest(dmgd_run::ManifestError::Mismatch(_)) => format!(
                "{out} is another run's: choose another --out (or leave it out: the default folder follows the settings), or --overwrite to replace it"
            ),
            PipelineError::Data(_) if job.out.exists() => format!(
                "fix or remove the file, then finish with `dmgd {command} ... --resume` and the same settings: the images written so far are kept"
            ),
            _ => return anyhow::Error::new(e),
        };
        anyhow::Error::new(e).context(advice)
    })
}
