//! The dialplan file as the admin edits it: read, validated with the dialplan's own parser
//! (every problem at its line and column), written atomically (a temp file beside it, then
//! a rename, so the PBX never reads half a file), traced, and its `may_call` lists
//! rewritten for the permission matrix with `toml_edit`, which keeps comments and layout.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pbx_dialplan::{CallContext, DialOutcome, Plan, TraceInputs};
use pbx_store::Extension;

/// One problem of a dialplan text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the config names no dialplan file: set [dialplan] file in pbx.toml")]
    NotConfigured,
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The file the config names.
pub fn configured(file: Option<PathBuf>) -> Result<PathBuf, FileError> {
    file.ok_or(FileError::NotConfigured)
}

pub fn read(path: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// The plan `text` makes, or every problem in it.
pub fn parse(path: &Path, text: &str) -> Result<Arc<Plan>, Vec<Problem>> {
    Plan::parse(&path.display().to_string(), text)
        .map(Arc::new)
        .map_err(|d| {
            d.iter()
                .map(|d| Problem {
                    line: d.line,
                    col: d.col,
                    message: d.message.clone(),
                })
                .collect()
        })
}

/// Replaces the file with `text` in one step: written and synced to a temp file in the same
/// folder, then renamed over it (atomic on POSIX), keeping the file's permissions.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), FileError> {
    let failed = |source| FileError::Write {
        path: path.display().to_string(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dialplan.toml".into());
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&temp, meta.permissions())?;
        }
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(failed)
}

/// What a trace asks: "what happens when `from` dials `to` at `at`".
#[derive(Debug, Clone, Default)]
pub struct TraceRequest {
    pub from: String,
    pub to: String,
    /// Unix seconds.
    pub at: u64,
    /// What each `dial` step comes to, in order (past the list: no answer, as the trace assumes).
    pub dial: Vec<DialOutcome>,
    /// The keys pressed at each menu, in order.
    pub digits: Vec<String>,
}

/// A `dial` outcome as written in the form or the API.
pub fn parse_outcome(text: &str) -> Result<DialOutcome, String> {
    match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
        "busy" => Ok(DialOutcome::Busy),
        "no-answer" | "noanswer" => Ok(DialOutcome::NoAnswer),
        "unavailable" => Ok(DialOutcome::Unavailable),
        "answered" | "answer" => Ok(DialOutcome::Answered),
        other => Err(format!(
            "`{other}`: expected busy, no-answer, unavailable or answered"
        )),
    }
}

/// `Plan::trace`'s steps for `request`, telling extensions by `extensions` (as
/// `pbx dialplan trace` does).
pub fn trace(plan: &Arc<Plan>, extensions: &[Extension], request: &TraceRequest) -> Vec<String> {
    let numbers: HashSet<&str> = extensions.iter().map(|e| e.number.as_str()).collect();
    let caller = extensions.iter().find(|e| e.number == request.from);
    let call = CallContext {
        caller: request.from.clone(),
        caller_name: caller.map(|e| e.name.clone()).unwrap_or_default(),
        caller_context: caller.map(|e| e.context.clone()).filter(|c| !c.is_empty()),
        dialed: request.to.clone(),
        now: i64::try_from(request.at)
            .ok()
            .and_then(|s| pbx_dialplan::Timestamp::from_second(s).ok())
            .unwrap_or(pbx_dialplan::Timestamp::UNIX_EPOCH),
    };
    let directory = |n: &str| numbers.contains(n);
    let inputs = TraceInputs {
        dial: request.dial.clone(),
        digits: request.digits.clone(),
        http: Vec::new(),
    };
    plan.trace(&call, &directory, &inputs)
}

/// The `may_call` entries every context may hold besides context names.
const ANY: &str = "any";

/// One row of the permission matrix: what a context may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub context: String,
    /// The contexts it may call, in the matrix's column order.
    pub may_call: Vec<String>,
    /// `any` (or no `may_call` at all): everything, outside numbers included.
    pub call_out: bool,
}

/// The matrix as the file says: for each context (in the plan's order), the contexts its
/// `may_call` names and whether it may call out. No `may_call`: it may call anything.
pub fn permissions(plan: &Plan, text: &str) -> Vec<Permissions> {
    let doc = text.parse::<toml_edit::DocumentMut>().ok();
    let contexts: Vec<String> = plan.context_names().map(str::to_string).collect();
    contexts
        .iter()
        .map(|name| {
            let list = doc.as_ref().and_then(|d| may_call_of(d, name));
            match list {
                None => Permissions {
                    context: name.clone(),
                    may_call: contexts.clone(),
                    call_out: true,
                },
                Some(entries) => Permissions {
                    context: name.clone(),
                    may_call: contexts
                        .iter()
                        .filter(|c| entries.iter().any(|e| e == *c))
                        .cloned()
                        .collect(),
                    call_out: entries.iter().any(|e| e == ANY),
                },
            }
        })
        .collect()
}

