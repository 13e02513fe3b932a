//! The dialplan of the running PBX: loaded from `[dialplan] file`, validated, and swapped
//! atomically on reload. A call takes [`PlanHandle::current`] once and keeps that `Arc` for its
//! whole life, so a reload never changes a call in progress.

use std::path::Path;
use std::sync::Arc;

use pbx_dialplan::{Diagnostic, Diagnostics, Plan};

/// Reads and validates the dialplan that `config` names. `Ok(None)` when the config names
/// none. Every problem comes back as `path:line:col: message`.
pub fn load(config: &crate::config::Config) -> Result<Option<Arc<Plan>>, Vec<String>> {
    load_assigned(config, &[])
}

/// As [`load`], `assigned` naming the contexts the store gives calls (trunks' and
/// extensions' `--context`): those are not unreachable without `may_call`.
pub fn load_assigned(
    config: &crate::config::Config,
    assigned: &[String],
) -> Result<Option<Arc<Plan>>, Vec<String>> {
    match &config.dialplan.file {
        None => Ok(None),
        Some(path) => {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| vec![format!("{shown}:1:1: cannot read dialplan file: {e}")])?;
            check_text(config, &shown, &text, assigned)
                .map(|plan| Some(Arc::new(plan)))
                .map_err(|problems| problems.lines())
        }
    }
}

/// The one validation of a dialplan text the server has, whatever loads it (`serve` at
/// start, on SIGHUP and on a file change; the web admin's check, save and reload; `pbx
/// check`): `assigned` (the contexts the store gives calls) are reachable without
/// `may_call`, and every `db_lookup` database has its `[lookup.NAME]` in `config`.
pub fn check_text(
    config: &crate::config::Config,
    shown: &str,
    text: &str,
    assigned: &[String],
) -> Result<Plan, Diagnostics> {
    let plan = Plan::parse_assigned(shown, text, assigned)?;
    let unknown: Vec<Diagnostic> = plan
        .lookup_databases()
        .into_iter()
        .filter(|(name, _)| !config.lookup.contains_key(*name))
        .map(|(name, line)| Diagnostic {
            path: shown.to_string(),
            line,
            col: 1,
            message: format!(
                "db_lookup names the database `{name}`, which has no [lookup.{name}] section \
                 in {}",
                config.path.display()
            ),
        })
        .collect();
    if unknown.is_empty() {
        Ok(plan)
    } else {
        Err(Diagnostics(unknown))
    }
}

/// The plan of the running server: the file `config` names, validated with the contexts
/// the store assigns now (a store that cannot say leaves the file's own rules).
pub async fn load_with_store(
    config: &crate::config::Config,
    store: &pbx_store::Store,
) -> Result<Option<Arc<Plan>>, Vec<String>> {
    let assigned = assigned_contexts(store).await.unwrap_or_default();
    load_assigned(config, &assigned)
}

/// Reads and validates one dialplan file.
pub fn load_file(path: &Path) -> Result<Plan, Vec<String>> {
    load_file_assigned(path, &[])
}

fn load_file_assigned(path: &Path, assigned: &[String]) -> Result<Plan, Vec<String>> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("{shown}:1:1: cannot read dialplan file: {e}")])?;
    Plan::parse_assigned(&shown, &text, assigned).map_err(|problems| problems.lines())
}

/// The contexts the store assigns to calls: each trunk's and each extension's `--context`.
pub async fn assigned_contexts(store: &pbx_store::Store) -> Result<Vec<String>, String> {
    use pbx_store::{ExtensionStore, TrunkStore};
    let trunks = store.list_trunks().await.map_err(|e| e.to_string())?;
    let extensions = store.list_extensions().await.map_err(|e| e.to_string())?;
    let mut contexts: Vec<String> = trunks
        .into_iter()
        .map(|t| t.context)
        .chain(extensions.into_iter().map(|e| e.context))
        .filter(|c| !c.is_empty())
        .collect();
    contexts.sort();
    contexts.dedup();
    Ok(contexts)
}

/// `trunk:NAME/...` targets naming no trunk in `trunks`, as `path:line:col: message`.
pub fn unknown_trunks(plan: &Plan, trunks: &[String]) -> Vec<String> {
    plan.trunk_targets()
        .filter(|(name, _, _)| !trunks.iter().any(|t| t == name))
        .map(|(name, line, col)| {
            format!(
                "{}:{line}:{col}: dial names the trunk `{name}`, which does not exist \
                 (`pbx trunk list`; add it with `pbx trunk add {name} ...`)",
                plan.path()
            )
        })
        .collect()
}

pub use pbx_engine::plan::PlanHandle;

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(dir: &Path, dialplan: &str) -> crate::config::Config {
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(dir.join("dialplan.toml"), dialplan);
        let pbx = dir.join("pbx.toml");
        let _ = std::fs::write(
            &pbx,
            "[sip]\ndomain = \"pbx.test\"\n[dialplan]\nfile = \"dialplan.toml\"\n",
        );
        match crate::config::load(&pbx) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn trunk_targets_must_name_a_trunk() {
        let dir = std::env::temp_dir().join(format!("pbx-plan-trunk-{}", std::process::id()));
        let plan = "[defaults]\ncontext = \"a\"\n[context.a]\n[[context.a.rule]]\n\
                    pattern = \"_0.\"\nsteps = [{ dial = \"trunk:carrier/${number:1}\" }]\n\
                    [context.from-carrier]\n[[context.from-carrier.rule]]\npattern = \"1\"\n\
                    steps = [\"echo\"]\n";
        let config = config_with(&dir, plan);
        // The trunk's context is unreachable unless the store assigns it.
        assert!(load(&config).is_err());
        let assigned = ["from-carrier".to_string()];
        let loaded = load_assigned(&config, &assigned);
        let Ok(Some(loaded)) = loaded else {
            panic!("{loaded:?}");
        };
        let unknown = unknown_trunks(&loaded, &["other".to_string()]);
        assert_eq!(unknown.len(), 1, "{unknown:?}");
        assert!(
            unknown[0].contains("dialplan.toml:6:19: dial names the trunk `carrier`"),
            "{unknown:?}"
        );
        assert!(unknown_trunks(&loaded, &["carrier".to_string()]).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_db_lookup_needs_its_database_in_the_config() {
        let dir = std::env::temp_dir().join(format!("pbx-plan-db-{}", std::process::id()));
        let plan = "[defaults]\ncontext = \"a\"\n[context.a]\n[[context.a.rule]]\npattern = \"1\"\n\
                    steps = [{ db_lookup = { database = \"crm\", query = \"SELECT 1 AS x\", set = { x = \"x\" } } }]\n";
        let mut config = config_with(&dir, plan);
        let errors = load(&config).err().unwrap_or_default();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("dialplan.toml:6:1: db_lookup names the database `crm`"),
            "{errors:?}"
        );
        config.lookup.insert(
            "crm".into(),
            crate::config::LookupConfig {
                url: "sqlite://crm.db".into(),
            },
        );
        assert!(load(&config).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
