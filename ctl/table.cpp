#include "ctl/table.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace billing::ctl {
namespace {

// Amounts and counters line up on their last digit.
bool is_numeric(const std::string& cell) {
  return !cell.empty() && std::all_of(cell.begin(), cell.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '.' || c == '-';
  });
}

}  // namespace

void table::print(std::FILE* out) const {
  std::vector<size_t> widths(header_.size(), 0);
  for (size_t i = 0; i < header_.size(); ++i) widths[i] = header_[i].size();
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  auto print_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string& cell = i < cells.size() ? cells[i] : std::string{};
      if (i > 0) line += "  ";
      line += is_numeric(cell) ? fmt::format("{:>{}}", cell, widths[i])
                               : fmt::format("{:<{}}", cell, widths[i]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    fmt::print(out, "{}\n", line);
  };
  print_row(header_);
  if (rows_.empty()) fmt::print(out, "(none)\n");
  for (const auto& row : rows_) print_row(row);
}

}  // namespace billing::ctl
