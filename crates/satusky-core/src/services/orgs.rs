//! Organizations, memberships and the audit log, behind one authorization
//! rule: invisible unless you are a member (404), then allowed or forbidden
//! by role (403).

use satusky_types::ErrorCode;
use satusky_types::orgs::{AuditEntry, Member, Org, Outcome, Role};
use satusky_types::page::Page;

use super::{Ctx, Services};
use crate::authz::{self, Action};
use crate::pagination::{PageRequest, paginate};
use crate::store::{
    AuditFilter, AuditRecord, MemberRow, MembershipRecord, OrgRecord, StoreError, conflict,
};
use crate::{Error, Result, ids, validate};

/// An organization the caller may act on, with the caller's role in it.
#[derive(Debug, Clone)]
pub struct OrgAccess {
    pub org: OrgRecord,
    pub role: Role,
}

fn org_dto(o: &OrgRecord, role: Role) -> Org {
    Org {
        id: o.id.clone(),
        slug: o.slug.clone(),
        name: o.name.clone(),
        namespace: o.namespace.clone(),
        role,
        created_at: o.created_at,
    }
}

fn member_dto(m: MemberRow) -> Member {
    Member {
        user_id: m.user_id,
        email: m.email,
        name: m.name,
        role: m.role,
        joined_at: m.joined_at,
    }
}

fn audit_dto(a: AuditRecord) -> AuditEntry {
    AuditEntry {
        id: a.id,
        org_id: a.org_id,
        actor_id: a.actor_id,
        actor_email: a.actor_email,
        action: a.action,
        target: a.target,
        request_id: a.request_id,
        outcome: a.outcome,
        at: a.at,
    }
}

fn org_not_found(slug: &str) -> Error {
    Error::new(
        ErrorCode::OrgNotFound,
        format!("organization `{slug}` not found"),
    )
}

fn last_owner() -> Error {
    Error::new(
        ErrorCode::LastOwner,
        "an organization needs at least one owner: make someone else owner first",
    )
}

impl Services {
    /// The organization if the caller can see it at all, with the caller's role.
    pub(crate) async fn visible_org(&self, ctx: &Ctx, slug: &str) -> Result<(OrgRecord, Role)> {
        let store = &self.inner.store;
        let org = store
            .get_org_by_slug(slug)
            .await?
            .ok_or_else(|| org_not_found(slug))?;
        if !ctx.principal.can_reach_org(&org.id) {
            return Err(org_not_found(slug));
        }
        let m = store
            .get_membership(&org.id, &ctx.principal.user_id)
            .await?
            .ok_or_else(|| org_not_found(slug))?;
        Ok((org, m.role))
    }

    /// The one authorization check of every org-scoped call. A denied
    /// mutation is audited as `denied`.
    pub async fn authorize(&self, ctx: &Ctx, slug: &str, action: Action) -> Result<OrgAccess> {
        let (org, role) = self.visible_org(ctx, slug).await?;
        if let Err(e) = authz::check(role, action) {
            if !matches!(
                action,
                Action::OrgRead | Action::MembersRead | Action::AuditRead | Action::MachinesRead
            ) {
                self.audit(
                    ctx,
                    &org,
                    action.name(),
                    &format!("org:{}", org.slug),
                    Outcome::Denied,
                )
                .await;
            }
            return Err(e);
        }
        Ok(OrgAccess { org, role })
    }

