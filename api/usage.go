package api

import (
	"context"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/service"
)

// UsageBucketObject is the usage of one hour or UTC day.
type UsageBucketObject struct {
	Start        time.Time        `json:"start"`
	Counts       map[string]int64 `json:"counts" doc:"Verdicts by code."`
	CreditsSpent int64            `json:"credits_spent"`
}

// The query of both usage routes: from, to and granularity.
type keyUsageInput struct {
	KeyID       string    `path:"keyID" doc:"Key ID. Any other string, whatever its length, is 404."`
	From        time.Time `query:"from" doc:"Start (RFC 3339), inclusive; default: a day (hour) or 30 days (day) before to."`
	To          time.Time `query:"to" doc:"End (RFC 3339), exclusive; default now."`
	Granularity string    `query:"granularity" enum:"hour,day" default:"hour"`
}

type projectUsageInput struct {
	ProjectID     string    `query:"project_id" maxLength:"128" pattern:"^[A-Za-z0-9_.:-]+$" doc:"Required with the admin token; an API key reads its own project when it is omitted."`
	EnvironmentID string    `query:"environment_id" maxLength:"128" pattern:"^[A-Za-z0-9_.:-]+$"`
	OwnerID       string    `query:"owner_id" maxLength:"255"`
	From          time.Time `query:"from" doc:"Start (RFC 3339), inclusive; default: a day (hour) or 30 days (day) before to."`
	To            time.Time `query:"to" doc:"End (RFC 3339), exclusive; default now."`
	Granularity   string    `query:"granularity" enum:"hour,day" default:"hour"`
}

type usageOutput struct {
	Body []UsageBucketObject
}

func usageOut(buckets []apikey.UsageBucket) *usageOutput {
	out := &usageOutput{Body: make([]UsageBucketObject, len(buckets))}
	for i, b := range buckets {
		out.Body[i] = UsageBucketObject{Start: b.Start, Counts: b.Counts, CreditsSpent: b.CreditsSpent}
	}
	return out
}

// keyUsage is GET /v1/api-keys/{keyID}/usage.
func (a *API) keyUsage(ctx context.Context, in *keyUsageInput) (*usageOutput, error) {
	b, err := a.svc.KeyUsage(ctx, principal(ctx), in.KeyID, service.UsageInput{From: in.From, To: in.To, Granularity: in.Granularity})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return usageOut(b), nil
}

// projectUsage is GET /v1/usage.
func (a *API) projectUsage(ctx context.Context, in *projectUsageInput) (*usageOutput, error) {
	p := principal(ctx)
	project, err := listProject(p, in.ProjectID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	noteProject(ctx, project)
	b, err := a.svc.ProjectUsage(ctx, p, service.UsageInput{From: in.From, To: in.To, Granularity: in.Granularity,
		ProjectID: project, EnvironmentID: in.EnvironmentID, OwnerID: in.OwnerID})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	return usageOut(b), nil
}
