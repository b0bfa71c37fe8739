//! The conformance suite: what every [`Store`] does, one async function per
//! behaviour. Each takes a fresh, migrated, empty store and panics on a
//! violation.
//!
//! `tests/it` runs every function on SQLite, and on PostgreSQL when
//! `SATUSKY_TEST_POSTGRES_URL` is set. [`conformance_suite!`](crate::conformance_suite)
//! lists them, so that another `Store` (a fake, a new backend) can run the
//! same suite:
//!
//! ```ignore
//! macro_rules! on_my_store {
//!     ($($name:ident),* $(,)?) => {$(
//!         #[tokio::test]
//!         async fn $name() {
//!             satusky_store::conformance::$name(my_fresh_store().await).await;
//!         }
//!     )*};
//! }
//! satusky_store::conformance_suite!(on_my_store);
//! ```
//!
//! Behaviour the trait leaves open and these functions pin down:
//! - emails are lowercased on write;
//! - a reference to a missing user, organization or app (creating a session,
//!   token, membership, org, app, secret version or event) is
//!   [`StoreError::NotFound`], and so are `touch_token`,
//!   `set_platform_admin`, `set_app_status`, `set_app_cluster` and
//!   `set_cluster_health` of a missing row;
//! - `create_org` reports a taken slug before a reserved namespace;
//! - deleting an organization deletes its apps;
//! - `append_release` with number 0 is a `RELEASE_NUMBER` conflict, and
//!   `list_releases` after a cursor that is not a number lists nothing;
//! - `is_platform_admin` of an unknown user is `false`;
//! - join token and machine names are unique per organization, UUIDs are
//!   not unique at all; revoking a token twice keeps the first time;
//!   `update_machine` of a stale version is a `MACHINE_VERSION` conflict and
//!   exactly one of concurrent writers of one version wins; deleting an
//!   organization deletes its machines, their events and its join tokens;
//!   one live (not decommissioned) machine per UUID and fingerprint, in any
//!   organization.

mod apps;
mod leases;
mod links;
mod login_failures;
mod machines;
mod samples;
mod selectors;
mod sessions_purge;
mod usage;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use satusky_core::pagination::{PageRequest, paginate};
use satusky_core::store::{
    AuditFilter, AuditRecord, MemberRow, MembershipRecord, OrgRecord, SessionRecord, Store,
    StoreError, StoreResult, TokenRecord, UserRecord, conflict,
};
use satusky_types::orgs::{Outcome, Role};
use satusky_types::page::MAX_LIMIT;

pub use apps::*;
pub use leases::*;
pub use links::*;
pub use login_failures::*;
pub use machines::*;
pub use samples::*;
pub use selectors::*;
pub use sessions_purge::*;
pub use usage::*;

/// Calls `$callback! { name, … }` with the name of every conformance
/// function in this module.
#[macro_export]
macro_rules! conformance_suite {
    ($callback:ident) => {
        $callback! {
            ping_answers,
            users_round_trip_exactly,
            user_emails_are_lowercased_and_unique_ignoring_case,
            updating_a_user_changes_its_name_and_password,
            count_users_counts_every_user,
            sessions_are_found_by_hash_with_their_user,
            sessions_need_an_existing_user_and_a_unique_hash,
            deleting_a_session_removes_it,
            deleting_user_sessions_keeps_the_one_asked_for,
            purging_expired_sessions_deletes_exactly_those_expired_by_then,
            login_failures_are_counted_per_kind_and_key_newest_first,
            clearing_login_failures_forgets_one_key_only,
            pruning_login_failures_deletes_exactly_those_at_or_before_then,
            a_login_attempt_counts_as_a_failure_until_exactly_its_row_is_forgotten,
            tokens_are_found_by_id_name_and_hash,
            token_names_are_unique_per_user,
            tokens_are_disabled_touched_and_deleted_by_their_user_only,
            tokens_list_in_id_order_across_pages,
            creating_an_org_reserves_its_namespace_and_makes_the_owner,
            org_slugs_and_namespaces_conflict_without_side_effects,
            creating_an_org_for_a_missing_owner_leaves_nothing_behind,
            renaming_an_org,
            deleting_an_org_cascades_but_keeps_its_namespace_and_audit,
            members_are_added_once_and_listed_in_user_id_order,
            member_roles_change_but_the_last_owner_stays,
            members_are_removed_but_not_the_last_owner,
            concurrent_demotions_of_two_owners_leave_exactly_one,
            concurrent_removals_of_two_owners_leave_exactly_one,
            user_orgs_list_in_id_order_across_pages,
            audit_entries_round_trip_exactly,
            audit_lists_newest_first_across_pages,
            audit_pages_hold_up_to_the_maximum_limit,
            audit_filters_by_actor_action_outcome_and_time,
            timestamps_round_trip_at_microsecond_precision,
            platform_admins_are_set_and_cleared,
            a_lease_has_one_holder_until_it_expires,
            only_the_holder_renews_and_releases_a_lease,
            concurrent_takers_of_a_free_lease_let_exactly_one_win,
            apps_round_trip_and_names_are_unique_per_org,
            apps_list_in_id_order_across_pages,
            releases_append_in_order_and_bump_the_generation,
            releases_list_newest_first_across_pages,
            concurrent_release_appends_let_exactly_one_win,
            restarting_and_deleting_an_app_bump_its_generation,
            deleting_an_app_removes_its_releases_secrets_and_events,
            deleting_an_org_deletes_its_apps,
            secret_versions_are_unique_and_the_latest_wins,
            app_events_get_consecutive_seqs_per_app,
            concurrent_app_events_get_distinct_seqs,
            clusters_round_trip_with_one_default,
            join_tokens_round_trip_and_are_revoked_once,
            join_tokens_list_per_org_in_id_order_across_pages,
            machines_round_trip_and_names_are_unique_per_org,
            machines_list_own_and_public_in_id_order_across_pages,
            updating_a_machine_compares_and_sets_its_version,
            concurrent_machine_updates_let_exactly_one_win,
            machine_events_get_consecutive_seqs_per_machine,
            deleting_an_org_deletes_its_machines_and_join_tokens,
            one_live_machine_per_uuid_and_fingerprint,
            machine_samples_round_trip_in_time_order_and_are_pruned,
            machine_links_are_recorded_replaced_listed_and_forgotten,
            deleting_a_machine_deletes_its_link,
            selector_queries_match_exactly_what_the_selector_matches,
            machine_usage_periods_open_once_close_and_list_newest_first,
        }
    };
}

