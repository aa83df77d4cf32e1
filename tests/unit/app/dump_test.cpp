// billingd --dump-replicated: the text two replicas are compared by.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "app/dump.hpp"
#include "storage/keys.hpp"
#include "storage/replication_log.hpp"
#include "tests/unit/storage/test_support.hpp"

using namespace billing;
using namespace billing::storage;
using namespace billing::storage::testing;

namespace {

std::string dump_of(const ledger_store& store) {
  std::ostringstream out;
  status dumped = app::dump_replicated(store, out);
  REQUIRE_MESSAGE(dumped.ok(), dumped.message());
  return out.str();
}

std::vector<std::vector<std::string>> fields_of(const std::string& dump) {
  std::vector<std::vector<std::string>> lines;
  std::istringstream in(dump);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> fields;
    std::istringstream parts(line);
    for (std::string field; std::getline(parts, field, '\t');) fields.push_back(field);
    lines.push_back(std::move(fields));
  }
  return lines;
}

std::string hex_of(std::string_view bytes) {
  std::string hex;
  for (const char c : bytes) hex += fmt::format("{:02x}", static_cast<unsigned char>(c));
  return hex;
}

// Commits `windows` with their rollups (one merge operand per bucket) and
// the VM's state in one write set; with `node_local`, also records of the
// families replicas do not share.
void commit_windows(ledger_store& store, const std::vector<model::usage_window>& windows,
                    const model::vm_state& state, bool node_local = false) {
  write_set writes;
  model::rollup_accumulator rollups;
  for (const auto& window : windows) {
    writes.put_window(window);
    REQUIRE(rollups.add(window).ok());
  }
  writes.merge_rollups("acme", rollups);
  writes.put_vm_state("acme", "vm-1", state);
  if (node_local) {
    model::metald_instance instance;
    instance.last_heartbeat_ns = t0;
    writes.put_metald_instance("metald-1", instance);
    writes.put_handoff("node-b", 1, "held");
    writes.put_invoice_counters(7, t0);
  }
  REQUIRE(commit_and_wait(store, std::move(writes)).ok());
}

}  // namespace

TEST_CASE("--dump-replicated: the same records dump the same text, however they were merged") {
  const auto first = sample_window("acme", "eu", "vm-1", t0, 1);
  const auto second = sample_window("acme", "eu", "vm-1", t0 + minute, 2);
  model::vm_state state;
  state.region = "eu";
  state.watermark_ns = t0 + 2 * minute;

  // One replica got the two windows in two commits (two rollup merge
  // operands), the other in one.
  temp_dir dir_a;
  auto a = open_store(options_for(dir_a));
  commit_windows(*a, {first}, state, true);
  commit_windows(*a, {second}, state, true);
  temp_dir dir_b;
  auto b = open_store(options_for(dir_b));
  commit_windows(*b, {first, second}, state);

  const auto dump = dump_of(*a);
  CHECK(dump == dump_of(*b));

  // Family then key order, three fields, only replicated families; the
  // windows lines are the stored keys and values in hex.
  std::vector<std::string> windows;
  REQUIRE(a->scan_range(windows_family, "", std::nullopt,
                        [&](std::string_view key, std::string_view value) {
                          windows.push_back(hex_of(key) + "\t" + hex_of(value));
                          return true;
                        })
              .ok());
  CHECK(windows.size() == 2);
  size_t last_family = 0;
  std::string last_key;
  std::vector<std::string> dumped_windows;
  std::set<std::string> families;
  for (const auto& fields : fields_of(dump)) {
    REQUIRE(fields.size() == 3);
    const auto& replicated = replicated_families();
    const auto found = std::find_if(replicated.begin(), replicated.end(), [&](uint32_t which) {
      return family_names[which] == fields[0];
    });
    REQUIRE_MESSAGE(found != replicated.end(), fields[0]);
    const auto position = static_cast<size_t>(found - replicated.begin());
    CHECK(position >= last_family);
    if (position == last_family) CHECK(fields[1] > last_key);
    last_family = position;
    last_key = fields[1];
    families.insert(fields[0]);
    if (fields[0] == "windows") dumped_windows.push_back(fields[1] + "\t" + fields[2]);
  }
  CHECK(dumped_windows == windows);
  CHECK(families == std::set<std::string>{"windows", "rollups", "vm_state", "vm_index"});

  // Any difference in a replicated record shows.
  temp_dir dir_c;
  auto c = open_store(options_for(dir_c));
  auto changed = second;
  changed.cpu_time_nanos += 1;
  commit_windows(*c, {first, changed}, state);
  CHECK(dump_of(*c) != dump);
}
