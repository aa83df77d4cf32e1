// The streaming wire format and the stream channel, without sockets.
#include "gateway/connect_stream_codec.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "gateway/connect_call.hpp"
#include "gateway/connect_codec.hpp"
#include "gateway/connect_stream.hpp"

namespace billing::gateway {
namespace {

using namespace std::literals;

const auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours{1};

server_options small_limits() {
  server_options options;
  options.max_body_bytes = 1024;
  return options;
}

result<stream_call_plan> plan(std::map<std::string, std::string> headers, std::string body) {
  return plan_stream_call(small_limits(), codec::proto, std::move(headers), std::move(body),
                          "127.0.0.1:1", now);
}

}  // namespace

TEST_CASE("envelopes: flags byte, 4-byte big-endian length, payload") {
  CHECK(encode_envelope(0, "abc") == "\x00\x00\x00\x00\x03"s + "abc");
  CHECK(encode_envelope(envelope_end_stream, "{}") == "\x02\x00\x00\x00\x02{}"s);
  const std::string big(0x010203, 'x');
  CHECK(encode_envelope(envelope_compressed, big).substr(0, 5) == "\x01\x00\x01\x02\x03"s);

  std::string_view two =
      "\x00\x00\x00\x00\x01"
      "a"
      "\x02\x00\x00\x00\x02{}"sv;
  auto first = take_envelope(two, 100);
  REQUIRE(first.ok());
  CHECK(first->flags == 0);
  CHECK(first->payload == "a");
  auto second = take_envelope(two, 100);
  REQUIRE(second.ok());
  CHECK(second->flags == envelope_end_stream);
  CHECK(second->payload == "{}");
  CHECK(two.empty());
}

TEST_CASE("bad envelopes are Connect errors") {
  auto code_of = [](std::string_view body) {
    auto parsed = parse_request_envelope(body, 16);
    return parsed.ok() ? status_code::ok : parsed.error().code();
  };
  CHECK(code_of("\x00\x00\x00\x00\x02hi"sv) == status_code::ok);
  CHECK(code_of("\x00\x00\x00\x00\x00"sv) == status_code::ok);  // an empty message
  CHECK(code_of("") == status_code::invalid_argument);
  CHECK(code_of("\x00\x00\x00"sv) == status_code::invalid_argument);            // short prefix
  CHECK(code_of("\x00\x00\x00\x00\x05hi"sv) == status_code::invalid_argument);  // truncated
  CHECK(code_of("\x00\x00\x00\x00\x01hi"sv) == status_code::invalid_argument);  // trailing
  CHECK(code_of("\x02\x00\x00\x00\x02{}"sv) == status_code::invalid_argument);  // end-stream
  CHECK(code_of("\x80\x00\x00\x00\x01x"sv) == status_code::invalid_argument);   // unknown flag
  CHECK(code_of("\x00\x00\x00\x00\x11"s + std::string(17, 'x')) == status_code::resource_exhausted);
  CHECK(code_of("\x00\xff\xff\xff\xff"sv) == status_code::resource_exhausted);
}

TEST_CASE("the end-of-stream message is {} or an error object") {
  CHECK(end_stream_json(status::ok_status()) == "{}");
  CHECK(end_stream_json(status{status_code::not_found, "no \"x\""}) ==
        R"({"error":{"code":"not_found","message":"no \"x\""}})");
  CHECK(end_stream_json(status{status_code::unavailable, ""}) ==
        R"({"error":{"code":"unavailable"}})");
}

TEST_CASE("streaming content types are the connect+ ones only") {
  CHECK(codec_for_stream_content_type("application/connect+proto") == codec::proto);
  CHECK(codec_for_stream_content_type("application/connect+json") == codec::json);
  CHECK(codec_for_stream_content_type("Application/Connect+JSON; charset=utf-8") == codec::json);
  CHECK_FALSE(codec_for_stream_content_type("application/proto"));
  CHECK_FALSE(codec_for_stream_content_type("application/json"));
  CHECK_FALSE(codec_for_stream_content_type("application/connect+json; charset=latin1"));
  CHECK_FALSE(codec_for_content_type("application/connect+proto"));
  CHECK(stream_content_type_for(codec::json) == "application/connect+json");
  CHECK(stream_content_type_for(codec::proto) == "application/connect+proto");
}

TEST_CASE("planning a streaming call: envelope, compression and headers") {
  SUBCASE("a plain envelope") {
    auto planned = plan({{"connect-timeout-ms", "250"}, {"connect-accept-encoding", "gzip"}},
                        encode_envelope(0, "msg"));
    REQUIRE(planned.ok());
    CHECK(planned->message == "msg");
    CHECK(planned->gzip_messages);
    CHECK(planned->context.deadline == now + std::chrono::milliseconds{250});
  }
  SUBCASE("a gzip-compressed envelope") {
    auto compressed = gzip_compress("hello");
    REQUIRE(compressed.ok());
    auto planned = plan({{"connect-content-encoding", "gzip"}},
                        encode_envelope(envelope_compressed, compressed.value()));
    REQUIRE(planned.ok());
    CHECK(planned->message == "hello");
    CHECK_FALSE(planned->gzip_messages);
  }
  SUBCASE("compressed flag without an encoding") {
    auto planned = plan({}, encode_envelope(envelope_compressed, "x"));
    REQUIRE_FALSE(planned.ok());
    CHECK(planned.error().code() == status_code::invalid_argument);
  }
  SUBCASE("an unknown encoding") {
    auto planned = plan({{"connect-content-encoding", "br"}}, encode_envelope(0, "x"));
    REQUIRE_FALSE(planned.ok());
    CHECK(planned.error().code() == status_code::unimplemented);
  }
  SUBCASE("a gzip bomb") {
    auto bomb = gzip_compress(std::string(1 << 20, 'x'));
    REQUIRE(bomb.ok());
    auto planned = plan({{"connect-content-encoding", "gzip"}},
                        encode_envelope(envelope_compressed, bomb.value()));
    REQUIRE_FALSE(planned.ok());
    CHECK(planned.error().code() == status_code::resource_exhausted);
  }
  SUBCASE("bad timeout and protocol version") {
    CHECK(plan({{"connect-timeout-ms", "x"}}, encode_envelope(0, "")).error().code() ==
          status_code::invalid_argument);
    CHECK(plan({{"connect-protocol-version", "2"}}, encode_envelope(0, "")).error().code() ==
          status_code::invalid_argument);
    CHECK(plan({{"connect-timeout-ms", "0"}}, encode_envelope(0, "")).error().code() ==
          status_code::deadline_exceeded);
  }
}

