//! `berth login` / `berth logout`: a login is proved against the registry before it is saved, so a typo
//! never lands on disk, and it is saved where the user's config says (helper or berth's auth file).

use berth_auth::{Credential, Found, LoginStore, Saved, Source};

use crate::{Engine, Error};

impl Engine {
    /// Verifies `credential` against `registry` (ping, then basic or token), then stores it.
    pub async fn login(&self, registry: &str, credential: Credential) -> Result<Saved, Error> {
        let domain = berth_reference::normalize_registry(registry)?;
        let found = Found { credential: credential.clone(), source: Source::Flag };
        let client = berth_registry::Registry::new(
            &domain,
            &self.host_config(&domain),
            &self.client_options(),
            Some(found),
        )
        .map_err(|source| Error::Login { registry: domain.clone(), source })?;
        client.check_login().await.map_err(|source| Error::Login { registry: domain.clone(), source })?;
        LoginStore::new(self.paths.auth_file.clone())
            .save(&domain, &credential)
            .map_err(|source| Error::Credentials { registry: domain, source })
    }

    /// Removes the stored login for `registry`; `false` when there was none.
    pub fn logout(&self, registry: &str) -> Result<bool, Error> {
        let domain = berth_reference::normalize_registry(registry)?;
        LoginStore::new(self.paths.auth_file.clone())
            .erase(&domain)
            .map_err(|source| Error::Credentials { registry: domain, source })
    }
}
