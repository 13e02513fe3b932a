//! Reading an extensions CSV for `pbx extension import` (the parser is the store's, shared
//! with the web admin): every bad row is reported as `FILE:LINE: message`, and nothing is
//! imported when any row is bad.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use pbx_store::NewExtension;

/// Parses and checks `text` (read from `path`). `existing` holds the numbers already in the
/// database and `dids` the DIDs given (DID → extension): a row repeating one is an error too.
/// Returns the rows, or one message per problem.
pub fn parse_csv(
    path: &Path,
    text: &str,
    existing: &HashSet<String>,
    dids: &HashMap<String, String>,
) -> Result<Vec<NewExtension>, Vec<String>> {
    pbx_store::parse_extensions_csv(text, existing, dids).map_err(|problems| {
        problems
            .into_iter()
            .map(|p| format!("{}:{}: {}", path.display(), p.line, p.message))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_the_file_and_line() {
        let existing: HashSet<String> = ["2000".to_string()].into_iter().collect();
        let errs = parse_csv(
            Path::new("staff.csv"),
            "number,password\n2000,pw\n12x,pw\n",
            &existing,
            &HashMap::new(),
        )
        .err()
        .unwrap_or_default();
        assert_eq!(
            errs,
            vec![
                "staff.csv:2: extension 2000 already exists",
                "staff.csv:3: bad extension number `12x`: expected 2 to 15 digits",
            ]
        );
    }
}
