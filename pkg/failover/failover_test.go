package failover_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

func TestReport(t *testing.T) {
	images := []rbd.Image{{Pool: "p", Name: "a"}, {Pool: "p", Name: "b"}, {Pool: "p", Name: "c"}}
	f := &fake{primary: true, statuses: []rbd.MirrorStatus{{}}}
	o, _ := opts()
	r := failover.Promote(context.Background(), f, nil, images, o)
	if r.Err() != nil || len(r) != 3 || r[0].Target != "p/a" || r[2].Target != "p/c" {
		t.Fatalf("%+v", r)
	}
	var b bytes.Buffer
	r.Write(&b)
	if !strings.HasPrefix(b.String(), "TARGET  BEFORE   AFTER    ACTION  TOOK  NOTE\np/a") {
		t.Errorf("table:\n%s", b.String())
	}
	r[1].Err = errors.New("boom")
	if err := r.Err(); err == nil || err.Error() != "1 of 3 failed: p/b: boom" {
		t.Errorf("%v", err)
	}
	b.Reset()
	failover.Report{{Target: "p/a", Action: "promoted", Took: 1234567890 * time.Nanosecond}}.Write(&b)
	if !strings.Contains(b.String(), " promoted  1.2s ") {
		t.Errorf("took is not rounded to 0.1 s:\n%s", b.String())
	}
}

// Each image's outcome is logged at its level.
func TestLogs(t *testing.T) {
	f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "a")}}
	o, logs := opts()
	failover.Promote(context.Background(), f, nil, []rbd.Image{img}, o)
	if !strings.Contains(logs.String(), `level=info msg=done action=none after=primary before=primary target=replicapool/img1`) {
		t.Errorf("%s", logs)
	}
	logs.Reset()
	failover.Resync(context.Background(), f, []rbd.Image{img}, o)
	if !strings.Contains(logs.String(), `level=error msg=failed action=none`) || !strings.Contains(logs.String(), "refusing to resync") {
		t.Errorf("%s", logs)
	}
}

// The hook sets only what its command line says; every other option must
// take its default (a zero grace or poll would fail or spin at once).
func TestDefaultsApply(t *testing.T) {
	quiet, _ := opts()
	f := &fake{primary: true, statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "a")}}
	if err := failover.Promote(context.Background(), f, nil, []rbd.Image{img}, failover.Options{Log: quiet.Log}).Err(); err != nil {
		t.Errorf("promote with defaults: %v", err)
	}
	f.primary = false
	if err := failover.Demote(context.Background(), f, nil, []rbd.Image{img}, failover.Options{Log: quiet.Log}).Err(); err != nil {
		t.Errorf("demote with defaults: %v", err)
	}
	// The default budget is config's.
	c := newClock()
	f = &fake{statuses: []rbd.MirrorStatus{status(t, "s3_b_replaying", "b")}, promote: []error{notYet}}
	res := only(t, failover.Promote(context.Background(), f, nil, []rbd.Image{img}, failover.Options{Clock: c, Log: quiet.Log}))
	if res.Err == nil || res.Took < config.DefaultStepTimeout || res.Took > config.DefaultStepTimeout+failover.DefaultPollCap {
		t.Errorf("%+v: want a failure after %s", res, config.DefaultStepTimeout)
	}
	// So is the parallelism: as many images as that at once, no more.
	g := &gate{want: config.DefaultParallelism}
	images := make([]rbd.Image, 2*config.DefaultParallelism+1)
	for i := range images {
		images[i] = rbd.Image{Pool: "p", Name: strconv.Itoa(i)}
	}
	failover.Demote(context.Background(), g, nil, images, failover.Options{Log: quiet.Log})
	if g.max != config.DefaultParallelism {
		t.Errorf("%d images at once, want %d", g.max, config.DefaultParallelism)
	}
	// One at a time is one at a time.
	g = &gate{want: 1}
	failover.Demote(context.Background(), g, nil, images[:3], failover.Options{Parallelism: 1, Log: quiet.Log})
	if g.max != 1 {
		t.Errorf("%d images at once, want 1", g.max)
	}
}

// gate holds each Info until want of them run at once (or a second passes),
// and notes the most that ever ran at once.
type gate struct {
	fake
	want, in, max int
}

func (g *gate) Info(ctx context.Context, i rbd.Image) (rbd.Info, error) {
	g.mu.Lock()
	g.in++
	g.max = max(g.max, g.in)
	g.mu.Unlock()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		g.mu.Lock()
		full := g.max >= g.want
		g.mu.Unlock()
		if full {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(5 * time.Millisecond)
	g.mu.Lock()
	g.in--
	g.mu.Unlock()
	return g.fake.Info(ctx, i)
}