// ---- fixtures

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A fixed instant with all six fractional digits used.
fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(1_763_728_496_123_456).expect("valid instant")
}

fn micros(n: i64) -> TimeDelta {
    TimeDelta::microseconds(n)
}

fn user(email: &str) -> UserRecord {
    UserRecord {
        id: new_id(),
        email: email.to_owned(),
        name: format!("Name of {email}"),
        password_hash: format!("$argon2id$v=19$hash-of-{email}"),
        created_at: t0(),
    }
}

async fn given_user(store: &dyn Store, email: &str) -> UserRecord {
    let u = user(email);
    store.create_user(&u).await.expect("create_user");
    u
}

fn org(slug: &str) -> OrgRecord {
    OrgRecord {
        id: new_id(),
        slug: slug.to_owned(),
        name: format!("The {slug} org"),
        namespace: format!("org-{slug}"),
        created_at: t0() + micros(7),
    }
}

async fn given_org(store: &dyn Store, slug: &str, owner: &UserRecord) -> OrgRecord {
    let o = org(slug);
    store.create_org(&o, &owner.id).await.expect("create_org");
    o
}

async fn given_member(store: &dyn Store, o: &OrgRecord, email: &str, role: Role) -> UserRecord {
    let u = given_user(store, email).await;
    store
        .add_member(&MembershipRecord {
            org_id: o.id.clone(),
            user_id: u.id.clone(),
            role,
            created_at: t0() + micros(11),
        })
        .await
        .expect("add_member");
    u
}

fn token(owner: &UserRecord, name: &str, org_id: Option<&str>) -> TokenRecord {
    TokenRecord {
        id: new_id(),
        user_id: owner.id.clone(),
        name: name.to_owned(),
        prefix: "sat_abcd".to_owned(),
        token_hash: format!("hash-{}", new_id()),
        org_id: org_id.map(str::to_owned),
        enabled: true,
        expires_at: Some(t0() + TimeDelta::days(30)),
        last_used_at: None,
        created_at: t0(),
    }
}

fn session(owner: &UserRecord) -> SessionRecord {
    SessionRecord {
        id: new_id(),
        user_id: owner.id.clone(),
        token_hash: format!("hash-{}", new_id()),
        created_at: t0(),
        expires_at: t0() + TimeDelta::hours(12) + micros(1),
    }
}

