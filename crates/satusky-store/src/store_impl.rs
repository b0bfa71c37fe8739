// The `Store` implementation shared by both dialects, compiled once per
// dialect with `include!` from `sqlite.rs` and `postgres.rs`: sqlx has no
// usable generic bound over "a database that encodes these types", so the
// code is written once and type-checked twice against concrete types.
//
// The including module provides:
// - `Backend`: the store struct, with a `pool: sqlx::Pool<Db>` field;
// - `Db` and `Row`: its sqlx database and row types;
// - `ts()`, `ts_at()` and `opt_ts_at()`: how a timestamp is bound and read;
// - `migrator()`: the dialect's embedded migrations;
// - `begin_write()`: a transaction that holds the write lock (SQLite) or a
//   plain one (PostgreSQL, which locks rows with `LOCK_OWNERS`);
// - `LOCK_OWNERS`: reads (and on PostgreSQL locks) the owners of an org
//   and the member being changed;
// - `conflict_name()`: which conflict a unique violation is;
// - `LIST_AUDIT_PERSISTENT`: whether `list_audit` may be a cached prepared
//   statement.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use satusky_core::apps::{
    AppEventRecord, AppRecord, ClusterRecord, IdempotencyRecord, ReleaseRecord, SecretVersionRecord,
};
use satusky_core::machines::{JoinTokenRecord, MachineEventRecord, MachineRecord};
use satusky_core::pagination::PageRequest;
use satusky_core::selector::{Op as SelectorOp, Selector};
use satusky_core::store::{
    AuditFilter, AuditRecord, LeaseRecord, LoginFailureKind, MachineLinkRecord, MachineSampleRecord, MachineUsageRecord, MemberRow,
    MembershipRecord, OrgRecord, SessionRecord, Store, StoreError, StoreResult, TokenRecord,
    UserRecord, conflict,
};
use satusky_types::apps::{AppSpec, AppStatus, ReleaseCause};
use satusky_types::machines::{Hardware, MachineMetrics};
use satusky_types::orgs::{Outcome, Role};
use sqlx::types::Json;

use crate::error::{backend, map_sqlx};
use crate::sql;

fn map(e: sqlx::Error) -> StoreError {
    map_sqlx(e, conflict_name)
}

fn col<'r, T>(row: &'r Row, i: usize) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    sqlx::Row::try_get(row, i).map_err(backend)
}

fn role_at(row: &Row, i: usize) -> StoreResult<Role> {
    col::<String>(row, i)?.parse().map_err(backend)
}

fn outcome_at(row: &Row, i: usize) -> StoreResult<Outcome> {
    col::<String>(row, i)?.parse().map_err(backend)
}

fn count_at(row: &Row, i: usize) -> StoreResult<u64> {
    u64::try_from(col::<i64>(row, i)?).map_err(backend)
}

/// The first key to fetch after: '' sorts before every id.
fn after_key(page: &PageRequest) -> &str {
    page.after.as_deref().unwrap_or("")
}

fn limit(page: &PageRequest) -> i64 {
    i64::from(page.fetch_limit())
}

fn user_at(row: &Row, i: usize) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: col(row, i)?,
        email: col(row, i + 1)?,
        name: col(row, i + 2)?,
        password_hash: col(row, i + 3)?,
        created_at: ts_at(row, i + 4)?,
    })
}

fn session_at(row: &Row, i: usize) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        id: col(row, i)?,
        user_id: col(row, i + 1)?,
        token_hash: col(row, i + 2)?,
        created_at: ts_at(row, i + 3)?,
        expires_at: ts_at(row, i + 4)?,
    })
}

fn token_at(row: &Row, i: usize) -> StoreResult<TokenRecord> {
    Ok(TokenRecord {
        id: col(row, i)?,
        user_id: col(row, i + 1)?,
        name: col(row, i + 2)?,
        prefix: col(row, i + 3)?,
        token_hash: col(row, i + 4)?,
        org_id: col(row, i + 5)?,
        enabled: col(row, i + 6)?,
        expires_at: opt_ts_at(row, i + 7)?,
        last_used_at: opt_ts_at(row, i + 8)?,
        created_at: ts_at(row, i + 9)?,
    })
}

fn org_at(row: &Row, i: usize) -> StoreResult<OrgRecord> {
    Ok(OrgRecord {
        id: col(row, i)?,
        slug: col(row, i + 1)?,
        name: col(row, i + 2)?,
        namespace: col(row, i + 3)?,
        created_at: ts_at(row, i + 4)?,
    })
}

fn audit_at(row: &Row) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        id: col(row, 0)?,
        org_id: col(row, 1)?,
        actor_id: col(row, 2)?,
        actor_email: col(row, 3)?,
        action: col(row, 4)?,
        target: col(row, 5)?,
        request_id: col(row, 6)?,
        outcome: outcome_at(row, 7)?,
        at: ts_at(row, 8)?,
    })
}

/// A counter as stored (BIGINT / INTEGER).
fn int(n: u64) -> StoreResult<i64> {
    i64::try_from(n).map_err(backend)
}

fn opt_int(n: Option<u64>) -> StoreResult<Option<i64>> {
    n.map(int).transpose()
}

fn u64_at(row: &Row, i: usize) -> StoreResult<u64> {
    u64::try_from(col::<i64>(row, i)?).map_err(backend)
}

fn opt_u64_at(row: &Row, i: usize) -> StoreResult<Option<u64>> {
    col::<Option<i64>>(row, i)?
        .map(|n| u64::try_from(n).map_err(backend))
        .transpose()
}

fn app_at(row: &Row) -> StoreResult<AppRecord> {
    Ok(AppRecord {
        id: col(row, 0)?,
        org_id: col(row, 1)?,
        name: col(row, 2)?,
        environment: col(row, 3)?,
        generation: u64_at(row, 4)?,
        current_release: opt_u64_at(row, 5)?,
        restarted_at: opt_ts_at(row, 6)?,
        cluster_id: col(row, 7)?,
        status: col::<Json<AppStatus>>(row, 8)?.0,
        deleting: col(row, 9)?,
        delete_volumes: col(row, 10)?,
        created_at: ts_at(row, 11)?,
        updated_at: ts_at(row, 12)?,
    })
}

