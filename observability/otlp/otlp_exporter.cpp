#include "observability/otlp/otlp_exporter.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "client/http_client.hpp"
#include "observability/log.hpp"

namespace billing::observability::otlp {

struct otlp_exporter::impl {
  exporter_options options;
  std::shared_ptr<tracer> spans;
  otlp_resource resource;
  client::http_client http;
  bool failing = false;  // the last export failed (to log changes, not every failure)

  // Sends one batch, or drops it (counted) when that fails.
  void export_batch(const std::vector<span_record>& batch) {
    client::http_answer answer;
    client::transport_error failure;
    std::string problem;
    if (!http.post("/v1/traces", {{"content-type", "application/x-protobuf"}},
                   encode_export_request(resource, batch), answer, failure)) {
      problem = failure.message;
    } else if (answer.status < 200 || answer.status > 299) {
      problem = fmt::format("HTTP {}", answer.status);
    }
    if (!problem.empty()) {
      spans->count(span_outcome::dropped, batch.size());
      if (!failing) {
        log_warn("trace export to {} failed ({}); spans are dropped until it works again",
                 options.endpoint, problem);
      }
      failing = true;
      return;
    }
    // A 2xx is an acceptance; a partial_success names spans it refused.
    const auto said = decode_export_response(answer.body);
    const uint64_t rejected =
        said.ok() ? static_cast<uint64_t>(std::clamp<int64_t>(said->rejected_spans, 0,
                                                              static_cast<int64_t>(batch.size())))
                  : 0;
    if (rejected > 0) {
      log_warn("the trace collector rejected {} of {} spans: {}", rejected, batch.size(),
               said->error_message);
    }
    spans->count(span_outcome::exported, batch.size() - rejected);
    spans->count(span_outcome::dropped, rejected);
    if (failing) log_info("trace export to {} works again", options.endpoint);
    failing = false;
  }

  void run() {
    for (;;) {
      auto batch = spans->take(options.max_batch_spans, options.flush_interval);
      if (batch.empty()) {
        if (spans->closed()) return;
        continue;
      }
      // Stopping while the collector fails: drop the rest at once rather
      // than wait out one more timeout per batch.
      if (failing && spans->closed()) {
        spans->count(span_outcome::dropped, batch.size());
        continue;
      }
      export_batch(batch);
    }
  }
};

result<std::unique_ptr<otlp_exporter>> otlp_exporter::start(exporter_options options,
                                                            std::shared_ptr<tracer> spans,
                                                            otlp_resource resource) {
  auto url = client::parse_server_url(options.endpoint);
  if (!url.ok()) {
    return status{status_code::invalid_argument,
                  fmt::format("--otlp-endpoint: {}", url.error().message())};
  }
  client::http_client_options http_options;
  http_options.ca_file = options.ca_file;
  http_options.timeout = options.timeout;
  client::http_client http{url.value(), http_options};
  auto state = std::make_unique<impl>(
      impl{std::move(options), std::move(spans), std::move(resource), std::move(http), false});
  // The constructor is private, so make_unique cannot reach it.
  return std::unique_ptr<otlp_exporter>(new otlp_exporter(std::move(state)));
}

otlp_exporter::otlp_exporter(std::unique_ptr<impl> state)
    : impl_(std::move(state)), thread_([this] { impl_->run(); }) {}

otlp_exporter::~otlp_exporter() {
  impl_->spans->close();
  thread_.join();
}

}  // namespace billing::observability::otlp
