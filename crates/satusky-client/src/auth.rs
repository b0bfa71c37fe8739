//! `/v1/auth/*` and `/v1/me`: signup, sessions, the current user.

use satusky_types::identity::{
    ChangePasswordRequest, LoginRequest, Me, Revoked, SessionCreated, SignupRequest,
    UpdateUserRequest, User,
};

use crate::{Client, ClientError};

impl Client {
    /// `POST /v1/auth/signup`: create an account.
    pub async fn signup(&self, body: &SignupRequest) -> Result<User, ClientError> {
        let (req, url) = self.post(&["v1", "auth", "signup"]);
        self.send_json(req.json(body), url).await
    }

    /// `POST /v1/auth/login`: start a session; its token is in the answer.
    pub async fn login(&self, body: &LoginRequest) -> Result<SessionCreated, ClientError> {
        let (req, url) = self.post(&["v1", "auth", "login"]);
        self.send_json(req.json(body), url).await
    }

    /// `POST /v1/auth/logout`: end the calling session.
    pub async fn logout(&self) -> Result<(), ClientError> {
        let (req, url) = self.post(&["v1", "auth", "logout"]);
        self.send_empty(req, url).await
    }

    /// `POST /v1/auth/revoke-all`: end every session of the calling user.
    pub async fn revoke_all_sessions(&self) -> Result<Revoked, ClientError> {
        let (req, url) = self.post(&["v1", "auth", "revoke-all"]);
        self.send_json(req, url).await
    }

    /// `GET /v1/me`: who the token belongs to and how it authenticates.
    pub async fn me(&self) -> Result<Me, ClientError> {
        let (req, url) = self.get(&["v1", "me"]);
        self.send_json(req, url).await
    }

    /// `PATCH /v1/me`: change the caller's profile.
    pub async fn update_me(&self, body: &UpdateUserRequest) -> Result<User, ClientError> {
        let (req, url) = self.patch(&["v1", "me"]);
        self.send_json(req.json(body), url).await
    }

    /// `POST /v1/me/password`: change the caller's password.
    pub async fn change_password(&self, body: &ChangePasswordRequest) -> Result<(), ClientError> {
        let (req, url) = self.post(&["v1", "me", "password"]);
        self.send_empty(req.json(body), url).await
    }
}
