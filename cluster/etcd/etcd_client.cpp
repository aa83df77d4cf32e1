#include "cluster/etcd/etcd_client.hpp"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include "client/http_client.hpp"
#include "cluster/etcd/gateway.pb.h"

namespace billing::cluster::etcd {
namespace {

namespace pb = google::protobuf;

std::string to_json(const pb::Message& message) {
  std::string json;
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;  // etcd's gateway answers with them too
  // Printing a message we built cannot fail; "{}" would be refused by etcd.
  (void)pb::util::MessageToJsonString(message, &json, options);
  return json;
}

status from_json(const std::string& json, pb::Message& message) {
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // fields of etcd's API we do not mirror
  const auto parsed = pb::util::JsonStringToMessage(json, &message, options);
  if (!parsed.ok()) {
    return {status_code::unavailable,
            fmt::format("etcd answered JSON that is not a {}: {}", message.GetTypeName(),
                        std::string(parsed.message()))};
  }
  return status::ok_status();
}

template <class Message>
result<Message> parse(const result<std::string>& body) {
  if (!body.ok()) return body.error();
  Message message;
  if (status parsed = from_json(body.value(), message); !parsed.ok()) return parsed;
  return message;
}

etcd_kv to_kv(const KeyValue& kv, size_t prefix_size) {
  etcd_kv out;
  out.key = kv.key().size() >= prefix_size ? kv.key().substr(prefix_size) : kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.version = kv.version();
  out.lease = kv.lease();
  return out;
}

}  // namespace

std::string prefix_end(std::string key_prefix) {
  // The smallest key greater than every key with this prefix: the prefix with
  // its last byte below 0xff incremented (and what follows it dropped).
  while (!key_prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(key_prefix.back());
    if (last < 0xff) {
      ++last;
      return key_prefix;
    }
    key_prefix.pop_back();
  }
  return std::string(1, '\0');  // etcd: every key
}

struct etcd_client::endpoint {
  std::string url;
  client::http_client http;
};

etcd_client::etcd_client(etcd_settings settings) : settings_(std::move(settings)) {}
etcd_client::~etcd_client() = default;

result<std::unique_ptr<etcd_client>> etcd_client::make(etcd_settings settings) {
  if (settings.endpoints.empty()) {
    return status{status_code::invalid_argument, "no etcd endpoint given"};
  }
  if (settings.cert_file.empty() != settings.key_file.empty()) {
    return status{status_code::invalid_argument,
                  "an etcd client certificate needs both its certificate and its key file"};
  }
  std::unique_ptr<etcd_client> made{new etcd_client(settings)};
  for (const auto& url : settings.endpoints) {
    auto server = client::parse_server_url(url);
    if (!server.ok()) {
      return status{status_code::invalid_argument,
                    fmt::format("etcd endpoint {}", server.error().message())};
    }
    client::http_client_options options;
    options.timeout = settings.timeout;
    options.ca_file = settings.ca_file;
    options.cert_file = settings.cert_file;
    options.key_file = settings.key_file;
    made->endpoints_.push_back(std::make_unique<endpoint>(
        endpoint{url, client::http_client(std::move(server).value(), std::move(options))}));
  }
  return made;
}

std::string etcd_client::current_endpoint() const {
  std::lock_guard lock(mutex_);
  return endpoints_[current_]->url;
}

result<std::string> etcd_client::call(const char* path, std::string json) {
  std::lock_guard lock(mutex_);
  std::string failures;
  for (size_t tried = 0; tried < endpoints_.size(); ++tried) {
    auto& target = *endpoints_[(current_ + tried) % endpoints_.size()];
    client::http_answer answer;
    client::transport_error failure;
    if (!target.http.post(path, {{"content-type", "application/json"}}, json, answer, failure)) {
      failures +=
          fmt::format("{}{}: {}", failures.empty() ? "" : "; ", target.url, failure.message);
      continue;
    }
    current_ = (current_ + tried) % endpoints_.size();
    if (answer.status == 200) return std::move(answer.body);
    // A gRPC error through the gateway: {"error": "...", "code": N, "message": "..."}.
    return status{status_code::unavailable, fmt::format("etcd {} answered {} to {}: {}", target.url,
                                                        answer.status, path, answer.body)};
  }
  return status{status_code::unavailable, fmt::format("etcd unreachable: {}", failures)};
}

result<etcd_range> etcd_client::get(const std::string& key) {
  RangeRequest request;
  request.set_key(settings_.prefix + key);
  auto response = parse<RangeResponse>(call("/v3/kv/range", to_json(request)));
  if (!response.ok()) return response.error();
  etcd_range range;
  range.revision = response.value().header().revision();
  for (const auto& kv : response.value().kvs())
    range.kvs.push_back(to_kv(kv, settings_.prefix.size()));
  return range;
}

result<etcd_range> etcd_client::get_prefix(const std::string& key_prefix) {
  RangeRequest request;
  request.set_key(settings_.prefix + key_prefix);
  request.set_range_end(prefix_end(settings_.prefix + key_prefix));
  auto response = parse<RangeResponse>(call("/v3/kv/range", to_json(request)));
  if (!response.ok()) return response.error();
  etcd_range range;
  range.revision = response.value().header().revision();
  for (const auto& kv : response.value().kvs())
    range.kvs.push_back(to_kv(kv, settings_.prefix.size()));
  return range;
}

result<int64_t> etcd_client::put(const std::string& key, const std::string& value, int64_t lease) {
  PutRequest request;
  request.set_key(settings_.prefix + key);
  request.set_value(value);
  request.set_lease(lease);
  auto response = parse<PutResponse>(call("/v3/kv/put", to_json(request)));
  if (!response.ok()) return response.error();
  return response.value().header().revision();
}

status etcd_client::erase(const std::string& key) {
  DeleteRangeRequest request;
  request.set_key(settings_.prefix + key);
  auto response = parse<DeleteRangeResponse>(call("/v3/kv/deleterange", to_json(request)));
  return response.ok() ? status::ok_status() : response.error();
}

result<bool> etcd_client::put_all_if(const std::vector<cas_put>& puts) {
  TxnRequest request;
  for (const auto& put : puts) {
    auto* compare = request.add_compare();
    compare->set_key(settings_.prefix + put.key);
    compare->set_target(Compare::MOD);
    compare->set_result(Compare::EQUAL);
    compare->set_mod_revision(put.expected_mod_revision);
    auto* op = request.add_success()->mutable_request_put();
    op->set_key(settings_.prefix + put.key);
    op->set_value(put.value);
    op->set_lease(put.lease);
  }
  auto response = parse<TxnResponse>(call("/v3/kv/txn", to_json(request)));
  if (!response.ok()) return response.error();
  return response.value().succeeded();
}

result<int64_t> etcd_client::grant_lease(int64_t ttl_seconds) {
  LeaseGrantRequest request;
  request.set_ttl(ttl_seconds);
  auto response = parse<LeaseGrantResponse>(call("/v3/lease/grant", to_json(request)));
  if (!response.ok()) return response.error();
  if (!response.value().error().empty() || response.value().id() == 0) {
    return status{status_code::unavailable,
                  fmt::format("etcd granted no lease: {}", response.value().error())};
  }
  return response.value().id();
}

result<int64_t> etcd_client::keep_alive(int64_t lease) {
  LeaseKeepAliveRequest request;
  request.set_id(lease);
  auto response = parse<LeaseKeepAliveStreamed>(call("/v3/lease/keepalive", to_json(request)));
  if (!response.ok()) return response.error();
  return response.value().result().ttl();  // omitted (0) when the lease is gone
}

status etcd_client::revoke_lease(int64_t lease) {
  LeaseRevokeRequest request;
  request.set_id(lease);
  auto response = call("/v3/lease/revoke", to_json(request));
  return response.ok() ? status::ok_status() : response.error();
}

}  // namespace billing::cluster::etcd
