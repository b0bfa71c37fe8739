//! Signup, login, sessions, the current user and personal API tokens.

use chrono::Duration;
use satusky_types::ErrorCode;
use satusky_types::identity::{ApiToken, Me, Revoked, SessionCreated, TokenCreated, User};
use satusky_types::page::Page;

use super::{Ctx, Services};
use crate::auth::{self, Credential, Principal};
use crate::pagination::{PageRequest, paginate};
use crate::store::{
    LoginFailureKind, SessionRecord, StoreError, TokenRecord, UserRecord, conflict,
};
use crate::{Error, Result, ids, validate};

pub(crate) fn user_dto(u: &UserRecord) -> User {
    User {
        id: u.id.clone(),
        email: u.email.clone(),
        name: u.name.clone(),
        created_at: u.created_at,
    }
}

/// The outcome of recording a token's last use. A token deleted between its
/// lookup and the touch (the store answers NotFound) is no failure: the
/// request was authenticated by the token as it was read, and there is no
/// use left to record.
fn touched(result: std::result::Result<(), StoreError>) -> Result<()> {
    match result {
        Ok(()) | Err(StoreError::NotFound) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn principal(user: &UserRecord, credential: Credential) -> Principal {
    Principal {
        user_id: user.id.clone(),
        email: user.email.clone(),
        name: user.name.clone(),
        credential,
    }
}

/// 429 `rate_limited` with the wait, in whole seconds (at least one).
fn rate_limited(retry: chrono::Duration) -> Error {
    let secs = u64::try_from(retry.num_seconds()).unwrap_or(0).max(1);
    let mut e = Error::new(
        ErrorCode::RateLimited,
        format!("too many failed logins; try again in {secs} seconds"),
    );
    e.retry_after_secs = Some(secs);
    e
}

impl Services {
    /// Creates an account. Refused when signup is disabled by configuration.
    pub async fn signup(&self, email: &str, password: &str, name: Option<&str>) -> Result<User> {
        if !self.inner.config.signup_enabled {
            return Err(Error::new(
                ErrorCode::SignupDisabled,
                "signup is disabled on this installation; ask an administrator for an account",
            ));
        }
        self.create_user(email, password, name).await
    }

    /// Creates an account regardless of the signup setting (for bootstrap).
    pub async fn create_user(
        &self,
        email: &str,
        password: &str,
        name: Option<&str>,
    ) -> Result<User> {
        let email = validate::email(email)?;
        validate::password("password", password)?;
        let name = match name {
            Some(n) => validate::display_name("name", n)?,
            None => email.split('@').next().unwrap_or_default().to_owned(),
        };
        let user = UserRecord {
            id: ids::new_id(),
            email,
            name,
            password_hash: auth::hash_password(password)?,
            created_at: self.inner.clock.now(),
        };
        match self.inner.store.create_user(&user).await {
            Ok(()) => Ok(user_dto(&user)),
            Err(StoreError::Conflict(c)) if c == conflict::USER_EMAIL => Err(Error::new(
                ErrorCode::EmailTaken,
                format!("an account with email {} already exists", user.email),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Exchanges email and password for a session. Failures are limited per
    /// account and per client address.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        address: &str,
    ) -> Result<SessionCreated> {
        let now = self.inner.clock.now();
        let email = email.trim().to_lowercase();
        let store = &*self.inner.store;
        let (account_limit, address_limit) = tokio::try_join!(
            self.inner
                .account_failures
                .check(store, LoginFailureKind::Account, &email, now),
            self.inner
                .address_failures
                .check(store, LoginFailureKind::Address, address, now),
        )?;
        if let Some(retry) = account_limit.into_iter().chain(address_limit).max() {
            return Err(rate_limited(retry));
        }
        // Counted as a failure before the password is checked, so that
        // concurrent attempts (on any replica) cannot all pass the check
        // above; taken back if it succeeds or turns out to be one too many.
        let attempt = ids::new_id();
        let (account_over, address_over) = tokio::try_join!(
            self.inner.account_failures.reserve(
                store,
                LoginFailureKind::Account,
                &email,
                &attempt,
                now
            ),
            self.inner.address_failures.reserve(
                store,
                LoginFailureKind::Address,
                address,
                &attempt,
                now
            ),
        )?;
        let release = || async {
            tokio::try_join!(
                self.inner.account_failures.release(
                    store,
                    LoginFailureKind::Account,
                    &email,
                    &attempt
                ),
                self.inner.address_failures.release(
                    store,
                    LoginFailureKind::Address,
                    address,
                    &attempt
                ),
            )
        };
        if let Some(retry) = account_over.into_iter().chain(address_over).max() {
            release().await?;
            return Err(rate_limited(retry));
        }
        let user = store.get_user_by_email(&email).await?;
        // An unknown account costs the same password check as a known one.
        let verified = if let Some(u) = &user {
            auth::verify_password(password, &u.password_hash)
        } else {
            auth::dummy_verify(password);
            false
        };
        let Some(user) = user.filter(|_| verified) else {
            // The attempt stays recorded: it is the failure.
            tracing::info!(address, "failed login");
            return Err(Error::new(
                ErrorCode::InvalidCredentials,
                "email or password is wrong",
            ));
        };
        release().await?;
        self.inner
            .account_failures
            .reset(store, LoginFailureKind::Account, &email)
            .await?;
        let secret = auth::new_secret(auth::SESSION_PREFIX);
        let session = SessionRecord {
            id: ids::new_id(),
            user_id: user.id.clone(),
            token_hash: auth::secret_hash(&secret),
            created_at: now,
            expires_at: now + self.inner.config.session_ttl,
        };
        self.inner.store.create_session(&session).await?;
        tracing::info!(user.id = %user.id, "login");
        Ok(SessionCreated {
            token: secret,
            expires_at: session.expires_at,
            user: user_dto(&user),
        })
    }

    /// Resolves a bearer secret to a principal.
    pub async fn authenticate(&self, secret: &str) -> Result<Principal> {
        let now = self.inner.clock.now();
        let unauthenticated = || {
            Error::new(
                ErrorCode::Unauthenticated,
                "the token is not valid; log in again",
            )
        };
        let hash = auth::secret_hash(secret);
        if secret.starts_with(auth::SESSION_PREFIX) {
            let (session, user) = self
                .inner
                .store
                .get_session_by_hash(&hash)
                .await?
                .ok_or_else(unauthenticated)?;
            if session.expires_at <= now {
                return Err(Error::new(
                    ErrorCode::TokenExpired,
                    "the session has expired; log in again",
                ));
            }
            Ok(principal(
                &user,
                Credential::Session {
                    id: session.id,
                    expires_at: session.expires_at,
                },
            ))
        } else if secret.starts_with(auth::TOKEN_PREFIX) {
            let (token, user) = self
                .inner
                .store
                .get_token_by_hash(&hash)
                .await?
                .ok_or_else(unauthenticated)?;
            if !token.enabled {
                return Err(Error::new(
                    ErrorCode::TokenDisabled,
                    format!("the token `{}` is disabled", token.name),
                ));
            }
            if token.expires_at.is_some_and(|t| t <= now) {
                return Err(Error::new(
                    ErrorCode::TokenExpired,
                    format!("the token `{}` has expired", token.name),
                ));
            }
            let stale = token
                .last_used_at
                .is_none_or(|t| now - t >= self.inner.config.token_touch_interval);
            if stale {
                touched(self.inner.store.touch_token(&token.id, now).await)?;
            }
            Ok(principal(
                &user,
                Credential::Token {
                    id: token.id,
                    org_id: token.org_id,
                    expires_at: token.expires_at,
                },
            ))
        } else {
            Err(unauthenticated())
        }
    }

    /// Deletes every session expired by now; returns how many. Idempotent,
    /// so every replica may sweep without coordination.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        let now = self.inner.clock.now();
        Ok(self.inner.store.delete_expired_sessions(now).await?)
    }

    /// Deletes every failed login older than the login window (no longer
    /// counted by any limit); returns how many. Idempotent, like the
    /// session purge it runs beside.
    pub async fn prune_login_failures(&self) -> Result<u64> {
        let before = self.inner.clock.now() - self.inner.config.login_window;
        Ok(self.inner.store.prune_login_failures(before).await?)
    }

    /// Purges expired sessions and prunes old failed logins every `every`
    /// (the first sweep at once) until `stop` completes. A failed sweep is
    /// logged and retried at the next tick.
    pub async fn run_session_purge(
        &self,
        every: std::time::Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = tick.tick() => self.sweep().await,
            }
        }
    }

    /// One tick of [`Services::run_session_purge`]: each purge is logged on
    /// its own, and one failing does not skip the other.
    async fn sweep(&self) {
        match self.purge_expired_sessions().await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired sessions purged"),
            Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
        }
        match self.prune_login_failures().await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "old failed logins pruned"),
            Err(e) => tracing::warn!(error = %e, "pruning old failed logins failed"),
        }
    }

    /// Ends the calling session.
    pub async fn logout(&self, ctx: &Ctx) -> Result<()> {
        match &ctx.principal.credential {
            Credential::Session { id, .. } => match self.inner.store.delete_session(id).await {
                Ok(()) | Err(StoreError::NotFound) => Ok(()),
                Err(e) => Err(e.into()),
            },
            Credential::Token { .. } => Err(Error::validation(
                "logout ends a session; a personal token is revoked with DELETE /v1/tokens/{id}",
            )),
        }
    }

    /// Ends every session of the caller, this one included.
    pub async fn revoke_all_sessions(&self, ctx: &Ctx) -> Result<Revoked> {
        let revoked = self
            .inner
            .store
            .delete_user_sessions(&ctx.principal.user_id, None)
            .await?;
        Ok(Revoked { revoked })
    }

    pub async fn me(&self, ctx: &Ctx) -> Result<Me> {
        let user = self.current_user(ctx).await?;
        let (auth, token_org, expires_at) = match &ctx.principal.credential {
            Credential::Session { expires_at, .. } => ("session", None, Some(*expires_at)),
            Credential::Token {
                org_id, expires_at, ..
            } => {
                let slug = match org_id {
                    Some(id) => self.inner.store.get_org(id).await?.map(|o| o.slug),
                    None => None,
                };
                ("token", slug, *expires_at)
            }
        };
        Ok(Me {
            user: user_dto(&user),
            auth: auth.to_owned(),
            token_org,
            expires_at,
        })
    }

    async fn current_user(&self, ctx: &Ctx) -> Result<UserRecord> {
        self.inner
            .store
            .get_user(&ctx.principal.user_id)
            .await?
            .ok_or_else(|| Error::new(ErrorCode::Unauthenticated, "the account no longer exists"))
    }

    pub async fn update_me(&self, ctx: &Ctx, name: &str) -> Result<User> {
        let name = validate::display_name("name", name)?;
        self.inner
            .store
            .update_user_name(&ctx.principal.user_id, &name)
            .await?;
        Ok(user_dto(&self.current_user(ctx).await?))
    }

    /// Changes the password and ends every other session of the user.
    pub async fn change_password(&self, ctx: &Ctx, current: &str, new: &str) -> Result<()> {
        let user = self.current_user(ctx).await?;
        if !auth::verify_password(current, &user.password_hash) {
            return Err(Error::new(
                ErrorCode::InvalidCurrentPassword,
                "the current password is wrong",
            ));
        }
        validate::password("new_password", new)?;
        self.inner
            .store
            .update_user_password(&user.id, &auth::hash_password(new)?)
            .await?;
        let keep = match &ctx.principal.credential {
            Credential::Session { id, .. } => Some(id.as_str()),
            Credential::Token { .. } => None,
        };
        self.inner
            .store
            .delete_user_sessions(&user.id, keep)
            .await?;
        Ok(())
    }

    // ---- personal API tokens

    async fn token_dto(&self, t: &TokenRecord) -> Result<ApiToken> {
        let org = match &t.org_id {
            Some(id) => self.inner.store.get_org(id).await?.map(|o| o.slug),
            None => None,
        };
        Ok(ApiToken {
            id: t.id.clone(),
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            org,
            enabled: t.enabled,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            created_at: t.created_at,
        })
    }

    pub async fn create_token(
        &self,
        ctx: &Ctx,
        name: &str,
        org: Option<&str>,
        expires_in_days: Option<u32>,
    ) -> Result<TokenCreated> {
        validate::token_name(name)?;
        let org_id = match org {
            Some(slug) => Some(self.visible_org(ctx, slug).await?.0.id),
            None => None,
        };
        if let Some(scope) = ctx.principal.token_org()
            && org_id.as_deref() != Some(scope)
        {
            return Err(Error::forbidden(
                "a token limited to one organization can only create tokens for that organization",
            ));
        }
        if let Some(d) = expires_in_days
            && !(1..=3650).contains(&d)
        {
            return Err(Error::validation(
                "expires_in_days must be between 1 and 3650",
            ));
        }
        let now = self.inner.clock.now();
        let secret = auth::new_secret(auth::TOKEN_PREFIX);
        let record = TokenRecord {
            id: ids::new_id(),
            user_id: ctx.principal.user_id.clone(),
            name: name.to_owned(),
            prefix: secret.chars().take(auth::TOKEN_PREFIX.len() + 6).collect(),
            token_hash: auth::secret_hash(&secret),
            org_id,
            enabled: true,
            expires_at: expires_in_days.map(|d| now + Duration::days(i64::from(d))),
            last_used_at: None,
            created_at: now,
        };
        match self.inner.store.create_token(&record).await {
            Ok(()) => {}
            Err(StoreError::Conflict(c)) if c == conflict::TOKEN_NAME => {
                return Err(Error::new(
                    ErrorCode::TokenNameTaken,
                    format!("you already have a token named `{name}`"),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(org_id) = &record.org_id
            && let Some(org) = self.inner.store.get_org(org_id).await?
        {
            self.audit(
                ctx,
                &org,
                "token.create",
                &format!("token:{name}"),
                satusky_types::orgs::Outcome::Success,
            )
            .await;
        }
        Ok(TokenCreated {
            token: self.token_dto(&record).await?,
            secret,
        })
    }

    pub async fn list_tokens(&self, ctx: &Ctx, page: &PageRequest) -> Result<Page<ApiToken>> {
        let rows = self
            .inner
            .store
            .list_tokens(&ctx.principal.user_id, page)
            .await?;
        let page = paginate(rows, page, |t| t.id.clone());
        let mut items = Vec::with_capacity(page.items.len());
        for t in &page.items {
            items.push(self.token_dto(t).await?);
        }
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }

    async fn find_token(&self, ctx: &Ctx, id_or_name: &str) -> Result<TokenRecord> {
        let user = &ctx.principal.user_id;
        let found = if ids::is_id(id_or_name) {
            self.inner.store.get_token(user, id_or_name).await?
        } else {
            self.inner.store.get_token_by_name(user, id_or_name).await?
        };
        found
            .ok_or_else(|| Error::new(ErrorCode::TokenNotFound, format!("no token `{id_or_name}`")))
    }

    pub async fn get_token(&self, ctx: &Ctx, id_or_name: &str) -> Result<ApiToken> {
        let t = self.find_token(ctx, id_or_name).await?;
        self.token_dto(&t).await
    }

    pub async fn set_token_enabled(
        &self,
        ctx: &Ctx,
        id_or_name: &str,
        enabled: bool,
    ) -> Result<ApiToken> {
        let t = self.find_token(ctx, id_or_name).await?;
        self.inner
            .store
            .set_token_enabled(&ctx.principal.user_id, &t.id, enabled)
            .await?;
        let t = self.find_token(ctx, &t.id).await?;
        self.token_dto(&t).await
    }

    pub async fn delete_token(&self, ctx: &Ctx, id_or_name: &str) -> Result<()> {
        let t = self.find_token(ctx, id_or_name).await?;
        match self
            .inner
            .store
            .delete_token(&ctx.principal.user_id, &t.id)
            .await
        {
            Ok(()) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_deleted_before_its_touch_does_not_fail_the_request() {
        assert!(touched(Ok(())).is_ok());
        assert!(touched(Err(StoreError::NotFound)).is_ok());
    }

    #[test]
    fn other_touch_failures_still_fail_the_request() {
        let gone = std::io::Error::other("database is gone");
        let e = touched(Err(StoreError::Backend(Box::new(gone))));
        assert_eq!(e.err().map(|e| e.code), Some(ErrorCode::Internal));
    }
}
