//! Extensions: a SIP account and a voicemail box each. The store keeps the digest HA1s for MD5
//! and SHA-256 and an argon2 hash of the PIN, never the password or PIN themselves.

use crate::Credentials;
use ipnet::IpNet;
use pbx_sip::auth::{Algorithm, ha1_hex};
use sqlx::Row;
use sqlx::any::AnyRow;

use async_trait::async_trait;

use crate::did_unique;
use crate::ports::{CredentialStore, ExtensionStore};
use crate::secrets::hash_secret;
use crate::{Store, StoreError, from_db, now_unix, to_db};

/// An extension to create, with its plain secrets (hashed before they reach the database).
#[derive(Clone, Default, PartialEq)]
pub struct NewExtension {
    pub number: String,
    pub password: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub pin: Option<String>,
    /// Where this extension may register and call from; empty = anywhere.
    pub allowed_networks: Vec<IpNet>,
    /// `required`, `optional` or `off`; `None` = optional.
    pub media_encryption: Option<String>,
    /// Its own public number (DID), presented as its caller ID on trunks; `None` or empty:
    /// none.
    pub did: Option<String>,
}

/// The SRTP policies an extension may have.
pub const MEDIA_ENCRYPTION: [&str; 3] = ["required", "optional", "off"];

// Hand-written so that the password and PIN never reach a log through `{:?}`.
impl std::fmt::Debug for NewExtension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewExtension")
            .field("number", &self.number)
            .field("name", &self.name)
            .field("email", &self.email)
            .field("allowed_networks", &self.allowed_networks)
            .field("did", &self.did)
            .finish_non_exhaustive()
    }
}

/// An extension as listed (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub number: String,
    pub name: String,
    pub email: String,
    pub has_pin: bool,
    pub allowed_networks: Vec<IpNet>,
    pub created_at: u64,
    /// `required`, `optional` or `off`.
    pub media_encryption: String,
    /// The dialplan context it calls from; empty: the dialplan decides.
    pub context: String,
    /// Its devices get message-waiting NOTIFYs without subscribing (RFC 3842 unsolicited).
    pub mwi_unsolicited: bool,
    /// Its own public number (DID) for trunk calls; empty: none.
    pub did: String,
}

/// Changes to an existing extension (`pbx extension set`): `None` leaves a field as it is.
/// An empty name, e-mail or context clears it.
#[derive(Clone, Default, PartialEq)]
pub struct ExtensionChanges {
    pub password: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub pin: Option<String>,
    pub media_encryption: Option<String>,
    pub context: Option<String>,
    /// Message-waiting NOTIFYs without a subscription, on or off.
    pub mwi_unsolicited: Option<bool>,
    /// Its own public number (DID); empty clears it.
    pub did: Option<String>,
}

// Hand-written so that the password and PIN never reach a log through `{:?}`.
impl std::fmt::Debug for ExtensionChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtensionChanges")
            .field("password", &self.password.as_ref().map(|_| "..."))
            .field("name", &self.name)
            .field("email", &self.email)
            .field("pin", &self.pin.as_ref().map(|_| "..."))
            .field("media_encryption", &self.media_encryption)
            .field("context", &self.context)
            .field("mwi_unsolicited", &self.mwi_unsolicited)
            .field("did", &self.did)
            .finish()
    }
}

impl ExtensionChanges {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == ExtensionChanges::default()
    }

    /// Every problem with the new values (empty when valid), by the rules of
    /// [`NewExtension::problems`].
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(password) = &self.password {
            out.extend(password_problem(password));
        }
        if let Some(policy) = &self.media_encryption {
            out.extend(policy_problem(policy));
        }
        if let Some(name) = &self.name {
            out.extend(name_problem(name));
        }
        if let Some(email) = &self.email {
            out.extend(email_problem(email));
        }
        if let Some(pin) = &self.pin {
            out.extend(crate::pins::pin_problem(pin));
        }
        if let Some(context) = &self.context
            && context.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            out.push(format!(
                "bad context `{context}`: no spaces or control characters"
            ));
        }
        if let Some(did) = &self.did {
            out.extend(did_problem(did));
        }
        out
    }
}