fn audit(org_id: &str, action: &str, at: DateTime<Utc>) -> AuditRecord {
    AuditRecord {
        id: new_id(),
        org_id: org_id.to_owned(),
        actor_id: None,
        actor_email: None,
        action: action.to_owned(),
        target: "org:test".to_owned(),
        request_id: format!("req-{}", new_id()),
        outcome: Outcome::Success,
        at,
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(result: StoreResult<T>, name: &str) {
    match result {
        Err(StoreError::Conflict(c)) if c == name => {}
        other => panic!("expected Conflict({name}), got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: StoreResult<T>) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[track_caller]
fn assert_last_owner<T: std::fmt::Debug>(result: StoreResult<T>) {
    match result {
        Err(StoreError::LastOwner) => {}
        other => panic!("expected LastOwner, got {other:?}"),
    }
}

fn all() -> PageRequest {
    PageRequest::first(1000)
}

/// Walks every page of a list the way the API does (fetch `limit + 1`,
/// `paginate`, follow the cursor) and returns the pages.
async fn pages<T, F, Fut>(limit: u32, mut fetch: F, key: impl Fn(&T) -> String) -> Vec<Vec<T>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = StoreResult<Vec<T>>>,
{
    let mut out = Vec::new();
    let mut req = PageRequest::first(limit);
    loop {
        let rows = fetch(req.clone()).await.expect("list page");
        assert!(
            rows.len() <= req.fetch_limit() as usize,
            "a page returned {} rows for a fetch limit of {}",
            rows.len(),
            req.fetch_limit()
        );
        let page = paginate(rows, &req, &key);
        out.push(page.items);
        let Some(cursor) = page.next_cursor else {
            break;
        };
        req = PageRequest::parse(Some(limit), Some(&cursor)).expect("our own cursor");
        assert!(out.len() < 100, "pagination does not end");
    }
    out
}

async fn owners(store: &dyn Store, org_id: &str) -> Vec<String> {
    store
        .list_members(org_id, &all())
        .await
        .expect("list_members")
        .into_iter()
        .filter(|m| m.role == Role::Owner)
        .map(|m| m.user_id)
        .collect()
}

// ---- the suite

pub async fn ping_answers(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
}

pub async fn users_round_trip_exactly(store: Arc<dyn Store>) {
    let u = given_user(&*store, "ada@example.com").await;
    assert_eq!(
        store.get_user(&u.id).await.expect("get_user"),
        Some(u.clone())
    );
    assert_eq!(
        store.get_user_by_email(&u.email).await.expect("by email"),
        Some(u)
    );
    assert_eq!(store.get_user(&new_id()).await.expect("get_user"), None);
    assert_eq!(
        store
            .get_user_by_email("nobody@example.com")
            .await
            .expect("by email"),
        None
    );
}

pub async fn user_emails_are_lowercased_and_unique_ignoring_case(store: Arc<dyn Store>) {
    let u = given_user(&*store, "Ada.Lovelace@Example.COM").await;
    let found = store
        .get_user_by_email("ada.lovelace@example.com")
        .await
        .expect("by email")
        .expect("found by lowercase email");
    assert_eq!(found.id, u.id);
    assert_eq!(found.email, "ada.lovelace@example.com", "stored lowercased");
    let found = store
        .get_user_by_email("ADA.LOVELACE@EXAMPLE.COM")
        .await
        .expect("by email");
    assert_eq!(found.map(|f| f.id), Some(u.id.clone()));
    let stored = store.get_user(&u.id).await.expect("get").map(|f| f.email);
    assert_eq!(stored.as_deref(), Some("ada.lovelace@example.com"));

    assert_conflict(
        store.create_user(&user("ada.lovelace@example.com")).await,
        conflict::USER_EMAIL,
    );
    assert_conflict(
        store.create_user(&user("ADA.lovelace@example.com")).await,
        conflict::USER_EMAIL,
    );
    assert_eq!(store.count_users().await.expect("count"), 1);
}

pub async fn updating_a_user_changes_its_name_and_password(store: Arc<dyn Store>) {
    let u = given_user(&*store, "ada@example.com").await;
    let other = given_user(&*store, "bob@example.com").await;
    store
        .update_user_name(&u.id, "Ada L.")
        .await
        .expect("rename");
    store
        .update_user_password(&u.id, "$argon2id$new")
        .await
        .expect("new password");
    let got = store.get_user(&u.id).await.expect("get").expect("exists");
    assert_eq!(
        got,
        UserRecord {
            name: "Ada L.".into(),
            password_hash: "$argon2id$new".into(),
            ..u
        }
    );
    assert_eq!(
        store.get_user(&other.id).await.expect("get"),
        Some(other),
        "others untouched"
    );

    assert_not_found(store.update_user_name(&new_id(), "x").await);
    assert_not_found(store.update_user_password(&new_id(), "x").await);
}

pub async fn count_users_counts_every_user(store: Arc<dyn Store>) {
    assert_eq!(store.count_users().await.expect("count"), 0);
    for i in 0..3 {
        given_user(&*store, &format!("user{i}@example.com")).await;
    }
    assert_eq!(store.count_users().await.expect("count"), 3);
}

pub async fn sessions_are_found_by_hash_with_their_user(store: Arc<dyn Store>) {
    let u = given_user(&*store, "ada@example.com").await;
    let other = given_user(&*store, "bob@example.com").await;
    let s = session(&u);
    store.create_session(&s).await.expect("create_session");
    store
        .create_session(&session(&other))
        .await
        .expect("create_session");

    let got = store
        .get_session_by_hash(&s.token_hash)
        .await
        .expect("by hash");
    assert_eq!(got, Some((s, u)));
    assert_eq!(
        store
            .get_session_by_hash("no-such-hash")
            .await
            .expect("by hash"),
        None
    );
}

pub async fn sessions_need_an_existing_user_and_a_unique_hash(store: Arc<dyn Store>) {
    let u = given_user(&*store, "ada@example.com").await;
    let s = session(&u);
    store.create_session(&s).await.expect("create_session");
    let dup = SessionRecord {
        id: new_id(),
        ..s.clone()
    };
    assert!(
        matches!(
            store.create_session(&dup).await,
            Err(StoreError::Conflict(_))
        ),
        "a second session with the same hash is a conflict"
    );
    let orphan = SessionRecord {
        user_id: new_id(),
        ..session(&u)
    };
    assert_not_found(store.create_session(&orphan).await);
}

pub async fn deleting_a_session_removes_it(store: Arc<dyn Store>) {
    let u = given_user(&*store, "ada@example.com").await;
    let s = session(&u);
    let kept = session(&u);
    store.create_session(&s).await.expect("create_session");
    store.create_session(&kept).await.expect("create_session");

    store.delete_session(&s.id).await.expect("delete_session");
    assert_eq!(
        store
            .get_session_by_hash(&s.token_hash)
            .await
            .expect("by hash"),
        None
    );
    assert!(
        store
            .get_session_by_hash(&kept.token_hash)
            .await
            .expect("by hash")
            .is_some()
    );
    assert_not_found(store.delete_session(&s.id).await);
}

pub async fn deleting_user_sessions_keeps_the_one_asked_for(store: Arc<dyn Store>) {
    let u = given_user(&*store, "ada@example.com").await;
    let other = given_user(&*store, "bob@example.com").await;
    let mine: Vec<SessionRecord> = (0..3).map(|_| session(&u)).collect();
    for s in &mine {
        store.create_session(s).await.expect("create_session");
    }
    let theirs = session(&other);
    store.create_session(&theirs).await.expect("create_session");

    let n = store
        .delete_user_sessions(&u.id, Some(&mine[1].id))
        .await
        .expect("delete");
    assert_eq!(n, 2);
    for (i, s) in mine.iter().enumerate() {
        let found = store
            .get_session_by_hash(&s.token_hash)
            .await
            .expect("by hash");
        assert_eq!(found.is_some(), i == 1, "session {i}");
    }
    assert!(
        store
            .get_session_by_hash(&theirs.token_hash)
            .await
            .expect("by hash")
            .is_some()
    );

    assert_eq!(
        store
            .delete_user_sessions(&u.id, None)
            .await
            .expect("delete"),
        1
    );
    assert_eq!(
        store
            .delete_user_sessions(&u.id, None)
            .await
            .expect("delete"),
        0
    );
    assert!(
        store
            .get_session_by_hash(&theirs.token_hash)
            .await
            .expect("by hash")
            .is_some()
    );
}

pub async fn tokens_are_found_by_id_name_and_hash(store: Arc<dyn Store>) {
    let u = given_user(&*store, "ada@example.com").await;
    let other = given_user(&*store, "bob@example.com").await;
    let o = given_org(&*store, "acme", &u).await;
    let personal = TokenRecord {
        enabled: false,
        last_used_at: Some(t0() + micros(3)),
        ..token(&u, "laptop", None)
    };
    let scoped = TokenRecord {
        expires_at: None,
        ..token(&u, "ci", Some(&o.id))
    };
    store.create_token(&personal).await.expect("create_token");
    store.create_token(&scoped).await.expect("create_token");

    for t in [&personal, &scoped] {
        assert_eq!(
            store.get_token(&u.id, &t.id).await.expect("get"),
            Some(t.clone())
        );
        assert_eq!(
            store
                .get_token_by_name(&u.id, &t.name)
                .await
                .expect("by name"),
            Some(t.clone())
        );
        let by_hash = store
            .get_token_by_hash(&t.token_hash)
            .await
            .expect("by hash");
        assert_eq!(by_hash, Some((t.clone(), u.clone())));
        assert_eq!(
            store.get_token(&other.id, &t.id).await.expect("get"),
            None,
            "not theirs"
        );
        assert_eq!(
            store
                .get_token_by_name(&other.id, &t.name)
                .await
                .expect("by name"),
            None
        );
    }
    assert_eq!(
        store
            .get_token_by_hash("no-such-hash")
            .await
            .expect("by hash"),
        None
    );

    let orphan = token(&other, "x", Some(&new_id()));
    assert_not_found(store.create_token(&orphan).await);
}

pub async fn token_names_are_unique_per_user(store: Arc<dyn Store>) {
    let u = given_user(&*store, "ada@example.com").await;
    let other = given_user(&*store, "bob@example.com").await;
    store
        .create_token(&token(&u, "laptop", None))
        .await
        .expect("create_token");
    assert_conflict(
        store.create_token(&token(&u, "laptop", None)).await,
        conflict::TOKEN_NAME,
    );
    store
        .create_token(&token(&other, "laptop", None))
        .await
        .expect("same name, other user");
    assert_eq!(
        store.list_tokens(&u.id, &all()).await.expect("list").len(),
        1
    );
}

pub async fn tokens_are_disabled_touched_and_deleted_by_their_user_only(store: Arc<dyn Store>) {
    let u = given_user(&*store, "ada@example.com").await;
    let other = given_user(&*store, "bob@example.com").await;
    let t = token(&u, "laptop", None);
    store.create_token(&t).await.expect("create_token");

    store
        .set_token_enabled(&u.id, &t.id, false)
        .await
        .expect("disable");
    let got = store
        .get_token(&u.id, &t.id)
        .await
        .expect("get")
        .expect("exists");
    assert!(!got.enabled);
    store
        .set_token_enabled(&u.id, &t.id, true)
        .await
        .expect("enable");
    assert!(
        store
            .get_token(&u.id, &t.id)
            .await
            .expect("get")
            .expect("exists")
            .enabled
    );
    assert_not_found(store.set_token_enabled(&other.id, &t.id, false).await);
    assert_not_found(store.set_token_enabled(&u.id, &new_id(), false).await);

    let at = t0() + TimeDelta::minutes(5) + micros(42);
    store.touch_token(&t.id, at).await.expect("touch");
    let got = store
        .get_token(&u.id, &t.id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        got,
        TokenRecord {
            last_used_at: Some(at),
            ..t.clone()
        }
    );
    assert_not_found(store.touch_token(&new_id(), at).await);

    assert_not_found(store.delete_token(&other.id, &t.id).await);
    store.delete_token(&u.id, &t.id).await.expect("delete");
    assert_eq!(store.get_token(&u.id, &t.id).await.expect("get"), None);
    assert_eq!(
        store
            .get_token_by_hash(&t.token_hash)
            .await
            .expect("by hash"),
        None
    );
    assert_not_found(store.delete_token(&u.id, &t.id).await);
}

pub async fn tokens_list_in_id_order_across_pages(store: Arc<dyn Store>) {
    let u = given_user(&*store, "ada@example.com").await;
    let other = given_user(&*store, "bob@example.com").await;
    let mut ids = Vec::new();
    for i in 0..8 {
        let t = token(&u, &format!("token-{i}"), None);
        store.create_token(&t).await.expect("create_token");
        ids.push(t.id);
        store
            .create_token(&token(&other, &format!("token-{i}"), None))
            .await
            .expect("theirs");
    }
    ids.sort();

    let got = pages(
        3,
        |p| {
            let store = Arc::clone(&store);
            let user_id = u.id.clone();
            async move { store.list_tokens(&user_id, &p).await }
        },
        |t: &TokenRecord| t.id.clone(),
    )
    .await;
    let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 2]);
    let listed: Vec<String> = got.into_iter().flatten().map(|t| t.id).collect();
    assert_eq!(listed, ids, "every token once, in id order");
}

pub async fn creating_an_org_reserves_its_namespace_and_makes_the_owner(store: Arc<dyn Store>) {
    let u = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &u).await;

    assert_eq!(
        store.get_org(&o.id).await.expect("get_org"),
        Some(o.clone())
    );
    assert_eq!(
        store.get_org_by_slug("acme").await.expect("by slug"),
        Some(o.clone())
    );
    assert_eq!(store.get_org(&new_id()).await.expect("get_org"), None);
    assert_eq!(store.get_org_by_slug("nope").await.expect("by slug"), None);
    assert!(
        store
            .namespace_reserved(&o.namespace)
            .await
            .expect("reserved")
    );
    assert!(
        !store
            .namespace_reserved("org-nope")
            .await
            .expect("reserved")
    );

    let m = store
        .get_membership(&o.id, &u.id)
        .await
        .expect("membership");
    let expected = MembershipRecord {
        org_id: o.id.clone(),
        user_id: u.id.clone(),
        role: Role::Owner,
        created_at: o.created_at,
    };
    assert_eq!(m, Some(expected));
    assert_eq!(
        store
            .get_membership(&o.id, &new_id())
            .await
            .expect("membership"),
        None
    );
    assert_eq!(
        store
            .list_user_orgs(&u.id, &all())
            .await
            .expect("list_user_orgs"),
        vec![(o.clone(), Role::Owner)]
    );
    assert_eq!(
        store
            .list_members(&o.id, &all())
            .await
            .expect("list_members"),
        vec![MemberRow {
            user_id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            role: Role::Owner,
            joined_at: o.created_at,
        }]
    );
}

pub async fn org_slugs_and_namespaces_conflict_without_side_effects(store: Arc<dyn Store>) {
    let u = given_user(&*store, "ada@example.com").await;
    let acme = given_org(&*store, "acme", &u).await;

    let same_slug = OrgRecord {
        namespace: "org-fresh".into(),
        ..org("acme")
    };
    assert_conflict(
        store.create_org(&same_slug, &u.id).await,
        conflict::ORG_SLUG,
    );
    assert!(
        !store
            .namespace_reserved("org-fresh")
            .await
            .expect("reserved"),
        "rolled back"
    );
    assert_eq!(store.get_org(&same_slug.id).await.expect("get_org"), None);

    let same_namespace = OrgRecord {
        namespace: acme.namespace.clone(),
        ..org("other")
    };
    assert_conflict(
        store.create_org(&same_namespace, &u.id).await,
        conflict::NAMESPACE,
    );
    assert_eq!(
        store.get_org_by_slug("other").await.expect("by slug"),
        None,
        "rolled back"
    );

    // Both taken by a live organization: the slug is what the user chose.
    let both = OrgRecord {
        namespace: acme.namespace.clone(),
        ..org("acme")
    };
    assert_conflict(store.create_org(&both, &u.id).await, conflict::ORG_SLUG);

    let orgs = store
        .list_user_orgs(&u.id, &all())
        .await
        .expect("list_user_orgs");
    assert_eq!(orgs, vec![(acme, Role::Owner)]);
}

pub async fn creating_an_org_for_a_missing_owner_leaves_nothing_behind(store: Arc<dyn Store>) {
    let o = org("acme");
    assert_not_found(store.create_org(&o, &new_id()).await);
    assert_eq!(store.get_org(&o.id).await.expect("get_org"), None);
    assert_eq!(store.get_org_by_slug("acme").await.expect("by slug"), None);
    assert!(
        !store
            .namespace_reserved(&o.namespace)
            .await
            .expect("reserved")
    );
}

pub async fn renaming_an_org(store: Arc<dyn Store>) {
    let u = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &u).await;
    store.rename_org(&o.id, "Acme Corp").await.expect("rename");
    let got = store.get_org(&o.id).await.expect("get_org");
    assert_eq!(
        got,
        Some(OrgRecord {
            name: "Acme Corp".into(),
            ..o
        })
    );
    assert_not_found(store.rename_org(&new_id(), "x").await);
}

pub async fn deleting_an_org_cascades_but_keeps_its_namespace_and_audit(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "ada@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let kept_org = given_org(&*store, "kept", &owner).await;
    let member = given_member(&*store, &o, "bob@example.com", Role::Member).await;
    let scoped = token(&owner, "ci", Some(&o.id));
    let personal = token(&owner, "laptop", None);
    let elsewhere = token(&owner, "kept-ci", Some(&kept_org.id));
    for t in [&scoped, &personal, &elsewhere] {
        store.create_token(t).await.expect("create_token");
    }
    let entry = audit(&o.id, "org.create", t0());
    store.insert_audit(&entry).await.expect("insert_audit");

    store.delete_org(&o.id).await.expect("delete_org");

    assert_eq!(store.get_org(&o.id).await.expect("get_org"), None);
    assert_eq!(store.get_org_by_slug("acme").await.expect("by slug"), None);
    assert_eq!(
        store
            .get_membership(&o.id, &owner.id)
            .await
            .expect("membership"),
        None
    );
    assert_eq!(
        store
            .get_membership(&o.id, &member.id)
            .await
            .expect("membership"),
        None
    );
    assert_eq!(
        store
            .list_members(&o.id, &all())
            .await
            .expect("list_members"),
        vec![]
    );
    assert_eq!(
        store
            .list_user_orgs(&member.id, &all())
            .await
            .expect("user orgs"),
        vec![]
    );
    assert_eq!(
        store
            .list_user_orgs(&owner.id, &all())
            .await
            .expect("user orgs"),
        vec![(kept_org.clone(), Role::Owner)]
    );
    assert_eq!(
        store.get_token(&owner.id, &scoped.id).await.expect("get"),
        None
    );
    assert_eq!(
        store
            .get_token_by_hash(&scoped.token_hash)
            .await
            .expect("by hash"),
        None
    );
    assert_eq!(
        store.get_token(&owner.id, &personal.id).await.expect("get"),
        Some(personal)
    );
    assert_eq!(
        store
            .get_token(&owner.id, &elsewhere.id)
            .await
            .expect("get"),
        Some(elsewhere)
    );
    assert!(
        store
            .namespace_reserved(&o.namespace)
            .await
            .expect("reserved")
    );
    assert_eq!(
        store.get_audit(&o.id, &entry.id).await.expect("get_audit"),
        Some(entry.clone())
    );
    let listed = store
        .list_audit(&o.id, &AuditFilter::default(), &all())
        .await
        .expect("list");
    assert_eq!(listed, vec![entry]);
    assert!(
        store
            .get_user(&member.id)
            .await
            .expect("get_user")
            .is_some(),
        "users stay"
    );

    // The slug is free again; the namespace never is.
    let reuse_namespace = OrgRecord {
        namespace: o.namespace.clone(),
        ..org("acme")
    };
    assert_conflict(
        store.create_org(&reuse_namespace, &owner.id).await,
        conflict::NAMESPACE,
    );
    given_org(&*store, "acme-two", &owner).await;
    let same_slug = OrgRecord {
        namespace: "org-acme-new".into(),
        ..org("acme")
    };
    store
        .create_org(&same_slug, &owner.id)
        .await
        .expect("slug reusable after delete");

    assert_not_found(store.delete_org(&o.id).await);
}

pub async fn members_are_added_once_and_listed_in_user_id_order(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "owner@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let other_org = given_org(&*store, "other", &owner).await;
    let mut expected = vec![MemberRow {
        user_id: owner.id.clone(),
        email: owner.email.clone(),
        name: owner.name.clone(),
        role: Role::Owner,
        joined_at: o.created_at,
    }];
    for (i, role) in [Role::Admin, Role::Member, Role::Viewer, Role::Owner]
        .into_iter()
        .enumerate()
    {
        let u = given_member(&*store, &o, &format!("m{i}@example.com"), role).await;
        expected.push(MemberRow {
            user_id: u.id,
            email: u.email,
            name: u.name,
            role,
            joined_at: t0() + micros(11),
        });
    }
    expected.sort_by(|a, b| a.user_id.cmp(&b.user_id));

    let m = MembershipRecord {
        org_id: o.id.clone(),
        user_id: expected[1].user_id.clone(),
        role: Role::Viewer,
        created_at: t0(),
    };
    assert_conflict(store.add_member(&m).await, conflict::MEMBERSHIP);
    let missing_user = MembershipRecord {
        user_id: new_id(),
        ..m.clone()
    };
    assert_not_found(store.add_member(&missing_user).await);
    let missing_org = MembershipRecord {
        org_id: new_id(),
        ..m.clone()
    };
    assert_not_found(store.add_member(&missing_org).await);

    let got = pages(
        2,
        |p| {
            let store = Arc::clone(&store);
            let org_id = o.id.clone();
            async move { store.list_members(&org_id, &p).await }
        },
        |m: &MemberRow| m.user_id.clone(),
    )
    .await;
    let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(got.into_iter().flatten().collect::<Vec<_>>(), expected);
    assert_eq!(
        store
            .list_members(&other_org.id, &all())
            .await
            .expect("list")
            .len(),
        1
    );
}

pub async fn member_roles_change_but_the_last_owner_stays(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "owner@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let bob = given_member(&*store, &o, "bob@example.com", Role::Member).await;
    let stranger = given_user(&*store, "stranger@example.com").await;

    store
        .set_member_role(&o.id, &bob.id, Role::Admin)
        .await
        .expect("promote");
    let m = store
        .get_membership(&o.id, &bob.id)
        .await
        .expect("get")
        .expect("member");
    assert_eq!(m.role, Role::Admin);
    assert_eq!(m.created_at, t0() + micros(11), "joining time unchanged");
    assert_not_found(
        store
            .set_member_role(&o.id, &stranger.id, Role::Admin)
            .await,
    );
    assert_not_found(store.set_member_role(&new_id(), &bob.id, Role::Admin).await);

    for role in [Role::Admin, Role::Member, Role::Viewer] {
        assert_last_owner(store.set_member_role(&o.id, &owner.id, role).await);
    }
    store
        .set_member_role(&o.id, &owner.id, Role::Owner)
        .await
        .expect("owner stays owner");
    assert_eq!(owners(&*store, &o.id).await, vec![owner.id.clone()]);

    store
        .set_member_role(&o.id, &bob.id, Role::Owner)
        .await
        .expect("second owner");
    store
        .set_member_role(&o.id, &owner.id, Role::Viewer)
        .await
        .expect("demote, one left");
    assert_eq!(owners(&*store, &o.id).await, vec![bob.id.clone()]);
    assert_last_owner(store.set_member_role(&o.id, &bob.id, Role::Admin).await);
    assert_eq!(owners(&*store, &o.id).await, vec![bob.id]);
}

pub async fn members_are_removed_but_not_the_last_owner(store: Arc<dyn Store>) {
    let owner = given_user(&*store, "owner@example.com").await;
    let o = given_org(&*store, "acme", &owner).await;
    let bob = given_member(&*store, &o, "bob@example.com", Role::Member).await;

    store.remove_member(&o.id, &bob.id).await.expect("remove");
    assert_eq!(
        store.get_membership(&o.id, &bob.id).await.expect("get"),
        None
    );
    assert_not_found(store.remove_member(&o.id, &bob.id).await);
    assert_not_found(store.remove_member(&new_id(), &owner.id).await);

    assert_last_owner(store.remove_member(&o.id, &owner.id).await);
    assert!(
        store
            .get_membership(&o.id, &owner.id)
            .await
            .expect("get")
            .is_some()
    );

    let carol = given_member(&*store, &o, "carol@example.com", Role::Owner).await;
    store
        .remove_member(&o.id, &owner.id)
        .await
        .expect("remove one of two owners");
    assert_eq!(owners(&*store, &o.id).await, vec![carol.id.clone()]);
    assert_last_owner(store.remove_member(&o.id, &carol.id).await);
}

/// Runs `change` on two owners at once, many times: exactly one succeeds,
/// the other is refused with `LastOwner`, and one owner remains.
async fn race_two_owners<F, Fut>(store: Arc<dyn Store>, change: F)
where
    F: Fn(Arc<dyn Store>, String, String) -> Fut,
    Fut: Future<Output = StoreResult<()>> + Send + 'static,
{
    for round in 0..10 {
        let a = given_user(&*store, &format!("a{round}@example.com")).await;
        let o = given_org(&*store, &format!("race-{round}"), &a).await;
        let b = given_member(&*store, &o, &format!("b{round}@example.com"), Role::Owner).await;

        let first = tokio::spawn(change(Arc::clone(&store), o.id.clone(), a.id.clone()));
        let second = tokio::spawn(change(Arc::clone(&store), o.id.clone(), b.id.clone()));
        let results = [first.await.expect("task"), second.await.expect("task")];

        let ok = results.iter().filter(|r| r.is_ok()).count();
        let refused = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::LastOwner)))
            .count();
        assert_eq!((ok, refused), (1, 1), "round {round}: {results:?}");
        let left = owners(&*store, &o.id).await;
        let expected = if results[0].is_ok() { &b.id } else { &a.id };
        assert_eq!(left, vec![expected.clone()], "round {round}");
    }
}

