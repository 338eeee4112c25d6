//! Server configuration: every setting is a command-line flag with an environment variable
//! equivalent (see `futureauth-server --help`), parsed into types once, by clap: a count of 0,
//! an unknown `FUTUREAUTH_ENV`, a duration out of range or a malformed URL is refused there,
//! with a message saying how to fix it. What is left for [`Config::validate`] are the rules
//! between settings.
//!
//! The settings are grouped as they are shown by `--help`: the server itself ([`Config`]),
//! the [`DatabaseSettings`], the [`ProviderSettings`], the [`LimitSettings`] and the
//! [`DeliverySettings`].

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::num::{IntErrorKind, NonZeroU32, NonZeroUsize, ParseIntError};
use std::str::FromStr;
use std::time::Duration;

use clap::builder::{EnumValueParser, PossibleValue, TypedValueParser};
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Args, FromArgMatches, ValueEnum};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use thiserror::Error;
use url::Url;

use crate::signature::SvixSecret;

/// Default database when `DATABASE_URL` is unset: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://futureauth-server.db?mode=rwc";
/// Default sender address for emails.
pub const DEFAULT_EMAIL_FROM: &str = "FutureAuth <onboarding@resend.dev>";
/// Default Resend API base URL.
pub const DEFAULT_RESEND_API_URL: &str = "https://api.resend.com";
/// Default Twilio API base URL.
pub const DEFAULT_TWILIO_API_URL: &str = "https://api.twilio.com";

/// Longest accepted `--retention-days`: a century.
pub const MAX_RETENTION_DAYS: u64 = 36_500;
/// Shortest accepted `--server-secret`.
pub const MIN_SERVER_SECRET_LEN: usize = 32;

/// The settings of group `T` as its flags' defaults give them, the environment ignored: the
/// attributes are the one place a default is written.
fn defaults<T: Args + FromArgMatches>() -> T {
    T::augment_args(clap::Command::new("defaults"))
        .mut_args(|arg| arg.env(None::<&str>))
        .try_get_matches_from(["defaults"])
        .and_then(|matches| T::from_arg_matches(&matches))
        .expect("every setting has a default or is optional")
}

/// `Default` for each group of settings: its flags' defaults ([`defaults`]).
macro_rules! default_from_flags {
    ($($group:ty),+) => {
        $(
            impl Default for $group {
                fn default() -> Self {
                    defaults()
                }
            }
        )+
    };
}

default_from_flags!(
    Config,
    DatabaseSettings,
    ResendConfig,
    TwilioConfig,
    LimitSettings,
    DeliverySettings
);

/// All settings of the service. Flags are `global` so they can be given after any subcommand.
///
/// A duration is given human-readable (`lease`: `--lease 1m`) or through its deprecated alias
/// in a fixed unit (`lease_ms`: `--lease-ms 60000`, which keeps its old default); the method
/// of the same name (`lease()`) is the value in effect, the human-readable one if set.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(
        long = "listen",
        env = "LISTEN_ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Public URL of this server as browsers reach it, e.g. `https://auth.example.com`: the
    /// console accepts forms only from this origin, links operator sign-in there, and marks its
    /// cookie `Secure` unless it is plain-HTTP loopback. Defaults to `http://<listen address>`.
    #[arg(long, env = "FUTUREAUTH_PUBLIC_URL", value_parser = public_url_flag, global = true)]
    pub public_url: Option<String>,

    /// Reverse proxies whose `X-Forwarded-For` the console believes, as IPs or CIDRs
    /// (`127.0.0.1,10.0.0.0/8`): when the socket peer is one of them, the client is the
    /// right-most forwarded hop that is not. Default none: the socket peer is the client.
    /// Set it behind a TLS proxy, or every operator shares the proxy's sign-in limits.
    #[arg(
        long,
        env = "FUTUREAUTH_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_trusted_proxy,
        global = true
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Address of the Prometheus `GET /metrics` listener, e.g. `127.0.0.1:9464`. Off when
    /// unset: metrics are never served on the public `--listen` port.
    #[arg(long = "metrics-listen", env = "METRICS_LISTEN_ADDR", global = true)]
    pub metrics_listen: Option<SocketAddr>,

    /// Most API requests handled at once; more are refused at once with
    /// `503 overloaded` and `Retry-After` instead of queueing.
    #[arg(
        long,
        env = "FUTUREAUTH_MAX_IN_FLIGHT",
        default_value = "256",
        value_parser = at_least_one::<NonZeroUsize>,
        global = true
    )]
    pub max_in_flight: NonZeroUsize,

    /// Production rules, and both providers required at start-up. Same as
    /// `FUTUREAUTH_ENV=production`. Without it, production rules still apply whenever a real
    /// provider is configured or the listen address is not loopback.
    #[arg(long, global = true)]
    pub production: bool,

    /// Development rules (project webhooks may reach internal addresses, test mode needs no
    /// confirmation) on a non-loopback listen address. Same as `FUTUREAUTH_ENV=development`.
    /// Refused when a real provider is configured.
    #[arg(long, global = true)]
    pub dev: bool,

    /// The rules to run by; unset, production as soon as a provider is configured or the
    /// listen address is not loopback.
    #[arg(
        long = "env",
        env = "FUTUREAUTH_ENV",
        value_parser = Trimmed(EnumValueParser::<Environment>::new()),
        ignore_case = true,
        global = true
    )]
    pub environment: Option<Environment>,

    /// Serve the dev outbox (no provider keys: every code readable at `/dev/outbox`) on a
    /// listen address other than loopback; it still answers only to clients connecting from
    /// loopback. Implies development rules, so never with real providers or `--production`.
    #[arg(long, env = "FUTUREAUTH_INSECURE_DEV_OUTBOX", global = true)]
    pub insecure_dev_outbox: bool,

    /// Key of the HMAC that fingerprints requests sent with an `Idempotency-Key` (at least 32
    /// characters). Optional: unset, a random key kept in the database is used, the same for
    /// every instance on that database.
    #[arg(
        long,
        env = "FUTUREAUTH_SERVER_SECRET",
        global = true,
        hide_env_values = true,
        value_parser = Secret(server_secret_long_enough)
    )]
    pub server_secret: Option<SecretString>,

    /// The database and its timeouts.
    #[command(flatten)]
    pub database: DatabaseSettings,

    /// Resend and Twilio.
    #[command(flatten)]
    pub providers: ProviderSettings,

    /// The server's rate limits.
    #[command(flatten)]
    pub limits: LimitSettings,

    /// The outbox's workers, retries and retention.
    #[command(flatten)]
    pub delivery: DeliverySettings,
}

