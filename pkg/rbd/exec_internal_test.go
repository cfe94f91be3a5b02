package rbd

import (
	"testing"
	"time"
)

// Every real call (NewClient's Exec{}) gets the default grace; a given one
// wins.
func TestGrace(t *testing.T) {
	if g := (Exec{}).grace(); g != DefaultWaitDelay {
		t.Errorf("Exec{} grace %s, want the default %s", g, DefaultWaitDelay)
	}
	if g := (Exec{WaitDelay: time.Second}).grace(); g != time.Second {
		t.Errorf("grace %s, want the 1s given", g)
	}
}
