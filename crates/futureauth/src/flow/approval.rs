//! A magic link opened on another device than the one that asked.
//!
//! The page that opens it shows who asked ([`request`]) and offers to sign in *that*
//! browser instead: approval is a gift to whoever asked, so an attacker who asks for a link
//! to someone else's address must not get it from a careless click. The asking browser
//! shows a two-digit number; the approving page only approves when the person types it
//! ([`approve`]), and a wrong number voids the link. The asking browser, polling with its
//! binding cookie ([`status`]), then receives the session; the approving browser never does.

use chrono::{DateTime, Utc};

use super::magic_link::link_token;
use super::{session, start_verify, Ctx};
use crate::context::RequestContext;
use crate::error::{FutureAuthError, Result};
use crate::identifier::Identifier;
use crate::model::{AuthMethod, LinkRequest, LinkStatus};
use crate::store::Approval;
use crate::token::{ct_eq, hash_token};

/// The live link of `token`, as the browser of `req` may see and use it; `None` if it is
/// unknown, used, approved or expired. Reads only: opening a link changes nothing.
pub(crate) async fn request(
    ctx: &Ctx<'_>,
    token: &str,
    req: &RequestContext,
) -> Result<Option<LinkRequest>> {
    let Ok(token) = link_token(token) else {
        return Ok(None);
    };
    let Some(row) = ctx.store.link_request(&hash_token(token)).await? else {
        return Ok(None);
    };
    let expires_at: DateTime<Utc> = row.expires_at.into();
    if expires_at <= Utc::now() {
        return Ok(None);
    }
    let mine = req.binding.as_ref().map(|b| b.hash());
    let same_browser = matches!(
        (row.requester_hash.as_deref(), mine.as_deref()),
        (Some(asked), Some(mine)) if ct_eq(asked, mine)
    );
    Ok(Some(LinkRequest {
        requested_at: row.created_at.into(),
        expires_at,
        ip_address: row.requester_ip,
        device: row.requester_agent.as_deref().and_then(describe_agent),
        same_browser,
        approvable: !same_browser && row.requester_hash.is_some(),
        sign_in_here: same_browser || !ctx.config.magic_link_same_browser,
    }))
}

/// Approves the link of `token` for the browser that asked, if `number` is the one it
/// shows. A wrong number voids the link (and its code): there is no second guess.
pub(crate) async fn approve(
    ctx: &Ctx<'_>,
    token: &str,
    number: &str,
    req: &RequestContext,
) -> Result<()> {
    let token = link_token(token)?;
    let number = number.trim();
    if number.len() != 2 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FutureAuthError::InvalidInput(
            "type the two-digit number the other device shows".to_string(),
        ));
    }
    let now = start_verify(ctx, req).await?;
    match ctx
        .store
        .approve_magic_link(&hash_token(token), number, now)
        .await?
    {
        Approval::Approved => Ok(()),
        Approval::Mismatch => Err(FutureAuthError::MagicLinkNumberMismatch),
        Approval::Expired => Err(FutureAuthError::MagicLinkExpired),
        Approval::Unknown => Err(FutureAuthError::InvalidMagicLink),
    }
}

/// For the browser of `req` (its binding): signs it in if a link it asked for was approved,
/// else the number to show while one waits.
pub(crate) async fn status(ctx: &Ctx<'_>, req: &RequestContext) -> Result<LinkStatus> {
    let Some(binding) = &req.binding else {
        return Ok(LinkStatus::Nothing);
    };
    let hash = binding.hash();
    let now = Utc::now();
    if let Some(identifier) = ctx.store.claim_approved_link(&hash, now).await? {
        let identifier =
            Identifier::parse(&identifier).map_err(|_| FutureAuthError::InvalidMagicLink)?;
        let (user, session) =
            session::sign_in(ctx, &identifier, req, AuthMethod::MagicLink, now).await?;
        return Ok(LinkStatus::SignedIn(Box::new((user, session))));
    }
    Ok(match ctx.store.waiting_link(&hash, now).await? {
        Some(match_number) => LinkStatus::Waiting { match_number },
        None => LinkStatus::Nothing,
    })
}

/// "Firefox on Linux", from a `User-Agent`: enough for a person to recognise (or not) the
/// device that asked. Order matters: Edge and Opera also say Chrome, Chrome also says Safari.
pub(crate) fn describe_agent(agent: &str) -> Option<String> {
    const BROWSERS: &[(&str, &str)] = &[
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ];
    const SYSTEMS: &[(&str, &str)] = &[
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("CrOS", "ChromeOS"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ];
    let find = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(needle, _)| agent.contains(needle))
            .map(|(_, name)| *name)
    };
    match (find(BROWSERS), find(SYSTEMS)) {
        (Some(browser), Some(system)) => Some(format!("{browser} on {system}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::describe_agent;

    #[test]
    fn names_common_browsers() {
        let cases = [
            ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Linux"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on macOS"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on Windows"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "Safari on iOS"),
            ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome on Android"),
        ];
        for (agent, want) in cases {
            assert_eq!(describe_agent(agent).as_deref(), Some(want), "{agent}");
        }
        assert_eq!(describe_agent("curl/8.5.0"), None);
    }
}
