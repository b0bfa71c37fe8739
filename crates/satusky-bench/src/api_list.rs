//! Scenario `api-list`.

use std::sync::Arc;

use anyhow::Context as _;
use satusky_api::{ApiConfig, AppState};
use satusky_core::clock::{Clock as _, SystemClock};
use satusky_core::pagination::PageRequest;
use satusky_core::store::{AuditFilter, AuditRecord};
use satusky_core::{Services, ServicesConfig};
use satusky_types::orgs::Outcome;

use crate::stats::{Summary, measure};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Requests per measurement.
    #[arg(long, default_value_t = 300)]
    pub requests: usize,
    /// Concurrent callers.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Items in the listed page.
    #[arg(long, default_value_t = 1000)]
    pub items: usize,
    /// Also run on this PostgreSQL database (an empty database; tables are created).
    #[arg(long, env = satusky_types::env::SATUSKY_TEST_POSTGRES_URL)]
    pub postgres: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut results = Vec::new();
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    results.push(("sqlite", scenario(&sqlite, &args).await?));
    if let Some(pg) = &args.postgres {
        let db = fresh_pg_database(pg).await?;
        results.push(("postgres", scenario(&db, &args).await?));
    }
    if args.json {
        let out: Vec<_> = results
            .iter()
            .map(|(s, r)| serde_json::json!({"store": s, "results": r}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for (store, rows) in &results {
        println!(
            "\napi-list on {store}: {} items per page, {} requests, concurrency {}",
            args.items, args.requests, args.concurrency
        );
        println!(
            "{:<34} {:>10} {:>10} {:>10} {:>12} {:>12}",
            "measurement", "p50 ms", "p99 ms", "req/s", "p50/store", "p50/no-op"
        );
        let store_floor = rows[0].p50_ms;
        let noop_floor = rows[1].p50_ms;
        for r in rows {
            println!(
                "{:<34} {:>10.3} {:>10.3} {:>10.0} {:>11.2}x {:>11.2}x",
                r.name,
                r.p50_ms,
                r.p99_ms,
                r.requests_per_sec,
                r.p50_ms / store_floor,
                r.p50_ms / noop_floor
            );
        }
    }
    Ok(())
}

/// Measures the floors and the API on one store. Rows: store floor, no-op floor, API.
pub async fn scenario(url: &str, args: &Args) -> anyhow::Result<Vec<Summary>> {
    let store = satusky_store::connect(url)
        .await
        .context("connecting the store")?;
    let services = Services::new(
        store.clone(),
        Arc::new(SystemClock),
        ServicesConfig::default(),
    );
    let crate::fixture::Admin { ctx, org, token } = crate::fixture::admin(&services).await?;
    for i in 0..args.items {
        store
            .insert_audit(&AuditRecord {
                id: satusky_core::ids::new_id(),
                org_id: org.id.clone(),
                actor_id: Some(ctx.principal.user_id.clone()),
                actor_email: Some(ctx.principal.email.clone()),
                action: "bench.seed".into(),
                target: format!("item:{i}"),
                request_id: format!("seed-{i}"),
                outcome: Outcome::Success,
                at: SystemClock.now(),
            })
            .await?;
    }
    let limit = u32::try_from(args.items)?.min(1000);
    let warmup = 20;

    let s = store.clone();
    let org_id = org.id.clone();
    let store_floor = measure(
        "floor: same query on the store",
        args.requests,
        warmup,
        args.concurrency,
        move || {
            let s = s.clone();
            let org_id = org_id.clone();
            async move {
                let rows = s
                    .list_audit(&org_id, &AuditFilter::default(), &PageRequest::first(limit))
                    .await?;
                anyhow::ensure!(rows.len() >= limit as usize, "short page");
                Ok(())
            }
        },
    )
    .await?;

    let noop = axum::Router::new().route(
        "/noop",
        axum::routing::get(|| async { axum::Json(serde_json::json!({"ok": true})) }),
    );
    let noop_url = spawn(noop).await?;
    let client = reqwest::Client::new();
    let c = client.clone();
    let noop_floor = measure(
        "floor: no-op handler over HTTP",
        args.requests,
        warmup,
        args.concurrency,
        move || {
            let c = c.clone();
            let url = format!("{noop_url}/noop");
            async move {
                c.get(url).send().await?.error_for_status()?.bytes().await?;
                Ok(())
            }
        },
    )
    .await?;

    let app = satusky_api::router(AppState {
        services,
        config: ApiConfig::default(),
    });
    let api_url = spawn(app).await?;
    let c = client.clone();
    let api = measure(
        "API: GET /v1/orgs/{org}/audit",
        args.requests,
        warmup,
        args.concurrency,
        move || {
            let c = c.clone();
            let url = format!("{api_url}/v1/orgs/bench/audit?limit={limit}");
            let token = token.clone();
            async move {
                let body: serde_json::Value = c
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                anyhow::ensure!(
                    body["items"]
                        .as_array()
                        .is_some_and(|a| a.len() >= limit as usize),
                    "short page"
                );
                Ok(())
            }
        },
    )
    .await?;
    Ok(vec![store_floor, noop_floor, api])
}

async fn spawn(app: axum::Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

/// Creates a fresh database next to the given admin URL and returns its URL.
pub(crate) async fn fresh_pg_database(admin_url: &str) -> anyhow::Result<String> {
    let name = format!("satusky_bench_{}", chrono::Utc::now().timestamp_micros());
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .context("connecting to PostgreSQL")?;
    // The name is generated above from digits only; identifiers cannot be bound.
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_scenario_measures_the_api_and_both_floors() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("b.db").display());
        let args = Args {
            requests: 8,
            concurrency: 2,
            items: 25,
            postgres: None,
            json: true,
        };
        let rows = scenario(&url, &args).await.unwrap();
        let names: Vec<_> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names.len(), 3);
        assert!(
            names[0].contains("store") && names[1].contains("no-op") && names[2].contains("API")
        );
        for r in &rows {
            assert_eq!(r.samples, 8);
            assert!(
                r.p50_ms > 0.0 && r.p99_ms >= r.p50_ms && r.requests_per_sec > 0.0,
                "{r:?}"
            );
        }
    }
}
