//! Image references, following the grammar of distribution's `reference` package
//! (github.com/distribution/reference, `reference.go` and `normalize.go`):
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain "/"] path-component ["/" path-component]*
//! domain           := host [":" port]          host := domain-name | "[" IPv6address "]"
//! domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! path-component   := [a-z0-9]+ (separator [a-z0-9]+)*   separator := [_.] | "__" | "-"+
//! tag              := [\w][\w.-]{0,127}
//! ```
//!
//! plus Docker's normalization: no domain means Docker Hub, a single path component on Docker Hub gets
//! `library/`, `index.docker.io` is an old name of `docker.io`, and no tag or digest means `:latest`.
//! The parser is strict and says which part is wrong, because a wrong name otherwise shows up much later as
//! a confusing registry error.

use std::fmt;
use std::str::FromStr;

use crate::{DOCKER_HUB, DOCKER_HUB_API, Digest, Error};

/// Longest accepted name (domain and path), as in distribution's `NameTotalLengthMax`.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;
const DEFAULT_TAG: &str = "latest";
/// Docker's historical name for the Hub domain, still found in references and config files.
const LEGACY_DOCKER_HUB: &str = "index.docker.io";

/// A parsed and normalized image reference.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Reference {
    domain: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses `nginx`, `user/app:1.0`, `host:5000/a/b:tag`, `name@sha256:…` or `name:tag@sha256:…`.
    pub fn parse(input: &str) -> Result<Reference, Error> {
        if input.is_empty() {
            return Err(Error::reference(input, "reference is empty"));
        }
        if let Some(bad) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::reference(input, format!("reference contains invalid character {bad:?}")));
        }
        let (name_and_tag, digest) = match input.split_once('@') {
            Some((name_and_tag, digest_text)) => {
                let digest =
                    Digest::parse(digest_text).map_err(|error| Error::reference(input, error.to_string()))?;
                (name_and_tag, Some(digest))
            }
            None => (input, None),
        };
        let (name, tag) = split_tag(name_and_tag);
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|reason| Error::reference(input, reason))?;
        }
        let (domain, path) = split_domain(name);
        let domain = match domain {
            Some(domain) => normalize_domain(domain).map_err(|reason| Error::reference(input, reason))?,
            None => DOCKER_HUB.to_owned(),
        };
        validate_path(path).map_err(|reason| Error::reference(input, reason))?;
        if domain == DOCKER_HUB && !path.contains('/') && is_image_id_like(path) {
            return Err(Error::reference(
                input,
                "a 64-character hex string is an image id, not a repository name",
            ));
        }
        let repository = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        let name_length = domain.len() + 1 + repository.len();
        if name_length > NAME_TOTAL_LENGTH_MAX {
            return Err(Error::reference(
                input,
                format!(
                    "repository name is {name_length} characters long, the limit is {NAME_TOTAL_LENGTH_MAX}"
                ),
            ));
        }
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_owned()),
        };
        Ok(Reference { domain, repository, tag, digest })
    }

    /// The registry domain: "docker.io", "127.0.0.1:5000".
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry: "library/nginx".
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag; `None` only for a reference given by digest alone.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// "docker.io/library/nginx".
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.repository)
    }

    /// What goes after `/v2/<repository>/manifests/`: the digest when there is one (it pins the content even
    /// when a tag is also given), else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            // Parsing guarantees a tag or a digest; `latest` keeps this total without a panic path.
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    /// The same repository, tag and digest on another registry (a mirror).
    pub fn with_domain(&self, domain: &str) -> Reference {
        Reference { domain: domain.to_ascii_lowercase(), ..self.clone() }
    }

    /// The same name pinned to `digest` (the tag is kept for display).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference { digest: Some(digest), ..self.clone() }
    }

    /// The same name with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, Error> {
        validate_tag(tag).map_err(|reason| Error::reference(tag, reason))?;
        Ok(Reference { tag: Some(tag.to_owned()), digest: None, ..self.clone() })
    }

    /// The host to send HTTP requests to: Docker Hub's registry API lives on another host than its name.
    pub fn api_host(&self) -> &str {
        if self.domain == DOCKER_HUB { DOCKER_HUB_API } else { &self.domain }
    }

    /// The short form Docker prints: "nginx:latest", "user/app:1", other registries in full.
    pub fn familiar(&self) -> String {
        let name = if self.domain == DOCKER_HUB {
            self.repository.strip_prefix("library/").unwrap_or(&self.repository).to_owned()
        } else {
            self.name()
        };
        let mut text = name;
        if let Some(tag) = &self.tag {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            text.push('@');
            text.push_str(digest.as_str());
        }
        text
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(input: &str) -> Result<Reference, Error> {
        Reference::parse(input)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.domain, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(formatter, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(formatter, "@{digest}")?;
        }
        Ok(())
    }
}

/// Normalizes what a user gives `berth login`/`logout`: strips `http(s)://`, a trailing `/` and Docker's
/// `/v1/` suffix, lowercases, maps Docker Hub's aliases to "docker.io", and insists on `host[:port]` so
/// that a typo cannot send credentials somewhere unexpected.
pub fn normalize_registry(input: &str) -> Result<String, Error> {
    if input.is_empty() {
        return Err(Error::reference(input, "registry name is empty"));
    }
    if let Some(bad) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::reference(input, format!("registry name contains invalid character {bad:?}")));
    }
    let rest = strip_registry_url(input);
    if rest.contains('@') {
        return Err(Error::reference(input, "a registry name must not contain user information ('@')"));
    }
    if rest.contains('/') {
        return Err(Error::reference(input, "expected a registry host[:port], not an image or path"));
    }
    normalize_login_domain(rest).map_err(|reason| Error::reference(input, reason))
}

