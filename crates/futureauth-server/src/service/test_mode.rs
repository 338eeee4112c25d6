//! Test mode: a project's test destinations and their fixed code, checked once here. Every
//! change is an owner's, checked and written to the audit log here, for the console and the
//! management API alike.

use futureauth_proto::{Email, OtpCode, Phone};

use super::console::audit;
use super::operator::{audit_removal, authorize, OperatorAction};
use crate::clock::UnixMillis;
use crate::error::{ErrorCode, ServiceError};
use crate::store::{Membership, Operator, Store, TestMode};

/// Most test destinations a project may list.
pub const MAX_DESTINATIONS: usize = 20;

/// The fixed code `destination` signs in with, if it is a test destination of `mode` and
/// test mode applies on this server (in production only where an operator confirmed it).
pub fn code_for<'a>(mode: &'a TestMode, destination: &str, production: bool) -> Option<&'a str> {
    let applies = !production || mode.allow_in_production;
    (applies && mode.destinations.iter().any(|d| d == destination)).then_some(&mode.code)
}

/// Test mode as an operator asks for it.
#[derive(Debug, Clone, Default)]
pub struct TestModeInput {
    /// Exact emails or E.164 numbers.
    pub destinations: Vec<String>,
    /// The fixed code.
    pub code: String,
    /// Confirms test mode on a production server.
    pub allow_in_production: bool,
}

/// The test mode of `m`'s project, if it is on.
pub async fn get(store: &Store, m: &Membership) -> Result<Option<TestMode>, ServiceError> {
    Ok(store.test_mode(&m.project.id).await?)
}

/// Checks `input` and turns test mode on for `project_id`, as `op` (owners only; audited).
/// On a production server it must be confirmed (`allow_in_production`): a fixed code is a
/// known password for the listed accounts.
pub async fn enable(
    store: &Store,
    op: &Operator,
    project_id: &str,
    input: &TestModeInput,
    production: bool,
) -> Result<TestMode, ServiceError> {
    let project_id = &authorize(store, op, project_id, OperatorAction::ManageTestMode)
        .await?
        .project
        .id;
    let mode = parse(input)?;
    if production && !mode.allow_in_production {
        return Err(ServiceError::validation(
            ErrorCode::TestModeInProduction,
            "this server runs in production: a fixed code signs anybody into the listed accounts, \
             so confirm with \"allow_in_production\": true (only for accounts that exist for \
             app-store review or monitoring)",
        ));
    }
    store.set_test_mode(project_id, &mode).await?;
    let detail = format!("{} test destination(s)", mode.destinations.len());
    audit(store, project_id, op, "test_mode.enabled", detail).await?;
    Ok(mode)
}

/// Turns test mode off, as `op` (owners only; audited). `false` when it was off: nothing
/// changed, nothing is audited.
pub async fn disable(store: &Store, op: &Operator, project_id: &str) -> Result<bool, ServiceError> {
    let m = authorize(store, op, project_id, OperatorAction::ManageTestMode).await?;
    let removed = store.clear_test_mode(&m.project.id).await?;
    Ok(audit_removal(store, &m, op, "test_mode.disabled", removed).await?)
}

fn parse(input: &TestModeInput) -> Result<TestMode, ServiceError> {
    if input.destinations.is_empty() || input.destinations.len() > MAX_DESTINATIONS {
        return Err(ServiceError::validation(
            ErrorCode::InvalidTestDestinations,
            format!("list 1 to {MAX_DESTINATIONS} test destinations"),
        ));
    }
    let mut destinations = Vec::with_capacity(input.destinations.len());
    for raw in &input.destinations {
        let raw = raw.trim();
        let parsed = if raw.starts_with('+') {
            Phone::parse(raw)
                .ok()
                .filter(|p| p.as_str() == raw)
                .map(|p| p.as_str().to_owned())
        } else {
            Email::parse(raw).ok().map(|e| e.as_str().to_owned())
        };
        let Some(destination) = parsed else {
            return Err(ServiceError::validation(
                ErrorCode::InvalidTestDestinations,
                "each test destination is an exact email address or an E.164 number such as +12015550123",
            ));
        };
        if !destinations.contains(&destination) {
            destinations.push(destination);
        }
    }
    let code = OtpCode::parse(input.code.trim()).map_err(|_| {
        ServiceError::validation(
            ErrorCode::InvalidCode,
            "the test code is 4 to 12 lowercase letters or digits",
        )
    })?;
    Ok(TestMode {
        destinations,
        code: code.as_str().to_owned(),
        allow_in_production: input.allow_in_production,
        updated_at: UnixMillis::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(destinations: &[&str], code: &str) -> TestModeInput {
        TestModeInput {
            destinations: destinations.iter().map(|d| d.to_string()).collect(),
            code: code.into(),
            allow_in_production: false,
        }
    }

    #[test]
    fn destinations_and_code_are_parsed() {
        let m = parse(&input(&["Review@Example.com", "+12015550100"], "424242")).unwrap();
        assert_eq!(m.destinations, ["review@example.com", "+12015550100"]);
        assert_eq!(code_for(&m, "review@example.com", false), Some("424242"));
        assert_eq!(code_for(&m, "other@example.com", false), None);
        assert_eq!(
            code_for(&m, "review@example.com", true),
            None,
            "production needs a yes"
        );
        for bad in [
            input(&[], "424242"),
            input(&["not an address"], "424242"),
            input(&["+1 201 555 0100"], "424242"),
            input(&["a@b.co"], "12"),
            input(&["a@b.co"], "BUY NOW"),
            input(&["a\0@b.co"], "424242"),
        ] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
    }
}
