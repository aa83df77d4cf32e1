// Test code, not product code: a connect_server whose only route is a
// scripted billing.v1.BillingQueryService/StreamLiveUsage, so the e2e suite
// can prove wire compatibility of the gateway's server streaming with the
// stock Connect client before billingd binds the real procedure.
//
//   customer_id "fail": one update, then invalid_argument
//   customer_id "slow": no updates; the stream stays open until its deadline
//                       (at most 3 s: stream_max_timeout, so a test sees the
//                       server's deadline and not its own timer), the
//                       client leaving or SIGTERM
//   any other:          updates with sequence 1, 2, 3, then ok
//
// Usage: gateway_stream_fixture [--listen=HOST:PORT] [--tls-cert-file=PEM
// --tls-key-file=PEM] (HTTPS, to stream over TLS). Logs "listening on
// HOST:PORT" and "stream opened|closed: CUSTOMER" on stderr; SIGTERM or SIGINT
// stops the server (draining for up to 5 s) and exits 0.
#include <google/protobuf/util/time_util.h>

#include <csignal>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "billing/v1/billing.pb.h"
#include "gateway/connect_server.hpp"

namespace {

using billing::status;
using billing::status_code;
using billing::gateway::call_context;
using billing::gateway::stream_sink;
using billing::v1::StreamLiveUsageRequest;
using billing::v1::UsageUpdate;
using update_sink = std::shared_ptr<stream_sink<UsageUpdate>>;

constexpr std::string_view path = "/billing.v1.BillingQueryService/StreamLiveUsage";
constexpr std::chrono::seconds drain_time{5};
constexpr std::chrono::seconds longest_stream{3};

void log_line(const std::string& line) {
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

UsageUpdate update_for(const std::string& customer_id, uint64_t sequence) {
  UsageUpdate update;
  update.set_customer_id(customer_id);
  update.set_snapshot(sequence == 1);
  update.set_sequence(sequence);
  update.mutable_delta()->set_cpu_time_nanos(1'000'000'000 * sequence);
  update.mutable_month_to_date()->set_cpu_time_nanos(1'000'000'000 * sequence);
  update.mutable_month_to_date()->set_window_count(sequence);
  *update.mutable_as_of() = google::protobuf::util::TimeUtil::SecondsToTimestamp(1'795'000'000);
  return update;
}

// The "slow" streams' sinks, kept until the process ends.
struct held_streams {
  std::mutex mutex;
  std::vector<update_sink> sinks;
};

billing::gateway::connect_router make_router(held_streams& held) {
  billing::gateway::connect_router router;
  router.add_server_stream<StreamLiveUsageRequest, UsageUpdate>(
      std::string(path),
      [&held](const call_context&, StreamLiveUsageRequest request, update_sink sink) {
        const std::string customer = request.customer_id();
        log_line("stream opened: " + customer);
        sink->set_on_closed([customer] { log_line("stream closed: " + customer); });
        if (customer == "slow") {
          std::lock_guard lock(held.mutex);
          held.sinks.push_back(std::move(sink));
          return;
        }
        if (customer == "fail") {
          sink->send(update_for(customer, 1));
          sink->finish(status{status_code::invalid_argument, "customer fail cannot stream"});
          return;
        }
        for (uint64_t sequence = 1; sequence <= 3; ++sequence) {
          sink->send(update_for(customer, sequence));
        }
        sink->finish(status::ok_status());
      });
  return router;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string tls_cert_file;
  std::string tls_key_file;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const std::string_view listen_flag = "--listen=";
    const std::string_view cert_flag = "--tls-cert-file=";
    const std::string_view key_flag = "--tls-key-file=";
    if (arg.starts_with(cert_flag)) {
      tls_cert_file = std::string(arg.substr(cert_flag.size()));
      continue;
    }
    if (arg.starts_with(key_flag)) {
      tls_key_file = std::string(arg.substr(key_flag.size()));
      continue;
    }
    const size_t colon = arg.rfind(':');
    if (!arg.starts_with(listen_flag) || colon == std::string_view::npos) {
      std::fprintf(stderr,
                   "usage: %s [--listen=HOST:PORT] [--tls-cert-file=PEM --tls-key-file=PEM]\n",
                   argv[0]);
      return 2;
    }
    host = std::string(arg.substr(listen_flag.size(), colon - listen_flag.size()));
    port = static_cast<uint16_t>(std::stoul(std::string(arg.substr(colon + 1))));
  }

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // before any thread starts

  held_streams held;
  billing::gateway::server_options options;
  options.host = host;
  options.port = port;
  options.io_threads = 2;
  options.stream_default_timeout = longest_stream;
  options.stream_max_timeout = longest_stream;
  options.tls_cert_file = tls_cert_file;
  options.tls_key_file = tls_key_file;
  billing::gateway::connect_server server(options, make_router(held));
  auto bound = server.start();
  if (!bound.ok()) {
    log_line("cannot listen: " + bound.error().message());
    return 1;
  }
  log_line("listening on " + bound.value());
  int received = 0;
  while (sigwait(&stop_signals, &received) != 0) {
  }
  log_line("stopping");
  server.stop(drain_time);
  std::lock_guard lock(held.mutex);
  held.sinks.clear();
  log_line("stopped");
  return 0;
}
