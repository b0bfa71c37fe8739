//! Labels and annotations the reconciler puts on what it manages.

use std::collections::BTreeMap;

use satusky_core::apps::DesiredApp;

pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "satusky";
pub const NAME: &str = "app.kubernetes.io/name";
pub const APP_ID: &str = "satusky.com/app-id";
pub const ORG_ID: &str = "satusky.com/org-id";
pub const ORG: &str = "satusky.com/org";
pub const RELEASE: &str = "satusky.com/release";
/// Pod-template annotation stamped by a restart.
pub const RESTARTED_AT: &str = "satusky.com/restarted-at";
/// Pod-template annotation: the secret set version, so a change of secret
/// values rolls the pods.
pub const SECRET_VERSION: &str = "satusky.com/secret-version";
/// Deployment annotation: the desired-state generation last applied.
pub const GENERATION: &str = "satusky.com/generation";

/// `app.kubernetes.io/managed-by=satusky`: every object we manage.
pub fn managed_selector() -> String {
    format!("{MANAGED_BY}={MANAGED_BY_VALUE}")
}

/// Every object of one app.
pub fn app_selector(app_id: &str) -> String {
    format!("{MANAGED_BY}={MANAGED_BY_VALUE},{APP_ID}={app_id}")
}

/// Every organization-wide object we made (namespace, quota, policies):
/// ours and naming an organization.
pub fn org_objects_selector() -> String {
    format!("{MANAGED_BY}={MANAGED_BY_VALUE},{ORG_ID}")
}

/// The organization-wide objects of one organization.
pub fn org_selector(org_id: &str) -> String {
    format!("{MANAGED_BY}={MANAGED_BY_VALUE},{ORG_ID}={org_id}")
}

/// Ownership labels of an app's objects (and its pods).
pub fn ownership(d: &DesiredApp) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (NAME.to_owned(), d.app_name.clone()),
        (APP_ID.to_owned(), d.app_id.clone()),
        (ORG_ID.to_owned(), d.org_id.clone()),
    ])
}

/// Labels of the organization-wide objects (namespace, quota, policies).
pub fn org(d: &DesiredApp) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (ORG_ID.to_owned(), d.org_id.clone()),
        (ORG.to_owned(), d.org_slug.clone()),
    ])
}

/// The pod selector of an app: stable for the app's whole life (a
/// Deployment's selector is immutable).
pub fn pod_selector(d: &DesiredApp) -> BTreeMap<String, String> {
    BTreeMap::from([(APP_ID.to_owned(), d.app_id.clone())])
}
