#include "storage/retention.hpp"

#include <string>

#include "storage/keys.hpp"

namespace billing::storage {
namespace {

class retention_filter final : public rocksdb::CompactionFilter {
 public:
  retention_filter(retained_key_kind kind, int64_t cutoff_ns)
      : kind_(kind), cutoff_ns_(cutoff_ns) {}

  bool Filter(int /*level*/, const rocksdb::Slice& key, const rocksdb::Slice& /*value*/,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    const auto start = kind_ == retained_key_kind::window
                           ? keys::window_start_of_window_key(key.ToStringView())
                           : keys::window_start_of_dedup_key(key.ToStringView());
    return start.has_value() && *start < cutoff_ns_;
  }

  const char* Name() const override { return "billing.raw_retention"; }

 private:
  retained_key_kind kind_;
  int64_t cutoff_ns_;
};

class retention_filter_factory final : public rocksdb::CompactionFilterFactory {
 public:
  retention_filter_factory(retained_key_kind kind, int64_t retention_ns, unix_clock clock)
      : kind_(kind), retention_ns_(retention_ns), clock_(std::move(clock)) {}

  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context& /*context*/) override {
    if (retention_ns_ <= 0) return nullptr;  // keep everything
    return std::make_unique<retention_filter>(kind_, clock_() - retention_ns_);
  }

  const char* Name() const override { return "billing.raw_retention_factory"; }

 private:
  retained_key_kind kind_;
  int64_t retention_ns_;
  unix_clock clock_;
};

}  // namespace

std::shared_ptr<rocksdb::CompactionFilterFactory> make_retention_filter_factory(
    retained_key_kind kind, int64_t retention_ns, unix_clock clock) {
  return std::make_shared<retention_filter_factory>(kind, retention_ns, std::move(clock));
}

}  // namespace billing::storage