impl NewExtension {
    /// Every problem with this extension's fields (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let n = &self.number;
        if !(2..=15).contains(&n.len()) || !n.bytes().all(|b| b.is_ascii_digit()) {
            out.push(format!(
                "bad extension number `{n}`: expected 2 to 15 digits"
            ));
        }
        if let Some(policy) = &self.media_encryption {
            out.extend(policy_problem(policy));
        }
        out.extend(password_problem(&self.password));
        if let Some(name) = &self.name {
            out.extend(name_problem(name));
        }
        if let Some(email) = &self.email {
            out.extend(email_problem(email));
        }
        if let Some(pin) = &self.pin {
            out.extend(crate::pins::pin_problem(pin));
        }
        if let Some(did) = &self.did {
            out.extend(did_problem(did));
        }
        out
    }
}

/// A DID is what a trunk is sent in `From` and `P-Asserted-Identity`: digits with an optional
/// leading `+` (E.164 allows at most 15 digits; a few more for national prefixes), or empty
/// for none.
fn did_problem(did: &str) -> Option<String> {
    let digits = did.strip_prefix('+').unwrap_or(did);
    let ok = did.is_empty()
        || ((1..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()));
    (!ok).then(|| {
        format!("bad DID `{did}`: expected digits with an optional leading +, at most 20 digits")
    })
}

fn policy_problem(policy: &str) -> Option<String> {
    (!MEDIA_ENCRYPTION.contains(&policy))
        .then(|| format!("bad media encryption `{policy}`: expected required, optional or off"))
}

fn password_problem(password: &str) -> Option<String> {
    if password.is_empty() {
        Some("the password is empty".to_string())
    } else if password.chars().any(char::is_control) {
        Some("the password contains control characters".to_string())
    } else {
        None
    }
}

fn name_problem(name: &str) -> Option<String> {
    name.chars()
        .any(char::is_control)
        .then(|| "the name contains control characters".to_string())
}

fn email_problem(email: &str) -> Option<String> {
    (!email.is_empty() && !email_shape_ok(email)).then(|| format!("bad e-mail address `{email}`"))
}

/// `local@domain.tld` without spaces: enough to catch typos; the mail server decides the rest.
fn email_shape_ok(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
}

fn networks_to_text(nets: &[IpNet]) -> String {
    nets.iter()
        .map(IpNet::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn networks_from_text(text: &str) -> Result<Vec<IpNet>, StoreError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| StoreError::Corrupt(format!("bad network `{s}`")))
        })
        .collect()
}

/// The row to insert, secrets hashed. Argon2 is slow on purpose: do it before any transaction.
struct Hashed {
    number: String,
    name: String,
    email: String,
    ha1_md5: String,
    ha1_sha256: String,
    pin_hash: Option<String>,
    networks: String,
    media_encryption: String,
    did: String,
}

fn hash(realm: &str, ext: &NewExtension) -> Result<Hashed, StoreError> {
    if let Some(problem) = ext.problems().into_iter().next() {
        return Err(StoreError::Invalid(problem));
    }
    Ok(Hashed {
        number: ext.number.clone(),
        name: ext.name.clone().unwrap_or_default(),
        email: ext.email.clone().unwrap_or_default(),
        ha1_md5: ha1_hex(Algorithm::Md5, &ext.number, realm, &ext.password),
        ha1_sha256: ha1_hex(Algorithm::Sha256, &ext.number, realm, &ext.password),
        pin_hash: ext.pin.as_deref().map(hash_secret).transpose()?,
        networks: networks_to_text(&ext.allowed_networks),
        media_encryption: ext
            .media_encryption
            .clone()
            .unwrap_or_else(|| "optional".to_string()),
        did: ext.did.clone().unwrap_or_default(),
    })
}

const INSERT: &str = "INSERT INTO extensions \
    (number, name, email, ha1_md5, ha1_sha256, pin_hash, allowed_networks, created_at, \
    media_encryption, did) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

