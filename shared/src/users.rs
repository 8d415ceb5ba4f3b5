//! ThreadStorm users: one per Threads user who logged in, with a role.
//!
//! A user is created on first login, exactly once even when two logins race: a guard item keyed by
//! the Threads user id is written in the same transaction as the user, with a condition on both
//! (the ByThreadsUser index is eventually consistent and cannot enforce uniqueness). Roles are read
//! fresh from here on every request; sessions do not carry them.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use time::OffsetDateTime;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::resources::Resource;
use crate::store::{Item, StoreError, n, s};
use crate::threads;

/// A ThreadStorm user id (a UUID for users created here). Distinct from [`threads::UserId`], the
/// Threads account's own id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

/// Why a value is not a ThreadStorm user id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a ThreadStorm user id: {0}")]
pub struct InvalidUserId(&'static str);

impl UserId {
    /// A new random id (UUID v4).
    pub fn new_random() -> Self {
        UserId(uuid::Uuid::new_v4().to_string())
    }

    /// 1–64 characters of letters, digits, `-` and `_`.
    pub fn parse(raw: &str) -> Result<Self, InvalidUserId> {
        if raw.is_empty() {
            return Err(InvalidUserId("empty"));
        }
        if raw.len() > 64 {
            return Err(InvalidUserId("longer than 64 characters"));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(InvalidUserId(
                "only letters, digits, '-' and '_' are allowed",
            ));
        }
        Ok(UserId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.0)
    }
}

/// A user's role, exactly the seed's five.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    User,
    Pro,
    Business,
    Admin,
    SuperAdmin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::User,
        Role::Pro,
        Role::Business,
        Role::Admin,
        Role::SuperAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Pro => "pro",
            Role::Business => "business",
            Role::Admin => "admin",
            Role::SuperAdmin => "super_admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A UsersTable record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub user_id: UserId,
    pub threads_user_id: threads::UserId,
    pub role: Role,
    pub created_at: OffsetDateTime,
}

/// The result of [`Users::upsert_on_login`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub user: User,
    /// The user was created by this login.
    pub first_login: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored item does not read as a user (unknown role, missing field, dangling guard).
    #[error("users table: {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

/// The UsersTable.
pub struct Users {
    client: Client,
    table: String,
    admins: BTreeSet<threads::UserId>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Users")
            .field("table", &self.table)
            .field("admins", &self.admins.len())
            .finish_non_exhaustive()
    }
}

