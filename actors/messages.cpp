#include "actors/messages.hpp"

namespace billing::actors {

void add_message_types(caf::actor_system_config& config) {
  config.add_message_type<model::usage_window>("billing.usage_window")
      .add_message_type<std::vector<model::usage_window>>("billing.usage_windows")
      .add_message_type<model::item_outcome>("billing.item_outcome")
      .add_message_type<std::vector<model::item_outcome>>("billing.item_outcomes")
      .add_message_type<model::batch_meta>("billing.batch_meta")
      .add_message_type<model::ingest_batch>("billing.ingest_batch")
      .add_message_type<model::customer_part>("billing.customer_part")
      .add_message_type<model::ingest_report>("billing.ingest_report")
      .add_message_type<model::usage_query>("billing.usage_query")
      .add_message_type<model::customer_usage>("billing.customer_usage")
      .add_message_type<model::window_query>("billing.window_query")
      .add_message_type<model::billing_window>("billing.billing_window")
      .add_message_type<model::usage_update>("billing.usage_update")
      .add_message_type<model::metald_op>("billing.metald_op")
      .add_message_type<std::vector<model::metald_session>>("billing.metald_sessions")
      .add_message_type<storage::stored_record>("billing.stored_record")
      .add_message_type<std::vector<storage::stored_record>>("billing.stored_records")
      .add_message_type<storage::customer_records>("billing.customer_records")
      .add_message_type<forwarded_call>("billing.forwarded_call")
      .add_message_type<customer_actor>("billing.customer_actor")
      .add_message_type<subscriber_actor>("billing.subscriber_actor")
      .add_message_type<query_actor>("billing.query_actor")
      .add_message_type<ingest_actor>("billing.ingest_actor")
      .add_message_type<directory_actor>("billing.directory_actor");
}

}  // namespace billing::actors
