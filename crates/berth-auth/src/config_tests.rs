use super::*;

fn basic(user: &str, pass: &str) -> String {
    BASE64_STANDARD.encode(format!("{user}:{pass}"))
}

fn config(text: &str) -> ConfigFile {
    ConfigFile::parse(text, "test.json").unwrap()
}

fn found_key(config: &ConfigFile, registry: &str, repository: &str) -> Option<String> {
    config.find_auth(registry, repository, "test.json").unwrap().map(|found| found.key)
}

#[test]
fn normalizes_keys() {
    assert_eq!(normalize_key("https://index.docker.io/v1/").as_deref(), Some("docker.io"));
    assert_eq!(normalize_key("index.docker.io").as_deref(), Some("docker.io"));
    assert_eq!(normalize_key("registry-1.docker.io").as_deref(), Some("docker.io"));
    assert_eq!(normalize_key("http://Reg.IO:5000/").as_deref(), Some("reg.io:5000"));
    assert_eq!(normalize_key("reg.io/ns/app/").as_deref(), Some("reg.io/ns/app"));
    assert_eq!(normalize_key("https://reg.io/v2/").as_deref(), Some("reg.io"));
    assert_eq!(normalize_key("docker.io/library").as_deref(), Some("docker.io/library"));
    assert_eq!(normalize_key(""), None);
    assert_eq!(normalize_key("https://"), None);
}

#[test]
fn candidates_are_most_specific_first() {
    assert_eq!(candidate_keys("reg.io", "a/b/c"), ["reg.io/a/b/c", "reg.io/a/b", "reg.io/a", "reg.io"]);
    assert_eq!(candidate_keys("reg.io", ""), ["reg.io"]);
    assert_eq!(
        candidate_keys("index.docker.io", "library/nginx"),
        ["docker.io/library/nginx", "docker.io/library", "docker.io"]
    );
}

#[test]
fn most_specific_key_wins() {
    let text = format!(
        r#"{{"auths": {{
            "reg.io": {{"auth": "{}"}},
            "reg.io/team": {{"auth": "{}"}},
            "reg.io/team/app": {{"auth": "{}"}}
        }}}}"#,
        basic("host", "p1"),
        basic("team", "p2"),
        basic("app", "p3")
    );
    let config = config(&text);
    assert_eq!(found_key(&config, "reg.io", "team/app").as_deref(), Some("reg.io/team/app"));
    assert_eq!(found_key(&config, "reg.io", "team/app/sub").as_deref(), Some("reg.io/team/app"));
    assert_eq!(found_key(&config, "reg.io", "team/other").as_deref(), Some("reg.io/team"));
    assert_eq!(found_key(&config, "reg.io", "else").as_deref(), Some("reg.io"));
    let found = config.find_auth("reg.io", "team/x", "test.json").unwrap().unwrap();
    assert_eq!(found.credential, Credential::Basic { username: "team".into(), password: Secret::new("p2") });
}

#[test]
fn keys_match_only_at_boundaries() {
    let text = format!(
        r#"{{"auths": {{"reg.io": {{"auth": "{0}"}}, "other.io/ns": {{"auth": "{0}"}}}}}}"#,
        basic("u", "p")
    );
    let config = config(&text);
    assert_eq!(found_key(&config, "reg.io.evil.test", "app"), None);
    assert_eq!(found_key(&config, "evilreg.io", "app"), None);
    assert_eq!(found_key(&config, "reg.io:5000", "app"), None);
    assert_eq!(found_key(&config, "other.io", "nsx/a"), None);
    assert_eq!(found_key(&config, "other.io", "ns/a").as_deref(), Some("other.io/ns"));
    assert_eq!(found_key(&config, "other.io", ""), None);
}

#[test]
fn docker_hub_keys_in_every_spelling() {
    for key in
        ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "https://registry-1.docker.io/"]
    {
        let config = config(&format!(r#"{{"auths": {{"{key}": {{"auth": "{}"}}}}}}"#, basic("u", "p")));
        assert_eq!(found_key(&config, "docker.io", "library/nginx").as_deref(), Some(key), "{key}");
    }
}

#[test]
fn entry_shapes() {
    let text = format!(
        r#"{{"auths": {{
            "a.io": {{"username": "ua", "password": "pa"}},
            "b.io": {{"auth": "{}", "identitytoken": "refresh"}},
            "c.io": {{"registrytoken": "bearer", "auth": "{}"}},
            "d.io": {{"identitytoken": "only-token"}},
            "e.io": {{"auth": "{}"}}
        }}}}"#,
        basic("ub", ""),
        basic("x", "y"),
        BASE64_STANDARD_NO_PAD.encode("ue:pe")
    );
    let config = config(&text);
    let credential =
        |registry: &str| config.find_auth(registry, "", "test.json").unwrap().unwrap().credential;
    assert_eq!(credential("a.io"), Credential::Basic { username: "ua".into(), password: Secret::new("pa") });
    assert_eq!(
        credential("b.io"),
        Credential::IdentityToken { username: "ub".into(), token: Secret::new("refresh") }
    );
    assert_eq!(credential("c.io"), Credential::RegistryToken(Secret::new("bearer")));
    assert_eq!(
        credential("d.io"),
        Credential::IdentityToken { username: String::new(), token: Secret::new("only-token") }
    );
    assert_eq!(credential("e.io"), Credential::Basic { username: "ue".into(), password: Secret::new("pe") });
}

