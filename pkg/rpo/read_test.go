package rpo_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rpo"
)

// slowReader answers every call after a pause and counts how many of its
// image reads ran at once; broken images fail their info.
type slowReader struct {
	mu             sync.Mutex
	now, most      int
	scheduleStatus map[string]int
	broken         map[string]bool
}

func (r *slowReader) enter() func() {
	r.mu.Lock()
	r.now++
	r.most = max(r.most, r.now)
	r.mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	return func() { r.mu.Lock(); r.now--; r.mu.Unlock() }
}

func (r *slowReader) Info(_ context.Context, img rbd.Image) (rbd.Info, error) {
	defer r.enter()()
	if r.broken[img.Name] {
		return rbd.Info{}, errors.New("no such image")
	}
	return rbd.Info{}, nil
}

func (r *slowReader) MirrorStatus(_ context.Context, img rbd.Image) (rbd.MirrorStatus, error) {
	defer r.enter()()
	return rbd.MirrorStatus{Name: img.Name}, nil
}

func (r *slowReader) Snapshots(context.Context, rbd.Image) ([]rbd.Snapshot, error) {
	defer r.enter()()
	return nil, nil
}

func (r *slowReader) Schedules(context.Context) ([]rbd.Schedule, error) { return nil, nil }

func (r *slowReader) ScheduleStatus(_ context.Context, place string) ([]rbd.ScheduledSnapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scheduleStatus[place]++
	return nil, nil
}

// Read works on up to parallelism images at once, returns them in the order
// asked, keeps each image's own error, and reads each place's schedule
// status once.
func TestReadIsParallelBoundedAndOrdered(t *testing.T) {
	var images []rbd.Image
	for i := range 12 {
		images = append(images, rbd.Image{Pool: []string{"p1", "p2"}[i%2], Name: fmt.Sprintf("img%02d", i)})
	}
	for _, parallelism := range []int{1, 4, 20} {
		r := &slowReader{scheduleStatus: map[string]int{}, broken: map[string]bool{"img05": true}}
		got, err := rpo.Read(context.Background(), r, "site-a", "client.x", images, parallelism)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(parallelism, len(images)); r.most != want {
			t.Errorf("parallelism %d: %d reads ran at once, want %d", parallelism, r.most, want)
		}
		for i, o := range got {
			if o.Image != images[i] || o.Site != "site-a" {
				t.Errorf("parallelism %d: row %d is %s on %s, want %s on site-a", parallelism, i, o.Image, o.Site, images[i])
			}
			if (o.Err != nil) != (images[i].Name == "img05") || (o.Err == nil && o.Status.Name != images[i].Name) {
				t.Errorf("parallelism %d: %s observed %+v", parallelism, images[i], o)
			}
		}
		if r.scheduleStatus["p1"] != 1 || r.scheduleStatus["p2"] != 1 {
			t.Errorf("parallelism %d: schedule status read %v, want once per pool", parallelism, r.scheduleStatus)
		}
	}
}
