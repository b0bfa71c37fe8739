//! The `Store` port: durable desired state. Implemented for SQLite and
//! PostgreSQL by `satusky-store`, which also runs one conformance suite on
//! both.
//!
//! Rules every implementation follows:
//! - ids are the strings the caller passes (UUIDv7); timestamps round-trip
//!   exactly at microsecond precision (the core's clock truncates to that);
//! - every method is atomic: it either fully happens or not at all;
//! - list methods return at most `page.fetch_limit()` rows ordered by their
//!   key (ascending unless said otherwise), strictly after `page.after`;
//! - unique-constraint violations are [`StoreError::Conflict`] naming the
//!   constraint (see each method); a missing row for an update or delete is
//!   [`StoreError::NotFound`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use satusky_types::orgs::{Outcome, Role};

use crate::apps::{
    AppEventRecord, AppRecord, ClusterRecord, IdempotencyRecord, ReleaseRecord, SecretVersionRecord,
};
use crate::machines::{JoinTokenRecord, MachineEventRecord, MachineRecord};
use crate::pagination::PageRequest;
use satusky_types::apps::AppStatus;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated; the string names it (e.g. `users.email`).
    #[error("conflict on {0}")]
    Conflict(&'static str),
    /// The change would leave an organization without an owner.
    #[error("the last owner of an organization cannot be removed or demoted")]
    LastOwner,
    #[error("database error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Conflict names used by [`StoreError::Conflict`].
pub mod conflict {
    pub const USER_EMAIL: &str = "users.email";
    pub const ORG_SLUG: &str = "orgs.slug";
    pub const NAMESPACE: &str = "namespaces.name";
    pub const MEMBERSHIP: &str = "memberships";
    pub const TOKEN_NAME: &str = "api_tokens.name";
    pub const APP_NAME: &str = "apps.name";
    pub const RELEASE_NUMBER: &str = "releases.number";
    pub const IDEMPOTENCY_KEY: &str = "idempotency.key";
    pub const SECRET_VERSION: &str = "secret_versions.version";
    pub const CLUSTER_NAME: &str = "clusters.name";
    pub const JOIN_TOKEN_NAME: &str = "join_tokens.name";
    pub const MACHINE_NAME: &str = "machines.name";
    /// A live (not decommissioned) machine with this UUID and fingerprint exists.
    pub const MACHINE_IDENTITY: &str = "machines.identity";
    /// `update_machine` lost a race: the record changed since it was read.
    pub const MACHINE_VERSION: &str = "machines.version";
}

/// A lease: `holder` may do the work `name` stands for until `expires_at`
/// (see [`Store::acquire_lease`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    pub name: String,
    pub holder: String,
    pub expires_at: DateTime<Utc>,
}

fn unimplemented<T>() -> StoreResult<T> {
    Err(StoreError::Backend(
        "this store does not implement apps yet".into(),
    ))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: String,
    /// Stored lowercased; unique.
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    /// SHA-256 (hex) of the bearer secret; unique.
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub user_id: String,
    /// Unique per user.
    pub name: String,
    pub prefix: String,
    /// SHA-256 (hex) of the secret; unique.
    pub token_hash: String,
    /// Scope: one organization, or `None` for all of the user's.
    pub org_id: Option<String>,
    pub enabled: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRecord {
    pub id: String,
    /// Unique among live organizations.
    pub slug: String,
    pub name: String,
    /// Unique forever: reserved in a namespace table that deletion never clears.
    pub namespace: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipRecord {
    pub org_id: String,
    pub user_id: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// A member joined with the user's public fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: String,
    /// Kept after the organization is deleted (no foreign key).
    pub org_id: String,
    pub actor_id: Option<String>,
    pub actor_email: Option<String>,
    pub action: String,
    pub target: String,
    pub request_id: String,
    pub outcome: Outcome,
    pub at: DateTime<Utc>,
}

/// A period during which an organization held a machine (billing history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineUsageRecord {
    pub id: String,
    pub org_id: String,
    pub machine_id: String,
    pub machine_name: String,
    pub cpu_cores: u32,
    pub memory_bytes: u64,
    pub gpus: u32,
    pub started_at: DateTime<Utc>,
    /// `None` while the period is open.
    pub ended_at: Option<DateTime<Utc>>,
    /// `released`, `decommissioned`, `removed`, …
    pub end_reason: Option<String>,
}

/// One stored telemetry sample of a machine (its short metrics history);
/// `metrics.at` is when it was taken.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineSampleRecord {
    pub machine_id: String,
    pub metrics: satusky_types::machines::MachineMetrics,
}

