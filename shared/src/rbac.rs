//! Who may do what: the seed's roles and permissions, and the one function that decides every
//! request from the principal, the action, and the owner of the resource it touches.
//!
//! | role        | permissions                                              |
//! |-------------|----------------------------------------------------------|
//! | user        | read, write_own                                          |
//! | pro         | read, write_own, bulk_operations                         |
//! | business    | read, write_own, bulk_operations, analytics              |
//! | admin       | read, write, delete, manage_users                        |
//! | super_admin | read, write, delete, manage_users, manage_system         |
//!
//! Everyone acts on their own resources. Acting on another user's resource is an *override*: it
//! must be asked for explicitly, needs `manage_users` and the action's unrestricted permission
//! (`read`, `write` or `delete`), and is always audited as an override.

use std::fmt;

use crate::users::{Role, UserId};

/// One of the seed's permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    Read,
    Write,
    WriteOwn,
    Delete,
    ManageUsers,
    ManageSystem,
    BulkOperations,
    Analytics,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::WriteOwn => "write_own",
            Permission::Delete => "delete",
            Permission::ManageUsers => "manage_users",
            Permission::ManageSystem => "manage_system",
            Permission::BulkOperations => "bulk_operations",
            Permission::Analytics => "analytics",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The permissions of `role`, exactly as the seed lists them.
pub fn permissions(role: Role) -> &'static [Permission] {
    use Permission::*;
    match role {
        Role::User => &[Read, WriteOwn],
        Role::Pro => &[Read, WriteOwn, BulkOperations],
        Role::Business => &[Read, WriteOwn, BulkOperations, Analytics],
        Role::Admin => &[Read, Write, Delete, ManageUsers],
        Role::SuperAdmin => &[Read, Write, Delete, ManageUsers, ManageSystem],
    }
}

/// Whether `role` has `permission`.
pub fn has(role: Role, permission: Permission) -> bool {
    permissions(role).contains(&permission)
}

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Look at a resource (`read`).
    Read,
    /// Create or change a resource, cancel a post (`write_own` on one's own, `write` on anyone's).
    Write,
    /// Remove a resource for good (`delete`; `write_own` suffices for one's own).
    Delete,
    /// Many posts in one request (`bulk_operations` and the right to write them).
    Bulk,
    /// Publishing figures (`analytics`).
    Analytics,
    /// Change other users' roles (`manage_users`).
    ManageUsers,
    /// Kill switch, revocations, emergency rotations, the audit log's integrity (`manage_system`).
    ManageSystem,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Delete => "delete",
            Action::Bulk => "bulk",
            Action::Analytics => "analytics",
            Action::ManageUsers => "manage_users",
            Action::ManageSystem => "manage_system",
        }
    }

    /// Writes, deletions and administration are audited when granted too; reads are not.
    pub fn audited_when_granted(self) -> bool {
        !matches!(self, Action::Read | Action::Analytics)
    }
}

/// Whose resource a request touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// Nobody's in particular: the caller's own collection (create, list) or the system.
    Own,
    /// A resource owned by this user.
    OwnedBy(&'a str),
    /// Some other user's resource, not yet read: what an override asks for before the resource
    /// is loaded, so that a role which may never override is refused the same way whether or
    /// not the id exists.
    Others,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub role: Role,
}

/// What [`authorize`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed on the caller's own resource (or a system action the role holds).
    Allow,
    /// Allowed on another user's resource because the caller asked for an override and may.
    AllowOverride,
    Deny(Denial),
}

/// Why a request was refused; each maps to 403, except `NotFound` (404, so ids of other users'
/// resources reveal nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The role lacks the permission the action needs.
    MissingPermission(Permission),
    /// Another user's resource, without an override.
    NotOwner,
    /// An override was asked for by a role that may not override.
    OverrideNotAllowed,
}

impl Decision {
    pub fn allowed(self) -> bool {
        !matches!(self, Decision::Deny(_))
    }
}

