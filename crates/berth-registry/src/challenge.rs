//! `WWW-Authenticate` parsing (RFC 7235 section 4.1, grammar in section 2.1 and RFC 7230 section 3.2.6).
//!
//! A registry tells us how to authenticate only through this header, and real servers put several
//! challenges in one header, quote values containing commas, and escape quotes inside them. A naive
//! split on ',' sends the wrong realm or service to the token server, so this is a small real parser.

use std::collections::BTreeMap;

/// One authentication challenge: the scheme (lowercased: "basic", "bearer") and its parameters with
/// lowercased names. A token68 form (`Negotiate abc==`) carries no parameters and is kept with none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn is_token68_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~+/".contains(&byte)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.position += 1;
        }
    }

    fn skip_whitespace_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.position += 1;
        }
    }

    fn token(&mut self) -> String {
        let start = self.position;
        while self.peek().is_some_and(is_tchar) {
            self.position += 1;
        }
        String::from_utf8_lossy(&self.bytes[start..self.position]).into_owned()
    }

    /// RFC 7230 3.2.6 quoted-string: `"` *( qdtext / quoted-pair ) `"`; an unterminated string ends at the
    /// end of the header rather than failing the whole parse.
    fn quoted_string(&mut self) -> String {
        let mut value = Vec::new();
        self.position += 1; // the opening quote
        while let Some(byte) = self.peek() {
            self.position += 1;
            match byte {
                b'"' => break,
                b'\\' => {
                    if let Some(escaped) = self.peek() {
                        value.push(escaped);
                        self.position += 1;
                    }
                }
                other => value.push(other),
            }
        }
        String::from_utf8_lossy(&value).into_owned()
    }

    /// True when the text at the cursor is `token68` (followed by optional '=' padding, then the end or a
    /// comma), which is not an auth-param list.
    fn at_token68(&self) -> bool {
        let mut position = self.position;
        while self.bytes.get(position).copied().is_some_and(is_token68_char) {
            position += 1;
        }
        if position == self.position {
            return false;
        }
        while self.bytes.get(position) == Some(&b'=') {
            position += 1;
        }
        while matches!(self.bytes.get(position), Some(b' ' | b'\t')) {
            position += 1;
        }
        matches!(self.bytes.get(position), None | Some(b','))
    }

    /// True when a `token BWS "="` (an auth-param name) starts at the cursor.
    fn at_param(&self) -> bool {
        let mut position = self.position;
        while self.bytes.get(position).copied().is_some_and(is_tchar) {
            position += 1;
        }
        if position == self.position {
            return false;
        }
        while matches!(self.bytes.get(position), Some(b' ' | b'\t')) {
            position += 1;
        }
        self.bytes.get(position) == Some(&b'=')
    }
}

/// Parses every challenge in one `WWW-Authenticate` header value. Malformed parts are skipped, never
/// guessed at; the result may be empty.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut cursor = Cursor { bytes: header.as_bytes(), position: 0 };
    let mut challenges = Vec::new();
    // Bounded by the header length: every iteration consumes at least one byte or stops.
    loop {
        cursor.skip_whitespace_and_commas();
        let Some(_) = cursor.peek() else { break };
        let scheme = cursor.token();
        if scheme.is_empty() {
            // Not a token: skip this byte and look for the next challenge.
            cursor.position += 1;
            continue;
        }
        let mut challenge = Challenge { scheme: scheme.to_ascii_lowercase(), params: BTreeMap::new() };
        cursor.skip_whitespace();
        if cursor.at_token68() && !cursor.at_param_with_value() {
            while cursor.peek().is_some_and(|byte| is_token68_char(byte) || byte == b'=') {
                cursor.position += 1;
            }
        } else {
            // auth-params until the next challenge (a token not followed by '=') or the end.
            loop {
                cursor.skip_whitespace_and_commas();
                if !cursor.at_param() {
                    break;
                }
                let name = cursor.token().to_ascii_lowercase();
                cursor.skip_whitespace();
                cursor.position += 1; // '='
                cursor.skip_whitespace();
                let value = if cursor.peek() == Some(b'"') { cursor.quoted_string() } else { cursor.token() };
                challenge.params.entry(name).or_insert(value);
            }
        }
        challenges.push(challenge);
    }
    challenges
}