/// A machine's SideroLink WireGuard peer as last admitted (see
/// [`Store::put_machine_link`]): restored into the WireGuard endpoint when the
/// fleet runtime starts, so known machines keep their links across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineLinkRecord {
    pub machine_id: String,
    /// The node's WireGuard public key, base64 (as on the wire).
    pub public_key: String,
    pub uuid: String,
    pub overlay_address: String,
    /// `ip:port` the peer was last heard from, once known.
    pub last_endpoint: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// What a failed-login key stands for (see [`Store::record_login_failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginFailureKind {
    /// The account (email) a login named.
    Account,
    /// The client address a login came from.
    Address,
}

impl LoginFailureKind {
    /// As stored in `login_failures.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Address => "address",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Matches `actor_id` or `actor_email` exactly.
    pub actor: Option<String>,
    /// Exact action, or a prefix when it ends with `.`.
    pub action: Option<String>,
    pub outcome: Option<Outcome>,
    /// `at >= since`
    pub since: Option<DateTime<Utc>>,
    /// `at < until`
    pub until: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Cheap liveness probe of the database (used by `/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    // ---- users
    /// Conflict: [`conflict::USER_EMAIL`].
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()>;
    async fn get_user(&self, id: &str) -> StoreResult<Option<UserRecord>>;
    /// `email` is compared lowercased.
    async fn get_user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>>;
    async fn update_user_name(&self, id: &str, name: &str) -> StoreResult<()>;
    async fn update_user_password(&self, id: &str, password_hash: &str) -> StoreResult<()>;
    async fn count_users(&self) -> StoreResult<u64>;

    // ---- sessions
    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()>;
    /// The session with this hash and its user, in one read.
    async fn get_session_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(SessionRecord, UserRecord)>>;
    /// NotFound when no such session.
    async fn delete_session(&self, id: &str) -> StoreResult<()>;
    /// Deletes every session of the user except `keep` (if given); returns how many.
    async fn delete_user_sessions(&self, user_id: &str, keep: Option<&str>) -> StoreResult<u64>;

    // ---- expired sessions (purged by the periodic sweep of `serve` and `dev`)

    /// Deletes every session that has expired by `now` (`expires_at <= now`,
    /// the rule `authenticate` refuses by); returns how many. Idempotent, so
    /// replicas may sweep concurrently.
    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    // ---- failed logins (limited per account and per address, shared by
    // every replica; pruned by the periodic sweep of `serve` and `dev`)

    /// Records one failed login of `key` at `at`. Failures of one key at the
    /// same instant are distinct rows.
    async fn record_login_failure(
        &self,
        kind: LoginFailureKind,
        key: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Counts the failures of `key` after `since` (`at > since`), up to
    /// `limit`: the times of its latest failures, NEWEST FIRST, at most
    /// `limit` (so the last one is the limit-th newest, the failure whose
    /// expiry lifts a limit).
    async fn login_failures_since(
        &self,
        kind: LoginFailureKind,
        key: &str,
        since: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DateTime<Utc>>>;
    /// Records a login attempt as a failure of `key` before its password is
    /// checked, named `attempt` so that [`Store::forget_login_attempt`] can
    /// take back exactly this row.
    async fn record_login_attempt(
        &self,
        kind: LoginFailureKind,
        key: &str,
        at: DateTime<Utc>,
        attempt: &str,
    ) -> StoreResult<()>;
    /// Forgets the row `attempt` wrote for `key` (the attempt succeeded, or
    /// was refused); returns how many rows went (0 or 1).
    async fn forget_login_attempt(
        &self,
        kind: LoginFailureKind,
        key: &str,
        attempt: &str,
    ) -> StoreResult<u64>;
    /// Forgets every failure of `key` (a successful login); returns how many.
    async fn clear_login_failures(&self, kind: LoginFailureKind, key: &str) -> StoreResult<u64>;
    /// Deletes every failure recorded at or before `before`, of every key;
    /// returns how many. Idempotent, so replicas may prune concurrently.
    async fn prune_login_failures(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    // ---- personal API tokens
    /// Conflict: [`conflict::TOKEN_NAME`] (per user).
    async fn create_token(&self, token: &TokenRecord) -> StoreResult<()>;
    /// The token of this user with this id.
    async fn get_token(&self, user_id: &str, id: &str) -> StoreResult<Option<TokenRecord>>;
    /// The token of this user with this name.
    async fn get_token_by_name(
        &self,
        user_id: &str,
        name: &str,
    ) -> StoreResult<Option<TokenRecord>>;
    /// The token with this hash and its user, in one read.
    async fn get_token_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(TokenRecord, UserRecord)>>;
    /// The user's tokens ordered by id.
    async fn list_tokens(&self, user_id: &str, page: &PageRequest)
    -> StoreResult<Vec<TokenRecord>>;
    /// NotFound when the user has no such token.
    async fn set_token_enabled(&self, user_id: &str, id: &str, enabled: bool) -> StoreResult<()>;
    async fn touch_token(&self, id: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// NotFound when the user has no such token.
    async fn delete_token(&self, user_id: &str, id: &str) -> StoreResult<()>;

    // ---- organizations and memberships
    /// Creates the organization, reserves its namespace and makes `owner_id`
    /// its owner, all or nothing. Conflicts: [`conflict::ORG_SLUG`],
    /// [`conflict::NAMESPACE`].
    async fn create_org(&self, org: &OrgRecord, owner_id: &str) -> StoreResult<()>;
    /// True when the namespace name was ever reserved (even by a deleted org).
    async fn namespace_reserved(&self, namespace: &str) -> StoreResult<bool>;
    async fn get_org(&self, id: &str) -> StoreResult<Option<OrgRecord>>;
    async fn get_org_by_slug(&self, slug: &str) -> StoreResult<Option<OrgRecord>>;
    /// The user's organizations with their role, ordered by org id.
    async fn list_user_orgs(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Vec<(OrgRecord, Role)>>;
    async fn rename_org(&self, id: &str, name: &str) -> StoreResult<()>;
    /// Deletes the organization with its memberships and org-scoped tokens.
    /// Its namespace stays reserved and its audit entries stay.
    async fn delete_org(&self, id: &str) -> StoreResult<()>;

    async fn get_membership(
        &self,
        org_id: &str,
        user_id: &str,
    ) -> StoreResult<Option<MembershipRecord>>;
    /// Conflict: [`conflict::MEMBERSHIP`].
    async fn add_member(&self, m: &MembershipRecord) -> StoreResult<()>;
    /// Members ordered by user id.
    async fn list_members(&self, org_id: &str, page: &PageRequest) -> StoreResult<Vec<MemberRow>>;
    /// NotFound when not a member; [`StoreError::LastOwner`] when it would
    /// demote the only owner. Checked and written atomically.
    async fn set_member_role(&self, org_id: &str, user_id: &str, role: Role) -> StoreResult<()>;
    /// NotFound when not a member; [`StoreError::LastOwner`] when removing the
    /// only owner. Checked and written atomically.
    async fn remove_member(&self, org_id: &str, user_id: &str) -> StoreResult<()>;

    // ---- audit
    async fn insert_audit(&self, entry: &AuditRecord) -> StoreResult<()>;
    /// Entries of the organization matching the filter, NEWEST FIRST (id
    /// descending), strictly before `page.after` when given.
    async fn list_audit(
        &self,
        org_id: &str,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> StoreResult<Vec<AuditRecord>>;
    async fn get_audit(&self, org_id: &str, id: &str) -> StoreResult<Option<AuditRecord>>;

    // ---- platform administrators (operators of the installation)
    async fn is_platform_admin(&self, _user_id: &str) -> StoreResult<bool> {
        unimplemented()
    }
    async fn set_platform_admin(&self, _user_id: &str, _admin: bool) -> StoreResult<()> {
        unimplemented()
    }

    // ---- apps
    /// Conflict: [`conflict::APP_NAME`] (unique per organization).
    async fn create_app(&self, _app: &AppRecord) -> StoreResult<()> {
        unimplemented()
    }
    async fn get_app(&self, _org_id: &str, _name: &str) -> StoreResult<Option<AppRecord>> {
        unimplemented()
    }
    async fn get_app_by_id(&self, _id: &str) -> StoreResult<Option<AppRecord>> {
        unimplemented()
    }
    /// The organization's apps (deleting ones included) ordered by id.
    async fn list_apps(&self, _org_id: &str, _page: &PageRequest) -> StoreResult<Vec<AppRecord>> {
        unimplemented()
    }
    /// Every app of every organization ordered by id (the reconciler's resync).
    async fn list_all_apps(&self, _page: &PageRequest) -> StoreResult<Vec<AppRecord>> {
        unimplemented()
    }
    /// Appends a release atomically: `release.number` must be the app's
    /// `current_release + 1` (or 1); sets `current_release`, bumps
    /// `generation` and `updated_at`, and records the idempotency key when
    /// given. Returns the new generation. Conflicts:
    /// [`conflict::RELEASE_NUMBER`] (a concurrent release won),
    /// [`conflict::IDEMPOTENCY_KEY`]. NotFound when the app is gone.
    async fn append_release(
        &self,
        _release: &ReleaseRecord,
        _idempotency: Option<&IdempotencyRecord>,
    ) -> StoreResult<u64> {
        unimplemented()
    }
    async fn get_release(&self, _app_id: &str, _number: u64) -> StoreResult<Option<ReleaseRecord>> {
        unimplemented()
    }
    /// Newest first; `page.after` is a release number (decimal), exclusive.
    async fn list_releases(
        &self,
        _app_id: &str,
        _page: &PageRequest,
    ) -> StoreResult<Vec<ReleaseRecord>> {
        unimplemented()
    }
    async fn get_idempotency(
        &self,
        _app_id: &str,
        _key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        unimplemented()
    }
    /// Sets `restarted_at`, bumps `generation` and `updated_at`; returns the new generation.
    async fn restart_app(&self, _app_id: &str, _at: DateTime<Utc>) -> StoreResult<u64> {
        unimplemented()
    }
    /// Replaces the observed status (stored as JSON).
    async fn set_app_status(&self, _app_id: &str, _status: &AppStatus) -> StoreResult<()> {
        unimplemented()
    }
    /// Sets `deleting` and `delete_volumes`, bumps `generation`; returns it.
    async fn mark_app_deleting(&self, _app_id: &str, _delete_volumes: bool) -> StoreResult<u64> {
        unimplemented()
    }
    /// Removes the app with its releases, idempotency keys, secret versions and events.
    async fn delete_app(&self, _app_id: &str) -> StoreResult<()> {
        unimplemented()
    }
    async fn set_app_cluster(&self, _app_id: &str, _cluster_id: Option<&str>) -> StoreResult<()> {
        unimplemented()
    }

    // ---- app secrets (sealed)
    /// Conflict: [`conflict::SECRET_VERSION`].
    async fn create_secret_version(&self, _s: &SecretVersionRecord) -> StoreResult<()> {
        unimplemented()
    }
    async fn get_secret_version(
        &self,
        _app_id: &str,
        _version: u64,
    ) -> StoreResult<Option<SecretVersionRecord>> {
        unimplemented()
    }
    async fn latest_secret_version(
        &self,
        _app_id: &str,
    ) -> StoreResult<Option<SecretVersionRecord>> {
        unimplemented()
    }

    // ---- app events
    /// Appends an event with `seq` = the app's last seq + 1 (ignoring the
    /// record's `seq`), atomically; returns the assigned seq.
    async fn append_app_event(&self, _e: &AppEventRecord) -> StoreResult<u64> {
        unimplemented()
    }
    /// Events with `seq > after`, ascending, at most `limit`.
    async fn list_app_events(
        &self,
        _app_id: &str,
        _after: u64,
        _limit: u32,
    ) -> StoreResult<Vec<AppEventRecord>> {
        unimplemented()
    }

    // ---- clusters
    /// Conflict: [`conflict::CLUSTER_NAME`]. A new default clears the old default.
    async fn create_cluster(&self, _c: &ClusterRecord) -> StoreResult<()> {
        unimplemented()
    }
    async fn get_cluster(&self, _id: &str) -> StoreResult<Option<ClusterRecord>> {
        unimplemented()
    }
    async fn get_cluster_by_name(&self, _name: &str) -> StoreResult<Option<ClusterRecord>> {
        unimplemented()
    }
    /// Ordered by id.
    async fn list_clusters(&self, _page: &PageRequest) -> StoreResult<Vec<ClusterRecord>> {
        unimplemented()
    }
    async fn set_cluster_health(
        &self,
        _id: &str,
        _health: &str,
        _message: Option<&str>,
    ) -> StoreResult<()> {
        unimplemented()
    }
    async fn delete_cluster(&self, _id: &str) -> StoreResult<()> {
        unimplemented()
    }

    // ---- leases (one holder at a time, e.g. of a machine operation)

    /// Takes the lease `name` for `holder` until `expires_at` when nobody
    /// holds it, when its holder's term ended at or before `now`, or when
    /// `holder` already holds it (a renewal). One atomic statement: of
    /// concurrent callers for a free lease exactly one gets it. Returns
    /// whether `holder` holds the lease now.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Moves the end of `holder`'s lease to `expires_at`; false (and no
    /// change) when `holder` does not hold it (another took it over after
    /// it expired, or it was released).
    async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Gives the lease up; false when `holder` did not hold it.
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<bool>;
    /// The lease as stored, expired or not.
    async fn get_lease(&self, name: &str) -> StoreResult<Option<LeaseRecord>>;

    // ---- machines
    /// Conflict: [`conflict::JOIN_TOKEN_NAME`] (unique per organization).
    /// NotFound when the organization does not exist.
    async fn create_join_token(&self, t: &JoinTokenRecord) -> StoreResult<()>;
    async fn get_join_token(&self, id: &str) -> StoreResult<Option<JoinTokenRecord>>;
    /// The organization's join tokens ordered by id.
    async fn list_join_tokens(
        &self,
        org_id: &str,
        page: &PageRequest,
    ) -> StoreResult<Vec<JoinTokenRecord>>;
    /// Sets `revoked_at` unless already revoked (the first revocation time
    /// stays). NotFound when the organization has no such token.
    async fn revoke_join_token(&self, org_id: &str, id: &str, at: DateTime<Utc>)
    -> StoreResult<()>;

    /// Conflicts: [`conflict::MACHINE_NAME`] (unique per organization),
    /// [`conflict::MACHINE_IDENTITY`] (one live machine per UUID and
    /// fingerprint). NotFound when the organization does not exist.
    async fn create_machine(&self, m: &MachineRecord) -> StoreResult<()>;
    async fn get_machine(&self, id: &str) -> StoreResult<Option<MachineRecord>>;
    async fn get_machine_by_name(
        &self,
        org_id: &str,
        name: &str,
    ) -> StoreResult<Option<MachineRecord>>;
    /// Every machine (of any organization) reporting this SMBIOS UUID, by id.
    async fn find_machines_by_uuid(&self, uuid: &str) -> StoreResult<Vec<MachineRecord>>;
    /// The organization's machines, plus every other organization's `public`
    /// machines when `include_public`, ordered by id.
    async fn list_machines(
        &self,
        org_id: &str,
        include_public: bool,
        page: &PageRequest,
    ) -> StoreResult<Vec<MachineRecord>>;
    /// Like [`Store::list_machines`], only the machines whose labels match
    /// `selector`, evaluated in the store. A machine's labels are its user
    /// labels and its system labels (a system label wins over a user label
    /// of the same key); keys are machine keys (`pool`, `kubernetes.io/arch`).
    /// `!=` and `notin` match machines without the key, as in Kubernetes.
    async fn list_machines_selected(
        &self,
        org_id: &str,
        include_public: bool,
        selector: &crate::selector::Selector,
        page: &PageRequest,
    ) -> StoreResult<Vec<MachineRecord>>;
    /// Every machine ordered by id (resuming operations after a restart).
    async fn list_all_machines(&self, page: &PageRequest) -> StoreResult<Vec<MachineRecord>>;
    /// Writes every mutable field (all but id, org, uuid, fingerprint and
    /// `created_at`) when the stored version is still `m.version`, and
    /// stores `m.version + 1`, which it returns. Conflict:
    /// [`conflict::MACHINE_VERSION`] when the version moved (and MACHINE_NAME);
    /// NotFound when the machine is gone.
    async fn update_machine(&self, m: &MachineRecord) -> StoreResult<u64>;
    /// Appends an event with `seq` = the machine's last seq + 1 (ignoring the
    /// record's `seq`), atomically; returns it. NotFound for a missing machine.
    async fn append_machine_event(&self, e: &MachineEventRecord) -> StoreResult<u64>;
    /// Events with `seq > after`, ascending, at most `limit`.
    async fn list_machine_events(
        &self,
        machine_id: &str,
        after: u64,
        limit: u32,
    ) -> StoreResult<Vec<MachineEventRecord>>;

    // ---- machine usage (billing history)

    /// Opens a usage period unless the machine has an open one; returns
    /// whether it opened this one.
    async fn open_machine_usage(&self, u: &MachineUsageRecord) -> StoreResult<bool>;
    /// Closes the machine's open period at `at` with `reason`; returns
    /// whether there was one.
    async fn close_machine_usage(
        &self,
        machine_id: &str,
        at: DateTime<Utc>,
        reason: &str,
    ) -> StoreResult<bool>;
    /// An organization's periods, newest first (keyset on id, like audit),
    /// those of `machine_id` only when given, and only periods overlapping
    /// `[since, until)` when given.
    async fn list_machine_usage(
        &self,
        org_id: &str,
        machine_id: Option<&str>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        page: &PageRequest,
    ) -> StoreResult<Vec<MachineUsageRecord>>;

    // ---- machine metric samples (the short history)

    /// Stores samples; a sample for a (machine, time) already stored is
    /// ignored. NotFound when a machine is missing (nothing is stored).
    async fn insert_machine_samples(&self, samples: &[MachineSampleRecord]) -> StoreResult<()>;
    /// Samples of one machine taken after `after` (all when `None`),
    /// oldest first, at most `limit`.
    async fn list_machine_samples(
        &self,
        machine_id: &str,
        after: Option<DateTime<Utc>>,
        limit: u32,
    ) -> StoreResult<Vec<MachineSampleRecord>>;
    /// Deletes every sample taken before `before`; returns how many.
    async fn prune_machine_samples(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    // ---- machine SideroLink peers (restored after a control-plane restart)

    /// Records the machine's peer, replacing the one stored before (one per
    /// machine). NotFound when the machine does not exist.
    async fn put_machine_link(&self, l: &MachineLinkRecord) -> StoreResult<()>;
    /// Sets `last_endpoint` (and `updated_at`) of the machine's peer when it
    /// is still the one with `public_key`; false otherwise (no change).
    async fn set_machine_link_endpoint(
        &self,
        machine_id: &str,
        public_key: &str,
        endpoint: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Every stored peer, ordered by machine id.
    async fn list_machine_links(&self) -> StoreResult<Vec<MachineLinkRecord>>;
    /// Deletes the machine's peer; with `public_key`, only when it is the
    /// stored one. Returns whether a peer was deleted.
    async fn delete_machine_link(
        &self,
        machine_id: &str,
        public_key: Option<&str>,
    ) -> StoreResult<bool>;
}
