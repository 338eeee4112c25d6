//! Accepting a send request: parse, check the project's SMS policy and the limits, render,
//! write to the outbox.

use std::sync::Arc;

use futureauth_proto::{
    CallbackUrl, Email, InvalidCallbackUrl, Locale, Message as SendMessage, OtpCode, Phone,
    Purpose, Region,
};
use tokio::sync::Notify;

use super::fingerprint::Fingerprinter;
use super::ids::{IdempotencyKey, MessageId};
use super::render::{Rendered, Templates};
use super::templates::Overridable;
use super::validate::{CodePurpose, Content};
use crate::clock::UnixMillis;
use crate::config::{Config, ServerSecret};
use crate::error::{ErrorCode, ServiceError, StoreError};
use crate::provider::{EmailMessage, Outgoing, SmsMessage};
use crate::store::{
    EnqueueOutcome, LimitHit, Message, MessageStatus, NewMessage, Project, RateBucket,
    SendOverrides, Store,
};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The server's default SMS caps; a project's own setting wins.
#[derive(Debug, Clone, Copy)]
pub struct SmsLimits {
    /// SMS per project and country per hour.
    pub per_country_per_hour: u32,
    /// SMS per project per hour.
    pub per_hour: u32,
    /// SMS per project per day.
    pub per_day: u32,
}

/// Abuse limits (fixed windows, counted in the database so instances share them).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Messages per project and recipient per window: a short throttle.
    pub per_destination: u32,
    /// That window, in milliseconds.
    pub destination_window_ms: i64,
    /// Messages per project per minute.
    pub per_project_per_minute: u32,
    /// Default SMS caps.
    pub sms: SmsLimits,
}

impl Limits {
    /// From the configuration.
    pub fn from_config(c: &Config) -> Limits {
        Limits {
            per_destination: c.limits.limit_per_destination.get(),
            destination_window_ms: i64::try_from(c.limits.limit_destination_window().as_millis())
                .unwrap_or(i64::MAX),
            per_project_per_minute: c.limits.limit_per_project_per_minute.get(),
            sms: SmsLimits {
                per_country_per_hour: c.limits.sms_per_country_per_hour,
                per_hour: c.limits.sms_per_project_per_hour.get(),
                per_day: c.limits.sms_per_project_per_day.get(),
            },
        }
    }

    /// The counters one message increments: per recipient, per project, and for SMS per
    /// country, per project hour and per project day. The per-recipient and per-minute
    /// limits are the project's console overrides when it has them.
    fn buckets(
        &self,
        project: &Project,
        overrides: &SendOverrides,
        content: &Content,
        region: Option<Region>,
    ) -> Vec<RateBucket> {
        let id = &project.id;
        let pick =
            |v: Option<i64>, default: u32| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(default);
        let mut buckets = vec![
            RateBucket {
                key: format!("dest:{id}:{}", content.recipient_key()),
                window_ms: self.destination_window_ms,
                limit: pick(overrides.per_destination, self.per_destination),
                scope: "destination",
                sharded: false,
            },
            RateBucket {
                key: format!("project:{id}"),
                window_ms: MINUTE_MS,
                limit: pick(overrides.per_minute, self.per_project_per_minute),
                scope: "project",
                sharded: true,
            },
        ];
        if let Some(region) = region {
            let caps = project.sms_caps;
            buckets.extend([
                RateBucket {
                    key: format!("smscountry:{id}:{region}"),
                    window_ms: HOUR_MS,
                    limit: caps
                        .per_country_per_hour
                        .unwrap_or(self.sms.per_country_per_hour),
                    scope: "sms_country",
                    sharded: true,
                },
                RateBucket {
                    key: format!("smshour:{id}"),
                    window_ms: HOUR_MS,
                    limit: caps.per_hour.unwrap_or(self.sms.per_hour),
                    scope: "sms_project_hour",
                    sharded: true,
                },
                RateBucket {
                    key: format!("smsday:{id}"),
                    window_ms: DAY_MS,
                    limit: caps.per_day.unwrap_or(self.sms.per_day),
                    scope: "sms_project_day",
                    sharded: true,
                },
            ]);
        }
        buckets
    }
}

