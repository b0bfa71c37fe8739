//! The setup every scenario shares: an admin with an organization and a token.

use satusky_core::{Ctx, Services};
use satusky_types::orgs::Org;

/// An admin account (`bench@example.com`), its organization `bench`, and a
/// personal token for API calls.
pub struct Admin {
    pub ctx: Ctx,
    pub org: Org,
    pub token: String,
}

pub async fn admin(services: &Services) -> anyhow::Result<Admin> {
    services
        .create_user("bench@example.com", "bench password 1", None)
        .await?;
    let session = services
        .login("bench@example.com", "bench password 1", "bench")
        .await?;
    let ctx = Ctx {
        principal: services.authenticate(&session.token).await?,
        request_id: "bench".into(),
    };
    let org = services.create_org(&ctx, "bench", None).await?;
    let token = services
        .create_token(&ctx, "bench", None, None)
        .await?
        .secret;
    Ok(Admin { ctx, org, token })
}
