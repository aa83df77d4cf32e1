// Binds billing.v1.BillingInvoiceService to actors::invoicing. Every call
// reads RocksDB (and finalization waits for an fsync), so each runs on a
// detached CAF actor of its own, never on an io thread or the shared
// scheduler; billing RPCs are operator and month-end traffic, not ingest.
#pragma once

#include <caf/actor_system.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "actors/invoicing.hpp"
#include "actors/messages.hpp"
#include "gateway/connect_server.hpp"
#include "model/validation.hpp"
#include "security/auth.hpp"

namespace billing::gateway {

// Plans and invoices are money: SetCustomerPlan and FinalizeInvoices need the
// admin scope; GetInvoice, ListInvoices and GetCustomerPlan need admin or the
// customer's own scope (the default plan: admin). The receiving node
// authorizes and checks a call; the directory runs it where the customer's
// ledger is (in a cluster, its owner; calls for every customer or the
// default plan on every node), which runs it with invoice_call_executor.
void add_invoice_service(connect_router& router, caf::actor_system& system,
                         actors::directory_actor directory,
                         std::shared_ptr<actors::invoicing> invoicing,
                         model::validation_limits limits,
                         std::shared_ptr<const security::authenticator> auth);

// What a node's directory runs forwarded invoice calls with (spawn_directory).
actors::call_executor invoice_call_executor(std::shared_ptr<actors::invoicing> invoicing,
                                            model::validation_limits limits);

// Reads `path` (protobuf JSON of billing.v1.PlanFile) and applies every plan
// version through `invoicing` (audited as "plans-file"). invalid_argument for
// a file that does not parse or a bad version, naming the entry.
status apply_plans_file(const std::string& path, actors::invoicing& invoicing);

}  // namespace billing::gateway
