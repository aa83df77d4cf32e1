// Small conversions between Beast's header types and the gateway's plain
// ones, shared by the session's unary and streaming halves. Internal.
#pragma once

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/fields.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <string_view>

namespace billing::gateway {

inline std::string_view to_std(boost::beast::string_view text) {
  return {text.data(), text.size()};
}

// Header names lower-cased; a repeated header is joined with ", ", which is
// the same as one comma-separated list (RFC 9110 5.3).
inline std::map<std::string, std::string> lower_cased_headers(
    const boost::beast::http::fields& fields) {
  std::map<std::string, std::string> headers;
  for (const auto& field : fields) {
    std::string name(to_std(field.name_string()));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const std::string_view value = to_std(field.value());
    auto [slot, inserted] = headers.emplace(std::move(name), std::string(value));
    if (!inserted) slot->second.append(", ").append(value);
  }
  return headers;
}

}  // namespace billing::gateway
