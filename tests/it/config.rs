//! Config: the shipped surveillance.yml validates, and broken configs each fail with the
//! right line, column and key, through the library and through `sentrix check-config`.
//! Camera passwords never appear in the output.

use crate::common;

use sentrix::config::{Config, Issue};
use std::path::Path;
use std::process::Command;

fn shipped() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("surveillance.yml")).unwrap()
}

/// The shipped config with `from` replaced by `to` (which must occur exactly once).
fn broken(from: &str, to: &str) -> String {
    let text = shipped();
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur once in surveillance.yml"
    );
    text.replacen(from, to, 1)
}

/// 1-based line and column of the first occurrence of `needle` in `text`.
fn pos(text: &str, needle: &str) -> (usize, usize) {
    for (i, line) in text.lines().enumerate() {
        if let Some(c) = line.find(needle) {
            return (i + 1, c + 1);
        }
    }
    panic!("{needle:?} not in config");
}

fn issues(text: &str) -> Vec<Issue> {
    let dir = common::temp_dir();
    Config::from_text(text, dir.path().to_path_buf()).expect_err("config must be refused")
}

/// Asserts one of the issues is at `needle`'s position, names `key` and says `says`.
fn assert_issue(text: &str, needle: &str, key: &str, says: &str) {
    let (line, col) = pos(text, needle);
    let found = issues(text);
    assert!(
        found
            .iter()
            .any(|i| i.line == line && i.col == col && i.key == key && i.message.contains(says)),
        "expected {line}:{col}: {key}: ...{says}..., got {found:#?}"
    );
}

#[test]
fn shipped_config_is_valid() {
    let dir = common::temp_dir();
    let config =
        Config::from_text(&shipped(), dir.path().to_path_buf()).expect("surveillance.yml is valid");
    assert!(
        config.network.bind.is_loopback(),
        "default bind must be loopback"
    );
    assert!(
        config.security.use_tls
            && config.security.require_auth
            && config.security.max_login_attempts > 0
    );
    assert_eq!(config.cameras.len(), 1);
    assert_eq!(config.cameras[0].url.as_ref().unwrap().scheme(), "demo");
}

#[test]
fn unknown_top_level_key() {
    let t = broken("network:\n", "colour: red\nnetwork:\n");
    assert_issue(&t, "colour", "", "unknown field `colour`");
}

#[test]
fn unknown_camera_key() {
    let t = broken(
        "    decoder: auto\n",
        "    decoder: auto\n    colour: red\n",
    );
    assert_issue(&t, "colour", "cameras[0]", "unknown field `colour`");
}

#[test]
fn wrong_type() {
    let t = broken("api_port: 8443", "api_port: eighty");
    assert_issue(&t, "eighty", "network.api_port", "invalid type");
}

#[test]
fn port_out_of_range() {
    let t = broken("api_port: 8443", "api_port: 70000");
    assert_issue(&t, "70000", "network.api_port", "70000");
}

#[test]
fn duplicate_camera_id() {
    let t = broken(
        "    stall_timeout: 10\n",
        "    stall_timeout: 10\n  - id: demo\n    url: rtsp://cam2.lan/live\n",
    );
    let second = t.lines().position(|l| l == "  - id: demo").unwrap() + 1;
    let found = issues(&t);
    assert!(
        found.iter().any(|i| i.line == second
            && i.col == 5
            && i.key == "cameras[1].id"
            && i.message.contains("duplicate camera id")),
        "{found:#?}"
    );
}

#[test]
fn camera_id_not_url_safe() {
    let t = broken("  - id: demo ", "  - id: \"front door\" ");
    assert_issue(&t, "id: \"front", "cameras[0].id", "A-Z a-z 0-9");
}

#[test]
fn unparseable_url() {
    let t = broken(
        "    url: demo://\n",
        "    url: \"rtsp://admin:hunter2@[::1/live\"\n",
    );
    assert_issue(&t, "url:", "cameras[0].url", "not a valid URL");
    assert!(!format!("{:?}", issues(&t)).contains("hunter2"));
}

#[test]
fn unsupported_scheme_hides_password() {
    let t = broken(
        "    url: demo://\n",
        "    url: http://admin:hunter2@cam.lan/video\n",
    );
    assert_issue(&t, "url:", "cameras[0].url", "admin:***@cam.lan");
    assert!(!format!("{:?}", issues(&t)).contains("hunter2"));
}