/// `FUTUREAUTH_ENV` / `--env`: the rules asked for explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    /// Development rules, as `--dev`.
    Development,
    /// Production rules, as `--production`.
    Production,
}

/// The database and its timeouts.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseSettings {
    /// Database URL: `postgres://…` or `sqlite://…`. Defaults to a SQLite file in the working directory.
    #[arg(long, env = "DATABASE_URL", value_parser = database_url_flag, global = true)]
    pub database_url: Option<String>,

    /// How long a request waits for a database connection before answering
    /// `503 storage_unavailable`, e.g. `2s` (sqlx's default is 30 s), 1ms to 10m [default: 2s].
    #[arg(long, env = "FUTUREAUTH_DB_ACQUIRE_TIMEOUT", value_parser = db_timeout, global = true)]
    pub db_acquire_timeout: Option<Duration>,

    /// Deprecated alias of `--db-acquire-timeout`, in milliseconds.
    #[arg(
        long,
        env = "FUTUREAUTH_DB_ACQUIRE_TIMEOUT_MS",
        default_value_t = 2_000,
        value_parser = clap::value_parser!(u64).range(DB_TIMEOUT_MS),
        global = true
    )]
    pub db_acquire_timeout_ms: u64,

    /// Longest a single SQL statement may run, e.g. `5s` (Postgres `statement_timeout`,
    /// SQLite `busy_timeout`), 1ms to 10m [default: 5s].
    #[arg(long, env = "FUTUREAUTH_DB_STATEMENT_TIMEOUT", value_parser = db_timeout, global = true)]
    pub db_statement_timeout: Option<Duration>,

    /// Deprecated alias of `--db-statement-timeout`, in milliseconds.
    #[arg(
        long,
        env = "FUTUREAUTH_DB_STATEMENT_TIMEOUT_MS",
        default_value_t = 5_000,
        value_parser = clap::value_parser!(u64).range(DB_TIMEOUT_MS),
        global = true
    )]
    pub db_statement_timeout_ms: u64,

    /// Longest any one database call may take on the server's side, the wait for a
    /// connection included, e.g. `6s`: past it the call is abandoned, its connection
    /// discarded and the request answers `503 storage_unavailable` with `Retry-After`. It
    /// bounds what `statement_timeout` cannot, a frozen or partitioned database; 1ms to 10m
    /// [default: the statement timeout + 1s].
    #[arg(long, env = "FUTUREAUTH_DB_CALL_TIMEOUT", value_parser = db_timeout, global = true)]
    pub db_call_timeout: Option<Duration>,
}

impl DatabaseSettings {
    /// The database URL to use (the SQLite default when unset).
    pub fn url(&self) -> String {
        non_empty(&self.database_url).unwrap_or_else(|| DEFAULT_DATABASE_URL.into())
    }

    /// `--db-call-timeout`, by default a second above the statement timeout.
    pub fn db_call_timeout(&self) -> Duration {
        self.db_call_timeout
            .unwrap_or_else(|| self.db_statement_timeout() + Duration::from_secs(1))
    }
}

/// The delivery providers; a channel whose provider is unset goes to the dev outbox (none
/// set) or fails visibly (the other one set).
#[derive(Debug, Clone, Default, Args)]
pub struct ProviderSettings {
    /// Email through Resend.
    #[command(flatten)]
    pub resend: ResendConfig,
    /// SMS through Twilio.
    #[command(flatten)]
    pub twilio: TwilioConfig,
}

/// Email: Resend's flags and the default sender (see [`Config::resend`] for the settings in
/// effect).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Email (Resend)")]
pub struct ResendConfig {
    /// Resend API key; enables real email delivery.
    #[arg(long, env = "RESEND_API_KEY", global = true, hide_env_values = true, value_parser = Secret(any_secret))]
    pub resend_api_key: Option<SecretString>,

    /// Signing secret of Resend's status webhooks (`whsec_…`), shown by Resend when you add
    /// the endpoint `<public URL>/webhooks/resend`. Unset: that route answers 404
    /// `webhook_not_configured`.
    #[arg(long, env = "RESEND_WEBHOOK_SECRET", global = true, hide_env_values = true, value_parser = Secret(svix_secret))]
    pub resend_webhook_secret: Option<SecretString>,

    /// Resend API base URL.
    #[arg(long, env = "RESEND_API_URL", default_value = DEFAULT_RESEND_API_URL, global = true)]
    pub resend_api_url: String,

    /// Default `from` address of emails (a project's own `email_from` wins).
    #[arg(id = "default_email_from", long = "default-email-from", env = "EMAIL_FROM", default_value = DEFAULT_EMAIL_FROM, global = true)]
    pub email_from: String,
}

/// SMS: Twilio's flags (see [`Config::twilio`] for the settings in effect).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "SMS (Twilio)")]
pub struct TwilioConfig {
    /// Twilio account SID; with the auth token enables real SMS delivery.
    #[arg(long, env = "TWILIO_ACCOUNT_SID", global = true)]
    pub twilio_account_sid: Option<String>,

    /// Twilio auth token.
    #[arg(long, env = "TWILIO_AUTH_TOKEN", global = true, hide_env_values = true, value_parser = Secret(any_secret))]
    pub twilio_auth_token: Option<SecretString>,

    /// Twilio sender number (E.164). Either this or the messaging service SID is required.
    #[arg(long, env = "TWILIO_FROM_NUMBER", global = true)]
    pub twilio_from_number: Option<String>,

    /// Twilio messaging service SID (used instead of a from number).
    #[arg(long, env = "TWILIO_MESSAGING_SERVICE_SID", global = true)]
    pub twilio_messaging_service_sid: Option<String>,

    /// Twilio API base URL.
    #[arg(long, env = "TWILIO_API_URL", default_value = DEFAULT_TWILIO_API_URL, global = true)]
    pub twilio_api_url: String,
}

