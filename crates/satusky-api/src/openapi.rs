//! The OpenAPI 3 document, generated from the handlers' annotations and the
//! DTOs of `satusky-types`. A snapshot test keeps it from drifting unnoticed.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::handlers::{
    apps, audit, auth, clusters, machine_usage, machines, members, orgs, tokens,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Satusky API", description = "The Satusky control-plane API."),
    paths(
        auth::signup, auth::login, auth::logout, auth::revoke_all, auth::me, auth::update_me,
        auth::change_password,
        tokens::list, tokens::create, tokens::get, tokens::set_enabled, tokens::delete,
        orgs::list, orgs::create, orgs::get, orgs::rename, orgs::delete,
        members::list, members::add, members::change_role, members::remove,
        audit::list, audit::get,
        clusters::list, clusters::register, clusters::delete, clusters::zones,
        apps::list, apps::create, apps::get, apps::delete, apps::deploy, apps::releases,
        apps::release, apps::rollback, apps::restart, apps::scale, apps::env, apps::change_env,
        apps::secrets, apps::change_secrets, apps::reveal_secret, apps::volumes, apps::events, apps::events_ws, apps::logs, apps::logs_ws, apps::volume, apps::volume_claims, apps::detach_volume, apps::delete_volume,
        machines::list_join_tokens, machines::create_join_token, machines::revoke_join_token,
        machines::list, machines::get, machines::claim, machines::release, machines::labels,
        machines::visibility, machines::events, machines::events_ws, machines::metrics, machines::metrics_ws, machines::metrics_history,
        machines::logs, machines::logs_ws, machines::health, machines::placement, machine_usage::list, machines::cordon,
        machines::uncordon, machines::drain, machines::reboot, machines::shutdown,
        machines::decommission, machines::cancel, machines::bulk,
    ),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    env!("CARGO_PKG_VERSION").clone_into(&mut doc.info.version);
    doc
}
