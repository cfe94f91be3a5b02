package ceph

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// The Ceph releases that run only the core scenarios run side by side, each
// in a lab of its own on the same two cores. Their scenarios may overlap, but
// a floor-ratio is a comparison of two timings, and the other lab's work
// landing on one of them and not the other swung the ratio by a factor of
// two. RBD_DR_CEPH_MEASURE_LOCK names a file the suites share: a scenario
// holds a shared lock on it while it runs, and a measurement converts that
// to an exclusive one, so it runs while no other lab runs a scenario (their
// daemons idle). Scenario 8's relocations take it. The forced failover does
// not: its one forced promote measured 1.17 to 1.29 side by side, and holding
// the lock through its wait for the dead site would serialize the labs for
// minutes. Without the variable nothing is locked.

// scenarioLock is the running scenario's lock file (nil: none); scenarios
// run one after another.
var scenarioLock *os.File

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
	flock(t, f, syscall.LOCK_SH)
	scenarioLock = f
	return func() {
		scenarioLock = nil
		f.Close() // releases the lock
	}
}

// measure waits until no other lab runs a scenario and keeps them waiting
// (the scenario's shared lock converted to the exclusive one) until the
// returned func converts it back.
func measure(t *testing.T) func() {
	t.Helper()
	f := scenarioLock
	if f == nil {
		return func() {}
	}
	flock(t, f, syscall.LOCK_EX)
	return func() { flock(t, f, syscall.LOCK_SH) }
}

func flock(t *testing.T, f *os.File, how int) {
	t.Helper()
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		t.Fatalf("locking %s for the floor measurements: %v", f.Name(), err)
	}
}

// A measurement waits while another lab's scenario holds the lock, and a
// scenario of the other lab waits while a measurement runs. It needs no lab.
func TestMeasureWaitsForTheOtherLab(t *testing.T) {
	path := t.TempDir() + "/measure.lock"
	t.Setenv("RBD_DR_CEPH_MEASURE_LOCK", path)
	other, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	flock(t, other, syscall.LOCK_SH) // the other lab runs a scenario
	release := lockScenario(t)
	defer release()
	measured := make(chan func())
	go func() { measured <- measure(t) }()
	select {
	case <-measured:
		t.Fatal("the measurement began while the other lab ran a scenario")
	case <-time.After(200 * time.Millisecond):
	}
	flock(t, other, syscall.LOCK_UN) // its scenario ended
	done := <-measured
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		t.Fatal("the other lab's next scenario began during the measurement")
	}
	done()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		t.Fatalf("the other lab's next scenario still waits after the measurement: %v", err)
	}
}
