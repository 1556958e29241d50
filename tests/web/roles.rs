//! Who may do what, walked in full: every API route with every role (admin, operator,
//! viewer, by password) and with a token of every scope each role may hold. The table here
//! is the policy of docs/security.md written out by hand, not read from the code: each
//! route names the token scope it needs and the least role that may use it. A request is
//! let through when the answer is neither 401 nor 403 (the handlers then answer 200, 400,
//! 404 or 409 to the test's harmless bodies); one that must not pass gets 401 or 403.
//! Tokens are also refused the scopes their role may not hold.

use crate::fixture::*;
use reqwest::Method as M;
use sentrix::auth::Role;
use sentrix::auth::tokens::{Scope, TokenRequest};

const OPERATOR_PW: &str = "operator password 77";

/// The least role a route admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Least {
    AnyRole,
    Operators,
    Admins,
}

fn rank(role: Role) -> Least {
    match role {
        Role::Viewer => Least::AnyRole,
        Role::Operator => Least::Operators,
        Role::Admin => Least::Admins,
    }
}

/// (method, path, body, the token scope it needs, the least role).
fn routes() -> Vec<(M, &'static str, &'static str, Scope, Least)> {
    use Least::*;
    use Scope::*;
    vec![
        (M::GET, "/api/me", "", EventsRead, AnyRole),
        (M::GET, "/api/health", "", EventsRead, AnyRole),
        (M::GET, "/api/cameras", "", EventsRead, AnyRole),
        (M::GET, "/api/events", "", EventsRead, AnyRole),
        (M::GET, "/api/events/999999", "", EventsRead, AnyRole),
        (
            M::GET,
            "/api/events/999999/snapshot.jpg",
            "",
            EventsRead,
            AnyRole,
        ),
        (M::GET, "/api/review", "", EventsRead, AnyRole),
        (M::GET, "/api/review/999999", "", EventsRead, AnyRole),
        (M::GET, "/api/analytics", "", EventsRead, AnyRole),
        (M::GET, "/metrics", "", EventsRead, AnyRole),
        (M::GET, "/api/clips", "", ClipsRead, AnyRole),
        (M::GET, "/api/clips/999999", "", ClipsRead, AnyRole),
        (M::GET, "/clips/999999.mp4", "", ClipsRead, AnyRole),
        (M::GET, "/api/timeline?camera=porch", "", ClipsRead, AnyRole),
        (
            M::GET,
            "/api/recordings/nothing.mp4",
            "",
            ClipsRead,
            AnyRole,
        ),
        (
            M::GET,
            "/recordings/porch/nothing.mp4",
            "",
            ClipsRead,
            AnyRole,
        ),
        (M::GET, "/api/cameras/porch/snapshot.jpg", "", Live, AnyRole),
        (M::GET, "/api/cameras/porch/live.mjpeg", "", Live, AnyRole),
        (M::GET, "/api/cameras/porch/live.mp4", "", Live, AnyRole),
        (M::POST, "/api/events/999999/ack", "", Operate, Operators),
        (
            M::POST,
            "/api/events/999999/keep",
            r#"{"keep":true}"#,
            Operate,
            Operators,
        ),
        (
            M::POST,
            "/api/cameras/porch/trigger",
            "",
            Operate,
            Operators,
        ),
        // Anyone marks their own list reviewed (only an operator's or admin's marks also
        // acknowledge the events); a token needs `operate`.
        (M::POST, "/api/review/reviewed", "{", Operate, AnyRole),
        (M::POST, "/api/review/999999/reviewed", "", Operate, AnyRole),
        (
            M::PUT,
            "/api/notify/armed",
            r#"{"mode":"nowhere"}"#,
            Operate,
            Operators,
        ),
        (M::GET, "/api/notify", "", Admin, AnyRole),
        (M::GET, "/api/users", "", Admin, Admins),
        (M::POST, "/api/users", "{", Admin, Admins),
        (M::DELETE, "/api/users/nobody", "", Admin, Admins),
        (M::POST, "/api/users/nobody/unlock", "", Admin, Admins),
        (M::PUT, "/api/users/alice/password", "{", Admin, Admins),
        (M::GET, "/api/tokens", "", Admin, Admins),
        (M::POST, "/api/tokens", "{", Admin, Admins),
        (M::DELETE, "/api/tokens/nobody", "", Admin, Admins),
        (M::GET, "/api/offsite", "", Admin, Admins),
        (M::POST, "/api/cameras", "{", Admin, Admins),
        (M::PUT, "/api/cameras/porch", "{", Admin, Admins),
        (M::DELETE, "/api/cameras/porch", "", Admin, Admins),
        (M::PUT, "/api/cameras/porch/zones", "{", Admin, Admins),
        (M::POST, "/api/cameras/probe", "{", Admin, Admins),
        // Never a multicast here: without targets and multicast off, a 400.
        (
            M::GET,
            "/api/onvif/discover?multicast=false",
            "",
            Admin,
            Admins,
        ),
        (M::POST, "/api/onvif/profiles", "{", Admin, Admins),
    ]
}

