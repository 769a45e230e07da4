// Package webhook delivers scheduled rotations to the customer's endpoint:
// it decides which targets are allowed (public https only, checked when a URL
// is configured and again when a delivery connects) and signs deliveries per
// the Standard Webhooks specification.
package webhook
