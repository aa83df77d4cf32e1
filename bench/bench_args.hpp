// A minimal flag parser for the benchmark tools: `--name=value` or
// `--name value`, integers and strings, and --help. The server's own options
// go through CAF's config; the bench tools do not start an actor system, and
// Boost.Program_options needs a compiled library that we do not install.
#pragma once

#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace billing::bench {

class arg_parser {
 public:
  enum class outcome { run, help, error };

  explicit arg_parser(std::string description) : description_(std::move(description)) {}

  void add(std::string name, std::string help, int& target) {
    flags_.push_back({std::move(name), std::move(help), &target});
  }
  void add(std::string name, std::string help, std::string& target) {
    flags_.push_back({std::move(name), std::move(help), &target});
  }

  outcome parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        print_help();
        return outcome::help;
      }
      if (!arg.starts_with("--")) return fail(fmt::format("unexpected argument {}", arg));
      arg.remove_prefix(2);
      std::string_view value;
      if (const auto equals = arg.find('='); equals != std::string_view::npos) {
        value = arg.substr(equals + 1);
        arg = arg.substr(0, equals);
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return fail(fmt::format("--{} needs a value", arg));
      }
      flag* found = find(arg);
      if (found == nullptr) return fail(fmt::format("unknown flag --{}", arg));
      if (auto* number = std::get_if<int*>(&found->target)) {
        const auto parsed = std::from_chars(value.data(), value.data() + value.size(), **number);
        if (parsed.ec != std::errc{} || parsed.ptr != value.data() + value.size()) {
          return fail(fmt::format("--{} needs an integer, got {}", arg, value));
        }
      } else {
        *std::get<std::string*>(found->target) = std::string(value);
      }
    }
    return outcome::run;
  }

 private:
  struct flag {
    std::string name;
    std::string help;
    std::variant<int*, std::string*> target;
  };

  flag* find(std::string_view name) {
    for (auto& candidate : flags_) {
      if (candidate.name == name) return &candidate;
    }
    return nullptr;
  }

  outcome fail(const std::string& message) {
    fmt::print(stderr, "{}\n", message);
    return outcome::error;
  }

  void print_help() const {
    fmt::print("{}\n\n", description_);
    for (const auto& candidate : flags_) {
      const std::string current =
          std::visit([](auto* target) { return fmt::format("{}", *target); }, candidate.target);
      fmt::print("  --{:<14} {} (default {})\n", candidate.name, candidate.help, current);
    }
  }

  std::string description_;
  std::vector<flag> flags_;
};

}  // namespace billing::bench
