#include "test_server.hpp"

#include <doctest/doctest.h>

#include <stdexcept>

namespace billing::gateway::testing {

using message = billing::v1::SendMetricsRequest;

later_thread::later_thread()
    : worker_([this] {
        std::unique_lock lock(mutex_);
        for (;;) {
          if (tasks_.empty()) {
            if (stopping_) return;
            wake_.wait(lock);
            continue;
          }
          const auto due = tasks_.begin()->first;
          if (!stopping_ && std::chrono::steady_clock::now() < due) {
            wake_.wait_until(lock, due);
            continue;
          }
          auto task = std::move(tasks_.begin()->second);
          tasks_.erase(tasks_.begin());
          lock.unlock();
          task();
          lock.lock();
        }
      }) {}

later_thread::~later_thread() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

void later_thread::run_after(std::chrono::milliseconds delay, std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    tasks_.emplace(std::chrono::steady_clock::now() + delay, std::move(task));
  }
  wake_.notify_all();
}

server_options test_options() {
  server_options options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.io_threads = 2;
  options.max_body_bytes = 64 * 1024;
  options.header_timeout = std::chrono::seconds{3};
  options.idle_timeout = std::chrono::seconds{3};
  options.transfer_timeout = std::chrono::seconds{3};
  return options;
}

message slow_request(std::chrono::milliseconds delay) {
  message request;
  request.set_instance_id("slow");
  request.mutable_metrics()->set_cpu_time_nanos(static_cast<uint64_t>(delay.count()));
  return request;
}

namespace {

connect_router make_test_router(later_thread& later) {
  connect_router router;
  router.add_unary<message, message>(
      echo_path, [](const call_context&, message request, responder<message> respond) {
        respond(std::move(request));
      });
  router.add_unary<message, message>(
      slow_echo_path, [&later](const call_context&, message request, responder<message> respond) {
        const std::chrono::milliseconds delay{request.metrics().cpu_time_nanos()};
        later.run_after(delay, [request = std::move(request), respond = std::move(respond)] {
          respond(request);
        });
      });
  router.add_unary<message, message>(
      fail_path, [](const call_context&, message request, responder<message> respond) {
        respond(status{status_code::not_found, "no customer " + request.metrics().customer_id()});
      });
  router.add_unary<message, message>(
      context_path, [](const call_context& context, message, responder<message> respond) {
        message answer;
        answer.set_instance_id(context.peer);
        answer.mutable_metrics()->set_vm_id(context.header("x-probe"));
        answer.mutable_metrics()->set_region(context.wire_codec == codec::json ? "json" : "proto");
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            context.deadline - std::chrono::steady_clock::now());
        answer.mutable_metrics()->set_cpu_time_nanos(static_cast<uint64_t>(left.count()));
        respond(std::move(answer));
      });
  router.add_unary<message, message>(drop_path,
                                     [](const call_context&, message, responder<message>) {});
  router.add_unary<message, message>(throw_path,
                                     [](const call_context&, message, responder<message>) {
                                       throw std::runtime_error("handler bug");
                                     });
  router.add_unary<message, message>(big_path,
                                     [](const call_context&, message, responder<message> respond) {
                                       message answer;
                                       for (int i = 0; i < 2048; ++i)
                                         answer.mutable_instance_id()->append("metald-");
                                       respond(std::move(answer));
                                     });
  router.add_unary<message, message>(
      answer_twice_path, [](const call_context&, message request, responder<message> respond) {
        respond(request);
        respond(status{status_code::internal, "second answer"});
      });
  router.add_get("/healthz", [] { return http_reply{200, "text/plain; charset=utf-8", "ok\n"}; });
  return router;
}

}  // namespace

test_server::test_server(server_options options)
    : server_(std::move(options), make_test_router(later_)) {
  auto started = server_.start();
  if (!started.ok()) FAIL("cannot start the test server: " << started.error().message());
  address_ = started.value();
}

}  // namespace billing::gateway::testing