    pub async fn create_org(&self, ctx: &Ctx, slug: &str, name: Option<&str>) -> Result<Org> {
        validate::slug("slug", slug)?;
        let name = validate::display_name("name", name.unwrap_or(slug))?;
        if ctx.principal.token_org().is_some() {
            return Err(Error::forbidden(
                "this token is limited to one organization and cannot create organizations",
            ));
        }
        let store = &self.inner.store;
        for attempt in 0..100 {
            let namespace = validate::namespace_for(slug, attempt);
            if store.namespace_reserved(&namespace).await? {
                continue;
            }
            let org = OrgRecord {
                id: ids::new_id(),
                slug: slug.to_owned(),
                name: name.clone(),
                namespace,
                created_at: self.inner.clock.now(),
            };
            match store.create_org(&org, &ctx.principal.user_id).await {
                Ok(()) => {
                    self.audit(
                        ctx,
                        &org,
                        "org.create",
                        &format!("org:{slug}"),
                        Outcome::Success,
                    )
                    .await;
                    return Ok(org_dto(&org, Role::Owner));
                }
                Err(StoreError::Conflict(c)) if c == conflict::ORG_SLUG => {
                    return Err(Error::new(
                        ErrorCode::OrgSlugTaken,
                        format!("the organization slug `{slug}` is taken"),
                    ));
                }
                Err(StoreError::Conflict(c)) if c == conflict::NAMESPACE => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::internal(format!(
            "no free namespace for slug {slug}"
        )))
    }

    pub async fn list_orgs(&self, ctx: &Ctx, page: &PageRequest) -> Result<Page<Org>> {
        let store = &self.inner.store;
        if let Some(scope) = ctx.principal.token_org() {
            // A scoped token sees exactly its one organization.
            let mut items = Vec::new();
            if page.after.is_none()
                && let Some(org) = store.get_org(scope).await?
                && let Some(m) = store
                    .get_membership(&org.id, &ctx.principal.user_id)
                    .await?
            {
                items.push(org_dto(&org, m.role));
            }
            return Ok(Page {
                items,
                next_cursor: None,
            });
        }
        let rows = store.list_user_orgs(&ctx.principal.user_id, page).await?;
        let page = paginate(rows, page, |(o, _)| o.id.clone());
        Ok(Page {
            items: page.items.iter().map(|(o, r)| org_dto(o, *r)).collect(),
            next_cursor: page.next_cursor,
        })
    }

    pub async fn get_org(&self, ctx: &Ctx, slug: &str) -> Result<Org> {
        let a = self.authorize(ctx, slug, Action::OrgRead).await?;
        Ok(org_dto(&a.org, a.role))
    }

    pub async fn rename_org(&self, ctx: &Ctx, slug: &str, name: &str) -> Result<Org> {
        let a = self.authorize(ctx, slug, Action::OrgRename).await?;
        let result = async {
            let name = validate::display_name("name", name)?;
            self.inner.store.rename_org(&a.org.id, &name).await?;
            Ok(OrgRecord {
                name,
                ..a.org.clone()
            })
        }
        .await;
        let org = self
            .audited(ctx, &a.org, "org.rename", &format!("org:{slug}"), result)
            .await?;
        Ok(org_dto(&org, a.role))
    }

    /// Deletes the organization and everything in it. `confirm` must repeat the slug.
    pub async fn delete_org(&self, ctx: &Ctx, slug: &str, confirm: Option<&str>) -> Result<()> {
        let a = self.authorize(ctx, slug, Action::OrgDelete).await?;
        if confirm != Some(slug) {
            return Err(Error::new(
                ErrorCode::ConfirmationRequired,
                format!(
                    "deleting an organization deletes everything in it; repeat its slug as `confirm={slug}`"
                ),
            ));
        }
        self.audit(
            ctx,
            &a.org,
            "org.delete",
            &format!("org:{slug}"),
            Outcome::Success,
        )
        .await;
        self.inner.store.delete_org(&a.org.id).await?;
        // The reconcilers delete its namespace (and everything in it) from
        // every cluster; their resync does it too if this notice is lost.
        self.inner
            .config
            .bus
            .publish(crate::bus::Notice::OrgDeleted {
                org_id: a.org.id.clone(),
            });
        tracing::info!(org.id = %a.org.id, k8s.namespace = %a.org.namespace, "organization deleted");
        Ok(())
    }

    // ---- members

    pub async fn list_members(
        &self,
        ctx: &Ctx,
        slug: &str,
        page: &PageRequest,
    ) -> Result<Page<Member>> {
        let a = self.authorize(ctx, slug, Action::MembersRead).await?;
        let rows = self.inner.store.list_members(&a.org.id, page).await?;
        let page = paginate(rows, page, |m| m.user_id.clone());
        Ok(Page {
            items: page.items.into_iter().map(member_dto).collect(),
            next_cursor: page.next_cursor,
        })
    }

    async fn find_member(&self, org: &OrgRecord, user: &str) -> Result<MemberRow> {
        let store = &self.inner.store;
        let not_found = || {
            Error::new(
                ErrorCode::MemberNotFound,
                format!("`{user}` is not a member of `{}`", org.slug),
            )
        };
        let record = if user.contains('@') {
            store.get_user_by_email(&user.trim().to_lowercase()).await?
        } else {
            store.get_user(user).await?
        }
        .ok_or_else(not_found)?;
        let m = store
            .get_membership(&org.id, &record.id)
            .await?
            .ok_or_else(not_found)?;
        Ok(MemberRow {
            user_id: record.id,
            email: record.email,
            name: record.name,
            role: m.role,
            joined_at: m.created_at,
        })
    }

    pub async fn add_member(
        &self,
        ctx: &Ctx,
        slug: &str,
        email: &str,
        role: Role,
    ) -> Result<Member> {
        let (org, actor_role) = self.visible_org(ctx, slug).await?;
        let target = format!("user:{}", email.trim().to_lowercase());
        let result = async {
            authz::check_role_change(actor_role, None, Some(role))?;
            let email = validate::email(email)?;
            let user = self
                .inner
                .store
                .get_user_by_email(&email)
                .await?
                .ok_or_else(|| {
                    Error::new(
                        ErrorCode::UserNotFound,
                        format!("no account with email {email}; they must sign up first"),
                    )
                })?;
            let m = MembershipRecord {
                org_id: org.id.clone(),
                user_id: user.id.clone(),
                role,
                created_at: self.inner.clock.now(),
            };
            match self.inner.store.add_member(&m).await {
                Ok(()) => Ok(Member {
                    user_id: user.id,
                    email: user.email,
                    name: user.name,
                    role,
                    joined_at: m.created_at,
                }),
                Err(StoreError::Conflict(_)) => Err(Error::new(
                    ErrorCode::MemberExists,
                    format!("{email} is already a member of `{slug}`"),
                )),
                Err(e) => Err(e.into()),
            }
        }
        .await;
        self.audited(ctx, &org, "org.member.add", &target, result)
            .await
    }

    pub async fn change_member_role(
        &self,
        ctx: &Ctx,
        slug: &str,
        user: &str,
        role: Role,
    ) -> Result<Member> {
        let (org, actor_role) = self.visible_org(ctx, slug).await?;
        let result = async {
            let m = self.find_member(&org, user).await?;
            authz::check_role_change(actor_role, Some(m.role), Some(role))?;
            match self
                .inner
                .store
                .set_member_role(&org.id, &m.user_id, role)
                .await
            {
                Ok(()) => Ok(member_dto(MemberRow { role, ..m })),
                Err(StoreError::LastOwner) => Err(last_owner()),
                Err(StoreError::NotFound) => Err(Error::new(
                    ErrorCode::MemberNotFound,
                    format!("`{user}` is not a member"),
                )),
                Err(e) => Err(e.into()),
            }
        }
        .await;
        self.audited(
            ctx,
            &org,
            "org.member.role",
            &format!("user:{user} role:{role}"),
            result,
        )
        .await
    }

    /// Removes a member. Anyone may remove themselves (leave); removing
    /// others needs admin, and owner for an owner.
    pub async fn remove_member(&self, ctx: &Ctx, slug: &str, user: &str) -> Result<()> {
        let (org, actor_role) = self.visible_org(ctx, slug).await?;
        let result = async {
            let m = self.find_member(&org, user).await?;
            if m.user_id != ctx.principal.user_id {
                authz::check_role_change(actor_role, Some(m.role), None)?;
            }
            match self.inner.store.remove_member(&org.id, &m.user_id).await {
                Ok(()) => Ok(()),
                Err(StoreError::LastOwner) => Err(last_owner()),
                Err(StoreError::NotFound) => Err(Error::new(
                    ErrorCode::MemberNotFound,
                    format!("`{user}` is not a member"),
                )),
                Err(e) => Err(e.into()),
            }
        }
        .await;
        self.audited(
            ctx,
            &org,
            "org.member.remove",
            &format!("user:{user}"),
            result,
        )
        .await
    }

    // ---- audit

    pub async fn list_audit(
        &self,
        ctx: &Ctx,
        slug: &str,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>> {
        let a = self.authorize(ctx, slug, Action::AuditRead).await?;
        if let (Some(s), Some(u)) = (filter.since, filter.until)
            && s >= u
        {
            return Err(Error::new(
                ErrorCode::InvalidQuery,
                "`since` must be before `until`",
            ));
        }
        let rows = self.inner.store.list_audit(&a.org.id, filter, page).await?;
        let page = paginate(rows, page, |e| e.id.clone());
        Ok(Page {
            items: page.items.into_iter().map(audit_dto).collect(),
            next_cursor: page.next_cursor,
        })
    }

    pub async fn get_audit(&self, ctx: &Ctx, slug: &str, id: &str) -> Result<AuditEntry> {
        let a = self.authorize(ctx, slug, Action::AuditRead).await?;
        self.inner
            .store
            .get_audit(&a.org.id, id)
            .await?
            .map(audit_dto)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::AuditEntryNotFound,
                    format!("no audit entry `{id}`"),
                )
            })
    }
}
