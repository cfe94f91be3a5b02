package main

import (
	"runtime/debug"
	"testing"
)

// A one-shot generate turns collection off; a GOGC or GOMEMLIMIT that the
// operator set wins.
func TestShortLived(t *testing.T) {
	restore := func(percent int, limit int64) {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
	percent, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	defer restore(percent, limit)

	for _, c := range []struct {
		env, value string
		wantOff    bool
	}{
		{"", "", true},
		{"GOGC", "50", false},
		{"GOMEMLIMIT", "1GiB", false},
	} {
		debug.SetGCPercent(100)
		t.Setenv("GOGC", "")
		t.Setenv("GOMEMLIMIT", "")
		if c.env != "" {
			t.Setenv(c.env, c.value)
		}
		shortLived()
		got := debug.SetGCPercent(100)
		if off := got == -1; off != c.wantOff {
			t.Errorf("%s=%q: GC percent %d after shortLived", c.env, c.value, got)
		}
		if c.wantOff && debug.SetMemoryLimit(-1) != 128<<20 {
			t.Error("no memory limit set with collection off")
		}
	}
}
