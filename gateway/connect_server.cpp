#include "gateway/connect_server.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <algorithm>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "gateway/http_session.hpp"
#include "gateway/server_state.hpp"
#include "gateway/tls_material.hpp"

namespace billing::gateway {
namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace {

// Pause before accepting again after an accept error (e.g. out of file
// descriptors), so the acceptor does not spin.
constexpr std::chrono::milliseconds accept_retry_pause{50};
// After the final close is posted, how long stop() lets sessions unwind
// before stopping the io_context outright.
constexpr std::chrono::milliseconds unwind_time{1000};
// stop() polls the counters: it runs once per process lifetime, so a
// condition variable signalled from every completion is not worth it.
constexpr std::chrono::milliseconds drain_poll_interval{2};

std::string endpoint_text(const tcp::endpoint& endpoint) {
  std::string host = endpoint.address().to_string();
  if (endpoint.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(endpoint.port());
}

}  // namespace

struct connect_server::impl {
  enum class stage { created, running, stopped };

  impl(server_options options, connect_router router)
      : state(std::make_shared<server_state>(std::move(options), std::move(router))),
        io(static_cast<int>(std::max<uint32_t>(1, state->options.io_threads))),
        acceptor(net::make_strand(io)),
        accept_pause(acceptor.get_executor()) {}

  result<std::string> listen();
  void accept_next();
  void on_accept(error_code ec, tcp::socket socket);
  void run_io() noexcept;
  void close_acceptor();
  void wait_for_calls(std::chrono::milliseconds drain);
  void shut_down_io();

  std::shared_ptr<server_state> state;
  std::unique_ptr<tls_material> tls;  // null: plain HTTP
  net::io_context io;
  tcp::acceptor acceptor;  // on its own strand; closed only through it
  net::steady_timer accept_pause;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> keep_running;
  std::vector<std::thread> threads;
  std::mutex lifecycle_mutex;
  stage current_stage = stage::created;
};

result<std::string> connect_server::impl::listen() {
  const server_options& options = state->options;
  const std::string wanted = options.host + ":" + std::to_string(options.port);
  error_code ec;
  tcp::resolver resolver(io);
  const auto endpoints =
      resolver.resolve(options.host, std::to_string(options.port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return status{status_code::unavailable, "cannot resolve " + wanted + ": " + ec.message()};
  }
  const tcp::endpoint endpoint = *endpoints.begin();
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  tcp::endpoint bound;
  if (!ec) bound = acceptor.local_endpoint(ec);
  if (ec) {
    error_code ignored;
    acceptor.close(ignored);
    return status{status_code::unavailable, "cannot listen on " + wanted + ": " + ec.message()};
  }
  return endpoint_text(bound);
}

void connect_server::impl::accept_next() {
  acceptor.async_accept(net::make_strand(io), [this](error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void connect_server::impl::on_accept(error_code ec, tcp::socket socket) {
  if (!acceptor.is_open()) return;  // stop() closed it
  if (ec) {
    accept_pause.expires_after(accept_retry_pause);
    accept_pause.async_wait([this](error_code wait_ec) {
      if (!wait_ec && acceptor.is_open()) accept_next();
    });
    return;
  }
  error_code ignored;
  // Connect answers are small; do not let Nagle hold them back.
  socket.set_option(tcp::no_delay(true), ignored);
  try {
    std::make_shared<http_session>(std::move(socket), state, tls ? tls->current() : nullptr)
        ->start();
  } catch (...) {
    // Out of memory for one connection: drop it and keep serving the others.
  }
  accept_next();
}

void connect_server::impl::run_io() noexcept {
  for (;;) {
    try {
      io.run();
      return;
    } catch (...) {
      // A completion handler threw (the gateway catches what it expects, so
      // this is e.g. bad_alloc). Its connection is lost; the server goes on.
    }
  }
}

void connect_server::impl::close_acceptor() {
  std::promise<void> closed;
  net::post(acceptor.get_executor(), [this, &closed] {
    error_code ignored;
    acceptor.close(ignored);
    accept_pause.cancel(ignored);
    closed.set_value();
  });
  closed.get_future().wait();
}

void connect_server::impl::wait_for_calls(std::chrono::milliseconds drain) {
  for (const auto& session : state->live_sessions()) session->request_drain();
  const auto give_up_at = std::chrono::steady_clock::now() + drain;
  while ((state->in_flight.load() > 0 || state->unsettled_calls.load() > 0) &&
         std::chrono::steady_clock::now() < give_up_at) {
    std::this_thread::sleep_for(drain_poll_interval);
  }
}

void connect_server::impl::shut_down_io() {
  for (const auto& session : state->live_sessions()) session->request_close();
  keep_running.reset();
  const auto give_up_at = std::chrono::steady_clock::now() + unwind_time;
  while (state->session_count() > 0 && std::chrono::steady_clock::now() < give_up_at) {
    std::this_thread::sleep_for(drain_poll_interval);
  }
  io.stop();
  for (auto& thread : threads) {
    if (thread.joinable()) thread.join();
  }
  threads.clear();
  // From here on, responders must not post: the io_context may be destroyed.
  std::lock_guard lock(state->completion_mutex);
  state->completions_open = false;
}

void connect_router::add_get(std::string path, std::function<http_reply()> handler) {
  get_[std::move(path)] = std::move(handler);
}

void connect_router::add_get_prefix(std::string prefix, get_prefix_handler handler) {
  get_prefix_[std::move(prefix)] = std::move(handler);
}

const get_prefix_handler* connect_router::find_get_prefix(std::string_view path) const {
  const get_prefix_handler* found = nullptr;
  size_t longest = 0;
  for (const auto& [prefix, handler] : get_prefix_) {
    if (path.starts_with(prefix) && (found == nullptr || prefix.size() > longest)) {
      found = &handler;
      longest = prefix.size();
    }
  }
  return found;
}

connect_server::connect_server(server_options options, connect_router router)
    : impl_(std::make_unique<impl>(std::move(options), std::move(router))) {}

connect_server::~connect_server() {
  stop(std::chrono::milliseconds{0});
}

result<std::string> connect_server::start() {
  std::lock_guard lock(impl_->lifecycle_mutex);
  if (impl_->current_stage != impl::stage::created) {
    return status{status_code::failed_precondition, "the server was already started"};
  }
  auto tls = tls_material::load(impl_->state->options);
  if (!tls.ok()) return tls.error();
  impl_->tls = std::move(tls).value();
  auto bound = impl_->listen();
  if (!bound.ok()) return bound;
  try {
    impl_->keep_running.emplace(impl_->io.get_executor());
    impl_->accept_next();
    const uint32_t thread_count = std::max<uint32_t>(1, impl_->state->options.io_threads);
    for (uint32_t i = 0; i < thread_count; ++i) {
      impl_->threads.emplace_back([this] { impl_->run_io(); });
    }
  } catch (const std::exception& e) {
    impl_->io.stop();
    for (auto& thread : impl_->threads) thread.join();
    impl_->threads.clear();
    error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->current_stage = impl::stage::stopped;
    return status{status_code::unavailable, std::string("cannot start io threads: ") + e.what()};
  }
  impl_->current_stage = impl::stage::running;
  return bound;
}

void connect_server::stop(std::chrono::milliseconds drain) {
  std::lock_guard lock(impl_->lifecycle_mutex);
  const bool was_running = impl_->current_stage == impl::stage::running;
  impl_->current_stage = impl::stage::stopped;
  if (!was_running) return;
  impl_->state->draining = true;
  impl_->close_acceptor();
  impl_->wait_for_calls(drain);
  impl_->shut_down_io();
}

uint64_t connect_server::in_flight() const {
  return impl_->state->in_flight.load();
}

uint64_t connect_server::open_streams() const {
  return impl_->state->open_streams.load();
}

}  // namespace billing::gateway
