//! Progress of long commands: a bar on a terminal; otherwise (a log file, a pipe) plain lines
//! now and then, which show that the run advances.

use indicatif::{ProgressBar, ProgressStyle};
use std::time::{Duration, Instant};

/// How often a periodic line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(30);

pub struct Bar {
    bar: ProgressBar,
    started: Instant,
    last_line: Option<Instant>,
}

impl Bar {
    /// A bar counting `unit`s up to `len`, starting at `pos`.
    pub fn new(unit: &str, len: usize, pos: usize) -> Bar {
        let template =
            format!("{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit}, eta {{eta}} {{msg}}");
        let bar = ProgressBar::new(len as u64).with_position(pos as u64);
        bar.set_style(
            ProgressStyle::with_template(&template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        Bar {
            bar,
            started: Instant::now(),
            last_line: None,
        }
    }

    pub fn set(&self, pos: usize, len: usize) {
        self.bar.set_length(len as u64);
        self.bar.set_position(pos as u64);
    }

    pub fn inc(&self, n: usize) {
        self.bar.inc(n as u64);
    }

    /// The text beside the bar.
    pub fn status(&self, text: String) {
        self.bar.set_message(text);
    }

    /// A line above the bar, or in the log.
    pub fn line(&self, text: &str) {
        // `suspend`, not `println`: a hidden bar (a log file) drops `println` lines.
        self.bar.suspend(|| eprintln!("{text}"));
    }

    /// A line in the log only (a terminal has the bar).
    pub fn log(&self, text: &str) {
        if self.bar.is_hidden() {
            eprintln!("{text}");
        }
    }

    /// A line in the log at most every 30 s (and when `last`), with the seconds so far.
    pub fn log_now_and_then(&mut self, text: &str, last: bool) {
        let due = self.last_line.is_none_or(|t| t.elapsed() >= LINE_EVERY);
        if due || last {
            self.log(&format!(
                "{text} after {:.0} s",
                self.started.elapsed().as_secs_f64()
            ));
            self.last_line = Some(Instant::now());
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Runs the pipeline with a bar, and turns the library's errors into advice in terms of
/// `command`'s flags.
pub fn run_pipeline(
    job: &dmgd_distill::pipeline::Job,
    command: &str,
) -> anyhow::Result<dmgd_distill::pipeline::Outcome> {
    use dmgd_distill::pipeline::{PipelineError, Progress};
    let mut bar = Bar::new("images", 0, 0);
    let result = dmgd_distill::pipeline::run(job, &mut |p| match p {
        Progress::Preparing { class } => {
            bar.status(format!("support of {class}"));
            bar.log(&format!("support of {class}"));
        }
        Progress::Image { done, total } => {
            bar.set(done, total);
            bar.status(String::new());
            bar.log_now_and_then(&format!("{done}/{total} images"), done == total);
        }
    });
    bar.finish();
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
