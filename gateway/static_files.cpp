#include "gateway/static_files.hpp"

#include <openssl/sha.h>

#include <array>
#include <fstream>
#include <memory>
#include <sstream>
#include <utility>

namespace billing::gateway {
namespace {

namespace fs = std::filesystem;

std::string quoted_sha256_prefix(std::string_view content) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(content.data()), content.size(), digest.data());
  static constexpr char hex[] = "0123456789abcdef";
  std::string tag = "\"";
  // 128 bits of the digest: plenty for a validator.
  for (size_t i = 0; i < 16; ++i) {
    tag += hex[digest[i] >> 4];
    tag += hex[digest[i] & 0xf];
  }
  tag += '"';
  return tag;
}

bool is_html(std::string_view name) {
  return name.ends_with(".html");
}

// If-None-Match: "*" or a comma-separated list of (possibly weak) tags.
bool matches_etag(std::string_view if_none_match, std::string_view etag) {
  while (!if_none_match.empty()) {
    const size_t comma = if_none_match.find(',');
    std::string_view tag = if_none_match.substr(0, comma);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
    if (comma == std::string_view::npos) break;
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

// The page may load and call only its own origin; it is never framed.
const std::vector<std::pair<std::string, std::string>>& security_headers() {
  static const std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Security-Policy",
       "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "
       "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
  };
  return headers;
}

http_reply not_found(std::string message) {
  http_reply reply{404, "text/plain; charset=utf-8", std::move(message) + "\n"};
  reply.headers = security_headers();
  reply.headers.emplace_back("Cache-Control", "no-store");
  return reply;
}

}  // namespace

std::string_view static_files::content_type_of(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 12> types = {{
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
      {".webmanifest", "application/manifest+json"},
  }};
  for (const auto& [extension, type] : types) {
    if (name.ends_with(extension)) return type;
  }
  return "application/octet-stream";
}

result<static_files> static_files::load(const fs::path& root, uint64_t max_total_bytes) {
  std::error_code error;
  if (!fs::is_directory(root, error)) {
    return status{status_code::not_found, root.string() + " is not a directory"};
  }
  static_files loaded;
  uint64_t total = 0;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, error);
  if (error) return status{status_code::unavailable, root.string() + ": " + error.message()};
  for (; it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (error) return status{status_code::unavailable, root.string() + ": " + error.message()};
    // Only regular files, never through a symlink (which could point anywhere).
    const auto kind = it->symlink_status(error).type();
    if (kind == fs::file_type::symlink) {
      if (it->is_directory(error)) it.disable_recursion_pending();
      continue;
    }
    if (kind != fs::file_type::regular) continue;
    const std::string name = fs::relative(it->path(), root, error).generic_string();
    if (error || name.empty() || name.starts_with("..")) continue;
    total += it->file_size(error);
    if (error)
      return status{status_code::unavailable, it->path().string() + ": " + error.message()};
    if (total > max_total_bytes) {
      return status{status_code::resource_exhausted, root.string() + " holds more than " +
                                                         std::to_string(max_total_bytes) +
                                                         " bytes of files"};
    }
    std::ifstream in(it->path(), std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    if (!in) return status{status_code::unavailable, "cannot read " + it->path().string()};
    file entry;
    entry.content = std::move(content).str();
    entry.content_type = std::string(content_type_of(name));
    entry.etag = quoted_sha256_prefix(entry.content);
    entry.immutable = !is_html(name);
    loaded.files_.emplace(name, std::move(entry));
  }
  return loaded;
}

http_reply static_files::answer(std::string_view prefix, const get_request& request) const {
  if (!request.path.starts_with(prefix)) return not_found("not found");
  std::string name(request.path.substr(prefix.size()));
  if (name.empty() || name.ends_with('/')) name += "index.html";
  const auto found = files_.find(name);
  if (found == files_.end()) return not_found("no file " + std::string(request.path));
  const file& entry = found->second;
  http_reply reply;
  reply.content_type = entry.content_type;
  reply.headers = security_headers();
  reply.headers.emplace_back("ETag", entry.etag);
  reply.headers.emplace_back("Cache-Control",
                             entry.immutable ? "public, max-age=31536000, immutable" : "no-cache");
  if (matches_etag(request.if_none_match, entry.etag)) {
    reply.status = 304;
    return reply;
  }
  reply.body = entry.content;
  return reply;
}

void add_static_files(connect_router& router, std::string prefix, result<static_files> files) {
  std::string bare = prefix;
  if (bare.size() > 1 && bare.ends_with('/')) bare.pop_back();
  router.add_get(bare, [prefix] {
    http_reply reply{301, "text/plain; charset=utf-8", "see " + prefix + "\n"};
    reply.headers = {{"Location", prefix}};
    return reply;
  });
  if (!files.ok()) {
    router.add_get_prefix(prefix, [reason = files.error().message()](const get_request&) {
      return not_found("the dashboard is not available: " + reason +
                       " (scripts/build.sh builds it into build/ui)");
    });
    return;
  }
  auto shared = std::make_shared<const static_files>(std::move(files).value());
  router.add_get_prefix(prefix, [prefix, shared](const get_request& request) {
    return shared->answer(prefix, request);
  });
}

}  // namespace billing::gateway
