package apikey

import "time"

// Delivery is one scheduled rotation on its way to the customer: the
// replacement key issued when the rotation came due, waiting in a durable
// outbox until the rotation webhook has accepted it or the attempts have
// run out.
//
// Exactly one delivery exists per due rotation, and its ID is the
// webhook-id of every attempt, so a receiver can recognise a retry. The
// replacement's plaintext exists nowhere else: PayloadSealed holds it,
// encrypted with the master key, until the delivery finishes, when it is
// erased.
type Delivery struct {
	// ID is "msg_…" (IDKindDelivery), sent as the webhook-id header.
	ID string
	// KeyID is the key being rotated; ReplacementKeyID the key issued to
	// replace it, which is announced by this delivery.
	KeyID            string
	ReplacementKeyID string

	State DeliveryState
	// PayloadSealed is the replacement's plaintext sealed with the master
	// key; nil once the delivery is no longer pending.
	PayloadSealed []byte

	// Attempts counts the attempts started so far, including one whose
	// worker died before its outcome was recorded.
	Attempts int
	// NextAttemptAt is when the next attempt may start; always set.
	NextAttemptAt time.Time
	// LeasedUntil is set while a worker makes an attempt: until then no
	// other worker may take the delivery. A worker that dies leaves the
	// lease to expire, and the next worker resumes with the same ID.
	LeasedUntil time.Time
	// LastError says why the last attempt failed (or why the delivery was
	// abandoned), in words fit for an operator: never a key or a secret.
	LastError string

	CreatedAt time.Time
	UpdatedAt time.Time
}

// DeliveryState is where a delivery stands.
type DeliveryState string

// Delivery states. A delivery starts pending and ends delivered or
// abandoned; it never goes back.
const (
	DeliveryPending   DeliveryState = "pending"
	DeliveryDelivered DeliveryState = "delivered"
	DeliveryAbandoned DeliveryState = "abandoned"
)
