//! The report: one line per step with its tag, detail lines under it, and the exit
//! status from the count of failures.

use std::fmt::Write as _;
use std::time::Duration;

use super::{EXIT_FAILED, EXIT_OK};

/// Detail lines are indented under the step's tag.
const INDENT: &str = "       ";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Ok,
    Fail,
    Warn,
    Skip,
}

impl Status {
    fn tag(self) -> &'static str {
        match self {
            Status::Ok => "[ok]",
            Status::Fail => "[FAIL]",
            Status::Warn => "[warn]",
            Status::Skip => "[skip]",
        }
    }
}

/// One report line and the detail lines under it.
#[derive(Debug, Clone)]
pub(super) struct Step {
    pub(super) status: Status,
    pub(super) name: &'static str,
    pub(super) summary: String,
    pub(super) details: Vec<String>,
}

impl Step {
    pub(super) fn new(status: Status, name: &'static str, summary: impl Into<String>) -> Self {
        Step {
            status,
            name,
            summary: summary.into(),
            details: Vec::new(),
        }
    }

    pub(super) fn detail(mut self, text: impl Into<String>) -> Self {
        self.details.push(text.into());
        self
    }

    pub(super) fn render(&self) -> String {
        let mut text = format!("{} {}: {}", self.status.tag(), self.name, self.summary);
        for detail in &self.details {
            let _ = write!(text, "\n{INDENT}{detail}");
        }
        text
    }
}

#[derive(Default)]
pub(super) struct Report {
    failures: usize,
    warnings: usize,
}

impl Report {
    /// Prints the step at once, so a slow step shows the ones before it.
    pub(super) fn add(&mut self, step: Step) {
        match step.status {
            Status::Fail => self.failures += 1,
            Status::Warn => self.warnings += 1,
            Status::Ok | Status::Skip => {}
        }
        println!("{}", step.render());
    }

    pub(super) fn finish(&self) -> u8 {
        let warnings = crate::io::count_of(self.warnings, "warning");
        if self.failures == 0 {
            println!("result: ok ({warnings})");
            EXIT_OK
        } else {
            let failures = crate::io::count_of(self.failures, "failed step");
            println!("result: FAIL ({failures}, {warnings})");
            EXIT_FAILED
        }
    }
}

pub(super) fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_have_the_tag_the_step_and_indented_details() {
        let step = Step::new(Status::Fail, "options", "timeout").detail("more");
        assert_eq!(
            step.render(),
            format!("[FAIL] options: timeout\n{INDENT}more")
        );
    }
}