/// Accepts send requests and answers status queries.
#[derive(Debug, Clone)]
pub struct SendService {
    store: Store,
    templates: Arc<Templates>,
    limits: Limits,
    default_email_from: String,
    fingerprinter: Fingerprinter,
    wake: Arc<Notify>,
    destination_hasher: super::console::DestinationHasher,
    /// Test mode applies in production only where an operator confirmed it.
    production: bool,
}

/// Result of an accepted send.
#[derive(Debug)]
pub struct Accepted {
    /// The outbox message.
    pub message: Message,
    /// `true` when an `Idempotency-Key` matched an earlier request (nothing new was written).
    pub replayed: bool,
    /// For a test destination of the project's test mode: its fixed code (nothing is sent).
    pub test_code: Option<String>,
}

/// The limit a refused send reports: of all the limits hit, the one that resets last, since
/// retrying earlier would be refused again.
fn binding_limit(hits: &[LimitHit]) -> ServiceError {
    // `rev`: on a tie, the first hit (in bucket order) binds, as `max_by_key` keeps the last.
    let worst = hits.iter().rev().max_by_key(|h| h.retry_after_ms);
    let (scope, retry_after_ms) = worst.map_or(("project", 0), |h| (h.scope, h.retry_after_ms));
    ServiceError::RateLimited {
        scope,
        retry_after_secs: u64::try_from(retry_after_ms.max(0))
            .unwrap_or(0)
            .div_ceil(1000)
            .max(1),
    }
}

/// A send request parsed at the edge: the typed content, locale and callback travel from
/// here to rendering, and nothing past [`SendRequest::parse`] reads the raw request for a
/// decision again.
#[derive(Debug, Clone)]
pub struct SendRequest {
    /// What to send, to whom.
    content: Content,
    /// The recipient's language, if the app named one.
    locale: Option<Locale>,
    /// Why it is sent.
    purpose: Purpose,
    /// For an SMS, the country it goes to (allowed for the project).
    region: Option<Region>,
    /// For a magic link, the page it opens (its origin allowed for the project).
    callback: Option<CallbackUrl>,
    /// The request as the app sent it, only to be shown again beside the rendered message
    /// in the dev outbox (the SDK's dev-outbox shape).
    wire: SendMessage,
}

impl SendRequest {
    /// Parses `req` for `project`: its content, the project's SMS countries, its locale and,
    /// for a magic link, its callback. The first problem found is the 422 returned.
    pub fn parse(project: &Project, req: &SendMessage) -> Result<SendRequest, ServiceError> {
        let content = Content::parse(req)?;
        let region = sms_region(project, &content)?;
        let locale = req
            .locale
            .as_deref()
            .map(Locale::parse)
            .transpose()
            .map_err(|e| ServiceError::validation(ErrorCode::InvalidLocale, e.to_string()))?;
        let callback = match &content {
            Content::MagicLink { token, .. } => Some(callback(project, req, token.as_str())?),
            _ => None,
        };
        Ok(SendRequest {
            content,
            locale,
            purpose: req.purpose(),
            region,
            callback,
            wire: req.clone(),
        })
    }

    /// For a magic link, the link: its callback with the token appended.
    fn link(&self) -> Option<String> {
        match (&self.content, &self.callback) {
            (Content::MagicLink { token, .. }, Some(cb)) => {
                Some(cb.link(token.as_str()).to_string())
            }
            _ => None,
        }
    }

    /// The wire message kept beside the rendered one (dev outbox): the request with the
    /// destination as delivered, the project's registered name and the link as built.
    fn echo(&self, project_name: &str, link: Option<&str>) -> SendMessage {
        SendMessage {
            destination: self.content.destination().to_owned(),
            project_name: project_name.to_owned(),
            link: link.map(str::to_owned),
            ..self.wire.clone()
        }
    }
}

