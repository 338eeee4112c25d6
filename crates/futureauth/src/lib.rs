//! # FutureAuth
//!
//! Passwordless sign-in for Rust web apps: magic links, email codes and SMS codes. Users,
//! sessions and codes live in **your** database (Postgres, or SQLite with the `sqlite`
//! feature); the FutureAuth service only delivers the messages.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use futureauth::{FutureAuth, FutureAuthConfig, OtpChannel};
//! use sqlx::PgPool;
//! use std::sync::Arc;
//!
//! let pool = PgPool::connect(&std::env::var("DATABASE_URL")?).await?;
//! let auth = FutureAuth::new(pool.clone(), FutureAuthConfig {
//!     api_url: "https://future-auth.com".to_string(),
//!     secret_key: std::env::var("FUTUREAUTH_SECRET_KEY")?,
//!     project_name: "My App".to_string(),
//!     ..Default::default()
//! });
//! auth.ensure_tables().await?; // creates "user", session, verification (idempotent)
//!
//! auth.send_otp(OtpChannel::Email, "user@example.com").await?;
//! let (user, session) = auth
//!     .verify_otp("user@example.com", "a1b2c3", Some("127.0.0.1"), Some("Mozilla/5.0"))
//!     .await?;
//! // Put `session.token` in the `futureauth_session` cookie; later:
//! if let Some((user, _session)) = auth.get_session(&session.token).await? {
//!     println!("signed in as {:?}", user.email);
//! }
//! # let _ = user; Ok(()) }
//! ```
//!
//! With the `axum-integration` feature (on by default), [`axum::auth_router`] serves the
//! HTTP API and [`axum::AuthSession`] authenticates handlers.
//!
//! ## Security model
//! - Codes and tokens come from the OS CSPRNG; codes are uniform over `[a-z0-9]` (no modulo
//!   bias), link and session tokens carry 256 bits.
//! - Only hashes are stored: SHA-256 for tokens, HMAC-SHA256 for short codes, keyed by the
//!   project secret key (which is not in the database). Comparisons are constant-time.
//! - Codes are single-use, expire, die after `max_otp_attempts` wrong guesses, and a new
//!   code replaces the old one of the same client; each of these is one atomic SQL
//!   statement, so concurrent requests cannot exceed the limits or use a code twice.
//! - Codes requested through the HTTP API are bound to the browser that asked (an HttpOnly
//!   cookie): nobody else can replace them or spend their attempts, so someone who cannot
//!   read the inbox cannot lock its owner out. Unbound codes count wrong guesses per
//!   email/phone across codes. Limits are counted per client network before per address.
//!   See [`RateLimits`].
//! - Sessions slide: a session used after half its life is extended, with one write per
//!   half-life at most, but never past `session_max_lifetime` after sign-in.
//! - Browser origins and magic-link callbacks come from configuration (`app_url`,
//!   `allowed_origins`, `callback_urls`), never from request headers.
//! - Magic links are scanner-proof through `auth_router`'s landing page
//!   ([`FutureAuthConfig::magic_link_path`]): opening a link (`GET`/`HEAD`, as mail scanners
//!   do) never uses it; only the page's button does. Links sent through the HTTP API are
//!   bound to the browser that asked (an HttpOnly cookie whose hash is stored with the link);
//!   [`FutureAuthConfig::magic_link_same_browser`] makes that binding a requirement.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod config;
mod context;
pub mod delivery;
pub mod error;
mod flow;
pub mod hooks;
mod housekeeping;
mod identifier;
mod model;
mod origins;
#[cfg(feature = "passkeys")]
#[cfg_attr(docsrs, doc(cfg(feature = "passkeys")))]
pub mod passkey;
mod rate_limit;
mod session_cache;
mod store;
mod token;
pub mod webhook;

#[cfg(feature = "axum-integration")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum-integration")))]
pub mod axum;

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Utc;

pub use async_trait::async_trait;
pub use config::{FutureAuthConfig, RateLimit, RateLimits};
pub use context::{OtpBinding, RequestContext};
pub use error::{ErrorCode, FutureAuthError, Result};
pub use futureauth_proto::Locale;
pub use identifier::{normalize_email, normalize_phone, Identifier};
pub use model::{
    AuthMethod, CleanupReport, LinkRequest, LinkStatus, OtpChannel, Session, User, UserPage,
    UserQuery,
};
pub use origins::{Origin, TrustedOrigins};
#[cfg(feature = "passkeys")]
pub use passkey::{Passkey, PasskeyConfig};
pub use session_cache::SessionCacheConfig;
/// The sqlx this crate uses (0.8): build your pool with it to be sure the types match.
pub use sqlx;
pub use store::Database;

use delivery::Delivery;
use flow::Ctx;
use housekeeping::Housekeeping;
use session_cache::{Eviction, SessionCache};
use store::{Store, UserField};
use token::CodeKey;

/// The SQL that creates (or upgrades) FutureAuth's Postgres tables, for apps that run
/// their own migrations. [`FutureAuth::ensure_tables`] runs the same script.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub fn migration_sql() -> &'static str {
    store::postgres_schema()
}

/// The SQL that creates FutureAuth's SQLite tables. Tables made by an earlier version are
/// upgraded by [`FutureAuth::ensure_tables`], which also rebuilds the `verification` table
/// where SQLite cannot change a constraint in place.
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub fn sqlite_migration_sql() -> &'static str {
    store::sqlite_schema()
}

