package api

import (
	"context"
	"strconv"

	"github.com/apikeyd/apikeyd/service"
)

type auditInput struct {
	ProjectID     string `query:"project_id" required:"true" minLength:"1" maxLength:"128"`
	EnvironmentID string `query:"environment_id" maxLength:"128"`
	KeyID         string `query:"key_id" maxLength:"64" doc:"Only events about this key."`
	Action        string `query:"action" enum:"api_key.created,api_key.updated,api_key.revoked,api_key.rotated,api_key.rotation_failed" doc:"Only events of this kind."`
	Limit         int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
	Cursor        string `query:"cursor" maxLength:"256"`
}

type auditOutput struct {
	Link string `header:"Link"`
	Body []AuditEventObject
}

func (a *API) listAuditEvents(ctx context.Context, in *auditInput) (*auditOutput, error) {
	noteProject(ctx, in.ProjectID)
	after, err := decodeCursor(in.Cursor)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	evs, next, err := a.svc.AuditEvents(ctx, principal(ctx), service.AuditInput{
		ProjectID: in.ProjectID, EnvironmentID: in.EnvironmentID, KeyID: in.KeyID, Action: in.Action,
		Limit: in.Limit, After: after,
	})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &auditOutput{Body: make([]AuditEventObject, len(evs))}
	for i, e := range evs {
		out.Body[i] = auditEventObject(e)
	}
	out.Link = nextLink("/v1/audit-events", query("project_id", in.ProjectID, "environment_id", in.EnvironmentID,
		"key_id", in.KeyID, "action", in.Action, "limit", strconv.Itoa(in.Limit)), next)
	return out, nil
}
