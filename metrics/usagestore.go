package metrics

import (
	"context"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// The usage side of the counting store (reservations, balances, usage
// counts), counted like the keys'.

func (s *countingStore) GrantRate(ctx context.Context, g apikey.RateGrant) (apikey.RateGrantResult, error) {
	start := time.Now()
	r, err := s.Store.GrantRate(ctx, g)
	s.m.ReservationTime("ratelimit", time.Since(start))
	if err == nil {
		s.m.Reservation("ratelimit", "taken", r.Granted)
	}
	return r, s.count("grant_rate", err)
}

func (s *countingStore) ReturnGrants(ctx context.Context, returns []apikey.GrantReturn) error {
	err := s.Store.ReturnGrants(ctx, returns)
	if err == nil {
		for _, r := range returns {
			if !r.Narrows() { // a narrowing moves spent admissions
				s.m.Reservation("ratelimit", "returned", r.N)
			}
		}
	}
	return s.count("return_grants", err)
}

func (s *countingStore) ReserveCredits(ctx context.Context, r apikey.CreditReservation) (apikey.CreditLease, error) {
	start := time.Now()
	l, err := s.Store.ReserveCredits(ctx, r)
	s.m.ReservationTime("credits", time.Since(start))
	if err == nil {
		s.m.Reservation("credits", "taken", l.Got)
	}
	return l, s.count("reserve_credits", err)
}

func (s *countingStore) ReturnCredits(ctx context.Context, replicaID string, returns []apikey.CreditAmount) error {
	err := s.Store.ReturnCredits(ctx, replicaID, returns)
	if err == nil {
		for _, r := range returns {
			s.m.Reservation("credits", "returned", r.N)
		}
	}
	return s.count("return_credits", err)
}

func (s *countingStore) ReportSpends(ctx context.Context, replicaID string, spends []apikey.CreditAmount) error {
	return s.count("report_spends", s.Store.ReportSpends(ctx, replicaID, spends))
}

func (s *countingStore) Balance(ctx context.Context, subject string, now time.Time) (*apikey.Credits, error) {
	c, err := s.Store.Balance(ctx, subject, now)
	return c, s.count("balance", err)
}

func (s *countingStore) ApplyRefills(ctx context.Context, now time.Time, limit int) (int, error) {
	n, err := s.Store.ApplyRefills(ctx, now, limit)
	return n, s.count("apply_refills", err)
}

func (s *countingStore) Heartbeat(ctx context.Context, replicaID string, now time.Time) (int, error) {
	n, err := s.Store.Heartbeat(ctx, replicaID, now)
	return n, s.count("heartbeat", err)
}

func (s *countingStore) ReapLeases(ctx context.Context, now time.Time) (int64, error) {
	n, err := s.Store.ReapLeases(ctx, now)
	if err == nil {
		s.m.Reservation("credits", "lost", n)
	}
	return n, s.count("reap_leases", err)
}

func (s *countingStore) AddUsage(ctx context.Context, counts []apikey.UsageCount) error {
	return s.count("add_usage", s.Store.AddUsage(ctx, counts))
}

func (s *countingStore) Usage(ctx context.Context, f apikey.UsageFilter) ([]apikey.UsageBucket, error) {
	b, err := s.Store.Usage(ctx, f)
	return b, s.count("usage", err)
}

func (s *countingStore) PruneUsage(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.Store.PruneUsage(ctx, before)
	return n, s.count("prune_usage", err)
}
