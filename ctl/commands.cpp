#include "ctl/commands.hpp"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>

#include "billing/v1/admin.pb.h"
#include "billing/v1/billing.pb.h"
#include "billing/v1/invoice.pb.h"
#include "client/connect_client.hpp"
#include "ctl/exit_codes.hpp"
#include "ctl/render.hpp"

namespace billing::ctl {
namespace {

using google::protobuf::Timestamp;

constexpr std::string_view kQuery = "/billing.v1.BillingQueryService/";
constexpr std::string_view kInvoice = "/billing.v1.BillingInvoiceService/";
constexpr std::string_view kAdmin = "/billing.v1.BillingAdminService/";

std::string procedure(std::string_view service, std::string_view method) {
  return std::string{service} + std::string{method};
}

// "2026-11" (a month), "2026-11-24" (a day) or RFC 3339 ("2026-11-24T10:00:00Z"), UTC.
std::optional<Timestamp> parse_instant(const std::string& text) {
  std::string rfc3339 = text;
  if (text.size() == 7) rfc3339 += "-01T00:00:00Z";
  if (text.size() == 10) rfc3339 += "T00:00:00Z";
  Timestamp parsed;
  if (!google::protobuf::util::TimeUtil::FromString(rfc3339, &parsed)) return std::nullopt;
  return parsed;
}

// A CLI11 validator for parse_instant's formats, so a bad time is a usage error.
const CLI::Validator& instant_format() {
  static const CLI::Validator validator{
      [](std::string& text) {
        return parse_instant(text) ? std::string{}
                                   : fmt::format(
                                         "'{}' is not YYYY-MM, YYYY-MM-DD or RFC 3339 "
                                         "(2026-11-24T10:00:00Z)",
                                         text);
      },
      "TIME"};
  return validator;
}

class session {
 public:
  explicit session(std::shared_ptr<global_options> options) : options_(std::move(options)) {}

  const global_options& options() const { return *options_; }

  // Makes the client; prints why not and returns nullopt on a bad --server.
  std::optional<client::connect_client> connect() const {
    auto url = client::parse_server_url(options_->server);
    if (!url.ok()) {
      fmt::print(stderr, "billingctl: --server: {}\n", url.error().message());
      return std::nullopt;
    }
    client::http_client_options http;
    http.ca_file = options_->ca_file;
    http.timeout = std::chrono::milliseconds{options_->timeout_ms};
    return client::connect_client{url.value(), std::move(http), options_->token};
  }

  // Prints what failed and returns the exit code that says so.
  static int report(std::string_view procedure, const client::call_error& failed) {
    switch (failed.kind) {
      case client::failure_kind::transport:
        fmt::print(stderr, "billingctl: {}: cannot reach the server: {}\n", procedure,
                   failed.error.message());
        return exit_transport;
      case client::failure_kind::protocol:
        fmt::print(stderr, "billingctl: {}: unexpected answer: {}\n", procedure,
                   failed.error.message());
        return exit_protocol;
      case client::failure_kind::server:
        break;
    }
    fmt::print(stderr, "billingctl: {}: {}: {}\n", procedure, to_string(failed.error.code()),
               failed.error.message());
    return exit_for_connect_code(failed.error.code());
  }

  // One unary call; prints the answer with `human` (or as JSON).
  template <class Response>
  int call(const std::string& path, const google::protobuf::Message& request,
           const std::function<int(const Response&)>& human) const {
    auto client = connect();
    if (!client) return exit_usage;
    Response response;
    if (auto failed = client->unary(path, request, response)) return report(path, *failed);
    if (options_->json) {
      print_json(stdout, response);
      return exit_ok;
    }
    return human(response);
  }

