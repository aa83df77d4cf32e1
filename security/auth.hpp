// Service-to-service authentication and authorization: bearer tokens that are
// stored only as SHA-256 digests, each granting scopes. Pure logic (no
// sockets, no gateway types) so every rule is unit-tested; the gateway's
// services call it through gateway/services/access.hpp.
//
// Token file (--auth-tokens-file), one token per line, '#' starts a comment:
//   <sha256-hex-of-token> <scope>[,<scope>...] [name]
// or one client-certificate identity (its URI SAN, e.g. a SPIFFE ID, else
// its subject CN; the gateway verified the certificate) per line:
//   cert:<identity> <scope>[,<scope>...] [name]
// Scopes:
//   ingest            may send metrics of any region
//   ingest:<region>   may send metrics of that region only (repeat for several)
//   customer:<id>     may read that customer's usage and nothing else
//   admin             admin RPCs (backups, audit) and every customer's data
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "model/status.hpp"

namespace billing::security {

using digest = std::array<uint8_t, 32>;

// SHA-256 of `data` (OpenSSL).
digest sha256(std::string_view data);
std::string to_hex(const digest& value);

// Who is calling and what they may do.
struct principal {
  std::string name;  // from the token file (or "insecure-no-auth"); rate limits key on it
  bool ingest_any_region = false;
  std::set<std::string> ingest_regions;  // used when !ingest_any_region
  std::set<std::string> customers;
  bool admin = false;
  bool unrestricted = false;      // dev mode without auth: everything allowed
  bool from_certificate = false;  // a client-certificate identity, not a token
};

// What a call needs. Build with the helpers below.
struct access_requirement {
  enum class kind { ingest, customer, admin };
  kind needed = kind::admin;
  // ingest: every region the call writes (empty: no region named yet);
  // customer: the one customer the call reads or streams.
  std::vector<std::string> regions;
  std::string customer_id;
};

access_requirement require_ingest(std::vector<std::string> regions);
access_requirement require_customer(std::string customer_id);
access_requirement require_admin();

// ok, or permission_denied naming what is missing. Rules:
//  - ingest: an `ingest` scope, and, for a region-restricted token, every
//    region of the call among its regions (one region outside fails the
//    whole call: a batch is never half-authorized);
//  - customer: `customer:<that id>` or `admin`;
//  - admin: `admin`.
status check_scope(const principal& who, const access_requirement& need);

// The token table: digests only, never the tokens themselves.
class token_table {
 public:
  // Parses the token file's text; invalid_argument naming the line otherwise.
  static result<token_table> parse(std::string_view text);
  static result<token_table> load_file(const std::string& path);

  // The principal whose digest matches sha256(token), or nullopt. Compares
  // with CRYPTO_memcmp against every entry (no early exit), so the time taken
  // does not reveal how much of a digest matched or which entry did.
  std::optional<principal> find(std::string_view token) const;

  // The principal a verified client certificate's identity maps to, or
  // nullopt (identities are public, so a plain lookup).
  std::optional<principal> find_certificate(std::string_view identity) const;

  size_t size() const { return entries_.size() + certificates_.size(); }

 private:
  struct entry {
    digest token_digest;
    principal who;
  };
  std::vector<entry> entries_;
  std::map<std::string, principal, std::less<>> certificates_;
};

// Turns the Authorization header into a principal. Either a token table or
// the explicit insecure dev mode, which lets every call through.
class authenticator {
 public:
  static authenticator with_tokens(token_table tokens);
  static authenticator insecure_no_auth();

  // unauthenticated when the header is missing, not "Bearer <token>" (the
  // scheme in any case, RFC 9110), or the token is unknown (the message never
  // echoes the token).
  result<principal> authenticate(std::string_view authorization_header) const;

  // Authorizes a call by its bearer token, its verified client certificate's
  // identity ("" when none), or both: the call passes when a credential it
  // presents meets `need`. A token that is sent must be valid (a bad one is
  // unauthenticated, never ignored); a certificate that verified but maps to
  // no scopes is permission_denied; neither credential is unauthenticated.
  result<principal> authorize(std::string_view authorization_header,
                              std::string_view client_identity,
                              const access_requirement& need) const;

  bool insecure() const { return insecure_; }

 private:
  token_table tokens_;
  bool insecure_ = false;
};

}  // namespace billing::security