/// The page a magic link opens: the request's `callback_url`, else its whole `link` (whose
/// token must be the request's), else the project's default callback URL; its origin must
/// be one the project allows.
fn callback(
    project: &Project,
    req: &SendMessage,
    token: &str,
) -> Result<CallbackUrl, ServiceError> {
    let not_allowed = |what: &str, cb: &CallbackUrl| {
        let origin = cb.as_url().origin().ascii_serialization();
        (!project.allowed_origins.contains(&origin)).then(|| {
            ServiceError::validation(
                ErrorCode::CallbackNotAllowed,
                format!("{what} origin `{origin}` is not an allowed origin of this project"),
            )
        })
    };
    let invalid = |what: &str, raw: &str, e: InvalidCallbackUrl| {
        ServiceError::validation(
            ErrorCode::CallbackNotAllowed,
            format!("{what}: `{raw}` {e}"),
        )
    };
    if let Some(raw) = req.callback_url.as_deref() {
        let cb = CallbackUrl::parse(raw).map_err(|e| invalid("callback_url", raw, e))?;
        return not_allowed("callback_url", &cb).map_or(Ok(cb), Err);
    }
    if let Some(raw) = req.link.as_deref() {
        let wrong_token = || {
            ServiceError::validation(
                ErrorCode::InvalidLink,
                "link must carry exactly one `token` query parameter equal to `code`",
            )
        };
        // Refused alike whether the link has no, two, or an oddly spelled token.
        let (cb, given) = CallbackUrl::parse_link(raw).map_err(|e| match e {
            InvalidCallbackUrl::TokenCount => wrong_token(),
            e => invalid("link", raw, e),
        })?;
        if let Some(e) = not_allowed("link", &cb) {
            return Err(e);
        }
        return if given == token {
            Ok(cb)
        } else {
            Err(wrong_token())
        };
    }
    match project.callback_url.as_deref() {
        Some(raw) => CallbackUrl::parse(raw).map_err(|e| invalid("project callback URL", raw, e)),
        None => Err(ServiceError::validation(
            ErrorCode::CallbackUrlRequired,
            "this project has no default callback URL: send `callback_url` or configure one with `futureauth-server project create --callback-url`",
        )),
    }
}

