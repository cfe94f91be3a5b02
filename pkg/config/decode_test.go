package config

import (
	"errors"
	"testing"
)

// The line comes from the text itself, not from yaml.v3's wording: an error
// that names no line, or the wrong one, is still placed where the text breaks.
func TestSyntaxProblemDoesNotTrustTheMessage(t *testing.T) {
	data := []byte("a: 1\nb: 2\nc: [x\nd: 4\n")
	for _, msg := range []string{"yaml: something new", "yaml: line 1: something new", "yaml: line 2: something new"} {
		p := syntaxProblem(data, "f.yaml", errors.New(msg))
		if p.Line != 3 || p.Message != "not valid YAML: something new" {
			t.Errorf("%q: placed %+v, want line 3", msg, p)
		}
	}
}
