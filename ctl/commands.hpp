// billingctl's commands: each builds one request from its flags, calls the
// server and prints the answer (a table, or --json). Returns the exit code.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>

namespace billing::ctl {

// Flags every command shares.
struct global_options {
  std::string server = "http://127.0.0.1:8080";
  std::string token;
  std::string ca_file;
  bool json = false;
  unsigned timeout_ms = 10'000;
};

// Adds every command to `app`. The command that the parsed command line
// selects stores what it will run in `selected`.
void add_commands(CLI::App& app, const std::shared_ptr<global_options>& options,
                  std::function<int()>& selected);

}  // namespace billing::ctl