fn release_at(row: &Row) -> StoreResult<ReleaseRecord> {
    Ok(ReleaseRecord {
        app_id: col(row, 0)?,
        number: u64_at(row, 1)?,
        spec: col::<Json<AppSpec>>(row, 2)?.0,
        cause: col::<String>(row, 3)?
            .parse::<ReleaseCause>()
            .map_err(backend)?,
        rollback_of: opt_u64_at(row, 4)?,
        author_id: col(row, 5)?,
        author_email: col(row, 6)?,
        created_at: ts_at(row, 7)?,
    })
}

fn idempotency_at(row: &Row) -> StoreResult<IdempotencyRecord> {
    Ok(IdempotencyRecord {
        app_id: col(row, 0)?,
        key: col(row, 1)?,
        request_hash: col(row, 2)?,
        release: u64_at(row, 3)?,
        created_at: ts_at(row, 4)?,
    })
}

fn secret_version_at(row: &Row) -> StoreResult<SecretVersionRecord> {
    Ok(SecretVersionRecord {
        app_id: col(row, 0)?,
        version: u64_at(row, 1)?,
        sealed: col(row, 2)?,
        created_at: ts_at(row, 3)?,
    })
}

fn app_event_at(row: &Row) -> StoreResult<AppEventRecord> {
    Ok(AppEventRecord {
        app_id: col(row, 0)?,
        seq: u64_at(row, 1)?,
        kind: col(row, 2)?,
        message: col(row, 3)?,
        release: opt_u64_at(row, 4)?,
        at: ts_at(row, 5)?,
    })
}

fn cluster_at(row: &Row) -> StoreResult<ClusterRecord> {
    Ok(ClusterRecord {
        id: col(row, 0)?,
        name: col(row, 1)?,
        region: col(row, 2)?,
        zone: col(row, 3)?,
        sealed_kubeconfig: col(row, 4)?,
        is_default: col(row, 5)?,
        priority: col(row, 6)?,
        health: col(row, 7)?,
        health_message: col(row, 8)?,
        created_at: ts_at(row, 9)?,
    })
}

fn join_token_at(row: &Row) -> StoreResult<JoinTokenRecord> {
    Ok(JoinTokenRecord {
        id: col(row, 0)?,
        org_id: col(row, 1)?,
        name: col(row, 2)?,
        expires_at: ts_at(row, 3)?,
        revoked_at: opt_ts_at(row, 4)?,
        created_at: ts_at(row, 5)?,
    })
}

type Labels = std::collections::BTreeMap<String, String>;

fn machine_at(row: &Row) -> StoreResult<MachineRecord> {
    Ok(MachineRecord {
        id: col(row, 0)?,
        org_id: col(row, 1)?,
        owner_user_id: col(row, 2)?,
        name: col(row, 3)?,
        uuid: col(row, 4)?,
        fingerprint: col(row, 5)?,
        state: col::<String>(row, 6)?.parse().map_err(backend)?,
        visibility: col::<String>(row, 7)?.parse().map_err(backend)?,
        labels: col::<Json<Labels>>(row, 8)?.0,
        system_labels: col::<Json<Labels>>(row, 9)?.0,
        hardware: col::<Json<Hardware>>(row, 10)?.0,
        zone: col(row, 11)?,
        overlay_address: col(row, 12)?,
        talos_endpoint: col(row, 13)?,
        connected: col(row, 14)?,
        last_seen_at: opt_ts_at(row, 15)?,
        node_name: col(row, 16)?,
        cordoned_by_us: col(row, 17)?,
        operation: col::<Option<Json<sqlx::types::JsonValue>>>(row, 18)?.map(|j| j.0),
        note: col(row, 19)?,
        version: u64_at(row, 20)?,
        created_at: ts_at(row, 21)?,
        updated_at: ts_at(row, 22)?,
    })
}

fn machine_event_at(row: &Row) -> StoreResult<MachineEventRecord> {
    Ok(MachineEventRecord {
        machine_id: col(row, 0)?,
        seq: u64_at(row, 1)?,
        kind: col(row, 2)?,
        message: col(row, 3)?,
        at: ts_at(row, 4)?,
    })
}

/// Parameters of a statement built at run time, numbered after the fixed ones.
struct Binds {
    values: Vec<String>,
    fixed: usize,
}

impl Binds {
    fn after(fixed: usize) -> Self {
        Self {
            values: Vec::new(),
            fixed,
        }
    }

    /// Adds a parameter; returns its number.
    fn push(&mut self, value: String) -> usize {
        self.values.push(value);
        self.fixed + self.values.len()
    }

