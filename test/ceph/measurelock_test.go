package ceph

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
)

// The Ceph releases that run only the core scenarios run side by side, each
// in a lab of its own on the same two cores. Their scenarios may overlap, but
// a floor-ratio is a comparison of two timings, and the other lab's work
// landing on one of them and not the other swung the ratio by a factor of
// two. RBD_DR_CEPH_MEASURE_LOCK names a file the suites share: a scenario
// holds a shared lock on it while it runs, and a measurement converts that
// to an exclusive one, so it runs while no other lab runs a scenario (their
// daemons idle). Scenario 8's relocations take it; the forced failover's
// single forced promote measured the same side by side (1.19 to 1.30), and
// holding the lock through its wait for the dead site would serialize the
// labs for minutes. Without the variable nothing is locked.
var measureLock struct {
	sync.Mutex
	file *os.File
}

// lockScenario takes the shared lock for a scenario; the returned func
// releases it.
func lockScenario(t *testing.T) func() {
	t.Helper()
	path := os.Getenv("RBD_DR_CEPH_MEASURE_LOCK")
	if path == "" {
		return func() {}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("the measurement lock: %v", err)
	}
	if err := flock(f, syscall.LOCK_SH); err != nil {
		f.Close()
		t.Fatal(err)
	}
	measureLock.Lock()
	measureLock.file = f
	measureLock.Unlock()
	return func() {
		measureLock.Lock()
		measureLock.file = nil
		measureLock.Unlock()
		f.Close() // releases the lock
	}
}

// measure waits until no other lab runs a scenario and keeps them waiting
// (the scenario's shared lock converted to the exclusive one) until the
// returned func converts it back.
func measure(t *testing.T) func() {
	t.Helper()
	measureLock.Lock()
	f := measureLock.file
	measureLock.Unlock()
	if f == nil {
		return func() {}
	}
	if err := flock(f, syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := flock(f, syscall.LOCK_SH); err != nil {
			t.Error(err)
		}
	}
}

// flock waits for the lock, retrying when a signal interrupts the wait.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			if err != nil {
				return fmt.Errorf("locking %s for the floor measurements: %w", f.Name(), err)
			}
			return nil
		}
	}
}
