//! Webhook deliveries (issue 24): one row per event and subscribed
//! endpoint, written in the transaction of the change that caused it;
//! `seq` orders a user's deliveries to an endpoint. The endpoints gain the
//! previous signing secret that still signs during a rotation.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    PreviousSecret,
    PreviousUntil,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Seq,
    Id,
    EndpointId,
    MessageId,
    EventType,
    UserId,
    DedupeKey,
    Body,
    CreatedAt,
    Status,
    Attempts,
    NextAttemptAt,
    GiveUpAt,
    LeasedUntil,
    LeaseToken,
    LastAttemptAt,
    LastStatus,
    LastError,
    DeliveredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookEndpoints::Table)
                    .add_column(ColumnDef::new(WebhookEndpoints::PreviousSecret).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookEndpoints::Table)
                    .add_column(
                        ColumnDef::new(WebhookEndpoints::PreviousUntil).big_integer().null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(
                        ColumnDef::new(WebhookDeliveries::Seq)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(WebhookDeliveries::Id).string_len(36).not_null())
                    .col(ColumnDef::new(WebhookDeliveries::EndpointId).string_len(36).not_null())
                    .col(ColumnDef::new(WebhookDeliveries::MessageId).string_len(64).not_null())
                    .col(ColumnDef::new(WebhookDeliveries::EventType).string_len(64).not_null())
                    .col(ColumnDef::new(WebhookDeliveries::UserId).string_len(36).null())
                    .col(ColumnDef::new(WebhookDeliveries::DedupeKey).string_len(255).null())
                    .col(ColumnDef::new(WebhookDeliveries::Body).text().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::Status).string_len(16).not_null())
                    .col(ColumnDef::new(WebhookDeliveries::Attempts).integer().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::NextAttemptAt).big_integer().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::GiveUpAt).big_integer().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::LeasedUntil).big_integer().null())
                    .col(ColumnDef::new(WebhookDeliveries::LeaseToken).string_len(36).null())
                    .col(ColumnDef::new(WebhookDeliveries::LastAttemptAt).big_integer().null())
                    .col(ColumnDef::new(WebhookDeliveries::LastStatus).integer().null())
                    .col(ColumnDef::new(WebhookDeliveries::LastError).string_len(500).null())
                    .col(ColumnDef::new(WebhookDeliveries::DeliveredAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("idx_webhook_deliveries_id", vec![WebhookDeliveries::Id]),
            (
                "idx_webhook_deliveries_due",
                vec![WebhookDeliveries::Status, WebhookDeliveries::NextAttemptAt],
            ),
            (
                "idx_webhook_deliveries_user",
                vec![
                    WebhookDeliveries::UserId,
                    WebhookDeliveries::EndpointId,
                    WebhookDeliveries::Seq,
                ],
            ),
            (
                "idx_webhook_deliveries_listing",
                vec![WebhookDeliveries::EndpointId, WebhookDeliveries::CreatedAt],
            ),
            ("idx_webhook_deliveries_lease", vec![WebhookDeliveries::LeaseToken]),
            (
                "idx_webhook_deliveries_settled",
                vec![WebhookDeliveries::Status, WebhookDeliveries::CreatedAt],
            ),
            (
                "idx_webhook_deliveries_dedupe",
                vec![WebhookDeliveries::EndpointId, WebhookDeliveries::DedupeKey],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(WebhookDeliveries::Table);
            for column in columns {
                index.col(column);
            }
            // One delivery per endpoint and dedupe key (NULLs are distinct
            // on every database: most deliveries have none).
            if name == "idx_webhook_deliveries_id" || name == "idx_webhook_deliveries_dedupe" {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned()).await?;
        for column in [WebhookEndpoints::PreviousSecret, WebhookEndpoints::PreviousUntil] {
            manager
                .alter_table(
                    Table::alter().table(WebhookEndpoints::Table).drop_column(column).to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
