//! Problems found in a dialplan file, each at its own `path:line:col`.

use std::fmt;
use std::ops::Range;

/// One problem in a dialplan. `line` and `col` are 1-based; `col` counts characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name as given to [`crate::Plan::parse`].
    pub path: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path, self.line, self.col, self.message
        )
    }
}

/// Every problem found in a dialplan, in file order. Display prints one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One `path:line:col: message` string per problem.
    pub fn lines(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Collects problems while a file is read; maps byte offsets to line and column.
pub(crate) struct Reporter<'a> {
    path: String,
    text: &'a str,
    line_starts: Vec<usize>,
    found: Vec<(usize, Diagnostic)>,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(path: &str, text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Reporter {
            path: path.to_owned(),
            text,
            line_starts,
            found: Vec::new(),
        }
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

    pub(crate) fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, col) = self.line_col(span.start);
        let diagnostic = Diagnostic {
            path: self.path.clone(),
            line,
            col,
            message: message.into(),
        };
        self.found.push((span.start, diagnostic));
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.found.is_empty()
    }

    /// Every problem, in file order, without repeats.
    pub(crate) fn finish(mut self) -> Diagnostics {
        self.found.sort_by_key(|(offset, _)| *offset);
        let mut out: Vec<Diagnostic> = self.found.into_iter().map(|(_, d)| d).collect();
        out.dedup();
        Diagnostics(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let r = Reporter::new("d.toml", "ab\ncd\n\né=x");
        assert_eq!(r.line_col(0), (1, 1));
        assert_eq!(r.line_col(3), (2, 1));
        assert_eq!(r.line_col(9), (4, 2));
        assert_eq!(r.line_col(999), (4, 4));
    }

    #[test]
    fn problems_come_out_in_file_order() {
        let mut r = Reporter::new("d.toml", "a\nb\n");
        r.error(2..3, "second");
        r.error(0..1, "first");
        assert_eq!(
            r.finish().to_string(),
            "d.toml:1:1: first\nd.toml:2:1: second"
        );
    }
}
