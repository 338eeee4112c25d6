//! Every error code the server answers with, in one table.

futureauth_proto::error_code_table! {
    /// Every error code the server answers with, in one table: the `code` of
    /// `{"error": {"code", "message"}}`, with the HTTP status it is always sent with. The
    /// codes it shares with the SDK come from [`futureauth_proto::CommonCode`] (one name, one
    /// status for both). Clients rely on these strings; the README's table of error codes
    /// lists them all (checked by a test).
    ///
    /// ```
    /// use futureauth_server::error::ErrorCode;
    /// assert_eq!(ErrorCode::InvalidApiKey.as_str(), "invalid_api_key");
    /// assert_eq!(ErrorCode::RateLimited.status().as_u16(), 429);
    /// ```
    pub enum ErrorCode {
        BadRequest => "bad_request", BAD_REQUEST, "The body could not be read for another reason than its JSON.";
        InvalidPath => "invalid_path", BAD_REQUEST, "A path parameter is not of the expected form.";
        InvalidIdempotencyKey => "invalid_idempotency_key", BAD_REQUEST, "`Idempotency-Key` is not 1 to 255 visible ASCII characters.";
        InvalidEvent => "invalid_event", BAD_REQUEST, "A provider's status webhook carried an event the server cannot read.";
        InvalidApiKey => "invalid_api_key", UNAUTHORIZED, "Missing, unknown or revoked secret key (`vx_sec_…`).";
        InvalidOperatorToken => "invalid_operator_token", UNAUTHORIZED, "Missing, unknown or revoked operator token (`vx_op_…`).";
        InvalidSignature => "invalid_signature", UNAUTHORIZED, "A provider's status webhook is unsigned, forged or replayed.";
        OwnersOnly => "owners_only", FORBIDDEN, "The action needs the project's owner role.";
        ForbiddenHost => "forbidden_host", FORBIDDEN, "The dev outbox answers only to clients connecting from loopback, at a loopback address.";
        NotFound => "not_found", NOT_FOUND, "No such route or resource (or it belongs to another project).";
        WebhookNotConfigured => "webhook_not_configured", NOT_FOUND, "This provider's status webhook is not configured on the server.";
        UnknownMessage => "unknown_message", NOT_FOUND, "A provider event names a message the server does not know (yet).";
        MethodNotAllowed => "method_not_allowed", METHOD_NOT_ALLOWED, "The path exists, but not with this method.";
        UnknownChannel => "unknown_channel", UNPROCESSABLE_ENTITY, "`channel` is not `email`, `sms` or `magic_link`.";
        InvalidDestination => "invalid_destination", UNPROCESSABLE_ENTITY, "The destination is not a plain email address or an E.164 number.";
        // 422 here, 400 in the SDK: another condition there (`futureauth_proto::DIVERGENCES`).
        InvalidCode => "invalid_code", UNPROCESSABLE_ENTITY, "The code (or magic-link token, or test code) is not of the accepted form.";
        InvalidLocale => "invalid_locale", UNPROCESSABLE_ENTITY, "`locale` is not a language tag.";
        InvalidLink => "invalid_link", UNPROCESSABLE_ENTITY, "`link` does not carry exactly one `token` parameter equal to `code`.";
        CallbackUrlRequired => "callback_url_required", UNPROCESSABLE_ENTITY, "No callback URL was sent and the project has no default one.";
        SmsCountryNotAllowed => "sms_country_not_allowed", UNPROCESSABLE_ENTITY, "The number is in no country the project may send SMS to.";
        IdempotencyKeyReused => "idempotency_key_reused", UNPROCESSABLE_ENTITY, "The `Idempotency-Key` was already used for a different request.";
        InvalidWebhookUrl => "invalid_webhook_url", UNPROCESSABLE_ENTITY, "The project webhook URL is not one the server may post to.";
        InvalidTestDestinations => "invalid_test_destinations", UNPROCESSABLE_ENTITY, "Test mode needs 1 to 20 exact email addresses or E.164 numbers.";
        TestModeInProduction => "test_mode_in_production", UNPROCESSABLE_ENTITY, "Test mode on a production server needs `allow_in_production`.";
        // The SDK calls a database outage `unavailable` (`futureauth_proto::DIVERGENCES`);
        // the status and `Retry-After` are the same.
        StorageUnavailable => "storage_unavailable", SERVICE_UNAVAILABLE, "The database did not answer in time; retry after `Retry-After` seconds.";
        Overloaded => "overloaded", SERVICE_UNAVAILABLE, "Too many requests in flight; retry after `Retry-After` seconds.";
        DatabaseUnavailable => "database_unavailable", SERVICE_UNAVAILABLE, "`/readyz`: the database does not answer; the message says why.";
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A code equals its wire form, so tests and logs can compare with the documented string.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> ErrorCode {
        *ErrorCode::ALL
            .iter()
            .find(|c| c.as_str() == s)
            .unwrap_or_else(|| panic!("`{s}` is documented but is no ErrorCode"))
    }

    /// The README's table of error codes is the table above: same codes, same statuses.
    #[test]
    fn the_readme_table_lists_every_code_with_its_status() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("### Error codes")
            .nth(1)
            .and_then(|s| s.split("\n### ").next())
            .expect("the README has an `### Error codes` section");
        let row = regex::Regex::new(r"(?m)^\| `([a-z_]+)` \| (\d{3}) \|").unwrap();
        let documented: Vec<(ErrorCode, u16)> = row
            .captures_iter(section)
            .map(|c| (code(&c[1]), c[2].parse().unwrap()))
            .collect();
        for c in ErrorCode::ALL {
            let found: Vec<_> = documented.iter().filter(|(d, _)| d == c).collect();
            assert_eq!(found.len(), 1, "the README's table lists `{c}` once");
            assert_eq!(found[0].1, c.status().as_u16(), "`{c}` in the README");
        }
        assert_eq!(documented.len(), ErrorCode::ALL.len());
    }

    /// Wherever the README or llms.txt writes a status and a code (`422 `invalid_code``),
    /// the code exists and is sent with that status; llms.txt's list names every code.
    #[test]
    fn statuses_written_before_codes_are_the_codes_statuses() {
        let readme = include_str!("../../README.md");
        let llms = include_str!("../../docs/llms.md");
        let server_part = llms
            .split("## Delivery service HTTP API")
            .nth(1)
            .expect("llms.txt describes the delivery service's API");
        // "NNN `code`": the status written right before a code in prose.
        let pair = regex::Regex::new(r"\b([1-5]\d\d)\s+`([a-z][a-z_]+)`").unwrap();
        for text in [readme, server_part] {
            for c in pair.captures_iter(text) {
                assert_eq!(
                    code(&c[2]).status().as_u16().to_string(),
                    &c[1],
                    "`{}` documented as {}",
                    &c[2],
                    &c[1]
                );
            }
        }
        // llms.txt's list: "by status: 400 `a`, `b`; 401 `c`; …".
        let list = server_part
            .split("Error codes of the delivery service, by status:")
            .nth(1)
            .and_then(|s| s.split("\n\n").next())
            .expect("llms.txt lists the error codes");
        let mut listed = Vec::new();
        for group in list.split(';') {
            let group = group.trim();
            let (status, codes) = group
                .split_once(char::is_whitespace)
                .expect("status then codes");
            for c in codes.split(',') {
                let c = code(c.trim().trim_end_matches('.').trim_matches('`'));
                assert_eq!(c.status().as_u16().to_string(), status, "`{c}` in llms.txt");
                listed.push(c);
            }
        }
        for c in ErrorCode::ALL {
            assert!(listed.contains(c), "llms.txt does not list `{c}`");
        }
    }

    /// A code that the SDK and the server both answer with has one name and one status:
    /// either a `CommonCode` that both tables take from futureauth-proto, or a divergence
    /// that futureauth-proto documents with its reason, and each documented divergence is
    /// what the two tables say.
    #[test]
    fn codes_shared_with_the_sdk_have_one_status_or_a_documented_reason() {
        use futureauth_proto::{CommonCode, Speaker, DIVERGENCES};
        let sdk: Vec<(&str, u16)> = futureauth::ErrorCode::ALL
            .iter()
            .map(|c| (c.as_str(), c.status().as_u16()))
            .collect();
        let server: Vec<(&str, u16)> = ErrorCode::ALL
            .iter()
            .map(|c| (c.as_str(), c.status().as_u16()))
            .collect();
        for &common in CommonCode::ALL {
            let entry = (common.as_str(), common.status().as_u16());
            assert!(sdk.contains(&entry), "the SDK does not speak `{common}`");
            assert!(
                server.contains(&entry),
                "the server does not speak `{common}`"
            );
            assert_eq!(futureauth::ErrorCode::from(common).common(), Some(common));
            assert_eq!(ErrorCode::from(common).common(), Some(common));
        }
        for &(name, sdk_status) in &sdk {
            let Some(&(_, server_status)) = server.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            let shared = CommonCode::ALL.iter().any(|c| c.as_str() == name);
            let documented = DIVERGENCES.iter().any(|d| {
                d.codes.contains(&(Speaker::Sdk, name, sdk_status))
                    && d.codes.contains(&(Speaker::Server, name, server_status))
            });
            assert!(
                (shared && sdk_status == server_status) || documented,
                "`{name}` is {sdk_status} in the SDK and {server_status} here: make it a \
                 CommonCode, or document the divergence in futureauth-proto"
            );
        }
        for d in DIVERGENCES {
            for &(who, name, status) in d.codes {
                let table = match who {
                    Speaker::Sdk => &sdk,
                    Speaker::Server => &server,
                };
                assert!(
                    table.contains(&(name, status)),
                    "{who:?} does not answer `{name}` with {status}, as futureauth-proto says"
                );
            }
        }
    }

    #[test]
    fn codes_are_unique_snake_case_errors() {
        for (i, c) in ErrorCode::ALL.iter().enumerate() {
            let s = c.as_str();
            assert!(
                s.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{s}"
            );
            assert!(
                c.status().is_client_error() || c.status().is_server_error(),
                "{s}"
            );
            assert!(
                ErrorCode::ALL[..i].iter().all(|o| o.as_str() != s),
                "{s} twice"
            );
        }
    }
}