TEST_CASE("a stream has no deadline unless the client sends one; unary calls keep theirs") {
  const std::string body = encode_envelope(0, "");
  auto open_ended = plan({}, body);
  REQUIRE(open_ended.ok());
  CHECK(open_ended->context.deadline == std::chrono::steady_clock::time_point::max());
  // A client's deadline is honoured well beyond the unary cap of 300 s.
  auto day = plan({{"connect-timeout-ms", "86400000"}}, body);
  REQUIRE(day.ok());
  CHECK(day->context.deadline == now + std::chrono::hours{24});
  auto unary = plan_unary_call(small_limits(), codec::proto, {{"connect-timeout-ms", "86400000"}},
                               "", "127.0.0.1:1", now);
  REQUIRE(unary.ok());
  CHECK(unary->context.deadline == now + small_limits().max_timeout);
}

TEST_CASE("stream channel: order, backpressure, drain and close callbacks") {
  int wakes = 0;
  stream_channel::settings settings;
  settings.max_buffered_bytes = 20;
  stream_channel channel(settings, [&wakes] { ++wakes; });
  int closed = 0;
  int drained = 0;
  channel.set_on_closed([&closed] { ++closed; });
  channel.set_on_drained([&drained] { ++drained; });

  // The writer finds nothing and waits; the next message wakes it once.
  CHECK(channel.take().frames.empty());
  CHECK(channel.send("aaaaaaaaaa") == stream_send_result::queued);  // 15 bytes framed
  CHECK(wakes == 1);
  CHECK(channel.send("b") == stream_send_result::full);  // 15 + 6 > 20
  CHECK(wakes == 1);
  auto taken = channel.take();
  REQUIRE(taken.frames.size() == 1);
  CHECK(taken.frames[0] == encode_envelope(0, "aaaaaaaaaa"));
  CHECK(channel.buffered_bytes() == 15);  // handed to the writer, not yet written
  CHECK(channel.send("b") == stream_send_result::full);
  channel.written(15);
  CHECK(drained == 1);
  CHECK(channel.send("b") == stream_send_result::queued);
  CHECK(channel.send("c") == stream_send_result::queued);
  channel.finish(status{status_code::not_found, "gone"});
  channel.finish(status::ok_status());  // ignored: the first finish counts
  CHECK(closed == 1);
  CHECK(channel.closed());
  CHECK(channel.send("d") == stream_send_result::closed);
  taken = channel.take();
  REQUIRE(taken.frames.size() == 2);
  CHECK(taken.frames[1] == encode_envelope(0, "c"));
  REQUIRE(taken.end_frame);
  CHECK(*taken.end_frame ==
        encode_envelope(envelope_end_stream, R"({"error":{"code":"not_found","message":"gone"}})"));
  CHECK_FALSE(channel.take().end_frame);  // handed over once

  // A callback registered after the end runs at once.
  int late = 0;
  channel.set_on_closed([&late] { ++late; });
  CHECK(late == 1);
  channel.abort(status{status_code::canceled, "gone"});
  CHECK(closed == 1);
}

TEST_CASE("stream channel: abort drops the queue, reports its code once, frees callbacks") {
  stream_channel channel({}, nullptr);
  std::vector<status_code> ends;
  channel.set_end_observer([&ends](status_code code) { ends.push_back(code); });
  auto captured = std::make_shared<int>(0);
  channel.set_on_drained([captured] {});
  int closed = 0;
  channel.set_on_closed([&closed] { ++closed; });
  CHECK(channel.send("x") == stream_send_result::queued);
  channel.abort(status{status_code::canceled, "client left"});
  channel.abort(status{status_code::unavailable, "again"});
  channel.finish(status::ok_status());
  CHECK(closed == 1);
  CHECK(ends == std::vector{status_code::canceled});
  CHECK(channel.buffered_bytes() == 0);
  auto taken = channel.take();
  CHECK(taken.frames.empty());
  CHECK_FALSE(taken.end_frame);
  CHECK(captured.use_count() == 1);  // the channel let go of on_drained
}

TEST_CASE("stream channel: large messages are gzipped when the client accepts it") {
  stream_channel::settings settings;
  settings.gzip_messages = true;
  settings.gzip_min_bytes = 100;
  stream_channel channel(settings, nullptr);
  const std::string big(1000, 'z');
  REQUIRE(channel.send(big) == stream_send_result::queued);
  REQUIRE(channel.send("small") == stream_send_result::queued);
  auto taken = channel.take();
  REQUIRE(taken.frames.size() == 2);
  std::string_view first = taken.frames[0];
  auto parsed = take_envelope(first, 1 << 20);
  REQUIRE(parsed.ok());
  CHECK(parsed->flags == envelope_compressed);
  CHECK(gunzip_bounded(parsed->payload, 1 << 20).value() == big);
  CHECK(taken.frames[1] == encode_envelope(0, "small"));
}

}  // namespace billing::gateway