fn insert(h: &Hashed, now: u64) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(INSERT)
        .bind(&h.number)
        .bind(&h.name)
        .bind(&h.email)
        .bind(&h.ha1_md5)
        .bind(&h.ha1_sha256)
        .bind(h.pin_hash.as_deref())
        .bind(&h.networks)
        .bind(to_db(now))
        .bind(&h.media_encryption)
        .bind(&h.did)
}

/// The columns [`extension_from`] reads.
macro_rules! extension_columns {
    () => {
        "number, name, email, pin_hash, allowed_networks, created_at, media_encryption, context, \
         mwi_unsolicited, did"
    };
}

/// The search of [`ExtensionStore::search_extensions`]: `$1` is the `LIKE` pattern, `%%` for
/// every extension.
macro_rules! extension_filter {
    () => {
        "WHERE $1 = '%%' OR lower(number) LIKE $1 ESCAPE '\\' OR lower(name) LIKE $1 ESCAPE '\\' \
         OR lower(email) LIKE $1 ESCAPE '\\'"
    };
}

fn extension_from(row: &AnyRow) -> Result<Extension, StoreError> {
    Ok(Extension {
        number: row.try_get("number")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        has_pin: row.try_get::<Option<String>, _>("pin_hash")?.is_some(),
        allowed_networks: networks_from_text(&row.try_get::<String, _>("allowed_networks")?)?,
        created_at: from_db(row.try_get("created_at")?),
        media_encryption: row.try_get("media_encryption")?,
        context: row.try_get("context")?,
        mwi_unsolicited: row.try_get::<i64, _>("mwi_unsolicited")? != 0,
        did: row.try_get("did")?,
    })
}

/// `text` for a `LIKE ... ESCAPE '\'` pattern: its `%`, `_` and `\` match themselves.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn credentials_from(row: &AnyRow) -> Result<Credentials, StoreError> {
    Ok(Credentials {
        number: row.try_get("number")?,
        ha1_md5: row.try_get("ha1_md5")?,
        ha1_sha256: row.try_get("ha1_sha256")?,
        allowed_networks: networks_from_text(&row.try_get::<String, _>("allowed_networks")?)?,
        media_encryption: row.try_get("media_encryption")?,
        context: row.try_get("context")?,
        mwi_unsolicited: row.try_get::<i64, _>("mwi_unsolicited")? != 0,
        name: row.try_get("name")?,
        did: row.try_get("did")?,
    })
}

fn bump_revision() -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query("UPDATE revisions SET value = value + 1 WHERE name = 'extensions'")
}

macro_rules! credentials_query {
    ($($tail:literal)?) => {
        concat!("SELECT number, ha1_md5, ha1_sha256, allowed_networks, media_encryption, context, mwi_unsolicited, name, did FROM extensions" $(, $tail)?)
    };
}

#[async_trait]
impl ExtensionStore for Store {
    async fn add_extension(&self, realm: &str, ext: NewExtension) -> Result<(), StoreError> {
        let h = hash(realm, &ext)?;
        let mut tx = self.pool().begin().await?;
        did_unique::check_free(&mut tx, &h.did, &h.number).await?;
        insert(&h, now_unix())
            .execute(&mut *tx)
            .await
            .map_err(|e| did_unique::unique(e, &h.number, &h.did))?;
        bump_revision().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn import_extensions(
        &self,
        realm: &str,
        exts: Vec<NewExtension>,
    ) -> Result<usize, StoreError> {
        let hashed = exts
            .iter()
            .map(|e| hash(realm, e))
            .collect::<Result<Vec<_>, _>>()?;
        did_unique::check_batch(hashed.iter().map(|h| (h.number.as_str(), h.did.as_str())))?;
        let now = now_unix();
        let mut tx = self.pool().begin().await?;
        for h in &hashed {
            did_unique::check_free(&mut tx, &h.did, &h.number).await?;
            insert(h, now)
                .execute(&mut *tx)
                .await
                .map_err(|e| did_unique::unique(e, &h.number, &h.did))?;
        }
        bump_revision().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(hashed.len())
    }

    async fn list_extensions(&self) -> Result<Vec<Extension>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            extension_columns!(),
            " FROM extensions ORDER BY LENGTH(number), number"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(extension_from).collect()
    }

