//! Web admin accounts and their API bearer tokens.

use async_trait::async_trait;

use sqlx::Row;

use crate::ports::AdminStore;
use crate::secrets::{hash_secret, new_token, token_hash, verify_secret};
use crate::{Store, StoreError, now_unix, to_db};

/// Admin user names: 1-64 of letters, digits, `.`, `_`, `-`, `@`.
fn check_username(user: &str) -> Result<(), StoreError> {
    let ok = (1..=64).contains(&user.len())
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "bad user name `{user}`: expected 1 to 64 letters, digits, '.', '_', '-' or '@'"
        )))
    }
}

/// An API token as it can be shown: never the token, which only its owner saw once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The first 12 hex digits of the token's SHA-256: enough to name it, useless to use it.
    pub id: String,
    pub user: String,
    /// Unix seconds.
    pub created_at: u64,
}

/// How many hex digits of the hash make a token's id.
const TOKEN_ID_LEN: usize = 12;

#[async_trait]
impl AdminStore for Store {
    async fn create_admin(&self, user: &str, password: &str) -> Result<(), StoreError> {
        check_username(user)?;
        if password.is_empty() {
            return Err(StoreError::Invalid("the password is empty".into()));
        }
        let hash = hash_secret(password)?;
        sqlx::query("INSERT INTO admins (username, password_hash, created_at) VALUES ($1, $2, $3)")
            .bind(user)
            .bind(hash)
            .bind(to_db(now_unix()))
            .execute(self.pool())
            .await
            .map_err(|e| StoreError::unique(e, || format!("admin {user}")))?;
        Ok(())
    }

    async fn verify_admin(&self, user: &str, password: &str) -> Result<bool, StoreError> {
        let hash: Option<String> =
            sqlx::query_scalar("SELECT password_hash FROM admins WHERE username = $1")
                .bind(user)
                .fetch_optional(self.pool())
                .await?;
        Ok(hash.is_some_and(|h| verify_secret(password, &h)))
    }

    async fn list_admins(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT username FROM admins ORDER BY username")
                .fetch_all(self.pool())
                .await?,
        )
    }

    async fn create_token(&self, user: &str) -> Result<String, StoreError> {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT username FROM admins WHERE username = $1")
                .bind(user)
                .fetch_optional(self.pool())
                .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("admin {user}")));
        }
        let token = new_token();
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, username, created_at) VALUES ($1, $2, $3)",
        )
        .bind(token_hash(&token))
        .bind(user)
        .bind(to_db(now_unix()))
        .execute(self.pool())
        .await?;
        Ok(token)
    }

    async fn verify_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        // Looked up by hash: comparing hashes leaks nothing useful about the token through timing.
        Ok(
            sqlx::query_scalar("SELECT username FROM api_tokens WHERE token_hash = $1")
                .bind(token_hash(token))
                .fetch_optional(self.pool())
                .await?,
        )
    }

    async fn delete_admin(&self, user: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        // Explicitly: SQLite enforces the cascade only with its foreign_keys pragma on.
        sqlx::query("DELETE FROM api_tokens WHERE username = $1")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM admins WHERE username = $1")
            .bind(user)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(done > 0)
    }

    async fn set_admin_password(&self, user: &str, password: &str) -> Result<bool, StoreError> {
        if password.is_empty() {
            return Err(StoreError::Invalid("the password is empty".into()));
        }
        let hash = hash_secret(password)?;
        let done = sqlx::query("UPDATE admins SET password_hash = $1 WHERE username = $2")
            .bind(hash)
            .bind(user)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(done > 0)
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query(
            "SELECT token_hash, username, created_at FROM api_tokens \
             ORDER BY created_at DESC, token_hash",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let hash: String = r.try_get("token_hash")?;
                Ok(ApiToken {
                    id: hash.chars().take(TOKEN_ID_LEN).collect(),
                    user: r.try_get("username")?,
                    created_at: crate::from_db(r.try_get("created_at")?),
                })
            })
            .collect()
    }

    async fn revoke_token(&self, id: &str) -> Result<bool, StoreError> {
        if id.len() != TOKEN_ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let done = sqlx::query("DELETE FROM api_tokens WHERE substr(token_hash, 1, 12) = $1")
            .bind(id.to_ascii_lowercase())
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(done > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        assert!(check_username("admin").is_ok());
        assert!(check_username("a.b-c_d@example.com").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("with space").is_err());
        assert!(check_username(&"x".repeat(65)).is_err());
    }
}