/// The `may_call` strings of context `name`; `None` when it has none.
fn may_call_of(doc: &toml_edit::DocumentMut, name: &str) -> Option<Vec<String>> {
    let list = doc
        .get("context")?
        .as_table_like()?
        .get(name)?
        .as_table_like()?
        .get("may_call")?
        .as_array()?;
    Some(
        list.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
    )
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MatrixError {
    #[error("the dialplan file is not valid TOML: {0}")]
    Toml(String),
    #[error("there is no context `{0}` in the dialplan")]
    UnknownContext(String),
}

/// `text` with the `may_call` of each context in `rows` rewritten to what the matrix says;
/// rows equal to `before` (what the page showed) are left alone, so saving an unchanged
/// matrix changes nothing. Entries other than context names and `any` (numbers, ranges,
/// patterns, `extensions`) stay as they are. Comments and layout are kept.
pub fn with_permissions(
    text: &str,
    before: &[Permissions],
    rows: &[Permissions],
) -> Result<String, MatrixError> {
    let mut doc = text
        .parse::<toml_edit::DocumentMut>()
        .map_err(|e| MatrixError::Toml(e.to_string()))?;
    let contexts: Vec<&str> = before.iter().map(|p| p.context.as_str()).collect();
    for row in rows {
        if !contexts.contains(&row.context.as_str()) {
            return Err(MatrixError::UnknownContext(row.context.clone()));
        }
        if before.iter().any(|b| b == row) {
            continue;
        }
        let kept: Vec<String> = may_call_of(&doc, &row.context)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e != ANY && !contexts.contains(&e.as_str()))
            .collect();
        let mut list = toml_edit::Array::new();
        for entry in kept
            .iter()
            .map(String::as_str)
            .chain(
                contexts
                    .iter()
                    .copied()
                    .filter(|c| row.may_call.iter().any(|m| m.as_str() == *c)),
            )
            .chain(row.call_out.then_some(ANY))
        {
            list.push(entry);
        }
        let table = doc
            .get_mut("context")
            .and_then(|c| c.as_table_like_mut())
            .and_then(|c| c.get_mut(&row.context))
            .and_then(|c| c.as_table_like_mut())
            .ok_or_else(|| MatrixError::UnknownContext(row.context.clone()))?;
        match table
            .get_mut("may_call")
            .and_then(|item| item.as_value_mut())
        {
            // In place: the key, its position and the comment after it stay.
            Some(value) => {
                let decor = value.decor().clone();
                let mut new = toml_edit::Value::Array(list);
                *new.decor_mut() = decor;
                *value = new;
            }
            None => {
                table.insert("may_call", toml_edit::value(list));
            }
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"# The office plan.
[defaults]
context = "staff"

# Everyone.
[context.staff]
[[context.staff.rule]]
extension = true
steps = [{ dial = "${number}" }]

[context.lobby]
members = ["4900-4999"]
may_call = ["4001", "staff"]   # reception and staff only
include = ["staff"]
"#;

    fn plan(text: &str) -> Arc<Plan> {
        match parse(Path::new("dialplan.toml"), text) {
            Ok(p) => p,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn the_matrix_reads_may_call_and_writes_it_back_keeping_comments() {
        let p = plan(PLAN);
        let before = permissions(&p, PLAN);
        assert_eq!(
            before,
            [
                Permissions {
                    context: "staff".into(),
                    may_call: vec!["staff".into(), "lobby".into()],
                    call_out: true,
                },
                Permissions {
                    context: "lobby".into(),
                    may_call: vec!["staff".into()],
                    call_out: false,
                },
            ]
        );
        // Unchanged: the same text.
        assert_eq!(
            with_permissions(PLAN, &before, &before).as_deref(),
            Ok(PLAN)
        );

        // Staff may not call out nor call the lobby; the lobby may call out.
        let after = [
            Permissions {
                context: "staff".into(),
                may_call: vec!["staff".into()],
                call_out: false,
            },
            Permissions {
                context: "lobby".into(),
                may_call: vec!["staff".into()],
                call_out: true,
            },
        ];
        let text = match with_permissions(PLAN, &before, &after) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert!(text.starts_with("# The office plan.\n"), "{text}");
        assert!(
            text.contains("# Everyone.\n[context.staff]\nmay_call = [\"staff\"]\n"),
            "{text}"
        );
        assert!(
            text.contains("may_call = [\"4001\", \"staff\", \"any\"]"),
            "{text}"
        );
        assert!(text.contains("# reception and staff only"), "{text}");
        let again = plan(&text);
        assert_eq!(permissions(&again, &text), after);
    }

    #[test]
    fn unknown_contexts_and_broken_files_are_refused() {
        let p = plan(PLAN);
        let before = permissions(&p, PLAN);
        let stranger = [Permissions {
            context: "ghost".into(),
            may_call: vec![],
            call_out: false,
        }];
        assert_eq!(
            with_permissions(PLAN, &before, &stranger),
            Err(MatrixError::UnknownContext("ghost".into()))
        );
        assert!(matches!(
            with_permissions("[context", &before, &before),
            Err(MatrixError::Toml(_))
        ));
    }

    #[test]
    fn problems_have_their_line_and_column() {
        let Err(problems) = parse(Path::new("d.toml"), "[context.a]\nbogus = 1\n") else {
            panic!("accepted");
        };
        assert!(
            problems
                .iter()
                .any(|p| p.line == 2 && p.col == 1 && p.message.contains("bogus")),
            "{problems:?}"
        );
    }

    #[test]
    fn writes_replace_the_file_whole() {
        let dir = std::env::temp_dir().join(format!("pbx-web-dialplan-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("dialplan.toml");
        let _ = std::fs::write(&file, "old");
        assert!(write_atomically(&file, "new").is_ok());
        assert_eq!(read(&file).ok().as_deref(), Some("new"));
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(left.len(), 1, "no temp file left: {left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
