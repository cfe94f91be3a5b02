package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// The rpo-check fails (its Job with it) on a copy older than 3x the
// promise, prints every image, and names the cap a key lacks.
func TestRPOCheckFailsOnAnOldCopy(t *testing.T) {
	fake, err := filepath.Abs("testdata/status/rbd")
	if err != nil {
		t.Fatal(err)
	}
	img := rbd.Image{Pool: "replicapool", Name: "img2"}
	for _, site := range []string{"192.0.2.1:6789", "192.0.2.2:6789"} {
		var out bytes.Buffer
		c := rbd.NewClient(rbd.Conn{Binary: fake, MonHost: site, ID: "shop"}, time.Minute)
		r := hookcmd.Request{Step: hookcmd.RPOCheck, RPO: 5 * time.Minute}
		err := rpoCheck(context.Background(), system{stdout: &out}, c, r, []rbd.Image{img})
		// The recordings are from 2026-12-05 09:16: long past 3x five minutes.
		if err == nil || !strings.Contains(err.Error(), "1 of 1 images break the promised recovery point (5m): replicapool/img2: the copy is") {
			t.Errorf("%s: %v", site, err)
		}
		if !strings.Contains(out.String(), "replicapool/img2") || !strings.Contains(out.String(), "critical") {
			t.Errorf("%s: the table:\n%s", site, out.String())
		}
	}
	t.Setenv("RBD_FAKE_DENY", "1")
	c := rbd.NewClient(rbd.Conn{Binary: fake, MonHost: "192.0.2.1:6789", ID: "shop"}, time.Minute)
	var out bytes.Buffer
	err = rpoCheck(context.Background(), system{stdout: &out}, c, hookcmd.Request{Step: hookcmd.RPOCheck, RPO: 5 * time.Minute, Ceph: rbd.Conn{ID: "shop"}}, []rbd.Image{img})
	if err == nil || !strings.Contains(err.Error(), "Ceph user client.shop may not read the mirror snapshot schedules: give it the cap mgr 'profile rbd pool=<pool>'") || out.Len() != 0 {
		t.Errorf("%v\n%s", err, out.String())
	}
}