 private:
  std::shared_ptr<global_options> options_;
};

template <class Response>
std::function<int(const Response&)> printing(void (*print)(std::FILE*, const Response&)) {
  return [print](const Response& response) {
    print(stdout, response);
    return exit_ok;
  };
}

void add_usage(CLI::App& app, const std::shared_ptr<session>& run, std::function<int()>& selected) {
  auto* command = app.add_subcommand(
      "usage",
      "a customer's exact usage per hour/day/month, per region and per VM (GetCustomerUsage)");
  struct flags {
    std::string customer, from, to, by = "day";
  };
  auto f = std::make_shared<flags>();
  command->add_option("customer", f->customer, "customer id")->required();
  command->add_option("--from", f->from, "start, aligned to --by (inclusive)")
      ->required()
      ->check(instant_format());
  command->add_option("--to", f->to, "end, aligned to --by (exclusive)")
      ->required()
      ->check(instant_format());
  command->add_option("--by", f->by, "bucket granularity")
      ->check(CLI::IsMember({"hour", "day", "month"}))
      ->capture_default_str();
  command->callback([run, f, &selected] {
    selected = [run, f] {
      static const std::map<std::string, v1::Granularity> granularity = {
          {"hour", v1::GRANULARITY_HOUR},
          {"day", v1::GRANULARITY_DAY},
          {"month", v1::GRANULARITY_MONTH}};
      v1::GetCustomerUsageRequest request;
      request.set_customer_id(f->customer);
      *request.mutable_start_time() = *parse_instant(f->from);
      *request.mutable_end_time() = *parse_instant(f->to);
      request.set_granularity(granularity.at(f->by));
      return run->call<v1::GetCustomerUsageResponse>(procedure(kQuery, "GetCustomerUsage"), request,
                                                     printing(&print_usage));
    };
  });
}

void add_window(CLI::App& app, const std::shared_ptr<session>& run,
                std::function<int()>& selected) {
  auto* command = app.add_subcommand(
      "window", "usage, active spans and gaps of a customer in any range (GetBillingWindow)");
  struct flags {
    std::string customer, from, to;
    bool interpolate = false;
  };
  auto f = std::make_shared<flags>();
  command->add_option("customer", f->customer, "customer id")->required();
  command->add_option("--from", f->from, "start (inclusive)")->required()->check(instant_format());
  command->add_option("--to", f->to, "end (exclusive)")->required()->check(instant_format());
  command->add_flag("--interpolate", f->interpolate,
                    "estimate memory over gaps (marked, never added to totals)");
  command->callback([run, f, &selected] {
    selected = [run, f] {
      v1::GetBillingWindowRequest request;
      request.set_customer_id(f->customer);
      *request.mutable_start_time() = *parse_instant(f->from);
      *request.mutable_end_time() = *parse_instant(f->to);
      request.set_interpolate_gauges(f->interpolate);
      return run->call<v1::GetBillingWindowResponse>(procedure(kQuery, "GetBillingWindow"), request,
                                                     printing(&print_window));
    };
  });
}

void add_invoices(CLI::App& app, const std::shared_ptr<session>& run,
                  std::function<int()>& selected) {
  auto* one = app.add_subcommand(
      "invoice", "a month's invoice: finalized as stored, or a draft computed now (GetInvoice)");
  struct flags {
    std::string customer, period;
    std::vector<std::string> customers;
  };
  auto f = std::make_shared<flags>();
  one->add_option("customer", f->customer, "customer id")->required();
  one->add_option("--period", f->period, "the month, e.g. 2026-11")
      ->required()
      ->check(instant_format());
  one->callback([run, f, &selected] {
    selected = [run, f] {
      v1::GetInvoiceRequest request;
      request.set_customer_id(f->customer);
      *request.mutable_period_start() = *parse_instant(f->period);
      return run->call<v1::GetInvoiceResponse>(procedure(kInvoice, "GetInvoice"), request,
                                               [](const v1::GetInvoiceResponse& response) {
                                                 print_invoice(stdout, response.invoice());
                                                 return exit_ok;
                                               });
    };
  });

  auto* list = app.add_subcommand("invoices",
                                  "a customer's finalized invoices, oldest first (ListInvoices)");
  list->add_option("customer", f->customer, "customer id")->required();
  list->callback([run, f, &selected] {
    selected = [run, f] {
      v1::ListInvoicesRequest request;
      request.set_customer_id(f->customer);
      return run->call<v1::ListInvoicesResponse>(procedure(kInvoice, "ListInvoices"), request,
                                                 [](const v1::ListInvoicesResponse& response) {
                                                   print_invoice_list(stdout, response.invoices());
                                                   return exit_ok;
                                                 });
    };
  });

  auto* finalize = app.add_subcommand(
      "finalize",
      "finalize a closed month for some or every customer with usage (FinalizeInvoices)");
  finalize->add_option("--period", f->period, "the month, e.g. 2026-11")
      ->required()
      ->check(instant_format());
  finalize->add_option("--customer", f->customers, "only these customers (repeat); default: all");
  finalize->callback([run, f, &selected] {
    selected = [run, f] {
      v1::FinalizeInvoicesRequest request;
      *request.mutable_period_start() = *parse_instant(f->period);
      for (const auto& customer : f->customers) request.add_customer_ids(customer);
      return run->call<v1::FinalizeInvoicesResponse>(
          procedure(kInvoice, "FinalizeInvoices"), request,
          [](const v1::FinalizeInvoicesResponse& response) {
            print_invoice_list(stdout, response.invoices());
            return exit_ok;
          });
    };
  });
}

void add_plan(CLI::App& app, const std::shared_ptr<session>& run, std::function<int()>& selected) {
  auto* plan = app.add_subcommand("plan", "a customer's price plan versions");
  plan->require_subcommand(1);
  struct flags {
    std::string customer, file;
  };
  auto f = std::make_shared<flags>();
  auto* get = plan->add_subcommand("get", "the versions that price a customer (GetCustomerPlan)");
  get->add_option("customer", f->customer, "customer id; omitted: the default plan");
  get->callback([run, f, &selected] {
    selected = [run, f] {
      v1::GetCustomerPlanRequest request;
      request.set_customer_id(f->customer);
      return run->call<v1::GetCustomerPlanResponse>(
          procedure(kInvoice, "GetCustomerPlan"), request,
          [](const v1::GetCustomerPlanResponse& response) {
            print_plan(stdout, response.versions());
            return exit_ok;
          });
    };
  });
  auto* set = plan->add_subcommand(
      "set", "add (or replace, same effective_from) a plan version (SetCustomerPlan)");
  set->add_option("customer", f->customer, "customer id; omitted: the default plan");
  set->add_option(
         "--file", f->file,
         "the PlanVersion as proto3 JSON ('-': standard input), e.g. "
         "{\"effectiveFrom\":\"2026-11-01T00:00:00Z\",\"rates\":{\"cpuPerCoreHour\":0.05}}")
      ->required();
  set->callback([run, f, &selected] {
    selected = [run, f]() -> int {
      std::string json;
      if (f->file == "-") {
        json.assign(std::istreambuf_iterator<char>(std::cin), {});
      } else {
        std::ifstream in(f->file);
        if (!in) {
          fmt::print(stderr, "billingctl: cannot read {}\n", f->file);
          return exit_usage;
        }
        json.assign(std::istreambuf_iterator<char>(in), {});
      }
      v1::SetCustomerPlanRequest request;
      request.set_customer_id(f->customer);
      if (auto parsed =
              google::protobuf::util::JsonStringToMessage(json, request.mutable_version());
          !parsed.ok()) {
        fmt::print(stderr, "billingctl: {} is not a PlanVersion: {}\n", f->file,
                   parsed.message().as_string());
        return exit_usage;
      }
      return run->call<v1::SetCustomerPlanResponse>(
          procedure(kInvoice, "SetCustomerPlan"), request,
          [](const v1::SetCustomerPlanResponse& response) {
            print_plan(stdout, response.versions());
            return exit_ok;
          });
    };
  });
}

void add_admin(CLI::App& app, const std::shared_ptr<session>& run, std::function<int()>& selected) {
  auto* backup = app.add_subcommand(
      "backup", "an online backup of the node's ledger into its --backup-dir (CreateBackup)");
  backup->callback([run, &selected] {
    selected = [run] {
      return run->call<v1::CreateBackupResponse>(
          procedure(kAdmin, "CreateBackup"), v1::CreateBackupRequest{}, printing(&print_backup));
    };
  });
  auto* verify = app.add_subcommand(
      "verify-audit", "walk the tamper-evident audit chain; exit 5 when broken (VerifyAuditChain)");
  verify->callback([run, &selected] {
    selected = [run] {
      auto client = run->connect();
      if (!client) return exit_usage;
      const auto path = procedure(kAdmin, "VerifyAuditChain");
      v1::VerifyAuditChainResponse response;
      if (auto failed = client->unary(path, v1::VerifyAuditChainRequest{}, response)) {
        return session::report(path, *failed);
      }
      if (run->options().json) {
        print_json(stdout, response);
      } else {
        print_audit(stdout, response);
      }
      return response.intact() ? exit_ok : exit_check_failed;
    };
  });
}

void add_tail(CLI::App& app, const std::shared_ptr<session>& run, std::function<int()>& selected) {
  auto* tail = app.add_subcommand(
      "tail",
      "follow a customer's live usage (StreamLiveUsage) until Ctrl-C or the server ends it");
  auto customer = std::make_shared<std::string>();
  tail->add_option("customer", *customer, "customer id")->required();
  tail->callback([run, customer, &selected] {
    selected = [run, customer] {
      auto client = run->connect();
      if (!client) return exit_usage;
      const auto path = procedure(kQuery, "StreamLiveUsage");
      v1::StreamLiveUsageRequest request;
      request.set_customer_id(*customer);
      v1::UsageUpdate update;
      const bool json = run->options().json;
      auto failed = client->server_stream(
          path, request, update, [json](const google::protobuf::Message& message) {
            const auto& got = static_cast<const v1::UsageUpdate&>(message);
            if (json) {
              print_json(stdout, got);
              std::fflush(stdout);
            } else {
              print_update(stdout, got);
            }
            return true;
          });
      return failed ? session::report(path, *failed) : exit_ok;
    };
  });
}

}  // namespace

void add_commands(CLI::App& app, const std::shared_ptr<global_options>& options,
                  std::function<int()>& selected) {
  auto run = std::make_shared<session>(options);
  add_usage(app, run, selected);
  add_window(app, run, selected);
  add_invoices(app, run, selected);
  add_plan(app, run, selected);
  add_admin(app, run, selected);
  add_tail(app, run, selected);
}

}  // namespace billing::ctl
