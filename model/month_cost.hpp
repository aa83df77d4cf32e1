// Live cost-to-date: what the usage lines of a customer's draft invoice for
// the current month add up to, kept current as windows are stored instead of
// recomputed from the ledger per update.
//
// The month's usage is held as the invoice attributes it (model/invoice:
// quantities by plan version, dimension and region). A stored window adds its
// hour shares (model/rollup, as the rollups do) through an invoice_builder of
// its own, so hours split by a rate change are cut exactly as the invoice
// cuts them; the attribution is linear in the windows, so the sum over every
// window equals the invoice's. Pricing the quantities (tiers across regions
// and versions, one rounding per line) costs only a few lines per update.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/invoice.hpp"
#include "model/pricing.hpp"
#include "model/rollup.hpp"
#include "model/status.hpp"
#include "model/usage_window.hpp"

namespace billing::model {

class month_cost {
 public:
  // What some windows (one ingest) add, before they are applied.
  class additions {
   public:
    // out_of_range if a sum would overflow (nothing of the window is added).
    status add(const usage_window& window);
    bool empty() const { return hours_.empty(); }

   private:
    friend class month_cost;
    explicit additions(const month_cost& cost);
    int64_t month_start_ns_ = 0;
    std::vector<int64_t> split_hours_;         // the month's hours split by a rate change
    rollup_accumulator::bucket_map hours_;     // hour shares inside the month
    std::vector<usage_window> split_windows_;  // windows reaching into a split hour
  };

  month_cost() = default;
  // The month starting at `month_start_ns` whose usage so far is `quantities`
  // (an invoice_builder's usage()) under `versions` (ascending; empty: no plan
  // prices the customer, and cost() is empty).
  month_cost(std::string customer_id, int64_t month_start_ns, std::vector<plan_version> versions,
             usage_quantities quantities);

  int64_t month_start_ns() const { return month_start_ns_; }
  const std::vector<plan_version>& versions() const { return versions_; }

  additions start_additions() const { return additions(*this); }
  // Adds what `added` holds; out_of_range on overflow (nothing added then).
  status apply(const additions& added);

  // The month's usage cost as a decimal string (format_money), "" when no
  // plan prices the customer. out_of_range on overflow.
  result<std::string> cost() const;

 private:
  std::string customer_id_;
  int64_t month_start_ns_ = 0;
  int64_t month_end_ns_ = 0;
  std::vector<plan_version> versions_;
  std::vector<int64_t> split_hours_;
  usage_quantities quantities_;
};

}  // namespace billing::model
