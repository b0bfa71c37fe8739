//! Cluster registry: operators register clusters (credentials sealed at
//! rest); apps are placed on one by zone, default flag and priority.

use satusky_types::ErrorCode;
use satusky_types::clusters::{Cluster, RegisterClusterRequest, Zone};
use satusky_types::page::Page;

use super::{Ctx, Services};
use crate::apps::ClusterRecord;
use crate::pagination::{PageRequest, paginate};
use crate::store::{StoreError, conflict};
use crate::{Error, Result, ids, validate};

fn cluster_dto(c: ClusterRecord) -> Cluster {
    Cluster {
        in_cluster: c.sealed_kubeconfig.is_empty(),
        id: c.id,
        name: c.name,
        region: c.region,
        zone: c.zone,
        default: c.is_default,
        priority: c.priority,
        health: c.health,
        health_message: c.health_message,
        created_at: c.created_at,
    }
}

fn kubeconfig_aad(cluster_id: &str) -> String {
    format!("cluster:{cluster_id}:kubeconfig")
}

impl Services {
    /// Refuses callers who do not operate the installation.
    pub async fn require_platform_admin(&self, ctx: &Ctx) -> Result<()> {
        if ctx.principal.token_org().is_none()
            && self
                .inner
                .store
                .is_platform_admin(&ctx.principal.user_id)
                .await?
        {
            Ok(())
        } else {
            Err(Error::forbidden(
                "only platform administrators manage clusters",
            ))
        }
    }

    /// Makes a user a platform administrator (from `satusky admin grant`).
    pub async fn grant_platform_admin(&self, email: &str, admin: bool) -> Result<()> {
        let email = validate::email(email)?;
        let user = self
            .inner
            .store
            .get_user_by_email(&email)
            .await?
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::UserNotFound,
                    format!("no account with email {email}"),
                )
            })?;
        Ok(self.inner.store.set_platform_admin(&user.id, admin).await?)
    }

    pub async fn register_cluster(
        &self,
        ctx: &Ctx,
        req: &RegisterClusterRequest,
    ) -> Result<Cluster> {
        self.require_platform_admin(ctx).await?;
        self.insert_cluster(req).await
    }

    /// Registers a cluster without a caller (bootstrap, `satusky dev`).
    pub async fn insert_cluster(&self, req: &RegisterClusterRequest) -> Result<Cluster> {
        validate::slug("cluster name", &req.name)?;
        for (field, v) in [("region", &req.region), ("zone", &req.zone)] {
            if !crate::selector::valid_value(v) || v.is_empty() {
                return Err(Error::validation(format!(
                    "{field} `{v}` must be a non-empty label value"
                )));
            }
        }
        let id = ids::new_id();
        let sealed_kubeconfig = match &req.kubeconfig {
            Some(k) if k.trim().is_empty() => return Err(Error::validation("kubeconfig is empty")),
            Some(k) => self
                .secret_box()?
                .seal(k.as_bytes(), kubeconfig_aad(&id).as_bytes())?,
            None => Vec::new(),
        };
        let rec = ClusterRecord {
            id,
            name: req.name.clone(),
            region: req.region.clone(),
            zone: req.zone.clone(),
            sealed_kubeconfig,
            is_default: req.default,
            priority: req.priority,
            health: "unknown".to_owned(),
            health_message: None,
            created_at: self.inner.clock.now(),
        };
        match self.inner.store.create_cluster(&rec).await {
            Ok(()) => Ok(cluster_dto(rec)),
            Err(StoreError::Conflict(c)) if c == conflict::CLUSTER_NAME => Err(Error::new(
                ErrorCode::ClusterNameTaken,
                format!("a cluster named `{}` is already registered", req.name),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list_clusters(&self, ctx: &Ctx, page: &PageRequest) -> Result<Page<Cluster>> {
        self.require_platform_admin(ctx).await?;
        let rows = self.inner.store.list_clusters(page).await?;
        let page = paginate(rows, page, |c| c.id.clone());
        Ok(Page {
            items: page.items.into_iter().map(cluster_dto).collect(),
            next_cursor: page.next_cursor,
        })
    }

    pub async fn delete_cluster(&self, ctx: &Ctx, name: &str) -> Result<()> {
        self.require_platform_admin(ctx).await?;
        let c = self
            .inner
            .store
            .get_cluster_by_name(name)
            .await?
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::ClusterNotFound,
                    format!("no cluster named `{name}`"),
                )
            })?;
        Ok(self.inner.store.delete_cluster(&c.id).await?)
    }

    /// Every registered cluster record, all pages.
    async fn all_clusters(&self) -> Result<Vec<ClusterRecord>> {
        let mut out = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let rows = self.inner.store.list_clusters(&page).await?;
            let more = rows.len() > page.limit as usize;
            out.extend(rows.into_iter().take(page.limit as usize));
            if !more {
                return Ok(out);
            }
            page.after = out.last().map(|c| c.id.clone());
        }
    }

    /// Every cluster with its opened kubeconfig (`None`: in-cluster), for the
    /// process that runs reconcilers.
    pub async fn cluster_credentials(&self) -> Result<Vec<(Cluster, Option<String>)>> {
        let mut out = Vec::new();
        for c in self.all_clusters().await? {
            let kubeconfig = if c.sealed_kubeconfig.is_empty() {
                None
            } else {
                let plain = self
                    .secret_box()?
                    .open(&c.sealed_kubeconfig, kubeconfig_aad(&c.id).as_bytes())?;
                Some(String::from_utf8(plain).map_err(Error::internal)?)
            };
            out.push((cluster_dto(c), kubeconfig));
        }
        Ok(out)
    }

    pub async fn set_cluster_health(
        &self,
        cluster_id: &str,
        healthy: bool,
        message: Option<&str>,
    ) -> Result<()> {
        let health = if healthy { "healthy" } else { "unreachable" };
        Ok(self
            .inner
            .store
            .set_cluster_health(cluster_id, health, message)
            .await?)
    }

    /// Zones apps can be placed in; any signed-in user may ask.
    pub async fn zones(&self) -> Result<Vec<Zone>> {
        let clusters = self.all_clusters().await?;
        let mut zones: Vec<Zone> = Vec::new();
        for c in clusters {
            match zones.iter_mut().find(|z| z.zone == c.zone) {
                Some(z) => {
                    z.clusters += 1;
                    z.healthy |= c.health == "healthy";
                }
                None => zones.push(Zone {
                    healthy: c.health == "healthy",
                    zone: c.zone,
                    region: c.region,
                    clusters: 1,
                }),
            }
        }
        zones.sort_by(|a, b| a.zone.cmp(&b.zone));
        Ok(zones)
    }

    /// The cluster an app should run on: a healthy-or-unknown cluster in the
    /// asked zone, else the default, else the highest priority; `None` when
    /// no cluster is registered.
    pub async fn place(&self, zone: Option<&str>) -> Result<Option<Cluster>> {
        let mut clusters: Vec<Cluster> = self
            .all_clusters()
            .await?
            .into_iter()
            .map(cluster_dto)
            .filter(|c| c.health != "unreachable")
            .collect();
        clusters.sort_by(|a, b| b.default.cmp(&a.default).then(b.priority.cmp(&a.priority)));
        if let Some(z) = zone {
            return match clusters.into_iter().find(|c| c.zone == z) {
                Some(c) => Ok(Some(c)),
                None => Err(Error::validation(format!(
                    "no healthy cluster serves zone `{z}`; see `1ctl cluster zones`"
                ))),
            };
        }
        Ok(clusters.into_iter().next())
    }
}