    async fn search_extensions(
        &self,
        q: &str,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<Extension>, u64), StoreError> {
        // `LIKE` with its wildcards escaped: the admin's text is matched literally.
        let pattern = format!("%{}%", like_escape(&q.to_ascii_lowercase()));
        let page = |query: &'static str| {
            sqlx::query(query)
                .bind(pattern.clone())
                .bind(i64::from(limit))
                .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        };
        let count = || {
            sqlx::query_scalar::<_, i64>(concat!(
                "SELECT COUNT(*) FROM extensions ",
                extension_filter!()
            ))
            .bind(pattern.clone())
        };
        let (rows, total) = if q.is_empty() {
            // No search: the count is the table's size and the page an index walk, both
            // cheap; a window count would read every row.
            let total = count().fetch_one(self.pool()).await?;
            let rows = page(concat!(
                "SELECT ",
                extension_columns!(),
                " FROM extensions ",
                extension_filter!(),
                " ORDER BY LENGTH(number), number LIMIT $2 OFFSET $3"
            ))
            .fetch_all(self.pool())
            .await?;
            (rows, total)
        } else {
            // A `LIKE '%x%'` reads every row: one pass gives the page and the count.
            let rows = page(concat!(
                "SELECT ",
                extension_columns!(),
                ", COUNT(*) OVER () AS total FROM extensions ",
                extension_filter!(),
                " ORDER BY LENGTH(number), number LIMIT $2 OFFSET $3"
            ))
            .fetch_all(self.pool())
            .await?;
            let total = match rows.first() {
                Some(row) => row.try_get("total")?,
                None if offset == 0 => 0,
                // A page past the end carries no count: ask for it alone.
                None => count().fetch_one(self.pool()).await?,
            };
            (rows, total)
        };
        let items = rows.iter().map(extension_from).collect::<Result<_, _>>()?;
        Ok((items, from_db(total)))
    }

    async fn update_extension(
        &self,
        realm: &str,
        number: &str,
        changes: &ExtensionChanges,
    ) -> Result<bool, StoreError> {
        if let Some(problem) = changes.problems().into_iter().next() {
            return Err(StoreError::Invalid(problem));
        }
        // Hashed before the transaction (argon2 is slow on purpose).
        let ha1 = |algorithm| {
            changes
                .password
                .as_deref()
                .map(|password| ha1_hex(algorithm, number, realm, password))
        };
        let (ha1_md5, ha1_sha256) = (ha1(Algorithm::Md5), ha1(Algorithm::Sha256));
        let pin_hash = changes.pin.as_deref().map(hash_secret).transpose()?;
        let mut tx = self.pool().begin().await?;
        if let Some(did) = changes.did.as_deref() {
            did_unique::check_free(&mut tx, did, number).await?;
        }
        // NULL keeps a column as it is.
        let updated = sqlx::query(
            "UPDATE extensions SET ha1_md5 = COALESCE($1, ha1_md5), \
             ha1_sha256 = COALESCE($2, ha1_sha256), pin_hash = COALESCE($3, pin_hash), \
             name = COALESCE($4, name), email = COALESCE($5, email), \
             media_encryption = COALESCE($6, media_encryption), \
             context = COALESCE($7, context), \
             mwi_unsolicited = COALESCE($8, mwi_unsolicited), \
             did = COALESCE($9, did) WHERE number = $10",
        )
        .bind(ha1_md5)
        .bind(ha1_sha256)
        .bind(pin_hash)
        .bind(changes.name.as_deref())
        .bind(changes.email.as_deref())
        .bind(changes.media_encryption.as_deref())
        .bind(changes.context.as_deref())
        .bind(changes.mwi_unsolicited.map(i64::from))
        .bind(changes.did.as_deref())
        .bind(number)
        .execute(&mut *tx)
        .await
        .map_err(|e| did_unique::unique(e, number, changes.did.as_deref().unwrap_or_default()))?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        bump_revision().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn remove_extension(&self, number: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let removed = sqlx::query("DELETE FROM extensions WHERE number = $1")
            .bind(number)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM registrations WHERE aor = $1")
            .bind(number)
            .execute(&mut *tx)
            .await?;
        // Its mailbox goes with it: a number given to someone else later must not open the
        // old owner's messages. (Its audio files: `remove_mailbox_files`, after the commit.)
        for sql in [
            "DELETE FROM voicemail_messages WHERE mailbox = $1",
            "DELETE FROM voicemail_greetings WHERE mailbox = $1",
        ] {
            sqlx::query(sql).bind(number).execute(&mut *tx).await?;
        }
        bump_revision().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(removed > 0)
    }
}