#[test]
fn native_rtsp_client_refuses_rtsps_and_unknown_clients() {
    let t = broken("    rtsp_client: auto\n", "    rtsp_client: ffmpeg\n");
    assert_issue(
        &t,
        "ffmpeg",
        "cameras[0].rtsp_client",
        "unknown variant `ffmpeg`",
    );
    let t = broken("    rtsp_client: auto\n", "    rtsp_client: native\n").replacen(
        "    url: demo://\n",
        "    url: rtsps://admin:hunter2@cam.lan/live\n",
        1,
    );
    assert_issue(&t, "rtsp_client", "cameras[0].rtsp_client", "rtsp:// only");
    assert!(!format!("{:?}", issues(&t)).contains("hunter2"));
    // rtsp:// through the native client is fine.
    let t = broken("    rtsp_client: auto\n", "    rtsp_client: native\n").replacen(
        "    url: demo://\n",
        "    url: rtsp://cam.lan/live\n",
        1,
    );
    let dir = common::temp_dir();
    Config::from_text(&t, dir.path().to_path_buf()).expect("native with rtsp:// is valid");
}

/// Issues of `text` with `key` whose message says `says` (wherever they point).
fn has_issue(text: &str, key: &str, says: &str) -> bool {
    issues(text)
        .iter()
        .any(|i| i.key == key && i.message.contains(says))
}

#[test]
fn transport_takes_tcp_udp_or_auto() {
    for ok in ["tcp", "udp", "auto"] {
        let t = broken("    transport: auto\n", &format!("    transport: {ok}\n"));
        let dir = common::temp_dir();
        Config::from_text(&t, dir.path().to_path_buf()).expect("a known transport is valid");
    }
    let t = broken("    transport: auto\n", "    transport: sctp\n");
    assert_issue(&t, "sctp", "cameras[0].transport", "unknown variant `sctp`");
}

#[test]
fn a_camera_password_comes_from_elsewhere_and_sits_in_one_place() {
    let dir = common::temp_dir();
    let pass = dir.path().join("cam.pass");
    std::fs::write(&pass, "hunter2\n").unwrap();
    let with = |url: &str, file: &Path| {
        broken(
            "    transport: auto\n",
            &format!(
                "    transport: auto\n    password: {{file: {}}}\n",
                file.display()
            ),
        )
        .replacen("    url: demo://\n", &format!("    url: {url}\n"), 1)
    };
    let good = with("rtsp://admin@cam.lan/live", &pass);
    let config = Config::from_text(&good, dir.path().to_path_buf()).expect("valid");
    let secret = config.cameras[0].password.as_ref().unwrap();
    assert_eq!(secret.reveal().unwrap(), "hunter2");
    assert!(!format!("{config:?}").contains("hunter2"));
    let t = with(
        "rtsp://admin@cam.lan/live",
        &dir.path().join("missing.pass"),
    );
    assert!(
        has_issue(&t, "cameras[0].password", "cannot read"),
        "{:#?}",
        issues(&t)
    );
    let t = with("rtsp://admin:other@cam.lan/live", &pass);
    assert!(
        has_issue(&t, "cameras[0].url", "keep it in one place"),
        "{:#?}",
        issues(&t)
    );
    assert!(!format!("{:?}", issues(&t)).contains("hunter2"));
    let t = with("rtsp://cam.lan/live", &pass);
    assert!(
        has_issue(&t, "cameras[0].url", "names no user"),
        "{:#?}",
        issues(&t)
    );
    // The password goes into the URL percent-encoded, and never shows.
    let url = sentrix::base::redact::CameraUrl::parse("rtsp://admin@cam.lan/live").unwrap();
    let full = url.with_password("p@ss:w/rd").unwrap();
    assert_eq!(
        full.expose_secret(),
        "rtsp://admin:p%40ss%3Aw%2Frd@cam.lan/live"
    );
    assert_eq!(full.to_string(), "rtsp://admin:***@cam.lan/live");
}

#[test]
fn negative_buffer() {
    let t = broken("pre_detection_buffer: 5", "pre_detection_buffer: -5");
    assert_issue(
        &t,
        "pre_detection_buffer",
        "record.pre_detection_buffer",
        "out of range",
    );
}

#[test]
fn confidence_out_of_range() {
    let t = broken("min_confidence: 0.5", "min_confidence: 1.5");
    assert_issue(&t, "min_confidence", "record.min_confidence", "0..=1");
}

