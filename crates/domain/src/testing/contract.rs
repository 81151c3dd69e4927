//! One contract suite for every storage adapter: the promises (MUST) the
//! storage ports make in their docs, exercised through the ports alone, so
//! that the in-memory store and the SQL store are held to the same rules.
//!
//! Each contract is a plain `async fn(Ports)` that arranges what it needs
//! through the ports, acts, and asserts on what the ports answer; it
//! panics when the store breaks the promise. Give each one a *fresh, empty*
//! store:
//!
//! ```text
//! for (name, contract) in secureai_domain::testing::contract::all() {
//!     println!("contract {name}");
//!     contract(fresh_store_ports().await).await;
//! }
//! ```
//!
//! Times are the clock's, cut to the microsecond (what SQL stores keep);
//! tokens come from the token port. Nothing here looks inside a store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::pin::Pin;

use crate::service::Ports;

mod fixtures;

pub mod analytics;
pub mod api_tokens;
pub mod groups;
pub mod imports;
pub mod invitations;
pub mod mfa;
pub mod outbox;
pub mod provisioning;
pub mod resets;
pub mod scim_filter;
pub mod sessions;
pub mod settings;
pub mod setup;
pub mod sso;
pub mod throttle;
pub mod users;
pub mod webhooks;

/// A running contract.
pub type ContractFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A contract: give it the ports of a fresh, empty store.
pub type Contract = fn(Ports) -> ContractFuture;

/// Lists `module::contract` names with the contract, boxed.
macro_rules! contracts {
    ($($module:ident :: $name:ident),* $(,)?) => {
        vec![$((
            concat!(stringify!($module), "::", stringify!($name)),
            (|ports: Ports| -> ContractFuture { Box::pin($module::$name(ports)) }) as Contract,
        )),*]
    };
}

/// Every contract, named `port_module::contract`, in a stable order.
#[must_use]
pub fn all() -> Vec<(&'static str, Contract)> {
    contracts![
        users::insert_refuses_an_email_taken_in_another_case,
        users::insert_refuses_past_the_seat_limit,
        users::concurrent_inserts_never_overshoot_the_seat_limit,
        users::apply_change_keeps_an_active_admin,
        users::concurrent_demotions_leave_an_admin,
        users::apply_change_refuses_a_stale_before,
        users::reactivation_refuses_past_the_seat_limit,
        users::deactivation_ends_sessions_and_voids_links,
        users::erase_anonymises_but_keeps_the_last_admin,
        provisioning::provisioned_users_page_in_order_without_detached_ones,
        provisioning::an_address_change_stays_unique,
        provisioning::an_identity_is_written_with_its_change_or_not_at_all,
        provisioning::a_user_is_modified_when_they_change,
        provisioning::concurrent_creates_take_the_last_seat_once,
        provisioning::only_the_newest_refused_requests_are_kept,
        scim_filter::search_follows_the_reference_semantics,
        groups::concurrent_member_additions_keep_every_member,
        groups::group_names_are_unique_and_members_are_users,
        groups::role_changes_are_written_with_the_membership_or_not_at_all,
        groups::the_users_list_filters_by_group,
        api_tokens::a_token_is_found_by_digest_and_revoked_once,
        webhooks::endpoints_keep_their_secret_and_are_deleted_once,
        webhooks::deliveries_follow_their_events_in_order_and_are_leased_once,
        mfa::a_time_step_is_spent_once,
        mfa::a_recovery_code_is_used_once,
        mfa::passkeys_are_unique_and_a_ceremony_is_taken_once,
        invitations::an_invitation_is_accepted_exactly_once,
        invitations::concurrent_acceptances_activate_once,
        invitations::reissue_voids_earlier_links_and_needs_an_invited_user,
        invitations::reissue_to_a_corrected_address_keeps_addresses_unique,
        invitations::concurrent_corrections_to_one_address_give_it_once,
        invitations::invitation_filters_find_the_invitations_in_trouble,
        sessions::find_credentials_matches_the_email_in_any_case,
        sessions::a_session_carries_its_user_as_stored_now_until_it_ends,
        sessions::end_all_ends_every_session_of_the_user,
        sessions::a_second_factor_check_frees_a_session_and_a_replacement_limits_it_again,
        setup::setup_completes_once,
        setup::setup_refuses_a_taken_email,
        settings::seat_limit_tells_never_set_from_unlimited,
        settings::email_settings_read_back_as_saved,
        settings::audit_reads_newest_first,
        resets::a_reset_link_is_consumed_once,
        resets::resets_need_an_active_user,
        throttle::reserve_admits_the_free_attempts_then_answers_a_wait,
        throttle::concurrent_reservations_admit_only_the_free_ones,
        throttle::release_and_forget_stale,
        throttle::allow_again_forgets_the_key_and_writes_the_audit_event,
        imports::insert_batch_creates_or_skips_each_row,
        imports::an_import_records_rows_and_finishes,
        outbox::claim_does_not_hand_a_message_twice_within_its_lease,
        outbox::a_failed_message_is_requeued_once,
        sso::a_sign_in_in_flight_is_taken_once,
        sso::an_assertion_id_is_remembered_once,
        sso::an_identity_links_to_one_user,
        sso::an_sso_sign_in_refuses_stale_users_and_full_seats,
        analytics::a_service_token_is_revoked_once,
        analytics::record_usage_reports_a_repeated_event_id_as_a_duplicate,
    ]
}
