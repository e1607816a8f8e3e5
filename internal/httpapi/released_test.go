package httpapi

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestSpec_NoOperationNeedsMoreThanItsRelease is the part of the breaking
// change check oasdiff cannot make: it does not read x-permissions. An
// operation of the released contract that now needs a permission it did not
// need refuses callers it used to serve, and so does one that now needs a
// multi-factor session (x-mfa: always). `make check-breaking` runs it.
func TestSpec_NoOperationNeedsMoreThanItsRelease(t *testing.T) {
	t.Parallel()
	load := func(path ...string) *openapi3.T {
		doc, err := openapi3.NewLoader().LoadFromFile(filepath.Join(append([]string{"..", ".."}, path...)...))
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	released, current := load("api", "released", "v1.yaml"), load("api", "openapi.yaml")
	needs := func(doc *openapi3.T) map[string][]string {
		known, err := knownPermissions(doc)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for path, item := range doc.Paths.Map() {
			for method, op := range item.Operations() {
				perms, err := operationPermissions(op, known)
				if err != nil {
					t.Fatal(err)
				}
				out[method+" "+path] = perms
				// x-mfa: always refuses every caller without MFA; if-enrolled
				// refuses none that v1 served (an account with MFA has no
				// single-factor sessions: its login needs the second factor).
				if m, err := operationMFA(op); err != nil {
					t.Fatal(err)
				} else if m == mfaAlways {
					out[method+" "+path] = append(out[method+" "+path], "(a multi-factor session)")
				}
				if op.Security == nil && doc.Security != nil || op.Security != nil && len(*op.Security) > 0 {
					out[method+" "+path] = append(out[method+" "+path], "(a bearer token)")
				}
			}
		}
		return out
	}
	now := needs(current)
	checked := 0
	for op, before := range needs(released) {
		after, ok := now[op]
		if !ok {
			continue // a removed operation is oasdiff's to report
		}
		checked++
		for _, p := range after {
			if !slices.Contains(before, p) {
				t.Errorf("%s needs %s, which the released contract did not ask for", op, p)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("compared %d operations; the comparison is broken", checked)
	}
}
