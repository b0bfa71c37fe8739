//! The one authorization table. Every org-scoped handler names an
//! [`Action`]; the organization service resolves the caller's membership and
//! checks it here. Not a member (or a token scoped elsewhere) is "not found",
//! never "forbidden", so another organization's existence does not leak.

use satusky_types::orgs::Role;

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    OrgRead,
    OrgRename,
    OrgDelete,
    MembersRead,
    /// Add, change role of, or remove a member (owners only for owner roles).
    MembersManage,
    AuditRead,
    /// See apps, releases, status, events, logs, volumes, masked secrets.
    AppsRead,
    /// Deploy, scale, roll back, restart, change config and secrets, delete apps.
    AppsWrite,
    /// Read one secret value in plain text.
    SecretsReveal,
    /// See machines, their events, metrics and the join tokens' metadata.
    MachinesRead,
    /// Claim, release, label, cordon, drain, reboot and shut down machines.
    MachinesOperate,
    /// Create and revoke join tokens, change visibility, decommission.
    MachinesAdmin,
}

impl Action {
    pub const ALL: [Action; 12] = [
        Action::OrgRead,
        Action::OrgRename,
        Action::OrgDelete,
        Action::MembersRead,
        Action::MembersManage,
        Action::AuditRead,
        Action::AppsRead,
        Action::AppsWrite,
        Action::SecretsReveal,
        Action::MachinesRead,
        Action::MachinesOperate,
        Action::MachinesAdmin,
    ];

    /// The least role that may perform the action.
    pub fn min_role(self) -> Role {
        match self {
            Action::OrgRead | Action::MembersRead | Action::AppsRead | Action::MachinesRead => {
                Role::Viewer
            }
            Action::AppsWrite | Action::MachinesOperate => Role::Member,
            Action::OrgRename
            | Action::MembersManage
            | Action::AuditRead
            | Action::SecretsReveal
            | Action::MachinesAdmin => Role::Admin,
            Action::OrgDelete => Role::Owner,
        }
    }

    /// Dotted name used in audit entries and messages.
    pub fn name(self) -> &'static str {
        match self {
            Action::OrgRead => "org.read",
            Action::OrgRename => "org.rename",
            Action::OrgDelete => "org.delete",
            Action::MembersRead => "org.member.read",
            Action::MembersManage => "org.member.manage",
            Action::AuditRead => "org.audit.read",
            Action::AppsRead => "app.read",
            Action::AppsWrite => "app.write",
            Action::SecretsReveal => "app.secret.reveal",
            Action::MachinesRead => "machine.read",
            Action::MachinesOperate => "machine.operate",
            Action::MachinesAdmin => "machine.admin",
        }
    }
}

/// Whether `role` may perform `action`.
pub fn check(role: Role, action: Action) -> Result<()> {
    if role >= action.min_role() {
        Ok(())
    } else {
        Err(Error::forbidden(format!(
            "your role `{role}` does not allow {}; it needs `{}` or above",
            action.name(),
            action.min_role()
        )))
    }
}

/// Granting or taking away the owner role, or touching an owner, needs an owner.
pub fn check_role_change(
    actor: Role,
    target_current: Option<Role>,
    target_new: Option<Role>,
) -> Result<()> {
    check(actor, Action::MembersManage)?;
    let touches_owner = target_current == Some(Role::Owner) || target_new == Some(Role::Owner);
    if touches_owner && actor != Role::Owner {
        return Err(Error::forbidden(
            "only an owner can grant, change or remove the owner role",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_checked_against_every_action() {
        for action in Action::ALL {
            for role in Role::ALL {
                assert_eq!(
                    check(role, action).is_ok(),
                    role >= action.min_role(),
                    "{role} {action:?}"
                );
            }
        }
        assert!(check(Role::Viewer, Action::OrgRead).is_ok());
        assert!(check(Role::Member, Action::AuditRead).is_err());
        assert!(check(Role::Admin, Action::OrgDelete).is_err());
        assert!(check(Role::Viewer, Action::MachinesRead).is_ok());
        assert!(check(Role::Viewer, Action::MachinesOperate).is_err());
        assert!(check(Role::Member, Action::MachinesOperate).is_ok());
        assert!(check(Role::Member, Action::MachinesAdmin).is_err());
        assert!(check(Role::Admin, Action::MachinesAdmin).is_ok());
    }

    #[test]
    fn only_owners_touch_owner_roles() {
        assert!(check_role_change(Role::Admin, Some(Role::Member), Some(Role::Admin)).is_ok());
        assert!(check_role_change(Role::Admin, Some(Role::Member), Some(Role::Owner)).is_err());
        assert!(check_role_change(Role::Admin, Some(Role::Owner), None).is_err());
        assert!(check_role_change(Role::Owner, Some(Role::Owner), Some(Role::Admin)).is_ok());
        assert!(check_role_change(Role::Member, Some(Role::Viewer), None).is_err());
    }
}
