//! Reading `pbx.toml`: parse with spans, then walk the tree ourselves so that every problem is
//! reported at once, each at its own `line:col`.

use std::path::{Path, PathBuf};

use toml::de::DeTable;

use super::errors::ConfigErrors;
use super::model::Config;
use super::read::Ctx;
use super::sections;

/// Loads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let at_start = |message: String| ConfigErrors::at_start(&path.display().to_string(), message);
    let text = std::fs::read_to_string(path)
        .map_err(|e| at_start(format!("cannot read config file: {e}")))?;
    let absolute = std::path::absolute(path)
        .map_err(|e| at_start(format!("cannot resolve config path: {e}")))?;
    let base_dir = absolute
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    load_str(&text, path, &base_dir)
}

/// Validates config `text` as if read from `path`, resolving relative paths against `base_dir`.
pub fn load_str(text: &str, path: &Path, base_dir: &Path) -> Result<Config, ConfigErrors> {
    let mut ctx = Ctx::new(path, base_dir, text);
    let (root, syntax) = DeTable::parse_recoverable(text);
    let mut config = None;
    if syntax.is_empty() {
        config = Some(sections::config(&mut ctx, root.get_ref()));
    } else {
        // The recovered tree is partial; checking it would add noise. One error per line:
        // the parser's follow-up complaints on the same line add nothing.
        let mut lines = std::collections::HashSet::new();
        for e in syntax {
            let offset = e.span().map_or(0, |s| s.start);
            if lines.insert(ctx.line_of(offset)) {
                ctx.error(
                    offset..offset,
                    format!("TOML syntax error: {}", e.message().trim()),
                );
            }
        }
    }
    let mut errors = ctx.into_errors();
    if let Some(config) = config
        && errors.is_empty()
    {
        Ok(config)
    } else {
        errors.sort_by_key(|e| (e.line, e.col));
        errors.dedup();
        Err(ConfigErrors(errors))
    }
}
