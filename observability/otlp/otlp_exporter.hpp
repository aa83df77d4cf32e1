// Exports the tracer's spans over OTLP/HTTP (protobuf) on a thread of its own:
// batches of up to max_batch_spans are POSTed as application/x-protobuf to
// <endpoint>/v1/traces, each exchange bounded by `timeout`. Nothing that
// records spans ever waits for it: while an export is slow or the collector
// is down, the tracer's bounded queue fills and further spans are dropped
// (and counted). A failed or timed-out export drops its batch (no retry: a
// trace is worth less than the memory and the time to hold it).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "model/status.hpp"
#include "observability/otlp/otlp_encoder.hpp"
#include "observability/span.hpp"

namespace billing::observability::otlp {

struct exporter_options {
  std::string endpoint;                       // "http://host:port[/base]" or "https://..."
  std::chrono::milliseconds timeout{10'000};  // per export: connect, send, answer
  size_t max_batch_spans = 512;
  // How long a partial batch waits for more spans before it is sent.
  std::chrono::milliseconds flush_interval{1'000};
  std::string ca_file = {};  // for https: the CAs to trust; empty: the system's
};

class otlp_exporter {
 public:
  // invalid_argument when the endpoint is not a URL we can POST to.
  static result<std::unique_ptr<otlp_exporter>> start(exporter_options options,
                                                      std::shared_ptr<tracer> spans,
                                                      otlp_resource resource);
  // Closes the tracer, exports what is still queued (each batch bounded by
  // the timeout; the rest is dropped after a failure), then joins.
  ~otlp_exporter();
  otlp_exporter(const otlp_exporter&) = delete;
  otlp_exporter& operator=(const otlp_exporter&) = delete;

 private:
  struct impl;
  explicit otlp_exporter(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
  std::jthread thread_;  // last: joined before impl_ goes
};

}  // namespace billing::observability::otlp