pub async fn concurrent_demotions_of_two_owners_leave_exactly_one(store: Arc<dyn Store>) {
    race_two_owners(store, |store, org_id, user_id| async move {
        store.set_member_role(&org_id, &user_id, Role::Admin).await
    })
    .await;
}

pub async fn concurrent_removals_of_two_owners_leave_exactly_one(store: Arc<dyn Store>) {
    race_two_owners(store, |store, org_id, user_id| async move {
        store.remove_member(&org_id, &user_id).await
    })
    .await;
}

pub async fn user_orgs_list_in_id_order_across_pages(store: Arc<dyn Store>) {
    let u = given_user(&*store, "ada@example.com").await;
    let other = given_user(&*store, "bob@example.com").await;
    let mut expected = Vec::new();
    for i in 0..4 {
        expected.push((
            given_org(&*store, &format!("mine-{i}"), &u).await,
            Role::Owner,
        ));
    }
    for (i, role) in [Role::Admin, Role::Viewer, Role::Member]
        .into_iter()
        .enumerate()
    {
        let o = given_org(&*store, &format!("theirs-{i}"), &other).await;
        store
            .add_member(&MembershipRecord {
                org_id: o.id.clone(),
                user_id: u.id.clone(),
                role,
                created_at: t0(),
            })
            .await
            .expect("add_member");
        expected.push((o, role));
    }
    given_org(&*store, "not-mine", &other).await;
    expected.sort_by(|a, b| a.0.id.cmp(&b.0.id));

    let got = pages(
        3,
        |p| {
            let store = Arc::clone(&store);
            let user_id = u.id.clone();
            async move { store.list_user_orgs(&user_id, &p).await }
        },
        |(o, _): &(OrgRecord, Role)| o.id.clone(),
    )
    .await;
    let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(got.into_iter().flatten().collect::<Vec<_>>(), expected);
}

