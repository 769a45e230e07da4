package client

import "testing"

func TestNextTarget(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		want   string
	}{
		{"OK", []string{`</v1/api-keys?cursor=a&limit=2>; rel="next"`}, "/v1/api-keys?cursor=a&limit=2"},
		{"OK/Unquoted", []string{`</x>; rel=next`}, "/x"},
		{"OK/AmongOthers", []string{`</prev>; rel="prev", </next>; title="n"; rel="next"`}, "/next"},
		{"OK/SecondValue", []string{`</first>; rel="first"`, `</next>; rel="next"`}, "/next"},
		{"OK/RelList", []string{`</n>; rel="last next"`}, "/n"},
		{"None", nil, ""},
		{"None/OtherRel", []string{`</prev>; rel="prev"`}, ""},
		{"None/Garbage", []string{`rel="next"`}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := nextTarget(tc.values); got != tc.want {
				t.Fatalf("nextTarget(%q) = %q, want %q", tc.values, got, tc.want)
			}
		})
	}
}
