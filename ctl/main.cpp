// billingctl: a support CLI over billingd's Connect API (see README.md,
// "billingctl"). Tables for people, --json for scripts, exit codes that say
// what failed (ctl/exit_codes.hpp).
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <functional>
#include <memory>

#include "ctl/commands.hpp"
#include "ctl/exit_codes.hpp"

int main(int argc, char** argv) {
  using namespace billing::ctl;
  CLI::App app{"billingctl: query and operate billingd over its Connect API", "billingctl"};
  auto options = std::make_shared<global_options>();
  app.add_option("--server", options->server, "billingd's URL, http:// or https://")
      ->envname("BILLING_SERVER")
      ->capture_default_str();
  app.add_option("--token", options->token, "bearer token (default: $BILLING_TOKEN); never printed")
      ->envname("BILLING_TOKEN");
  app.add_option("--ca-file", options->ca_file,
                 "PEM CA certificates to trust for an https server (default: the system's)")
      ->check(CLI::ExistingFile);
  app.add_flag("--json", options->json,
               "print proto3 JSON (one object per line) instead of tables");
  app.add_option("--timeout-ms", options->timeout_ms, "connect and per-call timeout")
      ->capture_default_str()
      ->check(CLI::Range(1u, 3'600'000u));
  app.require_subcommand(1);
  app.fallthrough();  // global flags may come after the command too
  std::function<int()> selected;
  add_commands(app, options, selected);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, or the error and a hint
    return code == 0 ? exit_ok : exit_usage;
  }
  return selected ? selected() : exit_usage;
}
