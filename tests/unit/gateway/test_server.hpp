// A connect_server on 127.0.0.1 with a port picked by the OS and a router of
// test procedures, shared by the server tests.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "billing/v1/billing.pb.h"
#include "gateway/connect_server.hpp"

namespace billing::gateway::testing {

// Runs tasks on its own thread after a delay, the way an actor answers a call
// from another thread some time later. Tasks still pending at destruction run
// then, so every responder is eventually called.
class later_thread {
 public:
  later_thread();
  ~later_thread();
  later_thread(const later_thread&) = delete;
  later_thread& operator=(const later_thread&) = delete;

  void run_after(std::chrono::milliseconds delay, std::function<void()> task);

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread worker_;  // last: starts after the members it uses exist
};

// The procedures, all taking and returning billing.v1.SendMetricsRequest.
inline constexpr const char* echo_path = "/test.v1.TestService/Echo";
// Answers from later_thread after metrics.cpu_time_nanos milliseconds.
inline constexpr const char* slow_echo_path = "/test.v1.TestService/SlowEcho";
// Fails with not_found.
inline constexpr const char* fail_path = "/test.v1.TestService/Fail";
// Describes its call_context: instance_id = peer, metrics.vm_id = header
// x-probe, metrics.region = codec name, metrics.cpu_time_nanos = ms left
// until the deadline.
inline constexpr const char* context_path = "/test.v1.TestService/Context";
// Drops its responder without calling it.
inline constexpr const char* drop_path = "/test.v1.TestService/Drop";
// Throws instead of answering.
inline constexpr const char* throw_path = "/test.v1.TestService/Throw";
// Answers with instance_id holding 20 KiB of text (compressible).
inline constexpr const char* big_path = "/test.v1.TestService/Big";
// Answers twice: first with the request echoed, then with an error.
inline constexpr const char* answer_twice_path = "/test.v1.TestService/AnswerTwice";

server_options test_options();

// A request for slow_echo_path that is answered after `delay`.
billing::v1::SendMetricsRequest slow_request(std::chrono::milliseconds delay);

class test_server {
 public:
  explicit test_server(server_options options = test_options());

  const std::string& address() const { return address_; }
  connect_server& server() { return server_; }

 private:
  later_thread later_;  // first: outlives the server, so answers may arrive after it stops
  connect_server server_;
  std::string address_;
};

}  // namespace billing::gateway::testing
