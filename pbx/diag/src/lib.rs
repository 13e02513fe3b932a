//! Problems found in a text file, each reported at its own `path:line:col`: the one module
//! the config loader and the dialplan share, so both print positions the same way (1-based
//! lines, columns counted in characters, problems in file order, no repeats).

use std::fmt;
use std::ops::Range;

/// One problem. `line` and `col` are 1-based; `col` counts characters, not bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name as the user gave it.
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

/// Every problem found in a file, in file order. Display prints one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// One problem at the start of `path` (the file could not be read, say).
    pub fn at_start(path: &str, message: impl Into<String>) -> Diagnostics {
        Diagnostics(vec![Diagnostic {
            path: path.to_owned(),
            line: 1,
            col: 1,
            message: message.into(),
        }])
    }

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

/// Maps byte offsets of a text to 1-based line and character column.
pub struct SourceMap<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> SourceMap<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceMap { text, line_starts }
    }

    /// (line, col) of a byte offset; offsets past the end clamp to the end.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
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

/// Collects problems while a file is read, at byte spans; [`Reporter::finish`] gives them in
/// file order without repeats.
pub struct Reporter<'a> {
    path: String,
    map: SourceMap<'a>,
    found: Vec<(usize, Diagnostic)>,
}

impl<'a> Reporter<'a> {
    pub fn new(path: &str, text: &'a str) -> Self {
        Reporter {
            path: path.to_owned(),
            map: SourceMap::new(text),
            found: Vec::new(),
        }
    }

    /// (line, col) of a byte offset of the text.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        self.map.line_col(offset)
    }

    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, col) = self.map.line_col(span.start);
        let diagnostic = Diagnostic {
            path: self.path.clone(),
            line,
            col,
            message: message.into(),
        };
        self.found.push((span.start, diagnostic));
    }

    pub fn has_errors(&self) -> bool {
        !self.found.is_empty()
    }

    /// Every problem, in file order, without repeats.
    pub fn finish(mut self) -> Diagnostics {
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
        let map = SourceMap::new("ab\ncd\n\né=x");
        assert_eq!(map.line_col(0), (1, 1));
        assert_eq!(map.line_col(1), (1, 2));
        assert_eq!(map.line_col(3), (2, 1));
        assert_eq!(map.line_col(6), (3, 1));
        // 'é' is two bytes but one column.
        assert_eq!(map.line_col(9), (4, 2));
        assert_eq!(map.line_col(999), (4, 4));
    }

    #[test]
    fn problems_come_out_in_file_order_without_repeats() {
        let mut r = Reporter::new("d.toml", "a\nb\n");
        r.error(2..3, "second");
        r.error(0..1, "first");
        r.error(0..1, "first");
        assert_eq!(
            r.finish().to_string(),
            "d.toml:1:1: first\nd.toml:2:1: second"
        );
    }

    #[test]
    fn a_problem_at_the_start() {
        let d = Diagnostics::at_start("c.toml", "cannot read config file: gone");
        assert_eq!(d.lines(), ["c.toml:1:1: cannot read config file: gone"]);
    }
}
