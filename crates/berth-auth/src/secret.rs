//! Secret-carrying types whose formatting cannot leak: `Debug` and `Display` print `<redacted>`, and
//! neither type implements `Serialize`, so a secret reaches the outside world only through an explicit
//! [`Secret::expose`] (logged tokens were CVE-2021-45449).

use std::fmt;

const REDACTED: &str = "<redacted>";

/// A password or token.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself, for the one place that must send or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(REDACTED)
    }
}

/// A credential for one registry, in the three shapes Docker's config.json can hold.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Username and password, sent as HTTP Basic or exchanged for a bearer token.
    Basic { username: String, password: Secret },
    /// An OAuth2 refresh token (config.json "identitytoken"), exchanged at the token endpoint.
    IdentityToken { username: String, token: Secret },
    /// A bearer token sent to the registry as is (config.json "registrytoken").
    RegistryToken(Secret),
}

impl Credential {
    /// The username, if this kind of credential has one.
    pub fn username(&self) -> Option<&str> {
        match self {
            Credential::Basic { username, .. } | Credential::IdentityToken { username, .. } => Some(username),
            Credential::RegistryToken(_) => None,
        }
    }

    /// The secret part.
    pub fn secret(&self) -> &Secret {
        match self {
            Credential::Basic { password, .. } => password,
            Credential::IdentityToken { token, .. } => token,
            Credential::RegistryToken(token) => token,
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, password } => formatter
                .debug_struct("Basic")
                .field("username", username)
                .field("password", password)
                .finish(),
            Credential::IdentityToken { username, token } => formatter
                .debug_struct("IdentityToken")
                .field("username", username)
                .field("token", token)
                .finish(),
            Credential::RegistryToken(token) => formatter.debug_tuple("RegistryToken").field(token).finish(),
        }
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(formatter, "password for user {username:?}"),
            Credential::IdentityToken { username, .. } if username.is_empty() => {
                formatter.write_str("identity token")
            }
            Credential::IdentityToken { username, .. } => {
                write!(formatter, "identity token for user {username:?}")
            }
            Credential::RegistryToken(_) => formatter.write_str("registry token"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "hunter2-very-secret";

    #[test]
    fn secret_never_formats() {
        let secret = Secret::new(SECRET);
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{secret:#?}"), "<redacted>");
        assert_eq!(secret.expose(), SECRET);
        assert!(!secret.is_empty());
    }

    #[test]
    fn credentials_show_usernames_but_never_secrets() {
        let credentials = [
            Credential::Basic { username: "alice".into(), password: Secret::new(SECRET) },
            Credential::IdentityToken { username: "bob".into(), token: Secret::new(SECRET) },
            Credential::IdentityToken { username: String::new(), token: Secret::new(SECRET) },
            Credential::RegistryToken(Secret::new(SECRET)),
        ];
        for credential in &credentials {
            for text in [format!("{credential}"), format!("{credential:?}"), format!("{credential:#?}")] {
                assert!(!text.contains(SECRET), "{text}");
            }
            assert_eq!(credential.secret().expose(), SECRET);
        }
        assert!(format!("{:?}", credentials[0]).contains("alice"));
        assert_eq!(credentials[0].to_string(), "password for user \"alice\"");
        assert_eq!(credentials[1].username(), Some("bob"));
        assert_eq!(credentials[2].to_string(), "identity token");
        assert_eq!(credentials[3].username(), None);
        assert_eq!(format!("{:?}", credentials[3]), "RegistryToken(<redacted>)");
    }
}
