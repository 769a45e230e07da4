package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

type statusBody struct {
	Body struct {
		Status string `json:"status" example:"ok"`
	}
}

type openAPIOutput struct {
	Body openAPIDocument
}

// openAPIDocument is the body of GET /openapi.json, documented as a plain
// object: described by its Go type, huma.OpenAPI, the document would list
// huma's own types (OpenAPI, Operation, Schema, …) among the API's schemas.
type openAPIDocument struct{ doc *huma.OpenAPI }

// Schema implements huma.SchemaProvider.
func (openAPIDocument) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: huma.TypeObject, Description: "An OpenAPI 3.1 document.", AdditionalProperties: true}
}

// MarshalJSON writes the document as huma.OpenAPI writes itself.
func (d openAPIDocument) MarshalJSON() ([]byte, error) { return d.doc.MarshalJSON() }

func (a *API) healthRoutes() {
	huma.Register(a.huma, huma.Operation{
		OperationID: "healthz", Method: http.MethodGet, Path: "/healthz", Tags: []string{"Operations"},
		Summary: "Liveness", Description: "200 while the process serves requests.",
	}, func(context.Context, *struct{}) (*statusBody, error) {
		out := &statusBody{}
		out.Body.Status = "ok"
		return out, nil
	})
	huma.Register(a.huma, huma.Operation{
		OperationID: "readyz", Method: http.MethodGet, Path: "/readyz", Tags: []string{"Operations"},
		Summary: "Readiness", Description: "200 only while the store answers and verification is ready.",
		Errors: []int{http.StatusServiceUnavailable},
	}, func(ctx context.Context, _ *struct{}) (*statusBody, error) {
		if a.ready != nil {
			if err := a.ready(ctx); err != nil {
				a.log.WarnContext(ctx, "not ready", "err", err)
				return nil, newProblem(http.StatusServiceUnavailable, "not ready")
			}
		}
		out := &statusBody{}
		out.Body.Status = "ready"
		return out, nil
	})
	huma.Register(a.huma, huma.Operation{
		OperationID: "openapi", Method: http.MethodGet, Path: "/openapi.json", Tags: []string{"Operations"},
		Summary: "OpenAPI document", Description: "The OpenAPI 3.1 description of this API.",
	}, func(context.Context, *struct{}) (*openAPIOutput, error) {
		return &openAPIOutput{Body: openAPIDocument{a.huma.OpenAPI()}}, nil
	})
}
