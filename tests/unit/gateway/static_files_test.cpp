// The dashboard's static file handler: only files loaded from the root are
// ever answered, with their content type, validators and caching headers.
#include "gateway/static_files.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace billing;
using namespace billing::gateway;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "static-files-XXXXXX").string();
    path = mkdtemp(pattern.data());
  }
  ~temp_dir() { fs::remove_all(path); }
  void write(const std::string& name, const std::string& content) const {
    fs::create_directories((path / name).parent_path());
    std::ofstream(path / name, std::ios::binary) << content;
  }
};

std::string header(const http_reply& reply, std::string_view name) {
  for (const auto& [key, value] : reply.headers) {
    if (key == name) return value;
  }
  return {};
}

http_reply get(const static_files& files, std::string_view path, std::string_view etag = {}) {
  return files.answer("/ui/", {path, etag});
}

}  // namespace

TEST_CASE("static files: index, assets, content types and caching") {
  temp_dir root;
  root.write("index.html", "<!doctype html><title>x</title>");
  root.write("main-ABC.js", "console.log(1)");
  root.write("main-ABC.css", "body{}");
  root.write("assets/logo.svg", "<svg/>");
  auto files = static_files::load(root.path);
  REQUIRE(files.ok());
  CHECK(files.value().size() == 4);

  const auto index = get(files.value(), "/ui/");
  CHECK(index.status == 200);
  CHECK(index.body == "<!doctype html><title>x</title>");
  CHECK(index.content_type == "text/html; charset=utf-8");
  CHECK(header(index, "Cache-Control") == "no-cache");
  CHECK(header(index, "X-Content-Type-Options") == "nosniff");
  CHECK(header(index, "Content-Security-Policy").find("default-src 'self'") != std::string::npos);
  CHECK(get(files.value(), "/ui/index.html").body == index.body);

  const auto script = get(files.value(), "/ui/main-ABC.js");
  CHECK(script.status == 200);
  CHECK(script.content_type == "text/javascript; charset=utf-8");
  CHECK(header(script, "Cache-Control") == "public, max-age=31536000, immutable");
  CHECK(get(files.value(), "/ui/main-ABC.css").content_type == "text/css; charset=utf-8");
  CHECK(get(files.value(), "/ui/assets/logo.svg").content_type == "image/svg+xml");
  CHECK(static_files::content_type_of("x.bin") == "application/octet-stream");

  // ETag: a matching If-None-Match gets 304 without a body; another tag the file.
  const std::string etag = header(script, "ETag");
  REQUIRE(etag.size() == 34);
  CHECK(etag.front() == '"');
  const auto unchanged = get(files.value(), "/ui/main-ABC.js", etag);
  CHECK(unchanged.status == 304);
  CHECK(unchanged.body.empty());
  CHECK(get(files.value(), "/ui/main-ABC.js", "\"other\", W/" + etag).status == 304);
  CHECK(get(files.value(), "/ui/main-ABC.js", "\"other\"").status == 200);
  CHECK(header(get(files.value(), "/ui/main-ABC.css"), "ETag") != etag);
}

TEST_CASE("static files: nothing outside the loaded set is ever answered") {
  temp_dir outside;
  outside.write("secret.txt", "do not serve");
  temp_dir root;
  root.write("index.html", "ok");
  fs::create_symlink(outside.path / "secret.txt", root.path / "link.txt");
  fs::create_directory_symlink(outside.path, root.path / "linked-dir");
  auto files = static_files::load(root.path);
  REQUIRE(files.ok());
  CHECK(files.value().size() == 1);  // symlinks are skipped

  for (const char* path :
       {"/ui/link.txt", "/ui/linked-dir/secret.txt", "/ui/../secret.txt", "/ui/..%2fsecret.txt",
        "/ui/%2e%2e/secret.txt", "/ui//etc/passwd", "/ui/./index.html", "/ui/index.html/",
        "/ui/assets", "/ui/INDEX.HTML", "/ui/index.html%00.js", "/other/index.html"}) {
    CAPTURE(path);
    const auto reply = get(files.value(), path);
    CHECK(reply.status == 404);
    CHECK(reply.body.find("do not serve") == std::string::npos);
  }
}

TEST_CASE("static files: a missing root is reported, not served") {
  auto files = static_files::load("/nonexistent/billing-ui");
  REQUIRE(!files.ok());
  CHECK(files.error().code() == status_code::not_found);
}

TEST_CASE("static files: routes under the prefix and a redirect from it without its slash") {
  temp_dir root;
  root.write("index.html", "page");
  connect_router router;
  add_static_files(router, "/ui/", static_files::load(root.path));
  REQUIRE(router.get_routes().contains("/ui"));
  const auto redirect = router.get_routes().at("/ui")();
  CHECK(redirect.status == 301);
  CHECK(header(redirect, "Location") == "/ui/");
  const auto* handler = router.find_get_prefix("/ui/index.html");
  REQUIRE(handler != nullptr);
  CHECK((*handler)({"/ui/index.html", ""}).body == "page");
  CHECK(router.find_get_prefix("/healthz") == nullptr);

  connect_router unbuilt;
  add_static_files(unbuilt, "/ui/", static_files::load(root.path / "missing"));
  const auto* missing = unbuilt.find_get_prefix("/ui/");
  REQUIRE(missing != nullptr);
  const auto reply = (*missing)({"/ui/", ""});
  CHECK(reply.status == 404);
  CHECK(reply.body.find("scripts/build.sh") != std::string::npos);
}
