#include "security/auth.hpp"

#include <doctest/doctest.h>

#include <fmt/format.h>

using namespace billing;
using namespace billing::security;

namespace {

std::string line_for(std::string_view token, std::string_view scopes, std::string_view name) {
  return fmt::format("{} {} {}\n", to_hex(sha256(token)), scopes, name);
}

token_table sample_table() {
  const std::string text = "# billingd tokens\n\n" + line_for("t-ingest", "ingest", "metald-all") +
                           line_for("t-eu", "ingest:eu-west-1,ingest:eu-north-1", "metald-eu") +
                           line_for("t-acme", "customer:acme", "acme-portal") +
                           line_for("t-admin", "admin", "support") + "  " +
                           to_hex(sha256("t-noname")) + "   customer:beta  # trailing\n";
  auto table = token_table::parse(text);
  REQUIRE_MESSAGE(table.ok(), table.error().message());
  return std::move(table).value();
}

principal who_has(std::string_view token) {
  auto auth = authenticator::with_tokens(sample_table());
  auto who = auth.authenticate(fmt::format("Bearer {}", token));
  REQUIRE_MESSAGE(who.ok(), who.error().message());
  return std::move(who).value();
}

}  // namespace

TEST_CASE("sha256 matches the standard test vector") {
  CHECK(to_hex(sha256("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("the token file is parsed into principals with names and scopes") {
  const auto table = sample_table();
  CHECK(table.size() == 5);
  const auto eu = table.find("t-eu");
  REQUIRE(eu.has_value());
  CHECK(eu->name == "metald-eu");
  CHECK_FALSE(eu->ingest_any_region);
  CHECK(eu->ingest_regions == std::set<std::string>{"eu-west-1", "eu-north-1"});
  const auto unnamed = table.find("t-noname");
  REQUIRE(unnamed.has_value());
  CHECK(unnamed->name == to_hex(sha256("t-noname")).substr(0, 12));
  CHECK(unnamed->customers == std::set<std::string>{"beta"});
  CHECK_FALSE(table.find("t-unknown").has_value());
  CHECK_FALSE(table.find("").has_value());
}

TEST_CASE("malformed token files are refused naming the line") {
  const std::string digest = to_hex(sha256("x"));
  for (const auto& [text, needle] : std::vector<std::pair<std::string, std::string>>{
           {"abc ingest\n", "line 1: the digest"},
           {"# c\n" + digest + "\n", "line 2: expected"},
           {digest + " ingest,root\n", "unknown scope 'root'"},
           {digest + " customer:\n", "unknown scope 'customer:'"},
           {digest + " admin name extra\n", "line 1: expected"},
       }) {
    CAPTURE(text);
    auto parsed = token_table::parse(text);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().code() == status_code::invalid_argument);
    CHECK(parsed.error().message().find(needle) != std::string::npos);
  }
}

TEST_CASE("missing, malformed or unknown credentials are unauthenticated") {
  auto auth = authenticator::with_tokens(sample_table());
  for (const std::string header : {"", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer wrong", "t-admin",
                                   "Bearert-admin", "bearer wrong"}) {
    CAPTURE(header);
    auto who = auth.authenticate(header);
    REQUIRE_FALSE(who.ok());
    CHECK(who.error().code() == status_code::unauthenticated);
    CHECK(who.error().message().find("wrong") == std::string::npos);  // never echoed
  }
  CHECK(auth.authenticate("Bearer t-admin").ok());
}

TEST_CASE("ingest scope: any region, or only the token's regions for the whole call") {
  CHECK(check_scope(who_has("t-ingest"), require_ingest({"us-east-1", "eu-west-1"})).ok());
  const auto eu = who_has("t-eu");
  CHECK(check_scope(eu, require_ingest({"eu-west-1", "eu-north-1"})).ok());
  const status mixed = check_scope(eu, require_ingest({"eu-west-1", "us-east-1"}));
  CHECK(mixed.code() == status_code::permission_denied);
  CHECK(mixed.message().find("us-east-1") != std::string::npos);
  for (const auto* token : {"t-acme", "t-admin"}) {
    CAPTURE(token);
    CHECK(check_scope(who_has(token), require_ingest({"eu-west-1"})).code() ==
          status_code::permission_denied);
  }
}

TEST_CASE("customer scope: only that customer; admin reads every customer; ingest none") {
  const auto acme = who_has("t-acme");
  CHECK(check_scope(acme, require_customer("acme")).ok());
  const status other = check_scope(acme, require_customer("globex"));
  CHECK(other.code() == status_code::permission_denied);
  CHECK(other.message().find("globex") != std::string::npos);
  CHECK(check_scope(acme, require_customer("acm")).code() == status_code::permission_denied);
  CHECK(check_scope(acme, require_customer("acme ")).code() == status_code::permission_denied);
  CHECK(check_scope(who_has("t-admin"), require_customer("globex")).ok());
  CHECK(check_scope(who_has("t-ingest"), require_customer("acme")).code() ==
        status_code::permission_denied);
}

TEST_CASE("admin scope is needed for admin calls") {
  CHECK(check_scope(who_has("t-admin"), require_admin()).ok());
  for (const auto* token : {"t-acme", "t-ingest", "t-eu"}) {
    CAPTURE(token);
    CHECK(check_scope(who_has(token), require_admin()).code() == status_code::permission_denied);
  }
}

TEST_CASE("the insecure dev mode lets every call through without a header") {
  auto auth = authenticator::insecure_no_auth();
  CHECK(auth.insecure());
  auto who = auth.authenticate("");
  REQUIRE(who.ok());
  CHECK(check_scope(*who, require_admin()).ok());
  CHECK(check_scope(*who, require_customer("anyone")).ok());
  CHECK(check_scope(*who, require_ingest({"any-region"})).ok());
}

TEST_CASE("the Bearer scheme is matched case-insensitively (RFC 9110)") {
  auto auth = authenticator::with_tokens(sample_table());
  for (const std::string header :
       {"Bearer t-admin", "bearer t-admin", "BEARER t-admin", "BeArEr t-admin"}) {
    CAPTURE(header);
    auto who = auth.authenticate(header);
    REQUIRE_MESSAGE(who.ok(), who.error().message());
    CHECK(who->name == "support");
  }
}

namespace {

const std::string kMetaldUsEast = "spiffe://example.org/metald/us-east-1";

authenticator with_certificates() {
  const std::string text = line_for("t-ingest", "ingest", "metald-all") +
                           line_for("t-acme", "customer:acme", "acme-portal") +
                           "cert:" + kMetaldUsEast + " ingest:us-east-1 metald-use1\n" +
                           "cert:dashboard.internal customer:acme\n";
  auto table = token_table::parse(text);
  REQUIRE_MESSAGE(table.ok(), table.error().message());
  CHECK(table->size() == 4);
  return authenticator::with_tokens(std::move(table).value());
}

}  // namespace

TEST_CASE("a verified certificate identity maps to scopes like a token") {
  const auto auth = with_certificates();
  auto who = auth.authorize("", kMetaldUsEast, require_ingest({"us-east-1"}));
  REQUIRE_MESSAGE(who.ok(), who.error().message());
  CHECK(who->name == "metald-use1");
  CHECK(who->from_certificate);
  // The name defaults to the identity (a subject CN here).
  auto dashboard = auth.authorize("", "dashboard.internal", require_customer("acme"));
  REQUIRE_MESSAGE(dashboard.ok(), dashboard.error().message());
  CHECK(dashboard->name == "dashboard.internal");

  // Another region, a customer read, an admin call: permission_denied naming the certificate.
  for (const auto& need :
       {require_ingest({"eu-west-1"}), require_customer("acme"), require_admin()}) {
    auto denied = auth.authorize("", kMetaldUsEast, need);
    REQUIRE_FALSE(denied.ok());
    CHECK(denied.error().code() == status_code::permission_denied);
    CHECK(denied.error().message().find("client certificate 'metald-use1'") != std::string::npos);
  }
}

TEST_CASE("a certificate that verifies but maps to nothing is permission_denied") {
  auto denied = with_certificates().authorize("", "spiffe://example.org/unknown",
                                              require_ingest({"us-east-1"}));
  REQUIRE_FALSE(denied.ok());
  CHECK(denied.error().code() == status_code::permission_denied);
  CHECK(denied.error().message().find("spiffe://example.org/unknown") != std::string::npos);
}

TEST_CASE("a call is authorized by its certificate, its token, or both") {
  const auto auth = with_certificates();
  // Neither: unauthenticated, naming both ways in.
  auto none = auth.authorize("", "", require_ingest({"us-east-1"}));
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code() == status_code::unauthenticated);
  CHECK(none.error().message().find("client certificate") != std::string::npos);
  // Token only.
  CHECK(auth.authorize("Bearer t-ingest", "", require_ingest({"eu-west-1"})).ok());
  // Both: either one covering the call lets it through.
  auto by_token = auth.authorize("Bearer t-acme", kMetaldUsEast, require_customer("acme"));
  REQUIRE(by_token.ok());
  CHECK(by_token->name == "acme-portal");
  auto by_certificate =
      auth.authorize("Bearer t-acme", kMetaldUsEast, require_ingest({"us-east-1"}));
  REQUIRE(by_certificate.ok());
  CHECK(by_certificate->name == "metald-use1");
  // Neither covers it: the token's denial.
  auto neither = auth.authorize("Bearer t-acme", kMetaldUsEast, require_admin());
  REQUIRE_FALSE(neither.ok());
  CHECK(neither.error().code() == status_code::permission_denied);
  // A bad token is never ignored, even beside a good certificate.
  auto bad_token = auth.authorize("Bearer wrong", kMetaldUsEast, require_ingest({"us-east-1"}));
  REQUIRE_FALSE(bad_token.ok());
  CHECK(bad_token.error().code() == status_code::unauthenticated);
}

TEST_CASE("malformed certificate lines are refused naming the line") {
  for (const std::string text :
       {"cert: ingest\n", "cert:x\n", "cert:x bogus\n", "cert:x ingest\ncert:x admin\n"}) {
    CAPTURE(text);
    auto parsed = token_table::parse(text);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().code() == status_code::invalid_argument);
    CHECK(parsed.error().message().find("line") != std::string::npos);
  }
}
