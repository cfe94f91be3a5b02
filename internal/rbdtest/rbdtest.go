// Package rbdtest replays what the rbd CLI printed on the two-site lab, for
// the tests of the code that runs it: one recording is NAME.out, NAME.err and
// NAME.rc (stdout, stderr, exit code) in a directory. The Ceph suite's record
// mode (test/ceph, RBD_DR_RECORD) writes them with Write.
package rbdtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// Testdata holds the recordings of the two-site lab, one folder per Ceph
// release (ReleaseDir), from the module root.
const Testdata = "pkg/rbd/testdata"

// Lab is the recordings of Ceph 16.2, which the failover tests replay by
// name, from the module root.
const Lab = Testdata + "/lab-16.2"

// Dir is Lab from the directory of a test's package (two levels below the
// module root, as pkg/rbd and pkg/failover are).
var Dir = filepath.Join("..", "..", Lab)

// ReleaseDir is the folder of a release's recordings: lab-<x.y> for Ceph
// x.y.z.
func ReleaseDir(version string) string {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return "lab-" + version
	}
	return "lab-" + parts[0] + "." + parts[1]
}

// Releases are the recorded releases' folders under testdata, by name.
func Releases(t testing.TB, testdata string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(testdata, "lab-*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no recordings under %s (make record): %v", testdata, err)
	}
	return dirs
}

// Load reads recording name from dir.
func Load(t testing.TB, dir, name string) rbd.Output {
	t.Helper()
	read := func(ext string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name+"."+ext))
		if err != nil {
			t.Fatalf("recording %s: %v", name, err)
		}
		return b
	}
	rc, err := strconv.Atoi(strings.TrimSpace(string(read("rc"))))
	if err != nil {
		t.Fatalf("recording %s: exit code: %v", name, err)
	}
	return rbd.Output{Stdout: read("out"), Stderr: read("err"), ExitCode: rc}
}

// Write stores out as recording name in dir.
func Write(dir, name string, out rbd.Output) error {
	for ext, b := range map[string][]byte{"out": out.Stdout, "err": out.Stderr, "rc": []byte(strconv.Itoa(out.ExitCode) + "\n")} {
		if err := os.WriteFile(filepath.Join(dir, name+"."+ext), b, 0o644); err != nil {
			return fmt.Errorf("writing recording %s: %w", name, err)
		}
	}
	return nil
}

// The verbs a Replay tells apart, most specific first.
var verbs = []string{
	"mirror image promote --force", "mirror image promote", "mirror image demote",
	"mirror image resync", "mirror image status", "mirror pool status", "snap ls", "info",
	"image-meta set", "image-meta get", "getomapval", "lock ls",
}

// Verb is the rbd verb of a command line ("snap ls", "mirror image promote
// --force"...), or the whole line if it is none of them.
func Verb(argv []string) string {
	line := strings.Join(argv, " ")
	for _, v := range verbs {
		if strings.Contains(line, v) {
			return v
		}
	}
	return line
}

// Replay is an rbd.Runner that answers each verb with the next output of its
// queue and repeats the last one. A verb with no queue fails the test.
type Replay struct {
	T      testing.TB
	Queues map[string][]rbd.Output

	mu    sync.Mutex
	calls [][]string
}

// Run implements rbd.Runner.
func (r *Replay) Run(_ context.Context, argv []string) (rbd.Output, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	verb := Verb(argv)
	r.calls = append(r.calls, argv)
	q := r.Queues[verb]
	if len(q) == 0 {
		r.T.Errorf("no recording for rbd %s", strings.Join(argv, " "))
		return rbd.Output{ExitCode: 1, Stderr: []byte("no recording")}, nil
	}
	if len(q) > 1 {
		r.Queues[verb] = q[1:]
	}
	return q[0], nil
}

// Count is how many times verb was run.
func (r *Replay) Count(verb string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if Verb(c) == verb {
			n++
		}
	}
	return n
}

// Calls lists the verbs run, in order.
func (r *Replay) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	verbs := make([]string, len(r.calls))
	for i, c := range r.calls {
		verbs[i] = Verb(c)
	}
	return verbs
}

// Argv lists the command lines run, in order.
func (r *Replay) Argv() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]string(nil), r.calls...)
}

// Answer is a Replay that answers every verb named with out.
func Answer(t testing.TB, out rbd.Output, verbs ...string) *Replay {
	r := &Replay{T: t, Queues: map[string][]rbd.Output{}}
	for _, v := range verbs {
		r.Queues[v] = []rbd.Output{out}
	}
	return r
}
