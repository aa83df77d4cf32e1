#include <doctest/doctest.h>

#include "actors/errors.hpp"
#include "actors/regional_ingest.hpp"

using namespace billing;
using namespace billing::actors;

namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kNow = int64_t{1'790'000'000} * kSecond;

model::usage_window window(std::string customer, std::string region, std::string vm) {
  model::usage_window w;
  w.customer_id = std::move(customer);
  w.region = std::move(region);
  w.vm_id = std::move(vm);
  w.window_start_ns = kNow - 60 * kSecond;
  w.window_end_ns = kNow;
  w.cpu_time_nanos = kSecond;
  return w;
}

}  // namespace

TEST_CASE("a batch is split by customer, keeping request positions") {
  model::ingest_batch batch;
  batch.meta.region = "eu";
  batch.windows = {window("a", "", "vm1"), window("b", "eu", "vm2"), window("a", "", "vm3")};
  model::ingest_report report;
  report.outcomes.resize(3);
  auto parts = split_by_customer(batch, {}, kNow, report);
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].customer_id == "a");
  CHECK(parts[0].indices == std::vector<uint32_t>{0, 2});
  CHECK(parts[0].windows[1].vm_id == "vm3");
  CHECK(parts[0].windows[0].region == "eu");  // inherited from the batch
  CHECK(parts[1].customer_id == "b");
  CHECK(parts[1].indices == std::vector<uint32_t>{1});
}

TEST_CASE("region mismatch, unknown regions and invalid windows are rejected in place") {
  model::ingest_batch batch;
  batch.meta.region = "eu";
  auto bad_window = window("a", "", "vm3");
  bad_window.window_end_ns = bad_window.window_start_ns;
  batch.windows = {window("a", "us", "vm1"), window("a", "", "vm2"), bad_window};
  model::ingest_report report;
  report.outcomes.resize(3);
  ingest_settings settings;
  SUBCASE("any region allowed") {
    auto parts = split_by_customer(batch, settings, kNow, report);
    REQUIRE(parts.size() == 1);
    CHECK(parts[0].indices == std::vector<uint32_t>{1});
    CHECK(report.outcomes[0].status == model::item_status::rejected);
    CHECK(report.outcomes[0].reason == model::reject_reason::region_mismatch);
    CHECK(report.outcomes[0].index == 0);
    CHECK(report.outcomes[2].reason == model::reject_reason::invalid_window);
    CHECK(report.outcomes[2].index == 2);
  }
  SUBCASE("only configured regions allowed") {
    settings.allowed_regions = {"us"};
    auto parts = split_by_customer(batch, settings, kNow, report);
    CHECK(parts.empty());
    CHECK(report.outcomes[1].reason == model::reject_reason::unknown_region);
  }
}

TEST_CASE("a status survives the trip through caf::error") {
  const status original{status_code::resource_exhausted, "slow down"};
  const status back = to_status(to_error(original));
  CHECK(back.code() == status_code::resource_exhausted);
  CHECK(back.message() == "slow down");
  CHECK(to_status(caf::error{}).ok());
  CHECK(to_status(caf::make_error(caf::sec::request_timeout)).code() ==
        status_code::deadline_exceeded);
  CHECK(to_status(caf::make_error(caf::sec::request_receiver_down)).code() ==
        status_code::unavailable);
  CHECK(to_status(caf::make_error(caf::sec::unexpected_message)).code() == status_code::internal);
}
