package service_test

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/seal"
	"github.com/apikeyd/apikeyd/service"
	"github.com/apikeyd/apikeyd/sqlite"
	"github.com/apikeyd/apikeyd/webhook"
	"github.com/apikeyd/apikeyd/webhook/webhooktest"
)

// TestWebhookURLRefused checks that, outside insecure mode, create and patch
// refuse every webhook target that is not public https — including a name
// that a (hostile) resolver maps to loopback — with an error naming
// rotation_webhook_url, and change nothing.
func TestWebhookURLRefused(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "apikeyd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	box, _ := seal.New(make([]byte, seal.KeySize))
	svc, err := service.New(service.Options{
		Store: st, Box: box, AdminToken: "admin-token-for-tests", KeyPrefix: "sk",
		Webhooks: webhook.Policy{Resolver: webhooktest.LoopbackResolver(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	admin := apikey.AdminPrincipal
	plain, err := svc.Create(t.Context(), admin, service.CreateInput{ProjectID: "p1", Name: "plain"})
	if err != nil {
		t.Fatal(err)
	}

	for name, url := range map[string]string{
		"ErrLoopback":      "https://127.0.0.1/h",
		"ErrPrivate":       "https://10.0.0.1/h",
		"ErrLoopbackV6":    "https://[::1]/h",
		"ErrMetadata":      "https://169.254.169.254/latest/meta-data",
		"ErrLocalhost":     "https://localhost/h",
		"ErrSubLocalhost":  "https://hooks.localhost/h",
		"ErrResolvesLocal": "https://hooks.rebind.example/h",
		"ErrHTTP":          "http://hooks.example.com/h",
		"ErrHTTPLoopback":  "http://127.0.0.1:8080/h",
		"ErrMappedV4":      "https://[::ffff:10.0.0.1]/h",
	} {
		t.Run(name, func(t *testing.T) {
			days := 30
			_, err := svc.Create(t.Context(), admin, service.CreateInput{
				ProjectID: "p1", Name: "n", RotationIntervalDays: &days, RotationWebhookURL: &url,
			})
			checkField(t, err, "rotation_webhook_url")
			_, err = svc.Patch(t.Context(), admin, plain.Key.ID, service.PatchInput{
				RotationWebhookURL: apikey.Some(url),
			})
			checkField(t, err, "rotation_webhook_url")
		})
	}
	k, err := st.Key(t.Context(), plain.Key.ID)
	if err != nil || k.Version != 1 || k.RotationWebhookURL != "" {
		t.Errorf("refused patches changed the key: %+v, %v", k, err)
	}
	keys, _ := st.Keys(t.Context(), apikey.KeyFilter{ProjectID: "p1", Limit: 100})
	if len(keys) != 1 {
		t.Errorf("%d keys after refused creates, want 1", len(keys))
	}
}

func checkField(t *testing.T, err error, field string) {
	t.Helper()
	var e *apikey.Error
	if !errors.As(err, &e) || e.Code != apikey.EINVALID {
		t.Fatalf("error %v, want %s", err, apikey.EINVALID)
	}
	if !slices.ContainsFunc(e.Fields, func(f apikey.FieldError) bool { return f.Field == field }) {
		t.Errorf("error fields %+v, want %s", e.Fields, field)
	}
}