    /// Adds the parameters of an `IN (…)` list; returns `$a, $b, …`.
    fn list(&mut self, values: &[String]) -> String {
        values
            .iter()
            .map(|v| format!("${}", self.push(v.clone())))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `Ok` when one row was affected, `NotFound` when none.
fn one_row(rows_affected: u64) -> StoreResult<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

impl Backend {
    /// Applies the pending migrations of this dialect and returns them, in
    /// order (empty when the schema is up to date). Migrations applied by a
    /// newer release are ignored; an applied migration whose file changed
    /// is an error.
    pub async fn migrate(&self) -> Result<Vec<AppliedMigration>, Error> {
        use sqlx::migrate::Migrate as _;

        let migrator = migrator();
        // Under the migration lock (PostgreSQL's advisory lock; a no-op on
        // SQLite), as `run` creates the table: replicas starting together
        // must not race to create it.
        let before = {
            let mut conn = self.pool.acquire().await.map_err(Error::Connect)?;
            conn.lock().await.map_err(Error::Migrate)?;
            let listed = match conn.ensure_migrations_table().await {
                Ok(()) => conn.list_applied_migrations().await,
                Err(e) => Err(e),
            };
            conn.unlock().await.map_err(Error::Migrate)?;
            listed.map_err(Error::Migrate)?
        };
        migrator.run(&self.pool).await.map_err(Error::Migrate)?;
        let applied: Vec<AppliedMigration> = migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .filter(|m| !before.iter().any(|b| b.version == m.version))
            .map(|m| AppliedMigration {
                version: m.version,
                description: m.description.to_string(),
            })
            .collect();
        for m in &applied {
            tracing::info!(
                migration.version = m.version,
                migration.description = %m.description,
                "migration applied"
            );
        }
        Ok(applied)
    }

    /// When both the slug and the namespace of a new org are taken by a live
    /// org, the databases differ in which unique index fails first: report
    /// the slug, which is what the user chose.
    async fn org_conflict(&self, err: StoreError, slug: &str) -> StoreError {
        if !matches!(err, StoreError::Conflict(c) if c == conflict::NAMESPACE) {
            return err;
        }
        match sqlx::query(sql::SLUG_TAKEN)
            .bind(slug)
            .fetch_one(&self.pool)
            .await
            .map_err(map)
            .and_then(|row| count_at(&row, 0))
        {
            Ok(n) if n > 0 => StoreError::Conflict(conflict::ORG_SLUG),
            Ok(_) => err,
            Err(e) => e,
        }
    }

    /// The last-owner rule shared by `set_member_role` and `remove_member`:
    /// in one write transaction, reads (and on PostgreSQL locks) the org's
    /// owners and the member, refuses to leave the org without an owner,
    /// then runs `write`.
    async fn change_member(
        &self,
        org_id: &str,
        user_id: &str,
        new_role: Option<Role>,
        write: &'static str,
    ) -> StoreResult<()> {
        let mut tx = begin_write(&self.pool).await.map_err(map)?;
        let rows = sqlx::query(LOCK_OWNERS)
            .bind(org_id)
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(map)?;
        let mut owners = 0_usize;
        let mut current = None;
        for row in &rows {
            let role = role_at(row, 1)?;
            if role == Role::Owner {
                owners += 1;
            }
            if col::<String>(row, 0)? == user_id {
                current = Some(role);
            }
        }
        let current = current.ok_or(StoreError::NotFound)?;
        if current == Role::Owner && new_role != Some(Role::Owner) && owners <= 1 {
            return Err(StoreError::LastOwner);
        }
        let mut q = sqlx::query(write).bind(org_id).bind(user_id);
        if let Some(role) = new_role {
            q = q.bind(role.as_str());
        }
        let done = q.execute(&mut *tx).await.map_err(map)?;
        one_row(done.rows_affected())?;
        tx.commit().await.map_err(map)
    }
}

#[async_trait]
impl Store for Backend {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query(sql::PING)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    // ---- users

    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        sqlx::query(sql::CREATE_USER)
            .bind(&user.id)
            .bind(user.email.to_lowercase())
            .bind(&user.name)
            .bind(&user.password_hash)
            .bind(ts(user.created_at))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(sql::GET_USER)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.map(|r| user_at(&r, 0)).transpose()
    }

    async fn get_user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(sql::GET_USER_BY_EMAIL)
            .bind(email.to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.map(|r| user_at(&r, 0)).transpose()
    }

    async fn update_user_name(&self, id: &str, name: &str) -> StoreResult<()> {
        let done = sqlx::query(sql::UPDATE_USER_NAME)
            .bind(id)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        one_row(done.rows_affected())
    }

    async fn update_user_password(&self, id: &str, password_hash: &str) -> StoreResult<()> {
        let done = sqlx::query(sql::UPDATE_USER_PASSWORD)
            .bind(id)
            .bind(password_hash)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        one_row(done.rows_affected())
    }

    async fn count_users(&self) -> StoreResult<u64> {
        let row = sqlx::query(sql::COUNT_USERS)
            .fetch_one(&self.pool)
            .await
            .map_err(map)?;
        count_at(&row, 0)
    }

    // ---- sessions

    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()> {
        sqlx::query(sql::CREATE_SESSION)
            .bind(&session.id)
            .bind(&session.user_id)
            .bind(&session.token_hash)
            .bind(ts(session.created_at))
            .bind(ts(session.expires_at))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn get_session_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(SessionRecord, UserRecord)>> {
        let row = sqlx::query(sql::GET_SESSION_BY_HASH)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.map(|r| Ok((session_at(&r, 0)?, user_at(&r, sql::SESSION_COLUMNS)?)))
            .transpose()
    }

    async fn delete_session(&self, id: &str) -> StoreResult<()> {
        let done = sqlx::query(sql::DELETE_SESSION)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        one_row(done.rows_affected())
    }

    async fn delete_user_sessions(&self, user_id: &str, keep: Option<&str>) -> StoreResult<u64> {
        let done = sqlx::query(sql::DELETE_USER_SESSIONS)
            .bind(user_id)
            .bind(keep)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected())
    }

    // ---- expired sessions

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query(sql::DELETE_EXPIRED_SESSIONS)
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected())
    }

    // ---- failed logins

    async fn record_login_failure(
        &self,
        kind: LoginFailureKind,
        key: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(sql::RECORD_LOGIN_FAILURE)
            .bind(kind.as_str())
            .bind(key)
            .bind(ts(at))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn login_failures_since(
        &self,
        kind: LoginFailureKind,
        key: &str,
        since: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DateTime<Utc>>> {
        let rows = sqlx::query(sql::LOGIN_FAILURES_SINCE)
            .bind(kind.as_str())
            .bind(key)
            .bind(ts(since))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter().map(|row| ts_at(row, 0)).collect()
    }

    async fn record_login_attempt(
        &self,
        kind: LoginFailureKind,
        key: &str,
        at: DateTime<Utc>,
        attempt: &str,
    ) -> StoreResult<()> {
        sqlx::query(sql::RECORD_LOGIN_ATTEMPT)
            .bind(kind.as_str())
            .bind(key)
            .bind(ts(at))
            .bind(attempt)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn forget_login_attempt(
        &self,
        kind: LoginFailureKind,
        key: &str,
        attempt: &str,
    ) -> StoreResult<u64> {
        let done = sqlx::query(sql::FORGET_LOGIN_ATTEMPT)
            .bind(kind.as_str())
            .bind(key)
            .bind(attempt)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected())
    }

    async fn clear_login_failures(&self, kind: LoginFailureKind, key: &str) -> StoreResult<u64> {
        let done = sqlx::query(sql::CLEAR_LOGIN_FAILURES)
            .bind(kind.as_str())
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected())
    }

    async fn prune_login_failures(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query(sql::PRUNE_LOGIN_FAILURES)
            .bind(ts(before))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected())
    }

    // ---- personal API tokens

    async fn create_token(&self, token: &TokenRecord) -> StoreResult<()> {
        sqlx::query(sql::CREATE_TOKEN)
            .bind(&token.id)
            .bind(&token.user_id)
            .bind(&token.name)
            .bind(&token.prefix)
            .bind(&token.token_hash)
            .bind(token.org_id.as_deref())
            .bind(token.enabled)
            .bind(token.expires_at.map(ts))
            .bind(token.last_used_at.map(ts))
            .bind(ts(token.created_at))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn get_token(&self, user_id: &str, id: &str) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query(sql::GET_TOKEN)
            .bind(user_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.map(|r| token_at(&r, 0)).transpose()
    }

    async fn get_token_by_name(
        &self,
        user_id: &str,
        name: &str,
    ) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query(sql::GET_TOKEN_BY_NAME)
            .bind(user_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.map(|r| token_at(&r, 0)).transpose()
    }

    async fn get_token_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(TokenRecord, UserRecord)>> {
        let row = sqlx::query(sql::GET_TOKEN_BY_HASH)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.map(|r| Ok((token_at(&r, 0)?, user_at(&r, sql::TOKEN_COLUMNS)?)))
            .transpose()
    }

    async fn list_tokens(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Vec<TokenRecord>> {
        let rows = sqlx::query(sql::LIST_TOKENS)
            .bind(user_id)
            .bind(after_key(page))
            .bind(limit(page))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter().map(|r| token_at(r, 0)).collect()
    }

    async fn set_token_enabled(&self, user_id: &str, id: &str, enabled: bool) -> StoreResult<()> {
        let done = sqlx::query(sql::SET_TOKEN_ENABLED)
            .bind(user_id)
            .bind(id)
            .bind(enabled)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        one_row(done.rows_affected())
    }

    async fn touch_token(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let done = sqlx::query(sql::TOUCH_TOKEN)
            .bind(id)
            .bind(ts(at))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        one_row(done.rows_affected())
    }

    async fn delete_token(&self, user_id: &str, id: &str) -> StoreResult<()> {
        let done = sqlx::query(sql::DELETE_TOKEN)
            .bind(user_id)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        one_row(done.rows_affected())
    }

    // ---- organizations and memberships

    async fn create_org(&self, org: &OrgRecord, owner_id: &str) -> StoreResult<()> {
        let mut tx = begin_write(&self.pool).await.map_err(map)?;
        // The org first, so that a taken slug wins over a namespace reserved
        // by a deleted org (the foreign key to `namespaces` is deferred to
        // commit).
        let inserted = sqlx::query(sql::CREATE_ORG)
            .bind(&org.id)
            .bind(&org.slug)
            .bind(&org.name)
            .bind(&org.namespace)
            .bind(ts(org.created_at))
            .execute(&mut *tx)
            .await;
        if let Err(e) = inserted {
            drop(tx);
            return Err(self.org_conflict(map(e), &org.slug).await);
        }
        sqlx::query(sql::RESERVE_NAMESPACE)
            .bind(&org.namespace)
            .bind(ts(org.created_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        sqlx::query(sql::ADD_MEMBER)
            .bind(&org.id)
            .bind(owner_id)
            .bind(Role::Owner.as_str())
            .bind(ts(org.created_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)
    }

    async fn namespace_reserved(&self, namespace: &str) -> StoreResult<bool> {
        let row = sqlx::query(sql::NAMESPACE_RESERVED)
            .bind(namespace)
            .fetch_one(&self.pool)
            .await
            .map_err(map)?;
        Ok(count_at(&row, 0)? > 0)
    }

    async fn get_org(&self, id: &str) -> StoreResult<Option<OrgRecord>> {
        let row = sqlx::query(sql::GET_ORG)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.map(|r| org_at(&r, 0)).transpose()
    }

    async fn get_org_by_slug(&self, slug: &str) -> StoreResult<Option<OrgRecord>> {
        let row = sqlx::query(sql::GET_ORG_BY_SLUG)
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.map(|r| org_at(&r, 0)).transpose()
    }

    async fn list_user_orgs(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Vec<(OrgRecord, Role)>> {
        let rows = sqlx::query(sql::LIST_USER_ORGS)
            .bind(user_id)
            .bind(after_key(page))
            .bind(limit(page))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter()
            .map(|r| Ok((org_at(r, 0)?, role_at(r, sql::ORG_COLUMNS)?)))
            .collect()
    }

    async fn rename_org(&self, id: &str, name: &str) -> StoreResult<()> {
        let done = sqlx::query(sql::RENAME_ORG)
            .bind(id)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        one_row(done.rows_affected())
    }

    async fn delete_org(&self, id: &str) -> StoreResult<()> {
        let done = sqlx::query(sql::DELETE_ORG)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        one_row(done.rows_affected())
    }

    async fn get_membership(
        &self,
        org_id: &str,
        user_id: &str,
    ) -> StoreResult<Option<MembershipRecord>> {
        let row = sqlx::query(sql::GET_MEMBERSHIP)
            .bind(org_id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.map(|r| {
            Ok(MembershipRecord {
                org_id: col(&r, 0)?,
                user_id: col(&r, 1)?,
                role: role_at(&r, 2)?,
                created_at: ts_at(&r, 3)?,
            })
        })
        .transpose()
    }

    async fn add_member(&self, m: &MembershipRecord) -> StoreResult<()> {
        sqlx::query(sql::ADD_MEMBER)
            .bind(&m.org_id)
            .bind(&m.user_id)
            .bind(m.role.as_str())
            .bind(ts(m.created_at))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn list_members(&self, org_id: &str, page: &PageRequest) -> StoreResult<Vec<MemberRow>> {
        let rows = sqlx::query(sql::LIST_MEMBERS)
            .bind(org_id)
            .bind(after_key(page))
            .bind(limit(page))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter()
            .map(|r| {
                Ok(MemberRow {
                    user_id: col(r, 0)?,
                    email: col(r, 1)?,
                    name: col(r, 2)?,
                    role: role_at(r, 3)?,
                    joined_at: ts_at(r, 4)?,
                })
            })
            .collect()
    }

    async fn set_member_role(&self, org_id: &str, user_id: &str, role: Role) -> StoreResult<()> {
        self.change_member(org_id, user_id, Some(role), sql::SET_MEMBER_ROLE)
            .await
    }

    async fn remove_member(&self, org_id: &str, user_id: &str) -> StoreResult<()> {
        self.change_member(org_id, user_id, None, sql::REMOVE_MEMBER)
            .await
    }

    // ---- audit

    async fn insert_audit(&self, entry: &AuditRecord) -> StoreResult<()> {
        sqlx::query(sql::INSERT_AUDIT)
            .bind(&entry.id)
            .bind(&entry.org_id)
            .bind(entry.actor_id.as_deref())
            .bind(entry.actor_email.as_deref())
            .bind(&entry.action)
            .bind(&entry.target)
            .bind(&entry.request_id)
            .bind(entry.outcome.as_str())
            .bind(ts(entry.at))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn list_audit(
        &self,
        org_id: &str,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> StoreResult<Vec<AuditRecord>> {
        let action = filter.action.as_deref();
        let (exact, prefix) = match action {
            Some(a) if a.ends_with('.') => (None, Some(a)),
            other => (other, None),
        };
        let rows = sqlx::query(sql::LIST_AUDIT)
            .persistent(LIST_AUDIT_PERSISTENT)
            .bind(org_id)
            .bind(page.after.as_deref().unwrap_or(sql::LAST_KEY))
            .bind(filter.actor.as_deref())
            .bind(exact)
            .bind(prefix)
            .bind(filter.outcome.map(Outcome::as_str))
            .bind(filter.since.map(ts))
            .bind(filter.until.map(ts))
            .bind(limit(page))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter().map(audit_at).collect()
    }

    async fn get_audit(&self, org_id: &str, id: &str) -> StoreResult<Option<AuditRecord>> {
        let row = sqlx::query(sql::GET_AUDIT)
            .bind(org_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.map(|r| audit_at(&r)).transpose()
    }

    // ---- platform administrators

    async fn is_platform_admin(&self, user_id: &str) -> StoreResult<bool> {
        let row = sqlx::query(sql::IS_PLATFORM_ADMIN)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        Ok(row
            .map(|r| col::<bool>(&r, 0))
            .transpose()?
            .unwrap_or(false))
    }

    async fn set_platform_admin(&self, user_id: &str, admin: bool) -> StoreResult<()> {
        let done = sqlx::query(sql::SET_PLATFORM_ADMIN)
            .bind(user_id)
            .bind(admin)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        one_row(done.rows_affected())
    }

    // ---- apps

    async fn create_app(&self, app: &AppRecord) -> StoreResult<()> {
        sqlx::query(sql::CREATE_APP)
            .bind(&app.id)
            .bind(&app.org_id)
            .bind(&app.name)
            .bind(&app.environment)
            .bind(int(app.generation)?)
            .bind(opt_int(app.current_release)?)
            .bind(app.restarted_at.map(ts))
            .bind(app.cluster_id.as_deref())
            .bind(Json(&app.status))
            .bind(app.deleting)
            .bind(app.delete_volumes)
            .bind(ts(app.created_at))
            .bind(ts(app.updated_at))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn get_app(&self, org_id: &str, name: &str) -> StoreResult<Option<AppRecord>> {
        let row = sqlx::query(sql::GET_APP)
            .bind(org_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.as_ref().map(app_at).transpose()
    }

    async fn get_app_by_id(&self, id: &str) -> StoreResult<Option<AppRecord>> {
        let row = sqlx::query(sql::GET_APP_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.as_ref().map(app_at).transpose()
    }

    async fn list_apps(&self, org_id: &str, page: &PageRequest) -> StoreResult<Vec<AppRecord>> {
        let rows = sqlx::query(sql::LIST_APPS)
            .bind(org_id)
            .bind(after_key(page))
            .bind(limit(page))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter().map(app_at).collect()
    }

    async fn list_all_apps(&self, page: &PageRequest) -> StoreResult<Vec<AppRecord>> {
        let rows = sqlx::query(sql::LIST_ALL_APPS)
            .bind(after_key(page))
            .bind(limit(page))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter().map(app_at).collect()
    }

    async fn append_release(
        &self,
        release: &ReleaseRecord,
        idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<u64> {
        let previous = release
            .number
            .checked_sub(1)
            .ok_or(StoreError::Conflict(conflict::RELEASE_NUMBER))?;
        let mut tx = begin_write(&self.pool).await.map_err(map)?;
        let advanced = sqlx::query(sql::ADVANCE_RELEASE)
            .bind(&release.app_id)
            .bind(int(release.number)?)
            .bind(ts(release.created_at))
            .bind(int(previous)?)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map)?;
        let Some(advanced) = advanced else {
            let row = sqlx::query(sql::APP_EXISTS)
                .bind(&release.app_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(map)?;
            return Err(if count_at(&row, 0)? == 0 {
                StoreError::NotFound
            } else {
                StoreError::Conflict(conflict::RELEASE_NUMBER)
            });
        };
        let generation = u64_at(&advanced, 0)?;
        sqlx::query(sql::INSERT_RELEASE)
            .bind(&release.app_id)
            .bind(int(release.number)?)
            .bind(Json(&release.spec))
            .bind(release.cause.as_str())
            .bind(opt_int(release.rollback_of)?)
            .bind(release.author_id.as_deref())
            .bind(release.author_email.as_deref())
            .bind(ts(release.created_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        if let Some(idem) = idempotency {
            sqlx::query(sql::INSERT_IDEMPOTENCY)
                .bind(&idem.app_id)
                .bind(&idem.key)
                .bind(&idem.request_hash)
                .bind(int(idem.release)?)
                .bind(ts(idem.created_at))
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        tx.commit().await.map_err(map)?;
        Ok(generation)
    }

    async fn get_release(&self, app_id: &str, number: u64) -> StoreResult<Option<ReleaseRecord>> {
        let row = sqlx::query(sql::GET_RELEASE)
            .bind(app_id)
            .bind(int(number)?)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.as_ref().map(release_at).transpose()
    }

    async fn list_releases(
        &self,
        app_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Vec<ReleaseRecord>> {
        // A cursor that is not a release number (forged) lists nothing.
        let before = match page.after.as_deref() {
            None => i64::MAX,
            Some(after) => match after.parse::<i64>() {
                Ok(n) => n,
                Err(_) => return Ok(Vec::new()),
            },
        };
        let rows = sqlx::query(sql::LIST_RELEASES)
            .bind(app_id)
            .bind(before)
            .bind(limit(page))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter().map(release_at).collect()
    }

    async fn get_idempotency(
        &self,
        app_id: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let row = sqlx::query(sql::GET_IDEMPOTENCY)
            .bind(app_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.as_ref().map(idempotency_at).transpose()
    }

    async fn restart_app(&self, app_id: &str, at: DateTime<Utc>) -> StoreResult<u64> {
        let row = sqlx::query(sql::RESTART_APP)
            .bind(app_id)
            .bind(ts(at))
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?
            .ok_or(StoreError::NotFound)?;
        u64_at(&row, 0)
    }

    async fn set_app_status(&self, app_id: &str, status: &AppStatus) -> StoreResult<()> {
        let done = sqlx::query(sql::SET_APP_STATUS)
            .bind(app_id)
            .bind(Json(status))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        one_row(done.rows_affected())
    }

    async fn mark_app_deleting(&self, app_id: &str, delete_volumes: bool) -> StoreResult<u64> {
        let row = sqlx::query(sql::MARK_APP_DELETING)
            .bind(app_id)
            .bind(true)
            .bind(delete_volumes)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?
            .ok_or(StoreError::NotFound)?;
        u64_at(&row, 0)
    }

    async fn delete_app(&self, app_id: &str) -> StoreResult<()> {
        let done = sqlx::query(sql::DELETE_APP)
            .bind(app_id)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        one_row(done.rows_affected())
    }

    async fn set_app_cluster(&self, app_id: &str, cluster_id: Option<&str>) -> StoreResult<()> {
        let done = sqlx::query(sql::SET_APP_CLUSTER)
            .bind(app_id)
            .bind(cluster_id)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        one_row(done.rows_affected())
    }

    // ---- app secrets

    async fn create_secret_version(&self, s: &SecretVersionRecord) -> StoreResult<()> {
        sqlx::query(sql::CREATE_SECRET_VERSION)
            .bind(&s.app_id)
            .bind(int(s.version)?)
            .bind(&s.sealed)
            .bind(ts(s.created_at))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn get_secret_version(
        &self,
        app_id: &str,
        version: u64,
    ) -> StoreResult<Option<SecretVersionRecord>> {
        let row = sqlx::query(sql::GET_SECRET_VERSION)
            .bind(app_id)
            .bind(int(version)?)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.as_ref().map(secret_version_at).transpose()
    }

    async fn latest_secret_version(
        &self,
        app_id: &str,
    ) -> StoreResult<Option<SecretVersionRecord>> {
        let row = sqlx::query(sql::LATEST_SECRET_VERSION)
            .bind(app_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.as_ref().map(secret_version_at).transpose()
    }

    // ---- app events

    async fn append_app_event(&self, e: &AppEventRecord) -> StoreResult<u64> {
        let mut tx = begin_write(&self.pool).await.map_err(map)?;
        let row = sqlx::query(sql::NEXT_EVENT_SEQ)
            .bind(&e.app_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map)?
            .ok_or(StoreError::NotFound)?;
        let seq = u64_at(&row, 0)?;
        sqlx::query(sql::INSERT_APP_EVENT)
            .bind(&e.app_id)
            .bind(int(seq)?)
            .bind(&e.kind)
            .bind(&e.message)
            .bind(opt_int(e.release)?)
            .bind(ts(e.at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(seq)
    }

    async fn list_app_events(
        &self,
        app_id: &str,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<AppEventRecord>> {
        let rows = sqlx::query(sql::LIST_APP_EVENTS)
            .bind(app_id)
            .bind(int(after)?)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter().map(app_event_at).collect()
    }

    // ---- clusters

    async fn create_cluster(&self, c: &ClusterRecord) -> StoreResult<()> {
        let mut tx = begin_write(&self.pool).await.map_err(map)?;
        if c.is_default {
            sqlx::query(sql::CLEAR_DEFAULT_CLUSTER)
                .bind(false)
                .bind(true)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        sqlx::query(sql::CREATE_CLUSTER)
            .bind(&c.id)
            .bind(&c.name)
            .bind(&c.region)
            .bind(&c.zone)
            .bind(&c.sealed_kubeconfig)
            .bind(c.is_default)
            .bind(c.priority)
            .bind(&c.health)
            .bind(c.health_message.as_deref())
            .bind(ts(c.created_at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)
    }

    async fn get_cluster(&self, id: &str) -> StoreResult<Option<ClusterRecord>> {
        let row = sqlx::query(sql::GET_CLUSTER)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.as_ref().map(cluster_at).transpose()
    }

    async fn get_cluster_by_name(&self, name: &str) -> StoreResult<Option<ClusterRecord>> {
        let row = sqlx::query(sql::GET_CLUSTER_BY_NAME)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.as_ref().map(cluster_at).transpose()
    }

    async fn list_clusters(&self, page: &PageRequest) -> StoreResult<Vec<ClusterRecord>> {
        let rows = sqlx::query(sql::LIST_CLUSTERS)
            .bind(after_key(page))
            .bind(limit(page))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter().map(cluster_at).collect()
    }

    async fn set_cluster_health(
        &self,
        id: &str,
        health: &str,
        message: Option<&str>,
    ) -> StoreResult<()> {
        let done = sqlx::query(sql::SET_CLUSTER_HEALTH)
            .bind(id)
            .bind(health)
            .bind(message)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        one_row(done.rows_affected())
    }

    async fn delete_cluster(&self, id: &str) -> StoreResult<()> {
        let done = sqlx::query(sql::DELETE_CLUSTER)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        one_row(done.rows_affected())
    }

    // ---- leases

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(sql::ACQUIRE_LEASE)
            .bind(name)
            .bind(holder)
            .bind(ts(expires_at))
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(sql::RENEW_LEASE)
            .bind(name)
            .bind(holder)
            .bind(ts(expires_at))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<bool> {
        let done = sqlx::query(sql::RELEASE_LEASE)
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    async fn get_lease(&self, name: &str) -> StoreResult<Option<LeaseRecord>> {
        let row = sqlx::query(sql::GET_LEASE)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.map(|row| {
            Ok(LeaseRecord {
                name: col(&row, 0)?,
                holder: col(&row, 1)?,
                expires_at: ts_at(&row, 2)?,
            })
        })
        .transpose()
    }

    // ---- machines

    async fn create_join_token(&self, t: &JoinTokenRecord) -> StoreResult<()> {
        sqlx::query(sql::CREATE_JOIN_TOKEN)
            .bind(&t.id)
            .bind(&t.org_id)
            .bind(&t.name)
            .bind(ts(t.expires_at))
            .bind(t.revoked_at.map(ts))
            .bind(ts(t.created_at))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn get_join_token(&self, id: &str) -> StoreResult<Option<JoinTokenRecord>> {
        let row = sqlx::query(sql::GET_JOIN_TOKEN)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.as_ref().map(join_token_at).transpose()
    }

    async fn list_join_tokens(
        &self,
        org_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Vec<JoinTokenRecord>> {
        let rows = sqlx::query(sql::LIST_JOIN_TOKENS)
            .bind(org_id)
            .bind(after_key(page))
            .bind(limit(page))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter().map(join_token_at).collect()
    }

    async fn revoke_join_token(
        &self,
        org_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let done = sqlx::query(sql::REVOKE_JOIN_TOKEN)
            .bind(org_id)
            .bind(id)
            .bind(ts(at))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        one_row(done.rows_affected())
    }

    async fn create_machine(&self, m: &MachineRecord) -> StoreResult<()> {
        sqlx::query(sql::CREATE_MACHINE)
            .bind(&m.id)
            .bind(&m.org_id)
            .bind(m.owner_user_id.as_deref())
            .bind(&m.name)
            .bind(&m.uuid)
            .bind(&m.fingerprint)
            .bind(m.state.as_str())
            .bind(m.visibility.as_str())
            .bind(Json(&m.labels))
            .bind(Json(&m.system_labels))
            .bind(Json(&m.hardware))
            .bind(&m.zone)
            .bind(&m.overlay_address)
            .bind(&m.talos_endpoint)
            .bind(m.connected)
            .bind(m.last_seen_at.map(ts))
            .bind(m.node_name.as_deref())
            .bind(m.cordoned_by_us)
            .bind(m.operation.as_ref().map(Json))
            .bind(m.note.as_deref())
            .bind(int(m.version)?)
            .bind(ts(m.created_at))
            .bind(ts(m.updated_at))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn get_machine(&self, id: &str) -> StoreResult<Option<MachineRecord>> {
        let row = sqlx::query(sql::GET_MACHINE)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.as_ref().map(machine_at).transpose()
    }

    async fn get_machine_by_name(
        &self,
        org_id: &str,
        name: &str,
    ) -> StoreResult<Option<MachineRecord>> {
        let row = sqlx::query(sql::GET_MACHINE_BY_NAME)
            .bind(org_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        row.as_ref().map(machine_at).transpose()
    }

    async fn find_machines_by_uuid(&self, uuid: &str) -> StoreResult<Vec<MachineRecord>> {
        let rows = sqlx::query(sql::FIND_MACHINES_BY_UUID)
            .bind(uuid)
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter().map(machine_at).collect()
    }

    async fn list_machines(
        &self,
        org_id: &str,
        include_public: bool,
        page: &PageRequest,
    ) -> StoreResult<Vec<MachineRecord>> {
        let rows = sqlx::query(sql::LIST_MACHINES)
            .bind(org_id)
            .bind(include_public)
            .bind(after_key(page))
            .bind(limit(page))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter().map(machine_at).collect()
    }

    async fn list_machines_selected(
        &self,
        org_id: &str,
        include_public: bool,
        selector: &Selector,
        page: &PageRequest,
    ) -> StoreResult<Vec<MachineRecord>> {
        // One condition per requirement over the machine's labels, system
        // labels winning over user labels of the same key (as `all_labels`).
        // Keys and values are bound, never spliced into the statement.
        let mut query = String::from(sql::SELECTED_MACHINES);
        let mut binds = Binds::after(4);
        for r in &selector.requirements {
            let key = binds.push(label_param(&r.key));
            let value = format!(
                "COALESCE({}, {})",
                label_value("m.system_labels", key),
                label_value("m.labels", key)
            );
            let condition = match r.op {
                // No value (never produced by the parser): nothing is in it.
                SelectorOp::Eq | SelectorOp::In if r.values.is_empty() => "1 = 0".to_owned(),
                SelectorOp::NotEq | SelectorOp::NotIn if r.values.is_empty() => "1 = 1".to_owned(),
                SelectorOp::Eq | SelectorOp::In => {
                    format!("{value} IN ({})", binds.list(&r.values))
                }
                SelectorOp::NotEq | SelectorOp::NotIn => format!(
                    "({value} IS NULL OR {value} NOT IN ({}))",
                    binds.list(&r.values)
                ),
                SelectorOp::Exists => format!("{value} IS NOT NULL"),
                SelectorOp::DoesNotExist => format!("{value} IS NULL"),
            };
            query.push_str(" AND ");
            query.push_str(&condition);
        }
        query.push_str(sql::SELECTED_MACHINES_END);
        let mut q = sqlx::query(&query)
            .persistent(false)
            .bind(org_id)
            .bind(include_public)
            .bind(after_key(page))
            .bind(limit(page));
        for v in binds.values {
            q = q.bind(v);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(map)?;
        rows.iter().map(machine_at).collect()
    }

    async fn list_all_machines(&self, page: &PageRequest) -> StoreResult<Vec<MachineRecord>> {
        let rows = sqlx::query(sql::LIST_ALL_MACHINES)
            .bind(after_key(page))
            .bind(limit(page))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter().map(machine_at).collect()
    }

    async fn update_machine(&self, m: &MachineRecord) -> StoreResult<u64> {
        let row = sqlx::query(sql::UPDATE_MACHINE)
            .bind(&m.id)
            .bind(m.owner_user_id.as_deref())
            .bind(&m.name)
            .bind(m.state.as_str())
            .bind(m.visibility.as_str())
            .bind(Json(&m.labels))
            .bind(Json(&m.system_labels))
            .bind(Json(&m.hardware))
            .bind(&m.zone)
            .bind(&m.overlay_address)
            .bind(&m.talos_endpoint)
            .bind(m.connected)
            .bind(m.last_seen_at.map(ts))
            .bind(m.node_name.as_deref())
            .bind(m.cordoned_by_us)
            .bind(m.operation.as_ref().map(Json))
            .bind(m.note.as_deref())
            .bind(int(m.version)?)
            .bind(ts(m.updated_at))
            .fetch_optional(&self.pool)
            .await
            .map_err(map)?;
        if let Some(row) = row {
            return u64_at(&row, 0);
        }
        let row = sqlx::query(sql::MACHINE_EXISTS)
            .bind(&m.id)
            .fetch_one(&self.pool)
            .await
            .map_err(map)?;
        if count_at(&row, 0)? == 0 {
            Err(StoreError::NotFound)
        } else {
            Err(StoreError::Conflict(conflict::MACHINE_VERSION))
        }
    }

    async fn append_machine_event(&self, e: &MachineEventRecord) -> StoreResult<u64> {
        let mut tx = begin_write(&self.pool).await.map_err(map)?;
        let row = sqlx::query(sql::NEXT_MACHINE_EVENT_SEQ)
            .bind(&e.machine_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map)?
            .ok_or(StoreError::NotFound)?;
        let seq = u64_at(&row, 0)?;
        sqlx::query(sql::INSERT_MACHINE_EVENT)
            .bind(&e.machine_id)
            .bind(int(seq)?)
            .bind(&e.kind)
            .bind(&e.message)
            .bind(ts(e.at))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(seq)
    }

    async fn list_machine_events(
        &self,
        machine_id: &str,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<MachineEventRecord>> {
        let rows = sqlx::query(sql::LIST_MACHINE_EVENTS)
            .bind(machine_id)
            .bind(int(after)?)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter().map(machine_event_at).collect()
    }

    // ---- machine usage (billing history)

    async fn open_machine_usage(&self, u: &MachineUsageRecord) -> StoreResult<bool> {
        let done = sqlx::query(sql::OPEN_MACHINE_USAGE)
            .bind(&u.id)
            .bind(&u.org_id)
            .bind(&u.machine_id)
            .bind(&u.machine_name)
            .bind(i64::from(u.cpu_cores))
            .bind(int(u.memory_bytes)?)
            .bind(i64::from(u.gpus))
            .bind(ts(u.started_at))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    async fn close_machine_usage(
        &self,
        machine_id: &str,
        at: DateTime<Utc>,
        reason: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(sql::CLOSE_MACHINE_USAGE)
            .bind(machine_id)
            .bind(ts(at))
            .bind(reason)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_machine_usage(
        &self,
        org_id: &str,
        machine_id: Option<&str>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        page: &PageRequest,
    ) -> StoreResult<Vec<MachineUsageRecord>> {
        let rows = sqlx::query(sql::LIST_MACHINE_USAGE)
            .bind(org_id)
            .bind(page.after.as_deref().unwrap_or(sql::LAST_KEY))
            .bind(machine_id)
            .bind(since.map(ts))
            .bind(until.map(ts))
            .bind(limit(page))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter()
            .map(|row| {
                Ok(MachineUsageRecord {
                    id: col(row, 0)?,
                    org_id: col(row, 1)?,
                    machine_id: col(row, 2)?,
                    machine_name: col(row, 3)?,
                    cpu_cores: u32::try_from(col::<i64>(row, 4)?).map_err(backend)?,
                    memory_bytes: u64_at(row, 5)?,
                    gpus: u32::try_from(col::<i64>(row, 6)?).map_err(backend)?,
                    started_at: ts_at(row, 7)?,
                    ended_at: opt_ts_at(row, 8)?,
                    end_reason: col(row, 9)?,
                })
            })
            .collect()
    }

    // ---- machine metric samples

    async fn insert_machine_samples(&self, samples: &[MachineSampleRecord]) -> StoreResult<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut tx = begin_write(&self.pool).await.map_err(map)?;
        for sample in samples {
            sqlx::query(sql::INSERT_MACHINE_SAMPLE)
                .bind(&sample.machine_id)
                .bind(ts(sample.metrics.at))
                .bind(Json(&sample.metrics))
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        tx.commit().await.map_err(map)
    }

    async fn list_machine_samples(
        &self,
        machine_id: &str,
        after: Option<DateTime<Utc>>,
        limit: u32,
    ) -> StoreResult<Vec<MachineSampleRecord>> {
        let after = after.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let rows = sqlx::query(sql::LIST_MACHINE_SAMPLES)
            .bind(machine_id)
            .bind(ts(after))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter()
            .map(|row| {
                Ok(MachineSampleRecord {
                    machine_id: col(row, 0)?,
                    metrics: col::<Json<MachineMetrics>>(row, 1)?.0,
                })
            })
            .collect()
    }

    async fn prune_machine_samples(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query(sql::PRUNE_MACHINE_SAMPLES)
            .bind(ts(before))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected())
    }

    // ---- machine SideroLink peers

    async fn put_machine_link(&self, l: &MachineLinkRecord) -> StoreResult<()> {
        sqlx::query(sql::PUT_MACHINE_LINK)
            .bind(&l.machine_id)
            .bind(&l.public_key)
            .bind(&l.uuid)
            .bind(&l.overlay_address)
            .bind(l.last_endpoint.as_deref())
            .bind(ts(l.updated_at))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn set_machine_link_endpoint(
        &self,
        machine_id: &str,
        public_key: &str,
        endpoint: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(sql::SET_MACHINE_LINK_ENDPOINT)
            .bind(machine_id)
            .bind(public_key)
            .bind(endpoint)
            .bind(ts(at))
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_machine_links(&self) -> StoreResult<Vec<MachineLinkRecord>> {
        let rows = sqlx::query(sql::LIST_MACHINE_LINKS)
            .fetch_all(&self.pool)
            .await
            .map_err(map)?;
        rows.iter()
            .map(|row| {
                Ok(MachineLinkRecord {
                    machine_id: col(row, 0)?,
                    public_key: col(row, 1)?,
                    uuid: col(row, 2)?,
                    overlay_address: col(row, 3)?,
                    last_endpoint: col(row, 4)?,
                    updated_at: ts_at(row, 5)?,
                })
            })
            .collect()
    }

    async fn delete_machine_link(
        &self,
        machine_id: &str,
        public_key: Option<&str>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(sql::DELETE_MACHINE_LINK)
            .bind(machine_id)
            .bind(public_key)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(done.rows_affected() > 0)
    }
}
