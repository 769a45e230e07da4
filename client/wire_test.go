package client_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/api"
	"github.com/apikeyd/apikeyd/client"
)

// TestWireTypes checks that each of the client's answer types has exactly
// the JSON fields of the server's wire type for that answer, so that a
// field added to the server's key object is added to the client's too.
func TestWireTypes(t *testing.T) {
	for _, tc := range []struct {
		client, server reflect.Type
	}{
		{reflect.TypeFor[client.Key](), reflect.TypeFor[api.KeyObject]()},
		{reflect.TypeFor[client.CreatedKey](), reflect.TypeFor[api.CreatedKeyObject]()},
		{reflect.TypeFor[client.UpdatedKey](), reflect.TypeFor[api.PatchedKeyObject]()},
		{reflect.TypeFor[client.Rotated](), reflect.TypeFor[api.RotateObject]()},
		{reflect.TypeFor[client.Verdict](), reflect.TypeFor[api.VerifyObject]()},
		{reflect.TypeFor[client.AuditEvent](), reflect.TypeFor[api.AuditEventObject]()},
		{reflect.TypeFor[client.RootKey](), reflect.TypeFor[api.RootKeyObject]()},
		{reflect.TypeFor[client.CreatedRootKey](), reflect.TypeFor[api.CreatedRootKeyObject]()},
		{reflect.TypeFor[client.RotatedRootKey](), reflect.TypeFor[api.RotatedRootKeyObject]()},
	} {
		t.Run(tc.client.Name(), func(t *testing.T) {
			got, want := jsonFields(tc.client), jsonFields(tc.server)
			if !slices.Equal(got, want) {
				t.Fatalf("client.%s has the JSON fields\n%v\nthe server's %s\n%v", tc.client.Name(), got, tc.server.Name(), want)
			}
		})
	}
}

// jsonFields returns the sorted JSON names of t's exported fields, those of
// embedded structs included, as encoding/json sees them.
func jsonFields(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			names = append(names, jsonFields(f.Type)...)
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
			names = append(names, jsonFields(f.Type.Elem())...)
		case !f.IsExported() || name == "-":
		case name == "":
			names = append(names, f.Name)
		default:
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}
