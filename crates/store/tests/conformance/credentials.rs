//! The store conformance suite, part 4: app passwords and OAuth grants.

use super::basics::setup;
use super::Backend;
use letterbox_store::*;

fn token(digest: &str, kind: TokenKind, expires_in: i64) -> NewToken {
    NewToken {
        digest: digest.into(),
        kind,
        expires: now() + expires_in,
        payload: format!("{{\"for\":\"{digest}\"}}"),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub async fn app_passwords_are_per_account_and_revocable(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let bob = store
        .add_account("bob@example.test", "hash", Quota::default())
        .await
        .unwrap();
    let phone = store.add_app_password(alice, "phone", "d1").await.unwrap();
    store.add_app_password(alice, "laptop", "d2").await.unwrap();
    assert!(store.add_app_password(alice, "  ", "d3").await.is_err());
    assert!(store.check_app_password(alice, "d1").await.unwrap());
    assert!(!store.check_app_password(bob, "d1").await.unwrap(), "another account's");
    let names: Vec<String> = store
        .app_passwords(alice)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["phone", "laptop"]);
    assert!(
        !store.remove_app_password(bob, phone.id).await.unwrap(),
        "not bob's to remove"
    );
    assert!(store.remove_app_password(alice, phone.id).await.unwrap());
    assert!(!store.check_app_password(alice, "d1").await.unwrap());
    assert!(store.check_app_password(alice, "d2").await.unwrap());
    // A new password revokes the rest.
    store.set_password("alice@example.test", "hash2").await.unwrap();
    assert!(!store.check_app_password(alice, "d2").await.unwrap());
}

pub async fn codes_exchange_once_and_refresh_tokens_rotate(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let grant = store
        .create_grant(alice, "client-1", "mail", vec![token("code", TokenKind::Code, 60)])
        .await
        .unwrap();
    let rec = store.token("code").await.unwrap().unwrap();
    assert_eq!((rec.kind, rec.used, rec.grant.id), (TokenKind::Code, false, grant.id));
    assert_eq!(rec.address, "alice@example.test");
    assert_eq!(rec.payload, "{\"for\":\"code\"}");
    // The wrong kind does not exchange.
    assert_eq!(
        store.exchange_token("code", TokenKind::Refresh, vec![]).await.unwrap(),
        Exchange::NotFound
    );
    let issued = vec![
        token("at1", TokenKind::Access, 3600),
        token("rt1", TokenKind::Refresh, 86400),
    ];
    let Exchange::Done(done) = store.exchange_token("code", TokenKind::Code, issued).await.unwrap() else {
        panic!("code did not exchange");
    };
    assert_eq!(done.grant.client_id, "client-1");
    assert_eq!(store.token("at1").await.unwrap().unwrap().grant.id, grant.id);
    // Rotation: the old access token goes with the old refresh token.
    let rotated = vec![
        token("at2", TokenKind::Access, 3600),
        token("rt2", TokenKind::Refresh, 86400),
    ];
    assert!(matches!(
        store.exchange_token("rt1", TokenKind::Refresh, rotated).await.unwrap(),
        Exchange::Done(_)
    ));
    assert!(store.token("at1").await.unwrap().is_none());
    assert!(store.token("at2").await.unwrap().is_some());
    assert_eq!(store.grants(alice).await.unwrap().len(), 1);
    // Replaying the rotated refresh token revokes the whole grant.
    assert_eq!(
        store.exchange_token("rt1", TokenKind::Refresh, vec![]).await.unwrap(),
        Exchange::Replayed
    );
    assert!(store.token("at2").await.unwrap().is_none());
    assert!(store.token("rt2").await.unwrap().is_none());
    assert!(store.grants(alice).await.unwrap().is_empty());
}

pub async fn expired_tokens_are_gone_and_revocation_takes_the_grant(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    store
        .create_grant(alice, "c", "mail", vec![token("old", TokenKind::Access, -1)])
        .await
        .unwrap();
    assert!(store.token("old").await.unwrap().is_none(), "expired");
    let g = store
        .create_grant(
            alice,
            "c",
            "mail",
            vec![
                token("a", TokenKind::Access, 3600),
                token("r", TokenKind::Refresh, 3600),
            ],
        )
        .await
        .unwrap();
    assert_eq!(store.grants(alice).await.unwrap(), vec![g.clone()]);
    assert!(store.revoke_token("a").await.unwrap());
    assert!(
        store.token("r").await.unwrap().is_none(),
        "revoking the access token takes the grant"
    );
    assert!(!store.revoke_token("a").await.unwrap());
    let g2 = store
        .create_grant(alice, "c", "mail", vec![token("a2", TokenKind::Access, 3600)])
        .await
        .unwrap();
    let bob = store
        .add_account("bob@example.test", "hash", Quota::default())
        .await
        .unwrap();
    assert!(!store.revoke_grant(bob, g2.id).await.unwrap());
    assert!(store.revoke_grant(alice, g2.id).await.unwrap());
    assert!(store.token("a2").await.unwrap().is_none());
    // Removing the account removes its grants.
    store
        .create_grant(alice, "c", "mail", vec![token("a3", TokenKind::Access, 3600)])
        .await
        .unwrap();
    store.remove_account("alice@example.test").await.unwrap();
    assert!(store.token("a3").await.unwrap().is_none());
}
