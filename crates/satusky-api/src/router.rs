//! Every route of the API, in one place.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use satusky_core::Services;

use crate::handlers::{
    apps, audit, auth, clusters, health, machine_usage, machines, members, orgs, tokens,
};
use crate::{error, extract, telemetry};

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AppState {
    pub services: Services,
    pub config: ApiConfig,
}

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/openapi.json", get(health::openapi))
        .route("/auth/signup", post(auth::signup))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/revoke-all", post(auth::revoke_all))
        .route("/me", get(auth::me).patch(auth::update_me))
        .route("/me/password", post(auth::change_password))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route(
            "/tokens/{token}",
            get(tokens::get)
                .patch(tokens::set_enabled)
                .delete(tokens::delete),
        )
        .route("/clusters", get(clusters::list).post(clusters::register))
        .route("/clusters/{name}", axum::routing::delete(clusters::delete))
        .route("/zones", get(clusters::zones))
        .route("/orgs", get(orgs::list).post(orgs::create))
        .route(
            "/orgs/{org}",
            get(orgs::get).patch(orgs::rename).delete(orgs::delete),
        )
        .route("/orgs/{org}/members", get(members::list).post(members::add))
        .route(
            "/orgs/{org}/members/{user}",
            axum::routing::patch(members::change_role).delete(members::remove),
        )
        .route("/orgs/{org}/audit", get(audit::list))
        .route("/orgs/{org}/audit/{id}", get(audit::get))
        .route("/orgs/{org}/apps", get(apps::list).post(apps::create))
        .route(
            "/orgs/{org}/apps/{app}",
            get(apps::get).delete(apps::delete),
        )
        .route("/orgs/{org}/apps/{app}/deploy", post(apps::deploy))
        .route("/orgs/{org}/apps/{app}/releases", get(apps::releases))
        .route(
            "/orgs/{org}/apps/{app}/releases/{number}",
            get(apps::release),
        )
        .route("/orgs/{org}/apps/{app}/rollback", post(apps::rollback))
        .route("/orgs/{org}/apps/{app}/restart", post(apps::restart))
        .route("/orgs/{org}/apps/{app}/scale", post(apps::scale))
        .route(
            "/orgs/{org}/apps/{app}/env",
            get(apps::env).patch(apps::change_env),
        )
        .route(
            "/orgs/{org}/apps/{app}/secrets",
            get(apps::secrets).patch(apps::change_secrets),
        )
        .route(
            "/orgs/{org}/apps/{app}/secrets/{key}",
            get(apps::reveal_secret),
        )
        .route("/orgs/{org}/apps/{app}/volumes", get(apps::volumes))
        .route("/orgs/{org}/apps/{app}/events", get(apps::events))
        .route("/orgs/{org}/apps/{app}/events/ws", get(apps::events_ws))
        .route("/orgs/{org}/apps/{app}/logs", get(apps::logs))
        .route(
            "/orgs/{org}/apps/{app}/volume-claims",
            get(apps::volume_claims),
        )
        .route(
            "/orgs/{org}/apps/{app}/volumes/{volume}",
            get(apps::volume).delete(apps::delete_volume),
        )
        .route(
            "/orgs/{org}/apps/{app}/volumes/{volume}/detach",
            post(apps::detach_volume),
        )
        .route("/orgs/{org}/apps/{app}/logs/ws", get(apps::logs_ws))
        .route(
            "/orgs/{org}/join-tokens",
            get(machines::list_join_tokens).post(machines::create_join_token),
        )
        .route(
            "/orgs/{org}/join-tokens/{token}/revoke",
            post(machines::revoke_join_token),
        )
        .route("/orgs/{org}/machines", get(machines::list))
        .route("/orgs/{org}/placement", get(machines::placement))
        .route("/orgs/{org}/machine-usage", get(machine_usage::list))
        .route("/orgs/{org}/machines/bulk/{action}", post(machines::bulk))
        .route("/orgs/{org}/machines/{machine}", get(machines::get))
        .route(
            "/orgs/{org}/machines/{machine}/claim",
            post(machines::claim),
        )
        .route(
            "/orgs/{org}/machines/{machine}/release",
            post(machines::release),
        )
        .route(
            "/orgs/{org}/machines/{machine}/labels",
            axum::routing::patch(machines::labels),
        )
        .route(
            "/orgs/{org}/machines/{machine}/visibility",
            axum::routing::put(machines::visibility),
        )
        .route(
            "/orgs/{org}/machines/{machine}/events",
            get(machines::events),
        )
        .route(
            "/orgs/{org}/machines/{machine}/events/ws",
            get(machines::events_ws),
        )
        .route(
            "/orgs/{org}/machines/{machine}/metrics",
            get(machines::metrics),
        )
        .route(
            "/orgs/{org}/machines/{machine}/metrics/history",
            get(machines::metrics_history),
        )
        .route(
            "/orgs/{org}/machines/{machine}/metrics/ws",
            get(machines::metrics_ws),
        )
        .route(
            "/orgs/{org}/machines/{machine}/health",
            get(machines::health),
        )
        .route("/orgs/{org}/machines/{machine}/logs", get(machines::logs))
        .route(
            "/orgs/{org}/machines/{machine}/logs/ws",
            get(machines::logs_ws),
        )
        .route(
            "/orgs/{org}/machines/{machine}/cordon",
            post(machines::cordon),
        )
        .route(
            "/orgs/{org}/machines/{machine}/uncordon",
            post(machines::uncordon),
        )
        .route(
            "/orgs/{org}/machines/{machine}/drain",
            post(machines::drain),
        )
        .route(
            "/orgs/{org}/machines/{machine}/reboot",
            post(machines::reboot),
        )
        .route(
            "/orgs/{org}/machines/{machine}/shutdown",
            post(machines::shutdown),
        )
        .route(
            "/orgs/{org}/machines/{machine}/decommission",
            post(machines::decommission),
        )
        .route(
            "/orgs/{org}/machines/{machine}/cancel",
            post(machines::cancel),
        );

    // Install the metrics recorder before the first request is counted.
    let _ = telemetry::handle();
    let max_body = state.config.max_body_bytes;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .nest("/v1", v1)
        .route_layer(middleware::from_fn(telemetry::track))
        .with_state(state)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(error::render_errors))
        .layer(middleware::from_fn(extract::request_id))
}
