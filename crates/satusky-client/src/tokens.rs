//! `/v1/tokens`: the caller's personal API tokens.

use satusky_types::Page;
use satusky_types::identity::{ApiToken, CreateTokenRequest, SetTokenEnabledRequest, TokenCreated};
use satusky_types::page::PageQuery;

use crate::{ALL_PAGES_LIMIT, Client, ClientError, collect_pages};

impl Client {
    /// `GET /v1/tokens`: one page of tokens (never their secrets).
    pub async fn list_tokens(&self, query: &PageQuery) -> Result<Page<ApiToken>, ClientError> {
        let (req, url) = self.get(&["v1", "tokens"]);
        self.send_json(req.query(query), url).await
    }

    /// Every token, following cursors.
    pub async fn list_all_tokens(&self) -> Result<Vec<ApiToken>, ClientError> {
        collect_pages(|cursor| {
            let query = PageQuery {
                limit: Some(ALL_PAGES_LIMIT),
                cursor,
            };
            async move { self.list_tokens(&query).await }
        })
        .await
    }

    /// `POST /v1/tokens`: create a token; the answer holds its secret, once.
    pub async fn create_token(
        &self,
        body: &CreateTokenRequest,
    ) -> Result<TokenCreated, ClientError> {
        let (req, url) = self.post(&["v1", "tokens"]);
        self.send_json(req.json(body), url).await
    }

    /// `GET /v1/tokens/{id-or-name}`.
    pub async fn get_token(&self, id_or_name: &str) -> Result<ApiToken, ClientError> {
        let (req, url) = self.get(&["v1", "tokens", id_or_name]);
        self.send_json(req, url).await
    }

    /// `PATCH /v1/tokens/{id-or-name}`: enable or disable a token.
    pub async fn set_token_enabled(
        &self,
        id_or_name: &str,
        enabled: bool,
    ) -> Result<ApiToken, ClientError> {
        let (req, url) = self.patch(&["v1", "tokens", id_or_name]);
        self.send_json(req.json(&SetTokenEnabledRequest { enabled }), url)
            .await
    }

    /// `DELETE /v1/tokens/{id-or-name}`.
    pub async fn delete_token(&self, id_or_name: &str) -> Result<(), ClientError> {
        let (req, url) = self.delete(&["v1", "tokens", id_or_name]);
        self.send_empty(req, url).await
    }
}
