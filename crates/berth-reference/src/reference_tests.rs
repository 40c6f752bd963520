use super::*;

const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn parsed(input: &str) -> Reference {
    Reference::parse(input).unwrap_or_else(|error| panic!("{input:?} should parse: {error}"))
}

fn reason(input: &str) -> String {
    match Reference::parse(input) {
        Err(Error::InvalidReference { input: got, reason }) => {
            assert_eq!(got, input, "the error names the input");
            reason
        }
        other => panic!("expected InvalidReference for {input:?}, got {other:?}"),
    }
}

#[test]
fn docker_hub_short_names() {
    let reference = parsed("nginx");
    assert_eq!(reference.domain(), "docker.io");
    assert_eq!(reference.repository(), "library/nginx");
    assert_eq!(reference.tag(), Some("latest"));
    assert_eq!(reference.digest(), None);
    assert_eq!(reference.to_string(), "docker.io/library/nginx:latest");
    assert_eq!(reference.name(), "docker.io/library/nginx");
    assert_eq!(reference.api_host(), "registry-1.docker.io");
    assert_eq!(parsed("user/app").to_string(), "docker.io/user/app:latest");
    assert_eq!(parsed("user/app:1.0").to_string(), "docker.io/user/app:1.0");
}

#[test]
fn docker_hub_domains_normalize() {
    assert_eq!(parsed("docker.io/nginx").to_string(), "docker.io/library/nginx:latest");
    assert_eq!(parsed("index.docker.io/nginx").to_string(), "docker.io/library/nginx:latest");
    assert_eq!(parsed("index.docker.io/user/app:2").to_string(), "docker.io/user/app:2");
    assert_eq!(parsed("docker.io/library/nginx").to_string(), "docker.io/library/nginx:latest");
    assert_eq!(parsed("Docker.IO/nginx").domain(), "docker.io");
}

#[test]
fn other_registries_keep_their_host() {
    let reference = parsed("localhost/x");
    assert_eq!((reference.domain(), reference.repository()), ("localhost", "x"));
    let reference = parsed("host.tld/x");
    assert_eq!((reference.domain(), reference.repository()), ("host.tld", "x"));
    let reference = parsed("host:5000/a/b:tag");
    assert_eq!(reference.domain(), "host:5000");
    assert_eq!(reference.repository(), "a/b");
    assert_eq!(reference.tag(), Some("tag"));
    assert_eq!(reference.api_host(), "host:5000");
    assert_eq!(parsed("127.0.0.1:5000/app").to_string(), "127.0.0.1:5000/app:latest");
    assert_eq!(parsed("localhost:5000/app").domain(), "localhost:5000");
    let reference = parsed("[::1]:5000/app:v1");
    assert_eq!(reference.domain(), "[::1]:5000");
    assert_eq!(reference.repository(), "app");
    assert_eq!(parsed("[fe80::1]/app").domain(), "[fe80::1]");
}

#[test]
fn first_component_without_dot_colon_or_localhost_is_a_path() {
    let reference = parsed("myhost/app");
    assert_eq!(reference.domain(), "docker.io");
    assert_eq!(reference.repository(), "myhost/app");
}

#[test]
fn digests_and_tags_together() {
    let reference = parsed(&format!("nginx@{DIGEST}"));
    assert_eq!(reference.tag(), None);
    assert_eq!(reference.digest().map(Digest::as_str), Some(DIGEST));
    assert_eq!(reference.manifest_reference(), DIGEST);
    assert_eq!(reference.to_string(), format!("docker.io/library/nginx@{DIGEST}"));

    let reference = parsed(&format!("h:5000/a:t@{DIGEST}"));
    assert_eq!(reference.tag(), Some("t"));
    assert_eq!(reference.manifest_reference(), DIGEST, "the digest wins for fetching");
    assert_eq!(reference.to_string(), format!("h:5000/a:t@{DIGEST}"));
    assert_eq!(parsed("nginx:1.25").manifest_reference(), "1.25");
}

#[test]
fn display_round_trips() {
    for input in ["docker.io/library/nginx:latest", "h:5000/a/b:t", "ghcr.io/o/r/x:1.0-rc_1"] {
        let reference = parsed(input);
        assert_eq!(reference.to_string(), input);
        assert_eq!(parsed(&reference.to_string()), reference);
    }
    let with_digest = format!("h:5000/a@{DIGEST}");
    assert_eq!(parsed(&with_digest).to_string(), with_digest);
}

#[test]
fn uppercase_repository_is_rejected_with_the_component() {
    assert_eq!(reason("MyApp"), "repository name must be lowercase: \"MyApp\"");
    assert_eq!(reason("reg.io/ns/MyApp:1"), "repository name must be lowercase: \"MyApp\"");
    let message = Reference::parse("MyApp").unwrap_err().to_string();
    assert_eq!(message, "invalid image reference \"MyApp\": repository name must be lowercase: \"MyApp\"");
}

#[test]
fn bad_tags_are_named() {
    assert_eq!(reason("nginx:latest!"), "tag contains invalid character '!'");
    assert_eq!(reason("nginx:"), "tag is empty");
    assert!(reason("nginx:.hidden").contains("must start with"));
    assert!(reason("nginx:-x").contains("must start with"));
    assert!(reason(&format!("nginx:{}", "a".repeat(129))).contains("limit is 128"));
    assert_eq!(parsed(&format!("nginx:{}", "a".repeat(128))).tag().map(str::len), Some(128));
    assert_eq!(parsed("nginx:V1.0_beta-2").tag(), Some("V1.0_beta-2"));
}

