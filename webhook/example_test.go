package webhook_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/webhook"
)

// A receiver checks the signature and the age of the timestamp before it
// trusts a delivery, and answers 2xx only once it has stored the key.
func ExampleVerify() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // from rotation_webhook_secret

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		ts, err := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64)
		if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
			http.Error(w, "stale or missing timestamp", http.StatusBadRequest)
			return
		}
		if !webhook.Verify(secret, r.Header.Get("webhook-id"), ts, body, r.Header.Get("webhook-signature")) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		// Store the new key durably, keyed by webhook-id, then answer 2xx.
		fmt.Println("verified", r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusNoContent)
	})

	// What apikeyd sends, for the example's sake.
	srv := httptest.NewServer(handler)
	defer srv.Close()
	body := `{"type":"api_key.rotated","timestamp":"2030-01-02T03:04:05Z","data":{}}`
	now := time.Now().Unix()
	sig, _ := webhook.Sign(secret, "msg_01jd3m5x8q7w9e2r4t6y8u0i1o", now, []byte(body))
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
	req.Header.Set("webhook-id", "msg_01jd3m5x8q7w9e2r4t6y8u0i1o")
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now, 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// verified msg_01jd3m5x8q7w9e2r4t6y8u0i1o
	// 204
}
