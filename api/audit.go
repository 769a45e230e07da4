package api

import (
	"context"

	"github.com/apikeyd/apikeyd/service"
)

type auditInput struct {
	ProjectID     string `query:"project_id" maxLength:"128" pattern:"^[A-Za-z0-9_.:-]+$" doc:"The project whose events to list. Omitted: an API key lists its own project; the admin token and root keys holding root-keys:read list the events of no project (the changes to root keys)."`
	EnvironmentID string `query:"environment_id" maxLength:"128" pattern:"^[A-Za-z0-9_.:-]+$"`
	KeyID         string `query:"key_id" maxLength:"64" pattern:"^[A-Za-z0-9_.:-]+$" doc:"Only events about this key."`
	Action        string `query:"action" enum:"api_key.created,api_key.updated,api_key.revoked,api_key.rotated,api_key.rotation_failed,api_key.disabled,api_key.enabled,api_key.imported,api_key.credits_adjusted,root_key.created,root_key.updated,root_key.revoked,root_key.rotated,owner.updated,owner.deleted" doc:"Only events of this kind."`
	Limit         int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
	Cursor        string `query:"cursor" maxLength:"256"`
}

type auditOutput struct {
	Link string `header:"Link"`
	Body []AuditEventObject
}

func (a *API) listAuditEvents(ctx context.Context, in *auditInput) (*auditOutput, error) {
	p := principal(ctx)
	project, noProject, err := auditProject(p, in.ProjectID)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	noteProject(ctx, project)
	l := listing{route: "audit", path: "/v1/audit-events",
		filters: query("project_id", project, "environment_id", in.EnvironmentID, "key_id", in.KeyID, "action", in.Action)}
	after, err := a.cursors.decode(l, in.Cursor)
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	evs, next, err := a.svc.AuditEvents(ctx, p, service.AuditInput{
		NoProject: noProject, ProjectID: project, EnvironmentID: in.EnvironmentID, KeyID: in.KeyID, Action: in.Action,
		Limit: in.Limit, After: after,
	})
	if err != nil {
		return nil, a.fail(ctx, err)
	}
	out := &auditOutput{Body: make([]AuditEventObject, len(evs))}
	for i, e := range evs {
		out.Body[i] = auditEventObject(e)
	}
	out.Link = a.cursors.nextLink(l, in.Limit, next)
	return out, nil
}