/// The server's rate limits (a project's own settings win where it has them).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Rate limits")]
pub struct LimitSettings {
    /// Max messages to one destination (per project) within the destination window: a short
    /// throttle, so nobody can use up a user's messages for long.
    #[arg(
        long,
        env = "FUTUREAUTH_LIMIT_PER_DESTINATION",
        default_value = "3",
        value_parser = at_least_one::<NonZeroU32>,
        global = true
    )]
    pub limit_per_destination: NonZeroU32,

    /// Length of the per-destination window, e.g. `60s`, `2m`, at least 1s [default: 1m].
    #[arg(long, env = "FUTUREAUTH_LIMIT_DESTINATION_WINDOW", value_parser = at_least_a_second, global = true)]
    pub limit_destination_window: Option<Duration>,

    /// Deprecated alias of `--limit-destination-window`, in seconds.
    #[arg(
        long,
        env = "FUTUREAUTH_LIMIT_DESTINATION_WINDOW_SECS",
        default_value = "60",
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub limit_destination_window_secs: u64,

    /// Max messages per project per minute, all channels (a ceiling far above what the SDK's
    /// per-IP limits let a handful of clients reach; see the README).
    #[arg(
        long,
        env = "FUTUREAUTH_LIMIT_PER_PROJECT_PER_MINUTE",
        default_value = "600",
        value_parser = at_least_one::<NonZeroU32>,
        global = true
    )]
    pub limit_per_project_per_minute: NonZeroU32,

    /// Default max SMS per project to one country per hour (a project's own setting wins).
    #[arg(
        long,
        env = "FUTUREAUTH_SMS_PER_COUNTRY_PER_HOUR",
        default_value = "1000",
        value_parser = at_least_one::<NonZeroU32>.map(NonZeroU32::get),
        global = true
    )]
    // A `u32` (refused at 0 all the same): `project create` has an option of this id, and
    // clap hands each of the two the other's value, so both must be of one type.
    pub sms_per_country_per_hour: u32,

    /// Default max SMS per project per hour, all countries (a project's own setting wins).
    #[arg(
        long,
        env = "FUTUREAUTH_SMS_PER_PROJECT_PER_HOUR",
        default_value = "2000",
        value_parser = at_least_one::<NonZeroU32>,
        global = true
    )]
    pub sms_per_project_per_hour: NonZeroU32,

    /// Default max SMS per project per day, all countries (a project's own setting wins).
    #[arg(
        long,
        env = "FUTUREAUTH_SMS_PER_PROJECT_PER_DAY",
        default_value = "20000",
        value_parser = at_least_one::<NonZeroU32>,
        global = true
    )]
    pub sms_per_project_per_day: NonZeroU32,
}

/// The outbox: its workers, retries, timeouts and retention.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Delivery")]
pub struct DeliverySettings {
    /// Maximum delivery attempts before a message is marked failed. With the default backoff
    /// base, 8 attempts span 4–6 minutes: a provider outage that short loses nothing.
    #[arg(
        long,
        env = "FUTUREAUTH_MAX_ATTEMPTS",
        default_value = "8",
        value_parser = at_least_one::<NonZeroU32>,
        global = true
    )]
    pub max_attempts: NonZeroU32,

    /// Base delay of the exponential retry backoff, e.g. `2s`, `500ms` [default: 2s].
    #[arg(long, env = "FUTUREAUTH_RETRY_BASE", value_parser = duration, global = true)]
    pub retry_base: Option<Duration>,

    /// Deprecated alias of `--retry-base`, in milliseconds.
    #[arg(
        long,
        env = "FUTUREAUTH_RETRY_BASE_MS",
        default_value_t = 2000,
        global = true
    )]
    pub retry_base_ms: u64,

    /// How often idle workers look for due messages (they are also woken on insert), e.g.
    /// `1s` [default: 1s].
    #[arg(long, env = "FUTUREAUTH_POLL_INTERVAL", value_parser = duration, global = true)]
    pub poll_interval: Option<Duration>,

    /// Deprecated alias of `--poll-interval`, in milliseconds.
    #[arg(
        long,
        env = "FUTUREAUTH_POLL_INTERVAL_MS",
        default_value_t = 1000,
        global = true
    )]
    pub poll_interval_ms: u64,

    /// How long a worker owns a claimed message before another may take it over, e.g. `1m`;
    /// longer than the provider timeout [default: 1m].
    #[arg(long, env = "FUTUREAUTH_LEASE", value_parser = duration, global = true)]
    pub lease: Option<Duration>,

    /// Deprecated alias of `--lease`, in milliseconds.
    #[arg(
        long,
        env = "FUTUREAUTH_LEASE_MS",
        default_value_t = 60_000,
        global = true
    )]
    pub lease_ms: u64,

    /// Number of concurrent delivery workers.
    #[arg(
        long,
        env = "FUTUREAUTH_WORKERS",
        default_value = "4",
        value_parser = at_least_one::<NonZeroUsize>,
        global = true
    )]
    pub workers: NonZeroUsize,

    /// Timeout of one provider HTTP request, e.g. `15s` [default: 15s].
    #[arg(long, env = "FUTUREAUTH_PROVIDER_TIMEOUT", value_parser = duration, global = true)]
    pub provider_timeout: Option<Duration>,

    /// Deprecated alias of `--provider-timeout`, in milliseconds.
    #[arg(
        long,
        env = "FUTUREAUTH_PROVIDER_TIMEOUT_MS",
        default_value_t = 15_000,
        global = true
    )]
    pub provider_timeout_ms: u64,

    /// Days finished (`sent` / `failed`) messages are kept before they are deleted; queued
    /// messages are never deleted. 1 to 36500.
    #[arg(
        long,
        env = "FUTUREAUTH_RETENTION_DAYS",
        default_value = "30",
        value_parser = clap::value_parser!(u64).range(1..=MAX_RETENTION_DAYS),
        global = true
    )]
    pub retention_days: u64,

    /// How long a queued message may wait for delivery, e.g. `15m`; older ones are marked
    /// `failed` with `expired_in_queue` instead of being sent (a sign-in code that late is
    /// useless). At least 1s [default: 15m].
    #[arg(long, env = "FUTUREAUTH_MAX_QUEUE_AGE", value_parser = at_least_a_second, global = true)]
    pub max_queue_age: Option<Duration>,

    /// Deprecated alias of `--max-queue-age`, in seconds.
    #[arg(
        long,
        env = "FUTUREAUTH_MAX_QUEUE_AGE_SECS",
        default_value_t = 900,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub max_queue_age_secs: u64,
}

impl DeliverySettings {
    /// How long finished messages are kept.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_days.saturating_mul(86_400))
    }
}

/// Accepted database timeouts in milliseconds (the deprecated `…_MS` aliases).
const DB_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 1..=600_000;

