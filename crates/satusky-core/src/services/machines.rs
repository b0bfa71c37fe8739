//! Machines: join tokens, admission of provisioned machines, the fleet
//! (tenancy, labels, selector queries, visibility, events) and operations.
//!
//! Tenancy: an organization sees and operates its own machines (an
//! `owner`-visibility machine only by its claimer and admins); other
//! organizations' `public` machines are visible read-only (`operable:
//! false`, 403 on any change); everything else is 404.
//!
//! Operations (cordon, uncordon, drain, reboot, shutdown, decommission)
//! validate the transition with `machines::on`, persist the new state and
//! the plan in `MachineRecord.operation`, answer, and run the plan in a
//! spawned task through the [`NodeOps`]/[`TalosOps`] ports, recording
//! progress after every step so that [`Services::resume_machine_operations`]
//! continues after a restart.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use satusky_types::ErrorCode;
use satusky_types::machines::{
    BulkItem, BulkRequest, BulkResult, CreateJoinTokenRequest, DecommissionRequest, DrainRequest,
    Hardware, JoinToken, JoinTokenCreated, LabelsChange, Link, Machine,
    MachineEvent as MachineEventDto, MachineMetrics, MachineOperation, MachineQuery, MachineState,
    PowerRequest, Visibility,
};
use satusky_types::orgs::{Outcome, Role};
use satusky_types::page::Page;

use super::{Ctx, OrgAccess, Services};
use crate::authz::Action;
use crate::fleet::jointoken::{self, Claims, SigningKey};
use crate::fleet::labels;
use crate::fleet::ports::{OpsError, TalosTarget};
use crate::machines::{
    self as lifecycle, JoinTokenRecord, MachineEvent as Ev, MachineEventRecord, MachineRecord,
    is_live,
};
use crate::pagination::{PageRequest, paginate};
use crate::selector::node_label_key;
use crate::store::{AuditRecord, OrgRecord, StoreError, conflict};
use crate::{Error, Result, ids, validate};

mod health;
mod links;
mod placement;
mod runner;
mod telemetry;
mod usage;

pub use telemetry::{MachineLogFollow, SampleReport};

const RUNNING: &str = "running";
const COMPLETED: &str = "completed";
const FAILED: &str = "failed";
const CANCELLED: &str = "cancelled";

/// Names a bulk route uses; never given to a machine.
const RESERVED_NAMES: [&str; 1] = ["bulk"];

/// What the SideroLink adapter knows about a machine calling `Provision`.
#[derive(Clone, Default)]
pub struct AdmitRequest {
    /// The join token from `siderolink.api=…?jointoken=`.
    pub token: String,
    /// SMBIOS UUID (or its META override); not unique on its own.
    pub uuid: String,
    /// Hash of the machine's persisted unique token and its NIC fingerprint.
    pub fingerprint: String,
    pub hostname: String,
    pub hardware: Hardware,
    pub zone: String,
    /// Where its Talos API answers (`[overlay]:50000`).
    pub talos_endpoint: String,
    /// The overlay address the adapter would give a new machine; a known
    /// machine keeps its stored one (read it from the returned record).
    pub overlay_address: String,
    pub talos_version: Option<String>,
}

impl std::fmt::Debug for AdmitRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmitRequest")
            .field("token", &"<redacted>")
            .field("uuid", &self.uuid)
            .field("fingerprint", &self.fingerprint)
            .field("hostname", &self.hostname)
            .field("zone", &self.zone)
            .field("talos_endpoint", &self.talos_endpoint)
            .field("overlay_address", &self.overlay_address)
            .finish_non_exhaustive()
    }
}

/// Actions that take a selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    Cordon,
    Uncordon,
    Drain,
    Labels,
    /// Cancels the running operation of every matching machine that has one.
    Cancel,
}

impl BulkAction {
    pub fn as_str(self) -> &'static str {
        match self {
            BulkAction::Cordon => "cordon",
            BulkAction::Uncordon => "uncordon",
            BulkAction::Drain => "drain",
            BulkAction::Labels => "labels",
            BulkAction::Cancel => "cancel",
        }
    }
}

