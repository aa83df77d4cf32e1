#include "gateway/tls_material.hpp"

#include <fmt/format.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

namespace billing::gateway {
namespace net = boost::asio;
using error_code = boost::system::error_code;

namespace {

result<std::shared_ptr<net::ssl::context>> make_context(const server_options& options) {
  auto context = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
  context->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                       net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                       net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use);
  error_code ec;
  auto failed = [&](std::string_view what, const std::string& file) {
    return status{status_code::invalid_argument,
                  fmt::format("cannot load the TLS {} from {}: {}", what, file, ec.message())};
  };
  if (context->use_certificate_chain_file(options.tls_cert_file, ec); ec) {
    return failed("certificate", options.tls_cert_file);
  }
  // OpenSSL checks here that the key belongs to the certificate.
  if (context->use_private_key_file(options.tls_key_file, net::ssl::context::pem, ec); ec) {
    return failed("private key", options.tls_key_file);
  }
  if (!options.tls_client_ca_file.empty()) {
    if (context->load_verify_file(options.tls_client_ca_file, ec); ec) {
      return failed("client CA", options.tls_client_ca_file);
    }
    // Optional: a client may come without a certificate (and use a bearer
    // token), but one it presents must verify, or the handshake fails.
    const bool required = options.tls_client_auth != client_certificates::optional;
    context->set_verify_mode(required
                                 ? net::ssl::verify_peer | net::ssl::verify_fail_if_no_peer_cert
                                 : net::ssl::verify_peer);
  }
  return context;
}

}  // namespace

result<std::unique_ptr<tls_material>> tls_material::load(const server_options& options) {
  if (options.tls_cert_file.empty() && options.tls_key_file.empty()) {
    if (!options.tls_client_ca_file.empty()) {
      return status{status_code::invalid_argument,
                    "a TLS client CA file needs a certificate and key (TLS is off)"};
    }
    return std::unique_ptr<tls_material>{};
  }
  if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
    return status{status_code::invalid_argument, "TLS needs both a certificate and a key file"};
  }
  std::unique_ptr<tls_material> material{new tls_material(options)};
  material->loaded_ = material->stamp_files();
  auto context = make_context(options);
  if (!context.ok()) return context.error();
  material->context_ = std::move(context).value();
  return material;
}

tls_material::stamps tls_material::stamp_files() const {
  const std::string* files[] = {&options_.tls_cert_file, &options_.tls_key_file,
                                &options_.tls_client_ca_file};
  stamps out{};
  for (size_t i = 0; i < out.size(); ++i) {
    struct stat info {};
    if (files[i]->empty() || ::stat(files[i]->c_str(), &info) != 0) continue;
    out[i] = {
        static_cast<unsigned long long>(info.st_dev), static_cast<unsigned long long>(info.st_ino),
        static_cast<unsigned long long>(info.st_size),
        static_cast<long long>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec, true};
  }
  return out;
}

std::shared_ptr<net::ssl::context> tls_material::current() {
  std::lock_guard lock(mutex_);
  const stamps now = stamp_files();
  if (now == loaded_ || now == last_tried_) return context_;
  auto context = make_context(options_);
  if (!context.ok()) {
    last_tried_ = now;
    if (options_.tls_event_log) {
      options_.tls_event_log(
          true, fmt::format(
                    "the TLS files changed but cannot be loaded yet ({}); new connections keep the "
                    "previous certificates until the files change again",
                    context.error().message()));
    }
    return context_;
  }
  context_ = std::move(context).value();
  loaded_ = now;
  last_tried_ = {};
  ++reloads_;
  if (options_.tls_event_log) {
    options_.tls_event_log(false, fmt::format("reloaded the TLS certificate, key and client CA "
                                              "files (reload {}): new connections use "
                                              "them, open ones keep theirs",
                                              reloads_));
  }
  return context_;
}

uint64_t tls_material::reloads() const {
  std::lock_guard lock(mutex_);
  return reloads_;
}

std::string verified_client_identity(const SSL* ssl) {
  if (ssl == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return {};
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return {};
  std::string identity;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_STRING* uri = name->d.uniformResourceIdentifier;
    identity.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                    static_cast<size_t>(ASN1_STRING_length(uri)));
    break;
  }
  GENERAL_NAMES_free(names);
  if (!identity.empty()) return identity;
  const X509_NAME* subject = X509_get_subject_name(cert);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return {};
  const ASN1_STRING* common_name = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(common_name)),
          static_cast<size_t>(ASN1_STRING_length(common_name))};
}

}  // namespace billing::gateway