#[test]
fn unreadable_model_path() {
    let t = broken(
        "  # model: models/yolox_nano.onnx",
        "  model: /nonexistent/yolox.onnx",
    );
    assert_issue(
        &t,
        "model: /nonexistent",
        "detect.model",
        "/nonexistent/yolox.onnx",
    );
}

#[test]
fn input_size_not_multiple_of_32() {
    let t = broken("input_size: 416", "input_size: 400");
    assert_issue(&t, "input_size", "detect.input_size", "multiple of 32");
}

#[test]
fn lan_bind_without_tls() {
    let t =
        broken("bind: 127.0.0.1", "bind: 0.0.0.0").replacen("use_tls: true", "use_tls: false", 1);
    assert_issue(&t, "use_tls", "security.use_tls", "not loopback");
}

#[test]
fn bad_bind_address() {
    let t = broken("bind: 127.0.0.1", "bind: 300.1.1.1");
    assert_issue(&t, "300.1.1.1", "network.bind", "invalid IP address");
}

#[test]
fn unknown_key_source() {
    let t = broken("    key_source: file\n", "    key_source: vault\n");
    assert_issue(
        &t,
        "vault",
        "storage.encryption.key_source",
        "unknown variant `vault`",
    );
}

#[test]
fn unknown_record_mode_and_short_segments() {
    let t = broken("  mode: events\n", "  mode: always\n");
    assert_issue(&t, "always", "record.mode", "unknown variant `always`");
    let t = broken("segment_seconds: 60", "segment_seconds: 2");
    assert_issue(&t, "segment_seconds", "record.segment_seconds", "10");
    let t = broken(
        "    decoder: auto\n",
        "    decoder: auto\n    record_mode: sometimes\n",
    );
    assert_issue(
        &t,
        "sometimes",
        "cameras[0].record_mode",
        "unknown variant `sometimes`",
    );
    let t = broken("continuous_days: 7", "continuous_days: -1");
    assert_issue(
        &t,
        "continuous_days",
        "storage.retention.continuous_days",
        "0",
    );
}

#[test]
fn recordings_dir_not_writable() {
    // Under a regular file: no user, root included, can create it.
    let t = broken(
        "recordings_dir: data/recordings",
        "recordings_dir: /etc/hostname/recordings",
    );
    assert_issue(
        &t,
        "recordings_dir",
        "storage.recordings_dir",
        "/etc/hostname is not a directory",
    );
}

#[test]
fn yaml_syntax_error() {
    let t = broken(
        "  labels: [person, car, dog,",
        "  labels: [person,, ]\n  oops: [",
    );
    let found = issues(&t);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].line >= pos(&t, "labels: [person,,").0,
        "{found:#?}"
    );
}