#[async_trait]
impl CredentialStore for Store {
    async fn credentials(&self, number: &str) -> Result<Option<Credentials>, StoreError> {
        let row = sqlx::query(credentials_query!(" WHERE number = $1"))
            .bind(number)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(credentials_from).transpose()
    }

    async fn extensions_revision(&self) -> Result<u64, StoreError> {
        let value: i64 = sqlx::query("SELECT value FROM revisions WHERE name = 'extensions'")
            .fetch_one(self.pool())
            .await?
            .try_get("value")?;
        Ok(from_db(value))
    }

    async fn all_credentials(&self) -> Result<Vec<Credentials>, StoreError> {
        // Rows are read one at a time: holding thousands of driver rows at once would leave
        // the allocator with a peak the process keeps long after.
        use futures_util::TryStreamExt;
        let mut rows = sqlx::query(credentials_query!()).fetch(self.pool());
        let mut all = Vec::new();
        while let Some(row) = rows.try_next().await? {
            all.push(credentials_from(&row)?);
        }
        Ok(all)
    }

    async fn verify_pin(&self, number: &str, pin: &str) -> Result<bool, StoreError> {
        crate::pins::pin_matches(self, number, pin).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(number: &str) -> NewExtension {
        NewExtension {
            number: number.into(),
            password: "secret".into(),
            ..NewExtension::default()
        }
    }

    #[test]
    fn validation_reports_every_problem() {
        assert!(ext("1000").problems().is_empty());
        let bad = NewExtension {
            number: "1".into(),
            password: String::new(),
            email: Some("no-at-sign".into()),
            pin: Some("12a".into()),
            ..NewExtension::default()
        };
        assert_eq!(bad.problems().len(), 4);
        assert_eq!(ext("1234567890123456").problems().len(), 1);
        assert_eq!(ext("10a0").problems().len(), 1);
        for (did, ok) in [
            ("+15551230001", true),
            ("4930123", true),
            ("", true),
            ("+", false),
            ("555-1234", false),
            ("+1 555", false),
            ("1+5", false),
        ] {
            let e = NewExtension {
                did: Some(did.into()),
                ..ext("1000")
            };
            assert_eq!(e.problems().is_empty(), ok, "{did}");
        }
    }

    #[test]
    fn email_shapes() {
        for ok in ["a@b.co", "first.last+tag@example.com"] {
            assert!(email_shape_ok(ok), "{ok}");
        }
        for bad in [
            "", "a", "@b.co", "a@", "a@b", "a@b@c.d", "a b@c.d", "a@.b", "<a@b.c>",
        ] {
            assert!(!email_shape_ok(bad), "{bad}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let mut e = ext("1000");
        e.pin = Some("4321".into());
        let shown = format!("{e:?}");
        assert!(!shown.contains("secret") && !shown.contains("4321"));
    }

    #[test]
    fn networks_round_trip() {
        let nets: Vec<IpNet> = ["10.0.0.0/8", "::1/128"]
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        let text = networks_to_text(&nets);
        assert_eq!(text, "10.0.0.0/8,::1/128");
        assert_eq!(networks_from_text(&text).ok(), Some(nets));
        assert_eq!(networks_from_text("").ok(), Some(vec![]));
        assert!(networks_from_text("bogus").is_err());
    }
}