/// One `--trusted-proxies` entry: a CIDR, or a single address (`/32`, `/128`).
fn parse_trusted_proxy(raw: &str) -> Result<ipnet::IpNet, String> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{raw}` is not an IP address or CIDR (e.g. 10.0.0.0/8)"))
}

/// A count that must be at least 1 (`NonZeroU32`, `NonZeroUsize`).
fn at_least_one<T: FromStr<Err = ParseIntError>>(raw: &str) -> Result<T, String> {
    raw.trim()
        .parse()
        .map_err(|e: ParseIntError| match e.kind() {
            IntErrorKind::Zero => "must be at least 1".to_owned(),
            _ => format!("{e}: give a whole number, at least 1"),
        })
}

/// A duration flag's value in humantime's form: `500ms`, `2s`, `15m`, `1h 30m`.
fn duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw.trim())
        .map_err(|e| format!("{e}: write a duration such as 500ms, 2s, 15m or 1h 30m"))
}

/// A duration of at least a second (a window, a queue age).
fn at_least_a_second(raw: &str) -> Result<Duration, String> {
    let d = duration(raw)?;
    if d < Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(d)
}

/// A database timeout: from 1ms to 10m.
fn db_timeout(raw: &str) -> Result<Duration, String> {
    let d = duration(raw)?;
    if !(Duration::from_millis(1)..=Duration::from_secs(600)).contains(&d) {
        return Err("must be between 1ms and 10m".into());
    }
    Ok(d)
}

/// `DATABASE_URL`: Postgres or SQLite; empty is unset (the SQLite default).
fn database_url_flag(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    let known = ["postgres://", "postgresql://", "sqlite:"];
    if url.is_empty() || known.iter().any(|scheme| url.starts_with(scheme)) {
        return Ok(raw.to_owned());
    }
    Err("DATABASE_URL must start with postgres:// or sqlite:, e.g. postgres://user@host/db or sqlite://futureauth-server.db?mode=rwc".into())
}

/// `FUTUREAUTH_PUBLIC_URL`, checked by [`parse_public_url`]; empty is unset.
fn public_url_flag(raw: &str) -> Result<String, String> {
    if !raw.trim().is_empty() {
        parse_public_url(raw).map_err(|e| e.0)?;
    }
    Ok(raw.to_owned())
}

/// A value parser that trims the value first (an environment variable's stray spaces) and
/// keeps the inner parser's possible values for `--help`.
#[derive(Clone)]
struct Trimmed<P>(P);

impl<P: TypedValueParser> TypedValueParser for Trimmed<P> {
    type Value = P::Value;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<P::Value, clap::Error> {
        let trimmed = value.to_str().map_or(value, |s| OsStr::new(s.trim()));
        self.0.parse_ref(cmd, arg, trimmed)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        self.0.possible_values()
    }
}

/// The value parser of a secret flag: `check` runs on the trimmed value, and a refusal never
/// quotes it (clap's own errors repeat the value given, and a refused secret is still a
/// secret). Empty is accepted: an empty variable means unset.
#[derive(Clone, Copy)]
struct Secret(fn(&str) -> Result<(), String>);

impl TypedValueParser for Secret {
    type Value = SecretString;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<SecretString, clap::Error> {
        let refuse = |why: String| cmd.clone().error(ErrorKind::ValueValidation, why);
        let raw = value
            .to_str()
            .ok_or_else(|| refuse("a secret must be UTF-8".into()))?;
        if !raw.trim().is_empty() {
            (self.0)(raw.trim()).map_err(refuse)?;
        }
        Ok(raw.into())
    }
}

/// Any non-empty secret (an API key or token: the provider judges it).
fn any_secret(_: &str) -> Result<(), String> {
    Ok(())
}

/// `--server-secret`: long enough to key an HMAC.
fn server_secret_long_enough(secret: &str) -> Result<(), String> {
    if secret.len() < MIN_SERVER_SECRET_LEN {
        return Err(format!(
            "FUTUREAUTH_SERVER_SECRET / --server-secret must be at least {MIN_SERVER_SECRET_LEN} characters (e.g. `openssl rand -hex 32`), got {}",
            secret.len()
        ));
    }
    Ok(())
}

/// `RESEND_WEBHOOK_SECRET`: a Svix `whsec_…` secret.
fn svix_secret(secret: &str) -> Result<(), String> {
    SvixSecret::parse(secret)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A configuration that cannot work; the message says how to fix it.
#[derive(Debug, Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// Resend settings, present when `RESEND_API_KEY` is set.
#[derive(Debug, Clone)]
pub struct ResendSettings {
    /// API key (redacted in `Debug`).
    pub api_key: SecretString,
    /// Base URL.
    pub api_url: String,
}

/// How Twilio identifies the sender.
#[derive(Debug, Clone)]
pub enum TwilioSender {
    /// `From` = a phone number.
    FromNumber(String),
    /// `MessagingServiceSid` = a messaging service.
    MessagingService(String),
}

/// Twilio settings, present when the SID and token are set.
#[derive(Debug, Clone)]
pub struct TwilioSettings {
    /// Account SID (basic-auth user).
    pub account_sid: String,
    /// Auth token (basic-auth password; redacted in `Debug`).
    pub auth_token: SecretString,
    /// Sender.
    pub sender: TwilioSender,
    /// Base URL.
    pub api_url: String,
    /// Where Twilio reports each message's status (`StatusCallback`), when the public URL
    /// is configured.
    pub status_callback: Option<String>,
}

/// The provider status webhooks the server verifies ([`Config::webhooks`]).
#[derive(Debug, Clone, Default)]
pub struct WebhookSettings {
    /// Resend's signing secret.
    pub resend: Option<SvixSecret>,
    /// Twilio's: its auth token and the exact URL it posts to.
    pub twilio: Option<TwilioWebhook>,
}

/// What checks Twilio's `X-Twilio-Signature`.
#[derive(Debug, Clone)]
pub struct TwilioWebhook {
    /// The account's auth token (the HMAC key).
    pub auth_token: SecretString,
    /// The URL Twilio signs: `<public URL>/webhooks/twilio`.
    pub url: String,
}

/// Name of the database-kept request fingerprint key (table `server_secret`).
pub const FINGERPRINT_KEY_NAME: &str = "request_fingerprint";

/// The key of the HMAC over send requests (see [`Config::server_secret`]); redacted in
/// `Debug`.
#[derive(Debug, Clone)]
pub enum ServerSecret {
    /// From `--server-secret` / `FUTUREAUTH_SERVER_SECRET`.
    Configured(SecretSlice<u8>),
    /// Kept in the database, shared by every instance on it.
    Stored(SecretSlice<u8>),
}

impl ServerSecret {
    /// The key bytes.
    pub fn key(&self) -> &[u8] {
        match self {
            ServerSecret::Configured(k) | ServerSecret::Stored(k) => k.expose_secret(),
        }
    }
}

/// The duration settings in one table: each is given as `--name 2s` (human-readable) or, as
/// configurations written before those existed do, as its deprecated alias in a fixed unit
/// (`--name-ms 2000`, whose default is the setting's default). Generates the accessor of the
/// value in effect, on the group the setting belongs to, and the start-up check that refuses
/// both forms at once (which one was meant would be a guess).
macro_rules! durations {
    ($($group:ident . $name:ident, $alias:ident: $unit:ident, $flag:literal, $env:literal;)+) => {
        $(
            impl $group {
                #[doc = concat!("`--", $flag, "` / `", $env, "`, else its deprecated alias (or its default).")]
                pub fn $name(&self) -> Duration {
                    self.$name.unwrap_or(Duration::$unit(self.$alias))
                }
            }
        )+

        /// Refuses a duration given (on the command line or in the environment) in both its
        /// forms, naming the deprecated one to remove. Defaults do not count: the aliases
        /// have them.
        pub fn check_duration_aliases(matches: &clap::ArgMatches) -> Result<(), ConfigError> {
            $(
                if given(matches, stringify!($name)) && given(matches, stringify!($alias)) {
                    let alias = concat!(
                        "--", $flag, "-", durations!(@suffix $unit), " / ", $env, "_",
                        durations!(@env_suffix $unit)
                    );
                    return Err(ConfigError(format!(
                        "both --{} / {} and its deprecated alias {alias} are set: remove {alias}",
                        $flag, $env
                    )));
                }
            )+
            Ok(())
        }
    };
    (@suffix from_millis) => { "ms" };
    (@suffix from_secs) => { "secs" };
    (@env_suffix from_millis) => { "MS" };
    (@env_suffix from_secs) => { "SECS" };
}

/// Whether the argument `id` was given on the command line or in the environment.
fn given(matches: &clap::ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

durations! {
    DeliverySettings.retry_base, retry_base_ms: from_millis, "retry-base", "FUTUREAUTH_RETRY_BASE";
    DeliverySettings.poll_interval, poll_interval_ms: from_millis, "poll-interval", "FUTUREAUTH_POLL_INTERVAL";
    DeliverySettings.lease, lease_ms: from_millis, "lease", "FUTUREAUTH_LEASE";
    DeliverySettings.provider_timeout, provider_timeout_ms: from_millis, "provider-timeout", "FUTUREAUTH_PROVIDER_TIMEOUT";
    DeliverySettings.max_queue_age, max_queue_age_secs: from_secs, "max-queue-age", "FUTUREAUTH_MAX_QUEUE_AGE";
    DatabaseSettings.db_acquire_timeout, db_acquire_timeout_ms: from_millis, "db-acquire-timeout", "FUTUREAUTH_DB_ACQUIRE_TIMEOUT";
    DatabaseSettings.db_statement_timeout, db_statement_timeout_ms: from_millis, "db-statement-timeout", "FUTUREAUTH_DB_STATEMENT_TIMEOUT";
    LimitSettings.limit_destination_window, limit_destination_window_secs: from_secs, "limit-destination-window", "FUTUREAUTH_LIMIT_DESTINATION_WINDOW";
}

/// A secret setting's value, trimmed, when it is set and not blank.
pub(crate) fn non_empty_secret(v: &Option<SecretString>) -> Option<&str> {
    v.as_ref()
        .map(|s| s.expose_secret().trim())
        .filter(|s| !s.is_empty())
}

/// Whether `url`'s host is a loopback address or `localhost`.
fn url_is_loopback(url: &str) -> bool {
    match url::Url::parse(url).ok().as_ref().and_then(url::Url::host) {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks `FUTUREAUTH_PUBLIC_URL`: an http(s) URL with a host and nothing but an origin.
/// (Here, not in the console that uses it, so that configuration parses it itself.)
pub fn parse_public_url(raw: &str) -> Result<Url, ConfigError> {
    let bad = |why: &str| {
        ConfigError(format!(
            "FUTUREAUTH_PUBLIC_URL / --public-url `{raw}` {why}; use the URL browsers open, e.g. https://auth.example.com"
        ))
    };
    let url = Url::parse(raw.trim()).map_err(|_| bad("is not a URL"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(bad("must be http or https"));
    }
    if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must have a host and no credentials"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "must not have a path (the console lives at /dashboard)",
        ));
    }
    Ok(url)
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The rules the server runs by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Project webhooks may reach loopback and internal addresses (plain http to
    /// localhost); test mode applies without confirmation; the dev outbox may serve.
    Development,
    /// Project webhooks only reach public addresses; test mode needs `allow_in_production`.
    Production,
}

/// Why the server runs in its [`Mode`], for the start-up log and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeReason {
    /// `--production` or `FUTUREAUTH_ENV=production`.
    ExplicitProduction,
    /// `--dev`, `FUTUREAUTH_ENV=development` or `--insecure-dev-outbox` (named here).
    ExplicitDevelopment(&'static str),
    /// A provider is configured (named here).
    Providers(String),
    /// The listen address is not loopback.
    PublicListen(SocketAddr),
    /// Nothing configured, on loopback: development.
    LocalDefault,
}

impl std::fmt::Display for ModeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModeReason::ExplicitProduction => {
                f.write_str("--production / FUTUREAUTH_ENV=production is given")
            }
            ModeReason::ExplicitDevelopment(flag) => write!(f, "{flag} is given"),
            ModeReason::Providers(names) => write!(f, "{names} configured"),
            ModeReason::PublicListen(addr) => {
                write!(f, "the listen address {addr} is not loopback")
            }
            ModeReason::LocalDefault => {
                f.write_str("no provider is configured and the listen address is loopback")
            }
        }
    }
}

impl Config {
    /// Whether production rules apply ([`Config::mode`]).
    pub fn is_production(&self) -> bool {
        self.mode().0 == Mode::Production
    }

    /// The mode, decided from what the server is given, and why:
    ///
    /// 1. `--production` / `FUTUREAUTH_ENV=production`: production.
    /// 2. `--dev`, `FUTUREAUTH_ENV=development` or `--insecure-dev-outbox`: development
    ///    ([`Config::validate`] refuses these with a real provider).
    /// 3. Otherwise production as soon as a provider is configured or the listen address is
    ///    not loopback; development only for an unconfigured server on loopback.
    pub fn mode(&self) -> (Mode, ModeReason) {
        if self.explicit_production() {
            return (Mode::Production, ModeReason::ExplicitProduction);
        }
        if let Some(flag) = self.explicit_development() {
            return (Mode::Development, ModeReason::ExplicitDevelopment(flag));
        }
        let providers = self.configured_providers(false);
        if !providers.is_empty() {
            return (
                Mode::Production,
                ModeReason::Providers(providers.join(" and ")),
            );
        }
        if !self.listen.ip().is_loopback() {
            return (Mode::Production, ModeReason::PublicListen(self.listen));
        }
        (Mode::Development, ModeReason::LocalDefault)
    }

    fn explicit_production(&self) -> bool {
        self.production || self.environment == Some(Environment::Production)
    }

    /// The development flag given, if any.
    fn explicit_development(&self) -> Option<&'static str> {
        if self.dev {
            Some("--dev")
        } else if self.environment == Some(Environment::Development) {
            Some("FUTUREAUTH_ENV=development")
        } else if self.insecure_dev_outbox {
            Some("--insecure-dev-outbox / FUTUREAUTH_INSECURE_DEV_OUTBOX")
        } else {
            None
        }
    }

    /// The configured providers' variables; with `real_only`, only those whose API is not on
    /// loopback (a fake provider for tests runs on loopback and reaches nobody).
    fn configured_providers(&self, real_only: bool) -> Vec<&'static str> {
        let real = |url: &str| !real_only || !url_is_loopback(url);
        let mut names = Vec::new();
        if self.resend().is_some_and(|r| real(&r.api_url)) {
            names.push("RESEND_API_KEY");
        }
        let twilio = &self.providers.twilio;
        let configured = non_empty(&twilio.twilio_account_sid).is_some()
            || non_empty_secret(&twilio.twilio_auth_token).is_some();
        if configured && real(&twilio.twilio_api_url) {
            names.push("TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN");
        }
        names
    }

    /// Development flags against the rest of the configuration.
    fn check_mode(&self) -> Result<(), ConfigError> {
        let dev = self.explicit_development();
        if let (true, Some(flag)) = (self.explicit_production(), dev) {
            return Err(ConfigError(format!(
                "{flag} asks for development rules but --production / FUTUREAUTH_ENV=production \
                 for production rules: remove one of them"
            )));
        }
        let real = self.configured_providers(true);
        if let (Some(flag), false) = (dev, real.is_empty()) {
            return Err(ConfigError(format!(
                "{flag} turns off production rules (project webhooks could reach internal \
                 addresses), but real providers are configured ({}). Remove {flag}: with \
                 providers the server runs with production rules. For development, unset the \
                 provider keys and use the dev outbox instead.",
                real.join(", ")
            )));
        }
        Ok(())
    }

    /// Resend settings if configured.
    pub fn resend(&self) -> Option<ResendSettings> {
        let resend = &self.providers.resend;
        non_empty_secret(&resend.resend_api_key).map(|api_key| ResendSettings {
            api_key: api_key.into(),
            api_url: resend.resend_api_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The provider status webhooks this server can verify: Resend's with
    /// `RESEND_WEBHOOK_SECRET`, Twilio's when Twilio is configured and `FUTUREAUTH_PUBLIC_URL`
    /// says where Twilio reaches us (its signature covers that URL; a URL taken from the
    /// request's headers would let a forger choose it).
    pub fn webhooks(&self) -> Result<WebhookSettings, ConfigError> {
        let resend = non_empty_secret(&self.providers.resend.resend_webhook_secret)
            .map(|s| SvixSecret::parse(s).map_err(|e| ConfigError(e.to_string())))
            .transpose()?;
        let twilio = match (self.twilio()?, self.twilio_status_callback()?) {
            (Some(settings), Some(url)) => Some(TwilioWebhook {
                auth_token: settings.auth_token,
                url,
            }),
            _ => None,
        };
        Ok(WebhookSettings { resend, twilio })
    }

    /// Where Twilio posts status callbacks: `<FUTUREAUTH_PUBLIC_URL>/webhooks/twilio`.
    fn twilio_status_callback(&self) -> Result<Option<String>, ConfigError> {
        non_empty(&self.public_url)
            .map(|raw| {
                let url = parse_public_url(&raw)?;
                Ok(format!(
                    "{}/webhooks/twilio",
                    url.as_str().trim_end_matches('/')
                ))
            })
            .transpose()
    }

    /// Twilio settings if configured; an error if only partly configured.
    pub fn twilio(&self) -> Result<Option<TwilioSettings>, ConfigError> {
        let twilio = &self.providers.twilio;
        let sid = non_empty(&twilio.twilio_account_sid);
        let token = non_empty_secret(&twilio.twilio_auth_token);
        let from = non_empty(&twilio.twilio_from_number);
        let service = non_empty(&twilio.twilio_messaging_service_sid);
        match (sid, token) {
            (None, None) => {
                if from.is_some() || service.is_some() {
                    return Err(ConfigError(
                        "TWILIO_FROM_NUMBER / TWILIO_MESSAGING_SERVICE_SID is set but TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not: set both to enable SMS".into(),
                    ));
                }
                Ok(None)
            }
            (Some(_), None) => Err(ConfigError(
                "TWILIO_ACCOUNT_SID is set but TWILIO_AUTH_TOKEN is not: set TWILIO_AUTH_TOKEN"
                    .into(),
            )),
            (None, Some(_)) => Err(ConfigError(
                "TWILIO_AUTH_TOKEN is set but TWILIO_ACCOUNT_SID is not: set TWILIO_ACCOUNT_SID"
                    .into(),
            )),
            (Some(account_sid), Some(auth_token)) => {
                let sender = match (from, service) {
                    (_, Some(s)) => TwilioSender::MessagingService(s),
                    (Some(f), None) => TwilioSender::FromNumber(f),
                    (None, None) => {
                        return Err(ConfigError(
                            "Twilio is configured but has no sender: set TWILIO_FROM_NUMBER (e.g. +15551234567) or TWILIO_MESSAGING_SERVICE_SID".into(),
                        ))
                    }
                };
                Ok(Some(TwilioSettings {
                    account_sid,
                    auth_token: auth_token.into(),
                    sender,
                    api_url: twilio.twilio_api_url.trim_end_matches('/').to_owned(),
                    status_callback: self.twilio_status_callback()?,
                }))
            }
        }
    }

    /// Checks the rules between settings (clap has refused what one setting alone gets
    /// wrong): a half-configured Twilio, the development flags against real providers, the
    /// providers the mode needs, the lease against the provider timeout.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.webhooks()?;
        self.check_mode()?;
        self.check_providers_for_mode()?;
        self.check_lease()
    }

    /// Production rules need a provider, and `--production` both.
    fn check_providers_for_mode(&self) -> Result<(), ConfigError> {
        let resend = self.resend().is_some();
        let twilio = self.twilio()?.is_some();
        let (mode, reason) = self.mode();
        if mode == Mode::Production && !resend && !twilio {
            return Err(ConfigError(format!(
                "production rules apply ({reason}), and no provider is configured: every code \
                 and link would only be kept at /dev/outbox. Set RESEND_API_KEY and \
                 TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER (or \
                 TWILIO_MESSAGING_SERVICE_SID) to deliver for real, or listen on 127.0.0.1 \
                 (LISTEN_ADDR=127.0.0.1:8080) for a development server. To run a throwaway \
                 development server on the network, pass --dev (and --insecure-dev-outbox to \
                 serve the dev outbox, to loopback clients only)."
            )));
        }
        if !self.explicit_production() {
            return Ok(());
        }
        let missing: Vec<&str> = [
            (resend, "RESEND_API_KEY (email delivery through Resend)"),
            (twilio, "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID (SMS delivery through Twilio)"),
        ]
        .into_iter()
        .filter_map(|(configured, what)| (!configured).then_some(what))
        .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(ConfigError(format!(
            "production mode (--production / FUTUREAUTH_ENV=production) needs both providers; set {} (or run without --production / FUTUREAUTH_ENV=production: production rules then still apply, with one channel)",
            missing.join(" and ")
        )))
    }

    /// A claimed message's lease outlives its provider call, or a slow send is taken over
    /// and sent twice.
    fn check_lease(&self) -> Result<(), ConfigError> {
        let (lease, timeout) = (self.delivery.lease(), self.delivery.provider_timeout());
        if lease <= timeout {
            return Err(ConfigError(format!(
                "--lease ({}) must be longer than --provider-timeout ({}) so a slow send is not taken over",
                humantime::format_duration(lease),
                humantime::format_duration(timeout)
            )));
        }
        Ok(())
    }

    /// Refuses to serve the dev outbox (every code of every project, unauthenticated) on an
    /// address other than loopback, unless `--insecure-dev-outbox` asks for it.
    pub fn check_dev_outbox(
        &self,
        listen: SocketAddr,
        dev_outbox: bool,
    ) -> Result<(), ConfigError> {
        if !dev_outbox || listen.ip().is_loopback() || self.insecure_dev_outbox {
            return Ok(());
        }
        Err(ConfigError(format!(
            "no provider is configured, so every code and link would be readable by anyone at \
             http://{listen}/dev/outbox. Set RESEND_API_KEY and TWILIO_ACCOUNT_SID, \
             TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER (or TWILIO_MESSAGING_SERVICE_SID) to deliver \
             for real, or listen on 127.0.0.1 (LISTEN_ADDR=127.0.0.1:8080). To expose the dev \
             outbox anyway (throwaway test setups only), pass --insecure-dev-outbox or set \
             FUTUREAUTH_INSECURE_DEV_OUTBOX=true"
        )))
    }

    /// This configuration with `listen` set to the address really bound, which decides the
    /// mode ([`Config::mode`]).
    pub fn listening_on(&self, addr: SocketAddr) -> Config {
        Config {
            listen: addr,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn debug_output_never_shows_provider_keys_or_the_server_secret() {
        let mut config = super::Config {
            server_secret: Some("server_secret_do_not_log_0123456789".into()),
            ..super::Config::default()
        };
        config.providers.resend.resend_api_key = Some("re_do_not_log".into());
        config.providers.twilio = super::TwilioConfig {
            twilio_account_sid: Some("AC123".into()),
            twilio_auth_token: Some("twilio_do_not_log".into()),
            twilio_from_number: Some("+15551234567".into()),
            ..super::TwilioConfig::default()
        };
        let stored = super::ServerSecret::Stored(b"stored_do_not_log".to_vec().into());
        let shown = format!(
            "{config:?} {:?} {:?} {stored:?}",
            config.resend(),
            config.twilio().ok().flatten()
        );
        assert!(!shown.contains("do_not_log"), "{shown}");
        assert!(shown.contains("AC123"), "non-secrets still show: {shown}");
    }

    use clap::Parser;

    use crate::cli::Cli;

    #[test]
    fn default_retries_ride_out_minutes_of_provider_outage_within_the_queue_age() {
        let cli = Cli::try_parse_from(["futureauth-server"]).unwrap();
        let c = cli.config.delivery;
        assert_eq!(
            c.max_attempts,
            super::Config::default().delivery.max_attempts
        );
        // Time from the first attempt to the last, without and with the 50 % jitter.
        let shortest: std::time::Duration = (1..c.max_attempts.get())
            .map(|a| c.retry_base() * 2u32.pow(a - 1))
            .sum();
        let longest = shortest * 3 / 2;
        assert!(
            shortest >= std::time::Duration::from_secs(4 * 60),
            "{shortest:?}"
        );
        assert!(longest < c.max_queue_age(), "{longest:?}");
    }

    fn parse(flags: &[&str]) -> super::Config {
        let argv = std::iter::once("futureauth-server").chain(flags.iter().copied());
        Cli::try_parse_from(argv).unwrap().config
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let c = parse(&["--trusted-proxies", "127.0.0.1, 10.0.0.0/8,::1"]);
        let shown: Vec<String> = c.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
        assert!(parse(&[]).trusted_proxies.is_empty(), "none by default");
        let argv = ["futureauth-server", "--trusted-proxies", "proxy.internal"];
        assert!(Cli::try_parse_from(argv).is_err());
    }

    /// Every duration in effect, in table order.
    fn durations(c: &super::Config) -> [std::time::Duration; 8] {
        let (d, db) = (&c.delivery, &c.database);
        [
            d.retry_base(),
            d.poll_interval(),
            d.lease(),
            d.provider_timeout(),
            d.max_queue_age(),
            db.db_acquire_timeout(),
            db.db_statement_timeout(),
            c.limits.limit_destination_window(),
        ]
    }

    #[test]
    fn human_readable_durations_and_their_deprecated_aliases_give_the_same_config() {
        let human = parse(&[
            "--retry-base",
            "1500ms",
            "--poll-interval",
            "250ms",
            "--lease",
            "2m",
            "--provider-timeout",
            "20s",
            "--max-queue-age",
            "15m",
            "--db-acquire-timeout",
            "3s",
            "--db-statement-timeout",
            "1s 500ms",
            "--limit-destination-window",
            "2m",
        ]);
        let legacy = parse(&[
            "--retry-base-ms",
            "1500",
            "--poll-interval-ms",
            "250",
            "--lease-ms",
            "120000",
            "--provider-timeout-ms",
            "20000",
            "--max-queue-age-secs",
            "900",
            "--db-acquire-timeout-ms",
            "3000",
            "--db-statement-timeout-ms",
            "1500",
            "--limit-destination-window-secs",
            "120",
        ]);
        let ms = std::time::Duration::from_millis;
        let expected = [
            ms(1500),
            ms(250),
            ms(120_000),
            ms(20_000),
            ms(900_000),
            ms(3000),
            ms(1500),
            ms(120_000),
        ];
        assert_eq!(durations(&human), expected);
        assert_eq!(durations(&legacy), expected);
        assert!(human.validate().is_ok() && legacy.validate().is_ok());
        // Unset: the defaults the README lists.
        let defaults = parse(&[]);
        let s = std::time::Duration::from_secs;
        assert_eq!(
            durations(&defaults),
            [s(2), s(1), s(60), s(15), s(900), s(2), s(5), s(60)]
        );
        assert!(Cli::try_parse_from(["futureauth-server", "--lease", "2 parsecs"]).is_err());
        // One form with the other's default is no conflict.
        assert!(Cli::try_parse_checked_from(["futureauth-server", "--lease", "2m"]).is_ok());
        assert!(Cli::try_parse_checked_from(["futureauth-server", "--lease-ms", "9000"]).is_ok());
    }

    #[test]
    fn a_duration_set_in_both_forms_is_a_start_up_error_naming_both() {
        let refused = |flags: &[&str]| {
            let argv = std::iter::once("futureauth-server").chain(flags.iter().copied());
            Cli::try_parse_checked_from(argv).unwrap_err().to_string()
        };
        let err = refused(&["--lease", "2m", "--lease-ms", "120000"]);
        assert!(
            err.contains("--lease / FUTUREAUTH_LEASE ")
                && err.contains("remove --lease-ms / FUTUREAUTH_LEASE_MS"),
            "{err}"
        );
        let err = refused(&[
            "serve",
            "--max-queue-age",
            "15m",
            "--max-queue-age-secs",
            "900",
        ]);
        assert!(
            err.contains("--max-queue-age / FUTUREAUTH_MAX_QUEUE_AGE ")
                && err.contains("remove --max-queue-age-secs / FUTUREAUTH_MAX_QUEUE_AGE_SECS"),
            "{err}"
        );
    }

    #[test]
    fn the_mode_follows_from_what_the_server_is_given() {
        use super::{Config, Mode};
        let mode = |c: &Config| c.mode().0;
        let mut real_resend = Config::default();
        real_resend.providers.resend.resend_api_key = Some("re_live".into());
        let mut fake_resend = real_resend.clone();
        fake_resend.providers.resend.resend_api_url = "http://127.0.0.1:9".into();
        let public = Config {
            listen: "0.0.0.0:8080".parse().unwrap(),
            ..Config::default()
        };
        let mut twilio = Config::default();
        twilio.providers.twilio = super::TwilioConfig {
            twilio_account_sid: Some("AC1".into()),
            twilio_auth_token: Some("t".into()),
            twilio_from_number: Some("+12015550123".into()),
            ..super::TwilioConfig::default()
        };
        assert_eq!(mode(&Config::default()), Mode::Development);
        assert_eq!(mode(&real_resend), Mode::Production);
        assert_eq!(mode(&fake_resend), Mode::Production, "configured is enough");
        assert_eq!(mode(&twilio), Mode::Production);
        assert_eq!(mode(&public), Mode::Production);
        assert_eq!(mode(&parse(&["--production"])), Mode::Production);
        assert_eq!(mode(&parse(&["--env", "PRODUCTION"])), Mode::Production);
        let dev = |c: &Config| Config {
            dev: true,
            ..c.clone()
        };
        assert_eq!(mode(&dev(&public)), Mode::Development);
        assert!(dev(&public).validate().is_ok());
        assert_eq!(mode(&dev(&fake_resend)), Mode::Development);
        assert!(
            dev(&fake_resend).validate().is_ok(),
            "a loopback fake reaches nobody"
        );
        for with_real in [dev(&real_resend), dev(&twilio)] {
            let err = with_real.validate().unwrap_err().to_string();
            assert!(err.contains("Remove --dev"), "{err}");
        }
        let env_dev = Config {
            environment: Some(super::Environment::Development),
            ..real_resend.clone()
        };
        let err = env_dev.validate().unwrap_err().to_string();
        assert!(err.contains("Remove FUTUREAUTH_ENV=development"), "{err}");
        // Production from a public address needs a provider.
        let err = public.validate().unwrap_err().to_string();
        assert!(
            err.contains("0.0.0.0:8080") && err.contains("--dev"),
            "{err}"
        );
        assert!(real_resend.validate().is_ok(), "one channel is enough");
        let both = Config {
            production: true,
            dev: true,
            ..Config::default()
        };
        assert!(both
            .validate()
            .unwrap_err()
            .to_string()
            .contains("remove one"));
        let odd = Cli::try_parse_from(["futureauth-server", "--env", "staging"]);
        assert!(odd.unwrap_err().to_string().contains("staging"));
    }

    #[test]
    fn retention_days_flag_defaults_to_30_and_must_be_positive() {
        let cli = Cli::try_parse_from(["futureauth-server"]).unwrap();
        assert_eq!(cli.config.delivery.retention_days, 30);
        assert_eq!(
            cli.config.delivery.retention(),
            std::time::Duration::from_secs(30 * 86_400)
        );
        let cli =
            Cli::try_parse_from(["futureauth-server", "serve", "--retention-days", "7"]).unwrap();
        assert_eq!(cli.config.delivery.retention_days, 7);
        assert!(cli.config.validate().is_ok());
        let refused = Cli::try_parse_from(["futureauth-server", "--retention-days", "0"]);
        let err = refused.unwrap_err().to_string();
        assert!(err.contains("--retention-days"), "{err}");
    }
}