/// A rendered message and its recipient, before it becomes an [`Outgoing`].
enum Words<'r> {
    /// An email.
    Email(&'r Email, super::render::RenderedEmail),
    /// An SMS body.
    Sms(&'r Phone, String),
}

/// The country of an SMS destination, if the project may text it.
fn sms_region(project: &Project, content: &Content) -> Result<Option<Region>, ServiceError> {
    // Every SMS, a code or a notice, costs the same and obeys the same countries and caps.
    let (Content::SmsCode { to, .. } | Content::SmsNotice { to, .. }) = content else {
        return Ok(None);
    };
    let allowed = project
        .sms_countries
        .iter()
        .map(Region::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    match to.region() {
        Some(region) if project.sms_countries.contains(&region) => Ok(Some(region)),
        Some(region) => Err(ServiceError::validation(
            ErrorCode::SmsCountryNotAllowed,
            format!(
                "SMS to {region} is not enabled for this project (allowed: {allowed}); add it with `futureauth-server project update --sms-countries`"
            ),
        )),
        None => Err(ServiceError::validation(
            ErrorCode::SmsCountryNotAllowed,
            format!(
                "{} is not a number in service in any country (allowed: {allowed})",
                to.as_str()
            ),
        )),
    }
}

impl SendService {
    /// In production, test mode applies only to projects whose operator confirmed it.
    pub fn in_production(mut self, production: bool) -> Self {
        self.production = production;
        self
    }

    /// A service writing to `store` and waking workers through `wake`; request fingerprints
    /// are keyed by `secret`.
    pub fn new(
        store: Store,
        limits: Limits,
        default_email_from: String,
        secret: &ServerSecret,
        wake: Arc<Notify>,
    ) -> Result<SendService, ServiceError> {
        Ok(SendService {
            store,
            templates: Arc::new(Templates::new()?),
            limits,
            default_email_from,
            fingerprinter: Fingerprinter::new(secret),
            wake,
            destination_hasher: Default::default(),
            production: false,
        })
    }

    /// Rate-limits, renders (in the requested locale, with the project's own wording) and
    /// enqueues a request parsed at the edge ([`SendRequest::parse`]). Limited requests write
    /// nothing.
    pub async fn send(
        &self,
        project: &Project,
        request: &SendRequest,
        idempotency_key: Option<&IdempotencyKey>,
    ) -> Result<Accepted, ServiceError> {
        let content = &request.content;
        // The project's console settings (rate limits, message wording): one query.
        let overrides = self.store.send_overrides(&project.id).await?;
        let (outgoing, link) = self.render(project, request, &overrides)?;
        let buckets = self
            .limits
            .buckets(project, &overrides, content, request.region);
        // Test mode: a listed destination is logged, never sent, and signs in with the fixed
        // code (an app-store reviewer, CI).
        let test_code = overrides
            .test_mode
            .as_ref()
            .and_then(|t| super::test_mode::code_for(t, content.destination(), self.production))
            .map(str::to_owned);
        let payload = serde_json::to_string(&outgoing)
            .map_err(|e| ServiceError::Template(format!("cannot encode payload: {e}")))?;
        let msg = NewMessage {
            id: MessageId::generate().as_str().to_owned(),
            project_id: project.id.clone(),
            channel: content.channel().into(),
            destination: content.destination().to_owned(),
            payload,
            idempotency_key: idempotency_key.map(|k| k.as_str().to_owned()),
            request_hash: idempotency_key.map(|_| self.fingerprint(request, link.as_deref())),
            destination_hash: self.destination_hash(content.destination()).await,
            test: test_code.is_some(),
        };
        let mut accepted = self.enqueue(&msg, &buckets).await?;
        if !accepted.replayed && test_code.is_none() {
            self.wake.notify_one();
        }
        // A code, not a link or a notice: a test destination's link or notice is only
        // logged.
        if accepted.message.status == MessageStatus::Test
            && content.carries_code()
            && !matches!(content, Content::MagicLink { .. })
        {
            accepted.test_code = test_code;
        }
        Ok(accepted)
    }

    /// The fingerprint stored with an idempotency key: what was asked (channel, destination,
    /// code or token, the magic link), to tell a replay from a different request.
    fn fingerprint(&self, request: &SendRequest, link: Option<&str>) -> String {
        let content = &request.content;
        let mut parts = vec![
            content.channel().as_str(),
            content.destination(),
            content.secret(),
            link.unwrap_or(""),
        ];
        // A purpose other than sign-in is part of what was asked; a sign-in's fingerprint
        // stays what it was, so keys of older requests still replay.
        if request.purpose != Purpose::SignIn {
            parts.push(request.purpose.as_str());
        }
        self.fingerprinter.fingerprint(&parts)
    }

    /// The message as the provider gets it, in the requested locale with the project's own
    /// wording, and (for a magic link) the link it carries.
    fn render(
        &self,
        project: &Project,
        request: &SendRequest,
        overrides: &SendOverrides,
    ) -> Result<(Outgoing, Option<String>), ServiceError> {
        let link = request.link();
        // The message in the wire's own words, kept beside the rendered one for the dev
        // outbox: the same shape as the SDK's dev outbox lists.
        let echo = request.echo(&project.name, link.as_deref());
        let outgoing = match self.words(&project.name, request, overrides, link.as_deref())? {
            Words::Email(to, e) => self.email(project, to, e, echo),
            Words::Sms(to, body) => Outgoing::Sms(SmsMessage {
                to: to.as_str().to_owned(),
                body,
                request: Some(echo),
            }),
        };
        Ok((outgoing, link))
    }

    /// What the message says, in the request's locale: the project's own wording for a
    /// sign-in code (console templates), the server's for everything else.
    fn words<'r>(
        &self,
        name: &str,
        request: &'r SendRequest,
        overrides: &SendOverrides,
        link: Option<&str>,
    ) -> Result<Words<'r>, ServiceError> {
        let locale = Templates::pick(request.locale.as_ref());
        let t = &self.templates;
        Ok(match &request.content {
            Content::EmailCode { to, code, purpose } => {
                Words::Email(to, self.code(locale, name, code, *purpose, overrides)?)
            }
            Content::SmsCode { to, code, purpose } => {
                Words::Sms(to, self.code(locale, name, code, *purpose, overrides)?)
            }
            Content::EmailNotice { to, new_address } => {
                Words::Email(to, t.notice(locale, name, new_address.as_str())?)
            }
            Content::SmsNotice { to, new_address } => {
                Words::Sms(to, t.notice(locale, name, new_address.as_str())?)
            }
            Content::MagicLink {
                to, code, purpose, ..
            } => {
                let link = link.ok_or_else(|| {
                    ServiceError::Template("a magic link was parsed without its callback".into())
                })?;
                let code = code.as_ref().map(OtpCode::as_str);
                Words::Email(to, self.link_email(locale, name, link, code, *purpose)?)
            }
        })
    }

    /// A code message on its channel: a sign-in code in the project's own wording where it
    /// has one, a code confirming a new address always in the server's.
    fn code<R: Rendered + Overridable>(
        &self,
        locale: &str,
        name: &str,
        code: &OtpCode,
        purpose: CodePurpose,
        overrides: &SendOverrides,
    ) -> Result<R, ServiceError> {
        let code = code.as_str();
        Ok(match purpose {
            CodePurpose::SignIn => {
                let built_in: R = self.templates.otp(locale, name, code)?;
                built_in.overridden(&overrides.templates, name, code)
            }
            CodePurpose::ConfirmAddress => {
                self.templates.confirm_address(locale, name, code, None)?
            }
        })
    }

    /// A magic link's email: a sign-in, or the confirmation of a new address (with its code).
    fn link_email(
        &self,
        locale: &str,
        name: &str,
        link: &str,
        code: Option<&str>,
        purpose: CodePurpose,
    ) -> Result<super::render::RenderedEmail, ServiceError> {
        match (purpose, code) {
            // `parse` made sure a confirm-address link has its code.
            (CodePurpose::ConfirmAddress, Some(code)) => {
                self.templates
                    .confirm_address(locale, name, code, Some(link))
            }
            _ => self.templates.magic_link_email(locale, name, link, code),
        }
    }

    /// The outbox write and its policy: a known `Idempotency-Key` replays the original
    /// message (or is refused if the request differs) and writes nothing; of several limits
    /// hit at once, the one that resets last binds.
    async fn enqueue(
        &self,
        msg: &NewMessage,
        buckets: &[RateBucket],
    ) -> Result<Accepted, ServiceError> {
        if let Some(accepted) = self.replay(msg).await? {
            return Ok(accepted);
        }
        match self.store.enqueue(msg, buckets, UnixMillis::now()).await? {
            EnqueueOutcome::Created(message) => Ok(Accepted {
                message,
                replayed: false,
                test_code: None,
            }),
            EnqueueOutcome::OverLimit(hits) => Err(binding_limit(&hits)),
            // A concurrent request with the same key won the race: answer like a replay.
            EnqueueOutcome::DuplicateKey => self.replay(msg).await?.ok_or_else(|| {
                StoreError::Corrupt(format!("message {} collided with no key", msg.id)).into()
            }),
        }
    }

    /// The earlier message with `msg`'s idempotency key: replayed when the request is the
    /// same, a conflict when it differs. `None` without a key or an earlier message.
    async fn replay(&self, msg: &NewMessage) -> Result<Option<Accepted>, ServiceError> {
        let Some(key) = &msg.idempotency_key else {
            return Ok(None);
        };
        let Some(existing) = self
            .store
            .find_by_idempotency_key(&msg.project_id, key)
            .await?
        else {
            return Ok(None);
        };
        if msg.request_hash.is_some() && existing.request_hash == msg.request_hash {
            Ok(Some(Accepted {
                message: existing,
                replayed: true,
                test_code: None,
            }))
        } else {
            Err(ServiceError::IdempotencyConflict)
        }
    }

    /// The destination's search hash, stored with the message by the same insert. Without
    /// it the message is still sent; only the delivery log's search cannot find it.
    async fn destination_hash(&self, dest: &str) -> Option<String> {
        match self.destination_hasher.hash(&self.store, dest).await {
            Ok(hash) => Some(hash),
            Err(e) => {
                tracing::warn!(error = %e, "cannot compute the destination hash");
                None
            }
        }
    }

    /// The keyed hash used for the delivery log's destination search.
    pub fn destination_hasher(&self) -> &super::console::DestinationHasher {
        &self.destination_hasher
    }

    /// A message of this project.
    pub async fn status(&self, project: &Project, id: &MessageId) -> Result<Message, ServiceError> {
        self.store
            .get_message(&project.id, id.as_str())
            .await?
            .ok_or(ServiceError::NotFound)
    }

    fn email(
        &self,
        project: &Project,
        to: &Email,
        e: super::render::RenderedEmail,
        request: SendMessage,
    ) -> Outgoing {
        Outgoing::Email(EmailMessage {
            request: Some(request),
            from: project
                .email_from
                .clone()
                .unwrap_or_else(|| self.default_email_from.clone()),
            to: to.as_str().to_owned(),
            subject: e.subject,
            text: e.text,
            html: e.html,
        })
    }
}