pub async fn audit_entries_round_trip_exactly(store: Arc<dyn Store>) {
    let org_id = new_id();
    let full = AuditRecord {
        actor_id: Some(new_id()),
        actor_email: Some("Ada@Example.com".into()),
        target: "user:bob@example.com".into(),
        outcome: Outcome::Denied,
        ..audit(&org_id, "org.member.add", t0() + micros(999_999))
    };
    let bare = AuditRecord {
        outcome: Outcome::Failure,
        ..audit(&org_id, "org.delete", t0())
    };
    store.insert_audit(&full).await.expect("insert_audit");
    store.insert_audit(&bare).await.expect("insert_audit");

    assert_eq!(
        store.get_audit(&org_id, &full.id).await.expect("get"),
        Some(full.clone())
    );
    assert_eq!(
        store.get_audit(&org_id, &bare.id).await.expect("get"),
        Some(bare.clone())
    );
    assert_eq!(
        store.get_audit(&new_id(), &full.id).await.expect("get"),
        None,
        "other org"
    );
    assert_eq!(
        store.get_audit(&org_id, &new_id()).await.expect("get"),
        None
    );
    let listed = store
        .list_audit(&org_id, &AuditFilter::default(), &all())
        .await
        .expect("list");
    assert_eq!(listed, vec![bare, full], "newest (greatest id) first");
}

