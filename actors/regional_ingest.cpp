#include "actors/regional_ingest.hpp"

#include <fmt/format.h>

#include <map>
#include <memory>

#include "model/calendar.hpp"

namespace billing::actors {
namespace {

// Collects the customers' answers to one batch.
struct fan_in {
  model::ingest_report report;
  size_t remaining = 0;
  bool failed = false;
  caf::typed_response_promise<model::ingest_report> promise;
};

struct ingest_state {
  std::string region;
  ingest_settings settings;
  directory_actor directory;
  static inline const char* name = "regional_ingest";
};

ingest_actor::behavior_type regional_ingest(ingest_actor::stateful_pointer<ingest_state> self,
                                            std::string region, ingest_settings settings,
                                            directory_actor directory) {
  self->state.region = std::move(region);
  self->state.settings = std::move(settings);
  self->state.directory = std::move(directory);
  return {
      [self](ingest_atom, model::ingest_batch& batch) -> caf::result<model::ingest_report> {
        model::ingest_report report;
        report.outcomes.resize(batch.windows.size());
        auto parts = split_by_customer(batch, self->state.settings, model::unix_now_ns(), report);
        if (parts.empty()) return report;

        auto pending = std::make_shared<fan_in>();
        pending->report = std::move(report);
        pending->remaining = parts.size();
        pending->promise = self->make_response_promise<model::ingest_report>();
        for (auto& part : parts) {
          self->request(self->state.directory, caf::infinite, append_atom::value, std::move(part))
              .then(
                  [pending](std::vector<model::item_outcome>& outcomes) {
                    for (auto& outcome : outcomes) {
                      pending->report.outcomes[outcome.index] = std::move(outcome);
                    }
                    if (--pending->remaining == 0 && !pending->failed) {
                      pending->promise.deliver(std::move(pending->report));
                    }
                  },
                  [pending](caf::error& error) {
                    // Parts already stored stay stored: a retry of the whole
                    // batch finds them as duplicates.
                    if (!pending->failed) {
                      pending->failed = true;
                      pending->promise.deliver(std::move(error));
                    }
                  });
        }
        return pending->promise;
      },
  };
}

}  // namespace

std::vector<model::customer_part> split_by_customer(model::ingest_batch& batch,
                                                    const ingest_settings& settings, int64_t now_ns,
                                                    model::ingest_report& report) {
  std::map<std::string, model::customer_part> by_customer;
  for (size_t i = 0; i < batch.windows.size(); ++i) {
    auto& window = batch.windows[i];
    const auto index = static_cast<uint32_t>(i);
    auto reject = [&](model::reject_reason why, std::string message) {
      report.outcomes[i] = model::item_outcome::rejected(index, why, std::move(message));
    };
    if (window.region.empty()) {
      window.region = batch.meta.region;
    } else if (!batch.meta.region.empty() && window.region != batch.meta.region) {
      reject(model::reject_reason::region_mismatch,
             fmt::format("metric region '{}' differs from the batch region '{}'", window.region,
                         batch.meta.region));
      continue;
    }
    if (auto bad = model::validate_window(window, settings.limits, now_ns)) {
      reject(bad->reason, std::move(bad->message));
      continue;
    }
    if (!settings.allowed_regions.empty() && !settings.allowed_regions.contains(window.region)) {
      reject(model::reject_reason::unknown_region,
             fmt::format("region '{}' is not configured on this service", window.region));
      continue;
    }
    auto& part = by_customer[window.customer_id];
    if (part.customer_id.empty()) {
      part.customer_id = window.customer_id;
      part.meta = batch.meta;
    }
    part.indices.push_back(index);
    part.windows.push_back(std::move(window));
  }
  std::vector<model::customer_part> parts;
  parts.reserve(by_customer.size());
  for (auto& [customer, part] : by_customer) parts.push_back(std::move(part));
  return parts;
}

ingest_actor spawn_regional_ingest(caf::actor_system& system, std::string region,
                                   ingest_settings settings, directory_actor directory) {
  return system.spawn(regional_ingest, std::move(region), std::move(settings),
                      std::move(directory));
}

}  // namespace billing::actors
