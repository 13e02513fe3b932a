//! Sets `cfg(pbx_test_postgres)` when PBX_TEST_POSTGRES_URL is set, so that the PostgreSQL
//! store tests show as "ignored" (not as passed) when there is no database to run them on.
//! Also rebuilds when a migration is added: `sqlx::migrate!` embeds them at compile time.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(pbx_test_postgres)");
    println!("cargo::rerun-if-env-changed=PBX_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=../../migrations");
    if std::env::var_os("PBX_TEST_POSTGRES_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=pbx_test_postgres");
    }
}
