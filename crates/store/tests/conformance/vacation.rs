//! The store conformance suite, part 5: account settings that other parts
//! act on (the vacation responder and its memory, push subscriptions).

use super::basics::setup;
use super::Backend;
use letterbox_store::*;

pub async fn vacation_settings_round_trip_and_change_state(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    assert_eq!(store.vacation(alice).await.unwrap(), Vacation::default());
    let before = store.state(alice, DataType::VacationResponse).await.unwrap();
    let v = Vacation {
        enabled: true,
        from_date: Some(100),
        to_date: Some(200),
        subject: Some("Away".into()),
        text_body: Some("Back on Monday.".into()),
        html_body: None,
    };
    store.set_vacation(alice, v.clone()).await.unwrap();
    assert_eq!(store.vacation(alice).await.unwrap(), v);
    let after = store.state(alice, DataType::VacationResponse).await.unwrap();
    assert!(after > before);
    let ch = store
        .object_changes(alice, DataType::VacationResponse, before, 10)
        .await
        .unwrap();
    assert_eq!(ch.updated, vec![1]);
    assert!(v.active_at(100) && v.active_at(199) && !v.active_at(200) && !v.active_at(99));
    let bad = Vacation {
        subject: Some("two\r\nlines".into()),
        ..v
    };
    assert!(store.set_vacation(alice, bad).await.is_err());
}

pub async fn vacation_replies_once_per_sender_per_period(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let bob = store
        .add_account("bob@example.test", "hash", Quota::default())
        .await
        .unwrap();
    let due = |account, sender: &'static str, now| {
        let store = store.clone();
        async move { store.vacation_reply_due(account, sender, now, 1000).await.unwrap() }
    };
    assert!(due(alice, "x@remote.test", 10).await);
    assert!(!due(alice, "X@Remote.test", 500).await, "same sender, any case");
    assert!(due(bob, "x@remote.test", 500).await, "each account has its own memory");
    assert!(due(alice, "y@remote.test", 500).await);
    assert!(due(alice, "x@remote.test", 1010).await, "the period has passed");
    assert!(!due(alice, "x@remote.test", 1500).await);
    // New settings answer everyone again.
    store.set_vacation(alice, Vacation::default()).await.unwrap();
    assert!(due(alice, "x@remote.test", 1600).await);
}

pub async fn push_subscriptions_are_per_account_and_expire(b: &dyn Backend) {
    let (_g, store, alice) = setup(b).await;
    let bob = store
        .add_account("bob@example.test", "hash", Quota::default())
        .await
        .unwrap();
    let now = unix_now();
    let new = |url: &str, expires| NewPushSubscription {
        device_client_id: "dev-1".into(),
        url: url.into(),
        p256dh: Some("key".into()),
        auth: Some("auth".into()),
        verification_code: "code".into(),
        expires,
        types: Some(vec!["Email".into(), "Mailbox".into()]),
    };
    let s = store
        .create_push_subscription(alice, new("https://push.example/1", now + 3600))
        .await
        .unwrap();
    assert!(!s.verified);
    store
        .create_push_subscription(alice, new("https://push.example/old", now - 1))
        .await
        .unwrap();
    let list = store.push_subscriptions(alice).await.unwrap();
    assert_eq!(list, vec![s.clone()], "expired ones are not listed");
    assert!(store.push_subscriptions(bob).await.unwrap().is_empty());
    assert!(!store
        .update_push_subscription(bob, s.id, PushUpdate::default())
        .await
        .unwrap());
    let upd = PushUpdate {
        verified: Some(true),
        expires: None,
        types: Some(None),
    };
    assert!(store.update_push_subscription(alice, s.id, upd).await.unwrap());
    let [got] = store.push_subscriptions(alice).await.unwrap().try_into().unwrap();
    assert!(got.verified && got.types.is_none() && got.expires == s.expires);
    assert!(!store.remove_push_subscription(bob, s.id).await.unwrap());
    store.set_password("alice@example.test", "new-hash").await.unwrap();
    assert!(
        store.push_subscriptions(alice).await.unwrap().is_empty(),
        "a new password ends them"
    );
}
