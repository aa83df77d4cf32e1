// Connect-Web clients of billingd's own origin. The bearer token is added to
// every call by an interceptor and lives only in this tab (sessionStorage).
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { BillingQueryService } from "@gen/billing/v1/billing_pb";
import { BillingInvoiceService } from "@gen/billing/v1/invoice_pb";

const TOKEN_KEY = "billing-ui.token";
const CUSTOMER_KEY = "billing-ui.customer";

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY) ?? "",
  customer: () => sessionStorage.getItem(CUSTOMER_KEY) ?? "",
  save(customer: string, token: string) {
    sessionStorage.setItem(CUSTOMER_KEY, customer);
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
  },
  forgetToken: () => sessionStorage.removeItem(TOKEN_KEY),
};

const bearer: Interceptor = (next) => (request) => {
  const token = session.token();
  if (token) request.header.set("Authorization", `Bearer ${token}`);
  return next(request);
};

const transport = createConnectTransport({
  baseUrl: window.location.origin,
  useBinaryFormat: true,
  interceptors: [bearer],
});

export const queries = createClient(BillingQueryService, transport);
export const invoices = createClient(BillingInvoiceService, transport);
