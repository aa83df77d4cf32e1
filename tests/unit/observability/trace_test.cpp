#include "observability/trace.hpp"

#include <doctest/doctest.h>

#include <set>

using namespace billing::observability;

TEST_CASE("a valid traceparent gives the trace id, the caller's span and the sampled flag") {
  auto parsed = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  REQUIRE(parsed.has_value());
  CHECK(parsed->trace_id == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(parsed->parent_id == "00f067aa0ba902b7");
  CHECK(parsed->sampled);
  auto unsampled = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  REQUIRE(unsampled.has_value());
  CHECK_FALSE(unsampled->sampled);
  // A later version may add fields after a dash.
  CHECK(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"));
}

TEST_CASE("invalid traceparent headers are ignored") {
  for (const char* header : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       // no flags
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // v00 with extra
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // forbidden version
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero parent id
           "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",    // separators
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",    // not hex
           "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",   // no dash after
       }) {
    CAPTURE(header);
    CHECK_FALSE(parse_traceparent(header).has_value());
  }
}

TEST_CASE("new span ids are 16 hex digits and differ") {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const auto id = new_span_id();
    CHECK(id.size() == 16);
    CHECK(id != "0000000000000000");
    seen.insert(id);
  }
  CHECK(seen.size() == 100);
}
