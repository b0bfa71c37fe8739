//! Apps: deploys, releases, scale, config, secrets, rollback, restart,
//! deletion — every change is desired state in the store plus a notice on
//! the bus; the reconciler makes Kubernetes match. Also the reconciler's
//! side: desired state out, observed status and events in.

use std::collections::BTreeMap;

use satusky_types::ErrorCode;
use satusky_types::apps::{
    App, AppEvent, AppSpec, AppStatus, DeployRequest, Deployed, KeyValueChange, Release,
    ReleaseCause, SecretEntry,
};
use satusky_types::orgs::Outcome;
use satusky_types::page::Page;
use sha2::{Digest as _, Sha256};

use super::{Ctx, OrgAccess, Services};
use crate::apps::{
    AppEventRecord, AppRecord, DesiredApp, IdempotencyRecord, ReleaseRecord, SecretVersionRecord,
    validate_app_name, validate_env_key, validate_spec,
};
use crate::authz::Action;
use crate::bus::Notice;
use crate::pagination::{PageRequest, paginate};
use crate::store::{OrgRecord, StoreError, conflict};
use crate::{Error, Result, ids};

/// Masked form of a secret value in every listing.
pub const MASK: &str = "********";

fn app_not_found(name: &str) -> Error {
    Error::new(ErrorCode::AppNotFound, format!("app `{name}` not found"))
}

fn release_dto(r: ReleaseRecord) -> Release {
    Release {
        number: r.number,
        spec: r.spec,
        cause: r.cause,
        rollback_of: r.rollback_of,
        author: r.author_email,
        created_at: r.created_at,
    }
}

fn event_dto(e: AppEventRecord) -> AppEvent {
    AppEvent {
        seq: e.seq,
        kind: e.kind,
        message: e.message,
        release: e.release,
        at: e.at,
    }
}