#[test]
fn empty_entries_are_skipped_for_less_specific_ones() {
    let text = format!(
        r#"{{"auths": {{"reg.io/ns": {{}}, "reg.io/ns/app": {{"auth": ""}}, "reg.io": {{"auth": "{}"}}}}}}"#,
        basic("u", "p")
    );
    assert_eq!(found_key(&config(&text), "reg.io", "ns/app").as_deref(), Some("reg.io"));
}

#[test]
fn invalid_configs_name_the_origin_but_no_values() {
    let error =
        ConfigFile::parse("{\"auths\": {\"reg.io\": {\"auth\": \"c2VjcmV0", "/x/config.json").err().unwrap();
    let message = error.to_string();
    assert!(
        message.starts_with("invalid credentials config /x/config.json: not valid JSON (line 1"),
        "{message}"
    );
    assert!(!message.contains("c2VjcmV0"));
    for (text, expected) in [
        ("[]", "top level"),
        (r#"{"auths": []}"#, "\"auths\" must be an object"),
        (r#"{"auths": {"r": 5}}"#, "entry \"r\" must be an object"),
        (r#"{"credHelpers": {"r": 5}}"#, "\"credHelpers\" entry \"r\""),
        (r#"{"credsStore": 5}"#, "\"credsStore\" must be a string"),
    ] {
        let message = ConfigFile::parse(text, "$VAR").err().unwrap().to_string();
        assert!(message.contains("$VAR") && message.contains(expected), "{text}: {message}");
    }
}

#[test]
fn bad_entries_fail_only_when_matched() {
    let text = r#"{"auths": {"bad.io": {"auth": "not base64 !!!"}, "num.io": {"password": 12345678}}}"#;
    let config = config(text);
    assert!(config.find_auth("good.io", "", "f").unwrap().is_none());
    let message = config.find_auth("bad.io", "", "f").err().unwrap().to_string();
    assert!(message.contains("\"auth\" of \"bad.io\" is not base64"), "{message}");
    let message = config.find_auth("num.io", "", "f").err().unwrap().to_string();
    assert!(message.contains("\"password\" of \"num.io\" must be a string") && !message.contains("12345678"));
    let no_colon = format!(r#"{{"auths": {{"r.io": {{"auth": "{}"}}}}}}"#, BASE64_STANDARD.encode("nocolon"));
    assert!(super::ConfigFile::parse(&no_colon, "f").unwrap().find_auth("r.io", "", "f").is_err());
}

#[test]
fn helpers_per_registry_then_store() {
    let config = config(
        r#"{"credHelpers": {"https://index.docker.io/v1/": "hub", "reg.io": "regh"}, "credsStore": "desktop"}"#,
    );
    assert_eq!(config.helper_for("docker.io"), Some("hub"));
    assert_eq!(config.helper_for("reg.io"), Some("regh"));
    assert_eq!(config.helper_for("reg.io.evil.test"), Some("desktop"));
    let config =
        super::ConfigFile::parse(r#"{"credHelpers": {"reg.io": ""}, "credsStore": ""}"#, "f").unwrap();
    assert_eq!(config.helper_for("reg.io"), None);
}

#[test]
fn helper_servers_and_file_keys() {
    assert_eq!(helper_server("docker.io"), "https://index.docker.io/v1/");
    assert_eq!(helper_server("index.docker.io"), "https://index.docker.io/v1/");
    assert_eq!(helper_server("127.0.0.1:5000"), "127.0.0.1:5000");
    assert_eq!(file_key("docker.io"), "https://index.docker.io/v1/");
    assert_eq!(file_key("Reg.io"), "reg.io");
}

#[test]
fn written_entries_read_back() {
    let credentials = [
        Credential::Basic { username: "u".into(), password: Secret::new("p:with:colons") },
        Credential::IdentityToken { username: "u".into(), token: Secret::new("t") },
        Credential::IdentityToken { username: String::new(), token: Secret::new("t") },
        Credential::RegistryToken(Secret::new("r")),
    ];
    for credential in credentials {
        let value = serde_json::json!({ "auths": { "reg.io": entry_for(&credential) } });
        let config = ConfigFile::from_value(&value, "f").unwrap();
        assert_eq!(config.find_auth("reg.io", "", "f").unwrap().unwrap().credential, credential);
    }
}
