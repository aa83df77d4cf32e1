// Fixed-width big-endian integers and a bounds-checked reader. Keys and values
// are built from these so that byte order equals numeric order and decoding
// untrusted bytes can fail without reading past the end.
#pragma once

#include <bit>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace billing::storage::bytes {

inline void append_u8(std::string& out, uint8_t value) {
  out.push_back(static_cast<char>(value));
}

// One append of the whole big-endian word (keys and values are built on the
// ingest hot path; byte-by-byte push_back showed up in profiles).
inline void append_u32(std::string& out, uint32_t value) {
  if constexpr (std::endian::native == std::endian::little) value = __builtin_bswap32(value);
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

inline void append_u64(std::string& out, uint64_t value) {
  if constexpr (std::endian::native == std::endian::little) value = __builtin_bswap64(value);
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

inline void append_i64(std::string& out, int64_t value) {
  append_u64(out, static_cast<uint64_t>(value));
}

// IEEE-754 bits, so that NaN payloads, -0.0 and infinities survive unchanged.
inline void append_f64(std::string& out, double value) {
  append_u64(out, std::bit_cast<uint64_t>(value));
}

// A string as u32 length + bytes.
inline void append_string(std::string& out, std::string_view text) {
  append_u32(out, static_cast<uint32_t>(text.size()));
  out.append(text);
}

// A signed 128-bit integer as 16 big-endian bytes (two's complement).
inline void append_i128(std::string& out, __int128 value) {
  const auto bits = static_cast<unsigned __int128>(value);
  append_u64(out, static_cast<uint64_t>(bits >> 64));
  append_u64(out, static_cast<uint64_t>(bits));
}

// An unsigned 128-bit integer as LEB128 (7 bits a byte, low first, high bit
// = more follows): usage sums are mostly far below 2^64, so this is shorter
// than fixed width while every value up to 2^128-1 stays exact.
inline void append_varint_u128(std::string& out, unsigned __int128 value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>(static_cast<uint8_t>(value) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(static_cast<uint8_t>(value)));
}

// Reads from the front of a byte string; every read fails (nullopt) instead
// of reading past the end, and a failed read consumes nothing.
class reader {
 public:
  explicit reader(std::string_view input) : rest_(input) {}

  bool at_end() const { return rest_.empty(); }
  size_t remaining() const { return rest_.size(); }

  std::optional<uint8_t> u8() {
    if (rest_.empty()) return std::nullopt;
    auto value = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return value;
  }

  std::optional<uint32_t> u32() { return fixed<uint32_t>(); }
  std::optional<uint64_t> u64() { return fixed<uint64_t>(); }

  std::optional<int64_t> i64() {
    auto raw = u64();
    if (!raw) return std::nullopt;
    return static_cast<int64_t>(*raw);
  }

  std::optional<double> f64() {
    auto raw = u64();
    if (!raw) return std::nullopt;
    return std::bit_cast<double>(*raw);
  }

  // u32 length + bytes, as written by append_string.
  std::optional<std::string> string() {
    reader attempt = *this;
    auto size = attempt.u32();
    if (!size) return std::nullopt;
    auto text = attempt.take(*size);
    if (!text) return std::nullopt;
    *this = attempt;
    return std::string(*text);
  }

  std::optional<__int128> i128() {
    reader attempt = *this;
    auto high = attempt.u64();
    auto low = attempt.u64();
    if (!high || !low) return std::nullopt;
    *this = attempt;
    return static_cast<__int128>((static_cast<unsigned __int128>(*high) << 64) | *low);
  }

  // A LEB128 value as written by append_varint_u128; nullopt when truncated,
  // longer than 19 bytes, or past 2^128-1.
  std::optional<unsigned __int128> varint_u128() {
    unsigned __int128 value = 0;
    for (size_t i = 0; i < rest_.size() && i < 19; ++i) {
      const auto byte = static_cast<uint8_t>(rest_[i]);
      const unsigned shift = 7 * static_cast<unsigned>(i);
      if (i == 18 && byte > 0x03) return std::nullopt;  // bits past 128
      value |= static_cast<unsigned __int128>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        rest_.remove_prefix(i + 1);
        return value;
      }
    }
    return std::nullopt;
  }

  std::optional<std::string_view> take(size_t count) {
    if (rest_.size() < count) return std::nullopt;
    auto taken = rest_.substr(0, count);
    rest_.remove_prefix(count);
    return taken;
  }

 private:
  template <class Unsigned>
  std::optional<Unsigned> fixed() {
    if (rest_.size() < sizeof(Unsigned)) return std::nullopt;
    Unsigned value = 0;
    for (size_t i = 0; i < sizeof(Unsigned); ++i) {
      value = static_cast<Unsigned>(value << 8) | static_cast<uint8_t>(rest_[i]);
    }
    rest_.remove_prefix(sizeof(Unsigned));
    return value;
  }

  std::string_view rest_;
};

}  // namespace billing::storage::bytes
