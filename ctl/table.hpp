// Plain-text tables for billingctl's human output: a header row, columns
// padded to their widest cell, numbers right-aligned.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace billing::ctl {

class table {
 public:
  explicit table(std::vector<std::string> header) : header_(std::move(header)) {}

  void add_row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  bool empty() const { return rows_.empty(); }

  // Writes the table to `out`; a table without rows prints "(none)" under its header.
  void print(std::FILE* out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace billing::ctl
