// Serves a directory of built web assets (the dashboard in build/ui) under a
// URL prefix, safely: the files are read once, at start, into memory, and a
// request is answered only for a name in that set, matched byte for byte.
// Nothing of the request path ever reaches the file system, so no path
// (`..`, `%2e%2e`, backslashes, NUL, symlinks out of the root) can read
// anything else; symlinks and special files in the directory are skipped.
//
// Answers carry a content type from the extension, an ETag (SHA-256 of the
// content; If-None-Match gives 304), Cache-Control (HTML must revalidate;
// other assets, whose names the bundler makes content-hashed, are immutable
// for a year) and headers that keep the page to its own origin
// (Content-Security-Policy, X-Content-Type-Options, Referrer-Policy).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "gateway/connect_server.hpp"
#include "model/status.hpp"

namespace billing::gateway {

class static_files {
 public:
  struct file {
    std::string content;
    std::string content_type;
    std::string etag;  // quoted, as sent
    bool immutable = false;
  };

  // Loads every regular file under `root` (at most `max_total_bytes` in all):
  // not_found if `root` is not a directory, resource_exhausted if too large.
  static result<static_files> load(const std::filesystem::path& root,
                                   uint64_t max_total_bytes = uint64_t{64} << 20);

  // The answer for `request.path` under `prefix` (which ends with '/'): the
  // file named by the rest of the path ("" and names ending in '/' mean
  // their index.html), 304 when If-None-Match names its ETag, else 404.
  http_reply answer(std::string_view prefix, const get_request& request) const;

  size_t size() const { return files_.size(); }

  // The content type billingd sends for a file name (by its extension).
  static std::string_view content_type_of(std::string_view name);

 private:
  std::map<std::string, file, std::less<>> files_;  // by '/'-separated relative name
};

// Binds `prefix` (e.g. "/ui/") to `files`, and the prefix without its slash to
// a redirect to it. Without files (the dashboard was not built) every path
// under it answers 404 saying why.
void add_static_files(connect_router& router, std::string prefix, result<static_files> files);

}  // namespace billing::gateway
