#include "gateway/services/live_usage_stream.hpp"

#include <optional>

#include "actors/errors.hpp"
#include "gateway/services/convert.hpp"

namespace billing::gateway {
namespace {

using drained_atom = caf::atom_constant<caf::atom("drained")>;
using closed_atom = caf::atom_constant<caf::atom("closed")>;

using sink_pointer = std::shared_ptr<stream_sink<v1::UsageUpdate>>;

// The ledger's interface for subscribers, plus the stream's own signals.
using stream_subscriber =
    actors::subscriber_actor::extend<caf::reacts_to<drained_atom>, caf::reacts_to<closed_atom>>;

struct subscriber_state {
  sink_pointer sink;
  // An update that did not fit the stream's buffer, with any that came after
  // it folded in; sent when the buffer drains.
  std::optional<model::usage_update> pending;
  static inline const char* name = "live_usage_subscriber";
};

using subscriber_pointer = stream_subscriber::stateful_pointer<subscriber_state>;

// Sends what can be sent; returns false once the stream is closed.
bool flush(subscriber_state& st) {
  if (!st.pending) return true;
  switch (st.sink->send(to_proto(*st.pending))) {
    case stream_sink<v1::UsageUpdate>::send_result::queued:
      st.pending.reset();
      return true;
    case stream_sink<v1::UsageUpdate>::send_result::full:
      return true;
    case stream_sink<v1::UsageUpdate>::send_result::closed:
      return false;
  }
  return false;
}

void offer(subscriber_pointer self, model::usage_update update) {
  auto& st = self->state;
  if (st.pending) {
    // Coalesce: what both ingests added, and the newer running totals.
    if (!st.pending->delta.add(update.delta).ok()) {
      st.sink->finish({status_code::out_of_range, "coalesced delta overflows; subscribe again"});
      self->quit();
      return;
    }
    st.pending->month_to_date = update.month_to_date;
    st.pending->month_to_date_cost = std::move(update.month_to_date_cost);
    st.pending->sequence = update.sequence;
    st.pending->as_of_ns = update.as_of_ns;
  } else {
    st.pending = std::move(update);
  }
  if (!flush(st)) self->quit();
}

stream_subscriber::behavior_type live_usage_subscriber(subscriber_pointer self,
                                                       actors::directory_actor directory,
                                                       std::string customer_id, sink_pointer sink) {
  self->state.sink = std::move(sink);
  // The sink calls back on gateway threads; they only message the actor, and
  // hold no strong reference that could keep it alive.
  const caf::actor_addr address = self->address();
  auto signal = [address](auto atom) {
    return [address, atom] {
      if (auto alive = caf::actor_cast<caf::actor>(address)) caf::anon_send(alive, atom);
    };
  };
  self->state.sink->set_on_closed(signal(closed_atom::value));
  self->state.sink->set_on_drained(signal(drained_atom::value));
  // The ledger exiting (shutdown, failure) or ending the subscription.
  self->set_down_handler([self](caf::down_msg& down) {
    self->state.sink->finish(
        {status_code::unavailable,
         "the customer's ledger stopped (" + caf::to_string(down.reason) + "); subscribe again"});
    self->quit();
  });
  self->set_exit_handler([self](caf::exit_msg& exit) {
    self->state.sink->finish(actors::to_status(exit.reason));
    self->quit(exit.reason);
  });

  self->request(directory, caf::infinite, actors::subscribe_atom::value, customer_id,
                caf::actor_cast<actors::subscriber_actor>(self))
      .then(
          [self](model::usage_update& snapshot) {
            if (auto ledger = self->current_sender()) self->monitor(ledger);
            offer(self, std::move(snapshot));
          },
          [self](caf::error& error) {
            self->state.sink->finish(actors::to_status(error));
            self->quit();
          });

  return {
      [self](actors::update_atom, model::usage_update& update) { offer(self, std::move(update)); },
      [self](drained_atom) {
        if (!flush(self->state)) self->quit();
      },
      [self](closed_atom) { self->quit(); },
  };
}

}  // namespace

void add_live_usage_stream(connect_router& router, caf::actor_system& system,
                           actors::directory_actor directory, query_service_settings settings) {
  router.add_server_stream<v1::StreamLiveUsageRequest, v1::UsageUpdate>(
      "/billing.v1.BillingQueryService/StreamLiveUsage",
      [&system, directory, settings](const call_context& context,
                                     v1::StreamLiveUsageRequest request, sink_pointer sink) {
        if (status refused = check_customer_call(settings, context, request.customer_id());
            !refused.ok()) {
          sink->finish(std::move(refused));
          return;
        }
        system.spawn(live_usage_subscriber, directory, request.customer_id(), std::move(sink));
      });
}

}  // namespace billing::gateway