/// What is left of a registry written as a URL, as Docker's config keys and `login` arguments often are:
/// no `http(s)://` scheme, no trailing `/`, no `/v1` or `/v2` API suffix. Nothing is validated here.
pub fn strip_registry_url(input: &str) -> &str {
    let mut rest = input.trim();
    for scheme in ["https://", "http://"] {
        if rest.len() >= scheme.len() && rest[..scheme.len()].eq_ignore_ascii_case(scheme) {
            rest = &rest[scheme.len()..];
            break;
        }
    }
    let mut rest = rest.trim_end_matches('/');
    for suffix in ["/v1", "/v2"] {
        if let Some(stripped) = rest.strip_suffix(suffix) {
            rest = stripped.trim_end_matches('/');
        }
    }
    rest
}

/// True for the names Docker Hub goes by; all of them mean [`DOCKER_HUB`].
pub fn is_docker_hub(domain: &str) -> bool {
    [DOCKER_HUB, LEGACY_DOCKER_HUB, DOCKER_HUB_API].iter().any(|alias| alias.eq_ignore_ascii_case(domain))
}

/// Splits "name:tag": the last ':' starts a tag only if no '/' follows it (else it is a port).
fn split_tag(name_and_tag: &str) -> (&str, Option<&str>) {
    match name_and_tag.rfind(':') {
        Some(colon) if !name_and_tag[colon..].contains('/') => {
            (&name_and_tag[..colon], Some(&name_and_tag[colon + 1..]))
        }
        _ => (name_and_tag, None),
    }
}

/// Docker's rule: the first component is a registry host iff it contains '.' or ':' or is "localhost"
/// (an IPv6 literal in brackets contains ':').
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (Some(first), rest),
        _ => (None, name),
    }
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let Some(first) = tag.chars().next() else {
        return Err("tag is empty".to_owned());
    };
    if let Some(bad) = tag.chars().find(|&c| !(is_word(c) || c == '.' || c == '-')) {
        return Err(format!("tag contains invalid character {bad:?}"));
    }
    if !is_word(first) {
        return Err(format!("tag must start with a letter, digit or '_', not {first:?}"));
    }
    if tag.len() > TAG_LENGTH_MAX {
        return Err(format!("tag is {} characters long, the limit is {TAG_LENGTH_MAX}", tag.len()));
    }
    Ok(())
}

/// Validates `host[:port]` and returns it lowercased with Docker Hub aliases mapped to "docker.io".
/// Host names are case-insensitive, so lowercasing keeps credential keys and stored names consistent.
fn normalize_domain(domain: &str) -> Result<String, String> {
    let (host, port) = if let Some(after_bracket) = domain.strip_prefix('[') {
        let Some((address, rest)) = after_bracket.split_once(']') else {
            return Err(format!("registry host {domain:?} has '[' without ']'"));
        };
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("registry host {domain:?} is not a valid IPv6 address in brackets"));
        }
        match rest {
            "" => (&domain[..address.len() + 2], None),
            _ => match rest.strip_prefix(':') {
                Some(port) => (&domain[..address.len() + 2], Some(port)),
                None => return Err(format!("unexpected {rest:?} after the IPv6 address in {domain:?}")),
            },
        }
    } else {
        let (host, port) = match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        };
        validate_host_name(host)?;
        (host, port)
    };
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(number) if number > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => return Err(format!("registry port {port:?} is not a number from 1 to 65535")),
        }
    }
    let normalized = domain.to_ascii_lowercase();
    if port.is_none() && is_docker_hub(host) && !host.eq_ignore_ascii_case(DOCKER_HUB_API) {
        return Ok(DOCKER_HUB.to_owned());
    }
    Ok(normalized)
}

/// Normalizes a registry host the way `berth login` does, but also maps registry-1.docker.io (an API host
/// that users sometimes paste) to docker.io.
fn normalize_login_domain(domain: &str) -> Result<String, String> {
    let normalized = normalize_domain(domain)?;
    if normalized == DOCKER_HUB_API { Ok(DOCKER_HUB.to_owned()) } else { Ok(normalized) }
}

fn validate_host_name(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("registry host is empty".to_owned());
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err(format!("registry host {host:?} has an empty label"));
        }
        if let Some(bad) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
            return Err(format!("registry host {host:?} contains invalid character {bad:?}"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("registry host label {label:?} must not start or end with '-'"));
        }
    }
    Ok(())
}

fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("repository name is empty".to_owned());
    }
    for component in path.split('/') {
        validate_path_component(component)?;
    }
    Ok(())
}

fn validate_path_component(component: &str) -> Result<(), String> {
    if component.is_empty() {
        return Err(
            "repository name has an empty path component (\"//\" or a leading or trailing '/')".to_owned()
        );
    }
    if component.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("repository name must be lowercase: {component:?}"));
    }
    let is_alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if let Some(bad) = component.chars().find(|&c| !(is_alphanumeric(c) || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("repository name contains invalid character {bad:?} in {component:?}"));
    }
    let starts_ok = component.starts_with(is_alphanumeric);
    let ends_ok = component.ends_with(is_alphanumeric);
    if !starts_ok || !ends_ok {
        return Err(format!(
            "repository path component {component:?} must start and end with a lowercase letter or digit"
        ));
    }
    // Every run of separator characters must be one of ".", "_", "__" or any number of '-'.
    for separator in component.split(is_alphanumeric).filter(|run| !run.is_empty()) {
        let valid = matches!(separator, "." | "_" | "__") || separator.chars().all(|c| c == '-');
        if !valid {
            return Err(format!(
                "repository path component {component:?} has an invalid separator {separator:?}"
            ));
        }
    }
    Ok(())
}

fn is_image_id_like(path: &str) -> bool {
    path.len() == 64 && path.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
#[path = "reference_tests.rs"]
mod tests;