impl Users {
    /// `admins`: Threads user ids that become `super_admin` when they first log in.
    pub fn new(
        client: Client,
        table: impl Into<String>,
        admins: impl IntoIterator<Item = threads::UserId>,
    ) -> Self {
        Users {
            client,
            table: table.into(),
            admins: admins.into_iter().collect(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The UsersTable of `config`, with `ADMIN_THREADS_USER_IDS` as the first-login admins.
    pub fn from_config(client: Client, config: &Config) -> Result<Self, ConfigError> {
        Ok(Self::new(
            client,
            config.resource(Resource::UsersTable)?,
            config.admin_threads_user_ids.iter().cloned(),
        ))
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The user of `threads_user_id`, created on its first login (a new UUID; `super_admin` if the
    /// id is in `ADMIN_THREADS_USER_IDS`, else `user`). Idempotent, and safe when logins race: all
    /// return the same user. Later logins never change the role.
    pub async fn upsert_on_login(
        &self,
        threads_user_id: &threads::UserId,
    ) -> Result<Login, UsersError> {
        if let Some(user) = self.find_by_threads_user(threads_user_id).await? {
            return Ok(Login {
                user,
                first_login: false,
            });
        }
        let role = if self.admins.contains(threads_user_id) {
            Role::SuperAdmin
        } else {
            Role::User
        };
        let user = User {
            user_id: UserId::new_random(),
            threads_user_id: threads_user_id.clone(),
            role,
            // Stored in whole seconds: keep what is returned equal to what is read back.
            created_at: OffsetDateTime::from_unix_timestamp(self.clock.now().unix_timestamp())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        };
        if self.create(&user).await? {
            return Ok(Login {
                user,
                first_login: true,
            });
        }
        // Another login created the user first: return theirs.
        match self.find_by_threads_user(threads_user_id).await? {
            Some(user) => Ok(Login {
                user,
                first_login: false,
            }),
            None => Err(UsersError::Corrupt {
                key: guard_key(threads_user_id),
                reason: "creation lost a race but no user is there".into(),
            }),
        }
    }

    /// The user with `user_id` (a strongly consistent read), if any.
    pub async fn get(&self, user_id: &UserId) -> Result<Option<User>, UsersError> {
        match self.get_item(user_id.as_str()).await? {
            Some(item) => read_user(&item).map(Some),
            None => Ok(None),
        }
    }

    /// Gives `user_id` a new role; `false` if there is no such user. Authorisation (who may grant
    /// what) is [`crate::rbac::may_grant`]'s, before this is called.
    pub async fn set_role(&self, user_id: &UserId, role: Role) -> Result<bool, UsersError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("user_id", s(user_id.as_str()))
            .update_expression("SET #role = :role")
            .condition_expression("attribute_exists(user_id) AND #kind = :user")
            .expression_attribute_names("#role", "role")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":role", s(role.as_str()))
            .expression_attribute_values(":user", s("user"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::new("UpdateItem", &self.table, e).into()),
        }
    }

    /// The user of `threads_user_id`, through its guard item (strongly consistent).
    pub async fn find_by_threads_user(
        &self,
        threads_user_id: &threads::UserId,
    ) -> Result<Option<User>, UsersError> {
        let guard_key = guard_key(threads_user_id);
        let Some(guard) = self.get_item(&guard_key).await? else {
            return Ok(None);
        };
        let user_id = guard
            .get("points_to")
            .and_then(|v| v.as_s().ok())
            .and_then(|v| UserId::parse(v).ok())
            .ok_or_else(|| UsersError::Corrupt {
                key: guard_key.clone(),
                reason: "guard without a valid points_to".into(),
            })?;
        match self.get(&user_id).await? {
            Some(user) => Ok(Some(user)),
            None => Err(UsersError::Corrupt {
                key: guard_key,
                reason: format!(
                    "guard points to user {user_id}, which does not exist (erase both together)"
                ),
            }),
        }
    }

    /// Writes the guard and the user together; `false` if the guard already existed.
    async fn create(&self, user: &User) -> Result<bool, UsersError> {
        let created_at = n(user.created_at.unix_timestamp());
        let guard: Item = Item::from([
            ("user_id".to_owned(), s(guard_key(&user.threads_user_id))),
            ("kind".to_owned(), s("threads_login")),
            ("points_to".to_owned(), s(user.user_id.as_str())),
            ("created_at".to_owned(), created_at.clone()),
        ]);
        let record: Item = Item::from([
            ("user_id".to_owned(), s(user.user_id.as_str())),
            ("kind".to_owned(), s("user")),
            (
                "threads_user_id".to_owned(),
                s(user.threads_user_id.as_str()),
            ),
            ("role".to_owned(), s(user.role.as_str())),
            ("created_at".to_owned(), created_at),
        ]);
        let put = |item: Item| -> Result<TransactWriteItem, UsersError> {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(user_id)")
                .build()
                .map_err(|e| self.store_error("TransactWriteItems", e.to_string()))?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(put(guard)?)
            .transact_items(put(record)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => {
                let guard_taken = err
                    .as_service_error()
                    .and_then(|e| match e {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => Some(c),
                        _ => None,
                    })
                    .is_some_and(|c| {
                        c.cancellation_reasons()
                            .first()
                            .and_then(|r| r.code())
                            == Some("ConditionalCheckFailed")
                    });
                if guard_taken {
                    Ok(false)
                } else {
                    Err(self.store_error("TransactWriteItems", crate::aws::describe_error(&err)))
                }
            }
        }
    }

    async fn get_item(&self, key: &str) -> Result<Option<Item>, UsersError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("user_id", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.store_error("GetItem", crate::aws::describe_error(&e)))?;
        Ok(output.item)
    }

    /// The id of the user who signs in as `threads_user_id`, by its guard item alone (a guard
    /// whose user is gone still names it, so an erasure can finish what it started).
    pub async fn signs_in_as(
        &self,
        threads_user_id: &threads::UserId,
    ) -> Result<Option<UserId>, UsersError> {
        Ok(self
            .get_item(&guard_key(threads_user_id))
            .await?
            .and_then(|item| item.get("points_to").and_then(|v| v.as_s().ok()).cloned())
            .and_then(|v| UserId::parse(&v).ok()))
    }

    /// Erases the ThreadStorm user a Threads user logged in as, and its guard item (data
    /// deletion). Returns the erased user's id, if there was one. Idempotent.
    pub async fn erase_threads_user(
        &self,
        threads_user_id: &threads::UserId,
    ) -> Result<Option<UserId>, UsersError> {
        let guard = guard_key(threads_user_id);
        let user_id = self.signs_in_as(threads_user_id).await?;
        // The user first: a guard without its user is reported as corrupt, a user without its
        // guard is merely unreachable by login, so a failure in between leaves nothing worse.
        if let Some(user_id) = &user_id {
            self.delete_item(user_id.as_str()).await?;
        }
        self.delete_item(&guard).await?;
        Ok(user_id)
    }

    async fn delete_item(&self, key: &str) -> Result<(), UsersError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("user_id", s(key))
            .send()
            .await
            .map_err(|e| self.store_error("DeleteItem", crate::aws::describe_error(&e)))?;
        Ok(())
    }

    fn store_error(&self, operation: &'static str, message: String) -> UsersError {
        UsersError::Store(StoreError {
            operation,
            table: self.table.clone(),
            message,
        })
    }
}

/// The key of the item that makes one Threads user map to one ThreadStorm user. `#` cannot occur
/// in a [`UserId`], so it never collides with a user.
pub fn guard_key(threads_user_id: &threads::UserId) -> String {
    format!("threads#{threads_user_id}")
}

fn read_user(item: &Item) -> Result<User, UsersError> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    };
    let key = text("user_id").unwrap_or_default().to_owned();
    let corrupt = |reason: String| UsersError::Corrupt {
        key: key.clone(),
        reason,
    };
    let user_id = UserId::parse(&key).map_err(|e| corrupt(e.to_string()))?;
    let threads_user_id = text("threads_user_id")
        .ok_or_else(|| corrupt("no threads_user_id".into()))
        .and_then(|v| threads::UserId::parse(v).map_err(|e| corrupt(e.to_string())))?;
    let role = text("role")
        .and_then(Role::parse)
        .ok_or_else(|| corrupt("missing or unknown role".into()))?;
    let created_at = item
        .get("created_at")
        .and_then(|v| match v {
            AttributeValue::N(n) => n.parse::<i64>().ok(),
            _ => None,
        })
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .ok_or_else(|| corrupt("missing or invalid created_at".into()))?;
    Ok(User {
        user_id,
        threads_user_id,
        role,
        created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_exactly_the_seeds_five() {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ["user", "pro", "business", "admin", "super_admin"]);
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(Role::parse("superadmin"), None);
    }

    #[test]
    fn user_ids_refuse_separators_so_guards_never_collide() {
        assert!(UserId::parse("threads#1784").is_err());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(&"a".repeat(65)).is_err());
        let id = UserId::new_random();
        assert_eq!(UserId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn unknown_role_in_the_table_is_corrupt_not_a_default() {
        let item = Item::from([
            ("user_id".to_owned(), s("u1")),
            ("threads_user_id".to_owned(), s("1784")),
            ("role".to_owned(), s("root")),
            ("created_at".to_owned(), n(1)),
        ]);
        assert!(matches!(read_user(&item), Err(UsersError::Corrupt { .. })));
    }
}
