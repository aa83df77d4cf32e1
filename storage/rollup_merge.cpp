#include "storage/rollup_merge.hpp"

#include "storage/codec.hpp"

namespace billing::storage {
namespace {

class rollup_merge_operator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice& /*key*/, const rocksdb::Slice* existing_value,
             const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger* /*logger*/) const override {
    auto operand = codec::decode_rollup_value(value.ToStringView());
    if (!operand) return false;
    if (existing_value == nullptr) {
      *new_value = codec::encode_rollup_value(*operand);
      return true;
    }
    auto merged = codec::decode_rollup_value(existing_value->ToStringView());
    if (!merged) return false;
    if (!merged->merge(*operand).ok()) return false;
    *new_value = codec::encode_rollup_value(*merged);
    return true;
  }

  const char* Name() const override { return "billing.rollup_merge.v1"; }
};

}  // namespace

std::shared_ptr<rocksdb::MergeOperator> make_rollup_merge_operator() {
  return std::make_shared<rollup_merge_operator>();
}

}  // namespace billing::storage
