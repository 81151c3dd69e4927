//! The initial schema: users, invitations, sessions, the mail outbox, the
//! audit log, the setup link and the guard row.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, integer, string_len, string_len_null, text, text_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    EmailKey,
    Name,
    NameKey,
    Role,
    Status,
    SignIn,
    Department,
    PasswordHash,
    CreatedAt,
    ActivatedAt,
    DeactivatedAt,
    LastLoginAt,
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Id,
    UserId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    State,
    StateAt,
}

#[derive(DeriveIden)]
enum PasswordResets {
    Table,
    Id,
    UserId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    State,
    StateAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    TokenHash,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    Kind,
    Recipient,
    RecipientName,
    Payload,
    CreatedAt,
    Status,
    Attempts,
    NextAttemptAt,
    LeasedUntil,
    SentAt,
    LastError,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    ActorKind,
    ActorId,
    ActorEmail,
    Action,
    TargetId,
    TargetEmail,
    Changes,
    Ip,
    UserAgent,
}

#[derive(DeriveIden)]
enum SetupTokens {
    Table,
    Id,
    TokenHash,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum UserSearchTerms {
    Table,
    Term,
    UserId,
}

#[derive(DeriveIden)]
enum UserCounts {
    Table,
    Role,
    Status,
    N,
}

#[derive(DeriveIden)]
enum Throttles {
    Table,
    Key,
    Failures,
    LastFailureAt,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    Key,
    Value,
}

#[derive(DeriveIden)]
enum Guard {
    Table,
    Id,
    Version,
}

/// Sort and search keys compare as bytes on every database, as the domain
/// (and SQLite) compare them: MySQL's and PostgreSQL's default collations
/// would fold accents or order by locale.
fn bytewise(backend: sea_orm_migration::sea_orm::DbBackend, mut def: ColumnDef) -> ColumnDef {
    use sea_orm_migration::sea_orm::DbBackend;
    match backend {
        DbBackend::MySql => def.extra("COLLATE utf8mb4_bin").to_owned(),
        DbBackend::Postgres => def.extra("COLLATE \"C\"").to_owned(),
        _ => def,
    }
}

fn id(col: impl IntoIden) -> ColumnDef {
    string_len(col, 36).primary_key().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(id(Users::Id))
                    .col(string_len(Users::Email, 254))
                    .col(bytewise(backend, string_len(Users::EmailKey, 254)))
                    .col(string_len(Users::Name, 200))
                    .col(bytewise(backend, string_len(Users::NameKey, 200)))
                    .col(string_len(Users::Role, 16))
                    .col(string_len(Users::Status, 16))
                    .col(string_len(Users::SignIn, 16))
                    .col(string_len_null(Users::Department, 100))
                    .col(string_len_null(Users::PasswordHash, 255))
                    .col(big_integer(Users::CreatedAt))
                    .col(big_integer_null(Users::ActivatedAt))
                    .col(big_integer_null(Users::DeactivatedAt))
                    // 0 = never: a NOT NULL column sorts and pages simply.
                    .col(big_integer(Users::LastLoginAt).default(0))
                    .to_owned(),
            )
            .await?;
        // Case-insensitive uniqueness: `email_key` is the lowercased address.
        manager
            .create_index(
                Index::create()
                    .name("ux_users_email_key")
                    .table(Users::Table)
                    .col(Users::EmailKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_users_created")
                    .table(Users::Table)
                    .col(Users::CreatedAt)
                    .col(Users::Id)
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("ix_users_name", Users::NameKey),
            ("ix_users_last_login", Users::LastLoginAt),
            ("ix_users_department", Users::Department),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Users::Table)
                        .col(col)
                        .col(Users::Id)
                        .to_owned(),
                )
                .await?;
        }
        // Filtered lists in creation order walk these instead of skipping
        // through every user.
        manager
            .create_index(
                Index::create()
                    .name("ix_users_role_status")
                    .table(Users::Table)
                    .col(Users::Role)
                    .col(Users::Status)
                    .col(Users::CreatedAt)
                    .col(Users::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_users_status")
                    .table(Users::Table)
                    .col(Users::Status)
                    .col(Users::CreatedAt)
                    .col(Users::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .col(id(Invitations::Id))
                    .col(string_len(Invitations::UserId, 36))
                    .col(string_len(Invitations::TokenHash, 64))
                    .col(big_integer(Invitations::CreatedAt))
                    .col(big_integer(Invitations::ExpiresAt))
                    .col(string_len(Invitations::State, 16))
                    .col(big_integer_null(Invitations::StateAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_invitations_user")
                            .from(Invitations::Table, Invitations::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_invitations_token")
                    .table(Invitations::Table)
                    .col(Invitations::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_invitations_user")
                    .table(Invitations::Table)
                    .col(Invitations::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PasswordResets::Table)
                    .col(id(PasswordResets::Id))
                    .col(string_len(PasswordResets::UserId, 36))
                    .col(string_len(PasswordResets::TokenHash, 64))
                    .col(big_integer(PasswordResets::CreatedAt))
                    .col(big_integer(PasswordResets::ExpiresAt))
                    .col(string_len(PasswordResets::State, 16))
                    .col(big_integer_null(PasswordResets::StateAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_password_resets_user")
                            .from(PasswordResets::Table, PasswordResets::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_password_resets_token")
                    .table(PasswordResets::Table)
                    .col(PasswordResets::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_password_resets_user")
                    .table(PasswordResets::Table)
                    .col(PasswordResets::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(id(Sessions::Id))
                    .col(string_len(Sessions::UserId, 36))
                    .col(string_len(Sessions::TokenHash, 64))
                    .col(big_integer(Sessions::CreatedAt))
                    .col(big_integer(Sessions::LastSeenAt))
                    .col(big_integer(Sessions::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sessions_user")
                            .from(Sessions::Table, Sessions::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_sessions_token")
                    .table(Sessions::Table)
                    .col(Sessions::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_sessions_user")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(id(Outbox::Id))
                    .col(string_len(Outbox::Kind, 32))
                    .col(string_len(Outbox::Recipient, 254))
                    .col(string_len(Outbox::RecipientName, 200))
                    .col(text(Outbox::Payload))
                    .col(big_integer(Outbox::CreatedAt))
                    .col(string_len(Outbox::Status, 16))
                    .col(integer(Outbox::Attempts))
                    .col(big_integer(Outbox::NextAttemptAt))
                    .col(big_integer_null(Outbox::LeasedUntil))
                    .col(big_integer_null(Outbox::SentAt))
                    .col(text_null(Outbox::LastError))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_outbox_due")
                    .table(Outbox::Table)
                    .col(Outbox::Status)
                    .col(Outbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(id(AuditEvents::Id))
                    .col(big_integer(AuditEvents::At))
                    .col(string_len(AuditEvents::ActorKind, 16))
                    .col(string_len_null(AuditEvents::ActorId, 36))
                    .col(string_len_null(AuditEvents::ActorEmail, 254))
                    .col(string_len(AuditEvents::Action, 64))
                    .col(string_len_null(AuditEvents::TargetId, 36))
                    .col(string_len_null(AuditEvents::TargetEmail, 254))
                    .col(text(AuditEvents::Changes))
                    .col(string_len_null(AuditEvents::Ip, 64))
                    .col(string_len_null(AuditEvents::UserAgent, 512))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_at")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::At)
                    .col(AuditEvents::Id)
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("ix_audit_target", AuditEvents::TargetId),
            ("ix_audit_actor", AuditEvents::ActorId),
            ("ix_audit_action", AuditEvents::Action),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AuditEvents::Table)
                        .col(col)
                        .col(AuditEvents::At)
                        .col(AuditEvents::Id)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(SetupTokens::Table)
                    .col(integer(SetupTokens::Id).primary_key())
                    .col(string_len(SetupTokens::TokenHash, 64))
                    .col(big_integer(SetupTokens::ExpiresAt))
                    .to_owned(),
            )
            .await?;

        // Words users are found by (email, its domain, name words): a
        // prefix search is an index range scan, whatever the user count.
        manager
            .create_table(
                Table::create()
                    .table(UserSearchTerms::Table)
                    .col(bytewise(backend, string_len(UserSearchTerms::Term, 254)))
                    .col(string_len(UserSearchTerms::UserId, 36))
                    .primary_key(
                        Index::create().col(UserSearchTerms::Term).col(UserSearchTerms::UserId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_user_search_terms_user")
                    .table(UserSearchTerms::Table)
                    .col(UserSearchTerms::UserId)
                    .col(UserSearchTerms::Term)
                    .to_owned(),
            )
            .await?;

        // Users per (role, status), kept in the transaction of every change:
        // seat counts and list totals without counting a million rows.
        manager
            .create_table(
                Table::create()
                    .table(UserCounts::Table)
                    .col(string_len(UserCounts::Role, 16))
                    .col(string_len(UserCounts::Status, 16))
                    .col(big_integer(UserCounts::N))
                    .primary_key(Index::create().col(UserCounts::Role).col(UserCounts::Status))
                    .to_owned(),
            )
            .await?;
        for role in ["user", "admin"] {
            for status in ["invited", "active", "deactivated"] {
                manager
                    .exec_stmt(
                        Query::insert()
                            .into_table(UserCounts::Table)
                            .columns([UserCounts::Role, UserCounts::Status, UserCounts::N])
                            .values_panic([role.into(), status.into(), 0.into()])
                            .to_owned(),
                    )
                    .await?;
            }
        }

        manager
            .create_table(
                Table::create()
                    .table(Throttles::Table)
                    .col(string_len(Throttles::Key, 300).primary_key())
                    .col(integer(Throttles::Failures))
                    .col(big_integer(Throttles::LastFailureAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Settings::Table)
                    .col(string_len(Settings::Key, 64).primary_key())
                    .col(text(Settings::Value))
                    .to_owned(),
            )
            .await?;

        // One row that every transaction guarding an instance-wide invariant
        // (at least one active admin, the seat limit) updates first: it
        // serialises those transactions on SQLite, PostgreSQL and MySQL alike.
        manager
            .create_table(
                Table::create()
                    .table(Guard::Table)
                    .col(integer(Guard::Id).primary_key())
                    .col(big_integer(Guard::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(Guard::Table)
                    .columns([Guard::Id, Guard::Version])
                    .values_panic([1.into(), 0.into()])
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