/// Decides one request. `override_requested` is the caller's explicit ask to act on another
/// user's resource; it never widens what a role may do on its own resources.
pub fn authorize(
    principal: &Principal,
    action: Action,
    target: Target<'_>,
    override_requested: bool,
) -> Decision {
    let role = principal.role;
    let own = match target {
        Target::Own => true,
        Target::OwnedBy(owner) => owner == principal.user_id.as_str(),
        Target::Others => false,
    };
    // The permission the action needs on the caller's own resources.
    let needed_own = match action {
        Action::Read => Permission::Read,
        Action::Write | Action::Delete => {
            if has(role, Permission::Write) {
                Permission::Write
            } else {
                Permission::WriteOwn
            }
        }
        Action::Bulk => Permission::BulkOperations,
        Action::Analytics => Permission::Analytics,
        Action::ManageUsers => Permission::ManageUsers,
        Action::ManageSystem => Permission::ManageSystem,
    };
    if !has(role, needed_own) {
        return Decision::Deny(Denial::MissingPermission(needed_own));
    }
    if action == Action::Bulk && !(has(role, Permission::WriteOwn) || has(role, Permission::Write))
    {
        return Decision::Deny(Denial::MissingPermission(Permission::WriteOwn));
    }
    if own {
        return Decision::Allow;
    }
    if !override_requested {
        return Decision::Deny(Denial::NotOwner);
    }
    // On another user's resource: the unrestricted permission, and the right to manage users.
    let needed_any = match action {
        Action::Read | Action::Analytics => Permission::Read,
        Action::Write | Action::Bulk => Permission::Write,
        Action::Delete => Permission::Delete,
        Action::ManageUsers => Permission::ManageUsers,
        Action::ManageSystem => Permission::ManageSystem,
    };
    if has(role, needed_any) && may_override(role) {
        Decision::AllowOverride
    } else {
        Decision::Deny(Denial::OverrideNotAllowed)
    }
}

/// Whether `role` may act on other users' resources at all (by an explicit override): only the
/// roles that manage users.
pub fn may_override(role: Role) -> bool {
    has(role, Permission::ManageUsers)
}

/// Whether `granter` may give `role` to someone: never above their own role; only a super_admin
/// grants admin or super_admin; only `manage_users` grants at all.
pub fn may_grant(granter: Role, role: Role) -> bool {
    if !has(granter, Permission::ManageUsers) {
        return false;
    }
    match role {
        Role::Admin | Role::SuperAdmin => granter == Role::SuperAdmin,
        Role::User | Role::Pro | Role::Business => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role) -> Principal {
        Principal {
            user_id: UserId::parse("me").unwrap(),
            role,
        }
    }

    #[test]
    fn roles_have_exactly_the_seeds_permissions() {
        use Permission::*;
        let names = |role| {
            permissions(role)
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(Role::Admin),
            ["read", "write", "delete", "manage_users"]
        );
        assert_eq!(
            names(Role::SuperAdmin),
            ["read", "write", "delete", "manage_users", "manage_system"]
        );
        assert_eq!(names(Role::User), ["read", "write_own"]);
        assert_eq!(names(Role::Pro), ["read", "write_own", "bulk_operations"]);
        assert_eq!(
            names(Role::Business),
            ["read", "write_own", "bulk_operations", "analytics"]
        );
        assert!(!has(Role::Business, Write) && !has(Role::Admin, ManageSystem));
    }

    #[test]
    fn everyone_writes_their_own_and_nobody_else_without_an_override() {
        for role in Role::ALL {
            let me = principal(role);
            assert_eq!(
                authorize(&me, Action::Write, Target::Own, false),
                Decision::Allow
            );
            assert_eq!(
                authorize(&me, Action::Read, Target::OwnedBy("me"), false),
                Decision::Allow
            );
            assert_eq!(
                authorize(&me, Action::Write, Target::OwnedBy("someone"), false),
                Decision::Deny(Denial::NotOwner),
                "{role}"
            );
        }
    }

    #[test]
    fn only_admins_override_and_only_when_asked() {
        for role in [Role::User, Role::Pro, Role::Business] {
            assert_eq!(
                authorize(&principal(role), Action::Read, Target::OwnedBy("x"), true),
                Decision::Deny(Denial::OverrideNotAllowed)
            );
        }
        for role in [Role::Admin, Role::SuperAdmin] {
            for action in [Action::Read, Action::Write, Action::Delete] {
                assert_eq!(
                    authorize(&principal(role), action, Target::OwnedBy("x"), true),
                    Decision::AllowOverride
                );
            }
        }
    }

    #[test]
    fn bulk_analytics_and_administration_need_their_permission() {
        let deny =
            |role, action| !authorize(&principal(role), action, Target::Own, false).allowed();
        assert!(deny(Role::User, Action::Bulk));
        assert!(!deny(Role::Pro, Action::Bulk));
        assert!(deny(Role::Pro, Action::Analytics));
        assert!(!deny(Role::Business, Action::Analytics));
        assert!(deny(Role::Business, Action::ManageUsers));
        assert!(!deny(Role::Admin, Action::ManageUsers));
        assert!(deny(Role::Admin, Action::ManageSystem));
        assert!(!deny(Role::SuperAdmin, Action::ManageSystem));
    }

    #[test]
    fn nobody_grants_above_their_role() {
        assert!(!may_grant(Role::Business, Role::User));
        assert!(may_grant(Role::Admin, Role::Business));
        assert!(!may_grant(Role::Admin, Role::Admin));
        assert!(!may_grant(Role::Admin, Role::SuperAdmin));
        assert!(may_grant(Role::SuperAdmin, Role::Admin));
        assert!(may_grant(Role::SuperAdmin, Role::SuperAdmin));
    }
}
