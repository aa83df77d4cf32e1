// billingctl's human-readable rendering of each answer (tables); --json
// prints the proto3 JSON mapping instead (print_json).
#pragma once

#include <google/protobuf/message.h>

#include <cstdio>

#include "billing/v1/admin.pb.h"
#include "billing/v1/billing.pb.h"
#include "billing/v1/invoice.pb.h"

namespace billing::ctl {

// One line of proto3 JSON (lowerCamelCase, zero values included, 64-bit
// integers as strings): for scripts and `jq`.
void print_json(std::FILE* out, const google::protobuf::Message& message);

void print_usage(std::FILE* out, const v1::GetCustomerUsageResponse& usage);
void print_window(std::FILE* out, const v1::GetBillingWindowResponse& window);
void print_invoice(std::FILE* out, const v1::Invoice& invoice);
void print_invoice_list(std::FILE* out,
                        const google::protobuf::RepeatedPtrField<v1::Invoice>& invoices);
void print_plan(std::FILE* out,
                const google::protobuf::RepeatedPtrField<v1::PlanVersion>& versions);
void print_backup(std::FILE* out, const v1::CreateBackupResponse& backup);
void print_audit(std::FILE* out, const v1::VerifyAuditChainResponse& audit);
// One line per live update: when, sequence, what the ingest added, month to date.
void print_update(std::FILE* out, const v1::UsageUpdate& update);

}  // namespace billing::ctl