pub async fn audit_lists_newest_first_across_pages(store: Arc<dyn Store>) {
    let org_id = new_id();
    let other_org = new_id();
    let mut ids = Vec::new();
    for i in 0..8 {
        let e = audit(&org_id, "app.deploy", t0() + TimeDelta::seconds(i));
        store.insert_audit(&e).await.expect("insert_audit");
        ids.push(e.id);
        store
            .insert_audit(&audit(&other_org, "app.deploy", t0()))
            .await
            .expect("other org");
    }
    ids.sort();
    ids.reverse();

    let got = pages(
        3,
        |p| {
            let store = Arc::clone(&store);
            let org_id = org_id.clone();
            async move { store.list_audit(&org_id, &AuditFilter::default(), &p).await }
        },
        |e: &AuditRecord| e.id.clone(),
    )
    .await;
    let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 2]);
    let listed: Vec<String> = got.into_iter().flatten().map(|e| e.id).collect();
    assert_eq!(listed, ids, "every entry once, newest first");
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len());
}

pub async fn audit_pages_hold_up_to_the_maximum_limit(store: Arc<dyn Store>) {
    let org_id = new_id();
    let total = MAX_LIMIT as usize + 100;
    for i in 0..total {
        let e = audit(&org_id, "app.deploy", t0() + micros(i as i64));
        store.insert_audit(&e).await.expect("insert_audit");
    }
    let got = pages(
        MAX_LIMIT,
        |p| {
            let store = Arc::clone(&store);
            let org_id = org_id.clone();
            async move { store.list_audit(&org_id, &AuditFilter::default(), &p).await }
        },
        |e: &AuditRecord| e.id.clone(),
    )
    .await;
    let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
    assert_eq!(sizes, [MAX_LIMIT as usize, 100]);
    let listed: Vec<&AuditRecord> = got.iter().flatten().collect();
    assert!(
        listed.windows(2).all(|w| w[0].id > w[1].id),
        "strictly newest first"
    );
    assert!(
        listed.windows(2).all(|w| w[0].at > w[1].at),
        "ids follow time"
    );
}

