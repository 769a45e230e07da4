package service

import (
	"context"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// UsageInput selects usage: hourly or daily buckets in [From, To).
type UsageInput struct {
	From, To    time.Time // zero: To now, From a day (hour) or 30 days (day) before
	Granularity string    // apikey.UsageHour (also "") or apikey.UsageDay
	// ProjectID, EnvironmentID and OwnerID select a project's usage
	// (ProjectUsage); KeyUsage ignores them.
	ProjectID, EnvironmentID, OwnerID string
}

// filter checks in and returns the store's filter for it, at now.
func (in UsageInput) filter(now time.Time) (apikey.UsageFilter, error) {
	var bad problems
	f := apikey.UsageFilter{From: in.From, To: in.To, Granularity: in.Granularity, ProjectID: in.ProjectID,
		EnvironmentID: in.EnvironmentID, OwnerID: in.OwnerID}
	switch f.Granularity {
	case "", apikey.UsageHour:
		f.Granularity = apikey.UsageHour
	case apikey.UsageDay:
	default:
		bad.add("granularity", "must be hour or day")
	}
	if f.To.IsZero() {
		f.To = now
	}
	if f.From.IsZero() {
		f.From = f.To.Add(-24 * time.Hour)
		if f.Granularity == apikey.UsageDay {
			f.From = f.To.Add(-30 * 24 * time.Hour)
		}
	}
	if !f.From.Before(f.To) {
		bad.add("from", "must be before to")
	}
	if f.To.Sub(f.From) > apikey.UsageRetention {
		bad.add("from", "the range may span at most 100 days (usage is kept that long)")
	}
	return f, bad.err()
}

// KeyUsage returns the usage of one key the caller may read, oldest
// first. Verdicts this process counted are written first, so that they
// show at once; other replicas' show after their next flush.
func (s *Service) KeyUsage(ctx context.Context, p apikey.Principal, id string, in UsageInput) ([]apikey.UsageBucket, error) {
	if !p.Allows(apikey.ScopeRead) {
		return nil, errNoRead
	}
	f, err := in.filter(s.now())
	if err != nil {
		return nil, err
	}
	k, err := s.visibleKey(ctx, p, id, s.store.Key)
	if err != nil {
		return nil, err
	}
	f.KeyID, f.ProjectID, f.EnvironmentID, f.OwnerID = k.ID, "", "", ""
	return s.readUsage(ctx, f)
}

// ProjectUsage returns the usage of a project's keys, optionally of one
// environment and one owner, summed, oldest first.
func (s *Service) ProjectUsage(ctx context.Context, p apikey.Principal, in UsageInput) ([]apikey.UsageBucket, error) {
	f, err := in.filter(s.now())
	if err != nil {
		return nil, err
	}
	if f.EnvironmentID, err = readIn(p, in.ProjectID, in.EnvironmentID); err != nil {
		return nil, err
	}
	return s.readUsage(ctx, f)
}

func (s *Service) readUsage(ctx context.Context, f apikey.UsageFilter) ([]apikey.UsageBucket, error) {
	if err := s.counter.Flush(ctx, s.store); err != nil {
		return nil, err
	}
	return s.store.Usage(ctx, f)
}