impl Cursor<'_> {
    /// `realm=x` is both valid token68 ("realm=" padding is not, but "a=b" scans as token68 "a" + "=" +
    /// junk); a param needs a value after '=', token68 only has '=' padding up to a comma or the end.
    fn at_param_with_value(&self) -> bool {
        if !self.at_param() {
            return false;
        }
        let mut position = self.position;
        while self.bytes.get(position).copied().is_some_and(is_tchar) {
            position += 1;
        }
        while matches!(self.bytes.get(position), Some(b' ' | b'\t' | b'=')) {
            position += 1;
        }
        !matches!(self.bytes.get(position), None | Some(b','))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(challenge: &Challenge) -> Vec<(&str, &str)> {
        challenge.params.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect()
    }

    #[test]
    fn docker_hub_bearer() {
        let challenges = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(challenges.len(), 1);
        assert_eq!(challenges[0].scheme, "bearer");
        assert_eq!(challenges[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(challenges[0].param("service"), Some("registry.docker.io"));
        assert_eq!(challenges[0].param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn basic_case_insensitive_scheme_and_names() {
        let challenges = parse_challenges(r#"BASIC Realm="berth-testbed-basic""#);
        assert_eq!(challenges.len(), 1);
        assert_eq!(challenges[0].scheme, "basic");
        assert_eq!(params(&challenges[0]), vec![("realm", "berth-testbed-basic")]);
    }

    #[test]
    fn several_challenges_and_commas_inside_quotes() {
        let challenges = parse_challenges(
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple, really", Bearer realm="https://a/t",scope="repository:a:pull,push""#,
        );
        let schemes: Vec<&str> = challenges.iter().map(|challenge| challenge.scheme.as_str()).collect();
        assert_eq!(schemes, vec!["newauth", "basic", "bearer"]);
        assert_eq!(
            params(&challenges[0]),
            vec![("realm", "apps"), ("title", "Login to \"apps\""), ("type", "1")]
        );
        assert_eq!(challenges[1].param("realm"), Some("simple, really"));
        assert_eq!(challenges[2].param("scope"), Some("repository:a:pull,push"));
    }

    #[test]
    fn token68_is_ignored_but_the_next_challenge_is_kept() {
        let challenges = parse_challenges(
            r#"Negotiate YII0ZGF0YQ==, Bearer realm="https://r/t", error="insufficient_scope""#,
        );
        assert_eq!(challenges.len(), 2);
        assert_eq!(challenges[0].scheme, "negotiate");
        assert!(challenges[0].params.is_empty());
        assert_eq!(challenges[1].param("error"), Some("insufficient_scope"));
    }

    #[test]
    fn whitespace_around_equals_and_unterminated_quote() {
        let challenges =
            parse_challenges("Bearer realm = \"https://r/t\" , service=reg , scope=\"unterminated");
        assert_eq!(challenges.len(), 1);
        assert_eq!(challenges[0].param("realm"), Some("https://r/t"));
        assert_eq!(challenges[0].param("service"), Some("reg"));
        assert_eq!(challenges[0].param("scope"), Some("unterminated"));
    }

    #[test]
    fn scheme_alone_and_empty_header() {
        assert!(parse_challenges("").is_empty());
        assert!(parse_challenges(" , ").is_empty());
        let challenges = parse_challenges("Basic");
        assert_eq!(challenges.len(), 1);
        assert!(challenges[0].params.is_empty());
    }

    #[test]
    fn duplicate_parameter_keeps_the_first() {
        let challenges = parse_challenges(r#"Bearer realm="https://first/t", realm="https://second/t""#);
        assert_eq!(challenges[0].param("realm"), Some("https://first/t"));
    }
}