pub async fn audit_filters_by_actor_action_outcome_and_time(store: Arc<dyn Store>) {
    let org_id = new_id();
    let (ada, bob) = (new_id(), new_id());
    let at = |s: i64| t0() + TimeDelta::seconds(s);
    let entry = |action: &str, s: i64, actor: Option<(&str, &str)>, outcome: Outcome| AuditRecord {
        actor_id: actor.map(|(id, _)| id.to_owned()),
        actor_email: actor.map(|(_, email)| email.to_owned()),
        outcome,
        ..audit(&org_id, action, at(s))
    };
    let e = [
        entry(
            "app.deploy",
            0,
            Some((ada.as_str(), "ada@example.com")),
            Outcome::Success,
        ),
        entry(
            "app.delete",
            1,
            Some((bob.as_str(), "bob@example.com")),
            Outcome::Denied,
        ),
        entry(
            "org.member.add",
            2,
            Some((ada.as_str(), "ada@example.com")),
            Outcome::Failure,
        ),
        entry("app", 3, None, Outcome::Success),
        entry(
            "apps.scale",
            4,
            Some((bob.as_str(), "bob@example.com")),
            Outcome::Success,
        ),
        entry("axb.c", 5, None, Outcome::Success),
    ];
    for x in &e {
        store.insert_audit(x).await.expect("insert_audit");
    }
    store
        .insert_audit(&audit(&new_id(), "app.deploy", at(0)))
        .await
        .expect("other org");

    let check = |filter: AuditFilter, expected: Vec<usize>| {
        let store = Arc::clone(&store);
        let org_id = org_id.clone();
        let ids: Vec<String> = expected.iter().map(|&i| e[i].id.clone()).collect();
        async move {
            let got = store
                .list_audit(&org_id, &filter, &all())
                .await
                .expect("list_audit");
            let got: Vec<String> = got.into_iter().map(|x| x.id).collect();
            assert_eq!(got, ids, "filter {filter:?}");
        }
    };
    let f = AuditFilter::default;

    check(f(), vec![5, 4, 3, 2, 1, 0]).await;
    check(
        AuditFilter {
            actor: Some(ada.clone()),
            ..f()
        },
        vec![2, 0],
    )
    .await;
    check(
        AuditFilter {
            actor: Some("bob@example.com".into()),
            ..f()
        },
        vec![4, 1],
    )
    .await;
    check(
        AuditFilter {
            actor: Some("nobody".into()),
            ..f()
        },
        vec![],
    )
    .await;
    check(
        AuditFilter {
            action: Some("app.deploy".into()),
            ..f()
        },
        vec![0],
    )
    .await;
    check(
        AuditFilter {
            action: Some("app".into()),
            ..f()
        },
        vec![3],
    )
    .await;
    check(
        AuditFilter {
            action: Some("app.".into()),
            ..f()
        },
        vec![1, 0],
    )
    .await;
    check(
        AuditFilter {
            action: Some("org.".into()),
            ..f()
        },
        vec![2],
    )
    .await;
    check(
        AuditFilter {
            action: Some("a_b.".into()),
            ..f()
        },
        vec![],
    )
    .await;
    check(
        AuditFilter {
            action: Some("%.".into()),
            ..f()
        },
        vec![],
    )
    .await;
    check(
        AuditFilter {
            outcome: Some(Outcome::Denied),
            ..f()
        },
        vec![1],
    )
    .await;
    check(
        AuditFilter {
            outcome: Some(Outcome::Success),
            ..f()
        },
        vec![5, 4, 3, 0],
    )
    .await;
    check(
        AuditFilter {
            since: Some(at(2)),
            ..f()
        },
        vec![5, 4, 3, 2],
    )
    .await;
    check(
        AuditFilter {
            since: Some(at(2) + micros(1)),
            ..f()
        },
        vec![5, 4, 3],
    )
    .await;
    check(
        AuditFilter {
            until: Some(at(2)),
            ..f()
        },
        vec![1, 0],
    )
    .await;
    check(
        AuditFilter {
            until: Some(at(2) + micros(1)),
            ..f()
        },
        vec![2, 1, 0],
    )
    .await;
    check(
        AuditFilter {
            since: Some(at(1)),
            until: Some(at(4)),
            ..f()
        },
        vec![3, 2, 1],
    )
    .await;
    check(
        AuditFilter {
            actor: Some(ada.clone()),
            action: Some("app.".into()),
            outcome: Some(Outcome::Success),
            since: Some(at(0)),
            until: Some(at(1)),
        },
        vec![0],
    )
    .await;
    check(
        AuditFilter {
            actor: Some(ada),
            outcome: Some(Outcome::Denied),
            ..f()
        },
        vec![],
    )
    .await;

    // Filters and pages compose: the cursor continues within the filter.
    let filter = AuditFilter {
        outcome: Some(Outcome::Success),
        ..f()
    };
    let first = store
        .list_audit(&org_id, &filter, &PageRequest::first(2))
        .await
        .expect("list");
    assert_eq!(
        first.iter().map(|x| &x.id).collect::<Vec<_>>(),
        [&e[5].id, &e[4].id, &e[3].id]
    );
    let next = PageRequest {
        limit: 2,
        after: Some(e[4].id.clone()),
    };
    let second = store
        .list_audit(&org_id, &filter, &next)
        .await
        .expect("list");
    assert_eq!(
        second.iter().map(|x| &x.id).collect::<Vec<_>>(),
        [&e[3].id, &e[0].id]
    );
}

