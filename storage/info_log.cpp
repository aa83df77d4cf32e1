#include "storage/info_log.hpp"

#include <cstdarg>
#include <cstdio>
#include <string>

namespace billing::storage {
namespace {

rocksdb::InfoLogLevel rocksdb_level(observability::log_level level) {
  switch (level) {
    case observability::log_level::debug:
      return rocksdb::InfoLogLevel::DEBUG_LEVEL;
    case observability::log_level::info:
      return rocksdb::InfoLogLevel::INFO_LEVEL;
    case observability::log_level::warn:
      return rocksdb::InfoLogLevel::WARN_LEVEL;
    case observability::log_level::error:
      return rocksdb::InfoLogLevel::ERROR_LEVEL;
  }
  return rocksdb::InfoLogLevel::WARN_LEVEL;
}

observability::log_level our_level(rocksdb::InfoLogLevel level) {
  switch (level) {
    case rocksdb::InfoLogLevel::DEBUG_LEVEL:
      return observability::log_level::debug;
    case rocksdb::InfoLogLevel::INFO_LEVEL:
    case rocksdb::InfoLogLevel::HEADER_LEVEL:
      return observability::log_level::info;
    case rocksdb::InfoLogLevel::WARN_LEVEL:
      return observability::log_level::warn;
    default:  // ERROR, FATAL
      return observability::log_level::error;
  }
}

class structured_info_log final : public rocksdb::Logger {
 public:
  explicit structured_info_log(rocksdb::InfoLogLevel threshold) : Logger(threshold) {}

  // Header lines bypass the level check in RocksDB's base class.
  void LogHeader(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    va_list measure;
    va_copy(measure, ap);
    const int length = std::vsnprintf(nullptr, 0, format, measure);
    va_end(measure);
    if (length <= 0) return;
    std::string line(static_cast<size_t>(length) + 1, '\0');
    std::vsnprintf(line.data(), line.size(), format, ap);
    line.resize(static_cast<size_t>(length));
    observability::write_log_line(our_level(level), line, {{"component", "rocksdb"}});
  }
};

}  // namespace

std::shared_ptr<rocksdb::Logger> make_info_log(observability::log_level threshold) {
  return std::make_shared<structured_info_log>(rocksdb_level(threshold));
}

}  // namespace billing::storage
