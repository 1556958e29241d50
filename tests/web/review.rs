//! Review items over HTTPS, per user: a viewer marks what they reviewed (which
//! acknowledges the events) without touching the admin's marks; an admin's acknowledgement
//! marks the item for the admin only; "mark all" takes only what it names; every bad
//! request is a JSON 4xx.

use crate::fixture::*;
use serde_json::{Value, json};

async fn get(s: &Server, user: &str, pw: &str, path: &str) -> (u16, Value) {
    let r = s
        .client()
        .get(s.url(path))
        .basic_auth(user, Some(pw))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post(s: &Server, user: &str, pw: &str, path: &str, body: Value) -> (u16, Value) {
    let r = s
        .client()
        .post(s.url(path))
        .header("origin", &s.base)
        .basic_auth(user, Some(pw))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewed_marks_are_per_user_and_bad_requests_are_4xx() {
    let s = start().await;
    let t0 = sentrix::base::clock::wall_ms() - 3_600_000;
    let store = s.store.clone();
    let ids: Vec<i64> = tokio::task::spawn_blocking(move || {
        // porch: a person (alert); 60 s later a dog (detection); yard: a car (alert).
        let mut ids = Vec::new();
        for (cam, label, at) in [
            ("porch", "person", 0),
            ("porch", "dog", 60_000),
            ("yard", "car", 0),
        ] {
            let id = store
                .insert_event(cam, label, t0 + at, 0.9, &[0.0; 4])
                .unwrap();
            store
                .update_event(id, Some(t0 + at + 2000), 0.9, &[0.0; 4])
                .unwrap();
            ids.push(id);
        }
        store.close_due_review_items(t0 + 3_600_000).unwrap();
        ids
    })
    .await
    .unwrap();
    let (status, list) = get(&s, "bob", VIEWER_PW, "/api/review").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 3, "{list}");
    assert_eq!(
        list["unreviewed"],
        json!({"alert": 2, "detection": 1, "motion": 0})
    );
    let person_item = s.store.event(ids[0]).unwrap().review_id.unwrap();

    // bob (a viewer) reviews the person: his own list only, the event is not acknowledged
    // (only operators and admins acknowledge); alice's mark is not set.
    let path = format!("/api/review/{person_item}/reviewed");
    let (status, _) = post(&s, "bob", VIEWER_PW, &path, json!({})).await;
    assert_eq!(status, 200);
    assert!(!s.store.event(ids[0]).unwrap().acknowledged);
    let one = |user: &'static str, pw: &'static str| {
        let path = format!("/api/review/{person_item}");
        let s = &s;
        async move { get(s, user, pw, &path).await.1["item"]["reviewed"].clone() }
    };
    assert_eq!(one("bob", VIEWER_PW).await, true);
    assert_eq!(one("alice", ADMIN_PW).await, false);

    // alice acknowledges the dog: its item is reviewed for alice, not for bob.
    let (status, _) = post(
        &s,
        "alice",
        ADMIN_PW,
        &format!("/api/events/{}/ack", ids[1]),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let dog_item = s.store.event(ids[1]).unwrap().review_id.unwrap();
    let (_, dog) = get(&s, "alice", ADMIN_PW, &format!("/api/review/{dog_item}")).await;
    assert_eq!(dog["item"]["reviewed"], true);
    let (_, dog) = get(&s, "bob", VIEWER_PW, &format!("/api/review/{dog_item}")).await;
    assert_eq!(dog["item"]["reviewed"], false);

    // Mark all of yard's alerts for alice: the yard item only.
    let body = json!({"before_ms": t0 + 3_600_000, "camera": "yard", "severity": "alert"});
    let (status, marked) = post(&s, "alice", ADMIN_PW, "/api/review/reviewed", body).await;
    assert_eq!((status, marked), (200, json!({"marked": 1})));
    let (_, left) = get(&s, "alice", ADMIN_PW, "/api/review?reviewed=false").await;
    let left: Vec<i64> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(left, vec![person_item]);

    // Bad input: JSON 4xx, never a 5xx.
    for (path, body) in [
        ("/api/review/reviewed", json!({"camera": "yard"})),
        (
            "/api/review/reviewed",
            json!({"before_ms": 1, "severity": "loud"}),
        ),
        (
            "/api/review/reviewed",
            json!({"before_ms": 1, "extra": true}),
        ),
        ("/api/review/999999/reviewed", json!({})),
    ] {
        let (status, err) = post(&s, "bob", VIEWER_PW, path, body.clone()).await;
        assert!(
            (400..500).contains(&status),
            "{path} {body}: {status} {err}"
        );
        assert!(err["message"].is_string(), "{err}");
    }
    for path in [
        "/api/review?severity=loud",
        "/api/review?limit=x",
        "/api/review/abc",
        "/api/review/999999",
    ] {
        let (status, err) = get(&s, "bob", VIEWER_PW, path).await;
        assert!((400..500).contains(&status), "{path}: {status} {err}");
    }
    // Without credentials: 401.
    let r = s.client().get(s.url("/api/review")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}