impl std::str::FromStr for BulkAction {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "cordon" => BulkAction::Cordon,
            "uncordon" => BulkAction::Uncordon,
            "drain" => BulkAction::Drain,
            "labels" => BulkAction::Labels,
            "cancel" => BulkAction::Cancel,
            other => {
                return Err(Error::new(
                    ErrorCode::RouteNotFound,
                    format!("no bulk action `{other}` (cordon, uncordon, drain, labels or cancel)"),
                ));
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Cordon,
    Uncordon,
    Drain,
    Reboot,
    Shutdown,
    Decommission,
}

impl OpKind {
    fn as_str(self) -> &'static str {
        match self {
            OpKind::Cordon => "cordon",
            OpKind::Uncordon => "uncordon",
            OpKind::Drain => "drain",
            OpKind::Reboot => "reboot",
            OpKind::Shutdown => "shutdown",
            OpKind::Decommission => "decommission",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            OpKind::Cordon,
            OpKind::Uncordon,
            OpKind::Drain,
            OpKind::Reboot,
            OpKind::Shutdown,
            OpKind::Decommission,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy)]
struct OpRequest {
    kind: OpKind,
    event: Ev,
    force: bool,
    wipe_user_disks: bool,
    drain_timeout_seconds: u32,
    delete_emptydir_data: bool,
}

impl OpRequest {
    fn new(kind: OpKind, event: Ev) -> Self {
        Self {
            kind,
            event,
            force: false,
            wipe_user_disks: false,
            drain_timeout_seconds: 300,
            delete_emptydir_data: false,
        }
    }
}

/// A machine as the caller may see it.
struct Found {
    machine: MachineRecord,
    /// Slug of the owning organization.
    org_slug: String,
    operable: bool,
}

fn ops_message(e: &OpsError) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn machine_not_found(key: &str) -> Error {
    Error::new(
        ErrorCode::MachineNotFound,
        format!("machine `{key}` not found"),
    )
}

fn token_not_found(id: &str) -> Error {
    Error::new(
        ErrorCode::JoinTokenNotFound,
        format!("join token `{id}` not found"),
    )
}

fn transition_error(e: &lifecycle::InvalidTransition) -> Error {
    Error::new(ErrorCode::MachineStateConflict, e.to_string())
}

fn token_dto(t: &JoinTokenRecord, org: &OrgRecord) -> JoinToken {
    JoinToken {
        id: t.id.clone(),
        name: t.name.clone(),
        org: org.slug.clone(),
        expires_at: t.expires_at,
        revoked: t.revoked_at.is_some(),
        created_at: t.created_at,
    }
}

fn event_dto(e: MachineEventRecord) -> MachineEventDto {
    MachineEventDto {
        seq: e.seq,
        kind: e.kind,
        message: e.message,
        at: e.at,
    }
}

/// The machine's operation, if its JSON is one we understand.
pub fn machine_operation(m: &MachineRecord) -> Option<MachineOperation> {
    m.operation
        .as_ref()
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

fn running_operation(m: &MachineRecord) -> Option<MachineOperation> {
    machine_operation(m).filter(|op| op.phase == RUNNING)
}

fn operation_json(op: &MachineOperation) -> Result<serde_json::Value> {
    serde_json::to_value(op).map_err(Error::internal)
}

/// Writes `op`'s wire fields over the record's operation, keeping what
/// else its JSON holds (the runner's state).
fn set_operation(r: &mut MachineRecord, op: &MachineOperation) -> Result<()> {
    let mut json = operation_json(op)?;
    if let (Some(new), Some(old)) = (
        json.as_object_mut(),
        r.operation.as_ref().and_then(serde_json::Value::as_object),
    ) {
        for (k, v) in old {
            new.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    r.operation = Some(json);
    Ok(())
}

/// Refuses to cancel `op` once it began an irreversible step (409 naming
/// what the machine is doing), or when it is not one a cancel can undo.
fn check_cancellable(r: &MachineRecord, op: &MachineOperation) -> Result<()> {
    let plan: Vec<lifecycle::Effect> = op
        .plan
        .iter()
        .filter_map(|s| lifecycle::Effect::parse(s))
        .collect();
    if op.step as usize >= plan.len() {
        return Err(Error::new(
            ErrorCode::MachineStateConflict,
            format!(
                "machine `{}` has done every step of its {}; there is nothing left to cancel",
                r.name, op.kind
            ),
        ));
    }
    if let Some(blocker) = lifecycle::cancel_blocker(&plan, op.step as usize) {
        return Err(Error::new(
            ErrorCode::MachineStateConflict,
            format!(
                "machine `{}` is already {} ({} of its {} began); it cannot be cancelled",
                r.name,
                lifecycle::doing(blocker),
                blocker.as_str(),
                op.kind
            ),
        ));
    }
    if let Err(e) = lifecycle::on(
        r.state,
        Ev::Cancel {
            back_to: op.from_state,
        },
    ) {
        let why = if matches!(op.kind.as_str(), "cordon" | "uncordon") {
            format!(
                "machine `{}` is running a {}, a single call that cannot be cancelled; undo it afterwards",
                r.name, op.kind
            )
        } else {
            format!("machine `{}`: {e}", r.name)
        };
        return Err(Error::new(ErrorCode::MachineStateConflict, why));
    }
    Ok(())
}

/// A DNS-label-like machine name from a hostname.
fn name_base(hostname: &str, uuid: &str) -> String {
    let mut s: String = hostname
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.truncate(50);
    let s = s.trim_matches('-').to_owned();
    if s.is_empty() {
        let short: String = uuid
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect::<String>()
            .to_lowercase();
        if short.is_empty() {
            "machine".to_owned()
        } else {
            format!("machine-{short}")
        }
    } else {
        s
    }
}

/// All-zero, all-`f` and other single-digit UUIDs are firmware placeholders.
fn placeholder_uuid(uuid: &str) -> bool {
    let hex: Vec<char> = uuid
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex.first().is_none_or(|c| hex.iter().all(|x| x == c))
}

/// How long one port call (other than a drain) may take before the step
/// fails; the ports bound their own calls too.
const PORT_CALL_TIMEOUT: Duration = Duration::from_mins(2);

async fn bounded<T>(
    call: impl Future<Output = std::result::Result<T, OpsError>>,
) -> std::result::Result<T, OpsError> {
    tokio::time::timeout(PORT_CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(OpsError::unreachable(format!(
                "the call (no answer within {}s)",
                PORT_CALL_TIMEOUT.as_secs()
            )))
        })
}

fn talos_target(m: &MachineRecord) -> TalosTarget {
    TalosTarget {
        machine_id: m.id.clone(),
        uuid: m.uuid.clone(),
        endpoint: m.talos_endpoint.clone(),
        overlay_address: m.overlay_address.clone(),
    }
}

impl Services {
    fn join_key(&self) -> Result<&SigningKey> {
        self.inner.config.join_token_key.as_ref().ok_or_else(|| {
            Error::new(
                ErrorCode::Unavailable,
                "machine join tokens are not configured on this installation (no join-token signing key)",
            )
        })
    }

    /// Kernel arguments that make Talos join with this token (reference §5.1).
    pub fn join_kernel_args(&self, token: &str) -> Vec<String> {
        let c = &self.inner.config;
        let sep = if c.siderolink_url.contains('?') {
            '&'
        } else {
            '?'
        };
        vec![
            format!("siderolink.api={}{sep}jointoken={token}", c.siderolink_url),
            format!("talos.events.sink={}", c.machine_events_sink),
            format!("talos.logging.kernel={}", c.machine_kernel_log),
        ]
    }

    /// Records an audit entry of the platform itself (admission, background
    /// operations), attributed to no user.
    async fn audit_platform(&self, org_id: &str, action: &str, target: &str, outcome: Outcome) {
        let entry = AuditRecord {
            id: ids::new_id(),
            org_id: org_id.to_owned(),
            actor_id: None,
            actor_email: None,
            action: action.to_owned(),
            target: target.to_owned(),
            request_id: "platform".to_owned(),
            outcome,
            at: self.inner.clock.now(),
        };
        if let Err(e) = self.inner.store.insert_audit(&entry).await {
            tracing::error!(org.id = %org_id, action, error = &e as &dyn std::error::Error, "failed to write audit entry");
        }
    }

    async fn machine_event(&self, machine_id: &str, kind: &str, message: String) {
        let rec = MachineEventRecord {
            machine_id: machine_id.to_owned(),
            seq: 0,
            kind: kind.to_owned(),
            message,
            at: self.inner.clock.now(),
        };
        if let Err(e) = self.inner.store.append_machine_event(&rec).await {
            tracing::error!(machine.id = %machine_id, error = &e as &dyn std::error::Error, "failed to record machine event");
        }
    }

    /// Re-reads the machine, applies `f` and writes it back with
    /// compare-and-set, retrying when a concurrent update won.
    async fn update_machine_with<F>(&self, id: &str, mut f: F) -> Result<MachineRecord>
    where
        F: FnMut(&mut MachineRecord) -> Result<()> + Send,
    {
        let store = &self.inner.store;
        for _ in 0..20 {
            let mut m = store
                .get_machine(id)
                .await?
                .ok_or_else(|| machine_not_found(id))?;
            let before = m.state;
            f(&mut m)?;
            m.updated_at = self.inner.clock.now();
            match store.update_machine(&m).await {
                Ok(version) => {
                    m.version = version;
                    self.track_usage(before, &m).await;
                    return Ok(m);
                }
                Err(StoreError::Conflict(c)) if c == conflict::MACHINE_VERSION => {}
                Err(StoreError::NotFound) => return Err(machine_not_found(id)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::new(
            ErrorCode::Conflict,
            "the machine kept changing while being updated; retry",
        ))
    }

    fn machine_dto(m: &MachineRecord, org_slug: &str, operable: bool) -> Machine {
        Machine {
            id: m.id.clone(),
            name: m.name.clone(),
            uuid: m.uuid.clone(),
            org: org_slug.to_owned(),
            state: m.state,
            visibility: m.visibility,
            labels: m.labels.clone(),
            system_labels: m.system_labels.clone(),
            hardware: m.hardware.clone(),
            zone: m.zone.clone(),
            link: Link {
                connected: m.connected,
                address: m.overlay_address.clone(),
                last_seen_at: m.last_seen_at,
            },
            node_name: m.node_name.clone(),
            operable,
            note: m.note.clone(),
            // Who asked is for the owning organization's eyes only.
            operation: machine_operation(m).map(|op| MachineOperation {
                requested_by: op.requested_by.filter(|_| operable),
                cancel_requested_by: op.cancel_requested_by.filter(|_| operable),
                ..op
            }),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }

    fn found_dto(f: &Found) -> Machine {
        Self::machine_dto(&f.machine, &f.org_slug, f.operable)
    }

    /// Whether the caller sees a machine of their own organization.
    fn sees_own(ctx: &Ctx, a: &OrgAccess, m: &MachineRecord) -> bool {
        m.visibility != Visibility::Owner
            || a.role >= Role::Admin
            || m.owner_user_id.as_deref() == Some(ctx.principal.user_id.as_str())
    }

    /// A machine by name (in the caller's organization) or id (also another
    /// organization's public machine, read-only).
    async fn find_machine(&self, ctx: &Ctx, a: &OrgAccess, key: &str) -> Result<Found> {
        let store = &self.inner.store;
        let own = |m: MachineRecord| Found {
            machine: m,
            org_slug: a.org.slug.clone(),
            operable: true,
        };
        if let Some(m) = store.get_machine_by_name(&a.org.id, key).await? {
            return if Self::sees_own(ctx, a, &m) {
                Ok(own(m))
            } else {
                Err(machine_not_found(key))
            };
        }
        if ids::is_id(key)
            && let Some(m) = store.get_machine(key).await?
        {
            if m.org_id == a.org.id {
                if Self::sees_own(ctx, a, &m) {
                    return Ok(own(m));
                }
            } else if m.visibility == Visibility::Public
                && let Some(o) = store.get_org(&m.org_id).await?
            {
                return Ok(Found {
                    machine: m,
                    org_slug: o.slug,
                    operable: false,
                });
            }
        }
        Err(machine_not_found(key))
    }

    async fn find_operable(&self, ctx: &Ctx, a: &OrgAccess, key: &str) -> Result<Found> {
        let f = self.find_machine(ctx, a, key).await?;
        if !f.operable {
            return Err(Error::forbidden(format!(
                "machine `{}` belongs to organization `{}`: it is public, so you may see it, but only its organization may change it",
                f.machine.name, f.org_slug
            )));
        }
        Ok(f)
    }

    // ---- join tokens

    /// Creates a join token and shows its secret once, with kernel arguments.
    pub async fn create_join_token(
        &self,
        ctx: &Ctx,
        org: &str,
        req: &CreateJoinTokenRequest,
    ) -> Result<JoinTokenCreated> {
        let a = self.authorize(ctx, org, Action::MachinesAdmin).await?;
        let result = async {
            validate::token_name(&req.name)?;
            let hours = req.expires_in_hours.unwrap_or(24);
            if !(1..=8760).contains(&hours) {
                return Err(Error::validation(format!(
                    "expires_in_hours must be between 1 and 8760, got {hours}"
                )));
            }
            let key = self.join_key()?;
            let now = self.inner.clock.now();
            let rec = JoinTokenRecord {
                id: ids::new_id(),
                org_id: a.org.id.clone(),
                name: req.name.clone(),
                expires_at: now + chrono::Duration::hours(i64::from(hours)),
                revoked_at: None,
                created_at: now,
            };
            match self.inner.store.create_join_token(&rec).await {
                Ok(()) => {}
                Err(StoreError::Conflict(c)) if c == conflict::JOIN_TOKEN_NAME => {
                    return Err(Error::new(
                        ErrorCode::JoinTokenNameTaken,
                        format!("a join token named `{}` already exists", req.name),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
            let token = jointoken::sign(
                key,
                &Claims {
                    tid: rec.id.clone(),
                    org: a.org.id.clone(),
                    exp: rec.expires_at.timestamp(),
                },
            );
            Ok(JoinTokenCreated {
                join_token: token_dto(&rec, &a.org),
                kernel_args: self.join_kernel_args(&token),
                token,
            })
        }
        .await;
        self.audited(
            ctx,
            &a.org,
            "machine.join_token.create",
            &format!("join-token:{}", req.name),
            result,
        )
        .await
    }

    pub async fn list_join_tokens(
        &self,
        ctx: &Ctx,
        org: &str,
        page: &PageRequest,
    ) -> Result<Page<JoinToken>> {
        let a = self.authorize(ctx, org, Action::MachinesRead).await?;
        let rows = self.inner.store.list_join_tokens(&a.org.id, page).await?;
        let page = paginate(rows, page, |t| t.id.clone());
        Ok(Page {
            items: page.items.iter().map(|t| token_dto(t, &a.org)).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Revokes a join token (by id or name). Machines already admitted stay;
    /// new provisioning with it is refused.
    pub async fn revoke_join_token(&self, ctx: &Ctx, org: &str, token: &str) -> Result<JoinToken> {
        let a = self.authorize(ctx, org, Action::MachinesAdmin).await?;
        let result = async {
            let store = &self.inner.store;
            let rec = self.find_join_token(&a.org, token).await?;
            let now = self.inner.clock.now();
            match store.revoke_join_token(&a.org.id, &rec.id, now).await {
                Ok(()) => {}
                Err(StoreError::NotFound) => return Err(token_not_found(token)),
                Err(e) => return Err(e.into()),
            }
            let rec = store
                .get_join_token(&rec.id)
                .await?
                .ok_or_else(|| token_not_found(token))?;
            Ok(token_dto(&rec, &a.org))
        }
        .await;
        self.audited(
            ctx,
            &a.org,
            "machine.join_token.revoke",
            &format!("join-token:{token}"),
            result,
        )
        .await
    }

    async fn find_join_token(&self, org: &OrgRecord, key: &str) -> Result<JoinTokenRecord> {
        let store = &self.inner.store;
        if ids::is_id(key)
            && let Some(t) = store.get_join_token(key).await?
            && t.org_id == org.id
        {
            return Ok(t);
        }
        // By name: tokens are few per organization.
        let mut page = PageRequest::first(500);
        loop {
            let rows = store.list_join_tokens(&org.id, &page).await?;
            let more = rows.len() > 500;
            if let Some(t) = rows.iter().find(|t| t.name == key) {
                return Ok(t.clone());
            }
            match (more, rows.get(499)) {
                (true, Some(last)) => page.after = Some(last.id.clone()),
                _ => return Err(token_not_found(key)),
            }
        }
    }

    /// Checks a join token: signature, record, revocation, expiry. Returns
    /// the record when it was found, even when the token is refused.
    async fn check_join_token(
        &self,
        token: &str,
    ) -> (Option<JoinTokenRecord>, Result<JoinTokenRecord>) {
        let invalid = |why: &str| Error::new(ErrorCode::JoinTokenInvalid, why.to_owned());
        let key = match self.join_key() {
            Ok(k) => k,
            Err(e) => return (None, Err(e)),
        };
        let claims = match jointoken::verify(key, token) {
            Ok(c) => c,
            Err(e) => return (None, Err(invalid(&e.to_string()))),
        };
        let rec = match self.inner.store.get_join_token(&claims.tid).await {
            Ok(Some(r)) if r.org_id == claims.org => r,
            Ok(_) => return (None, Err(invalid("the join token is not known"))),
            Err(e) => return (None, Err(e.into())),
        };
        if let Some(at) = rec.revoked_at {
            let e = Error::new(
                ErrorCode::JoinTokenRevoked,
                format!("join token `{}` was revoked at {at}", rec.name),
            );
            return (Some(rec), Err(e));
        }
        let now = self.inner.clock.now();
        if now >= rec.expires_at || now.timestamp() >= claims.exp {
            let e = Error::new(
                ErrorCode::JoinTokenExpired,
                format!("join token `{}` expired at {}", rec.name, rec.expires_at),
            );
            return (Some(rec), Err(e));
        }
        (Some(rec.clone()), Ok(rec))
    }

    /// Verifies a join token fully (signature, record exists, not revoked,
    /// not expired) and returns its record. For the provisioning server's
    /// first check; [`Services::admit_machine`] checks again.
    pub async fn verify_join_token(&self, token: &str) -> Result<JoinTokenRecord> {
        self.check_join_token(token).await.1
    }

    // ---- admission

    /// Admits a machine that called SideroLink `Provision`.
    ///
    /// - A wrong, expired or revoked token is refused (`join_token_invalid`,
    ///   `join_token_expired`, `join_token_revoked`).
    /// - A known (uuid, fingerprint) re-provisions idempotently: the link is
    ///   marked up, facts refreshed, and the stored overlay address kept.
    /// - A machine removed by force (`needs_wipe`) is refused
    ///   (`machine_identity_revoked`) until it is wiped.
    /// - The same UUID with another fingerprint becomes its own record with a
    ///   note; the first machine is never touched.
    #[tracing::instrument(skip_all, fields(machine.uuid = %req.uuid))]
    pub async fn admit_machine(&self, req: AdmitRequest) -> Result<MachineRecord> {
        let (token_rec, checked) = self.check_join_token(&req.token).await;
        let token = match checked {
            Ok(t) => t,
            Err(e) => {
                if let Some(t) = token_rec {
                    self.audit_platform(
                        &t.org_id,
                        "machine.admit",
                        &format!("uuid:{} join-token:{}", req.uuid, t.name),
                        Outcome::Denied,
                    )
                    .await;
                }
                tracing::info!(code = %e.code, "machine admission refused");
                return Err(e);
            }
        };
        for (field, value, max) in [
            ("uuid", &req.uuid, 64),
            ("fingerprint", &req.fingerprint, 256),
        ] {
            if value.trim().is_empty() || value.len() > max {
                return Err(Error::validation(format!(
                    "{field} must be 1 to {max} characters"
                )));
            }
        }
        let store = &self.inner.store;
        let same_uuid = store.find_machines_by_uuid(&req.uuid).await?;
        if let Some(known) = same_uuid
            .iter()
            .rev()
            .find(|m| m.fingerprint == req.fingerprint)
        {
            match known.state {
                MachineState::NeedsWipe => {
                    self.audit_platform(
                        &known.org_id,
                        "machine.admit",
                        &format!("machine:{}", known.name),
                        Outcome::Denied,
                    )
                    .await;
                    return Err(Error::new(
                        ErrorCode::MachineIdentityRevoked,
                        format!(
                            "machine `{}` was removed by force: wipe its disks before it joins again",
                            known.name
                        ),
                    ));
                }
                MachineState::Decommissioned => {}
                _ => return self.reprovision(known, &req).await,
            }
        }
        self.admit_new(&token, &req, &same_uuid).await
    }

    async fn reprovision(
        &self,
        known: &MachineRecord,
        req: &AdmitRequest,
    ) -> Result<MachineRecord> {
        let now = self.inner.clock.now();
        let m = self
            .update_machine_with(&known.id, |m| {
                m.connected = true;
                m.last_seen_at = Some(now);
                if !req.talos_endpoint.is_empty() {
                    m.talos_endpoint.clone_from(&req.talos_endpoint);
                }
                if m.overlay_address.is_empty() {
                    m.overlay_address.clone_from(&req.overlay_address);
                }
                if !req.zone.is_empty() {
                    m.zone.clone_from(&req.zone);
                }
                m.hardware = req.hardware.clone();
                m.system_labels = labels::system_labels(&m.hardware, &m.zone, &req.hostname);
                Ok(())
            })
            .await?;
        self.machine_event(
            &m.id,
            "link.up",
            format!(
                "re-provisioned; link up with overlay address {}",
                m.overlay_address
            ),
        )
        .await;
        if m.system_labels != known.system_labels
            && let Err(e) = self.sync_machine_node_labels(&m.id).await
        {
            self.machine_event(&m.id, "labels.push_failed", e.message)
                .await;
        }
        Ok(m)
    }

    async fn admit_new(
        &self,
        token: &JoinTokenRecord,
        req: &AdmitRequest,
        same_uuid: &[MachineRecord],
    ) -> Result<MachineRecord> {
        let store = &self.inner.store;
        let mut notes = Vec::new();
        if placeholder_uuid(&req.uuid) {
            notes.push(format!(
                "its SMBIOS UUID {} is a firmware placeholder; it is told apart by its fingerprint",
                req.uuid
            ));
        }
        let others: Vec<&MachineRecord> = same_uuid
            .iter()
            .filter(|m| m.fingerprint != req.fingerprint && is_live(m.state))
            .collect();
        if !others.is_empty() {
            let names: Vec<String> = others
                .iter()
                .map(|m| {
                    if m.org_id == token.org_id {
                        format!("`{}`", m.name)
                    } else {
                        "a machine of another organization".to_owned()
                    }
                })
                .collect();
            notes.push(format!(
                "UUID {} is also reported by {} (different hardware fingerprint): this machine was recorded separately and replaced nothing",
                req.uuid,
                names.join(", ")
            ));
        }
        let now = self.inner.clock.now();
        let base = name_base(&req.hostname, &req.uuid);
        let mut m = MachineRecord {
            id: ids::new_id(),
            org_id: token.org_id.clone(),
            owner_user_id: None,
            name: base.clone(),
            uuid: req.uuid.clone(),
            fingerprint: req.fingerprint.clone(),
            state: MachineState::Discovered,
            visibility: Visibility::Organization,
            labels: BTreeMap::new(),
            system_labels: labels::system_labels(&req.hardware, &req.zone, &req.hostname),
            hardware: req.hardware.clone(),
            zone: req.zone.clone(),
            overlay_address: req.overlay_address.clone(),
            talos_endpoint: req.talos_endpoint.clone(),
            connected: true,
            last_seen_at: Some(now),
            node_name: None,
            cordoned_by_us: false,
            operation: None,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
            created_at: now,
            updated_at: now,
            version: 0,
        };
        let mut attempt = 1u32;
        loop {
            if RESERVED_NAMES.contains(&m.name.as_str()) {
                attempt += 1;
                m.name = format!("{base}-{attempt}");
                continue;
            }
            match store.create_machine(&m).await {
                Ok(()) => break,
                Err(StoreError::Conflict(c)) if c == conflict::MACHINE_NAME && attempt < 50 => {
                    attempt += 1;
                    m.name = format!("{base}-{attempt}");
                }
                Err(StoreError::Conflict(c)) if c == conflict::MACHINE_NAME => {
                    m.name = format!("{base}-{}", &ids::new_id()[24..]);
                }
                Err(StoreError::Conflict(c)) if c == conflict::MACHINE_IDENTITY => {
                    // A concurrent Provision of the same machine created it first.
                    let known = store
                        .find_machines_by_uuid(&req.uuid)
                        .await?
                        .into_iter()
                        .rev()
                        .find(|k| k.fingerprint == req.fingerprint && is_live(k.state))
                        .ok_or_else(|| Error::new(ErrorCode::Conflict, "retry the admission"))?;
                    return self.reprovision(&known, req).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.machine_event(
            &m.id,
            "machine.discovered",
            format!(
                "provisioned with join token `{}`{}; waiting to be claimed",
                token.name,
                req.talos_version
                    .as_deref()
                    .map(|v| format!(" (Talos {v})"))
                    .unwrap_or_default()
            ),
        )
        .await;
        if let Some(note) = &m.note {
            self.machine_event(&m.id, "machine.note", note.clone())
                .await;
        }
        self.audit_platform(
            &m.org_id,
            "machine.admit",
            &format!("machine:{}", m.name),
            Outcome::Success,
        )
        .await;
        tracing::info!(machine.id = %m.id, org.id = %m.org_id, "machine admitted");
        Ok(m)
    }

    /// The platform learnt that a machine's Kubernetes node registered (or
    /// came back Ready): moves it to `joined`, remembers the node and pushes
    /// its labels to the node. For the reconciler and the node watcher.
    pub async fn machine_node_joined(
        &self,
        machine_id: &str,
        node_name: &str,
    ) -> Result<MachineRecord> {
        let before = self
            .inner
            .store
            .get_machine(machine_id)
            .await?
            .ok_or_else(|| machine_not_found(machine_id))?;
        let m = self
            .update_machine_with(machine_id, |m| {
                let (to, _) =
                    lifecycle::on(m.state, Ev::NodeJoined).map_err(|e| transition_error(&e))?;
                m.state = to;
                m.node_name = Some(node_name.to_owned());
                Ok(())
            })
            .await?;
        let mut m = m;
        if before.state == MachineState::Rebooting
            && m.cordoned_by_us
            && running_operation(&m).is_none()
            && let Some(ops) = &self.inner.config.node_ops
            && bounded(ops.cordon(node_name, false)).await.is_ok()
        {
            // A reboot whose wait timed out left our cordon: the node is back.
            m = self
                .update_machine_with(machine_id, |r| {
                    r.cordoned_by_us = false;
                    Ok(())
                })
                .await?;
            self.machine_event(
                &m.id,
                "operation.step",
                format!("uncordon_if_ours: node {node_name} is back after a reboot; uncordoned"),
            )
            .await;
        }
        if let Some(ops) = &self.inner.config.node_ops {
            let set = labels::node_labels(&m.labels, &m.system_labels);
            if let Err(e) = ops.set_labels(node_name, &set, &[]).await {
                self.machine_event(
                    &m.id,
                    "labels.push_failed",
                    format!("could not label node {node_name}: {}", ops_message(&e)),
                )
                .await;
            }
        }
        if before.state != m.state || before.node_name.as_deref() != Some(node_name) {
            self.machine_event(
                &m.id,
                "node.joined",
                format!(
                    "node {node_name} registered; machine is {}",
                    m.state.as_str()
                ),
            )
            .await;
        }
        Ok(m)
    }

    /// Pushes every label Satusky owns for the machine (user and system
    /// labels, under node label keys) to its node, and returns them. For a
    /// level-triggered resync by the node watcher; a machine without a node
    /// or an installation without node operations gets the set back unpushed.
    pub async fn sync_machine_node_labels(
        &self,
        machine_id: &str,
    ) -> Result<BTreeMap<String, String>> {
        let m = self
            .inner
            .store
            .get_machine(machine_id)
            .await?
            .ok_or_else(|| machine_not_found(machine_id))?;
        let set = labels::node_labels(&m.labels, &m.system_labels);
        if let (Some(node), Some(ops)) = (&m.node_name, &self.inner.config.node_ops)
            && is_live(m.state)
        {
            bounded(ops.set_labels(node, &set, &[]))
                .await
                .map_err(|e| {
                    Error::new(
                        ErrorCode::Unavailable,
                        format!("could not label node {node}: {}", ops_message(&e)),
                    )
                })?;
        }
        Ok(set)
    }

    /// Facts learnt after admission (the zone from the node's
    /// `topology.kubernetes.io/zone`, hardware from Talos, a new hostname):
    /// updates the machine and its system labels, and relabels its node when
    /// they changed. `None` keeps a fact as it is.
    pub async fn update_machine_facts(
        &self,
        machine_id: &str,
        zone: Option<&str>,
        hardware: Option<&Hardware>,
        hostname: Option<&str>,
    ) -> Result<MachineRecord> {
        if let Some(z) = zone
            && !crate::selector::valid_value(z)
        {
            return Err(Error::validation(format!("`{z}` is not a valid zone")));
        }
        let before = self
            .inner
            .store
            .get_machine(machine_id)
            .await?
            .ok_or_else(|| machine_not_found(machine_id))?;
        let m = self
            .update_machine_with(machine_id, |m| {
                if let Some(z) = zone {
                    z.clone_into(&mut m.zone);
                }
                if let Some(hw) = hardware {
                    m.hardware = hw.clone();
                }
                let host = hostname
                    .map(str::to_owned)
                    .or_else(|| m.system_labels.get("hostname").cloned())
                    .unwrap_or_default();
                m.system_labels = labels::system_labels(&m.hardware, &m.zone, &host);
                Ok(())
            })
            .await?;
        if m.system_labels != before.system_labels {
            self.machine_event(
                &m.id,
                "machine.facts",
                format!(
                    "facts changed: {}",
                    m.system_labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .await;
            if let Err(e) = self.sync_machine_node_labels(&m.id).await {
                self.machine_event(&m.id, "labels.push_failed", e.message)
                    .await;
            }
        }
        Ok(m)
    }

    /// The SideroLink link of a machine went up or down.
    pub async fn machine_link_changed(
        &self,
        machine_id: &str,
        connected: bool,
    ) -> Result<MachineRecord> {
        let now = self.inner.clock.now();
        let before = self
            .inner
            .store
            .get_machine(machine_id)
            .await?
            .ok_or_else(|| machine_not_found(machine_id))?;
        let m = self
            .update_machine_with(machine_id, |m| {
                m.connected = connected;
                m.last_seen_at = Some(now);
                Ok(())
            })
            .await?;
        if before.connected != connected {
            let (kind, what) = if connected {
                ("link.up", "link up")
            } else {
                ("link.down", "link down")
            };
            self.machine_event(&m.id, kind, what.to_owned()).await;
        }
        Ok(m)
    }

    // ---- the fleet

    /// Machines the caller may see (own, plus other organizations' public
    /// ones), optionally filtered by a label selector, paginated by id.
    pub async fn list_machines(
        &self,
        ctx: &Ctx,
        org: &str,
        q: &MachineQuery,
    ) -> Result<Page<Machine>> {
        let a = self.authorize(ctx, org, Action::MachinesRead).await?;
        let page = PageRequest::parse(q.limit, q.cursor.as_deref())?;
        let selector = q
            .selector
            .as_deref()
            .map(labels::machine_selector)
            .transpose()?;
        let store = &self.inner.store;
        let mut slugs: HashMap<String, String> = HashMap::new();
        slugs.insert(a.org.id.clone(), a.org.slug.clone());
        let mut matched: Vec<Machine> = Vec::new();
        const BATCH: u32 = 500;
        let mut scan = PageRequest {
            limit: BATCH,
            after: page.after.clone(),
        };
        'scan: loop {
            // The store evaluates the selector; visibility within the
            // organization (owner-only machines) is checked here.
            let rows = match &selector {
                Some(s) => {
                    store
                        .list_machines_selected(&a.org.id, true, s, &scan)
                        .await?
                }
                None => store.list_machines(&a.org.id, true, &scan).await?,
            };
            let more = rows.len() > BATCH as usize;
            for m in rows.into_iter().take(BATCH as usize) {
                scan.after = Some(m.id.clone());
                let own = m.org_id == a.org.id;
                if own && !Self::sees_own(ctx, &a, &m) {
                    continue;
                }
                let slug = if let Some(s) = slugs.get(&m.org_id) {
                    s.clone()
                } else {
                    let Some(o) = store.get_org(&m.org_id).await? else {
                        continue;
                    };
                    slugs.insert(o.id.clone(), o.slug.clone());
                    o.slug
                };
                matched.push(Self::machine_dto(&m, &slug, own));
                if matched.len() > page.limit as usize {
                    break 'scan;
                }
            }
            if !more {
                break;
            }
        }
        Ok(paginate(matched, &page, |m| m.id.clone()))
    }

    /// One machine by name or id.
    pub async fn get_machine(&self, ctx: &Ctx, org: &str, machine: &str) -> Result<Machine> {
        let a = self.authorize(ctx, org, Action::MachinesRead).await?;
        let f = self.find_machine(ctx, &a, machine).await?;
        Ok(Self::found_dto(&f))
    }

    /// Accepts a discovered machine into the organization; the caller becomes its owner.
    pub async fn claim_machine(&self, ctx: &Ctx, org: &str, machine: &str) -> Result<Machine> {
        self.simple_transition(ctx, org, machine, Ev::Claim, "machine.claim")
            .await
    }

    /// Gives a claimed machine back (before it joined).
    pub async fn release_machine(&self, ctx: &Ctx, org: &str, machine: &str) -> Result<Machine> {
        self.simple_transition(ctx, org, machine, Ev::Release, "machine.release")
            .await
    }

    async fn simple_transition(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
        event: Ev,
        action: &str,
    ) -> Result<Machine> {
        let a = self.authorize(ctx, org, Action::MachinesOperate).await?;
        let result = async {
            let f = self.find_operable(ctx, &a, machine).await?;
            let user = ctx.principal.user_id.clone();
            let m = self
                .update_machine_with(&f.machine.id, |m| {
                    let (to, _) =
                        lifecycle::on(m.state, event).map_err(|e| transition_error(&e))?;
                    m.state = to;
                    m.owner_user_id = (event == Ev::Claim).then(|| user.clone());
                    Ok(())
                })
                .await?;
            Ok(m)
        }
        .await;
        let m = self
            .audited(ctx, &a.org, action, &format!("machine:{machine}"), result)
            .await?;
        self.machine_event(
            &m.id,
            action,
            format!(
                "{} by {}",
                if event == Ev::Claim {
                    "claimed"
                } else {
                    "released"
                },
                ctx.principal.email
            ),
        )
        .await;
        Ok(Self::machine_dto(&m, &a.org.slug, true))
    }

    /// Sets and removes user labels, and pushes them to the machine's node.
    pub async fn change_machine_labels(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
        change: &LabelsChange,
    ) -> Result<Machine> {
        let a = self.authorize(ctx, org, Action::MachinesOperate).await?;
        let result = async {
            let f = self.find_operable(ctx, &a, machine).await?;
            if !is_live(f.machine.state) {
                return Err(Error::new(
                    ErrorCode::MachineStateConflict,
                    format!(
                        "machine `{}` is {}: its labels no longer change",
                        f.machine.name,
                        f.machine.state.as_str()
                    ),
                ));
            }
            // Validate once up front, so that a bad change fails before any write.
            labels::apply(&f.machine.labels, change)?;
            self.update_machine_with(&f.machine.id, |m| {
                m.labels = labels::apply(&m.labels, change)?;
                Ok(())
            })
            .await
        }
        .await;
        let m = self
            .audited(
                ctx,
                &a.org,
                "machine.labels",
                &format!("machine:{machine}"),
                result,
            )
            .await?;
        let mut parts: Vec<String> = change.set.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.extend(change.unset.iter().map(|k| format!("-{k}")));
        self.machine_event(
            &m.id,
            "labels.changed",
            format!("labels {} by {}", parts.join(", "), ctx.principal.email),
        )
        .await;
        self.push_labels(&m, change).await;
        Ok(Self::machine_dto(&m, &a.org.slug, true))
    }

    async fn push_labels(&self, m: &MachineRecord, change: &LabelsChange) {
        let (Some(node), Some(ops)) = (&m.node_name, &self.inner.config.node_ops) else {
            return;
        };
        let mut set = BTreeMap::new();
        for (k, v) in &change.set {
            if let Ok(k) = labels::user_key(k) {
                set.insert(node_label_key(&k), v.clone());
            }
        }
        let unset: Vec<String> = change
            .unset
            .iter()
            .filter_map(|k| labels::user_key(k).ok())
            .filter(|k| !m.labels.contains_key(k))
            .map(|k| node_label_key(&k))
            .collect();
        if let Err(e) = ops.set_labels(node, &set, &unset).await {
            tracing::warn!(machine.id = %m.id, error = %ops_message(&e), "label push to node failed");
            self.machine_event(
                &m.id,
                "labels.push_failed",
                format!("could not label node {node}: {}", ops_message(&e)),
            )
            .await;
        }
    }

    pub async fn set_machine_visibility(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
        visibility: Visibility,
    ) -> Result<Machine> {
        let a = self.authorize(ctx, org, Action::MachinesAdmin).await?;
        let result = async {
            let f = self.find_operable(ctx, &a, machine).await?;
            self.update_machine_with(&f.machine.id, |m| {
                m.visibility = visibility;
                Ok(())
            })
            .await
        }
        .await;
        let m = self
            .audited(
                ctx,
                &a.org,
                "machine.visibility",
                &format!("machine:{machine} visibility:{}", visibility.as_str()),
                result,
            )
            .await?;
        self.machine_event(
            &m.id,
            "machine.visibility",
            format!(
                "visibility {} by {}",
                visibility.as_str(),
                ctx.principal.email
            ),
        )
        .await;
        Ok(Self::machine_dto(&m, &a.org.slug, true))
    }

    /// Events with `seq > from`, oldest first; returns the machine id too.
    pub async fn machine_events(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
        from: u64,
        limit: u32,
    ) -> Result<(String, Vec<MachineEventDto>)> {
        let a = self.authorize(ctx, org, Action::MachinesRead).await?;
        let f = self.find_machine(ctx, &a, machine).await?;
        let rows = self
            .inner
            .store
            .list_machine_events(&f.machine.id, from, limit.clamp(1, 1000))
            .await?;
        Ok((f.machine.id, rows.into_iter().map(event_dto).collect()))
    }

    /// Events of a machine by id, for a stream that has already been authorized.
    pub async fn machine_events_by_id(
        &self,
        machine_id: &str,
        from: u64,
        limit: u32,
    ) -> Result<Vec<MachineEventDto>> {
        let rows = self
            .inner
            .store
            .list_machine_events(machine_id, from, limit.clamp(1, 1000))
            .await?;
        Ok(rows.into_iter().map(event_dto).collect())
    }

    /// A live telemetry sample through Talos.
    pub async fn machine_metrics(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
    ) -> Result<MachineMetrics> {
        let a = self.authorize(ctx, org, Action::MachinesRead).await?;
        let f = self.find_machine(ctx, &a, machine).await?;
        let ops = self.inner.config.talos_ops.as_ref().ok_or_else(|| {
            Error::new(
                ErrorCode::Unavailable,
                "Talos operations are not configured on this installation",
            )
        })?;
        ops.metrics(&talos_target(&f.machine)).await.map_err(|e| {
            Error::new(
                ErrorCode::Unavailable,
                format!(
                    "machine `{}` did not answer: {}",
                    f.machine.name,
                    ops_message(&e)
                ),
            )
        })
    }

    // ---- operations

    pub async fn cordon_machine(&self, ctx: &Ctx, org: &str, machine: &str) -> Result<Machine> {
        self.operate(
            ctx,
            org,
            machine,
            OpRequest::new(OpKind::Cordon, Ev::Cordon),
        )
        .await
    }

    /// Uncordons the node if this platform cordoned it.
    pub async fn uncordon_machine(&self, ctx: &Ctx, org: &str, machine: &str) -> Result<Machine> {
        self.operate(
            ctx,
            org,
            machine,
            OpRequest::new(OpKind::Uncordon, Ev::Uncordon),
        )
        .await
    }

    pub async fn drain_machine(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
        req: &DrainRequest,
    ) -> Result<Machine> {
        let timeout = req.timeout_seconds.unwrap_or(300);
        if !(1..=86_400).contains(&timeout) {
            return Err(Error::validation(format!(
                "timeout_seconds must be between 1 and 86400, got {timeout}"
            )));
        }
        let op = OpRequest {
            drain_timeout_seconds: timeout,
            delete_emptydir_data: req.delete_emptydir_data,
            ..OpRequest::new(OpKind::Drain, Ev::Drain)
        };
        self.operate(ctx, org, machine, op).await
    }

    /// Reboots through Talos; drains first unless `force`.
    pub async fn reboot_machine(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
        req: &PowerRequest,
    ) -> Result<Machine> {
        let op = OpRequest {
            force: req.force,
            ..OpRequest::new(OpKind::Reboot, Ev::Reboot { force: req.force })
        };
        self.operate(ctx, org, machine, op).await
    }

    /// Shuts down through Talos; drains first unless `force`.
    pub async fn shutdown_machine(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
        req: &PowerRequest,
    ) -> Result<Machine> {
        let op = OpRequest {
            force: req.force,
            ..OpRequest::new(OpKind::Shutdown, Ev::Shutdown { force: req.force })
        };
        self.operate(ctx, org, machine, op).await
    }

    /// Drains, resets through Talos and removes the node and link; the record
    /// and its history stay (`decommissioned`). With `force`, skips the
    /// machine and marks it `needs_wipe`.
    pub async fn decommission_machine(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
        req: &DecommissionRequest,
    ) -> Result<Machine> {
        let op = OpRequest {
            force: req.force,
            wipe_user_disks: req.wipe_user_disks,
            ..OpRequest::new(OpKind::Decommission, Ev::Decommission { force: req.force })
        };
        self.operate(ctx, org, machine, op).await
    }

    async fn operate(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
        req: OpRequest,
    ) -> Result<Machine> {
        let action = if req.kind == OpKind::Decommission {
            Action::MachinesAdmin
        } else {
            Action::MachinesOperate
        };
        let a = self.authorize(ctx, org, action).await?;
        let result = self.begin_operation(ctx, &a, machine, req).await;
        let (m, op_id) = self
            .audited(
                ctx,
                &a.org,
                &format!("machine.{}", req.kind.as_str()),
                &format!("machine:{machine}"),
                result,
            )
            .await?;
        if let Some(op_id) = op_id {
            self.spawn_operation(m.id.clone(), op_id);
        }
        Ok(Self::machine_dto(&m, &a.org.slug, true))
    }

    async fn begin_operation(
        &self,
        ctx: &Ctx,
        a: &OrgAccess,
        key: &str,
        req: OpRequest,
    ) -> Result<(MachineRecord, Option<String>)> {
        let f = self.find_operable(ctx, a, key).await?;
        let m = f.machine;
        let forced_removal = req.kind == OpKind::Decommission && req.force;
        if let Some(op) = running_operation(&m)
            && !forced_removal
        {
            return Err(Error::new(
                ErrorCode::MachineBusy,
                format!(
                    "machine `{}` is busy with a {} started at {}; wait for it, or decommission with force",
                    m.name, op.kind, op.started_at
                ),
            ));
        }
        let (to, plan) = lifecycle::on(m.state, req.event).map_err(|e| transition_error(&e))?;
        let config = &self.inner.config;
        if m.node_name.is_some()
            && !forced_removal
            && plan.iter().any(|e| e.needs_node())
            && config.node_ops.is_none()
        {
            return Err(Error::new(
                ErrorCode::Unavailable,
                "node operations are not configured on this installation (no Kubernetes access for machines)",
            ));
        }
        if plan.iter().any(|e| e.needs_talos()) && config.talos_ops.is_none() {
            return Err(Error::new(
                ErrorCode::Unavailable,
                "Talos operations are not configured on this installation (no machine API access)",
            ));
        }
        let now = self.inner.clock.now();
        let warning = forced_removal.then(|| {
            format!(
                "removed by force while {}: the machine was not reset, so wipe its disks out of band before it joins again",
                m.state.as_str()
            )
        });
        let op = MachineOperation {
            id: ids::new_id(),
            kind: req.kind.as_str().to_owned(),
            phase: if plan.is_empty() { COMPLETED } else { RUNNING }.to_owned(),
            plan: plan.iter().map(|e| e.as_str().to_owned()).collect(),
            step: 0,
            from_state: m.state,
            force: req.force,
            wipe_user_disks: req.wipe_user_disks,
            drain_timeout_seconds: req.drain_timeout_seconds,
            delete_emptydir_data: req.delete_emptydir_data,
            drain: None,
            message: warning.clone(),
            requested_by: Some(ctx.principal.email.clone()),
            cancel_requested: false,
            cancel_requested_at: None,
            cancel_requested_by: None,
            started_at: now,
            finished_at: plan.is_empty().then_some(now),
        };
        let json = operation_json(&op)?;
        let from = m.state;
        let updated = self
            .update_machine_with(&m.id, |r| {
                if let Some(op) = running_operation(r)
                    && !forced_removal
                {
                    return Err(Error::new(
                        ErrorCode::MachineBusy,
                        format!(
                            "machine `{}` is busy with a {}; retry later",
                            r.name, op.kind
                        ),
                    ));
                }
                if r.state != from {
                    return Err(Error::new(
                        ErrorCode::Conflict,
                        format!(
                            "machine `{}` changed to {} meanwhile; retry",
                            r.name,
                            r.state.as_str()
                        ),
                    ));
                }
                r.state = to;
                r.operation = Some(json.clone());
                if let Some(w) = &warning {
                    r.note = Some(w.clone());
                }
                Ok(())
            })
            .await?;
        let steps = if plan.is_empty() {
            "nothing to do".to_owned()
        } else {
            op.plan.join(" → ")
        };
        self.machine_event(
            &updated.id,
            "operation.started",
            format!("{} requested by {}: {steps}", op.kind, ctx.principal.email),
        )
        .await;
        if let Some(w) = warning {
            self.machine_event(&updated.id, "machine.needs_wipe", w)
                .await;
        }
        Ok((updated, (!plan.is_empty()).then_some(op.id)))
    }

    /// Asks the running operation to stop before its first irreversible
    /// step (a Talos reboot, shutdown or reset, or the node's removal). The
    /// request is stored with the operation, so whichever replica runs it
    /// sees it: it stops at its next check (promptly during a drain), puts
    /// the machine back in the state the operation began from, and removes
    /// only a cordon it added. Answers with the machine, `cancel_requested`
    /// set; asking again changes nothing.
    pub async fn cancel_machine_operation(
        &self,
        ctx: &Ctx,
        org: &str,
        machine: &str,
    ) -> Result<Machine> {
        let a = self.authorize(ctx, org, Action::MachinesOperate).await?;
        let result = self.request_cancel(ctx, &a, machine).await;
        let (m, newly) = self
            .audited(
                ctx,
                &a.org,
                "machine.cancel",
                &format!("machine:{machine}"),
                result,
            )
            .await?;
        if newly && let Some(op) = machine_operation(&m) {
            let step = op
                .plan
                .get(op.step as usize)
                .map_or("finish", String::as_str);
            self.machine_event(
                &m.id,
                "operation.cancel_requested",
                format!(
                    "{} cancel requested by {} during {step}",
                    op.kind, ctx.principal.email
                ),
            )
            .await;
        }
        Ok(Self::machine_dto(&m, &a.org.slug, true))
    }

    /// Stores the cancel request; true when it is new.
    async fn request_cancel(
        &self,
        ctx: &Ctx,
        a: &OrgAccess,
        key: &str,
    ) -> Result<(MachineRecord, bool)> {
        let f = self.find_operable(ctx, a, key).await?;
        let now = self.inner.clock.now();
        let who = ctx.principal.email.clone();
        let mut newly = false;
        let m = self
            .update_machine_with(&f.machine.id, |r| {
                newly = false;
                let Some(mut op) = running_operation(r) else {
                    let last = machine_operation(r).map_or_else(String::new, |op| {
                        format!("; its last operation, a {}, is {}", op.kind, op.phase)
                    });
                    return Err(Error::new(
                        ErrorCode::MachineStateConflict,
                        format!(
                            "machine `{}` has no running operation to cancel (it is {}{last})",
                            r.name,
                            r.state.as_str()
                        ),
                    ));
                };
                if op.cancel_requested {
                    return Ok(());
                }
                check_cancellable(r, &op)?;
                op.cancel_requested = true;
                op.cancel_requested_at = Some(now);
                op.cancel_requested_by = Some(who.clone());
                set_operation(r, &op)?;
                newly = true;
                Ok(())
            })
            .await?;
        Ok((m, newly))
    }

    // ---- bulk

    /// Runs an action on every operable machine of the organization the
    /// selector matches, and says what happened to each.
    pub async fn bulk_machines(
        &self,
        ctx: &Ctx,
        org: &str,
        action: BulkAction,
        req: &BulkRequest,
    ) -> Result<BulkResult> {
        let a = self.authorize(ctx, org, Action::MachinesOperate).await?;
        if req.selector.trim().is_empty() {
            return Err(Error::validation(
                "a bulk action needs a non-empty selector (it never applies to the whole fleet by default)",
            ));
        }
        let selector = labels::machine_selector(&req.selector)?;
        let store = &self.inner.store;
        let mut targets = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let rows = store
                .list_machines_selected(&a.org.id, false, &selector, &page)
                .await?;
            let more = rows.len() > 500;
            if let Some(last) = rows.get(499) {
                page.after = Some(last.id.clone());
            }
            targets.extend(
                rows.into_iter()
                    .take(500)
                    .filter(|m| is_live(m.state) && Self::sees_own(ctx, &a, m))
                    // A bulk cancel is about the machines that run something.
                    .filter(|m| action != BulkAction::Cancel || running_operation(m).is_some()),
            );
            if !more {
                break;
            }
        }
        let mut items = Vec::with_capacity(targets.len());
        for m in targets {
            let result = match action {
                BulkAction::Cordon => self.cordon_machine(ctx, org, &m.id).await,
                BulkAction::Uncordon => self.uncordon_machine(ctx, org, &m.id).await,
                BulkAction::Drain => self.drain_machine(ctx, org, &m.id, &req.drain).await,
                BulkAction::Labels => {
                    self.change_machine_labels(ctx, org, &m.id, &req.labels)
                        .await
                }
                BulkAction::Cancel => self.cancel_machine_operation(ctx, org, &m.id).await,
            };
            items.push(match result {
                Ok(done) => BulkItem {
                    id: done.id,
                    name: done.name,
                    ok: true,
                    state: Some(done.state),
                    code: None,
                    message: None,
                },
                Err(e) => BulkItem {
                    id: m.id,
                    name: m.name,
                    ok: false,
                    state: Some(m.state),
                    code: Some(e.code),
                    message: Some(e.message),
                },
            });
        }
        let canonical = selector.to_canonical();
        self.audit(
            ctx,
            &a.org,
            &format!("machine.bulk.{}", action.as_str()),
            &format!("selector:{canonical}"),
            Outcome::Success,
        )
        .await;
        Ok(BulkResult {
            selector: canonical,
            items,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names_come_from_hostnames_or_uuids() {
        assert_eq!(name_base("Worker_1.local", "u"), "worker-1-local");
        assert_eq!(
            name_base("", "4C4C4544-0042-3510-8052-B4C04F4E4E32"),
            "machine-4c4c4544"
        );
        assert_eq!(name_base("--", ""), "machine");
    }

    #[test]
    fn placeholder_uuids_are_recognised() {
        assert!(placeholder_uuid("00000000-0000-0000-0000-000000000000"));
        assert!(placeholder_uuid("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"));
        assert!(!placeholder_uuid("4c4c4544-0042-3510-8052-b4c04f4e4e32"));
    }
}
