//! Removing secrets from provider error text before it is stored as a message's `last_error`
//! (which the tenant reads through `GET /api/v1/messages/{id}`) or logged.
//!
//! Provider answers and transport errors quote what they were sent: the request URL (Twilio's
//! carries the account SID), echoed credentials, the recipient. The patterns below catch the
//! known shapes; the exact configured credentials and the recipient are removed literally.

use std::sync::LazyLock;

use regex::Regex;

/// What replaces a removed secret.
pub const REDACTED: &str = "[redacted]";

/// Longest error text kept.
pub const MAX_ERROR_LEN: usize = 500;

static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // userinfo in a URL: scheme://user:password@host
        (r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@", "${1}[redacted]@"),
        // Authorization schemes followed by their credential
        (
            r"(?i)\b(bearer|basic|token)(\s+|=|:\s*)[A-Za-z0-9._~+/=-]{8,}",
            "${1}${2}[redacted]",
        ),
        // Twilio SIDs (account AC…, messaging service MG…, API key SK…): two letters + 32 hex
        (r"\b[A-Z]{2}[0-9a-fA-F]{32}\b", REDACTED),
        // Twilio auth tokens and other 32+ hex secrets
        (r"\b[0-9a-fA-F]{32,}\b", REDACTED),
        // Resend API keys and our own secret keys
        (r"\bre_[A-Za-z0-9_]{8,}", REDACTED),
        (r"\bvx_sec_[A-Za-z0-9_-]+", REDACTED),
        // Phone numbers in E.164 and email addresses (recipients)
        (r"\+[1-9][0-9]{7,14}\b", REDACTED),
        (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", REDACTED),
    ]
    .into_iter()
    .filter_map(|(re, with)| Regex::new(re).ok().map(|re| (re, with)))
    .collect()
});

/// `text` without credentials, keys, SIDs, phone numbers, email addresses, the exact strings
/// in `literals` (configured secrets, the recipient) or control characters (which the
/// database may refuse), cut to [`MAX_ERROR_LEN`] bytes.
pub fn scrub(text: &str, literals: &[&str]) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    for lit in literals.iter().filter(|l| l.len() >= 4) {
        out = replace_ignore_ascii_case(&out, lit);
    }
    for (re, with) in PATTERNS.iter() {
        out = re.replace_all(&out, *with).into_owned();
    }
    truncate(&out, MAX_ERROR_LEN)
}

fn replace_ignore_ascii_case(haystack: &str, needle: &str) -> String {
    let lower = haystack.to_ascii_lowercase();
    let needle_lower = needle.to_ascii_lowercase();
    let mut out = String::with_capacity(haystack.len());
    let mut last = 0;
    // ASCII lower-casing keeps byte offsets, so indices into `lower` are valid in `haystack`.
    for (i, _) in lower.match_indices(&needle_lower) {
        if i < last {
            continue;
        }
        out.push_str(&haystack[last..i]);
        out.push_str(REDACTED);
        last = i + needle.len();
    }
    out.push_str(&haystack[last..]);
    out
}

/// `s` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_credentials_and_recipients() {
        let sid = "AC0123456789abcdef0123456789abcdef";
        let text = format!(
            "error sending request for url (https://api.twilio.com/2010-04-01/Accounts/{sid}/Messages.json): \
             auth token 0123456789abcdef0123456789ABCDEF, key re_AbCdEf123456_x, \
             Authorization: Bearer abc.def-ghi_12345678, Basic dXNlcjpwYXNzd29yZA==, \
             https://user:hunter2@proxy.example/x, to +12015550123 / Ada@Example.com, vx_sec_abcDEF123-_x, \u{0}end"
        );
        let s = scrub(&text, &["my-configured-secret"]);
        for leaked in [
            sid,
            "0123456789abcdef0123456789ABCDEF",
            "re_AbCdEf",
            "abc.def-ghi",
            "dXNlcjpwYXNzd29yZA",
            "hunter2",
            "user:",
            "+12015550123",
            "Ada@Example.com",
            "vx_sec_",
            "\0",
        ] {
            assert!(!s.contains(leaked), "{leaked} in {s}");
        }
        assert!(
            s.contains("api.twilio.com/2010-04-01/Accounts/[redacted]/Messages.json"),
            "{s}"
        );
        assert!(s.starts_with("error sending request"), "{s}");
    }

    #[test]
    fn removes_literals_in_any_ascii_case_and_keeps_plain_text() {
        assert_eq!(
            scrub("bad number Secret-Value here", &["secret-value"]),
            "bad number [redacted] here"
        );
        let plain = "twilio HTTP 400: The 'To' number is not a valid phone number. (code 21211)";
        assert_eq!(scrub(plain, &[]), plain);
        assert!(scrub(&"é".repeat(400), &[]).len() <= MAX_ERROR_LEN + "…".len());
    }
}