/// The FutureAuth SDK: sign-in flows over your database and a delivery.
///
/// Cheap to share: wrap it in an [`Arc`] and put it in your app state.
pub struct FutureAuth {
    config: FutureAuthConfig,
    /// `app_url`, `allowed_origins` and `callback_urls`, parsed once; the error says how
    /// to fix them (reported by [`validate`](Self::validate)).
    origins: std::result::Result<TrustedOrigins, String>,
    store: Store,
    delivery: Arc<dyn Delivery>,
    code_key: CodeKey,
    housekeeping: Housekeeping,
    session_cache: Option<SessionCache>,
    /// The app's hooks ([`with_hooks`](Self::with_hooks)).
    hooks: Arc<dyn hooks::AuthHooks>,
    /// Built without `http-delivery` and not yet given a delivery of the app's own.
    no_delivery: bool,
    /// The WebAuthn relying party when passkeys are configured; the error says how to fix
    /// the configuration (reported by [`validate`](Self::validate)).
    #[cfg(feature = "passkeys")]
    relying_party: std::result::Result<Option<passkey::RelyingParty>, String>,
}

impl std::fmt::Debug for FutureAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FutureAuth")
            .field("api_url", &self.config.api_url)
            .field("project_name", &self.config.project_name)
            .finish_non_exhaustive()
    }
}

/// The delivery of a `FutureAuth` the app gave none: the FutureAuth service with
/// `http-delivery`; without it none, which [`FutureAuth::validate`] refuses (the flag).
fn default_delivery(config: &FutureAuthConfig) -> (Arc<dyn Delivery>, bool) {
    #[cfg(feature = "http-delivery")]
    return (
        Arc::new(delivery::HttpDelivery::new(
            &config.api_url,
            &config.secret_key,
        )),
        false,
    );
    #[cfg(not(feature = "http-delivery"))]
    {
        let _ = config;
        (Arc::new(delivery::NoDelivery), true)
    }
}

/// Builds a [`FutureAuth`] that is known to work ([`FutureAuth::builder`]): the delivery and
/// hooks are given before it exists, and [`build`](Self::build) checks everything
/// [`FutureAuth::validate`] checks (the origins and callback URLs parse, a delivery is there,
/// a key is set, passkeys can work), so no error is left for later.
#[must_use = "call .build() to get the FutureAuth"]
pub struct FutureAuthBuilder {
    db: Database,
    config: FutureAuthConfig,
    delivery: Option<Arc<dyn Delivery>>,
    hooks: Option<Arc<dyn hooks::AuthHooks>>,
}

impl std::fmt::Debug for FutureAuthBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FutureAuthBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FutureAuthBuilder {
    /// Delivers through `delivery` (e.g. a [`DevOutbox`](delivery::DevOutbox) in
    /// development) instead of the FutureAuth service; as [`FutureAuth::with_delivery`].
    pub fn delivery(mut self, delivery: impl Delivery) -> Self {
        self.delivery = Some(Arc::new(delivery));
        self
    }

    /// Installs the app's [`AuthHooks`](hooks::AuthHooks); as [`FutureAuth::with_hooks`].
    pub fn hooks(mut self, hooks: impl hooks::AuthHooks) -> Self {
        self.hooks = Some(Arc::new(hooks));
        self
    }

    /// Turns the session cache on (or off, with `None`): sets
    /// [`FutureAuthConfig::session_cache`].
    pub fn session_cache(mut self, cache: Option<SessionCacheConfig>) -> Self {
        self.config.session_cache = cache;
        self
    }

    /// The `FutureAuth`, or [`FutureAuthError::Config`] saying how to fix the configuration.
    /// Nothing touches the database yet: [`FutureAuth::ensure_tables`] still creates the
    /// tables.
    pub fn build(self) -> Result<FutureAuth> {
        let auth = FutureAuth::assemble(self.db, self.config, self.delivery, self.hooks);
        auth.validate()?;
        Ok(auth)
    }
}

impl FutureAuth {
    /// FutureAuth over a `PgPool` (or a `SqlitePool` with the `sqlite` feature), delivering
    /// through the FutureAuth service at `config.api_url`.
    ///
    /// Nothing is checked or touched yet: call [`ensure_tables`](Self::ensure_tables) at
    /// start-up, which also [validates](Self::validate) the configuration.
    pub fn new(db: impl Into<Database>, config: FutureAuthConfig) -> Self {
        Self::assemble(db.into(), config, None, None)
    }

