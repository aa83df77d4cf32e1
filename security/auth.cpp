#include "security/auth.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

namespace billing::security {
namespace {

constexpr std::string_view kBearerPrefix = "Bearer ";
constexpr std::string_view kInsecureName = "insecure-no-auth";
constexpr std::string_view kCertificatePrefix = "cert:";

// RFC 9110 11.1: the auth-scheme is case-insensitive ("bearer", "BEARER").
bool has_bearer_scheme(std::string_view header) {
  if (header.size() < kBearerPrefix.size()) return false;
  for (size_t i = 0; i < kBearerPrefix.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(header[i]) != lower(kBearerPrefix[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

// Splits on runs of spaces or tabs.
std::vector<std::string_view> fields_of(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

std::optional<digest> parse_hex_digest(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  digest out{};
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < out.size(); ++i) {
    const int high = nibble(hex[2 * i]);
    const int low = nibble(hex[2 * i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out[i] = static_cast<uint8_t>(high * 16 + low);
  }
  return out;
}

// Adds one scope to `who`; false when it is not a known scope.
bool add_scope(principal& who, std::string_view scope) {
  if (scope == "ingest") {
    who.ingest_any_region = true;
  } else if (scope.starts_with("ingest:") && scope.size() > 7) {
    who.ingest_regions.emplace(scope.substr(7));
  } else if (scope.starts_with("customer:") && scope.size() > 9) {
    who.customers.emplace(scope.substr(9));
  } else if (scope == "admin") {
    who.admin = true;
  } else {
    return false;
  }
  return true;
}

status invalid_line(size_t line_number, std::string_view why) {
  return status{status_code::invalid_argument,
                fmt::format("token file line {}: {}", line_number, why)};
}

// The scopes field of a line into `who`.
status add_scopes(principal& who, std::string_view scopes, size_t line_number) {
  while (!scopes.empty()) {
    const auto comma = scopes.find(',');
    const std::string_view scope = scopes.substr(0, comma);
    if (!add_scope(who, scope)) {
      return invalid_line(
          line_number,
          fmt::format("unknown scope '{}' (known: ingest, ingest:<region>, customer:<id>, admin)",
                      scope));
    }
    scopes = comma == std::string_view::npos ? std::string_view{} : scopes.substr(comma + 1);
  }
  return status::ok_status();
}

// "cert:<identity> <scopes> [name]"; the name defaults to the identity.
result<principal> parse_certificate_line(std::string_view line, size_t line_number) {
  const auto fields = fields_of(line);
  if (fields.size() < 2 || fields.size() > 3 || fields[0].size() == kCertificatePrefix.size()) {
    return invalid_line(line_number, "expected 'cert:<identity> <scope>[,<scope>...] [name]'");
  }
  principal who;
  who.from_certificate = true;
  who.name =
      std::string{fields.size() == 3 ? fields[2] : fields[0].substr(kCertificatePrefix.size())};
  if (status added = add_scopes(who, fields[1], line_number); !added.ok()) return added;
  return who;
}

result<principal> parse_line(std::string_view line, size_t line_number) {
  const auto fields = fields_of(line);
  auto invalid = [&](std::string_view why) { return invalid_line(line_number, why); };
  if (fields.size() < 2 || fields.size() > 3) {
    return invalid("expected '<sha256-hex> <scope>[,<scope>...] [name]'");
  }
  if (!parse_hex_digest(fields[0])) return invalid("the digest must be 64 hex digits");
  principal who;
  who.name = fields.size() == 3 ? std::string{fields[2]} : std::string{fields[0].substr(0, 12)};
  if (status added = add_scopes(who, fields[1], line_number); !added.ok()) return added;
  return who;
}

}  // namespace

digest sha256(std::string_view data) {
  // Fetched once: OpenSSL 3 looks the algorithm up in its providers on every
  // one-shot SHA256() call, which cost more than hashing an audit entry
  // (ingest hashes one per customer part). Immutable once fetched.
  static const std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> algorithm{
      EVP_MD_fetch(nullptr, "SHA256", nullptr), &EVP_MD_free};
  const EVP_MD* md = algorithm != nullptr ? algorithm.get() : EVP_sha256();
  digest out{};
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &size, md, nullptr) != 1) {
    // Cannot happen with the default provider loaded; never hand out a digest
    // that was not computed.
    std::abort();
  }
  return out;
}

std::string to_hex(const digest& value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(value.size() * 2);
  for (uint8_t byte : value) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 0xf]);
  }
  return hex;
}

access_requirement require_ingest(std::vector<std::string> regions) {
  return {access_requirement::kind::ingest, std::move(regions), {}};
}

access_requirement require_customer(std::string customer_id) {
  return {access_requirement::kind::customer, {}, std::move(customer_id)};
}

access_requirement require_admin() {
  return {access_requirement::kind::admin, {}, {}};
}

status check_scope(const principal& who, const access_requirement& need) {
  if (who.unrestricted) return status::ok_status();
  auto denied = [&](std::string why) {
    return status{status_code::permission_denied,
                  fmt::format("{} '{}' {}", who.from_certificate ? "client certificate" : "token",
                              who.name, std::move(why))};
  };
  switch (need.needed) {
    case access_requirement::kind::ingest:
      if (who.ingest_any_region) return status::ok_status();
      if (who.ingest_regions.empty()) return denied("has no ingest scope");
      for (const auto& region : need.regions) {
        if (!who.ingest_regions.contains(region)) {
          return denied(fmt::format("may not send metrics of region '{}'", region));
        }
      }
      return status::ok_status();
    case access_requirement::kind::customer:
      if (who.admin || who.customers.contains(need.customer_id)) return status::ok_status();
      return denied(fmt::format("may not access customer '{}'", need.customer_id));
    case access_requirement::kind::admin:
      if (who.admin) return status::ok_status();
      return denied("has no admin scope");
  }
  return denied("does not meet an unknown requirement");
}

result<token_table> token_table::parse(std::string_view text) {
  token_table table;
  size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const auto newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    if (const auto hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    line = trim(line);
    if (line.empty()) continue;
    if (line.starts_with(kCertificatePrefix)) {
      auto who = parse_certificate_line(line, line_number);
      if (!who.ok()) return who.error();
      std::string identity{fields_of(line)[0].substr(kCertificatePrefix.size())};
      if (table.certificates_.contains(identity)) {
        return status{status_code::invalid_argument,
                      fmt::format("token file line {}: certificate identity '{}' is mapped twice",
                                  line_number, identity)};
      }
      table.certificates_.emplace(std::move(identity), std::move(who).value());
      continue;
    }
    auto who = parse_line(line, line_number);
    if (!who.ok()) return who.error();
    table.entries_.push_back({*parse_hex_digest(fields_of(line)[0]), std::move(who).value()});
  }
  return table;
}

result<token_table> token_table::load_file(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    return status{status_code::invalid_argument, fmt::format("cannot read token file {}", path)};
  }
  std::ostringstream text;
  text << file.rdbuf();
  auto table = parse(text.str());
  if (!table.ok()) {
    return status{status_code::invalid_argument,
                  fmt::format("{}: {}", path, table.error().message())};
  }
  return table;
}

std::optional<principal> token_table::find(std::string_view token) const {
  const digest presented = sha256(token);
  const entry* match = nullptr;
  for (const auto& candidate : entries_) {
    const bool same =
        CRYPTO_memcmp(presented.data(), candidate.token_digest.data(), presented.size()) == 0;
    if (same && match == nullptr) match = &candidate;
  }
  if (match == nullptr) return std::nullopt;
  return match->who;
}

std::optional<principal> token_table::find_certificate(std::string_view identity) const {
  const auto found = certificates_.find(identity);
  if (found == certificates_.end()) return std::nullopt;
  return found->second;
}

result<principal> authenticator::authorize(std::string_view authorization_header,
                                           std::string_view client_identity,
                                           const access_requirement& need) const {
  if (insecure_ || !authorization_header.empty() || client_identity.empty()) {
    auto by_token = authenticate(authorization_header);
    if (!by_token.ok()) {
      if (authorization_header.empty() && !insecure_) {
        return status{status_code::unauthenticated,
                      "missing credentials: send 'Authorization: Bearer <token>' or a client "
                      "certificate"};
      }
      return by_token.error();
    }
    status allowed = check_scope(by_token.value(), need);
    if (allowed.ok() || client_identity.empty()) {
      if (!allowed.ok()) return allowed;
      return by_token;
    }
    // The token does not cover the call; the certificate may.
    auto by_certificate = tokens_.find_certificate(client_identity);
    if (by_certificate && check_scope(*by_certificate, need).ok())
      return std::move(*by_certificate);
    return allowed;
  }
  auto by_certificate = tokens_.find_certificate(client_identity);
  if (!by_certificate) {
    return status{
        status_code::permission_denied,
        fmt::format("client certificate '{}' is not mapped to any scope", client_identity)};
  }
  if (status allowed = check_scope(*by_certificate, need); !allowed.ok()) return allowed;
  return std::move(*by_certificate);
}

authenticator authenticator::with_tokens(token_table tokens) {
  authenticator auth;
  auth.tokens_ = std::move(tokens);
  return auth;
}

authenticator authenticator::insecure_no_auth() {
  authenticator auth;
  auth.insecure_ = true;
  return auth;
}

result<principal> authenticator::authenticate(std::string_view authorization_header) const {
  if (insecure_) {
    principal everyone;
    everyone.name = std::string{kInsecureName};
    everyone.unrestricted = true;
    return everyone;
  }
  if (authorization_header.empty()) {
    return status{status_code::unauthenticated,
                  "missing credentials: send 'Authorization: Bearer <token>'"};
  }
  if (!has_bearer_scheme(authorization_header)) {
    return status{status_code::unauthenticated,
                  "unsupported Authorization scheme: send 'Authorization: Bearer <token>'"};
  }
  const std::string_view token = trim(authorization_header.substr(kBearerPrefix.size()));
  if (token.empty()) return status{status_code::unauthenticated, "empty bearer token"};
  auto who = tokens_.find(token);
  if (!who) return status{status_code::unauthenticated, "invalid bearer token"};
  return std::move(*who);
}

}  // namespace billing::security