#[test]
fn bad_path_components_are_named() {
    assert!(reason("a//b").contains("empty path component"));
    assert!(reason("a/").contains("empty path component"));
    assert_eq!(reason("reg.io/"), "repository name is empty");
    assert!(reason("-a").contains("must start and end"));
    assert!(reason("a-").contains("must start and end"));
    assert!(reason("a..b").contains("invalid separator \"..\""));
    assert!(reason("a___b").contains("invalid separator \"___\""));
    assert!(reason("a.-b").contains("invalid separator \".-\""));
    assert!(reason("a!b").contains("invalid character '!'"));
    assert!(reason("a b").contains("invalid character ' '"));
    assert!(reason("").contains("empty"));
    assert_eq!(parsed("a__b/c---d/e.f_g").repository(), "a__b/c---d/e.f_g");
}

#[test]
fn bad_domains_are_named() {
    assert!(reason("reg..io/a").contains("empty label"));
    assert!(reason("reg.io:abc/a").contains("port \"abc\""));
    assert!(reason("reg.io:0/a").contains("port \"0\""));
    assert!(reason("reg.io:70000/a").contains("port \"70000\""));
    assert!(reason("-reg.io/a").contains("must not start or end with '-'"));
    assert!(reason("re_g.io/a").contains("invalid character '_'"));
    assert!(reason("[::1/a").contains("without ']'"));
    assert!(reason("[zz::1]/a").contains("IPv6"));
}

#[test]
fn bad_digests_are_rejected_before_use() {
    assert!(reason("nginx@sha256:abc").contains("64 hex characters"));
    assert!(reason("nginx@md5:abc").contains("unsupported digest algorithm"));
    assert!(reason(&format!("nginx@{}", DIGEST.to_uppercase().replace("SHA", "sha"))).contains("lowercase"));
    assert!(reason(&format!("nginx@{DIGEST}@{DIGEST}")).contains("invalid character '@'"));
}

#[test]
fn name_length_is_capped() {
    let long_path = format!("reg.io/{}", "a".repeat(248));
    assert_eq!(long_path.len(), 255);
    assert!(Reference::parse(&long_path).is_ok());
    assert!(reason(&format!("{long_path}b")).contains("limit is 255"));
    // Normalization counts: "docker.io/library/" is added to a bare Hub name.
    assert!(reason(&"a".repeat(240)).contains("limit is 255"));
}

#[test]
fn image_ids_are_not_repository_names() {
    let id = DIGEST.trim_start_matches("sha256:");
    assert!(reason(id).contains("image id"));
    assert!(Reference::parse(&format!("user/{id}")).is_ok());
}

#[test]
fn with_domain_digest_and_tag() {
    let reference = parsed("nginx:1");
    let mirrored = reference.with_domain("Mirror.Local:5000");
    assert_eq!(mirrored.to_string(), "mirror.local:5000/library/nginx:1");
    assert_eq!(mirrored.api_host(), "mirror.local:5000");
    let digest = Digest::parse(DIGEST).unwrap();
    let pinned = reference.with_digest(digest.clone());
    assert_eq!(pinned.digest(), Some(&digest));
    assert_eq!(pinned.tag(), Some("1"));
    let retagged = pinned.with_tag("2").unwrap();
    assert_eq!(retagged.to_string(), "docker.io/library/nginx:2");
    assert!(pinned.with_tag("bad tag").is_err());
}

#[test]
fn familiar_names() {
    assert_eq!(parsed("nginx").familiar(), "nginx:latest");
    assert_eq!(parsed("user/app:1").familiar(), "user/app:1");
    assert_eq!(parsed("reg.io/a:1").familiar(), "reg.io/a:1");
}

#[test]
fn from_str_and_equality() {
    let a: Reference = "nginx".parse().unwrap();
    let b: Reference = "docker.io/library/nginx:latest".parse().unwrap();
    assert_eq!(a, b);
}

#[test]
fn normalize_registry_for_login() {
    assert_eq!(normalize_registry("https://index.docker.io/v1/").unwrap(), "docker.io");
    assert_eq!(normalize_registry("index.docker.io").unwrap(), "docker.io");
    assert_eq!(normalize_registry("registry-1.docker.io").unwrap(), "docker.io");
    assert_eq!(normalize_registry("docker.io").unwrap(), "docker.io");
    assert_eq!(normalize_registry("http://127.0.0.1:5000/").unwrap(), "127.0.0.1:5000");
    assert_eq!(normalize_registry("HTTPS://Reg.Example.COM").unwrap(), "reg.example.com");
    assert_eq!(normalize_registry("localhost:5000").unwrap(), "localhost:5000");
    assert_eq!(normalize_registry("reg.io/v2/").unwrap(), "reg.io");
    assert_eq!(normalize_registry("[::1]:5000").unwrap(), "[::1]:5000");
    for bad in ["", "reg.io/ns/app", "user@reg.io", "reg.io:abc", "reg io", "https://"] {
        assert!(
            matches!(normalize_registry(bad), Err(Error::InvalidReference { .. })),
            "{bad:?} must be rejected"
        );
    }
}

#[test]
fn docker_hub_aliases() {
    assert!(is_docker_hub("docker.io"));
    assert!(is_docker_hub("INDEX.docker.io"));
    assert!(is_docker_hub("registry-1.docker.io"));
    assert!(!is_docker_hub("docker.io.evil.test"));
}

#[test]
fn registry_urls_lose_scheme_slashes_and_api_suffix() {
    assert_eq!(crate::strip_registry_url("https://index.docker.io/v1/"), "index.docker.io");
    assert_eq!(crate::strip_registry_url("HTTP://reg.io:5000/v2"), "reg.io:5000");
    assert_eq!(crate::strip_registry_url("reg.io/team/app/"), "reg.io/team/app");
    assert_eq!(crate::strip_registry_url("reg.io/v1x"), "reg.io/v1x");
}
