//! Config problems, each with the `path:line:col` where it sits in the file.

use std::fmt;
use std::path::PathBuf;

/// One problem in a config file. `line` and `col` are 1-based; `col` counts characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// Every problem found in a config file, in file order. Display prints one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.errors.iter()
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Maps byte offsets of a source text to 1-based line and character column.
pub(crate) struct Positions<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Positions<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Positions { text, line_starts }
    }

    /// (line, col) of a byte offset; offsets past the end clamp to the end.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line, col + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let p = Positions::new("ab\ncd\n\né=x");
        assert_eq!(p.line_col(0), (1, 1));
        assert_eq!(p.line_col(1), (1, 2));
        assert_eq!(p.line_col(3), (2, 1));
        assert_eq!(p.line_col(6), (3, 1));
        // 'é' is two bytes but one column.
        assert_eq!(p.line_col(9), (4, 2));
        assert_eq!(p.line_col(999), (4, 4));
    }

    #[test]
    fn display_is_one_problem_per_line() {
        let e = |line, message: &str| ConfigError {
            path: "c.toml".into(),
            line,
            col: 3,
            message: message.into(),
        };
        let all = ConfigErrors {
            errors: vec![e(1, "a"), e(2, "b")],
        };
        assert_eq!(all.to_string(), "c.toml:1:3: a\nc.toml:2:3: b");
    }
}
