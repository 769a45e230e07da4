package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestServeConfigErr checks what an operator sees for a bad configuration:
// every problem once, each naming where its value came from, exit code 2,
// and no server started.
func TestServeConfigErr(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"ErrParseFlag": {[]string{"serve", "--webhook-max-attempts", "x"}, nil,
			"apikeyd: invalid configuration:\n" +
				"  - APIKEYD_WEBHOOK_MAX_ATTEMPTS (from --webhook-max-attempts): must be a whole number\n"},
		"ErrParseEnv": {[]string{"serve"}, map[string]string{"APIKEYD_ROTATION_CHECK_INTERVAL": "abc"},
			"apikeyd: invalid configuration:\n" +
				"  - APIKEYD_ROTATION_CHECK_INTERVAL (from APIKEYD_ROTATION_CHECK_INTERVAL): must be a duration such as 30s, 5m or 24h\n"},
		"ErrAll": {[]string{"serve", "--webhook-max-attempts", "x", "--last-used-flush=0s"},
			map[string]string{"APIKEYD_ROTATION_CHECK_INTERVAL": "abc", "APIKEYD_LOG_FORMAT": "xml"},
			"apikeyd: invalid configuration:\n" +
				"  - APIKEYD_ROTATION_CHECK_INTERVAL (from APIKEYD_ROTATION_CHECK_INTERVAL): must be a duration such as 30s, 5m or 24h\n" +
				"  - APIKEYD_WEBHOOK_MAX_ATTEMPTS (from --webhook-max-attempts): must be a whole number\n" +
				"  - APIKEYD_LAST_USED_FLUSH (from --last-used-flush): must be between 100ms and 1h, got 0s\n" +
				"  - APIKEYD_LOG_FORMAT (from APIKEYD_LOG_FORMAT): must be text or json, got \"xml\"\n"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, strings.NewReader(""), &stdout, &stderr, func(k string) string { return tc.env[k] })
			if code != exitUsage || stderr.String() != tc.want || stdout.Len() != 0 {
				t.Errorf("exit %d, stderr:\n%s\nstdout: %q\nwant exit %d, stderr:\n%s", code, &stderr, &stdout, exitUsage, tc.want)
			}
		})
	}
}
