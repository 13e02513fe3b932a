//! Config problems, each with the `path:line:col` where it sits in the file: the diagnostics
//! the dialplan uses too (`pbx_diag`), under the config's names.

pub use pbx_diag::{
    Diagnostic as ConfigError, Diagnostics as ConfigErrors, SourceMap as Positions,
};