#[test]
fn check_config_command_prints_file_line_col_and_exits_2() {
    let dir = common::temp_dir();
    let file = dir.path().join("surveillance.yml");
    std::fs::write(
        &file,
        broken(
            "    url: demo://\n",
            "    url: ftp://admin:s3cret-pw@cam.lan/\n",
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sentrix"))
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (line, col) = pos(&std::fs::read_to_string(&file).unwrap(), "url:");
    let expected = format!(
        "{}:{line}:{col}: cameras[0].url: scheme \"ftp\"",
        file.display()
    );
    assert!(
        stderr.contains(&expected),
        "expected {expected:?} in {stderr}"
    );
    assert!(
        !stderr.contains("s3cret-pw")
            && !String::from_utf8_lossy(&out.stdout).contains("s3cret-pw")
    );

    std::fs::write(&file, shipped()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sentrix"))
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("config OK"));
}

#[test]
fn every_shipped_key_is_documented() {
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    let index = sentrix::config::KeyIndex::build(&shipped());
    let mut missing: Vec<String> = index
        .paths()
        .filter(|p| !p.is_empty() && !p.ends_with(']')) // the root and list items themselves
        .map(|p| {
            // cameras[0].url -> cameras[].url
            let mut out = String::new();
            let mut skip = false;
            for ch in p.chars() {
                match ch {
                    '[' => {
                        out.push('[');
                        skip = true;
                    }
                    ']' => {
                        out.push(']');
                        skip = false;
                    }
                    _ if skip => {}
                    _ => out.push(ch),
                }
            }
            out
        })
        .filter(|p| !docs.contains(&format!("`{p}`")))
        .collect();
    // Section headings (`network`, `storage.encryption`, ...) are not keys with values.
    missing.retain(|p| {
        !matches!(
            p.as_str(),
            "network"
                | "security"
                | "record"
                | "detect"
                | "storage"
                | "storage.encryption"
                | "storage.retention"
                | "cameras"
                | "notify"
        )
    });
    assert!(
        missing.is_empty(),
        "keys missing from docs/configuration.md: {missing:?}"
    );
}

/// Every key path of a YAML value: `a.b`, with `[]` for list items.
fn key_paths(v: &serde_yaml::Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        serde_yaml::Value::Mapping(m) => {
            for (k, child) in m {
                let key = k.as_str().unwrap_or("?");
                let path = if prefix.is_empty() {
                    key.to_string()
                } else {
                    format!("{prefix}.{key}")
                };
                let is_table = match child {
                    serde_yaml::Value::Mapping(_) => true,
                    serde_yaml::Value::Sequence(items) => {
                        items.first().is_some_and(|i| i.is_mapping())
                    }
                    _ => false,
                };
                if !is_table {
                    out.push(path.clone());
                }
                key_paths(child, &path, out);
            }
        }
        serde_yaml::Value::Sequence(items) => {
            if let Some(first) = items.first() {
                key_paths(first, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_schema_key_is_documented() {
    // The schema itself, serialized: every field, optional ones included (as null).
    let dir = common::temp_dir();
    let config = Config::from_text(
        "cameras:\n  - id: a\n    url: rtsp://cam/x\n",
        dir.path().to_path_buf(),
    )
    .unwrap();
    let value = serde_yaml::to_value(&config).unwrap();
    let mut paths = Vec::new();
    key_paths(&value, "", &mut paths);
    assert!(paths.len() > 30, "{paths:?}");
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    let missing: Vec<&String> = paths
        .iter()
        .filter(|p| !p.ends_with("[]") && !docs.contains(&format!("`{p}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "schema keys missing from docs/configuration.md: {missing:?}"
    );
    // And the serialized config never carries a camera password.
    let with_pw = Config::from_text(
        "cameras:\n  - id: a\n    url: rtsp://u:secret-pw@cam/x\n",
        dir.path().to_path_buf(),
    )
    .unwrap();
    assert!(
        !serde_yaml::to_string(&with_pw)
            .unwrap()
            .contains("secret-pw")
    );
}

#[test]
fn zone_points_outside_the_picture_and_short_polygons_are_refused() {
    let t = broken(
        "    decoder: auto\n",
        "    decoder: auto\n    zones:\n      - name: drive\n        points: [[0.1, 0.1], [1.5, 0.1], [0.5, 0.9]]\n    masks:\n      - points: [[0, 0], [1, 1]]\n",
    );
    assert_issue(
        &t,
        "points: [[0.1",
        "cameras[0].zones[0].points",
        "outside the picture",
    );
    assert_issue(
        &t,
        "points: [[0, 0]",
        "cameras[0].masks[0].points",
        "at least 3 points",
    );
}

#[test]
fn detection_scores_and_motion_settings_are_checked() {
    let t = broken("  min_score: {}", "  min_score: {person: 1.5}");
    assert_issue(&t, "person: 1.5", "detect.min_score.person", "1.5");
    let t = broken("    min_area: 0.003", "    min_area: 2");
    assert_issue(&t, "min_area: 2", "detect.motion.min_area", "2");
    // Without a model, motion is the only trigger: it cannot be switched off.
    let t = broken(
        "  motion:\n    enabled: true",
        "  motion:\n    enabled: false",
    );
    assert_issue(
        &t,
        "enabled: false",
        "detect.motion.enabled",
        "only trigger",
    );
}

/// The shipped config with `yaml` in place of its empty `targets: []` and `rules: []`.
fn with_notify(targets: &str, rules: &str) -> String {
    broken("  targets: []\n", &format!("  targets:\n{targets}")).replacen(
        "  rules: []\n",
        &format!("  rules:\n{rules}"),
        1,
    )
}

#[test]
fn notify_mistakes_are_located() {
    let hook = "    - {type: webhook, name: hook, url: 'https://example.com/h'}\n";
    // An unknown target type.
    let text = with_notify("    - {type: pager, name: p}\n", "");
    let found = issues(&text);
    assert!(
        found.iter().any(|i| i.key.starts_with("notify.targets[0]")
            && i.message.contains("unknown variant `pager`")),
        "{found:#?}"
    );
    assert_eq!(found[0].line, pos(&text, "{type: pager").0);
    // A secret file that is not there.
    let text = with_notify(
        "    - {type: webhook, name: hook, url: 'https://example.com/h', secret: {file: /nonexistent/hook.key}}\n",
        "",
    );
    assert_issue(
        &text,
        "secret: {file",
        "notify.targets[0].secret",
        "cannot read /nonexistent/hook.key",
    );
    // Plain HTTP off loopback, plain MQTT off loopback, SMTP without TLS off loopback.
    let text = with_notify(
        "    - {type: webhook, name: hook, url: 'http://example.com/h'}\n",
        "",
    );
    assert_issue(
        &text,
        "url: 'http://",
        "notify.targets[0].url",
        "must be https://",
    );
    let text = with_notify(
        "    - {type: mqtt, name: ha, host: broker.lan, tls: false}\n",
        "",
    );
    assert_issue(
        &text,
        "tls: false}",
        "notify.targets[0].tls",
        "must be true",
    );
    let text = with_notify(
        "    - {type: email, name: m, host: smtp.lan, security: none, from: a@b, to: [c@d]}\n",
        "",
    );
    assert_issue(
        &text,
        "security: none",
        "notify.targets[0].security",
        "only allowed to a server on loopback",
    );
    // Rules: a target that does not exist, an MQTT target, a zone no camera has, a schedule.
    let text = with_notify(hook, "    - {target: pager}\n");
    assert_issue(
        &text,
        "target: pager",
        "notify.rules[0].target",
        "no target named",
    );
    let text = with_notify(
        "    - {type: mqtt, name: ha, host: localhost, tls: false}\n",
        "    - {target: ha}\n",
    );
    assert_issue(
        &text,
        "target: ha}",
        "notify.rules[0].target",
        "publishes every event",
    );
    let text = with_notify(hook, "    - {target: hook, zones: [pool]}\n");
    assert_issue(
        &text,
        "pool]",
        "notify.rules[0].zones[0]",
        "no camera of this rule has a zone named \"pool\"",
    );
    let text = with_notify(
        hook,
        "    - {target: hook, schedule: {from: '25:00', to: '06:00'}}\n",
    );
    assert_issue(
        &text,
        "from: '25",
        "notify.rules[0].schedule.from",
        "not a time",
    );
    // An inline secret is never echoed in an error.
    let text = with_notify(
        "    - {type: webhook, name: hook, url: 'ftp://x', secret: s3cr3t-value}\n",
        "",
    );
    assert!(
        issues(&text)
            .iter()
            .all(|i| !i.message.contains("s3cr3t-value"))
    );
}

#[test]
fn offsite_mistakes_are_located_and_inline_credentials_refused() {
    let text = broken(
        "    min_free_percent: 10\n",
        "    min_free_percent: 10\n  offsite:\n    endpoint: http://s3.lan:9000\n    bucket: Bad_Bucket\n\
         \x20   access_key_id: {env: S3_KEY}\n    secret_access_key: plaintext-s3-secret\n\
         \x20   prefix: ../up\n",
    );
    assert_issue(
        &text,
        "endpoint: http://",
        "storage.offsite.endpoint",
        "plain http to a non-loopback host",
    );
    assert_issue(
        &text,
        "bucket: Bad_Bucket",
        "storage.offsite.bucket",
        "is not a bucket name",
    );
    assert_issue(
        &text,
        "secret_access_key: plain",
        "storage.offsite.secret_access_key",
        "must not be written in the config",
    );
    assert_issue(
        &text,
        "prefix: ../up",
        "storage.offsite.prefix",
        "must be 1-64",
    );
    let found = issues(&text);
    assert!(
        found
            .iter()
            .all(|i| !i.message.contains("plaintext-s3-secret")),
        "{found:#?}"
    );
    // Plain http to loopback with credentials from files is fine.
    let dir = common::temp_dir();
    std::fs::write(dir.path().join("s3.key"), "AKIA\n").unwrap();
    let ok = broken(
        "    min_free_percent: 10\n",
        "    min_free_percent: 10\n  offsite:\n    endpoint: http://127.0.0.1:9000\n    bucket: nvr\n\
         \x20   access_key_id: {file: s3.key}\n    secret_access_key: {file: s3.key}\n",
    );
    Config::from_text(&ok, dir.path().to_path_buf()).expect("a loopback endpoint is accepted");
}
