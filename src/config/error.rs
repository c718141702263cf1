//! Config errors: every one names the file, and where the text allows it, the line, the
//! column and the trunk. Loading collects all of them before giving up, so an operator
//! fixes a file in one pass instead of one error per `check-config` run. Warnings name
//! the same places, but do not stop a load.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One problem found while loading or validating a config generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: Arc<Path>,
    /// 1-based line and column, absent for errors about the whole file (unreadable, ...).
    pub position: Option<(u32, u32)>,
    /// The trunk id whose table holds the problem, if any.
    pub trunk: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        f.write_str(": ")?;
        if let Some(trunk) = &self.trunk {
            write!(f, "trunk {trunk}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// All errors of one failed load, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Something a valid config generation says that is probably not what the operator
/// meant; the generation loads and runs anyway. Located and printed like a
/// [`ConfigError`] (`file:line:column: trunk <id>: message`); `check-config` puts
/// `warning: ` in front, the daemon logs it at WARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning(pub ConfigError);

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The text of one config file and what is needed to turn byte offsets into positions.
#[derive(Debug)]
pub(super) struct SourceFile {
    pub path: Arc<Path>,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub(super) fn new(path: PathBuf, text: String) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(index, _)| index + 1))
            .collect();
        Self {
            path: path.into(),
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(super) fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let line_text = &self.text[self.line_starts[line]..offset];
        let column = line_text.chars().count() + 1;
        (line as u32 + 1, column as u32)
    }

    pub(super) fn error_at(
        &self,
        offset: usize,
        trunk: Option<&str>,
        message: String,
    ) -> ConfigError {
        ConfigError {
            file: self.path.clone(),
            position: Some(self.position(offset)),
            trunk: trunk.map(str::to_owned),
            message,
        }
    }

    pub(super) fn error(&self, message: String) -> ConfigError {
        ConfigError {
            file: self.path.clone(),
            position: None,
            trunk: None,
            message,
        }
    }

    /// "file:line:column" of an offset, for messages that point at a second place.
    pub(super) fn describe(&self, offset: usize) -> String {
        let (line, column) = self.position(offset);
        format!("{}:{line}:{column}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let file = SourceFile::new("a.toml".into(), "ab\nné = 1\n".into());
        assert_eq!(file.position(0), (1, 1));
        assert_eq!(file.position(1), (1, 2));
        assert_eq!(file.position(3), (2, 1));
        // "né" is three bytes: '=' sits at byte offset 3 + 4 = 7, column 4.
        assert_eq!(file.position(7), (2, 4));
    }

    #[test]
    fn display_has_file_line_column_and_trunk() {
        let file = SourceFile::new("x/t.toml".into(), "a\nb = 1\n".into());
        let error = file.error_at(2, Some("carrier"), "bad".into());
        assert_eq!(error.to_string(), "x/t.toml:2:1: trunk carrier: bad");
        assert_eq!(file.error("gone".into()).to_string(), "x/t.toml: gone");
    }
}