/// A change to apply on top of the current release's spec.
enum Change<'a> {
    Deploy(&'a DeployRequest),
    Scale(u32),
    Env(&'a KeyValueChange),
    Secret(u64),
    DetachVolume(String),
    /// The spec to restore and the release it came from.
    Rollback(Box<AppSpec>, u64),
}

impl Services {
    pub fn default_domain(&self, app: &str, org_slug: &str) -> String {
        format!("{app}-{org_slug}.{}", self.inner.config.apps_domain)
    }

    fn app_dto(&self, a: AppRecord, org: &OrgRecord) -> App {
        App {
            default_domain: self.default_domain(&a.name, &org.slug),
            id: a.id,
            name: a.name,
            environment: a.environment,
            org: org.slug.clone(),
            generation: a.generation,
            current_release: a.current_release,
            cluster: a.cluster_id,
            status: a.status,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }

    async fn find_app(&self, org: &OrgRecord, name: &str) -> Result<AppRecord> {
        self.inner
            .store
            .get_app(&org.id, name)
            .await?
            .ok_or_else(|| app_not_found(name))
    }

    async fn event(&self, app_id: &str, kind: &str, message: String, release: Option<u64>) {
        let rec = AppEventRecord {
            app_id: app_id.to_owned(),
            seq: 0,
            kind: kind.to_owned(),
            message,
            release,
            at: self.inner.clock.now(),
        };
        match self.inner.store.append_app_event(&rec).await {
            Ok(seq) => self.inner.config.bus.publish(Notice::AppEvent {
                app_id: app_id.to_owned(),
                seq,
            }),
            Err(e) => {
                tracing::error!(app.id = %app_id, error = &e as &dyn std::error::Error, "failed to record app event");
            }
        }
    }

    fn changed(&self, app_id: &str) {
        self.inner.config.bus.publish(Notice::AppChanged {
            app_id: app_id.to_owned(),
        });
    }

    pub async fn create_app(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
        environment: Option<&str>,
    ) -> Result<App> {
        let a = self.authorize(ctx, org, Action::AppsWrite).await?;
        let result = self.insert_app(&a, name, environment).await;
        let app = self
            .audited(ctx, &a.org, "app.create", &format!("app:{name}"), result)
            .await?;
        Ok(self.app_dto(app, &a.org))
    }

    async fn insert_app(
        &self,
        a: &OrgAccess,
        name: &str,
        environment: Option<&str>,
    ) -> Result<AppRecord> {
        validate_app_name(name)?;
        let domain_label = format!("{name}-{}", a.org.slug);
        if domain_label.len() > 63 {
            return Err(Error::validation(format!(
                "app name `{name}` is too long for this organization: `{domain_label}` must fit in 63 characters"
            )));
        }
        let environment =
            crate::validate::display_name("environment", environment.unwrap_or("production"))?;
        let now = self.inner.clock.now();
        let app = AppRecord {
            id: ids::new_id(),
            org_id: a.org.id.clone(),
            name: name.to_owned(),
            environment,
            generation: 0,
            current_release: None,
            restarted_at: None,
            cluster_id: None,
            status: AppStatus::default(),
            deleting: false,
            delete_volumes: false,
            created_at: now,
            updated_at: now,
        };
        match self.inner.store.create_app(&app).await {
            Ok(()) => Ok(app),
            Err(StoreError::Conflict(c)) if c == conflict::APP_NAME => Err(Error::new(
                ErrorCode::AppExists,
                format!("an app named `{name}` already exists"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list_apps(&self, ctx: &Ctx, org: &str, page: &PageRequest) -> Result<Page<App>> {
        let a = self.authorize(ctx, org, Action::AppsRead).await?;
        let rows = self.inner.store.list_apps(&a.org.id, page).await?;
        let page = paginate(rows, page, |r| r.id.clone());
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(|r| self.app_dto(r, &a.org))
                .collect(),
            next_cursor: page.next_cursor,
        })
    }

    pub async fn get_app(&self, ctx: &Ctx, org: &str, name: &str) -> Result<App> {
        let a = self.authorize(ctx, org, Action::AppsRead).await?;
        let app = self.find_app(&a.org, name).await?;
        Ok(self.app_dto(app, &a.org))
    }

    /// Deploys an image (creating the app when asked), as one new release.
    /// With an idempotency key, a retry of the same request returns the
    /// release the first attempt made; a different request with the same
    /// key is refused.
    pub async fn deploy(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
        req: &DeployRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Deployed> {
        let a = self.authorize(ctx, org, Action::AppsWrite).await?;
        let app = match self.inner.store.get_app(&a.org.id, name).await? {
            Some(app) => app,
            None if req.create => {
                // Refuse a bad first release before creating anything.
                validate_app_name(name)?;
                validate_spec(&next_spec(None, &Change::Deploy(req), name)?)?;
                if let Some(Some(zone)) = &req.zone {
                    self.place(Some(zone)).await?;
                }
                let created = self.insert_app(&a, name, req.environment.as_deref()).await;
                self.audited(ctx, &a.org, "app.create", &format!("app:{name}"), created)
                    .await?
            }
            None => return Err(app_not_found(name)),
        };
        if let Some(key) = idempotency_key {
            if key.is_empty() || key.len() > 200 {
                return Err(Error::validation(
                    "Idempotency-Key must be 1 to 200 characters",
                ));
            }
            let hash = request_hash(req);
            if let Some(prev) = self.inner.store.get_idempotency(&app.id, key).await? {
                return self.replay(&a.org, &app, &prev, &hash).await;
            }
            let result = self
                .release(ctx, &a.org, &app, Change::Deploy(req), Some((key, &hash)))
                .await;
            return match result {
                Err(e) if e.code == ErrorCode::IdempotencyKeyReused => {
                    // A concurrent request with the same key won; answer as it did.
                    let prev = self
                        .inner
                        .store
                        .get_idempotency(&app.id, key)
                        .await?
                        .ok_or(e)?;
                    self.replay(&a.org, &app, &prev, &hash).await
                }
                other => other,
            };
        }
        self.release(ctx, &a.org, &app, Change::Deploy(req), None)
            .await
    }

    async fn replay(
        &self,
        org: &OrgRecord,
        app: &AppRecord,
        prev: &IdempotencyRecord,
        hash: &str,
    ) -> Result<Deployed> {
        if prev.request_hash != hash {
            return Err(Error::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was used for a different request; use a new key",
            ));
        }
        let release = self
            .inner
            .store
            .get_release(&app.id, prev.release)
            .await?
            .ok_or_else(|| Error::internal("idempotency record points at a missing release"))?;
        let app = self
            .inner
            .store
            .get_app_by_id(&app.id)
            .await?
            .ok_or_else(|| app_not_found(&app.name))?;
        Ok(Deployed {
            app: self.app_dto(app, org),
            release: release_dto(release),
            replayed: true,
        })
    }

    /// Makes one new release from the current one plus a change, retrying
    /// when a concurrent release takes the number first.
    async fn release(
        &self,
        ctx: &Ctx,
        org: &OrgRecord,
        app: &AppRecord,
        change: Change<'_>,
        idempotency: Option<(&str, &str)>,
    ) -> Result<Deployed> {
        let (cause, action) = match &change {
            Change::Deploy(_) => (ReleaseCause::Deploy, "app.deploy"),
            Change::Scale(_) => (ReleaseCause::Scale, "app.scale"),
            Change::Env(_) => (ReleaseCause::Config, "app.config"),
            Change::Secret(_) => (ReleaseCause::Secret, "app.secret.set"),
            Change::DetachVolume(_) => (ReleaseCause::VolumeDetach, "app.volume.detach"),
            Change::Rollback(..) => (ReleaseCause::Rollback, "app.rollback"),
        };
        let result = self
            .try_release(ctx, app, &change, cause, idempotency)
            .await;
        let (app, release) = self
            .audited(ctx, org, action, &format!("app:{}", app.name), result)
            .await?;
        self.changed(&app.id);
        self.event(
            &app.id,
            "release.created",
            format!(
                "release {} ({}) by {}: {}",
                release.number,
                cause.as_str(),
                ctx.principal.email,
                release.spec.image
            ),
            Some(release.number),
        )
        .await;
        Ok(Deployed {
            app: self.app_dto(app, org),
            release: release_dto(release),
            replayed: false,
        })
    }

    async fn try_release(
        &self,
        ctx: &Ctx,
        app: &AppRecord,
        change: &Change<'_>,
        cause: ReleaseCause,
        idempotency: Option<(&str, &str)>,
    ) -> Result<(AppRecord, ReleaseRecord)> {
        let store = &self.inner.store;
        for _ in 0..5 {
            let app = store
                .get_app_by_id(&app.id)
                .await?
                .ok_or_else(|| app_not_found(&app.name))?;
            if app.deleting {
                return Err(Error::new(
                    ErrorCode::AppDeleting,
                    format!("app `{}` is being deleted", app.name),
                ));
            }
            let current = match app.current_release {
                Some(n) => store.get_release(&app.id, n).await?,
                None => None,
            };
            let spec = next_spec(current.as_ref().map(|r| &r.spec), change, &app.name)?;
            validate_spec(&spec)?;
            // Place the app on a cluster at its first release (by zone, default, priority).
            let placement = match &app.cluster_id {
                None => self.place(spec.zone.as_deref()).await?,
                Some(_) => None,
            };
            let number = app.current_release.unwrap_or(0) + 1;
            let now = self.inner.clock.now();
            let release = ReleaseRecord {
                app_id: app.id.clone(),
                number,
                spec,
                cause,
                rollback_of: match change {
                    Change::Rollback(_, from) => Some(*from),
                    _ => None,
                },
                author_id: Some(ctx.principal.user_id.clone()),
                author_email: Some(ctx.principal.email.clone()),
                created_at: now,
            };
            let idem = idempotency.map(|(key, hash)| IdempotencyRecord {
                app_id: app.id.clone(),
                key: key.to_owned(),
                request_hash: hash.to_owned(),
                release: number,
                created_at: now,
            });
            match store.append_release(&release, idem.as_ref()).await {
                Ok(generation) => {
                    let mut app = AppRecord {
                        generation,
                        current_release: Some(number),
                        updated_at: now,
                        ..app
                    };
                    if let Some(cluster) = placement {
                        store.set_app_cluster(&app.id, Some(&cluster.id)).await?;
                        app.cluster_id = Some(cluster.id);
                    }
                    return Ok((app, release));
                }
                Err(StoreError::Conflict(c)) if c == conflict::RELEASE_NUMBER => {}
                Err(StoreError::Conflict(c)) if c == conflict::IDEMPOTENCY_KEY => {
                    return Err(Error::new(
                        ErrorCode::IdempotencyKeyReused,
                        "this Idempotency-Key is already in use",
                    ));
                }
                Err(StoreError::NotFound) => return Err(app_not_found(&app.name)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::new(
            ErrorCode::Conflict,
            "too many concurrent changes to this app; try again",
        ))
    }

    async fn current_or_refuse(&self, org: &OrgRecord, name: &str) -> Result<AppRecord> {
        let app = self.find_app(org, name).await?;
        if app.current_release.is_none() {
            return Err(Error::new(
                ErrorCode::NoRelease,
                format!("app `{name}` has no release yet; deploy it first"),
            ));
        }
        Ok(app)
    }

    pub async fn scale(&self, ctx: &Ctx, org: &str, name: &str, replicas: u32) -> Result<Deployed> {
        let a = self.authorize(ctx, org, Action::AppsWrite).await?;
        let app = self.current_or_refuse(&a.org, name).await?;
        self.release(ctx, &a.org, &app, Change::Scale(replicas), None)
            .await
    }

    pub async fn change_env(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
        change: &KeyValueChange,
    ) -> Result<Deployed> {
        let a = self.authorize(ctx, org, Action::AppsWrite).await?;
        check_change(change)?;
        let app = self.current_or_refuse(&a.org, name).await?;
        self.release(ctx, &a.org, &app, Change::Env(change), None)
            .await
    }

    /// Rolls back to `to` (default: the release before the current one) by
    /// copying it into a new release.
    pub async fn rollback(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
        to: Option<u64>,
    ) -> Result<Deployed> {
        let a = self.authorize(ctx, org, Action::AppsWrite).await?;
        let app = self.current_or_refuse(&a.org, name).await?;
        let current = app.current_release.unwrap_or(0);
        let target = match to {
            Some(n) => n,
            None if current > 1 => current - 1,
            None => {
                return Err(Error::new(
                    ErrorCode::NoRelease,
                    "there is no earlier release to roll back to",
                ));
            }
        };
        if target == current {
            return Err(Error::validation(format!(
                "release {target} is already the current release"
            )));
        }
        let old = self
            .inner
            .store
            .get_release(&app.id, target)
            .await?
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::ReleaseNotFound,
                    format!("app `{name}` has no release {target}"),
                )
            })?;
        self.release(
            ctx,
            &a.org,
            &app,
            Change::Rollback(Box::new(old.spec), target),
            None,
        )
        .await
    }

    pub async fn restart(&self, ctx: &Ctx, org: &str, name: &str) -> Result<App> {
        let a = self.authorize(ctx, org, Action::AppsWrite).await?;
        let result = async {
            let app = self.current_or_refuse(&a.org, name).await?;
            let now = self.inner.clock.now();
            let generation = self.inner.store.restart_app(&app.id, now).await?;
            Ok(AppRecord {
                generation,
                restarted_at: Some(now),
                updated_at: now,
                ..app
            })
        }
        .await;
        let app = self
            .audited(ctx, &a.org, "app.restart", &format!("app:{name}"), result)
            .await?;
        self.changed(&app.id);
        self.event(
            &app.id,
            "app.restart",
            format!("restart requested by {}", ctx.principal.email),
            app.current_release,
        )
        .await;
        Ok(self.app_dto(app, &a.org))
    }

    /// Asks for deletion; the reconciler removes every object, then the record.
    pub async fn delete_app(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
        delete_volumes: bool,
    ) -> Result<App> {
        let a = self.authorize(ctx, org, Action::AppsWrite).await?;
        let result = async {
            let app = self.find_app(&a.org, name).await?;
            let generation = self
                .inner
                .store
                .mark_app_deleting(&app.id, delete_volumes)
                .await?;
            Ok(AppRecord {
                generation,
                deleting: true,
                delete_volumes,
                ..app
            })
        }
        .await;
        let app = self
            .audited(ctx, &a.org, "app.delete", &format!("app:{name}"), result)
            .await?;
        self.changed(&app.id);
        self.event(
            &app.id,
            "app.deleting",
            format!("deletion requested by {}", ctx.principal.email),
            None,
        )
        .await;
        Ok(self.app_dto(app, &a.org))
    }

    pub async fn list_releases(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
        page: &PageRequest,
    ) -> Result<Page<Release>> {
        let a = self.authorize(ctx, org, Action::AppsRead).await?;
        let app = self.find_app(&a.org, name).await?;
        let rows = self.inner.store.list_releases(&app.id, page).await?;
        let page = paginate(rows, page, |r| r.number.to_string());
        Ok(Page {
            items: page.items.into_iter().map(release_dto).collect(),
            next_cursor: page.next_cursor,
        })
    }

    pub async fn get_release(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
        number: u64,
    ) -> Result<Release> {
        let a = self.authorize(ctx, org, Action::AppsRead).await?;
        let app = self.find_app(&a.org, name).await?;
        self.inner
            .store
            .get_release(&app.id, number)
            .await?
            .map(release_dto)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::ReleaseNotFound,
                    format!("app `{name}` has no release {number}"),
                )
            })
    }

    /// Events with `seq > from`, oldest first. Returns the app id too, for streaming.
    pub async fn app_events(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
        from: u64,
        limit: u32,
    ) -> Result<(String, Vec<AppEvent>)> {
        let a = self.authorize(ctx, org, Action::AppsRead).await?;
        let app = self.find_app(&a.org, name).await?;
        let rows = self
            .inner
            .store
            .list_app_events(&app.id, from, limit.clamp(1, 1000))
            .await?;
        Ok((app.id, rows.into_iter().map(event_dto).collect()))
    }

    /// Events of an app by id, for a stream that has already been authorized.
    pub async fn app_events_by_id(
        &self,
        app_id: &str,
        from: u64,
        limit: u32,
    ) -> Result<Vec<AppEvent>> {
        let rows = self
            .inner
            .store
            .list_app_events(app_id, from, limit.clamp(1, 1000))
            .await?;
        Ok(rows.into_iter().map(event_dto).collect())
    }

    pub fn bus(&self) -> &std::sync::Arc<dyn crate::bus::Bus> {
        &self.inner.config.bus
    }

    // ---- secrets

    pub(crate) fn secret_box(&self) -> Result<&crate::crypto::SecretBox> {
        self.inner.config.secret_box.as_ref().ok_or_else(|| {
            Error::new(
                ErrorCode::Unavailable,
                "secrets are unavailable: the server has no secret key configured",
            )
        })
    }

    async fn open_secrets(&self, app_id: &str, version: u64) -> Result<BTreeMap<String, String>> {
        if version == 0 {
            return Ok(BTreeMap::new());
        }
        let rec = self
            .inner
            .store
            .get_secret_version(app_id, version)
            .await?
            .ok_or_else(|| Error::internal(format!("secret version {version} is missing")))?;
        let plain = self
            .secret_box()?
            .open(&rec.sealed, secret_aad(app_id, version).as_bytes())?;
        serde_json::from_slice(&plain).map_err(Error::internal)
    }

    /// Sets and unsets secret keys: a new sealed secret version and a release using it.
    pub async fn change_secrets(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
        change: &KeyValueChange,
    ) -> Result<Deployed> {
        let a = self.authorize(ctx, org, Action::AppsWrite).await?;
        check_change(change)?;
        let app = self.current_or_refuse(&a.org, name).await?;
        let store = &self.inner.store;
        let sbox = self.secret_box()?;
        let latest = store.latest_secret_version(&app.id).await?;
        let version = latest.as_ref().map_or(0, |s| s.version);
        let mut values = self.open_secrets(&app.id, version).await?;
        for k in &change.unset {
            if values.remove(k).is_none() {
                return Err(Error::new(
                    ErrorCode::SecretNotFound,
                    format!("app `{name}` has no secret `{k}`"),
                ));
            }
        }
        values.extend(change.set.clone());
        let next = version + 1;
        let plain = serde_json::to_vec(&values).map_err(Error::internal)?;
        let rec = SecretVersionRecord {
            app_id: app.id.clone(),
            version: next,
            sealed: sbox.seal(&plain, secret_aad(&app.id, next).as_bytes())?,
            created_at: self.inner.clock.now(),
        };
        match store.create_secret_version(&rec).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(Error::new(
                    ErrorCode::Conflict,
                    "secrets changed concurrently; try again",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.release(ctx, &a.org, &app, Change::Secret(next), None)
            .await
    }

    /// Secret keys of the current release, values masked.
    pub async fn list_secrets(&self, ctx: &Ctx, org: &str, name: &str) -> Result<Vec<SecretEntry>> {
        let a = self.authorize(ctx, org, Action::AppsRead).await?;
        let app = self.find_app(&a.org, name).await?;
        let Some(latest) = self.inner.store.latest_secret_version(&app.id).await? else {
            return Ok(Vec::new());
        };
        let values = self.open_secrets(&app.id, latest.version).await?;
        Ok(values
            .into_keys()
            .map(|key| SecretEntry {
                key,
                value: MASK.to_owned(),
                version: latest.version,
            })
            .collect())
    }

    /// One secret in plain text: admins only, audited.
    pub async fn reveal_secret(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
        key: &str,
    ) -> Result<SecretEntry> {
        let a = self.authorize(ctx, org, Action::SecretsReveal).await?;
        let result = async {
            let app = self.find_app(&a.org, name).await?;
            let latest = self.inner.store.latest_secret_version(&app.id).await?;
            let version = latest.map_or(0, |s| s.version);
            let mut values = self.open_secrets(&app.id, version).await?;
            let value = values.remove(key).ok_or_else(|| {
                Error::new(
                    ErrorCode::SecretNotFound,
                    format!("app `{name}` has no secret `{key}`"),
                )
            })?;
            Ok(SecretEntry {
                key: key.to_owned(),
                value,
                version,
            })
        }
        .await;
        self.audited(
            ctx,
            &a.org,
            "app.secret.reveal",
            &format!("app:{name} key:{key}"),
            result,
        )
        .await
    }

    // ---- the reconciler's side

    /// Everything the reconciler needs to apply for one app, or `None` when
    /// the app no longer exists.
    pub async fn desired_app(&self, app_id: &str) -> Result<Option<DesiredApp>> {
        let store = &self.inner.store;
        let Some(app) = store.get_app_by_id(app_id).await? else {
            return Ok(None);
        };
        let org = store.get_org(&app.org_id).await?.ok_or_else(|| {
            Error::internal(format!("app {app_id} belongs to a missing organization"))
        })?;
        let release = match app.current_release {
            Some(n) => store.get_release(app_id, n).await?,
            None => None,
        };
        let (release_no, spec) = match release {
            Some(r) => (r.number, r.spec),
            None => (0, AppSpec::default()),
        };
        let secrets = self.open_secrets(app_id, spec.secret_version).await?;
        Ok(Some(DesiredApp {
            domain: self.default_domain(&app.name, &org.slug),
            app_id: app.id,
            app_name: app.name,
            org_id: org.id,
            org_slug: org.slug,
            namespace: org.namespace,
            generation: app.generation,
            release: release_no,
            spec,
            secrets,
            restarted_at: app.restarted_at,
            cluster_id: app.cluster_id,
            deleting: app.deleting,
            delete_volumes: app.delete_volumes,
        }))
    }

    /// Ids of every app, a page at a time (the reconciler's resync).
    pub async fn app_ids(&self, page: &PageRequest) -> Result<Page<String>> {
        let rows = self.inner.store.list_all_apps(page).await?;
        let page = paginate(rows, page, |r| r.id.clone());
        Ok(Page {
            items: page.items.into_iter().map(|r| r.id).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Records the observed status; emits rollout events when the phase changes.
    pub async fn record_status(&self, app_id: &str, mut status: AppStatus) -> Result<()> {
        let store = &self.inner.store;
        let Some(app) = store.get_app_by_id(app_id).await? else {
            return Ok(());
        };
        let old = app.status;
        status.conditions =
            crate::conditions::merge(&old.conditions, status.conditions, self.inner.clock.now());
        if status == old {
            return Ok(());
        }
        status.updated_at = Some(self.inner.clock.now());
        store.set_app_status(app_id, &status).await?;
        let moved = old.phase != status.phase
            || old.reason != status.reason
            || old.ready_replicas != status.ready_replicas
            || old.observed_release != status.observed_release;
        if moved {
            let (kind, msg) = match status.phase {
                satusky_types::apps::AppPhase::Available => (
                    "rollout.complete",
                    format!(
                        "{}/{} replicas ready",
                        status.ready_replicas, status.desired_replicas
                    ),
                ),
                satusky_types::apps::AppPhase::Degraded => (
                    "rollout.failed",
                    format!(
                        "{}: {}",
                        status.reason.as_deref().unwrap_or("Degraded"),
                        status
                            .message
                            .as_deref()
                            .unwrap_or("the app is not healthy")
                    ),
                ),
                _ => (
                    "rollout.progress",
                    format!(
                        "{}/{} replicas ready, {} updated",
                        status.ready_replicas, status.desired_replicas, status.updated_replicas
                    ),
                ),
            };
            self.event(app_id, kind, msg, status.observed_release).await;
        }
        Ok(())
    }

    /// Records an event the reconciler observed (e.g. a pod change).
    pub async fn record_event(
        &self,
        app_id: &str,
        kind: &str,
        message: String,
        release: Option<u64>,
    ) {
        self.event(app_id, kind, message, release).await;
    }

    /// Called by the reconciler once every object of a deleting app is gone.
    pub async fn finalize_app_deletion(&self, app_id: &str) -> Result<()> {
        match self.inner.store.delete_app(app_id).await {
            Ok(()) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The organization an app belongs to, for audit and messages.
    pub async fn audit_app_outcome(
        &self,
        ctx: &Ctx,
        org: &OrgRecord,
        action: &str,
        target: &str,
        outcome: Outcome,
    ) {
        self.audit(ctx, org, action, target, outcome).await;
    }
}

fn secret_aad(app_id: &str, version: u64) -> String {
    format!("app:{app_id}:secrets:{version}")
}

fn check_change(change: &KeyValueChange) -> Result<()> {
    if change.set.is_empty() && change.unset.is_empty() {
        return Err(Error::validation(
            "nothing to change: give keys to set or unset",
        ));
    }
    for k in change.set.keys().chain(change.unset.iter()) {
        validate_env_key(k)?;
    }
    if let Some(k) = change.unset.iter().find(|k| change.set.contains_key(*k)) {
        return Err(Error::validation(format!("`{k}` is both set and unset")));
    }
    Ok(())
}

/// SHA-256 of the canonical JSON of a deploy request.
fn request_hash(req: &DeployRequest) -> String {
    let json = serde_json::to_vec(req).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

/// The spec of the next release: the current one (or defaults) with the change applied.
fn next_spec(current: Option<&AppSpec>, change: &Change<'_>, name: &str) -> Result<AppSpec> {
    let mut spec = current.cloned().unwrap_or_else(|| AppSpec {
        replicas: 1,
        ..AppSpec::default()
    });
    match change {
        Change::Deploy(req) => {
            spec.image.clone_from(&req.image);
            if let Some(v) = &req.env {
                spec.env.clone_from(v);
            }
            if let Some(v) = &req.resources {
                spec.resources = v.clone();
            }
            if let Some(v) = req.replicas {
                spec.replicas = v;
            }
            if let Some(v) = &req.ports {
                spec.ports.clone_from(v);
            }
            if let Some(v) = &req.health {
                spec.health.clone_from(v);
            }
            if let Some(v) = &req.strategy {
                spec.strategy = v.clone();
            }
            if let Some(v) = &req.volumes {
                spec.volumes.clone_from(v);
            }
            if let Some(v) = &req.autoscaling {
                if v.is_none()
                    && req.replicas.is_none()
                    && let Some(old) = &spec.autoscaling
                {
                    // Back to fixed replicas: no fewer than the autoscaler kept.
                    spec.replicas = spec.replicas.max(old.min_replicas);
                }
                spec.autoscaling.clone_from(v);
            }
            if let Some(v) = req.vertical_autoscaling {
                spec.vertical_autoscaling = v;
            }
            if let Some(v) = &req.machine_selector {
                spec.machine_selector = v.clone().filter(|v| !v.trim().is_empty());
            }
            if let Some(v) = &req.disruption_budget {
                spec.disruption_budget.clone_from(v);
            }
            if let Some(v) = &req.zone {
                spec.zone.clone_from(v);
            }
        }
        Change::Scale(n) => {
            if current.is_some_and(|c| c.autoscaling.is_some()) {
                return Err(Error::validation(format!(
                    "app `{name}` autoscales; change its autoscaling bounds instead of scaling it"
                )));
            }
            spec.replicas = *n;
        }
        Change::Env(c) => {
            for k in &c.unset {
                if spec.env.remove(k).is_none() {
                    return Err(Error::new(
                        ErrorCode::ConfigKeyNotFound,
                        format!("app `{name}` has no variable `{k}`"),
                    ));
                }
            }
            spec.env.extend(c.set.clone());
        }
        Change::Secret(v) => spec.secret_version = *v,
        Change::DetachVolume(v) => {
            let before = spec.volumes.len();
            spec.volumes.retain(|x| x.name != *v);
            if spec.volumes.len() == before {
                return Err(Error::new(
                    ErrorCode::VolumeNotFound,
                    format!("app `{name}` mounts no volume `{v}`"),
                ));
            }
        }
        Change::Rollback(old, _) => spec = (**old).clone(),
    }
    Ok(spec)
}

impl Services {
    /// The plain environment of the current release.
    pub async fn app_env(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
    ) -> Result<BTreeMap<String, String>> {
        let a = self.authorize(ctx, org, Action::AppsRead).await?;
        let app = self.find_app(&a.org, name).await?;
        let Some(n) = app.current_release else {
            return Ok(BTreeMap::new());
        };
        Ok(self
            .inner
            .store
            .get_release(&app.id, n)
            .await?
            .map(|r| r.spec.env)
            .unwrap_or_default())
    }

    /// The volumes of the current release.
    pub async fn app_volumes(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
    ) -> Result<Vec<satusky_types::apps::Volume>> {
        let a = self.authorize(ctx, org, Action::AppsRead).await?;
        let app = self.find_app(&a.org, name).await?;
        let Some(n) = app.current_release else {
            return Ok(Vec::new());
        };
        Ok(self
            .inner
            .store
            .get_release(&app.id, n)
            .await?
            .map(|r| r.spec.volumes)
            .unwrap_or_default())
    }
}

impl Services {
    fn workload(&self) -> Result<&std::sync::Arc<dyn crate::apps::Workload>> {
        self.inner.config.workload.as_ref().ok_or_else(|| {
            Error::new(
                ErrorCode::Unavailable,
                "logs are unavailable: no cluster reader is configured",
            )
        })
    }

    async fn workload_target(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
        opts: &crate::apps::LogOptions,
    ) -> Result<crate::apps::WorkloadTarget> {
        let a = self.authorize(ctx, org, Action::AppsRead).await?;
        let app = self.find_app(&a.org, name).await?;
        if opts.tail.is_some_and(|t| t == 0 || t > 5000) {
            return Err(Error::new(
                ErrorCode::InvalidQuery,
                "tail must be between 1 and 5000",
            ));
        }
        Ok(crate::apps::WorkloadTarget {
            cluster_id: app.cluster_id,
            namespace: a.org.namespace,
            app_id: app.id,
            app_name: app.name,
        })
    }

    /// The last lines of the app's replicas, from the cluster's pod logs.
    pub async fn app_logs(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
        opts: &crate::apps::LogOptions,
    ) -> Result<Vec<satusky_types::apps::LogLine>> {
        let target = self.workload_target(ctx, org, name, opts).await?;
        self.workload()?.logs(&target, opts).await
    }

    /// The app's log lines as they are written.
    pub async fn follow_app_logs(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
        opts: &crate::apps::LogOptions,
    ) -> Result<futures::stream::BoxStream<'static, satusky_types::apps::LogLine>> {
        let target = self.workload_target(ctx, org, name, opts).await?;
        self.workload()?.follow_logs(&target, opts).await
    }
}

impl Services {
    /// Every volume of the app: the current release's, and claims left in
    /// the cluster by detached ones.
    pub async fn volume_infos(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
    ) -> Result<Vec<satusky_types::apps::VolumeInfo>> {
        let target = self
            .workload_target(ctx, org, name, &crate::apps::LogOptions::default())
            .await?;
        let spec_volumes = self.app_volumes(ctx, org, name).await?;
        let claims = match &self.inner.config.workload {
            Some(w) => w.volume_claims(&target).await?,
            None => Vec::new(),
        };
        let mut out: Vec<satusky_types::apps::VolumeInfo> = spec_volumes
            .iter()
            .map(|v| {
                let claim = claims.iter().find(|c| c.0 == v.name);
                satusky_types::apps::VolumeInfo {
                    name: v.name.clone(),
                    size: Some(v.size.clone()),
                    mount_path: Some(v.mount_path.clone()),
                    attached: true,
                    phase: claim.and_then(|c| c.1.clone()),
                    capacity: claim.and_then(|c| c.2.clone()),
                    claim: crate::apps::claim_name(name, &v.name),
                }
            })
            .collect();
        for (volume, phase, capacity) in claims {
            if !out.iter().any(|v| v.name == volume) {
                out.push(satusky_types::apps::VolumeInfo {
                    claim: crate::apps::claim_name(name, &volume),
                    name: volume,
                    size: capacity.clone(),
                    mount_path: None,
                    attached: false,
                    phase,
                    capacity,
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub async fn volume_info(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
        volume: &str,
    ) -> Result<satusky_types::apps::VolumeInfo> {
        self.volume_infos(ctx, org, name)
            .await?
            .into_iter()
            .find(|v| v.name == volume)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::VolumeNotFound,
                    format!("app `{name}` has no volume `{volume}`"),
                )
            })
    }

    /// Stops mounting a volume: a new release without it. Its claim (and data) stays.
    pub async fn detach_volume(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
        volume: &str,
    ) -> Result<Deployed> {
        let a = self.authorize(ctx, org, Action::AppsWrite).await?;
        let app = self.current_or_refuse(&a.org, name).await?;
        self.release(
            ctx,
            &a.org,
            &app,
            Change::DetachVolume(volume.to_owned()),
            None,
        )
        .await
    }

    /// Deletes a detached volume's claim and its data. Refused while mounted.
    pub async fn delete_volume(
        &self,
        ctx: &Ctx,
        org: &str,
        name: &str,
        volume: &str,
    ) -> Result<()> {
        let a = self.authorize(ctx, org, Action::AppsWrite).await?;
        let result = async {
            let info = self.volume_info(ctx, org, name, volume).await?;
            if info.attached {
                return Err(Error::new(
                    ErrorCode::VolumeAttached,
                    format!("volume `{volume}` is mounted by the current release; detach it first"),
                ));
            }
            let target = self
                .workload_target(ctx, org, name, &crate::apps::LogOptions::default())
                .await?;
            self.workload()?.delete_volume_claim(&target, volume).await
        }
        .await;
        self.audited(
            ctx,
            &a.org,
            "app.volume.delete",
            &format!("app:{name} volume:{volume}"),
            result,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use satusky_types::apps::{Autoscaling, DisruptionBudget, HealthCheck, Port, VpaMode};

    use super::*;

    fn full() -> AppSpec {
        AppSpec {
            image: "nginx:1".into(),
            replicas: 1,
            ports: vec![Port {
                container_port: 8080,
                protocol: "TCP".into(),
                public: true,
            }],
            health: Some(HealthCheck {
                path: "/healthz".into(),
                port: None,
                initial_delay_seconds: 0,
            }),
            autoscaling: Some(Autoscaling {
                min_replicas: 3,
                max_replicas: 6,
                cpu_percent: 80,
            }),
            vertical_autoscaling: Some(VpaMode::Initial),
            machine_selector: Some("pool=gpu".into()),
            disruption_budget: Some(DisruptionBudget {
                min_available: Some("2".into()),
                max_unavailable: None,
            }),
            zone: Some("zone-a".into()),
            ..AppSpec::default()
        }
    }

    fn deploy(json: serde_json::Value) -> Result<AppSpec> {
        let req: DeployRequest = serde_json::from_value(json).unwrap();
        next_spec(Some(&full()), &Change::Deploy(&req), "web")
    }

    #[test]
    fn a_deploy_without_the_optional_settings_keeps_them() {
        let spec = deploy(serde_json::json!({"image": "nginx:2"})).unwrap();
        assert_eq!(
            spec,
            AppSpec {
                image: "nginx:2".into(),
                ..full()
            }
        );
    }

    #[test]
    fn null_removes_each_optional_setting_and_nothing_else() {
        for field in [
            "health",
            "autoscaling",
            "vertical_autoscaling",
            "machine_selector",
            "disruption_budget",
            "zone",
        ] {
            let spec = deploy(serde_json::json!({"image": "nginx:1", field: null})).unwrap();
            let mut want = full();
            match field {
                "health" => want.health = None,
                "autoscaling" => {
                    want.autoscaling = None;
                    want.replicas = 3;
                }
                "vertical_autoscaling" => want.vertical_autoscaling = None,
                "machine_selector" => want.machine_selector = None,
                "disruption_budget" => want.disruption_budget = None,
                _ => want.zone = None,
            }
            assert_eq!(spec, want, "{field}");
        }
    }

    #[test]
    fn removing_autoscaling_runs_the_replicas_asked_or_at_least_the_autoscalers_minimum() {
        let spec = deploy(serde_json::json!({"image": "nginx:1", "autoscaling": null})).unwrap();
        assert_eq!((spec.autoscaling, spec.replicas), (None, 3));
        let spec =
            deploy(serde_json::json!({"image": "nginx:1", "autoscaling": null, "replicas": 1}))
                .unwrap();
        assert_eq!((spec.autoscaling, spec.replicas), (None, 1));
        // Already fixed: a removal changes no replica count.
        let fixed = AppSpec {
            autoscaling: None,
            replicas: 2,
            ..full()
        };
        let req: DeployRequest =
            serde_json::from_value(serde_json::json!({"image": "nginx:1", "autoscaling": null}))
                .unwrap();
        let spec = next_spec(Some(&fixed), &Change::Deploy(&req), "web").unwrap();
        assert_eq!(spec.replicas, 2);
    }

    #[test]
    fn an_empty_machine_selector_still_removes_it() {
        let spec =
            deploy(serde_json::json!({"image": "nginx:1", "machine_selector": " "})).unwrap();
        assert_eq!(spec.machine_selector, None);
    }

    #[test]
    fn removals_are_told_apart_in_the_idempotency_hash() {
        let absent: DeployRequest =
            serde_json::from_value(serde_json::json!({"image": "nginx:1"})).unwrap();
        let null: DeployRequest =
            serde_json::from_value(serde_json::json!({"image": "nginx:1", "health": null}))
                .unwrap();
        assert_ne!(request_hash(&absent), request_hash(&null));
        assert_eq!(request_hash(&null), request_hash(&null.clone()));
    }
}
