// Package webhook delivers scheduled rotations to the customer's endpoint:
// it decides which targets are allowed (public https only, checked when a URL
// is configured with Policy.CheckURL and again when a delivery connects, by
// the Control hook of Policy.Dialer), signs deliveries per the Standard
// Webhooks specification (Sign, Verify), and sends them (Client): no
// redirects, no proxy, a 10 s timeout and a capped read of the answer.
//
// Policy.Insecure lifts only the https and public-address rules, for
// development and tests.
package webhook
