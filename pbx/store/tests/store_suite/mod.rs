//! The store tests, run against each engine by `store_sqlite.rs` and `store_postgres.rs`.
//! Each function gets a freshly migrated, empty store. A function about one concern takes
//! that port, so that it is the contract of the port: `ports_fake.rs` runs the same checks
//! against in-memory fakes.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use pbx_sip::auth::{Algorithm, ha1_hex};
use pbx_sip::uri::Uri;
use pbx_store::{
    AdminStore, AuditStore, BanStore, Binding, CdrStore, CredentialStore, ExtensionStore,
    LocationStore, NewCdr, NewExtension, Store, StoreError, TraceStore, Transport, Trunk,
    TrunkStatus, TrunkStore,
};

const REALM: &str = "pbx.test";

fn ext(number: &str, password: &str) -> NewExtension {
    NewExtension {
        number: number.into(),
        password: password.into(),
        ..NewExtension::default()
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn ok<T>(r: Result<T, StoreError>) -> T {
    r.unwrap_or_else(|e| panic!("store error: {e}"))
}

pub async fn extensions(store: &Store) {
    let nets: Vec<IpNet> = vec![
        "10.0.0.0/8".parse().unwrap_or_else(|_| panic!()),
        "::1/128".parse().unwrap_or_else(|_| panic!()),
    ];
    ok(store
        .add_extension(
            REALM,
            NewExtension {
                name: Some("Alice".into()),
                email: Some("alice@example.com".into()),
                pin: Some("1234".into()),
                allowed_networks: nets.clone(),
                ..ext("1000", "s3cret")
            },
        )
        .await);
    ok(store.add_extension(REALM, ext("1001", "other")).await);

    // A second 1000 is refused as a duplicate.
    match store.add_extension(REALM, ext("1000", "x")).await {
        Err(StoreError::Duplicate(what)) => assert_eq!(what, "extension 1000"),
        other => panic!("expected Duplicate, got {other:?}"),
    }
    // Invalid input never reaches the database.
    assert!(matches!(
        store.add_extension(REALM, ext("1", "x")).await,
        Err(StoreError::Invalid(_))
    ));

    let list = ok(store.list_extensions().await);
    let numbers: Vec<&str> = list.iter().map(|e| e.number.as_str()).collect();
    assert_eq!(numbers, ["1000", "1001"]);
    let alice = list.first().unwrap_or_else(|| panic!());
    assert_eq!(
        (alice.name.as_str(), alice.email.as_str()),
        ("Alice", "alice@example.com")
    );
    assert!(alice.has_pin);
    assert_eq!(alice.allowed_networks, nets);
    assert!(alice.created_at > 1_600_000_000);

    // HA1s as the digest code computes them; never the password.
    let creds = ok(store.credentials("1000").await).unwrap_or_else(|| panic!("no credentials"));
    assert_eq!(
        creds.ha1_md5,
        ha1_hex(Algorithm::Md5, "1000", REALM, "s3cret")
    );
    assert_eq!(
        creds.ha1_sha256,
        ha1_hex(Algorithm::Sha256, "1000", REALM, "s3cret")
    );
    assert_eq!(creds.allowed_networks, nets);
    assert_eq!(ok(store.credentials("9999").await), None);
    assert_eq!(ok(store.all_credentials().await).len(), 2);

    assert!(ok(store.verify_pin("1000", "1234").await));
    assert!(!ok(store.verify_pin("1000", "4321").await));
    assert!(!ok(store.verify_pin("1001", "1234").await));

    // `extension set`: only the given fields change, the revision moves, registrations stay.
    let revision = ok(store.extensions_revision().await);
    let changes = pbx_store::ExtensionChanges {
        password: Some("n3w".into()),
        pin: Some("5678".into()),
        media_encryption: Some("required".into()),
        context: Some("lobby".into()),
        ..Default::default()
    };
    assert!(ok(store.update_extension(REALM, "1000", &changes).await));
    assert!(!ok(store.update_extension(REALM, "9999", &changes).await));
    assert!(ok(store.extensions_revision().await) > revision);
    let creds = ok(store.credentials("1000").await).unwrap_or_else(|| panic!("no credentials"));
    assert_eq!(creds.ha1_md5, ha1_hex(Algorithm::Md5, "1000", REALM, "n3w"));
    assert_eq!(
        creds.ha1_sha256,
        ha1_hex(Algorithm::Sha256, "1000", REALM, "n3w")
    );
    assert_eq!(
        (creds.media_encryption.as_str(), creds.context.as_str()),
        ("required", "lobby")
    );
    assert!(ok(store.verify_pin("1000", "5678").await));
    let list = ok(store.list_extensions().await);
    let alice = list.first().unwrap_or_else(|| panic!());
    assert_eq!(
        (alice.name.as_str(), alice.context.as_str()),
        ("Alice", "lobby")
    );
    assert!(matches!(
        store
            .update_extension(
                REALM,
                "1000",
                &pbx_store::ExtensionChanges {
                    media_encryption: Some("sometimes".into()),
                    ..Default::default()
                }
            )
            .await,
        Err(StoreError::Invalid(_))
    ));

    assert!(ok(store.remove_extension("1001").await));
    assert!(!ok(store.remove_extension("1001").await));
    assert_eq!(ok(store.credentials("1001").await), None);
    assert_eq!(ok(store.list_extensions().await).len(), 1);
}

/// The extension list's search and pages, done in SQL: number, name or e-mail, ASCII case
/// ignored, wildcards matched literally, ordered by number, with the total.
pub async fn extension_search(store: &Store) {
    let people = [
        ("1000", "Alice Martin", "alice@example.com"),
        ("1001", "Bob", "bob@example.com"),
        ("1002", "Carol 100%", ""),
        ("2000", "Dave_x", "dave@other.org"),
        ("2001", "MARTINA", ""),
    ];
    for (number, name, email) in people {
        ok(store
            .add_extension(
                REALM,
                NewExtension {
                    name: Some(name.into()),
                    email: Some(email.into()).filter(|e: &String| !e.is_empty()),
                    ..ext(number, "pw-secret")
                },
            )
            .await);
    }
    let numbers = |page: &(Vec<pbx_store::Extension>, u64)| {
        page.0.iter().map(|e| e.number.clone()).collect::<Vec<_>>()
    };
    let all = ok(store.search_extensions("", 0, 50).await);
    assert_eq!(all.1, 5);
    assert_eq!(numbers(&all), ["1000", "1001", "1002", "2000", "2001"]);
    let page2 = ok(store.search_extensions("", 2, 2).await);
    assert_eq!(
        (numbers(&page2), page2.1),
        (vec!["1002".into(), "2000".into()], 5)
    );
    let past = ok(store.search_extensions("", 10, 2).await);
    assert!(past.0.is_empty() && past.1 == 5);
    let martin = ok(store.search_extensions("martin", 0, 50).await);
    assert_eq!(numbers(&martin), ["1000", "2001"], "name, any case");
    assert_eq!(
        numbers(&ok(store.search_extensions("EXAMPLE.com", 0, 50).await)),
        ["1000", "1001"]
    );
    assert_eq!(
        numbers(&ok(store.search_extensions("100", 0, 50).await)),
        ["1000", "1001", "1002"]
    );
    assert_eq!(
        numbers(&ok(store.search_extensions("0%", 0, 50).await)),
        ["1002"],
        "% is literal"
    );
    assert_eq!(
        numbers(&ok(store.search_extensions("e_x", 0, 50).await)),
        ["2000"],
        "_ is literal"
    );
    assert_eq!(
        numbers(&ok(store.search_extensions("a_b", 0, 50).await)),
        Vec::<String>::new()
    );
    let one = ok(store.search_extensions("o", 1, 1).await);
    assert_eq!(one.1, 4, "the total counts every page");
}

/// Numbers of different lengths list in numeric order (migration 0016), in the full list,
/// in every page and in a search.
pub async fn extension_numeric_order(store: &Store) {
    for number in ["1000", "99", "200", "10", "2000", "1001"] {
        ok(store.add_extension(REALM, ext(number, "pw-secret")).await);
    }
    let numbers =
        |list: &[pbx_store::Extension]| list.iter().map(|e| e.number.clone()).collect::<Vec<_>>();
    let order = ["10", "99", "200", "1000", "1001", "2000"];
    assert_eq!(numbers(&ok(store.list_extensions().await)), order);
    let (first, total) = ok(store.search_extensions("", 0, 3).await);
    assert_eq!(
        (numbers(&first), total),
        (vec!["10".into(), "99".into(), "200".into()], 6)
    );
    let (second, _) = ok(store.search_extensions("", 3, 3).await);
    assert_eq!(numbers(&second), ["1000", "1001", "2000"]);
    let (found, _) = ok(store.search_extensions("0", 0, 50).await);
    assert_eq!(numbers(&found), ["10", "200", "1000", "1001", "2000"]);
}

pub async fn import_is_all_or_nothing(store: &Store) {
    ok(store.add_extension(REALM, ext("2001", "pw")).await);
    // The third row repeats an existing extension: the whole import fails, nothing is kept.
    let batch = vec![ext("2000", "a"), ext("2002", "b"), ext("2001", "c")];
    assert!(matches!(
        store.import_extensions(REALM, batch).await,
        Err(StoreError::Duplicate(_))
    ));
    let numbers: Vec<String> = ok(store.list_extensions().await)
        .into_iter()
        .map(|e| e.number)
        .collect();
    assert_eq!(numbers, ["2001"]);

    // An invalid row fails it before any write too.
    let batch = vec![ext("2000", "a"), ext("20x", "b")];
    assert!(matches!(
        store.import_extensions(REALM, batch).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(ok(store.list_extensions().await).len(), 1);

    let batch = (0..50).map(|i| ext(&format!("3{i:03}"), "pw")).collect();
    assert_eq!(ok(store.import_extensions(REALM, batch).await), 50);
    assert_eq!(ok(store.list_extensions().await).len(), 51);
}

fn binding(aor: &str, contact: &str, expires_at: u64) -> Binding {
    Binding {
        aor: aor.into(),
        binding: pbx_sip::registrar::Binding {
            contact: Uri::parse(contact).unwrap_or_else(|e| panic!("{contact}: {e}")),
            expires_at,
            call_id: "call-1@phone".into(),
            cseq: 1,
            q: None,
            instance: None,
            reg_id: None,
        },
        transport: Transport::Udp,
        source: addr("192.0.2.10:5062"),
        local: addr("127.0.0.1:5060"),
        conn: None,
        user_agent: "baresip".into(),
        reachable: None,
    }
}

/// `b` with its registrar part changed by `f`.
fn with(b: &Binding, f: impl FnOnce(&mut pbx_sip::registrar::Binding)) -> Binding {
    let mut b = b.clone();
    f(&mut b.binding);
    b
}

pub async fn registrations(store: &dyn LocationStore) {
    let a = binding("1000", "sip:1000@192.0.2.10:5062", 2_000);
    ok(store.upsert_binding(&a).await);
    let b = Binding {
        transport: Transport::Tls,
        source: addr("[2001:db8::1]:40000"),
        local: addr("[::1]:5061"),
        user_agent: String::new(),
        ..with(
            &binding("1000", "sips:1000@[2001:db8::1]:40000;transport=tls", 3_000),
            |r| {
                r.q = Some(500);
                r.instance = Some("<urn:uuid:00000000-0000-0000-0000-000000000001>".into());
                r.reg_id = Some(1);
            },
        )
    };
    ok(store.upsert_binding(&b).await);
    ok(store
        .upsert_binding(&binding("1001", "sip:1001@192.0.2.11", 1_500))
        .await);

    // A refresh of the same (aor, contact) replaces it.
    let refreshed = with(&a, |r| {
        r.cseq = 2;
        r.expires_at = 2_500;
    });
    ok(store.upsert_binding(&refreshed).await);

    let all = ok(store.list_bindings().await);
    assert_eq!(all.len(), 3);
    assert_eq!(all.first(), Some(&refreshed));
    assert_eq!(all.get(1), Some(&b));

    // A qualify result is recorded, and a later refresh keeps it.
    assert!(ok(store
        .set_reachable("1000", "sip:1000@192.0.2.10:5062", false)
        .await));
    assert!(!ok(store
        .set_reachable("1000", "sip:nobody@192.0.2.99", true)
        .await));
    ok(store.upsert_binding(&refreshed).await);
    let first = ok(store.list_bindings().await).into_iter().next();
    assert_eq!(first.map(|b| b.reachable), Some(Some(false)));

    assert!(ok(store
        .remove_binding("1000", "sip:1000@192.0.2.10:5062")
        .await));
    assert!(!ok(store
        .remove_binding("1000", "sip:1000@192.0.2.10:5062")
        .await));

    // Pruning removes exactly those expired at or before now.
    assert_eq!(ok(store.prune_bindings(1_500).await), 1);
    assert_eq!(ok(store.list_bindings().await), vec![b]);
    assert_eq!(ok(store.remove_bindings("1000").await), 1);
    assert!(ok(store.list_bindings().await).is_empty());
}

/// The registrar's write-behind batch: runs of upserts become multi-row statements, the
/// last upsert of a binding wins, and removals apply in order.
pub async fn binding_batches(store: &dyn LocationStore) {
    use pbx_store::BindingChange;
    let a1 = binding("2000", "sip:2000@192.0.2.20", 5_000);
    let a2 = with(&a1, |r| r.cseq = 2);
    let b = binding("2000", "sip:2000@192.0.2.21", 5_000);
    let c = binding("2001", "sip:2001@192.0.2.22", 5_000);
    let mut many: Vec<BindingChange> = (0..450)
        .map(|i| BindingChange::Upsert(binding("2002", &format!("sip:2002@192.0.2.30:{i}"), 5_000)))
        .collect();
    many.extend([
        BindingChange::Upsert(a1),
        BindingChange::Upsert(b.clone()),
        BindingChange::Upsert(a2.clone()),
        BindingChange::Remove {
            aor: b.aor.clone(),
            contact: b.contact(),
        },
        BindingChange::Upsert(c.clone()),
        BindingChange::Reachable {
            aor: c.aor.clone(),
            contact: c.contact(),
            reachable: true,
        },
        BindingChange::RemoveAll { aor: "2002".into() },
    ]);
    ok(store.apply_binding_changes(&many).await);
    let all = ok(store.list_bindings().await);
    let mine: Vec<_> = all.iter().filter(|x| x.aor.starts_with("200")).collect();
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert_eq!(mine[0], &a2);
    assert_eq!(
        mine[1],
        &Binding {
            reachable: Some(true),
            ..c
        }
    );
    ok(store.remove_bindings("2000").await);
    ok(store.remove_bindings("2001").await);
}

pub async fn bans(store: &dyn BanStore) {
    ok(store
        .add_ban(ip("127.0.0.2"), "5 failed authentications", 2_000)
        .await);
    ok(store.add_ban(ip("2001:db8::7"), "manual", 1_000).await);
    // Re-banning replaces the earlier ban.
    ok(store.add_ban(ip("127.0.0.2"), "again", 5_000).await);

    let active = ok(store.active_bans(1_500).await);
    assert_eq!(active.len(), 1);
    let ban = active.first().unwrap_or_else(|| panic!());
    assert_eq!(
        (ban.address, ban.reason.as_str(), ban.until),
        (ip("127.0.0.2"), "again", 5_000)
    );
    assert_eq!(ok(store.active_bans(0).await).len(), 2);

    assert!(ok(store.remove_ban(ip("127.0.0.2")).await));
    assert!(!ok(store.remove_ban(ip("127.0.0.2")).await));
    assert_eq!(ok(store.prune_bans(1_000).await), 1);
    assert!(ok(store.active_bans(0).await).is_empty());
}

pub async fn trunks(store: &dyn TrunkStore) {
    assert!(ok(store.list_trunks().await).is_empty());
    let mut provider = Trunk::new("provider", "sip.example.com");
    provider.port = Some(5080);
    provider.username = "acct42".into();
    provider.password = "pr0vider-pass".into();
    provider.register = true;
    provider.codecs = vec!["pcma".into(), "pcmu".into()];
    provider.channels = 30;
    provider.setup_timeout = Some(3);
    provider.transport = "tls".into();
    provider.tls_ca_file = "/etc/pbx/provider-ca.pem".into();
    provider.dtmf = "info".into();
    ok(store.add_trunk(&provider).await);
    let mut legacy = Trunk::new("legacy", "10.1.2.3");
    legacy.allowed_networks = vec![net("10.1.2.0/24"), net("2001:db8::/32")];
    legacy.context = "from-legacy".into();
    ok(store.add_trunk(&legacy).await);

    // The same name again, whatever else differs.
    let again = store.add_trunk(&Trunk::new("legacy", "10.9.9.9")).await;
    assert!(
        matches!(&again, Err(StoreError::Duplicate(what)) if what == "trunk legacy"),
        "{again:?}"
    );
    // Invalid fields never reach the table.
    let bad = store.add_trunk(&Trunk::new("x", "no host")).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");

    let listed = ok(store.list_trunks().await);
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["legacy", "provider"]);
    let read = listed.get(1).unwrap_or_else(|| panic!());
    assert_eq!(
        (
            read.host.as_str(),
            read.port,
            read.username.as_str(),
            read.password.as_str(),
            read.register,
            read.channels,
            read.codecs.clone(),
            read.context.as_str(),
        ),
        (
            "sip.example.com",
            Some(5080),
            "acct42",
            "pr0vider-pass",
            true,
            30,
            vec!["pcma".to_string(), "pcmu".to_string()],
            "from-trunk",
        )
    );
    assert!(read.created_at > 0);
    assert_eq!(read.setup_timeout, Some(3));
    assert_eq!(
        (read.tls_ca_file.as_str(), read.tls_verify),
        ("/etc/pbx/provider-ca.pem", true)
    );
    assert_eq!(read.dtmf, "info");
    let read = listed.first().unwrap_or_else(|| panic!());
    assert_eq!(read.dtmf, "rfc4733", "the default");
    assert_eq!(read.allowed_networks, legacy.allowed_networks);
    assert_eq!((read.port, read.register), (None, false));
    assert_eq!((read.tls_ca_file.as_str(), read.tls_verify), ("", true));
    // No setup time of its own: the global one applies.
    assert_eq!(read.setup_timeout, None);
    let mut zero = Trunk::new("zero", "10.1.2.5");
    zero.setup_timeout = Some(0);
    let bad = store.add_trunk(&zero).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");

    // An update replaces every field but the creation time; checked like an add.
    let created = read.created_at;
    let mut changed = legacy.clone();
    changed.host = "10.1.2.4".into();
    changed.port = Some(5070);
    changed.codecs = vec!["g722".into()];
    changed.caller_id_mode = "trunk".into();
    changed.caller_id = "+4930123".into();
    changed.setup_timeout = Some(7);
    changed.tls_verify = false;
    changed.dtmf = "auto".into();
    assert!(ok(store.update_trunk(&changed).await));
    let read = ok(store.list_trunks().await).remove(0);
    assert!(!read.tls_verify);
    assert_eq!(read.dtmf, "auto");
    assert_eq!(
        (
            read.host.as_str(),
            read.port,
            read.codecs.clone(),
            read.caller_id.as_str()
        ),
        ("10.1.2.4", Some(5070), vec!["g722".to_string()], "+4930123")
    );
    assert_eq!(read.setup_timeout, Some(7));
    assert_eq!(read.created_at, created);
    assert!(!ok(store
        .update_trunk(&Trunk::new("nobody", "h.example"))
        .await));
    let mut odd = changed.clone();
    odd.dtmf = "inband".into();
    let bad = store.update_trunk(&odd).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
    changed.host = "no host".into();
    let bad = store.update_trunk(&changed).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");

    // State: replaced on each report, removed with the trunk.
    let status = |state: &str, until| TrunkStatus {
        name: "provider".into(),
        state: state.into(),
        detail: format!("{state} now"),
        valid_until: until,
        updated_at: 10,
    };
    ok(store.set_trunk_status(&status("down", 50)).await);
    ok(store.set_trunk_status(&status("registered", 100)).await);
    let statuses = ok(store.trunk_statuses().await);
    assert_eq!(statuses, vec![status("registered", 100)]);

    assert!(ok(store.remove_trunk("provider").await));
    assert!(!ok(store.remove_trunk("provider").await));
    assert!(ok(store.trunk_statuses().await).is_empty());
    assert_eq!(ok(store.list_trunks().await).len(), 1);
}

fn net(text: &str) -> IpNet {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

pub async fn sip_traces(store: &dyn TraceStore) {
    let a = ok(store.add_trace("source", "127.0.0.5/32", None).await);
    let b = ok(store.add_trace("extension", "1001", Some(2_000)).await);
    assert_ne!(a, b);
    let all = ok(store.active_traces(1_000).await);
    let seen: Vec<_> = all
        .iter()
        .map(|t| (t.id, t.kind.as_str(), t.value.as_str(), t.until))
        .collect();
    assert_eq!(
        seen,
        [
            (a, "source", "127.0.0.5/32", None),
            (b, "extension", "1001", Some(2_000))
        ]
    );
    // An expired filter is not in force; one without an expiry always is.
    let later = ok(store.active_traces(2_000).await);
    assert_eq!(later.iter().map(|t| t.id).collect::<Vec<_>>(), [a]);
    assert_eq!(ok(store.prune_traces(2_000).await), 1);
    assert!(ok(store.remove_trace(a).await));
    assert!(!ok(store.remove_trace(a).await));
    ok(store.add_trace("source", "10.0.0.0/8", None).await);
    ok(store.add_trace("source", "10.1.0.0/16", Some(5)).await);
    assert_eq!(ok(store.remove_all_traces(10).await), 1);
    assert!(ok(store.active_traces(0).await).is_empty());
}

pub async fn admins(store: &dyn AdminStore) {
    ok(store.create_admin("root", "correct horse").await);
    assert!(matches!(
        store.create_admin("root", "x").await,
        Err(StoreError::Duplicate(_))
    ));
    assert!(matches!(
        store.create_admin("bad name", "x").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(ok(store.verify_admin("root", "correct horse").await));
    assert!(!ok(store.verify_admin("root", "wrong").await));
    assert!(!ok(store.verify_admin("nobody", "correct horse").await));
    assert_eq!(ok(store.list_admins().await), ["root"]);

    let token = ok(store.create_token("root").await);
    assert_eq!(token.len(), 64);
    assert_eq!(ok(store.verify_token(&token).await), Some("root".into()));
    assert_eq!(ok(store.verify_token("0".repeat(64).as_str()).await), None);
    assert_ne!(ok(store.create_token("root").await), token);
    assert!(matches!(
        store.create_token("nobody").await,
        Err(StoreError::NotFound(_))
    ));

    // Tokens are listed by id (never the token), revoked by id; deleting an admin takes
    // its tokens along.
    let tokens = ok(store.list_tokens().await);
    assert_eq!(tokens.len(), 2);
    assert!(tokens.iter().all(|t| t.user == "root" && t.id.len() == 12));
    assert!(
        tokens.iter().all(|t| !token.contains(&t.id)),
        "the id is not part of the token"
    );
    let first = tokens
        .iter()
        .find(|t| {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(token.as_bytes())).starts_with(&t.id)
        })
        .map(|t| t.id.clone())
        .unwrap_or_default();
    assert!(ok(store.revoke_token(&first).await));
    assert!(!ok(store.revoke_token(&first).await));
    assert!(!ok(store.revoke_token("%").await));
    assert_eq!(ok(store.verify_token(&token).await), None, "revoked");
    assert_eq!(ok(store.list_tokens().await).len(), 1);

    assert!(matches!(
        store.set_admin_password("root", "").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(ok(store.set_admin_password("root", "new horse").await));
    assert!(ok(store.verify_admin("root", "new horse").await));
    assert!(!ok(store.verify_admin("root", "correct horse").await));
    assert!(!ok(store.set_admin_password("nobody", "x").await));

    ok(store.create_admin("second", "pw").await);
    let kept = ok(store.create_token("second").await);
    assert!(ok(store.delete_admin("root").await));
    assert!(!ok(store.delete_admin("root").await));
    assert_eq!(ok(store.list_admins().await), ["second"]);
    let left = ok(store.list_tokens().await);
    assert_eq!(left.len(), 1, "root's token went with it");
    assert_eq!(left[0].user, "second");
    assert_eq!(ok(store.verify_token(&kept).await), Some("second".into()));
}

pub async fn cdrs(store: &dyn CdrStore) {
    assert!(ok(store.list_cdrs(10).await).is_empty());
    let mut inserted = Vec::new();
    for (i, start) in [100, 300, 200].into_iter().enumerate() {
        let cdr = NewCdr {
            call_id: format!("c{i}"),
            caller: "1000".into(),
            called: "1001".into(),
            started_at: start,
            answered_at: (i == 1).then_some(start + 2),
            ended_at: start + 10,
            duration_secs: 8,
            disposition: "answered".into(),
            hangup_cause: "normal".into(),
            hangup_side: "caller".into(),
            codec: Some("PCMU".into()),
            caller_encrypted: i == 1,
            callee_encrypted: false,
            // One came in by a trunk: the record keeps its name.
            trunk: if i == 2 {
                "provider".into()
            } else {
                String::new()
            },
        };
        inserted.push(ok(store.insert_cdr(&cdr).await));
    }
    let recent = ok(store.list_cdrs(2).await);
    let ids: Vec<&str> = recent.iter().map(|c| c.call.call_id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2"]);
    // The ids insert_cdr returned are the listed ones (the log's "call ended" line names them).
    let listed: Vec<i64> = recent.iter().map(|c| c.id).collect();
    assert_eq!(listed, [inserted[1], inserted[2]]);
    assert!(inserted[0] < inserted[1] && inserted[1] < inserted[2]);
    let first = recent.first().unwrap_or_else(|| panic!());
    assert_eq!(first.call.answered_at, Some(302));
    assert!(first.call.caller_encrypted && !first.call.callee_encrypted);
    assert_eq!(first.call.trunk, "");
    let by_trunk = recent.get(1).unwrap_or_else(|| panic!());
    assert_eq!(by_trunk.call.trunk, "provider");
}

/// Voicemail: the mailbox is the extension (PIN and e-mail from `extension add`/`set`), with
/// greetings and messages added.
pub async fn mailboxes(store: &Store) {
    use pbx_store::{
        ExtensionChanges, Folder, Greeting, GreetingKind, MailboxStore, MessageCounts, NewMessage,
    };
    ok(store
        .add_extension(
            REALM,
            NewExtension {
                name: Some("Alice".into()),
                email: Some("alice@example.com".into()),
                pin: Some("1234".into()),
                ..ext("1000", "pw")
            },
        )
        .await);
    ok(store.add_extension(REALM, ext("1001", "pw")).await);

    // The mailbox reads what `extension add` stored.
    let alice = ok(store.mailbox("1000").await).unwrap_or_else(|| panic!("no mailbox"));
    assert_eq!(
        (
            alice.number.as_str(),
            alice.name.as_str(),
            alice.email.as_str()
        ),
        ("1000", "Alice", "alice@example.com")
    );
    assert!(alice.has_pin && !alice.delete_after_email && alice.greetings.is_empty());
    let bob = ok(store.mailbox("1001").await).unwrap_or_else(|| panic!("no mailbox"));
    assert!(!bob.has_pin && bob.email.is_empty());
    assert_eq!(ok(store.mailbox("9999").await), None);

    // One PIN check for the menu and the CLI.
    assert!(ok(store.check_pin("1000", "1234").await));
    assert!(!ok(store.check_pin("1000", "1235").await));
    assert!(
        !ok(store.check_pin("1001", "1234").await),
        "no PIN, no entry"
    );
    assert!(!ok(store.check_pin("9999", "1234").await));
    // Changed from the menu: hashed like the CLI's, the old one stops working.
    assert!(matches!(
        store.set_pin("1000", "12").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(ok(store.set_pin("1000", "987654").await));
    assert!(ok(store.check_pin("1000", "987654").await));
    assert!(!ok(store.check_pin("1000", "1234").await));
    assert!(ok(store.verify_pin("1000", "987654").await));
    assert!(!ok(store.set_pin("9999", "1234").await));
    // And `extension set` changes what the mailbox reads.
    let changes = ExtensionChanges {
        email: Some("a@example.org".into()),
        pin: Some("2468".into()),
        ..Default::default()
    };
    assert!(ok(store.update_extension(REALM, "1000", &changes).await));
    assert!(ok(store.check_pin("1000", "2468").await));
    let alice = ok(store.mailbox("1000").await).unwrap_or_else(|| panic!());
    assert_eq!(alice.email, "a@example.org");

    assert!(ok(store.set_delete_after_email("1000", true).await));
    assert!(!ok(store.set_delete_after_email("9999", true).await));
    let alice = ok(store.mailbox("1000").await).unwrap_or_else(|| panic!());
    assert!(alice.delete_after_email);

    // Greetings: one of each kind, a new recording replaces the old (whose file is returned).
    let greeting = |kind, path: &str| Greeting {
        kind,
        path: path.into(),
        recorded_at: 1_700_000_000,
    };
    let set = |kind, path| {
        let g = greeting(kind, path);
        async move { ok(store.set_greeting("1000", &g).await) }
    };
    assert_eq!(set(GreetingKind::Name, "g/name1.wav").await, None);
    assert_eq!(set(GreetingKind::Unavailable, "g/unavail1.wav").await, None);
    assert_eq!(
        set(GreetingKind::Unavailable, "g/unavail2.wav").await,
        Some("g/unavail1.wav".into())
    );
    assert_eq!(
        set(GreetingKind::Unavailable, "g/unavail2.wav").await,
        None,
        "same file"
    );
    assert_eq!(set(GreetingKind::Busy, "g/busy.wav").await, None);
    let alice = ok(store.mailbox("1000").await).unwrap_or_else(|| panic!());
    let kinds: Vec<GreetingKind> = alice.greetings.iter().map(|g| g.kind).collect();
    assert_eq!(
        kinds,
        [
            GreetingKind::Unavailable,
            GreetingKind::Busy,
            GreetingKind::Name
        ]
    );
    assert_eq!(
        alice.greeting(GreetingKind::Unavailable),
        Some(&greeting(GreetingKind::Unavailable, "g/unavail2.wav"))
    );
    assert_eq!(alice.greeting(GreetingKind::Temporary), None);
    assert_eq!(
        ok(store.remove_greeting("1000", GreetingKind::Temporary).await),
        None
    );
    assert_eq!(set(GreetingKind::Temporary, "g/temp.wav").await, None);
    assert_eq!(
        ok(store.remove_greeting("1000", GreetingKind::Temporary).await),
        Some("g/temp.wav".into())
    );
    let bob = ok(store.mailbox("1001").await).unwrap_or_else(|| panic!());
    assert!(bob.greetings.is_empty(), "greetings are per mailbox");

    // Messages: filed as new, listed oldest first, moved between folders, deleted.
    assert_eq!(
        ok(store.message_counts("1000").await),
        MessageCounts::default()
    );
    let msg = |mailbox: &str, at: u64, caller: &str| NewMessage {
        mailbox: mailbox.into(),
        caller_number: caller.into(),
        caller_name: format!("Caller {caller}"),
        received_at: at,
        duration_ms: 4_250,
        path: format!("vm/{mailbox}/{at}.wav"),
    };
    let late = ok(store.add_message(&msg("1000", 300, "2001")).await);
    let early = ok(store.add_message(&msg("1000", 100, "2002")).await);
    let middle = ok(store.add_message(&msg("1000", 200, "")).await);
    let other = ok(store.add_message(&msg("1001", 150, "2003")).await);
    assert!(late < early && early < middle && middle < other, "ids grow");
    let all = ok(store.messages("1000", None).await);
    let ids: Vec<i64> = all.iter().map(|m| m.id).collect();
    assert_eq!(ids, [early, middle, late]);
    let first = all.first().unwrap_or_else(|| panic!());
    assert_eq!(first.folder, Folder::New);
    assert_eq!(first.message, msg("1000", 100, "2002"));
    assert_eq!(
        ok(store.message_counts("1000").await),
        MessageCounts {
            new: 3,
            old: 0,
            saved: 0
        }
    );

    assert!(ok(store.move_message(early, Folder::Old).await));
    assert!(ok(store.move_message(late, Folder::Saved).await));
    assert!(!ok(store.move_message(99_999, Folder::Old).await));
    assert_eq!(
        ok(store.message_counts("1000").await),
        MessageCounts {
            new: 1,
            old: 1,
            saved: 1
        }
    );
    let new: Vec<i64> = ok(store.messages("1000", Some(Folder::New)).await)
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(new, [middle]);
    let saved = ok(store.message(late).await).unwrap_or_else(|| panic!("no message"));
    assert_eq!(saved.folder, Folder::Saved);
    assert_eq!(saved.message.caller_name, "Caller 2001");

    let gone = ok(store.delete_message(middle).await).unwrap_or_else(|| panic!("not deleted"));
    assert_eq!(gone.message.path, "vm/1000/200.wav", "the file to remove");
    assert_eq!(ok(store.delete_message(middle).await), None);
    assert_eq!(ok(store.message(middle).await), None);
    assert_eq!(
        ok(store.message_counts("1000").await),
        MessageCounts {
            new: 0,
            old: 1,
            saved: 1
        }
    );
    assert_eq!(
        ok(store.message_counts("1001").await),
        MessageCounts {
            new: 1,
            old: 0,
            saved: 0
        }
    );
    assert_eq!(
        ok(store.mailboxes_with_messages().await),
        vec![
            (
                "1000".to_string(),
                MessageCounts {
                    new: 0,
                    old: 1,
                    saved: 1
                }
            ),
            (
                "1001".to_string(),
                MessageCounts {
                    new: 1,
                    old: 0,
                    saved: 0
                }
            ),
        ],
        "every mailbox with messages, by number"
    );

    // Removing the extension empties its mailbox: the number given to someone else later
    // does not open the old owner's messages or greetings.
    assert!(ok(store.remove_extension("1000").await));
    ok(store.add_extension(REALM, ext("1000", "pw")).await);
    assert_eq!(
        ok(store.message_counts("1000").await),
        MessageCounts::default()
    );
    assert!(ok(store.messages("1000", None).await).is_empty());
    let fresh = ok(store.mailbox("1000").await).unwrap_or_else(|| panic!());
    assert!(fresh.greetings.is_empty() && !fresh.delete_after_email && !fresh.has_pin);
    assert_eq!(
        ok(store.message_counts("1001").await).new,
        1,
        "others keep theirs"
    );
}

/// The search the web admin's call records page and `GET /api/v1/cdrs` run: filters by time,
/// by extension (caller or called) and by disposition, newest first, in keyset pages; and
/// the calls per hour of the dashboard's chart.
pub async fn cdr_search(store: &dyn CdrStore) {
    // 12 calls, one a minute from t=3600; 1000 and 1001 take turns calling 1002, every third
    // one is busy, and 1002 calls itself once (one row, found once).
    let mut all = Vec::new();
    for i in 0..12u64 {
        let (caller, called) = match i {
            11 => ("1002", "1002"),
            _ if i % 2 == 0 => ("1000", "1002"),
            _ => ("1001", "1002"),
        };
        all.push(NewCdr {
            call_id: format!("s{i}"),
            caller: caller.into(),
            called: called.into(),
            // Two calls share each second of 3600 + 60 * (i / 2): ties broken by id.
            started_at: 3600 + 60 * (i / 2),
            answered_at: None,
            ended_at: 3600 + 60 * (i / 2) + 5,
            duration_secs: 0,
            disposition: if i % 3 == 0 { "busy" } else { "answered" }.into(),
            hangup_cause: String::new(),
            hangup_side: "caller".into(),
            codec: None,
            caller_encrypted: false,
            callee_encrypted: false,
            trunk: String::new(),
        });
    }
    ok(store.insert_cdrs(&all).await);
    let ids = |rows: &[pbx_store::Cdr]| -> Vec<String> {
        rows.iter().map(|c| c.call.call_id.clone()).collect()
    };
    let q = |limit| pbx_store::CdrQuery {
        limit,
        ..Default::default()
    };

    // Everything, newest first; ties in the same second newest id first.
    let every = ok(store.search_cdrs(&q(100)).await);
    assert_eq!(
        ids(&every),
        [
            "s11", "s10", "s9", "s8", "s7", "s6", "s5", "s4", "s3", "s2", "s1", "s0"
        ]
    );

    // Pages of 5 by keyset, across a tie: each row exactly once.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = ok(store
            .search_cdrs(&pbx_store::CdrQuery { before, ..q(5) })
            .await);
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 5);
        before = page.last().map(|c| (c.call.started_at, c.id));
        seen.extend(ids(&page));
    }
    assert_eq!(seen, ids(&every));

    // By extension: as caller or as called, the self-call once.
    let of_1001 = ok(store
        .search_cdrs(&pbx_store::CdrQuery {
            extension: Some("1001".into()),
            ..q(100)
        })
        .await);
    assert_eq!(ids(&of_1001), ["s9", "s7", "s5", "s3", "s1"]);
    let of_1002 = ok(store
        .search_cdrs(&pbx_store::CdrQuery {
            extension: Some("1002".into()),
            ..q(100)
        })
        .await);
    assert_eq!(of_1002.len(), 12);
    // Paged by extension too.
    let first = ok(store
        .search_cdrs(&pbx_store::CdrQuery {
            extension: Some("1002".into()),
            ..q(4)
        })
        .await);
    assert_eq!(ids(&first), ["s11", "s10", "s9", "s8"]);
    let next = ok(store
        .search_cdrs(&pbx_store::CdrQuery {
            extension: Some("1002".into()),
            before: first.last().map(|c| (c.call.started_at, c.id)),
            ..q(4)
        })
        .await);
    assert_eq!(ids(&next), ["s7", "s6", "s5", "s4"]);

    // By disposition and time range (from inclusive, to exclusive), combined with the rest.
    let busy = ok(store
        .search_cdrs(&pbx_store::CdrQuery {
            disposition: Some("busy".into()),
            ..q(100)
        })
        .await);
    assert_eq!(ids(&busy), ["s9", "s6", "s3", "s0"]);
    let window = ok(store
        .search_cdrs(&pbx_store::CdrQuery {
            from: Some(3600 + 60),
            to: Some(3600 + 180),
            ..q(100)
        })
        .await);
    assert_eq!(ids(&window), ["s5", "s4", "s3", "s2"]);
    let narrow = ok(store
        .search_cdrs(&pbx_store::CdrQuery {
            from: Some(3600 + 60),
            to: Some(3600 + 180),
            extension: Some("1000".into()),
            disposition: Some("answered".into()),
            ..q(100)
        })
        .await);
    assert_eq!(ids(&narrow), ["s4", "s2"]);
    assert!(
        ok(store
            .search_cdrs(&pbx_store::CdrQuery {
                extension: Some("9999".into()),
                ..q(100)
            })
            .await)
        .is_empty()
    );

    // Per hour: all 12 in the hour starting at 3600; none in the hour before.
    assert_eq!(ok(store.calls_per_hour(0, 7200).await), [(3600, 12)]);
    assert!(ok(store.calls_per_hour(0, 3600).await).is_empty());
}

/// Message-waiting: the unsolicited flag per extension, and the change counters the
/// triggers keep (migration 0008) for any change of a mailbox's messages (by SQL too: the
/// e2e test inserts a row with sqlite3).
pub async fn mwi(store: &Store) {
    use pbx_store::{ExtensionChanges, Folder, MailboxStore, MwiStore, NewMessage};
    ok(store.add_extension(REALM, ext("1000", "a")).await);
    ok(store.add_extension(REALM, ext("1001", "b")).await);
    let flag = |all: Vec<pbx_store::Extension>, number: &str| {
        all.into_iter()
            .find(|e| e.number == number)
            .is_some_and(|e| e.mwi_unsolicited)
    };
    assert!(
        !flag(ok(store.list_extensions().await), "1000"),
        "off by default"
    );
    let on = ExtensionChanges {
        mwi_unsolicited: Some(true),
        ..Default::default()
    };
    assert!(ok(store.update_extension(REALM, "1000", &on).await));
    assert!(flag(ok(store.list_extensions().await), "1000"));
    assert!(!flag(ok(store.list_extensions().await), "1001"));
    let credentials = ok(store.credentials("1000").await).unwrap_or_else(|| panic!());
    assert!(
        credentials.mwi_unsolicited,
        "the engine reads it with the credentials"
    );
    // Another change leaves it as it is.
    let rename = ExtensionChanges {
        name: Some("Alice".into()),
        ..Default::default()
    };
    assert!(ok(store.update_extension(REALM, "1000", &rename).await));
    assert!(flag(ok(store.list_extensions().await), "1000"));

    assert_eq!(ok(store.voicemail_revision().await), 0);
    assert!(ok(store.mailbox_revisions().await).is_empty());
    let message = |mailbox: &str| NewMessage {
        mailbox: mailbox.into(),
        caller_number: "2000".into(),
        caller_name: String::new(),
        received_at: 100,
        duration_ms: 1000,
        path: format!("vm/{mailbox}.wav"),
    };
    let id = ok(store.add_message(&message("1000")).await);
    ok(store.add_message(&message("1001")).await);
    let revisions = |mut all: Vec<(String, u64)>| {
        all.sort();
        all
    };
    assert_eq!(ok(store.voicemail_revision().await), 2);
    assert_eq!(
        revisions(ok(store.mailbox_revisions().await)),
        [("1000".to_string(), 1), ("1001".to_string(), 1)]
    );
    // A move bumps the mailbox it leaves and the one it enters (here the same).
    assert!(ok(store.move_message(id, Folder::Old).await));
    assert!(ok(store.delete_message(id).await).is_some());
    assert_eq!(ok(store.voicemail_revision().await), 4);
    assert_eq!(
        revisions(ok(store.mailbox_revisions().await)),
        [("1000".to_string(), 4), ("1001".to_string(), 1)]
    );
}

pub async fn audit(store: &dyn AuditStore) {
    assert_eq!(ok(store.audit_page(0, 10).await), (Vec::new(), 0));
    for i in 0..5u64 {
        let entry = pbx_store::NewAudit {
            at: 1_000 + i,
            admin: "admin".into(),
            source: "192.0.2.7".into(),
            via: if i % 2 == 0 { "web" } else { "api" }.into(),
            action: "extension.create".into(),
            target: format!("100{i}"),
            detail: String::new(),
        };
        ok(store.record_audit(&entry).await);
    }
    // Newest first, paged.
    let (page, total) = ok(store.audit_page(0, 2).await);
    assert_eq!(total, 5);
    let targets: Vec<&str> = page.iter().map(|e| e.entry.target.as_str()).collect();
    assert_eq!(targets, ["1004", "1003"]);
    assert_eq!(
        (page[0].entry.at, page[0].entry.via.as_str()),
        (1_004, "web")
    );
    let (page, _) = ok(store.audit_page(4, 2).await);
    let targets: Vec<&str> = page.iter().map(|e| e.entry.target.as_str()).collect();
    assert_eq!(targets, ["1000"]);
}

/// An extension's own DID (migration 0014): set when added, changed and cleared by an
/// update, read with the credentials (the engine's caller ID on trunks); a bad one refused.
pub async fn extension_did(store: &Store) {
    use pbx_store::ExtensionChanges;
    let with_did = NewExtension {
        did: Some("+15551230001".into()),
        ..ext("1000", "a")
    };
    ok(store.add_extension(REALM, with_did).await);
    ok(store.add_extension(REALM, ext("1001", "b")).await);
    let did_of = |all: Vec<pbx_store::Extension>, number: &str| {
        all.into_iter()
            .find(|e| e.number == number)
            .map(|e| e.did)
            .unwrap_or_else(|| panic!("no extension {number}"))
    };
    assert_eq!(
        did_of(ok(store.list_extensions().await), "1000"),
        "+15551230001"
    );
    assert_eq!(
        did_of(ok(store.list_extensions().await), "1001"),
        "",
        "none by default"
    );
    let credentials = ok(store.credentials("1000").await).unwrap_or_else(|| panic!());
    assert_eq!(credentials.did, "+15551230001", "the engine reads it");

    let set = ExtensionChanges {
        did: Some("4930123456".into()),
        ..Default::default()
    };
    assert!(ok(store.update_extension(REALM, "1001", &set).await));
    assert_eq!(
        did_of(ok(store.list_extensions().await), "1001"),
        "4930123456"
    );
    // Another change leaves it as it is; an empty one clears it.
    let rename = ExtensionChanges {
        name: Some("Bob".into()),
        ..Default::default()
    };
    assert!(ok(store.update_extension(REALM, "1001", &rename).await));
    assert_eq!(
        did_of(ok(store.list_extensions().await), "1001"),
        "4930123456"
    );
    let clear = ExtensionChanges {
        did: Some(String::new()),
        ..Default::default()
    };
    assert!(ok(store.update_extension(REALM, "1001", &clear).await));
    assert_eq!(did_of(ok(store.list_extensions().await), "1001"), "");

    for bad in ["555-1234", "+", "+1 555", "1;x", "12345678901234567890123"] {
        let refused = store
            .add_extension(
                REALM,
                NewExtension {
                    did: Some(bad.into()),
                    ..ext("1002", "c")
                },
            )
            .await;
        assert!(
            matches!(&refused, Err(StoreError::Invalid(m)) if m.contains("bad DID")),
            "{bad}: {refused:?}"
        );
        let changes = ExtensionChanges {
            did: Some(bad.into()),
            ..Default::default()
        };
        let refused = store.update_extension(REALM, "1000", &changes).await;
        assert!(
            matches!(&refused, Err(StoreError::Invalid(m)) if m.contains("bad DID")),
            "{bad}: {refused:?}"
        );
    }
    assert_eq!(
        did_of(ok(store.list_extensions().await), "1000"),
        "+15551230001"
    );
    assert!(
        ok(store.list_extensions().await)
            .iter()
            .all(|e| e.number != "1002")
    );
}

/// A DID names one extension (migration 0015): add, set and import refuse one another
/// extension holds, naming it; its own DID set again, and empty DIDs, are fine.
pub async fn extension_did_unique(store: &Store) {
    use pbx_store::ExtensionChanges;
    let with = |number: &str, did: &str| NewExtension {
        did: Some(did.into()),
        ..ext(number, "pw")
    };
    ok(store.add_extension(REALM, with("1000", "+4930123")).await);
    ok(store.add_extension(REALM, ext("1001", "pw")).await);
    ok(store.add_extension(REALM, ext("1002", "pw")).await);
    fn taken<T: std::fmt::Debug>(r: Result<T, StoreError>) -> String {
        match r {
            Err(e @ StoreError::DidTaken { .. }) => e.to_string(),
            other => panic!("expected DidTaken, got {other:?}"),
        }
    }
    assert_eq!(
        taken(store.add_extension(REALM, with("1003", "+4930123")).await),
        "DID +4930123 is already extension 1000's"
    );
    let set = |did: &str| ExtensionChanges {
        did: Some(did.into()),
        ..Default::default()
    };
    assert_eq!(
        taken(
            store
                .update_extension(REALM, "1001", &set("+4930123"))
                .await
        ),
        "DID +4930123 is already extension 1000's"
    );
    // Its own again, and empty DIDs on several extensions.
    assert!(ok(store
        .update_extension(REALM, "1000", &set("+4930123"))
        .await));
    assert!(ok(store.update_extension(REALM, "1001", &set("")).await));
    assert!(ok(store.update_extension(REALM, "1002", &set("")).await));
    // Import: against the database and within the batch; nothing imported either way.
    assert_eq!(
        taken(
            store
                .import_extensions(
                    REALM,
                    vec![with("2000", "+15550001"), with("2001", "+4930123")]
                )
                .await
        ),
        "DID +4930123 is already extension 1000's"
    );
    assert_eq!(
        taken(
            store
                .import_extensions(
                    REALM,
                    vec![with("2000", "+15550001"), with("2001", "+15550001")]
                )
                .await
        ),
        "DID +15550001 is already extension 2000's"
    );
    let numbers: Vec<String> = ok(store.list_extensions().await)
        .into_iter()
        .map(|e| e.number)
        .collect();
    assert_eq!(numbers, ["1000", "1001", "1002"]);
    // Once 1000 lets it go, another may take it.
    assert!(ok(store.update_extension(REALM, "1000", &set("")).await));
    assert!(ok(store
        .update_extension(REALM, "1002", &set("+4930123"))
        .await));
}

/// Migration 0015 on a database that already holds a DID twice (made before it): the lowest
/// number keeps it, the others' is cleared, and the index holds from then on. `url` names a
/// database the store was opened on once.
pub async fn did_migration_clears_shared_dids(url: &str) {
    use sqlx::Connection;
    let store = ok(Store::open(url).await);
    for number in ["999", "1000", "1001", "1002"] {
        ok(store.add_extension(REALM, ext(number, "pw")).await);
    }
    store.close().await;
    // Back to before 0015, then the same DID on three extensions.
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    for sql in [
        "DROP INDEX extensions_did_unique",
        "DELETE FROM _sqlx_migrations WHERE version = 15",
        "UPDATE extensions SET did = '+4930123' WHERE number IN ('999', '1000', '1001')",
        "UPDATE extensions SET did = '+4930999' WHERE number = '1002'",
    ] {
        sqlx::query(sql)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let _ = conn.close().await;

    let store = ok(Store::open(url).await);
    let dids: Vec<(String, String)> = ok(store.list_extensions().await)
        .into_iter()
        .map(|e| (e.number, e.did))
        .collect();
    let did_of = |n: &str| {
        dids.iter()
            .find(|(number, _)| number == n)
            .map(|(_, did)| did.clone())
            .unwrap_or_default()
    };
    // 999 is the lowest number (numerically, not as text).
    assert_eq!(did_of("999"), "+4930123", "{dids:?}");
    assert_eq!(did_of("1000"), "", "{dids:?}");
    assert_eq!(did_of("1001"), "", "{dids:?}");
    assert_eq!(did_of("1002"), "+4930999", "{dids:?}");
    let set = pbx_store::ExtensionChanges {
        did: Some("+4930123".into()),
        ..Default::default()
    };
    assert!(matches!(
        store.update_extension(REALM, "1000", &set).await,
        Err(StoreError::DidTaken { .. })
    ));
    store.close().await;
}
