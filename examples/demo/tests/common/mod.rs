//! HTTP helpers shared by the demo's tests: a client that keeps cookies and talks to the
//! demo the way its own front end does.
#![allow(dead_code)]

use std::ops::Deref;

use anyhow::{bail, Result};
use reqwest::{Response, StatusCode};
use serde_json::Value;

/// A cookie-keeping client of the demo at `base`. Derefs to [`reqwest::Client`].
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// A client of the demo at `base` (`http://127.0.0.1:port`).
    pub fn new(base: &str) -> Result<Self> {
        Self::with_agent(base, "futureauth-demo tests")
    }

    /// Same, with its own `User-Agent` (shown in the session list).
    pub fn with_agent(base: &str, agent: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .user_agent(agent)
            .build()?;
        Ok(Self {
            http,
            base: base.to_string(),
        })
    }

    /// POSTs `body` as JSON from the demo's own origin and requires `200 OK`.
    pub async fn post_ok(&self, route: &str, body: &Value) -> Result<Response> {
        let response = self
            .http
            .post(format!("{}{route}", self.base))
            .header("origin", &self.base)
            .json(body)
            .send()
            .await?;
        if response.status() != StatusCode::OK {
            bail!(
                "POST {route}: {} {}",
                response.status(),
                response.text().await?
            );
        }
        Ok(response)
    }

    /// GETs `route` and parses its JSON, requiring a success status.
    pub async fn get_json(&self, route: &str) -> Result<Value> {
        let response = self
            .http
            .get(format!("{}{route}", self.base))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "GET {route}: {} {}",
                response.status(),
                response.text().await?
            );
        }
        Ok(response.json().await?)
    }
}

impl Deref for Api {
    type Target = reqwest::Client;

    fn deref(&self) -> &reqwest::Client {
        &self.http
    }
}