enum Who<'a> {
    Password(&'a str, &'a str),
    Token(&'a str),
}

async fn status(
    s: &Server,
    c: &reqwest::Client,
    who: &Who<'_>,
    method: &M,
    path: &str,
    body: &str,
) -> u16 {
    let mut r = c
        .request(method.clone(), s.url(path))
        .header("origin", &s.base)
        .header("content-type", "application/json");
    r = match who {
        Who::Password(user, pw) => r.basic_auth(user, Some(pw)),
        Who::Token(token) => r.bearer_auth(token),
    };
    if !body.is_empty() {
        r = r.body(body.to_string());
    }
    // Headers are enough: an event or live stream is dropped unread.
    r.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_with_every_role_and_every_token_scope() {
    let s = start().await;
    let c = s.client();
    let now = s.clock.wall_ms();
    s.store
        .add_user(
            "olive",
            "operator",
            &sentrix::auth::password::hash(OPERATOR_PW).unwrap(),
            now,
        )
        .unwrap();
    register_secret(OPERATOR_PW);
    let people = [
        (Role::Admin, Who::Password("alice", ADMIN_PW)),
        (Role::Operator, Who::Password("olive", OPERATOR_PW)),
        (Role::Viewer, Who::Password("bob", VIEWER_PW)),
    ];
    // A token of each scope each role may hold; the others are refused at creation.
    let mut tokens = Vec::new();
    for role in [Role::Admin, Role::Operator, Role::Viewer] {
        for scope in Scope::ALL {
            let request = TokenRequest {
                name: format!("{}-{}", role.as_str(), scope.as_str().replace(':', "-")),
                role,
                scopes: Some(vec![scope]),
                expires_days: None,
            };
            let made = sentrix::auth::tokens::create(&s.store, &request, now);
            let may_hold = match scope {
                Scope::Admin => role == Role::Admin,
                Scope::Operate => role != Role::Viewer,
                _ => true,
            };
            assert_eq!(made.is_ok(), may_hold, "{role:?} with {scope:?}: {made:?}");
            if let Ok((token, _)) = made {
                register_secret(&token);
                tokens.push((role, scope, token));
            }
        }
    }
    assert_eq!(tokens.len(), 5 + 4 + 3);

    let mut wrong = Vec::new();
    for (method, path, body, needs, least) in routes() {
        for (role, who) in &people {
            let got = status(&s, &c, who, &method, path, body).await;
            let allowed = rank(*role) >= least;
            if allowed == matches!(got, 401 | 403) {
                wrong.push(format!("{method} {path} as {role:?}: {got}"));
            }
        }
        for (role, scope, token) in &tokens {
            let got = status(&s, &c, &Who::Token(token), &method, path, body).await;
            let allowed = rank(*role) >= least && *scope == needs;
            if allowed == matches!(got, 401 | 403) {
                wrong.push(format!(
                    "{method} {path} with a {role:?} token of {scope:?}: {got}"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong answers:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // Pages and the login routes never take a token.
    let (_, _, token) = &tokens[0];
    for (method, path) in [(M::GET, "/"), (M::POST, "/auth/logout")] {
        let got = status(&s, &c, &Who::Token(token), &method, path, "").await;
        assert!(
            matches!(got, 401 | 403),
            "{method} {path} with a token: {got}"
        );
    }
}