    /// A [`FutureAuthBuilder`]: like [`new`](Self::new), but [`build`](FutureAuthBuilder::build)
    /// refuses a configuration that cannot work, at construction rather than at
    /// [`ensure_tables`](Self::ensure_tables).
    ///
    /// ```no_run
    /// use futureauth::{delivery::DevOutbox, FutureAuth, FutureAuthConfig};
    ///
    /// # async fn run(pool: futureauth::sqlx::PgPool) -> futureauth::Result<()> {
    /// let config = FutureAuthConfig {
    ///     app_url: "https://app.example.com".into(),
    ///     ..Default::default()
    /// };
    /// // A misspelt URL or a missing key fails here, not at the first sign-in.
    /// let auth = FutureAuth::builder(pool, config)
    ///     .delivery(DevOutbox::new())
    ///     .build()?;
    /// auth.ensure_tables().await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(db: impl Into<Database>, config: FutureAuthConfig) -> FutureAuthBuilder {
        FutureAuthBuilder {
            db: db.into(),
            config,
            delivery: None,
            hooks: None,
        }
    }

    /// The one constructor behind [`new`](Self::new) and [`FutureAuthBuilder::build`]: parses
    /// what it can and keeps a parse error for [`validate`](Self::validate) to report (the
    /// infallible `new` of the spec); `delivery` and `hooks` default to the HTTP delivery
    /// (or none without `http-delivery`) and no hooks.
    fn assemble(
        db: Database,
        config: FutureAuthConfig,
        delivery: Option<Arc<dyn Delivery>>,
        hooks: Option<Arc<dyn hooks::AuthHooks>>,
    ) -> Self {
        let (delivery, no_delivery) = match delivery {
            Some(delivery) => (delivery, false),
            None => default_delivery(&config),
        };
        // A random key is only allowed with a dev-only delivery (checked by `validate`).
        let code_key = if !config.code_secret.is_empty() {
            CodeKey::derive(&config.code_secret)
        } else if !config.secret_key.is_empty() {
            CodeKey::derive(&config.secret_key)
        } else {
            CodeKey::random()
        };
        let session_cache = config
            .session_cache
            .map(|cache| SessionCache::new(cache, &db, config.db_call_timeout));
        #[allow(unused_mut)]
        let mut store = db.into_store(config.db_call_timeout);
        #[cfg(feature = "passkeys")]
        {
            store.passkeys = config.passkeys.is_some();
        }
        Self {
            origins: TrustedOrigins::from_config(&config).map_err(|e| e.to_string()),
            #[cfg(feature = "passkeys")]
            relying_party: passkey::RelyingParty::from_config(&config),
            store,
            delivery,
            code_key,
            housekeeping: Housekeeping::default(),
            session_cache,
            hooks: hooks.unwrap_or_else(|| Arc::new(hooks::NoHooks)),
            no_delivery,
            config,
        }
    }

    /// Replaces the delivery, e.g. with a [`DevOutbox`](delivery::DevOutbox) in development.
    pub fn with_delivery(mut self, delivery: impl Delivery) -> Self {
        self.delivery = Arc::new(delivery);
        self.no_delivery = false;
        self
    }

    /// Installs the app's [`AuthHooks`](hooks::AuthHooks): a `before_send` check that can
    /// refuse a send, and calls after users are created, sign in or out, change an address
    /// or are deleted.
    pub fn with_hooks(mut self, hooks: impl hooks::AuthHooks) -> Self {
        self.hooks = Arc::new(hooks);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &FutureAuthConfig {
        &self.config
    }

    /// Checks that this configuration can work, with a message that says how to fix it.
    pub fn validate(&self) -> Result<()> {
        if self.no_delivery {
            return Err(FutureAuthError::Config(
                "no delivery: this build of futureauth has no `http-delivery` feature, so give \
                 FutureAuth a delivery of your own with .with_delivery(...) (or enable the \
                 feature to deliver through the FutureAuth service)"
                    .to_string(),
            ));
        }
        self.config.validate()?;
        #[cfg(feature = "passkeys")]
        if let Err(e) = &self.relying_party {
            return Err(FutureAuthError::Config(e.clone()));
        }
        if let Some(cache) = &self.config.session_cache {
            cache.validate()?;
        }
        if self.delivery.requires_secret_key() && self.config.secret_key.trim().is_empty() {
            return Err(FutureAuthError::Config(format!(
                "secret_key is empty but codes are delivered by the FutureAuth service at {}; \
                 set FUTUREAUTH_SECRET_KEY to your project's vx_sec_... key, \
                 or use futureauth::delivery::DevOutbox for local development",
                self.config.api_url
            )));
        }
        let keyed =
            !self.config.secret_key.trim().is_empty() || !self.config.code_secret.trim().is_empty();
        if !keyed && !self.delivery.is_dev_only() {
            // A random per-process key would make codes fail on other instances and after
            // a restart, silently.
            return Err(FutureAuthError::Config(
                "codes need a key shared by every instance: set FUTUREAUTH_CODE_SECRET \
                 (FutureAuthConfig::code_secret) to a long random string, or secret_key"
                    .to_string(),
            ));
        }
        Ok(())
    }

    /// The origins and callback URLs of the configuration, parsed; an error if one of them
    /// is not valid (see [`validate`](Self::validate)).
    pub fn origins(&self) -> Result<&TrustedOrigins> {
        self.origins
            .as_ref()
            .map_err(|e| FutureAuthError::Config(e.clone()))
    }

    /// Removes a bounded batch of expired rows, at most once per few minutes per instance,
    /// so that nobody has to remember [`cleanup_expired`](Self::cleanup_expired).
    async fn tidy(&self) {
        let now = Utc::now();
        if !self.housekeeping.due(now) {
            return;
        }
        let batch = housekeeping::BATCH;
        match self
            .store
            .cleanup(now, self.config.max_otp_attempts, batch)
            .await
        {
            Ok(report) => self.housekeeping.done(&report),
            Err(e) => tracing::warn!(error = %e, "futureauth: clean-up of expired rows failed"),
        }
    }

    /// Validates the configuration, then creates the `"user"`, `session` and `verification`
    /// tables (and a rate-limit table), or upgrades them in place: tables made by
    /// futureauth 0.4 and 0.5 keep their users and their signed-in sessions. Idempotent and
    /// safe to run from several instances at once.
    pub async fn ensure_tables(&self) -> Result<()> {
        self.validate()?;
        self.store.migrate().await?;
        // Only apps that use passkeys get their tables.
        #[cfg(feature = "passkeys")]
        if matches!(self.relying_party, Ok(Some(_))) {
            passkey::store::migrate(&self.store).await?;
        }
        if let Some(cache) = &self.session_cache {
            cache.start();
        }
        Ok(())
    }

    /// Cached sessions carry the user: forget them when the user changes.
    async fn user_changed(&self, user: &User) -> Result<()> {
        self.evict_cached(Eviction::User(user.id.clone()), true)
            .await
    }

    /// The user a store update returns (`None`: no such user), once the cached sessions
    /// that carry the old one are forgotten.
    async fn updated_user(
        &self,
        update: impl std::future::Future<Output = Result<Option<User>>>,
    ) -> Result<User> {
        let user = update.await?.ok_or(FutureAuthError::UserNotFound)?;
        self.user_changed(&user).await?;
        Ok(user)
    }

    /// Evicts from the session cache here and, if the database `changed`, everywhere.
    async fn evict_cached(&self, eviction: Eviction, changed: bool) -> Result<()> {
        match &self.session_cache {
            Some(cache) => cache.evict(eviction, changed).await,
            None => Ok(()),
        }
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            store: &self.store,
            delivery: self.delivery.as_ref(),
            config: &self.config,
            code_key: &self.code_key,
            hooks: self.hooks.as_ref(),
        }
    }

    /// Sends a one-time code by email or SMS. Any live unbound code of that address is
    /// replaced.
    ///
    /// Answers the same whether or not the address belongs to a user. Codes sent this way
    /// are *unbound* and not counted per client network: see
    /// [`send_otp_with`](Self::send_otp_with), which [`auth_router`](crate::axum::auth_router)
    /// uses.
    pub async fn send_otp(&self, channel: OtpChannel, destination: &str) -> Result<()> {
        self.send_otp_with(channel, destination, &RequestContext::default())
            .await
    }

    /// Sends a one-time code for the request `req` describes: counted against its client's
    /// network limits first, and, with `req.binding` (make one with
    /// [`OtpBinding::generate`] and keep it in that client, e.g. an HttpOnly cookie; reuse it
    /// for a resend), bound to that client. Only [`verify_otp_with`](Self::verify_otp_with)
    /// with the same binding can use a bound code, and it replaces only that binding's
    /// previous code, never anybody else's.
    ///
    /// Unbound codes share one row per address: whoever knows the address can spend their
    /// attempts and, with enough wrong guesses, reach `failed_verify_per_identifier`, which
    /// then refuses even the right code until the window ends. Bound codes are immune.
    pub async fn send_otp_with(
        &self,
        channel: OtpChannel,
        destination: &str,
        req: &RequestContext,
    ) -> Result<()> {
        let sent = flow::otp::send(&self.ctx(), channel, destination, req).await;
        self.tidy().await;
        sent
    }

    /// [`send_otp_with`](Self::send_otp_with) with only the client IP known.
    #[deprecated(since = "0.6.0", note = "use `send_otp_with` and a `RequestContext`")]
    pub async fn send_otp_from(
        &self,
        channel: OtpChannel,
        destination: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<()> {
        let req = RequestContext {
            client_ip,
            ..RequestContext::default()
        };
        self.send_otp_with(channel, destination, &req).await
    }

    /// [`send_otp_with`](Self::send_otp_with) with the client IP and a binding.
    #[deprecated(since = "0.6.0", note = "use `send_otp_with` and a `RequestContext`")]
    pub async fn send_otp_bound(
        &self,
        channel: OtpChannel,
        destination: &str,
        client_ip: Option<IpAddr>,
        binding: &OtpBinding,
    ) -> Result<()> {
        let req = RequestContext {
            client_ip,
            binding: Some(binding.clone()),
            ..RequestContext::default()
        };
        self.send_otp_with(channel, destination, &req).await
    }

    /// Checks a code sent to `identifier` (email or phone). On success the user is found or
    /// created and a new session is returned; put `session.token` in the cookie.
    ///
    /// This checks the unbound code (from [`send_otp`](Self::send_otp)); wrong guesses count
    /// per address across codes, up to `rate_limits.failed_verify_per_identifier`.
    /// `ip_address` and `user_agent` are stored on the session (see
    /// [`RequestContext::from_parts`]).
    pub async fn verify_otp(
        &self,
        identifier: &str,
        code: &str,
        ip_address: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<(User, Session)> {
        let req = RequestContext::from_parts(ip_address, user_agent);
        self.verify_otp_with(identifier, code, &req).await
    }

    /// Checks a code for the request `req` describes: with `req.binding`, the code sent
    /// under that binding, and a correct, live code that has had fewer than
    /// `max_otp_attempts` wrong guesses always signs in (no limit that another client can
    /// fill is checked first); without one, the unbound code.
    pub async fn verify_otp_with(
        &self,
        identifier: &str,
        code: &str,
        req: &RequestContext,
    ) -> Result<(User, Session)> {
        let verified = flow::otp::verify(&self.ctx(), identifier, code, req).await;
        self.tidy().await;
        verified
    }

    /// [`verify_otp_with`](Self::verify_otp_with) with a binding.
    #[deprecated(since = "0.6.0", note = "use `verify_otp_with` and a `RequestContext`")]
    pub async fn verify_otp_bound(
        &self,
        identifier: &str,
        code: &str,
        binding: &OtpBinding,
        ip_address: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<(User, Session)> {
        let req = RequestContext {
            binding: Some(binding.clone()),
            ..RequestContext::from_parts(ip_address, user_agent)
        };
        self.verify_otp_with(identifier, code, &req).await
    }

    /// Emails a magic link `callback_url?token=...`.
    ///
    /// The callback must be an http(s) URL without a `token` parameter of its own, and be
    /// one of `callback_urls` or on the origin of `app_url` or of `allowed_origins`. With
    /// none of these configured, the FutureAuth service checks it against the project's
    /// list; any other delivery then fails with [`FutureAuthError::Misconfigured`].
    pub async fn send_magic_link(&self, email: &str, callback_url: &str) -> Result<()> {
        self.send_magic_link_with(email, callback_url, &RequestContext::default())
            .await
    }

    /// [`send_magic_link`](Self::send_magic_link) for the request `req` describes (its
    /// `binding`, if any, binds the link to the browser that asked), also
    /// counting against its client's network limits.
    pub async fn send_magic_link_with(
        &self,
        email: &str,
        callback_url: &str,
        req: &RequestContext,
    ) -> Result<()> {
        self.send_bound_magic_link(email, callback_url, req)
            .await
            .map(drop)
    }

    /// [`send_magic_link_with`](Self::send_magic_link_with), returning the number the asking
    /// browser is to show (when `req.binding` is set).
    pub(crate) async fn send_bound_magic_link(
        &self,
        email: &str,
        callback_url: &str,
        req: &RequestContext,
    ) -> Result<Option<String>> {
        let callback = flow::magic_link::check_callback(
            callback_url,
            self.origins()?,
            self.delivery.checks_callbacks(),
        )?;
        let sent = flow::magic_link::send(&self.ctx(), email, callback, req).await;
        self.tidy().await;
        sent
    }

    /// What the page that opens a magic link may say and offer: who asked (when, from which
    /// IP, on which browser), whether `req.binding` is the browser that asked, and whether
    /// it may sign in here or approve the asking browser. `None` if the link is unknown,
    /// used, approved or expired. Reads only: scanners opening links change nothing.
    ///
    /// `auth_router`'s landing page uses this; call it from your own page likewise.
    pub async fn magic_link_request(
        &self,
        token: &str,
        req: &RequestContext,
    ) -> Result<Option<LinkRequest>> {
        flow::approval::request(&self.ctx(), token, req).await
    }

    /// Approves a magic link opened on another device, for the browser that asked for it:
    /// `number` must be the two-digit number that browser shows
    /// ([`magic_link_status`](Self::magic_link_status)). The browser calling this is not
    /// signed in; the asking browser is, when it next checks its status.
    ///
    /// A wrong number fails with [`FutureAuthError::MagicLinkNumberMismatch`] and voids the
    /// link, so someone who asked for a link to another person's address wins a careless
    /// click at most once in 90, and never by retrying.
    pub async fn approve_magic_link(
        &self,
        token: &str,
        number: &str,
        req: &RequestContext,
    ) -> Result<()> {
        flow::approval::approve(&self.ctx(), token, number, req).await
    }

    /// For the browser that asked for a magic link (`req.binding`, the binding it sent the
    /// link with): [`LinkStatus::SignedIn`] with a new session once another device approved
    /// the link (each approval signs in once), [`LinkStatus::Waiting`] with the number to
    /// show while a link waits, else [`LinkStatus::Nothing`]. Poll it every few seconds.
    pub async fn magic_link_status(&self, req: &RequestContext) -> Result<LinkStatus> {
        flow::approval::status(&self.ctx(), req).await
    }

    /// [`send_magic_link_with`](Self::send_magic_link_with) with only the client IP known.
    #[deprecated(
        since = "0.6.0",
        note = "use `send_magic_link_with` and a `RequestContext`"
    )]
    pub async fn send_magic_link_from(
        &self,
        email: &str,
        callback_url: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<()> {
        let req = RequestContext {
            client_ip,
            ..RequestContext::default()
        };
        self.send_magic_link_with(email, callback_url, &req).await
    }

    /// Uses a magic-link token (once). On success the user is found or created and a new
    /// session is returned.
    pub async fn verify_magic_link(
        &self,
        token: &str,
        ip_address: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<(User, Session)> {
        let req = RequestContext::from_parts(ip_address, user_agent);
        self.verify_magic_link_with(token, &req).await
    }

    /// [`verify_magic_link`](Self::verify_magic_link) for the request `req` describes.
    ///
    /// `req.binding` is the secret of the browser that opens the link; with
    /// [`FutureAuthConfig::magic_link_same_browser`] it must be the one the link was sent
    /// with ([`send_magic_link_with`](Self::send_magic_link_with)), or this fails with
    /// [`FutureAuthError::MagicLinkOtherBrowser`] and leaves the link usable.
    pub async fn verify_magic_link_with(
        &self,
        token: &str,
        req: &RequestContext,
    ) -> Result<(User, Session)> {
        let verified = flow::magic_link::verify(&self.ctx(), token, req).await;
        self.tidy().await;
        verified
    }

    /// The user and session of a session token, or `None` if it is unknown, revoked or
    /// expired. One indexed query; a session past half its life is extended.
    pub async fn get_session(&self, token: &str) -> Result<Option<(User, Session)>> {
        Ok(
            flow::session::check(&self.ctx(), self.session_cache.as_ref(), token)
                .await?
                .map(|c| (c.user, c.session)),
        )
    }

    /// The user and session of `token` if the session cache holds them (no database, no
    /// `await`); what [`get_session`](Self::get_session) would answer from its cache.
    pub(crate) fn cached_session(&self, token: &str) -> Option<(User, Session)> {
        flow::session::cached(self.session_cache.as_ref(), token)
    }

    /// Like [`get_session`](Self::get_session), also telling whether the expiry moved
    /// forward (so a cookie should be re-issued).
    pub async fn get_session_checked(&self, token: &str) -> Result<Option<(User, Session, bool)>> {
        Ok(
            flow::session::check(&self.ctx(), self.session_cache.as_ref(), token)
                .await?
                .map(|c| (c.user, c.session, c.extended)),
        )
    }

    /// Signs one session out. Unknown tokens are ignored.
    pub async fn revoke_session(&self, token: &str) -> Result<()> {
        if !token.is_empty() {
            let token_hash = token::hash_token(token);
            let ended = self.store.end_session_by_hash(&token_hash).await?;
            self.evict_cached(Eviction::Token(token_hash), ended.is_some())
                .await?;
            if let Some((user_id, session_id)) = ended {
                hooks::report(
                    "signed_out",
                    self.hooks.signed_out(&user_id, &session_id).await,
                );
            }
        }
        Ok(())
    }

    /// Signs a user out of one of their sessions by its public id; false if there was none.
    pub async fn revoke_user_session(&self, user_id: &str, session_id: &str) -> Result<bool> {
        let deleted = self.store.delete_user_session(user_id, session_id).await?;
        self.evict_cached(Eviction::Session(session_id.to_string()), deleted)
            .await?;
        if deleted {
            hooks::report(
                "session_revoked",
                self.hooks.session_revoked(user_id, Some(session_id)).await,
            );
        }
        Ok(deleted)
    }

    /// Signs a user out everywhere; returns how many sessions ended.
    pub async fn revoke_all_sessions(&self, user_id: &str) -> Result<u64> {
        let revoked = self.store.delete_user_sessions(user_id).await?;
        self.evict_cached(Eviction::User(user_id.to_string()), revoked > 0)
            .await?;
        if revoked > 0 {
            hooks::report(
                "session_revoked",
                self.hooks.session_revoked(user_id, None).await,
            );
        }
        Ok(revoked)
    }

    /// A user's active sessions, newest first (without tokens).
    pub async fn list_sessions(&self, user_id: &str) -> Result<Vec<Session>> {
        self.store.list_sessions(user_id, Utc::now()).await
    }

    /// Looks a user up by id.
    pub async fn get_user(&self, id: &str) -> Result<Option<User>> {
        self.store.user_by_id(id).await
    }

    /// Looks a user up by email (normalised first).
    pub async fn get_user_by_email(&self, email: &str) -> Result<Option<User>> {
        match normalize_email(email) {
            Ok(email) => self.store.user_by_email(&email).await,
            Err(_) => Ok(None),
        }
    }

    /// Looks a user up by phone number (normalised to E.164 first).
    pub async fn get_user_by_phone(&self, phone: &str) -> Result<Option<User>> {
        match normalize_phone(phone) {
            Ok(phone) => self.store.user_by_phone(&phone).await,
            Err(_) => Ok(None),
        }
    }

    /// Sets a user's display name.
    pub async fn update_user_name(&self, user_id: &str, name: &str) -> Result<User> {
        self.updated_user(
            self.store
                .update_user(user_id, UserField::Name(name), Utc::now()),
        )
        .await
    }

    /// Replaces a user's metadata.
    pub async fn set_user_metadata(
        &self,
        user_id: &str,
        metadata: serde_json::Value,
    ) -> Result<User> {
        self.updated_user(self.store.update_user(
            user_id,
            UserField::Metadata(&metadata),
            Utc::now(),
        ))
        .await
    }

    /// Merges the top-level keys of `patch` (a JSON object) into a user's metadata.
    pub async fn merge_user_metadata(
        &self,
        user_id: &str,
        patch: serde_json::Value,
    ) -> Result<User> {
        store::sql_json(&patch)?;
        let serde_json::Value::Object(patch) = patch else {
            return Err(FutureAuthError::InvalidInput(
                "merge_user_metadata takes a JSON object".to_string(),
            ));
        };
        self.updated_user(self.store.merge_user_metadata(user_id, &patch, Utc::now()))
            .await
    }

    /// Asks to change (or add) the signed-in user's email or phone to `new` (an email or an
    /// E.164 number): a code goes to `new`, to be confirmed with
    /// [`confirm_identifier_change`](Self::confirm_identifier_change), and a notice to the
    /// address the user has now (of the same kind, else the other). Nothing changes yet.
    ///
    /// Answers the same whether or not `new` belongs to another account, so the answer
    /// cannot be used to find out who uses an address. Sends are limited like sign-in sends
    /// and go through [`AuthHooks::before_send`](hooks::AuthHooks::before_send).
    ///
    /// The two messages say what they are on the delivery wire: the code to `new` has
    /// purpose [`ConfirmAddress`](delivery::Purpose::ConfirmAddress) (worded as confirming
    /// an address, not as a sign-in), and the notice has purpose
    /// [`AddressChangeNotice`](delivery::Purpose::AddressChangeNotice): it carries no code
    /// and names `new` only masked (`a***@example.com`, `+44 ****** 789`), since whoever
    /// reads the old address may not be the user. For a new email with `app_url` set, the
    /// code goes beside a link (a `MagicLink` message, the code in `link_code`) that
    /// [`confirm_identifier_change_link`](Self::confirm_identifier_change_link) confirms.
    pub async fn request_identifier_change(
        &self,
        user_id: &str,
        new: &str,
        req: &RequestContext,
    ) -> Result<()> {
        let new = Identifier::parse(new)?;
        self.tidy().await;
        flow::account::request(&self.ctx(), user_id, &new, req).await
    }

    /// Confirms a change asked for with
    /// [`request_identifier_change`](Self::request_identifier_change) with the code sent to
    /// `new`: `new` becomes the user's verified address (replacing the old one of its kind).
    /// The user's sessions stay.
    ///
    /// Errors: `InvalidCode` (wrong, expired, used up: each guess counts against
    /// `max_otp_attempts`), `IdentifierTaken` if `new` belongs to another account by now
    /// (nothing changes).
    pub async fn confirm_identifier_change(
        &self,
        user_id: &str,
        new: &str,
        code: &str,
        req: &RequestContext,
    ) -> Result<User> {
        let new = Identifier::parse(new)?;
        let user = flow::account::confirm(&self.ctx(), user_id, &new, code, req).await?;
        self.user_changed(&user).await?;
        Ok(user)
    }

    /// Confirms a change of email with the token of the link sent beside the code (when
    /// `app_url` is set, the confirm-address email links to
    /// `/api/auth/confirm-identifier-change?token=...` on it), for `user_id`, who must be the
    /// signed-in user of the browser that opened the link: the link confirms only the
    /// change that user asked for. The link and the code are one pending change: using
    /// either voids both.
    ///
    /// Errors: `InvalidMagicLink` (used, replaced, expired, or another user's change:
    /// nothing changes), `IdentifierTaken` as for the code.
    pub async fn confirm_identifier_change_link(
        &self,
        user_id: &str,
        token: &str,
        req: &RequestContext,
    ) -> Result<User> {
        let user = flow::account::confirm_link_token(&self.ctx(), user_id, token, req).await?;
        self.user_changed(&user).await?;
        Ok(user)
    }

    /// Removes the user's email (`OtpChannel::Email`) or phone (`OtpChannel::Phone`), only
    /// while the other remains: otherwise `LastIdentifier` (`409 last_identifier`) and
    /// nothing changes.
    pub async fn remove_identifier(&self, user_id: &str, which: OtpChannel) -> Result<User> {
        let email = which == OtpChannel::Email;
        let before = self
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(FutureAuthError::UserNotFound)?;
        let user = self
            .updated_user(self.store.remove_identifier(user_id, email, Utc::now()))
            .await?;
        let removed = if email {
            before.email.map(Identifier::Email)
        } else {
            before.phone_number.map(Identifier::Phone)
        };
        if let Some(removed) = removed {
            let change = hooks::IdentifierChange::Removed(removed);
            hooks::report(
                "identifier_changed",
                self.hooks.identifier_changed(&user, &change).await,
            );
        }
        Ok(user)
    }

    /// Deletes the user of `session` (their own request), if they signed in within
    /// [`recent_auth_max_age`](FutureAuthConfig::recent_auth_max_age); otherwise
    /// `ReauthenticationRequired` and nothing is deleted: sign in again, then retry. See
    /// [`delete_user`](Self::delete_user).
    pub async fn delete_account(&self, session: &Session) -> Result<User> {
        self.require_recent_sign_in(session)?;
        self.delete_user(&session.user_id).await
    }

    /// `Ok` if the user of `session` proved who they are within
    /// [`recent_auth_max_age`](FutureAuthConfig::recent_auth_max_age), else
    /// `ReauthenticationRequired` (`403 reauthentication_required`): the app's own sensitive
    /// actions ask for a fresh sign-in with it, as deleting an account does. The Axum
    /// integration's [`RecentAuthSession`](crate::axum::RecentAuthSession) extractor applies it.
    pub fn require_recent_sign_in(&self, session: &Session) -> Result<()> {
        if session.signed_in_within(self.config.recent_auth_max_age) {
            Ok(())
        } else {
            Err(FutureAuthError::ReauthenticationRequired)
        }
    }

    /// Deletes a user with their sessions, pending codes and links (and address changes) in
    /// one transaction; their sessions stop working on every instance at once, cached or
    /// not. For the app's own admin code: no recent-sign-in check (see
    /// [`delete_account`](Self::delete_account)). `UserNotFound` if there is no such user.
    pub async fn delete_user(&self, user_id: &str) -> Result<User> {
        let user = self
            .store
            .delete_user(user_id)
            .await?
            .ok_or(FutureAuthError::UserNotFound)?;
        self.evict_cached(Eviction::User(user.id.clone()), true)
            .await?;
        hooks::report("user_deleted", self.hooks.user_deleted(&user).await);
        Ok(user)
    }

    /// Disables a user until `until` (`None`: until [`enable_user`](Self::enable_user)):
    /// their sessions end at once (cache included, on every instance), and a right code or
    /// link no longer signs them in (`403 user_disabled` on verify). Sending a code to
    /// them answers as for anyone, so disabling reveals nothing. `UserNotFound` if there
    /// is no such user.
    pub async fn disable_user(
        &self,
        user_id: &str,
        until: Option<chrono::DateTime<Utc>>,
    ) -> Result<()> {
        if !self
            .store
            .set_disabled(user_id, Some(Utc::now()), until)
            .await?
        {
            return Err(FutureAuthError::UserNotFound);
        }
        self.evict_cached(Eviction::User(user_id.to_string()), true)
            .await?;
        hooks::report(
            "session_revoked",
            self.hooks.session_revoked(user_id, None).await,
        );
        Ok(())
    }

    /// Lets a disabled user sign in again (their old sessions stay ended).
    pub async fn enable_user(&self, user_id: &str) -> Result<()> {
        if !self.store.set_disabled(user_id, None, None).await? {
            return Err(FutureAuthError::UserNotFound);
        }
        Ok(())
    }

    /// Whether a user is disabled now.
    pub async fn is_user_disabled(&self, user_id: &str) -> Result<bool> {
        self.store.user_disabled(user_id, Utc::now()).await
    }

    /// Users, newest first, a page at a time: for the app's admin pages. See [`UserQuery`].
    pub async fn list_users(&self, query: &UserQuery) -> Result<UserPage> {
        let limit = query.limit.clamp(1, UserQuery::MAX_LIMIT);
        let mut users = self
            .store
            .list_users(&store::UserFilter {
                search: query.search.as_deref().filter(|s| !s.trim().is_empty()),
                created_after: query.created_after,
                created_before: query.created_before,
                limit: i64::from(limit) + 1,
                offset: i64::try_from(query.offset).unwrap_or(i64::MAX),
            })
            .await?;
        let more = users.len() > limit as usize;
        users.truncate(limit as usize);
        Ok(UserPage {
            next_offset: more.then(|| query.offset + u64::from(limit)),
            users,
        })
    }

    /// Deletes all expired sessions and codes, dead codes and old rate-limit counters.
    ///
    /// Optional: every instance already removes up to 500 such rows of each kind at most
    /// every five minutes, on the side of a sign-in request. Call it to empty a backlog at once.
    pub async fn cleanup_expired(&self) -> Result<CleanupReport> {
        self.store
            .cleanup(Utc::now(), self.config.max_otp_attempts, u32::MAX)
            .await
    }
}

/// The passkey methods of the facade: they call down into [`passkey`].
#[cfg(feature = "passkeys")]
impl FutureAuth {
    /// The relying party, or why passkeys are not available.
    fn relying_party(&self) -> Result<&passkey::RelyingParty> {
        match &self.relying_party {
            Ok(Some(rp)) => Ok(rp),
            Ok(None) => Err(FutureAuthError::Misconfigured(
                "passkeys are not configured: set FutureAuthConfig::passkeys".to_string(),
            )),
            Err(e) => Err(FutureAuthError::Config(e.clone())),
        }
    }

    /// Options for `navigator.credentials.create()` (the JSON of WebAuthn's
    /// `PublicKeyCredentialCreationOptions`, under `publicKey`), to add a passkey to the
    /// signed-in `user`: a discoverable credential, user verification required, no
    /// attestation, the user's passkeys excluded.
    ///
    /// `req.binding` is required: the challenge works only with the same binding, for
    /// [`FutureAuthConfig::passkeys`](FutureAuthConfig::passkeys)' `challenge_ttl`,
    /// once. Counted against the options limit of the client IP.
    pub async fn passkey_registration_options(
        &self,
        user: &User,
        req: &RequestContext,
    ) -> Result<serde_json::Value> {
        let rp = self.relying_party()?;
        passkey::register_options(&self.ctx(), rp, user, req, Utc::now()).await
    }

    /// Verifies what `navigator.credentials.create()` answered (`credential`, the
    /// `PublicKeyCredential` as JSON with base64url fields) to
    /// [`passkey_registration_options`](Self::passkey_registration_options) for the same
    /// `user` and `req.binding`, and stores the passkey under `name` (at most 64 bytes;
    /// without one, the browser and platform of `req.user_agent`, e.g. "Chrome on macOS").
    ///
    /// Fails with [`FutureAuthError::PasskeyChallengeInvalid`] if the challenge is not this
    /// browser's, was used or has expired, and [`FutureAuthError::PasskeyRejected`] if the
    /// answer is not valid for this app's RP ID and origins or the credential is already
    /// registered.
    pub async fn register_passkey(
        &self,
        user: &User,
        credential: &serde_json::Value,
        name: Option<&str>,
        req: &RequestContext,
    ) -> Result<Passkey> {
        let rp = self.relying_party()?;
        let row =
            passkey::register(&self.ctx(), rp, user, credential, name, req, Utc::now()).await?;
        Ok(row.into())
    }

    /// Options for `navigator.credentials.get()` to sign in with a discoverable passkey
    /// (the browser offers the passkeys it has for this site; no address is asked first).
    /// Use them with `mediation: "conditional"` for autofill in the email field, or from a
    /// button. `req.binding` is required, as for registration.
    pub async fn passkey_sign_in_options(&self, req: &RequestContext) -> Result<serde_json::Value> {
        let rp = self.relying_party()?;
        let options = passkey::sign_in_options(&self.ctx(), rp, req, Utc::now()).await;
        self.tidy().await;
        options
    }

    /// Verifies what `navigator.credentials.get()` answered (`credential`) to
    /// [`passkey_sign_in_options`](Self::passkey_sign_in_options) with the same
    /// `req.binding`, and opens a session for the passkey's user, like
    /// [`verify_otp_with`](Self::verify_otp_with) does.
    ///
    /// Refused ([`FutureAuthError::PasskeyRejected`]) when the credential is unknown, the
    /// user handle is not its owner's, the signature, RP ID, origin or user verification is
    /// wrong, or the signature counter did not move forward (a cloned authenticator).
    pub async fn sign_in_with_passkey(
        &self,
        credential: &serde_json::Value,
        req: &RequestContext,
    ) -> Result<(User, Session)> {
        let rp = self.relying_party()?;
        let signed_in = passkey::sign_in(&self.ctx(), rp, credential, req, Utc::now()).await;
        self.tidy().await;
        signed_in
    }

    /// A user's passkeys, oldest first.
    pub async fn list_passkeys(&self, user_id: &str) -> Result<Vec<Passkey>> {
        self.relying_party()?;
        let rows = self.store.list_passkeys(user_id).await?;
        Ok(rows.into_iter().map(Passkey::from).collect())
    }

    /// Renames one of a user's passkeys (`name`: 1 to 64 bytes of printable text);
    /// [`FutureAuthError::PasskeyNotFound`] if the user has no passkey `passkey_id`.
    pub async fn rename_passkey(
        &self,
        user_id: &str,
        passkey_id: &str,
        name: &str,
    ) -> Result<Passkey> {
        self.relying_party()?;
        let name = passkey::parse_name(name)?;
        self.store
            .rename_passkey(user_id, passkey_id, name)
            .await?
            .map(Passkey::from)
            .ok_or(FutureAuthError::PasskeyNotFound)
    }

    /// Deletes one of a user's passkeys; [`FutureAuthError::PasskeyNotFound`] if the user
    /// has no passkey `passkey_id`. Codes and links keep working without any passkey.
    pub async fn delete_passkey(&self, user_id: &str, passkey_id: &str) -> Result<()> {
        self.relying_party()?;
        if self.store.delete_passkey(user_id, passkey_id).await? {
            Ok(())
        } else {
            Err(FutureAuthError::PasskeyNotFound)
        }
    }
}