pub async fn timestamps_round_trip_at_microsecond_precision(store: Arc<dyn Store>) {
    let instants = [
        t0(),
        DateTime::from_timestamp_micros(0).expect("epoch"),
        DateTime::from_timestamp_micros(-1).expect("just before the epoch"),
        DateTime::from_timestamp_micros(4_102_444_799_999_999).expect("end of 2099"),
        DateTime::from_timestamp_micros(1_000_000_000_000_001).expect("2001"),
    ];
    let owner = given_user(&*store, "owner@example.com").await;
    for (i, at) in instants.into_iter().enumerate() {
        let person = UserRecord {
            created_at: at,
            ..user(&format!("u{i}@example.com"))
        };
        store.create_user(&person).await.expect("create_user");
        assert_eq!(
            store
                .get_user(&person.id)
                .await
                .expect("get")
                .map(|x| x.created_at),
            Some(at)
        );

        let sess = SessionRecord {
            created_at: at,
            expires_at: at + micros(1),
            ..session(&person)
        };
        store.create_session(&sess).await.expect("create_session");
        let got = store
            .get_session_by_hash(&sess.token_hash)
            .await
            .expect("by hash");
        assert_eq!(got, Some((sess, person.clone())));

        let tok = TokenRecord {
            created_at: at,
            expires_at: Some(at + micros(3)),
            last_used_at: Some(at - micros(3)),
            ..token(&person, "t", None)
        };
        store.create_token(&tok).await.expect("create_token");
        assert_eq!(
            store.get_token(&person.id, &tok.id).await.expect("get"),
            Some(tok.clone())
        );
        store
            .touch_token(&tok.id, at + micros(5))
            .await
            .expect("touch");
        let got = store
            .get_token(&person.id, &tok.id)
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(got.last_used_at, Some(at + micros(5)));

        let org_rec = OrgRecord {
            created_at: at,
            ..org(&format!("ts-{i}"))
        };
        store
            .create_org(&org_rec, &owner.id)
            .await
            .expect("create_org");
        assert_eq!(
            store
                .get_org(&org_rec.id)
                .await
                .expect("get")
                .map(|x| x.created_at),
            Some(at)
        );
        let membership = MembershipRecord {
            org_id: org_rec.id.clone(),
            user_id: person.id.clone(),
            role: Role::Member,
            created_at: at + micros(1),
        };
        store.add_member(&membership).await.expect("add_member");
        assert_eq!(
            store
                .get_membership(&org_rec.id, &person.id)
                .await
                .expect("get"),
            Some(membership)
        );

        let entry = audit(&org_rec.id, "ts", at);
        store.insert_audit(&entry).await.expect("insert_audit");
        assert_eq!(
            store.get_audit(&org_rec.id, &entry.id).await.expect("get"),
            Some(entry.clone())
        );
        let window = AuditFilter {
            since: Some(at),
            until: Some(at + micros(1)),
            ..Default::default()
        };
        let listed = store
            .list_audit(&org_rec.id, &window, &all())
            .await
            .expect("list");
        assert_eq!(listed, vec![entry]);
    }
}
