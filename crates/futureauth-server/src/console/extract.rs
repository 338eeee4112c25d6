//! Extractors that do the checks every console handler needs, once: the posted form and its
//! CSRF token ([`CsrfForm`]), the project and the operator's membership of it ([`Member`]).

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::session::Signed;
use super::Console;
use crate::service::console as ops;
use crate::store::Membership;

/// A form body; a malformed one is a 400 page. For forms posted before sign-in (which carry
/// no CSRF token of a session); every other form is a [`CsrfForm`].
pub struct Posted<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<Console> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, console: &Console) -> Result<Self, Response> {
        match Form::<T>::from_request(req, console).await {
            Ok(Form(v)) => Ok(Posted(v)),
            Err(e) => Err(console.error_page(
                e.status(),
                "Bad request",
                "The form could not be read. Go back and try again.",
            )),
        }
    }
}

/// A form of a signed-in operator whose `csrf` field is that session's token (else a 403
/// page). `T` holds the other fields, all strings.
pub struct CsrfForm<T>(pub T);

#[derive(Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<Console> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, console: &Console) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let signed = Signed::from_request_parts(&mut parts, console).await?;
        let Posted(WithCsrf { csrf, form }) =
            Posted::<WithCsrf<T>>::from_request(Request::from_parts(parts, body), console).await?;
        signed.check_csrf(console, &csrf)?;
        Ok(CsrfForm(form))
    }
}

/// A form with no fields but its CSRF token.
#[derive(Deserialize)]
pub struct NoFields {}

/// A project page's operator and project: the `{id}` of the path, if the signed-in operator
/// is a member of it. Anybody else gets the same 404 page as for a project that does not exist.
pub struct Member {
    /// The signed-in operator.
    pub s: Signed,
    /// The project and the operator's role in it.
    pub m: Membership,
}

impl FromRequestParts<Console> for Member {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let s = Signed::from_request_parts(parts, console).await?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, console)
            .await
            .map_err(IntoResponse::into_response)?;
        let id = params.get("id").map(String::as_str).unwrap_or_default();
        let m = ops::membership(console.store(), &s.operator, id)
            .await
            .map_err(|e| console.fail(e))?;
        Ok(Member { s, m })
    }
}
