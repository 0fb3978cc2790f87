//! The store conformance suite, part 5: the vacation responder's settings
//! and its once-per-sender memory.

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
