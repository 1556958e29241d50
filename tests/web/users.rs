//! User management over the API, and account changes made outside the server (the CLI)
//! taking effect at the next request.

use crate::fixture::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_users_and_changes_apply_at_once() {
    const CAROL_PW: &str = "carol first password";
    const CAROL_PW2: &str = "carol second password";
    const CAROL_PW3: &str = "carol third password";
    const ALICE_NEW: &str = "alice new password";
    for pw in [CAROL_PW, CAROL_PW2, CAROL_PW3, ALICE_NEW] {
        register_secret(pw);
    }
    let s = start().await;
    let c = s.client();
    let send = |method: reqwest::Method, path: &str, user: &str, pw: &str, body: Option<&str>| {
        let mut r = c
            .request(method, s.url(path))
            .header("origin", &s.base)
            .basic_auth(user, Some(pw));
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        r.send()
    };
    use reqwest::Method as M;
    let add_carol = format!(r#"{{"username":"carol","role":"viewer","password":"{CAROL_PW}"}}"#);
    // Viewers do not manage users; bad input is a 4xx JSON error that says why.
    let r = send(M::POST, "/api/users", "bob", VIEWER_PW, Some(&add_carol))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    for (body, status, says) in [
        (
            r#"{"username":"carol","role":"viewer","password":"short"}"#,
            400,
            "at least 10",
        ),
        (
            r#"{"username":"ca:rol","role":"viewer","password":"long enough pw"}"#,
            400,
            "user name",
        ),
        (
            r#"{"username":"carol","role":"root","password":"long enough pw"}"#,
            400,
            "expected one of `admin`, `operator`, `viewer`",
        ),
        (r#"{"username":"carol","role":"viewer""#, 400, "bad JSON"),
        (
            r#"{"username":"bob","role":"viewer","password":"long enough pw"}"#,
            409,
            "already exists",
        ),
    ] {
        let r = send(M::POST, "/api/users", "alice", ADMIN_PW, Some(body))
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{body}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(v["message"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    // A foreign Origin cannot add users, even with an admin's credentials.
    let r = c
        .post(s.url("/api/users"))
        .header("origin", "http://evil.com")
        .basic_auth("alice", Some(ADMIN_PW))
        .body(add_carol.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = send(M::POST, "/api/users", "alice", ADMIN_PW, Some(&add_carol))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = send(M::GET, "/api/users", "alice", ADMIN_PW, None)
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let names: Vec<&str> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    assert!(
        !v.to_string().contains("pbkdf2"),
        "no hash in the list: {v}"
    );
    let events = |pw: &'static str| send(M::GET, "/api/events", "carol", pw, None);
    // PUT /api/users/{target}/password as `user`.
    let passwd = |user: &str, pw: &str, target: &str, body: &str| {
        send(
            M::PUT,
            &format!("/api/users/{target}/password"),
            user,
            pw,
            Some(body),
        )
    };
    let r = events(CAROL_PW).await.unwrap();
    assert_eq!(r.status(), 200);
    let carol_session = session_cookie(&r);

    // Carol changes her own password: the current one is required and checked.
    let mine = format!(r#"{{"password":"{CAROL_PW2}","current_password":"not it at all"}}"#);
    let r = passwd("carol", CAROL_PW, "carol", &mine).await.unwrap();
    assert_eq!(r.status(), 403);
    let theirs = format!(r#"{{"password":"{CAROL_PW2}","current_password":"{VIEWER_PW}"}}"#);
    let r = passwd("carol", CAROL_PW, "bob", &theirs).await.unwrap();
    assert_eq!(r.status(), 403, "a viewer cannot change another's password");
    let mine = format!(r#"{{"password":"{CAROL_PW2}","current_password":"{CAROL_PW}"}}"#);
    let r = passwd("carol", CAROL_PW, "carol", &mine).await.unwrap();
    assert_eq!(r.status(), 200);
    // The old password stops working at once, although it had been verified (and cached).
    assert_eq!(events(CAROL_PW).await.unwrap().status(), 401);
    assert_eq!(events(CAROL_PW2).await.unwrap().status(), 200);

    // An admin resets it, giving the admin's own password (a stolen session alone cannot
    // change any password): carol's sessions end.
    let reset = format!(r#"{{"password":"{CAROL_PW3}"}}"#);
    let r = passwd("alice", ADMIN_PW, "carol", &reset).await.unwrap();
    assert_eq!(r.status(), 400, "a reset without the admin's own password");
    let reset = format!(r#"{{"password":"{CAROL_PW3}","current_password":"{CAROL_PW2}"}}"#);
    let r = passwd("alice", ADMIN_PW, "carol", &reset).await.unwrap();
    assert_eq!(r.status(), 403, "the target's password is not the admin's");
    let reset = format!(r#"{{"password":"{CAROL_PW3}","current_password":"{ADMIN_PW}"}}"#);
    let r = passwd("alice", ADMIN_PW, "carol", &reset).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(s.url("/api/events"))
        .header("cookie", &carol_session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the session outlived a password reset");
    assert_eq!(events(CAROL_PW3).await.unwrap().status(), 200);

    // Removal: not oneself, not someone missing; afterwards carol cannot log in.
    let r = send(M::DELETE, "/api/users/alice", "alice", ADMIN_PW, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = send(M::DELETE, "/api/users/nobody", "alice", ADMIN_PW, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = send(M::DELETE, "/api/users/carol", "bob", VIEWER_PW, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = send(M::DELETE, "/api/users/carol", "alice", ADMIN_PW, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(events(CAROL_PW3).await.unwrap().status(), 401);

    let audit = std::fs::read_to_string(s.dir.path().join("audit.log")).unwrap();
    for action in ["user_add", "user_passwd", "user_remove"] {
        assert!(
            audit.contains(&format!("\"action\":\"{action}\"")),
            "{action}: {audit}"
        );
    }
    check_for_secrets("audit.log", audit.as_bytes());

    // The wrong passwords above, all from this address, locked it (a success does not clear
    // an address's count); let the lock and the failures age out.
    s.clock.advance(16 * 60_000);
    // Changing one's own password in a session keeps that session (only the others end).
    let r = send(M::POST, "/auth/verify", "alice", ADMIN_PW, None)
        .await
        .unwrap();
    let alice_session = session_cookie(&r);
    let change = |body: String| {
        c.put(s.url("/api/users/alice/password"))
            .header("origin", &s.base)
            .header("cookie", &alice_session)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // Even an admin's own change needs the current password.
    let r = change(format!(r#"{{"password":"{ALICE_NEW}"}}"#))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = format!(r#"{{"password":"{ALICE_NEW}","current_password":"{ADMIN_PW}"}}"#);
    assert_eq!(change(body).await.unwrap().status(), 200);
    let r = c
        .get(s.url("/api/events"))
        .header("cookie", &alice_session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the session that made the change ended");
    let r = send(M::GET, "/api/events", "alice", ADMIN_PW, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// `sentrix user passwd|remove` runs in another process and cannot tell the server: the
/// server notices by itself at the next request, for sessions and cached Basic logins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_outside_the_server_ends_sessions_and_cached_logins() {
    const BOB_NEW: &str = "bob changed password";
    register_secret(BOB_NEW);
    let s = start().await;
    let c = s.client();
    let basic = |pw: &'static str| {
        c.get(s.url("/api/events"))
            .basic_auth("bob", Some(pw))
            .send()
    };
    let r = basic(VIEWER_PW).await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = session_cookie(&r);
    let with_cookie = |cookie: String| c.get(s.url("/api/events")).header("cookie", cookie).send();
    assert_eq!(basic(VIEWER_PW).await.unwrap().status(), 200, "cached");
    assert_eq!(with_cookie(cookie.clone()).await.unwrap().status(), 200);

    // What `sentrix user passwd bob` does, straight to the database.
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || {
        sentrix::auth::accounts::set_password(&store, "bob", BOB_NEW).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        with_cookie(cookie).await.unwrap().status(),
        401,
        "session kept"
    );
    assert_eq!(
        basic(VIEWER_PW).await.unwrap().status(),
        401,
        "cached login kept"
    );
    let r = basic(BOB_NEW).await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = session_cookie(&r);

    // `sentrix user remove bob`.
    sentrix::auth::accounts::remove(&s.store, "bob").unwrap();
    assert_eq!(with_cookie(cookie).await.unwrap().status(), 401);
    assert_eq!(basic(BOB_NEW).await.unwrap().status(), 401);
}
